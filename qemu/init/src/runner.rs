//! Runs the suites and writes the KTAP v1 document.
//!
//! Each suite is an executable `<dir>/<name>`, started in its own process group with
//! stdin from /dev/null, stdout piped to us and stderr inherited (the console in the VM).
//! Every line it prints is forwarded at once, indented by two spaces, and flushed: the
//! host reads the results port live. The document:
//!
//! ```text
//! KTAP version 1
//! # init: <preamble marker>...
//! 1..<number of suites>
//!   <suite 1 stdout, indented>
//! # <name>: <ms> ms exit=<code>            (or signal=<n> (<SIGNAME>), or timeout)
//! ok 1 <name>                              exit 0
//! ok 2 <name> # SKIP                       exit 4 (KSFT_SKIP)
//! not ok 3 <name>                          any other exit, or killed by a signal
//! not ok 4 <name> # TIMEOUT <s> seconds    ran longer than the timeout; group killed
//! not ok 5 <name> # ERROR not found        no such file
//! not ok 6 <name> # ERROR <why>            could not be started or waited for
//! # exit=<0 if every suite was ok, else 1>
//! ```
//!
//! Empty stdout lines are forwarded as empty lines (no indentation, no trailing blanks).
//! The `# ...` lines and the suites' result lines are formatted by
//! [`guest_protocol::marker`], which the host parses with the same code.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub use guest_protocol::marker::KSFT_SKIP;
use guest_protocol::{Ended, Marker, SuiteEnd};

/// A line longer than this without a newline is forwarded in pieces.
const MAX_LINE: usize = 64 * 1024;

/// How often the child's state is checked while its pipe is quiet.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// How to run the suites.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-suite timeout.
    pub timeout: Duration,
    /// `Some`: the children get exactly this environment; `None`: they inherit ours.
    pub env: Option<Vec<(OsString, OsString)>>,
    /// After a suite is killed (or exits leaving its pipe open), how long to wait for
    /// it to die and for its last output.
    pub kill_grace: Duration,
    /// Log progress to the console (stderr).
    pub console_progress: bool,
    /// Reap every zombie child after each suite (PID 1: orphans are reparented to us).
    /// Leave off in a multi-threaded host process: it would steal other threads'
    /// children.
    pub reap_orphans: bool,
}

impl Options {
    /// Options for a host run: inherit the environment, no reaping.
    pub fn new(timeout: Duration) -> Options {
        Options {
            timeout,
            env: None,
            kill_grace: Duration::from_secs(5),
            console_progress: false,
            reap_orphans: false,
        }
    }
}

/// How a suite ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code (0 pass, 4 skip, anything else fail).
    Exited(i32),
    /// Killed by this signal.
    Signaled { signal: i32, core_dumped: bool },
    /// Still running at the timeout; its process group was killed. `stuck`: the leader
    /// had not died `kill_grace` after SIGKILL (it is left behind).
    TimedOut { stuck: bool },
    /// Could not be run at all (`"not found"`, `"cannot execute: ..."`, ...).
    Error(String),
}

impl Outcome {
    /// `ok` in KTAP terms: passed or skipped.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Exited(0) | Outcome::Exited(KSFT_SKIP))
    }
}

/// One suite's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteResult {
    pub name: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Results of the whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub results: Vec<SuiteResult>,
    /// The `# exit=N` value: 0 if there was at least one suite and every one was ok.
    pub exit_code: i32,
}

/// `list` run `times` times over, in order (`harness.repeat`): each repetition is the
/// whole list, so a flaky test meets the state every other suite leaves behind.
pub fn repeat_list(list: &[String], times: u32) -> Vec<String> {
    (0..times.max(1))
        .flat_map(|_| list.iter().cloned())
        .collect()
}

/// The names of all regular files (or links to them) in `dir`, sorted bytewise.
/// Non-executable files are included on purpose: they then fail loudly as
/// `# ERROR cannot execute` instead of silently shrinking the run.
pub fn list_suites(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !std::fs::metadata(&path)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(raw) => crate::log!("ignoring suite with a non-UTF-8 name {raw:?}"),
        }
    }
    names.sort();
    Ok(names)
}

/// Writes lines to the results port; flushes after each line; logs the first write
/// error to the console and keeps going (there is nobody else to tell).
struct Out<'a, W: Write> {
    w: &'a mut W,
    failed: bool,
}

