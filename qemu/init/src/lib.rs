//! The guest PID 1 of the test VM, as a library so that its parts can be tested on the
//! host without root.
//!
//! - the `harness.*` kernel parameters and the `# ...` marker lines are the host/guest
//!   protocol, owned by the `guest-protocol` crate (`qemu/protocol`), which the host
//!   uses too.
//! - [`runner`]: runs suites as child processes with a timeout and writes KTAP; works
//!   for any directory of executables, so the host tests drive it with shell scripts.
//! - [`system`]: what only PID 1 does: mounts, THP and hugetlb set-up, the results
//!   serial port, reaping, reboot.
//! - [`swap`]: a swap area on the RAM disk `/dev/ram0` (header written here, no mkswap).
//!
//! Nothing here may panic when running as PID 1 (a panic there panics the kernel):
//! every error is logged to the console and the boot goes on.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Logs one line to the console (stderr of PID 1 is /dev/console), prefixed `init: `.
/// Unlike `eprintln!`, it never panics when the write fails.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "init: {}", format_args!($($arg)*));
    }};
}

pub mod runner;
pub mod swap;
pub mod system;
