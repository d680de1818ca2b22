//! Raw `ioctl(2)` and `quotactl(2)` calls on open directories: the request numbers of the
//! kernel's uapi headers, computed as `_IOC` does, and the one unsafe call each.

use nix::libc;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `_IOC(dir, type, nr, size)` of `include/uapi/asm-generic/ioctl.h`.
const fn ioc(dir: u64, ty: u8, nr: u8, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}

/// `_IOW(type, nr, T)`: the kernel reads a `T`.
pub(super) const fn io_write<T>(ty: u8, nr: u8) -> u64 {
    ioc(1, ty, nr, std::mem::size_of::<T>())
}

/// `_IOR(type, nr, T)`: the kernel writes a `T`.
pub(super) const fn io_read<T>(ty: u8, nr: u8) -> u64 {
    ioc(2, ty, nr, std::mem::size_of::<T>())
}

/// `_IOWR(type, nr, T)`: the kernel reads and writes a `T`.
pub(super) const fn io_read_write<T>(ty: u8, nr: u8) -> u64 {
    ioc(3, ty, nr, std::mem::size_of::<T>())
}

/// Opens the directory `path` read-only, for ioctls on it.
pub(super) fn open_dir(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

/// `ioctl(fd, request, arg)`, with `arg` a `#[repr(C)]` value of the size the request
/// encodes (checked by the callers' request constants, computed from the same type).
pub(super) fn ioctl<T>(file: &File, request: u64, arg: &mut T) -> io::Result<()> {
    // SAFETY: `arg` is a valid, exclusively borrowed `T` for the whole call, and every
    // request passed here encodes `size_of::<T>()`, so the kernel reads and writes inside it.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg as *mut T) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `QCMD(cmd, type)` of `include/uapi/linux/quota.h`.
pub(super) const fn qcmd(cmd: i32, ty: i32) -> i32 {
    (((cmd as u32) << 8) | (ty as u32 & 0xff)) as i32
}

/// `quotactl(cmd, special, id, addr)` with `addr` a `#[repr(C)]` value of the structure
/// `cmd` reads or writes.
pub(super) fn quotactl<T>(cmd: i32, special: &Path, id: u32, addr: &mut T) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let special = std::ffi::CString::new(special.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "device path holds a NUL"))?;
    // SAFETY: `special` is a NUL-terminated string that lives through the call, and `addr`
    // is an exclusively borrowed `T` of the structure that `cmd` reads or writes.
    let rc = unsafe {
        libc::quotactl(
            cmd,
            special.as_ptr(),
            id as libc::c_int,
            (addr as *mut T).cast::<libc::c_char>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