impl<W: Write> Out<'_, W> {
    fn bytes(&mut self, line: &[u8]) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let r = self.w.write_all(&buf).and_then(|()| self.w.flush());
        if let Err(e) = r {
            if !self.failed {
                crate::log!("writing results failed: {e} (further write errors not logged)");
            }
            self.failed = true;
        }
    }

    fn line(&mut self, line: &str) {
        self.bytes(line.as_bytes());
    }
}

/// Splits a byte stream into lines and forwards each one indented by two spaces.
struct Forwarder {
    buf: Vec<u8>,
}

impl Forwarder {
    fn new() -> Forwarder {
        Forwarder { buf: Vec::new() }
    }

    fn emit<W: Write>(out: &mut Out<'_, W>, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            out.bytes(b"");
        } else {
            let mut v = Vec::with_capacity(line.len() + 2);
            v.extend_from_slice(b"  ");
            v.extend_from_slice(line);
            out.bytes(&v);
        }
    }

    fn feed<W: Write>(&mut self, out: &mut Out<'_, W>, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            Self::emit(out, &self.buf[start..end]);
            start = end + 1;
        }
        self.buf.drain(..start);
        while self.buf.len() >= MAX_LINE {
            let rest = self.buf.split_off(MAX_LINE);
            Self::emit(out, &self.buf);
            self.buf = rest;
        }
    }

    fn finish<W: Write>(&mut self, out: &mut Out<'_, W>) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            Self::emit(out, &buf);
        }
    }
}

/// `now + d` without the overflow panic of `Instant + Duration` (a huge
/// `harness.timeout` must not panic PID 1): saturates at about a century.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(now)
}

/// Has `pid` (our child) exited? Does not reap it (WNOWAIT), so its process group id
/// stays pinned and the group can still be killed safely. An error (ECHILD: someone
/// else reaped it) counts as exited.
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return false;
        }
        crate::log!("waitid(P_PID, {pid}, WEXITED|WNOHANG|WNOWAIT) failed: {e}");
        return true;
    }
    // SAFETY: waitid filled `info` (or left it zeroed when nothing was waitable).
    unsafe { info.si_pid() != 0 }
}

/// SIGKILLs the process group led by `pgid`.
fn kill_group(pgid: libc::pid_t) {
    // SAFETY: plain syscall.
    let r = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            crate::log!("kill(-{pgid}, SIGKILL) failed: {e}");
        }
    }
}

/// Waits up to `timeout` for data on `pipe`; forwards what arrives. Returns false once
/// the pipe is at end of file (or broken).
fn pump<W: Write>(
    pipe: &mut ChildStdout,
    timeout: Duration,
    fwd: &mut Forwarder,
    out: &mut Out<'_, W>,
) -> bool {
    let mut pfd = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return true;
        }
        crate::log!("poll on a suite's stdout failed: {e}");
        return false;
    }
    if r == 0 {
        return true;
    }
    let mut chunk = [0u8; 8192];
    match pipe.read(&mut chunk) {
        Ok(0) => false,
        Ok(n) => {
            fwd.feed(out, chunk.get(..n).unwrap_or(&[]));
            true
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
        Err(e) => {
            crate::log!("reading a suite's stdout failed: {e}");
            false
        }
    }
}

