//! What only PID 1 does: mounts, console descriptors, THP and hugetlb set-up, the
//! results serial port, and the final reboot. Every function reports errors as values
//! (naming the call, its arguments and errno) for the caller to log; none panics.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// One entry of the mount table.
#[derive(Debug, Clone, Copy)]
pub struct Mount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: libc::c_ulong,
    pub data: &'static str,
}

const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// The file systems the suites need, in mount order (/dev before what lives under it).
pub const MOUNTS: &[Mount] = &[
    // /proc first: the command line is read from it.
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
    },
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: libc::MS_NOSUID,
        data: "mode=0755",
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=1777",
    },
    // POSIX shared memory (shm_open) lives here.
    Mount {
        source: "tmpfs",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=1777",
    },
    Mount {
        source: "hugetlbfs",
        target: "/dev/hugepages",
        fstype: "hugetlbfs",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=1777",
    },
];

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// Creates the mount point if needed and mounts `m` on it.
pub fn mount(m: &Mount) -> Result<(), String> {
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(m.target)
    {
        return Err(format!("mkdir -p {}: {e}", m.target));
    }
    let args = (|| {
        Ok::<_, io::Error>((
            cstr(m.source)?,
            cstr(m.target)?,
            cstr(m.fstype)?,
            cstr(m.data)?,
        ))
    })();
    let (source, target, fstype, data) = args.map_err(|e| format!("mount {}: {e}", m.target))?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            m.flags,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(format!(
            "mount(\"{}\", \"{}\", \"{}\", {:#x}, \"{}\"): {}",
            m.source,
            m.target,
            m.fstype,
            m.flags,
            m.data,
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// If the kernel could not give us a console (no /dev/console in the initramfs), fds
/// 0-2 are closed: open /dev/console (now on devtmpfs) onto whichever are missing.
/// Returns the fds that were fixed.
pub fn ensure_console_fds() -> Result<Vec<i32>, String> {
    let missing: Vec<i32> = (0..3)
        // SAFETY: F_GETFD only queries the descriptor.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0)
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let path = c"/dev/console";
    // SAFETY: valid path; the new fd is either dup2'ed and closed below or is itself
    // one of 0-2.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        return Err(format!(
            "open(\"/dev/console\", O_RDWR|O_NOCTTY) for missing fds {missing:?}: {}",
            io::Error::last_os_error()
        ));
    }
    for &target in &missing {
        // SAFETY: both descriptors are valid.
        if target != fd && unsafe { libc::dup2(fd, target) } < 0 {
            return Err(format!(
                "dup2({fd}, {target}): {}",
                io::Error::last_os_error()
            ));
        }
    }
    if fd > 2 {
        // SAFETY: fd is ours and no longer needed.
        unsafe { libc::close(fd) };
    }
    Ok(missing)
}

/// Writes `value` to a sysfs/procfs file.
pub fn write_file(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write \"{value}\" to {path}: {e}"))
}

/// Reads a sysfs/procfs file, trimmed.
pub fn read_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("read {path}: {e}"))
}

/// The selected word of a sysfs choice file: `always [madvise] never` -> `madvise`.
pub fn selected_choice(content: &str) -> Option<&str> {
    let start = content.find('[')?;
    let rest = content.get(start + 1..)?;
    let end = rest.find(']')?;
    rest.get(..end)
}

pub const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
pub const THP_DEFRAG: &str = "/sys/kernel/mm/transparent_hugepage/defrag";
pub const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
pub const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

/// `uname -r`.
pub fn kernel_release() -> Result<String, String> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(format!("uname: {}", io::Error::last_os_error()));
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Opens the results port: O_WRONLY|O_NOCTTY, raw mode (no output processing, so
/// `\n` stays `\n`), CLOCAL (no waiting for carrier), then blocking writes.
pub fn open_results_port(path: &str) -> Result<File, String> {
    let cpath = cstr(path).map_err(|e| format!("open {path}: {e}"))?;
    // O_NONBLOCK so that open() does not wait for carrier detect before CLOCAL is set.
    // SAFETY: valid path.
    let fd = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_WRONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "open(\"{path}\", O_WRONLY|O_NOCTTY|O_NONBLOCK): {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let file = unsafe { File::from_raw_fd(fd) };
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(format!("tcgetattr({path}): {}", io::Error::last_os_error()));
    }
    // SAFETY: valid pointer.
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag |= libc::CLOCAL;
    // The speed is left alone: QEMU's UART ignores it (and cfsetospeed cannot be
    // linked statically with this glibc through the libc crate's versioned symbol).
    // SAFETY: valid fd and pointer.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(format!(
            "tcsetattr({path}, TCSANOW, raw): {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: plain fcntl on our fd.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: plain fcntl on our fd.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(format!(
            "fcntl({path}, F_SETFL, ~O_NONBLOCK): {}",
            io::Error::last_os_error()
        ));
    }
    Ok(file)
}

/// Waits until everything written to a tty has been sent (before a reboot cuts it).
pub fn drain_tty(file: &File) -> Result<(), String> {
    // SAFETY: valid fd.
    if unsafe { libc::tcdrain(file.as_raw_fd()) } != 0 {
        let e = io::Error::last_os_error();
        // Not a tty (the console fallback may be anything): nothing to drain.
        if e.raw_os_error() != Some(libc::ENOTTY) {
            return Err(format!("tcdrain: {e}"));
        }
    }
    Ok(())
}

/// Does `path` exist (without following a final symlink)?
pub fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// sync, reboot (QEMU runs with -no-reboot, so it exits), else power off, else wait
/// forever while reaping: PID 1 must never return.
pub fn shutdown() -> ! {
    // SAFETY: plain syscalls.
    unsafe { libc::sync() };
    // SAFETY: plain syscall.
    if unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_RESTART) } != 0 {
        crate::log!(
            "reboot(LINUX_REBOOT_CMD_RESTART): {}; trying power off",
            io::Error::last_os_error()
        );
    }
    // SAFETY: plain syscall.
    if unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) } != 0 {
        crate::log!(
            "reboot(LINUX_REBOOT_CMD_POWER_OFF): {}; halting here",
            io::Error::last_os_error()
        );
    }
    loop {
        crate::runner::reap_zombies();
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn selected_choice_parses_sysfs() {
        assert_eq!(selected_choice("always [madvise] never\n"), Some("madvise"));
        assert_eq!(
            selected_choice("[always] defer defer+madvise madvise never"),
            Some("always")
        );
        assert_eq!(selected_choice("always madvise never"), None);
    }

    #[test]
    fn mount_table_order() {
        let pos = |t: &str| MOUNTS.iter().position(|m| m.target == t).unwrap();
        assert_eq!(pos("/proc"), 0);
        assert!(pos("/dev") < pos("/dev/shm"));
        assert!(pos("/dev") < pos("/dev/hugepages"));
        for m in MOUNTS {
            assert!(m.target.starts_with('/'));
        }
    }

    #[test]
    fn kernel_release_matches_proc() {
        let r = kernel_release().unwrap();
        assert!(!r.is_empty());
        if let Ok(p) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            assert_eq!(r, p.trim());
        }
    }

    #[test]
    fn results_port_refuses_a_non_tty() {
        let e = open_results_port("/dev/null").unwrap_err();
        assert!(e.contains("tcgetattr(/dev/null)"), "{e}");
        let e = open_results_port("/nonexistent/ttyS1").unwrap_err();
        assert!(e.contains("open(\"/nonexistent/ttyS1\""), "{e}");
    }
}
