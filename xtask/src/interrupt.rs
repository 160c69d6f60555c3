//! SIGINT / SIGTERM / SIGHUP: end the run cleanly instead of dying half-way.
//!
//! A thread waits for the signal ([`install`]); when one comes it
//! 1. ends every descendant process (make and its compilers, QEMU, apt-get, curl,
//!    patch, cargo): SIGTERM, and SIGKILL to whatever is left after a grace period.
//!    A CI cancel or `timeout` signals xtask alone, so without this QEMU would run on
//!    as an orphan;
//! 2. records the run as interrupted: `run.json`'s failure names the stage that was
//!    running, with exit 130, and the reports (summary.json, junit.xml,
//!    step-summary.md) say so;
//! 3. exits 130. The cache lock is an `flock`, released when the process ends.
//!
//! Nothing a stage publishes is left half-done by this: caches are published by
//! rename (util::publish), and a step that writes into a build directory or a working
//! copy is stamped only after it succeeded (util::Step, series-key), so the next run
//! redoes exactly the step that was interrupted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::stages::{StageFailure, StageName};

/// The run directory and the stage now running, for the report of an interrupted run.
static CURRENT: Mutex<Option<(PathBuf, StageName)>> = Mutex::new(None);
/// Set once a signal came: the main thread must not write reports any more.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long the children get after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// The exit code of an interrupted run (128 + SIGINT, as shells report Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Starts the thread that handles SIGINT, SIGTERM and SIGHUP.
pub fn install() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            interrupted(sig);
        }
    });
    Ok(())
}

/// The run directory records its stages here (RunLog).
pub fn set_run(dir: PathBuf, stage: StageName) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some((dir, stage));
    }
}

/// The run is over (its reports are written): nothing to record on a signal.
pub fn clear_run() {
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
}

/// Called by the main thread before it writes its own reports: once a signal came,
/// the handler writes them and ends the process, so the main thread waits for that.
pub fn park_if_interrupted() {
    if !INTERRUPTED.load(Ordering::SeqCst) {
        return;
    }
    // The handler ends the process within GRACE and a few writes; should it not (a
    // child that even SIGKILL does not end), end it from here.
    std::thread::sleep(GRACE * 6);
    // SAFETY: as in `interrupted`.
    unsafe { libc::_exit(EXIT_INTERRUPTED as i32) }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// A line on stderr that never panics (the reader of a pipe may be gone: `| head`).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn interrupted(sig: i32) -> ! {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // Whatever happens while recording, the process ends with 130.
    let _ = std::panic::catch_unwind(|| {
        let name = signal_name(sig);
        say(&format!(
            "\n==> {name}: stopping the run (ending its child processes)"
        ));
        let left = end_descendants(std::process::id() as i32, GRACE);
        if !left.is_empty() {
            say(&format!("    still running after SIGKILL: {left:?}"));
        }
        let current = CURRENT.lock().ok().and_then(|c| c.clone());
        if let Some((dir, stage)) = current {
            match record(&dir, stage, name) {
                Err(e) => say(&format!(
                    "    could not record the interruption in {}: {e:#}",
                    dir.display()
                )),
                Ok(()) => say(&format!(
                    "    run directory {}: interrupted during stage {stage}",
                    dir.display()
                )),
            }
        }
        say(&format!("exit {EXIT_INTERRUPTED}"));
    });
    // SAFETY: _exit skips atexit handlers and stdio flushing, which could block on a
    // lock the main thread holds.
    unsafe { libc::_exit(EXIT_INTERRUPTED as i32) }
}

/// `run.json` and the reports of a run stopped by `signal` during `stage`.
fn record(dir: &std::path::Path, stage: StageName, signal: &str) -> anyhow::Result<()> {
    let mut r = crate::plan::RunRecord::load(dir)?;
    r.failure = Some(StageFailure {
        stage,
        exit: EXIT_INTERRUPTED,
        message: format!("interrupted by {signal} during stage {stage}"),
        patch: None,
        hunks: Vec::new(),
        first_error: None,
        build_log: None,
    });
    r.save_now(dir)?;
    crate::report::write(dir, &r, crate::report::Ending::Stopped)
}

/// Every process below `root`, parents before children, read from /proc.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// SIGTERM to every descendant, then SIGKILL to those still there after `grace`;
/// returns the ones that survived even that.
pub fn end_descendants(root: i32, grace: Duration) -> Vec<i32> {
    let kill = |sig| {
        let pids = descendants(root);
        for &p in &pids {
            // SAFETY: kill(2) with a pid read from /proc; a pid that is gone is ESRCH.
            unsafe { libc::kill(p, sig) };
        }
        pids
    };
    let first = kill(libc::SIGTERM);
    if first.is_empty() {
        return Vec::new();
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        reap(&first);
        if live(&descendants(root)).is_empty() {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(200));
    reap(&first);
    live(&descendants(root))
}

/// Those of `pids` that are our own children and ended are reaped (by pid: the
/// children of other threads are left alone).
fn reap(pids: &[i32]) {
    let me = std::process::id() as i32;
    for &p in pids {
        if parent(p) == Some(me) {
            // SAFETY: waitpid on one child of ours, without blocking.
            unsafe { libc::waitpid(p, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
}

/// The fields of /proc/PID/stat after `(comm)`: state, ppid, ...
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The pids of `pids` that are not zombies.
fn live(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|&p| stat_fields(p).is_some_and(|f| f.first().is_some_and(|s| s != "Z")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_are_found_and_ended() {
        // sh -> sleep, both ours: a child and a grandchild.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 300 & wait"])
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let start = Instant::now();
        while descendants(sh.id() as i32).is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let below_sh = descendants(sh.id() as i32);
        assert_eq!(below_sh.len(), 1, "the sleep");
        let all = descendants(me);
        assert!(all.contains(&(sh.id() as i32)) && all.contains(&below_sh[0]));
        let left = end_descendants(sh.id() as i32, Duration::from_secs(2));
        assert!(left.is_empty(), "{left:?}");
        assert!(live(&below_sh).is_empty());
        // The sleep is gone, so sh's `wait` returns and sh ends on its own.
        sh.wait().unwrap();
    }
}
