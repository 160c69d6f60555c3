//! A kselftest runner for a list of named test functions, each run in a forked child.
//!
//! A test is a `fn() -> TestResult`: `Ok(())` passes, `Err(Stop::Fail(why))` fails,
//! `Err(Stop::Skip(why))` skips. [`run_tests`] runs each one in a child process (so a
//! test that crashes, is killed, panics or hangs is reported as `not ok` with the
//! cause named and the rest of the list still runs) and reports it on a [`Ksft`]:
//!
//! ```text
//! ok N name                     passed
//! ok N name # SKIP why          skipped (kselftest's ksft_test_result_code())
//! # name: why                   failed: the reason first,
//! not ok N name                 then the result
//! ```
//!
//! The child sends its outcome to the parent on a pipe; the parent waits at most the
//! given timeout, then kills the child with SIGKILL. A child killed by a signal is
//! `not ok` with the signal named (SIGKILL: "a kernel oops kills the task this way").
//!
//! Call [`run_tests`] while the process is single-threaded: the child of `fork()`
//! inherits only the calling thread, and a lock another thread held at that moment
//! (stdout's, the allocator's) would stay held in the child.
//!
//! Unix only (fork, pipe, poll, waitpid through `libc`).

use crate::writer::{Ksft, KSFT_SKIP};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Why a test stopped before passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The test failed, for this reason.
    Fail(String),
    /// The test could not run here (a missing feature), for this reason.
    Skip(String),
}

/// What a test function returns.
pub type TestResult = Result<(), Stop>;

/// A test function.
pub type TestFn = fn() -> TestResult;

/// A named test of a list given to [`run_tests`].
pub type Case = (&'static str, TestFn);

/// `Err(Stop::Skip(msg))`, to `return skip(...)` from a test.
pub fn skip<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Skip(msg.into()))
}

/// `Err(Stop::Fail(msg))`, to `return fail(...)` from a test.
pub fn fail<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Fail(msg.into()))
}

/// Fail the test with a formatted reason unless the condition holds.
///
/// ```
/// fn t() -> ktap::runner::TestResult {
///     let n = 3;
///     ktap::ensure!(n == 3, "n is {n}");
///     Ok(())
/// }
/// assert!(t().is_ok());
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::runner::Stop::Fail(format!($($arg)*)));
        }
    };
}

/// How one test ended, as the parent saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Returned `Ok(())`.
    Pass,
    /// Returned `Stop::Fail`, panicked, crashed, hung or exited oddly; the reason.
    Fail(String),
    /// Returned `Stop::Skip`; the reason.
    Skip(String),
}

/// Runs every test of `tests` in order, each in a forked child with at most
/// `timeout`, and reports each on `k` (see the module documentation). Prints no
/// plan and no totals: the caller does, as with kselftest.
pub fn run_tests<W: Write>(k: &mut Ksft<W>, tests: &[Case], timeout: Duration) {
    for &(name, f) in tests {
        match run_forked(f, timeout) {
            Outcome::Pass => k.test_result_pass(name),
            Outcome::Skip(why) => k.test_result_code(KSFT_SKIP, name, Some(&why)),
            Outcome::Fail(why) => {
                k.print_msg(format_args!("{name}: {why}"));
                k.test_result_fail(name);
            }
        }
    }
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    format!("{name} (signal {sig})")
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".into()
    }
}

fn os_error(what: &str) -> Outcome {
    Outcome::Fail(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Runs `f` in a forked child and returns how it ended. The child sends `P`,
/// `F<why>` or `S<why>` on a pipe and leaves with `_exit(0)`; anything else (a
/// signal, another exit status, no message, the timeout) is a failure naming it.
pub fn run_forked(f: TestFn, timeout: Duration) -> Outcome {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return os_error("pipe2");
    }
    // SAFETY: both descriptors are fresh and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let _ = std::io::stdout().flush();
    // SAFETY: the caller runs us single-threaded (module documentation); the child
    // only runs the test and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return os_error("fork");
    }
    if pid == 0 {
        drop(rd);
        let msg = match std::panic::catch_unwind(f) {
            Ok(Ok(())) => "P".to_string(),
            Ok(Err(Stop::Fail(m))) => format!("F{m}"),
            Ok(Err(Stop::Skip(m))) => format!("S{m}"),
            Err(p) => format!("Fpanicked: {}", panic_text(&*p)),
        };
        let _ = std::io::stdout().flush();
        let mut w = std::fs::File::from(wr);
        let _ = w.write_all(msg.as_bytes());
        drop(w);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    drop(wr);
    let (msg, timed_out) = read_until(std::fs::File::from(rd), timeout);
    if timed_out {
        // SAFETY: pid is our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let status = reap(pid, Duration::from_secs(10));
    judge(msg, timed_out, status, timeout, pid)
}

/// Reads the pipe until EOF or the deadline; `(bytes, timed out)`.
fn read_until(mut file: std::fs::File, timeout: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + timeout;
    let mut msg = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (msg, true);
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return (msg, false);
        }
        if r == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => return (msg, false),
            Ok(k) => msg.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (msg, false),
        }
    }
}

