//! The block device of a mounted file system, from `/proc/self/mountinfo`: `quotactl(2)`
//! names a file system by its device.

use std::io;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo` (`proc(5)`), the fields used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MountEntry {
    /// `major:minor` of the file system's device, as `st_dev` splits it.
    pub(super) device: (u64, u64),
    /// Where it is mounted (octal escapes decoded).
    pub(super) mount_point: PathBuf,
    /// The file-system type (`xfs`, `ext4`, …).
    pub(super) fs_type: String,
    /// The mount source: the block device for a disk file system.
    pub(super) source: String,
    /// The per-superblock options (`prjquota`, …).
    pub(super) super_options: String,
}

/// Parses one line; `None` for a line that does not have mountinfo's shape.
pub(super) fn parse_line(line: &str) -> Option<MountEntry> {
    let (head, tail) = line.split_once(" - ")?;
    let head: Vec<&str> = head.split(' ').collect();
    let (major, minor) = head.get(2)?.split_once(':')?;
    let mount_point = unescape_mountinfo(head.get(4)?);
    let mut tail = tail.split(' ');
    let fs_type = tail.next()?.to_owned();
    let source = unescape_mountinfo(tail.next()?);
    let super_options = tail.next().unwrap_or("").to_owned();
    Some(MountEntry {
        device: (major.parse().ok()?, minor.parse().ok()?),
        mount_point: PathBuf::from(mount_point),
        fs_type,
        source,
        super_options,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash, …).
pub(in crate::fs) fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The entry of `mountinfo` that holds `path` (canonical) on the device `device`: the one
/// with that device whose mount point is the longest prefix of `path`.
pub(super) fn find_mount(mountinfo: &str, path: &Path, device: (u64, u64)) -> Option<MountEntry> {
    mountinfo
        .lines()
        .filter_map(parse_line)
        .filter(|m| m.device == device && path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

/// The mount holding the canonical directory `path`, read from this process's
/// `/proc/self/mountinfo`.
pub(super) fn mount_of(path: &Path) -> io::Result<MountEntry> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path)?.dev();
    let device = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    find_mount(&mountinfo, path, device).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no mount of device {}:{} holds {} in /proc/self/mountinfo",
                device.0,
                device.1,
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
40 22 7:0 / /srv/snap\\040root rw,relatime shared:20 - xfs /dev/loop0 rw,attr2,inode64,prjquota
41 40 7:0 /sub /srv/snap\\040root/bind rw,relatime shared:20 - xfs /dev/loop0 rw,prjquota
50 22 0:45 / /tmp rw,nosuid - tmpfs tmpfs rw,size=100k
";

    #[test]
    fn a_line_is_split_into_its_fields_and_escapes_decoded() {
        let line = SAMPLE.lines().nth(1).unwrap();
        let m = parse_line(line).unwrap();
        assert_eq!(m.device, (7, 0));
        assert_eq!(m.mount_point, PathBuf::from("/srv/snap root"));
        assert_eq!(m.fs_type, "xfs");
        assert_eq!(m.source, "/dev/loop0");
        assert!(m.super_options.contains("prjquota"));
    }

    #[test]
    fn optional_fields_of_any_number_are_skipped() {
        let m = parse_line("9 1 8:2 / /a rw master:1 shared:2 propagate_from:3 - ext4 /dev/sdb rw")
            .unwrap();
        assert_eq!(
            (m.fs_type.as_str(), m.source.as_str()),
            ("ext4", "/dev/sdb")
        );
        assert_eq!(parse_line("not a mountinfo line"), None);
        assert_eq!(parse_line("1 2 x:y / /a rw - ext4 /dev/sda rw"), None);
    }

    #[test]
    fn the_longest_mount_point_of_the_right_device_wins() {
        let inside = Path::new("/srv/snap root/bind/x");
        let m = find_mount(SAMPLE, inside, (7, 0)).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/srv/snap root/bind"));
        let m = find_mount(SAMPLE, Path::new("/srv/snap root/y"), (7, 0)).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/srv/snap root"));
        // The right prefix on another device is not the mount of the path.
        assert_eq!(find_mount(SAMPLE, Path::new("/tmp/x"), (7, 0)), None);
        assert_eq!(
            find_mount(SAMPLE, Path::new("/srv/other"), (8, 1))
                .unwrap()
                .source,
            "/dev/sda1"
        );
    }
}
