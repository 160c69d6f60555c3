//! userfaultfd: creation with `UFFD_USER_MODE_ONLY` (works without privileges), the
//! `UFFDIO_API` handshake, WP registration, write-protect / un-protect, unregister.
//! vm_util.c's `uffd_register*`/`uffd_unregister` and pagemap_ioctl.c's `init_uffd`,
//! `wp_init`, `wp_free` are built from these.

use crate::error::{Error, Result};
use crate::uapi::{self, uffd_feature_names};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The features pagemap_ioctl.c's `init_uffd()` requires.
pub const PAGEMAP_IOCTL_FEATURES: u64 = uapi::UFFD_FEATURE_WP_UNPOPULATED
    | uapi::UFFD_FEATURE_WP_ASYNC
    | uapi::UFFD_FEATURE_WP_HUGETLBFS_SHMEM;

/// Default `userfaultfd(2)` flags: `O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY`.
pub const DEFAULT_FLAGS: i32 = libc::O_CLOEXEC | libc::O_NONBLOCK | uapi::UFFD_USER_MODE_ONLY;

/// Raw `userfaultfd(flags)` syscall. `ENOSYS` (no CONFIG_USERFAULTFD) and `EPERM`
/// (vm.unprivileged_userfaultfd=0 without `UFFD_USER_MODE_ONLY`) become
/// [`Error::Unsupported`].
pub fn open_raw(flags: i32) -> Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    if fd < 0 {
        let e = Error::last("userfaultfd", format!("flags={}", describe_flags(flags)));
        return Err(match e.errno() {
            Some(libc::ENOSYS) | Some(libc::EPERM) => Error::Unsupported {
                feature: "userfaultfd".into(),
                reason: e.to_string(),
            },
            _ => e,
        });
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn describe_flags(flags: i32) -> String {
    let mut v = Vec::new();
    if flags & libc::O_CLOEXEC != 0 {
        v.push("O_CLOEXEC".to_string());
    }
    if flags & libc::O_NONBLOCK != 0 {
        v.push("O_NONBLOCK".to_string());
    }
    if flags & uapi::UFFD_USER_MODE_ONLY != 0 {
        v.push("UFFD_USER_MODE_ONLY".to_string());
    }
    let rest = flags & !(libc::O_CLOEXEC | libc::O_NONBLOCK | uapi::UFFD_USER_MODE_ONLY);
    if rest != 0 || v.is_empty() {
        v.push(format!("{rest:#x}"));
    }
    v.join("|")
}

/// `UFFDIO_API` on a raw fd. Returns the kernel's `uffdio_api` answer.
pub fn api_raw(fd: BorrowedFd<'_>, features: u64) -> Result<uapi::uffdio_api> {
    let mut api = uapi::uffdio_api {
        api: uapi::UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: valid uffdio_api.
    if unsafe { libc::ioctl(fd.as_raw_fd(), uapi::UFFDIO_API as _, &mut api) } != 0 {
        return Err(Error::last(
            "ioctl(UFFDIO_API)",
            format!(
                "fd={}, api={:#x}, features={}",
                fd.as_raw_fd(),
                uapi::UFFD_API,
                uffd_feature_names(features)
            ),
        ));
    }
    Ok(api)
}

/// The features the running kernel offers: handshake with features 0 on a temporary
/// fd (an fd accepts one `UFFDIO_API` only).
pub fn supported_features() -> Result<u64> {
    let fd = open_raw(DEFAULT_FLAGS)?;
    Ok(api_raw(fd.as_fd(), 0)?.features)
}

/// Builder of a [`Userfaultfd`]: flags and the features to enable.
#[derive(Debug, Clone)]
pub struct UffdBuilder {
    flags: i32,
    features: u64,
}

impl Default for UffdBuilder {
    fn default() -> Self {
        UffdBuilder {
            flags: DEFAULT_FLAGS,
            features: 0,
        }
    }
}

impl UffdBuilder {
    /// Defaults: [`DEFAULT_FLAGS`], no features.
    pub fn new() -> Self {
        Self::default()
    }
    /// Features to request (`UFFD_FEATURE_*`).
    pub fn features(mut self, features: u64) -> Self {
        self.features = features;
        self
    }
    /// Turns `UFFD_USER_MODE_ONLY` on or off (on by default).
    pub fn user_mode_only(mut self, on: bool) -> Self {
        if on {
            self.flags |= uapi::UFFD_USER_MODE_ONLY;
        } else {
            self.flags &= !uapi::UFFD_USER_MODE_ONLY;
        }
        self
    }
    /// Turns `O_NONBLOCK` on or off (on by default).
    pub fn nonblock(mut self, on: bool) -> Self {
        if on {
            self.flags |= libc::O_NONBLOCK;
        } else {
            self.flags &= !libc::O_NONBLOCK;
        }
        self
    }

    /// Creates the fd and performs the handshake.
    ///
    /// When the kernel lacks a requested feature the error is
    /// [`Error::Unsupported`] naming exactly the missing `UFFD_FEATURE_*` bits.
    pub fn create(self) -> Result<Userfaultfd> {
        // Probe first, on a separate fd, so that a refusal can name what is missing.
        let probe = open_raw(self.flags)?;
        let offered = api_raw(probe.as_fd(), 0)?.features;
        drop(probe);
        let missing = self.features & !offered;
        if missing != 0 {
            return Err(Error::Unsupported {
                feature: uffd_feature_names(missing),
                reason: format!(
                    "UFFDIO_API offers {} (requested {})",
                    uffd_feature_names(offered),
                    uffd_feature_names(self.features)
                ),
            });
        }
        let fd = open_raw(self.flags)?;
        let api = api_raw(fd.as_fd(), self.features)?;
        Ok(Userfaultfd {
            fd,
            features: api.features,
            ioctls: api.ioctls,
            requested: self.features,
        })
    }
}

/// An owned userfaultfd after a successful handshake; closed on drop.
#[derive(Debug)]
pub struct Userfaultfd {
    fd: OwnedFd,
    features: u64,
    ioctls: u64,
    requested: u64,
}

impl Userfaultfd {
    /// A userfaultfd with [`PAGEMAP_IOCTL_FEATURES`] (WP-async for PAGEMAP_SCAN).
    pub fn wp_async() -> Result<Userfaultfd> {
        UffdBuilder::new().features(PAGEMAP_IOCTL_FEATURES).create()
    }

    /// A userfaultfd with `UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED` only
    /// (no hugetlb/shmem WP; enough for anonymous memory).
    pub fn wp_async_anon() -> Result<Userfaultfd> {
        UffdBuilder::new()
            .features(uapi::UFFD_FEATURE_WP_ASYNC | uapi::UFFD_FEATURE_WP_UNPOPULATED)
            .create()
    }

    /// The features the kernel reported as available at handshake.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The features that were requested (and enabled).
    pub fn requested_features(&self) -> u64 {
        self.requested
    }

    /// The `ioctls` mask of the handshake (`1 << _UFFDIO_*`).
    pub fn api_ioctls(&self) -> u64 {
        self.ioctls
    }

    /// `UFFDIO_REGISTER` of `[addr, addr+len)` with `mode`
    /// (`UFFDIO_REGISTER_MODE_*`); returns the allowed ioctls (`1 << _UFFDIO_*`).
    pub fn register(&self, addr: usize, len: usize, mode: u64) -> Result<u64> {
        let mut reg = uapi::uffdio_register {
            range: uapi::uffdio_range {
                start: addr as u64,
                len: len as u64,
            },
            mode,
            ioctls: 0,
        };
        // SAFETY: valid uffdio_register.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), uapi::UFFDIO_REGISTER as _, &mut reg) } != 0 {
            return Err(Error::last(
                "ioctl(UFFDIO_REGISTER)",
                format!("start={addr:#x}, len={len:#x}, mode={mode:#x}"),
            ));
        }
        Ok(reg.ioctls)
    }

    /// Registers with `UFFDIO_REGISTER_MODE_WP` and checks that `UFFDIO_WRITEPROTECT`
    /// is allowed on the range.
    pub fn register_wp(&self, addr: usize, len: usize) -> Result<u64> {
        let ioctls = self.register(addr, len, uapi::UFFDIO_REGISTER_MODE_WP)?;
        if ioctls & (1 << uapi::_UFFDIO_WRITEPROTECT) == 0 {
            return Err(Error::Unsupported {
                feature: "UFFDIO_WRITEPROTECT".into(),
                reason: format!(
                    "UFFDIO_REGISTER(start={addr:#x}, len={len:#x}, MODE_WP) allows ioctls \
                     {ioctls:#x} without 1<<_UFFDIO_WRITEPROTECT"
                ),
            });
        }
        Ok(ioctls)
    }

    /// `UFFDIO_UNREGISTER` of `[addr, addr+len)`.
    pub fn unregister(&self, addr: usize, len: usize) -> Result<()> {
        let mut range = uapi::uffdio_range {
            start: addr as u64,
            len: len as u64,
        };
        // SAFETY: valid uffdio_range.
        if unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                uapi::UFFDIO_UNREGISTER as _,
                &mut range,
            )
        } != 0
        {
            return Err(Error::last(
                "ioctl(UFFDIO_UNREGISTER)",
                format!("start={addr:#x}, len={len:#x}"),
            ));
        }
        Ok(())
    }

    /// `UFFDIO_WRITEPROTECT` of `[addr, addr+len)`: protect when `protect`, else
    /// un-protect.
    pub fn writeprotect(&self, addr: usize, len: usize, protect: bool) -> Result<()> {
        let mode = if protect {
            uapi::UFFDIO_WRITEPROTECT_MODE_WP
        } else {
            0
        };
        let mut wp = uapi::uffdio_writeprotect {
            range: uapi::uffdio_range {
                start: addr as u64,
                len: len as u64,
            },
            mode,
        };
        // SAFETY: valid uffdio_writeprotect.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), uapi::UFFDIO_WRITEPROTECT as _, &mut wp) } != 0
        {
            return Err(Error::last(
                "ioctl(UFFDIO_WRITEPROTECT)",
                format!("start={addr:#x}, len={len:#x}, mode={mode:#x}"),
            ));
        }
        Ok(())
    }

    /// pagemap_ioctl.c's `wp_init()`: register for WP and write-protect the range.
    pub fn wp_init(&self, addr: usize, len: usize) -> Result<()> {
        self.register_wp(addr, len)?;
        self.writeprotect(addr, len, true)
    }

    /// pagemap_ioctl.c's `wp_free()`: unregister the range.
    pub fn wp_free(&self, addr: usize, len: usize) -> Result<()> {
        self.unregister(addr, len)
    }

    /// Consumes the wrapper and returns the fd (closing it ends every registration).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Userfaultfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named() {
        assert_eq!(
            describe_flags(DEFAULT_FLAGS),
            "O_CLOEXEC|O_NONBLOCK|UFFD_USER_MODE_ONLY"
        );
        assert_eq!(describe_flags(0), "0x0");
    }

    #[test]
    fn invalid_flags_give_einval() {
        // Bit 30 is no userfaultfd flag: EINVAL, named with the call and flags.
        match open_raw(1 << 30) {
            Err(e) => {
                if !e.is_unsupported() {
                    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
                    assert!(
                        e.to_string().starts_with("userfaultfd(flags=0x40000000)"),
                        "{e}"
                    );
                }
            }
            Ok(_) => panic!("userfaultfd accepted flag 1<<30"),
        }
    }

    #[test]
    fn unknown_feature_is_named_as_missing() {
        let e = match UffdBuilder::new().features(1 << 62).create() {
            Err(e) => e,
            Ok(_) => panic!("kernel accepted feature bit 62"),
        };
        assert!(e.is_unsupported(), "{e}");
        // Either userfaultfd itself is missing, or the error names bit 62.
        let s = e.to_string();
        assert!(
            s.contains("0x4000000000000000") || s.contains("userfaultfd"),
            "{s}"
        );
    }
}