/// Reads what is left in the pipe until end of file or `grace` has passed.
fn drain<W: Write>(
    pipe: &mut Option<ChildStdout>,
    grace: Duration,
    fwd: &mut Forwarder,
    out: &mut Out<'_, W>,
) {
    let deadline = deadline_after(grace);
    while let Some(p) = pipe.as_mut() {
        let now = Instant::now();
        if now >= deadline {
            crate::log!("a suite's stdout is still open after {grace:?}; giving up on it");
            break;
        }
        if !pump(p, deadline - now, fwd, out) {
            *pipe = None;
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Runs one suite, forwarding its stdout; returns how it ended.
fn run_one<W: Write>(dir: &Path, name: &str, opts: &Options, out: &mut Out<'_, W>) -> Outcome {
    if !valid_name(name) {
        return Outcome::Error("invalid suite name".into());
    }
    let path = dir.join(name);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Outcome::Error("not found".into());
        }
        Err(e) => return Outcome::Error(format!("cannot execute: stat: {e}")),
        Ok(m) if !m.is_file() => {
            return Outcome::Error("cannot execute: not a regular file".into());
        }
        Ok(_) => {}
    }

    // argv[0] is the full path, as when kselftest runs `./pagemap_ioctl`: upstream's
    // pagemap_ioctl.c maps its own executable by opening argv[0].
    let mut cmd = Command::new(&path);
    cmd.arg0(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    if let Some(env) = &opts.env {
        cmd.env_clear();
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
    }
    // No `current_dir` here: with a static glibc, spawning with a working directory
    // failed with ENOSYS on a tinyconfig 6.1 guest. PID 1 changes its own directory.
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The file exists, so this is its interpreter (#!) or dynamic loader.
            return Outcome::Error(format!("cannot execute: {e} (interpreter or loader)"));
        }
        Err(e) => return Outcome::Error(format!("cannot execute: {e}")),
    };
    let pid = child.id() as libc::pid_t;
    let mut pipe = child.stdout.take();
    let mut fwd = Forwarder::new();
    let deadline = deadline_after(opts.timeout);

    let timed_out = loop {
        if has_exited(pid) {
            break false;
        }
        let now = Instant::now();
        if now >= deadline {
            break true;
        }
        let slice = (deadline - now).min(POLL_SLICE);
        match pipe.as_mut() {
            Some(p) => {
                if !pump(p, slice, &mut fwd, out) {
                    pipe = None;
                }
            }
            None => std::thread::sleep(slice),
        }
    };

    // Leader exited or timed out: either way nothing of the suite may outlive it.
    // The leader is not reaped yet, so the group id cannot have been reused.
    kill_group(pid);
    let mut stuck = false;
    if timed_out {
        let grace_end = deadline_after(opts.kill_grace);
        while !has_exited(pid) {
            if Instant::now() >= grace_end {
                stuck = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drain(&mut pipe, opts.kill_grace, &mut fwd, out);
    fwd.finish(out);
    drop(pipe);

    if stuck {
        crate::log!("suite {name} (pid {pid}) did not die after SIGKILL; leaving it behind");
        return Outcome::TimedOut { stuck: true };
    }
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => return Outcome::Error(format!("waitpid({pid}) failed: {e}")),
    };
    if timed_out {
        Outcome::TimedOut { stuck: false }
    } else if let Some(code) = status.code() {
        Outcome::Exited(code)
    } else if let Some(signal) = status.signal() {
        Outcome::Signaled {
            signal,
            core_dumped: status.core_dumped(),
        }
    } else {
        Outcome::Error(format!("unexpected wait status {status:?}"))
    }
}

/// The conventional name of a signal, for diagnostics.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "unknown signal",
    }
}

/// Seconds for the TIMEOUT directive: whole seconds when whole, else with millis.
/// The `# <name>: <ms> ms ...` marker and the KTAP result line for one suite.
fn result_lines(number: usize, r: &SuiteResult, timeout: Duration) -> (Marker, String) {
    let ended = match &r.outcome {
        Outcome::Exited(code) => Ended::Exited(*code),
        Outcome::Signaled {
            signal,
            core_dumped,
        } => Ended::Signaled {
            signal: *signal,
            name: signal_name(*signal).to_string(),
            core_dumped: *core_dumped,
        },
        Outcome::TimedOut { stuck } => Ended::TimedOut {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            stuck: *stuck,
        },
        Outcome::Error(why) => Ended::Error(why.clone()),
    };
    let end = SuiteEnd {
        name: r.name.clone(),
        ms: u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
        ended,
    };
    let result = end.result_line(number);
    (Marker::SuiteEnd(end), result)
}

/// Reaps every zombie child without blocking; returns how many. Only for PID 1 (or a
/// single-threaded process): it takes any child.
pub fn reap_zombies() -> usize {
    let mut n = 0;
    loop {
        let mut status = 0;
        // SAFETY: plain syscall writing into `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return n;
        }
        n += 1;
    }
}