/// Waits for `pid` without hanging on a child stuck in the kernel: its wait status,
/// or `None` after `limit`.
fn reap(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    let mut status = 0;
    loop {
        // SAFETY: pid is our child; status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(status);
        }
        if r < 0 || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn judge(
    msg: Vec<u8>,
    timed_out: bool,
    status: Option<i32>,
    timeout: Duration,
    pid: libc::pid_t,
) -> Outcome {
    if timed_out {
        return Outcome::Fail(format!(
            "timed out after {} s{}",
            timeout.as_secs_f64(),
            if status.is_some() {
                ""
            } else {
                "; the child did not die after SIGKILL (stuck in the kernel: look for an Oops \
                 on the console)"
            }
        ));
    }
    let Some(status) = status else {
        return Outcome::Fail(format!(
            "child {pid} closed its pipe but did not exit within 10 s (stuck in the kernel?)"
        ));
    };
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        return Outcome::Fail(format!(
            "child killed by {}{}",
            signal_name(sig),
            if sig == libc::SIGKILL {
                ": a kernel oops kills the task this way, check the console"
            } else {
                ""
            }
        ));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let msg = String::from_utf8_lossy(&msg).into_owned();
    match (code, msg.chars().next()) {
        (0, Some('P')) => Outcome::Pass,
        (0, Some('F')) => Outcome::Fail(msg[1..].to_string()),
        (0, Some('S')) => Outcome::Skip(msg[1..].to_string()),
        _ => Outcome::Fail(format!(
            "child exited with status {code} and result {msg:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    // Forking tests live in tests/runner.rs (a single-threaded harness); these check
    // the parent's judgement of a child's wait status and message.
    use super::*;

    fn exited(code: i32) -> i32 {
        (code & 0xff) << 8
    }

    #[test]
    fn messages_become_outcomes() {
        let t = Duration::from_secs(1);
        assert_eq!(
            judge(b"P".to_vec(), false, Some(exited(0)), t, 1),
            Outcome::Pass
        );
        assert_eq!(
            judge(b"Fwhy".to_vec(), false, Some(exited(0)), t, 1),
            Outcome::Fail("why".into())
        );
        assert_eq!(
            judge(b"Sno THP".to_vec(), false, Some(exited(0)), t, 1),
            Outcome::Skip("no THP".into())
        );
    }

    #[test]
    fn odd_endings_are_failures_naming_the_cause() {
        let t = Duration::from_secs(2);
        let f = |o: Outcome| match o {
            Outcome::Fail(s) => s,
            o => panic!("{o:?}"),
        };
        // Killed by SIGSEGV (status = signal number).
        assert!(f(judge(vec![], false, Some(libc::SIGSEGV), t, 1)).contains("SIGSEGV (signal 11)"));
        assert!(f(judge(vec![], false, Some(libc::SIGKILL), t, 1)).contains("kernel oops"));
        assert!(
            f(judge(vec![], true, Some(libc::SIGKILL), t, 1)).starts_with("timed out after 2 s")
        );
        assert!(f(judge(vec![], true, None, t, 1)).contains("stuck in the kernel"));
        assert!(f(judge(vec![], false, None, t, 7)).contains("child 7"));
        assert!(f(judge(b"P".to_vec(), false, Some(exited(3)), t, 1)).contains("status 3"));
        assert!(f(judge(vec![], false, Some(exited(0)), t, 1)).contains("result \"\""));
    }
}
