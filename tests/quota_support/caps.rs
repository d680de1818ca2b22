//! Running a step without `CAP_SYS_RESOURCE`, as a container does.
//!
//! ext4 lets a task with `CAP_SYS_RESOURCE` in its effective set write past a hard quota
//! limit (the kernel's `ignore_hardlimit`); XFS and btrfs do not. Capabilities belong to a
//! thread, so [`without_sys_resource`] runs its step on a thread of its own that dropped
//! the capability from its effective set, and the test's own threads keep it. (Through
//! an overlay mount nobody is exempt: overlayfs writes with the mounter's credentials
//! less `CAP_SYS_RESOURCE`; tests/quota_project.rs pins both on ext4.)

use nix::libc;

/// `CAP_SYS_RESOURCE`'s bit (linux/capability.h).
const CAP_SYS_RESOURCE: u32 = 24;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Runs `step` on a new thread whose effective set lacks `CAP_SYS_RESOURCE`.
pub fn without_sys_resource<T: Send>(step: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut header = Header {
                version: VERSION_3,
                pid: 0,
            };
            let mut data = [Data::default(); 2];
            // SAFETY: the header and two data words are what version 3 of capget/capset
            // reads and writes, and both outlive the calls.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
                    0
                );
                data[0].effective &= !(1 << CAP_SYS_RESOURCE);
                assert_eq!(
                    libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
                    0
                );
            }
            step()
        })
        .join()
        .unwrap()
    })
}