/// Runs `names` from `dir` in order and writes the whole KTAP document to `w`:
/// version line, the `preamble` markers, plan, each suite's output and result,
/// and `# exit=N` last.
pub fn run_suites<W: Write>(
    dir: &Path,
    names: &[String],
    opts: &Options,
    preamble: &[Marker],
    w: &mut W,
) -> Summary {
    let mut out = Out { w, failed: false };
    out.line("KTAP version 1");
    for marker in preamble {
        out.line(&marker.to_string());
    }
    out.line(&format!("1..{}", names.len()));
    let mut results = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let number = i + 1;
        if opts.console_progress {
            crate::log!("[{number}/{}] running {name}", names.len());
        }
        // Names the nested block before it starts, so that a suite cut short by a
        // kernel panic (no result line) is still reported under its name.
        out.line(&Marker::SuiteStart(name.clone()).to_string());
        let start = Instant::now();
        let outcome = run_one(dir, name, opts, &mut out);
        let r = SuiteResult {
            name: name.clone(),
            outcome,
            elapsed: start.elapsed(),
        };
        let (marker, result) = result_lines(number, &r, opts.timeout);
        let diag = marker.to_string();
        out.line(&diag);
        out.line(&result);
        if opts.console_progress {
            crate::log!("{}", diag.trim_start_matches("# "));
            crate::log!("{result}");
        }
        if opts.reap_orphans {
            reap_zombies();
        }
        results.push(r);
    }
    let all_ok = !results.is_empty() && results.iter().all(|r| r.outcome.is_ok());
    if names.is_empty() {
        out.line(&Marker::NoSuites.to_string());
    }
    let exit_code = if all_ok { 0 } else { 1 };
    out.line(&Marker::Exit(exit_code).to_string());
    Summary { results, exit_code }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Suites run one test at a time: a script being written while another thread
    /// forks could give ETXTBSY, and the process checks want a quiet system.
    static SERIAL: Mutex<()> = Mutex::new(());

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "guest-init-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        fn script(&self, name: &str, body: &str) {
            let p = self.0.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run(dir: &TempDir, names: &[&str], timeout: Duration) -> (Summary, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut opts = Options::new(timeout);
        opts.kill_grace = Duration::from_secs(2);
        let mut buf = Vec::new();
        let s = run_suites(
            &dir.0,
            &names,
            &opts,
            &[Marker::ThpDefrag("always".into())],
            &mut buf,
        );
        (s, String::from_utf8(buf).unwrap())
    }

    /// Replaces the variable elapsed times `: <digits> ms` with `: T ms`.
    fn normalize(s: &str) -> String {
        s.lines()
            .map(|l| {
                if let (Some(colon), Some(ms)) = (l.find(": "), l.find(" ms")) {
                    let digits = &l[colon + 2..ms];
                    if l.starts_with("# ")
                        && !digits.is_empty()
                        && digits.bytes().all(|b| b.is_ascii_digit())
                    {
                        return format!("{}: T{}", &l[..colon], &l[ms..]);
                    }
                }
                l.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    fn gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                // state is the field after the ")" that closes comm
                let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
                matches!(state, Some(Some('Z' | 'X')))
            }
        }
    }

    const PASS: &str = "echo 'TAP version 13'\necho '1..2'\necho 'ok 1 first'\n\
                        echo '# a diagnostic'\necho 'ok 2 second'\nexit 0\n";

    #[test]
    fn exact_document_for_every_outcome() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        d.script("pass", PASS);
        d.script(
            "skip",
            "echo 'TAP version 13'\necho '1..0 # SKIP feature missing'\nexit 4\n",
        );
        d.script(
            "fail",
            "echo 'TAP version 13'\necho '1..1'\necho 'not ok 1 broken'\n\
             echo 'error text' >&2\nexit 1\n",
        );
        d.script("crash", "echo 'TAP version 13'\nkill -SEGV $$\n");
        // Windows line ending, an empty line, and a last line without newline.
        d.script("odd", "printf 'a\\r\\n\\nb'\n");
        let (s, out) = run(
            &d,
            &["pass", "skip", "fail", "crash", "missing", "odd"],
            Duration::from_secs(30),
        );
        let expected = "\
KTAP version 1
# init: thp defrag=always
1..6
# Subtest: pass
  TAP version 13
  1..2
  ok 1 first
  # a diagnostic
  ok 2 second
# pass: T ms exit=0
ok 1 pass
# Subtest: skip
  TAP version 13
  1..0 # SKIP feature missing
# skip: T ms exit=4
ok 2 skip # SKIP
# Subtest: fail
  TAP version 13
  1..1
  not ok 1 broken
# fail: T ms exit=1
not ok 3 fail
# Subtest: crash
  TAP version 13
