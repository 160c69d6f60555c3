//! The error type of the library: every failure names the call, the arguments that
//! matter and the errno, so a `Bail out!` line alone tells what went wrong.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A system call (or a libc wrapper of one) failed with `errno`.
    ///
    /// `call` is the syscall name (for ioctls: `ioctl(PAGEMAP_SCAN)`), `args` the
    /// arguments that matter, already formatted (`"start=0x7f.., len=4096"`).
    Sys {
        /// Name of the call.
        call: &'static str,
        /// The important arguments, formatted.
        args: String,
        /// The errno the call returned.
        errno: i32,
    },
    /// A read or write transferred fewer bytes than asked for.
    ShortIo {
        /// Name of the call (`pread`, `write`, ...).
        call: &'static str,
        /// The important arguments, formatted (path, offset, ...).
        args: String,
        /// Bytes asked for.
        expected: usize,
        /// Bytes transferred.
        got: usize,
    },
    /// A kernel interface file had content we could not parse.
    Parse {
        /// What was being parsed (a path, a field name).
        what: String,
        /// The offending text or a description of the problem.
        detail: String,
    },
    /// The running kernel lacks a feature; tests turn this into a SKIP.
    Unsupported {
        /// The missing feature, named as in the kernel's uapi.
        feature: String,
        /// How we found out (the call and errno, or the file that says so).
        reason: String,
    },
    /// `/proc/self/pagemap` and `PAGEMAP_SCAN` disagree about a page.
    ///
    /// Upstream's vm_util.c bails out in this case ("read and ioctl return unmatched
    /// results").
    Mismatch {
        /// What was compared (`soft-dirty`, `swap`, `populated`).
        what: &'static str,
        /// The address of the page.
        addr: usize,
        /// The answer of the pagemap file.
        pagemap: bool,
        /// The answer of the ioctl.
        scan: bool,
    },
    /// A caller passed arguments the library refuses (e.g. an unaligned address).
    InvalidArgument {
        /// The function that refused.
        func: &'static str,
        /// Why.
        detail: String,
    },
}

impl Error {
    /// Builds [`Error::Sys`] from the calling thread's current `errno`.
    pub fn last(call: &'static str, args: impl Into<String>) -> Self {
        Error::Sys {
            call,
            args: args.into(),
            errno: last_errno(),
        }
    }

    /// Builds [`Error::Sys`] from an `io::Error` (its raw OS error; `EIO` when it has none).
    pub fn from_io(call: &'static str, args: impl Into<String>, err: &std::io::Error) -> Self {
        Error::Sys {
            call,
            args: args.into(),
            errno: err.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// The errno of a failed system call, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// True when the kernel lacks a feature (the caller should SKIP, not FAIL).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { call, args, errno } => {
                write!(f, "{call}({args}) failed: {}", describe_errno(*errno))
            }
            Error::ShortIo {
                call,
                args,
                expected,
                got,
            } => write!(f, "{call}({args}) transferred {got} of {expected} bytes"),
            Error::Parse { what, detail } => write!(f, "cannot parse {what}: {detail}"),
            Error::Unsupported { feature, reason } => {
                write!(f, "kernel lacks {feature}: {reason}")
            }
            Error::Mismatch {
                what,
                addr,
                pagemap,
                scan,
            } => write!(
                f,
                "read and ioctl return unmatched results for {what} at {addr:#x}: \
                 pagemap says {}, PAGEMAP_SCAN says {}",
                u8::from(*pagemap),
                u8::from(*scan)
            ),
            Error::InvalidArgument { func, detail } => write!(f, "{func}: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

/// The calling thread's current `errno`.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `"EINVAL (Invalid argument)"`: the symbolic name and the C library's text.
pub fn describe_errno(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep the name, the text and the number.
    let text = text
        .rsplit_once(" (os error")
        .map(|(t, _)| t.to_string())
        .unwrap_or(text);
    match errno_name(errno) {
        Some(name) => format!("{name} ({text}, errno {errno})"),
        None => format!("errno {errno} ({text})"),
    }
}

/// Symbolic name of the errnos the mm tests can meet.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EHWPOISON => "EHWPOISON",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_error_names_call_args_and_errno() {
        let e = Error::Sys {
            call: "ioctl(PAGEMAP_SCAN)",
            args: "start=0x1000, end=0x2000".into(),
            errno: libc::EINVAL,
        };
        let s = e.to_string();
        assert_eq!(
            s,
            "ioctl(PAGEMAP_SCAN)(start=0x1000, end=0x2000) failed: \
             EINVAL (Invalid argument, errno 22)"
        );
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert!(!e.is_unsupported());
    }

    #[test]
    fn unknown_errno_still_has_number() {
        assert!(describe_errno(4000).starts_with("errno 4000 ("));
    }

    #[test]
    fn mismatch_and_short_io_display() {
        let e = Error::Mismatch {
            what: "soft-dirty",
            addr: 0x1000,
            pagemap: true,
            scan: false,
        };
        assert!(e.to_string().contains("soft-dirty at 0x1000"));
        let e = Error::ShortIo {
            call: "pread",
            args: "/proc/self/pagemap".into(),
            expected: 8,
            got: 0,
        };
        assert_eq!(
            e.to_string(),
            "pread(/proc/self/pagemap) transferred 0 of 8 bytes"
        );
    }
}
