//! Small shared pieces: content hashing for cache keys, atomic directory publishing,
//! the error type that carries an exit code, and stage timing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Exit codes of `cargo xtask test-kernel` (documented in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every result as the target expects.
    Ok = 0,
    /// A test result differs from what the target expects (or the console shows a
    /// WARNING/BUG/Oops while every test finished).
    Mismatch = 1,
    /// Set-up, source, series, config or build error.
    Setup = 2,
    /// The kernel crashed, hung, or the output was cut short.
    Crash = 3,
    /// Stopped by SIGINT or SIGTERM (crate::interrupt).
    Interrupted = 130,
}

/// An error that knows which exit code it maps to. Anything else is `Exit::Setup`.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A set-up error (exit 2) with a message.
pub fn setup_error(message: impl Into<String>) -> anyhow::Error {
    Failure {
        exit: Exit::Setup,
        message: message.into(),
    }
    .into()
}

/// Maps an error chain to its exit code.
pub fn exit_code_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map(|f| f.exit)
        .unwrap_or(Exit::Setup)
}

/// Incremental SHA-256 over labelled parts, so that keys differ when any part does.
#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(kind: &str) -> Key {
        let mut k = Key(Sha256::new());
        k.part("kind", kind.as_bytes());
        k
    }
    pub fn part(&mut self, label: &str, data: &[u8]) -> &mut Self {
        self.0.update((label.len() as u64).to_le_bytes());
        self.0.update(label.as_bytes());
        self.0.update((data.len() as u64).to_le_bytes());
        self.0.update(data);
        self
    }
    pub fn str(&mut self, label: &str, data: &str) -> &mut Self {
        self.part(label, data.as_bytes())
    }
    /// Full hex digest.
    pub fn hex(&self) -> String {
        hex(&self.0.clone().finalize())
    }
    /// The first 16 hex digits: enough for a directory name.
    pub fn short(&self) -> String {
        self.hex()[..16].to_string()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Builds a directory under a temporary name next to `dest` and renames it into
/// place only when `fill` succeeded, so that a cache never holds a half-made entry.
/// A leftover temporary directory from an interrupted run is removed first.
/// A step that writes into a directory it does not own alone (a build directory): it
/// counts as done only when its stamp file holds the step's key. The stamp is removed
/// before the step runs and written after it succeeded, so a step that failed or was
/// interrupted half-way is redone by the next run, never taken as done.
pub struct Step {
    stamp: PathBuf,
    key: String,
}

impl Step {
    pub fn new(dir: &Path, name: &str, key: &str) -> Step {
        Step {
            stamp: dir.join(format!("harness.{name}.stamp")),
            key: key.to_string(),
        }
    }

    pub fn is_done(&self) -> bool {
        std::fs::read_to_string(&self.stamp).ok().as_deref() == Some(self.key.as_str())
    }

    /// Runs `f` unless the step is done; marks it done only if `f` succeeded.
    pub fn run(&self, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
        if self.is_done() {
            return Ok(());
        }
        match std::fs::remove_file(&self.stamp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        f()?;
        std::fs::write(&self.stamp, &self.key)?;
        Ok(())
    }
}

pub fn publish_dir(
    dest: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let parent = dest.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(parent)?;
    let name = dest
        .file_name()
        .expect("named")
        .to_string_lossy()
        .to_string();
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    // Leftovers of earlier interrupted runs of this entry.
    if let Ok(rd) = std::fs::read_dir(parent) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with(&format!(".{name}.partial-")) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    std::fs::create_dir_all(&tmp)?;
    match fill(&tmp) {
        Ok(()) => {
            std::fs::rename(&tmp, dest).map_err(|e| {
                anyhow::anyhow!("rename {} -> {}: {e}", tmp.display(), dest.display())
            })?;
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// An exclusive advisory lock (flock) on `path`, held until the value is dropped.
/// Two runs at once share caches: the source, series and build stages take this
/// lock, so they wait for each other instead of writing the same directory.
// reason: the file is held only for its flock, released when the Lock drops.
pub struct Lock(#[allow(dead_code)] std::fs::File);

pub fn lock(path: &Path) -> anyhow::Result<Lock> {
    use std::os::fd::AsRawFd;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!("    waiting for another run that holds {}", path.display());
        // SAFETY: as above, blocking this time.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            anyhow::bail!(
                "flock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(Lock(f))
}

/// `Some(message)` when the file system holding `path` is (nearly) full: less than
/// 16 MiB or 0.5 % free.
pub fn disk_full(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    let total = st.f_blocks as u64 * st.f_frsize as u64;
    (total > 0 && (free < 16 << 20 || free * 200 < total)).then(|| {
        format!(
            "no space left: the file system of {} has {} MiB free of {} MiB",
            path.display(),
            free >> 20,
            total >> 20
        )
    })
}

/// Runs a command with stdout and stderr captured together. A failure to start is
/// an error; a non-zero exit is a set-up error (exit 2) saying `what` failed and
/// quoting the last `tail` lines of the output. Returns the output.
pub fn run_captured(expr: duct::Expression, what: &str, tail: usize) -> anyhow::Result<String> {
    let out = expr
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .map_err(|e| anyhow::anyhow!("{what}: cannot run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let shown = lines[lines.len().saturating_sub(tail)..].join("\n");
        return Err(setup_error(format!(
            "{what} failed ({}):\n{shown}",
            out.status
        )));
    }
    Ok(text)
}

/// A new run directory under `base` named by the UTC time (`.2`, `.3`, ... when taken),
/// with `base/latest` pointing at it.
pub fn stamped_dir(base: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(base)?;
    let stamp = duct::cmd!("date", "-u", "+%Y%m%d-%H%M%S")
        .read()
        .unwrap_or_else(|_| "run".into());
    let mut dir = base.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}.{n}"));
    }
    std::fs::create_dir_all(&dir)?;
    let latest = base.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(dir.file_name().expect("named"), &latest);
    Ok(dir)
}

/// The workspace root (the xtask crate's parent).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Where caches and results live: `target/` of the workspace, or CARGO_TARGET_DIR.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

/// Number of parallel make jobs: cores + 1.
pub fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        + 1
}

/// One timed stage of the pipeline, printed as it starts and ends.
pub struct Stage {
    pub name: &'static str,
    start: Instant,
}

impl Stage {
    pub fn start(name: &'static str, what: impl fmt::Display) -> Stage {
        eprintln!("==> {name}: {what}");
        Stage {
            name,
            start: Instant::now(),
        }
    }
    pub fn done(self, timings: &mut Vec<(&'static str, Duration)>) {
        let d = self.start.elapsed();
        eprintln!("    {} done in {}", self.name, fmt_duration(d));
        timings.push((self.name, d));
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:04.1}s", (s / 60.0) as u64, s % 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_parts() {
        let a = Key::new("t").str("a", "bc").hex();
        let b = Key::new("t").str("ab", "c").hex();
        assert_ne!(a, b);
        assert_eq!(a, Key::new("t").str("a", "bc").hex());
    }

    #[test]
    fn a_failed_step_is_redone_and_a_done_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let step = Step::new(tmp.path(), "x", "key1");
        let mut runs = 0;
        let e = step.run(|| {
            runs += 1;
            anyhow::bail!("the tool exited 1")
        });
        assert!(e.is_err() && !step.is_done());
        step.run(|| {
            runs += 1;
            Ok(())
        })
        .unwrap();
        assert!(step.is_done());
        step.run(|| {
            runs += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, 2, "the failed run is redone, the done one is not");
        // Another key (another tree or config) is not done.
        assert!(!Step::new(tmp.path(), "x", "key2").is_done());
    }

    #[test]
    fn publish_dir_is_all_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("entry");
        let err = publish_dir(&dest, |d| {
            std::fs::write(d.join("half"), "x")?;
            anyhow::bail!("interrupted")
        });
        assert!(err.is_err());
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "no partial left"
        );
        publish_dir(&dest, |d| Ok(std::fs::write(d.join("whole"), "x")?)).unwrap();
        assert!(dest.join("whole").exists());
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        use std::os::fd::AsRawFd;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let held = lock(&p).unwrap();
        let other = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let r = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(
            r, 0,
            "a second exclusive lock must fail while the first is held"
        );
        drop(held);
        let r = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0);
    }

    #[test]
    fn run_captured_quotes_the_tail_of_a_failure() {
        let ok = run_captured(duct::cmd!("sh", "-c", "echo out; echo err >&2"), "t", 5).unwrap();
        assert_eq!(ok, "out\nerr\n");
        let e = run_captured(
            duct::cmd!("sh", "-c", "echo 1; echo 2; echo 3; exit 7"),
            "making x",
            2,
        )
        .unwrap_err();
        assert_eq!(exit_code_of(&e), Exit::Setup);
        let m = e.to_string();
        assert!(m.starts_with("making x failed (exit status: 7)"), "{m}");
        assert!(m.ends_with("\n2\n3"), "{m}");
    }

    #[test]
    fn exit_codes_follow_failures() {
        let e: anyhow::Error = Failure {
            exit: Exit::Crash,
            message: "panic".into(),
        }
        .into();
        assert_eq!(exit_code_of(&e.context("qemu")), Exit::Crash);
        assert_eq!(exit_code_of(&anyhow::anyhow!("plain")), Exit::Setup);
    }
}