# crash: T ms signal=11 (SIGSEGV)
not ok 4 crash
# Subtest: missing
# missing: T ms error: not found
not ok 5 missing # ERROR not found
# Subtest: odd
  a

  b
# odd: T ms exit=0
ok 6 odd
# exit=1
";
        assert_eq!(normalize(&out), expected, "raw output:\n{out}");
        assert_eq!(s.exit_code, 1);
        // Every top-level `# ` line is a marker the host can parse back.
        for line in out.lines().filter(|l| l.starts_with("# ")) {
            assert!(Marker::parse(line).is_some(), "not a marker: {line:?}");
        }
        assert_eq!(
            out.lines().last().and_then(Marker::parse),
            Some(Marker::Exit(1))
        );
        let outcomes: Vec<_> = s.results.iter().map(|r| r.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Exited(0),
                Outcome::Exited(4),
                Outcome::Exited(1),
                Outcome::Signaled {
                    signal: libc::SIGSEGV,
                    core_dumped: outcomes[3]
                        == Outcome::Signaled {
                            signal: libc::SIGSEGV,
                            core_dumped: true
                        }
                },
                Outcome::Error("not found".into()),
                Outcome::Exited(0),
            ]
        );
    }

    #[test]
    fn all_ok_gives_exit_0() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        d.script("a", PASS);
        d.script("b", "echo '1..0 # SKIP nope'\nexit 4\n");
        let (s, out) = run(&d, &["a", "b"], Duration::from_secs(30));
        assert_eq!(s.exit_code, 0);
        assert!(out.ends_with("ok 2 b # SKIP\n# exit=0\n"), "{out}");
    }

    #[test]
    fn other_ksft_codes_fail() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        for code in [2, 3, 5, 255] {
            d.script(&format!("c{code}"), &format!("exit {code}\n"));
        }
        let (s, out) = run(&d, &["c2", "c3", "c5", "c255"], Duration::from_secs(30));
        assert_eq!(s.exit_code, 1);
        for (i, code) in [2, 3, 5, 255].iter().enumerate() {
            assert!(
                out.contains(&format!("not ok {} c{code}\n", i + 1)),
                "{out}"
            );
            assert!(out.contains(&format!("ms exit={code}\n")), "{out}");
        }
    }

    #[test]
    fn no_suites_is_not_a_pass() {
        let d = TempDir::new();
        let (s, out) = run(&d, &[], Duration::from_secs(1));
        assert_eq!(s.exit_code, 1);
        assert_eq!(
            out,
            "KTAP version 1\n# init: thp defrag=always\n1..0\n# init: no suites to run\n# exit=1\n"
        );
    }

    #[test]
    fn hung_suite_times_out_its_group_dies_and_the_next_suite_runs() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        let pids = d.0.join("pids");
        // The background sleep keeps the pipe open too: the runner must not wait on it.
        d.script(
            "hang",
            &format!(
                "echo 'TAP version 13'\necho '1..1'\nsleep 1000 &\n\
                 echo \"$$ $!\" > '{}'\nsleep 1000\n",
                pids.display()
            ),
        );
        d.script("pass", PASS);
        let start = Instant::now();
        let (s, out) = run(&d, &["hang", "pass"], Duration::from_secs(1));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(
            normalize(&out).contains(
                "  TAP version 13\n  1..1\n# hang: T ms timeout after 1 s, \
                 process group killed\nnot ok 1 hang # TIMEOUT 1 seconds\n"
            ),
            "{out}"
        );
        assert!(out.ends_with("ok 2 pass\n# exit=1\n"), "{out}");
        assert_eq!(s.results[0].outcome, Outcome::TimedOut { stuck: false });
        assert!(s.results[0].elapsed >= Duration::from_secs(1));
        assert_eq!(s.results[1].outcome, Outcome::Exited(0));

        let text = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<i32> = text
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{text}");
        // The shell was our child and has been reaped; the background sleep was
        // reparented: give its new parent a moment to reap it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ids.iter().all(|&p| gone(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in ids {
            assert!(gone(p), "process {p} survived the timeout");
        }
    }

    #[test]
    fn leftover_background_process_does_not_block_and_is_killed() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        let pids = d.0.join("pids");
        d.script(
            "daemon",
            &format!(
                "sleep 1000 &\necho $! > '{}'\necho '1..0 # SKIP x'\nexit 4\n",
                pids.display()
            ),
        );
        let start = Instant::now();
        let (s, _) = run(&d, &["daemon"], Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(s.results[0].outcome, Outcome::Exited(4));
        let pid: i32 = std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(pid), "background process {pid} survived its suite");
    }

    /// A writer that notes when each line arrived and whether it was flushed.
    struct Timed {
        lines: Vec<(Instant, Vec<u8>)>,
        unflushed: usize,
    }

    impl Write for Timed {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.lines.push((Instant::now(), buf.to_vec()));
            self.unflushed += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.unflushed = 0;
            Ok(())
        }
    }

    #[test]
    fn lines_are_forwarded_live_and_flushed() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        d.script("slow", "echo first\nsleep 1\necho second\n");
        let mut w = Timed {
            lines: Vec::new(),
            unflushed: 0,
        };
        let opts = Options::new(Duration::from_secs(30));
        run_suites(&d.0, &["slow".to_string()], &opts, &[], &mut w);
        assert_eq!(w.unflushed, 0);
        let at = |text: &[u8]| {
            w.lines
                .iter()
                .find(|(_, l)| l.as_slice() == text)
                .map(|(t, _)| *t)
                .unwrap_or_else(|| panic!("{:?} not written", String::from_utf8_lossy(text)))
        };
        let first = at(b"  first\n");
        let second = at(b"  second\n");
        assert!(
            second.duration_since(first) >= Duration::from_millis(700),
            "first line was held back until the suite ended"
        );
    }

    #[test]
    fn not_executable_and_bad_names_are_errors() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        std::fs::write(d.0.join("plain"), "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::create_dir(d.0.join("subdir")).unwrap();
        let bad = d.0.join("badinterp");
        std::fs::write(&bad, "#!/nonexistent/interpreter\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (s, out) = run(
            &d,
            &["plain", "subdir", "../x", "badinterp"],
            Duration::from_secs(5),
        );
        assert_eq!(s.exit_code, 1);
        assert!(
            out.contains("not ok 1 plain # ERROR cannot execute: "),
            "{out}"
        );
        assert!(
            out.contains("not ok 2 subdir # ERROR cannot execute: not a regular file\n"),
            "{out}"
        );
        assert!(
            out.contains("not ok 3 ../x # ERROR invalid suite name\n"),
            "{out}"
        );
        assert!(
            out.contains("not ok 4 badinterp # ERROR cannot execute: "),
            "{out}"
        );
    }

    #[test]
    fn repeat_list_runs_the_whole_list_again() {
        let l = vec!["a".to_string(), "b".to_string()];
        assert_eq!(repeat_list(&l, 3), ["a", "b", "a", "b", "a", "b"]);
        assert_eq!(repeat_list(&l, 1), ["a", "b"]);
        assert_eq!(repeat_list(&l, 0), ["a", "b"]);
    }

    #[test]
    fn list_suites_sorted_regular_files_only() {
        let d = TempDir::new();
        for n in ["soft-dirty", "pagemap_ioctl.c", "pagemap_ioctl", "b"] {
            std::fs::write(d.0.join(n), "").unwrap();
        }
        std::fs::create_dir(d.0.join("dir")).unwrap();
        assert_eq!(
            list_suites(&d.0).unwrap(),
            vec!["b", "pagemap_ioctl", "pagemap_ioctl.c", "soft-dirty"]
        );
        assert!(list_suites(&d.0.join("nope")).is_err());
    }

    #[test]
    fn long_lines_are_split() {
        let mut buf = Vec::new();
        let mut out = Out {
            w: &mut buf,
            failed: false,
        };
        let mut f = Forwarder::new();
        f.feed(&mut out, &vec![b'x'; MAX_LINE + 10]);
        f.feed(&mut out, b"\n");
        f.finish(&mut out);
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE + 2);
        assert_eq!(lines[1], format!("  {}", "x".repeat(10)));
    }

    #[test]
    fn huge_timeout_does_not_overflow() {
        let far = deadline_after(Duration::from_secs(u64::MAX));
        assert!(far > Instant::now() + Duration::from_secs(365 * 86400));
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let d = TempDir::new();
        d.script("a", PASS);
        let (s, _) = run(&d, &["a"], Duration::from_secs(u64::MAX));
        assert_eq!(s.exit_code, 0);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(signal_name(1000), "unknown signal");
    }
}
