//! Fault tests of `cargo xtask test-kernel`: each drives the real binary against the
//! real v6.12 kernel source and checks the exit code and the message.
//!
//! They need the v6.12 source (and, for the boot tests, its build), so they are
//! `#[ignore]`d in `cargo test --workspace` and run by `.ci/run` after the main job
//! has built the kernel: `cargo test -p xtask --test faults -- --ignored --test-threads 1`.

mod common;
use common::{serve_deb_6_12, ServedDeb};
use std::path::{Path, PathBuf};
use std::process::Output;

fn xtask(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("running xtask");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[ignore = "needs the v6.12 kernel source; run by .ci/run"]
fn patch_that_does_not_apply_exits_2_naming_patch_and_hunk() {
    let series = data("bad-series");
    let o = xtask(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--series",
            series.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("0002-fs-proc-task_mmu-a-hunk-written-for-another-tree.patch does not apply"),
        "{t}"
    );
    assert!(t.contains("fs/proc/task_mmu.c: Hunk #2 FAILED"), "{t}");
    // Nothing half-patched is left for a later run to take as done: the working copy
    // is changed in place (series.rs), so a copy holding the bad series' first patch
    // may remain, but without its `series-key`: the next run recreates it from the
    // pristine source (series::tests checks that recreation).
    let trees = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kernel/trees");
    let mut half = 0;
    for e in std::fs::read_dir(&trees).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        assert!(!n.contains("partial"), "left behind: {n}");
        let f = e.path().join("tree/fs/proc/task_mmu.c");
        if let Ok(src) = std::fs::read_to_string(&f) {
            if src.contains("Validate the requested features") {
                half += 1;
                assert!(
                    !e.path().join("series-key").exists(),
                    "a half-patched working copy is marked as done: {}",
                    e.path().display()
                );
            }
        }
    }
    assert!(half <= 1, "{half} half-patched copies");
}

#[test]
#[ignore = "needs the v6.12 kernel source; run by .ci/run"]
fn dropped_config_option_exits_2_naming_it() {
    let frag = data("dropped-option.config");
    let o = xtask(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--config",
            frag.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("did not survive olddefconfig"), "{t}");
    assert!(
        t.contains("CONFIG_MEM_SOFT_DIRTY (asked =y at configs/mm-selftests.config"),
        "{t}"
    );
    assert!(t.contains("depends on"), "the hint quotes Kconfig: {t}");
}

#[test]
#[ignore = "boots the v6.12 kernel; run by .ci/run"]
fn guest_panic_exits_3_quoting_the_panic() {
    let out = tempfile::tempdir().unwrap();
    // No init at that path: the kernel falls back to mounting a root fs, which
    // does not exist, and panics.
    let o = xtask(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--accel",
            "tcg",
            "--suites",
            "soft-dirty",
            "--append",
            "rdinit=/no-such-init",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3));
    let t = text(&o);
    assert!(t.contains("Kernel panic - not syncing"), "{t}");
    let summary = std::fs::read_to_string(out.path().join("summary.json")).unwrap();
    assert!(summary.contains("\"exit\": 3"), "{summary}");
    assert!(summary.contains("Kernel panic"), "{summary}");
}

#[test]
#[ignore = "boots the v6.1 kernel; run by .ci/run"]
fn hung_suite_times_out_and_the_run_goes_on() {
    let out = tempfile::tempdir().unwrap();
    // On v6.1 under TCG soft-dirty takes about 9 s and pagemap_ioctl skips at once
    // (no PAGEMAP_SCAN): with a 2 s limit the init must kill soft-dirty, report
    // TIMEOUT, and still run pagemap_ioctl after it.
    let o = xtask(
        &[
            "test-kernel",
            "--target",
            "v6.1",
            "--accel",
            "tcg",
            "--suites",
            "soft-dirty,pagemap_ioctl",
            "--suite-timeout",
            "2",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    let ktap = std::fs::read_to_string(out.path().join("results.ktap")).unwrap();
    assert!(
        ktap.contains("not ok 1 soft-dirty # TIMEOUT 2 seconds"),
        "{ktap}"
    );
    assert!(ktap.contains("ok 2 pagemap_ioctl # SKIP"), "{ktap}");
    assert!(ktap.contains("# exit=1"), "{ktap}");
    assert_eq!(
        o.status.code(),
        Some(1),
        "a timeout is an unexpected result"
    );
    let t = text(&o);
    assert!(
        t.contains("soft-dirty: TIMEOUT"),
        "the summary names it: {t}"
    );
}

#[test]
#[ignore = "boots the v6.12 kernel; run by .ci/run"]
fn broken_kvm_falls_back_to_tcg() {
    let dir = tempfile::tempdir().unwrap();
    // A QEMU that behaves like these machines' KVM: started with -accel kvm it
    // prints nothing and never ends; otherwise it is the real QEMU.
    let fake = dir.path().join("qemu-broken-kvm");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \" $* \" in *\" -accel kvm \"*) exec sleep 600;; esac\nexec qemu-system-x86_64 \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("run");
    let o = xtask(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--accel",
            "auto",
            "--kvm-deadline",
            "5",
            "--suites",
            "soft-dirty",
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            ("XTASK_QEMU", fake.to_str().unwrap()),
            ("XTASK_KVM_DEVICE", "/dev/null"),
        ],
    );
    let t = text(&o);
    assert!(t.contains("no console output within 5 s under KVM"), "{t}");
    assert!(t.contains("falling back to TCG"), "{t}");
    assert_eq!(o.status.code(), Some(0), "{t}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"accel\": \"tcg\""), "{summary}");
    // --accel kvm must fail clearly instead of falling back.
    let o = xtask(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--accel",
            "kvm",
            "--kvm-deadline",
            "5",
            "--suites",
            "soft-dirty",
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            ("XTASK_QEMU", fake.to_str().unwrap()),
            ("XTASK_KVM_DEVICE", "/dev/null"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("KVM does not work on this host"));
}

// ---- the harness under faults: signals, a held lock, bad targets.yaml values ----

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running `xtask` whose stderr lines arrive on a channel (and are echoed).
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("running xtask");
    let (tx, lines) = channel();
    for r in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                eprintln!("| {l}");
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
    }
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Running {
    /// Waits for a line containing `what`; panics after `limit`.
    fn wait_for(&mut self, what: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let hit = l.contains(what);
                self.seen.push(l);
                if hit {
                    return;
                }
            }
        }
        let _ = self.child.kill();
        panic!("no line with {what:?} within {limit:?}");
    }

    /// Sends `sig` to xtask alone (as a CI cancel or `timeout` does) and waits for
    /// its exit code; returns it and everything it printed.
    fn signal_and_wait(mut self, sig: i32, limit: Duration) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
                    self.seen.push(l);
                }
                return (st.code(), self.seen.join("\n"));
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("xtask still running {limit:?} after signal {sig}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Processes (other than ours) whose command line mentions `path`.
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().to_string();
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) {
                out.push(format!("{name}: {cmd}"));
            }
        }
    }
    out
}

/// Whether the cache lock at `path` can be taken now (nobody holds it).
fn lock_is_free(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    // SAFETY: flock on an fd we own; released when `f` closes.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn summary_of(dir: &Path) -> serde_json::Value {
    let s = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&s).unwrap()
}

fn shared_lock() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kernel/lock")
}

#[test]
#[ignore = "boots the v6.12 kernel; run by .ci/run"]
fn sigterm_during_boot_ends_qemu_and_records_the_interruption() {
    let out = tempfile::tempdir().unwrap();
    let mut r = spawn(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--accel",
            "tcg",
            "--suites",
            "soft-dirty",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    r.wait_for("==> boot+test", Duration::from_secs(600));
    // QEMU is up once the kernel writes to the console.
    let console = out.path().join("console.log");
    let start = Instant::now();
    while std::fs::metadata(&console).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no console output"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !processes_mentioning(out.path()).is_empty(),
        "QEMU runs with the run directory's initramfs"
    );
    let (code, text) = r.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("SIGTERM: stopping the run"), "{text}");
    let left = processes_mentioning(out.path());
    assert!(left.is_empty(), "left running: {left:?}");
    let s = summary_of(out.path());
    assert_eq!(s["exit"], 130);
    assert_eq!(s["stage"], "boot");
    assert_eq!(
        s["verdict"],
        "interrupted: interrupted by SIGTERM during stage boot"
    );
    assert!(std::fs::read_to_string(out.path().join("junit.xml"))
        .unwrap()
        .contains("interrupted by SIGTERM"));
}

#[test]
#[ignore = "configures and builds v6.12 in an empty build directory; run by .ci/run"]
fn sigint_during_build_ends_make_releases_the_lock_and_the_rerun_redoes_only_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let bd = dir.path().join("build");
    let args = |out: &str| -> Vec<String> {
        [
            "test-kernel",
            "--target",
            "v6.12",
            "--suites",
            "soft-dirty",
            "--build-dir",
            bd.to_str().unwrap(),
            "--out",
            dir.path().join(out).to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a = args("run1");
    let mut r = spawn(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    r.wait_for("==> build: bzImage", Duration::from_secs(600));
    // make and its compilers are busy now.
    std::thread::sleep(Duration::from_secs(5));
    assert!(!processes_mentioning(&bd).is_empty(), "make runs in {bd:?}");
    let (code, text) = r.signal_and_wait(libc::SIGINT, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    let left = processes_mentioning(&bd);
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(lock_is_free(&shared_lock()), "the cache lock is released");
    let s = summary_of(&dir.path().join("run1"));
    assert_eq!(
        (s["exit"].as_u64(), s["stage"].as_str()),
        (Some(130), Some("build"))
    );
    // Not published as built; configured, and stamped so.
    assert!(
        !bd.join("harness.stamp").exists(),
        "an interrupted build is not marked done"
    );
    assert!(bd.join("harness.config-stamp").exists());
    let configured = std::fs::metadata(bd.join(".config"))
        .unwrap()
        .modified()
        .unwrap();
    // The next run builds again without configuring again.
    let a = args("run2");
    let mut r = spawn(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    r.wait_for("==> build: bzImage", Duration::from_secs(300));
    let (code, text) = r.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    assert!(!text.contains("build: unchanged"), "{text}");
    // The kconfig step found its stamp and did not run olddefconfig again.
    assert_eq!(
        std::fs::metadata(bd.join(".config"))
            .unwrap()
            .modified()
            .unwrap(),
        configured,
        "the rerun configured again"
    );
    assert!(processes_mentioning(&bd).is_empty());
}

#[test]
#[ignore = "needs the host tools (a run checks them first); run by .ci/run"]
fn a_second_run_waits_for_the_lock_with_a_message_and_a_signal_ends_the_wait() {
    // Its own CARGO_TARGET_DIR: the lock and the run directory are the test's.
    let target = tempfile::tempdir().unwrap();
    let lock = target.path().join("kernel/lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&lock).unwrap();
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on an fd we own, held until `held` is dropped.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    }
    let out = target.path().join("run");
    let mut r = spawn(
        &[
            "test-kernel",
            "--target",
            "v6.12",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("CARGO_TARGET_DIR", target.path().to_str().unwrap())],
    );
    r.wait_for(
        "waiting for another run that holds",
        Duration::from_secs(120),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (code, text) = r.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    let s = summary_of(&out);
    assert_eq!(
        s["stage"], "source",
        "waiting for the lock is part of the source stage"
    );
    drop(held);
    assert!(lock_is_free(&lock));
}

/// A matrix that fails at once at its source should it get that far (a Debian
/// package that does not exist), with one value changed.
fn bad_matrix(dir: &Path, qemu: &str, suites: &str) -> PathBuf {
    let p = dir.join("targets.yaml");
    std::fs::write(
        &p,
        format!(
            "default: t\ntargets:\n  - name: t\n    source: {{ debian: no-such-linux-source-xyz }}\n    configs: [boot.config]\n    qemu: {{ {qemu} }}\n    order: [soft-dirty]\n    suites:\n{suites}"
        ),
    )
    .unwrap();
    p
}

#[test]
fn bad_targets_values_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ok_suites = "      soft-dirty: {}\n";
    let cases = [
        (
            "memory_mib: -512",
            ok_suites,
            "targets[0].qemu.memory_mib: invalid type: integer `-512`",
        ),
        (
            "memory_mib: 0",
            ok_suites,
            "targets[0] (t).qemu.memory_mib: must be > 0",
        ),
        (
            "cpus: 0",
            ok_suites,
            "targets[0] (t).qemu.cpus: must be > 0",
        ),
        (
            "timeout_s: 0",
            ok_suites,
            "targets[0] (t).qemu.timeout_s: must be > 0",
        ),
        (
            "hugepages: 4096",
            ok_suites,
            "targets[0] (t).qemu.memory_mib: 2048 MiB cannot hold hugepages (4096 x 2 MiB)",
        ),
        (
            "suite_timeout_s: 0",
            ok_suites,
            "targets[0] (t).qemu.suite_timeout_s: must be > 0",
        ),
        (
            "thp: sometimes",
            ok_suites,
            "thp: \"sometimes\" (always, madvise or never)",
        ),
        (
            "cpus: 2",
            "      soft-dirty: {}\n      soft-dirt: {}\n",
            "targets[0] (t).suites.soft-dirt: unknown suite",
        ),
        (
            "cpus: 2",
            "      soft-dirty: { fail: { 'Test x': '' } }\n",
            "\"Test x\" needs a reason",
        ),
    ];
    for (qemu, suites, want) in cases {
        let m = bad_matrix(dir.path(), qemu, suites);
        let r = spawn(
            &[
                "test-kernel",
                "--targets",
                m.to_str().unwrap(),
                "--out",
                dir.path().join("run").to_str().unwrap(),
            ],
            &[("CARGO_TARGET_DIR", dir.path().to_str().unwrap())],
        );
        let mut r = r;
        let start = Instant::now();
        let st = loop {
            if let Some(st) = r.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = r.child.kill();
                panic!("{qemu}: still running: the matrix was not refused");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = r.lines.recv_timeout(Duration::from_millis(300)) {
            r.seen.push(l);
        }
        let text = r.seen.join("\n");
        assert_eq!(st.code(), Some(2), "{qemu}: {text}");
        assert!(text.contains(want), "{qemu}: wanted {want:?} in:\n{text}");
        assert!(text.contains(m.to_str().unwrap()), "names the file: {text}");
    }
}

#[test]
#[ignore = "needs the linux-source-6.12 .deb of the main job; run by .ci/run"]
fn a_truncated_cached_download_is_refetched_and_sigterm_during_unpack_publishes_nothing() {
    let ServedDeb {
        path: deb,
        sha,
        url,
    } = serve_deb_6_12();
    // Its own cache (CARGO_TARGET_DIR), holding a truncated copy of the download.
    let target = tempfile::tempdir().unwrap();
    let cached = target
        .path()
        .join(format!("kernel/downloads/{sha}-linux-source-6.12.deb"));
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    let whole = std::fs::read(&deb).unwrap();
    std::fs::write(&cached, &whole[..whole.len() / 3]).unwrap();
    let yaml = target.path().join("targets.yaml");
    std::fs::write(
        &yaml,
        format!(
            "default: loop\ntargets:\n  - name: loop\n    source:\n      tarball: {{ url: '{url}', sha256: {sha} }}\n    configs: [boot.config]\n    suites:\n      soft-dirty: {{}}\n"
        ),
    )
    .unwrap();
    let env = [("CARGO_TARGET_DIR", target.path().to_str().unwrap())];
    let run = |out: &str| {
        spawn(
            &[
                "test-kernel",
                "--tarball",
                "--targets",
                yaml.to_str().unwrap(),
                "--out",
                target.path().join(out).to_str().unwrap(),
            ],
            &env,
        )
    };
    let mut r = run("run1");
    r.wait_for("is damaged", Duration::from_secs(120));
    r.wait_for("downloading http://127.0.0.1", Duration::from_secs(60));
    r.wait_for("unpacking", Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    let (code, text) = r.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    assert_eq!(summary_of(&target.path().join("run1"))["stage"], "source");
    assert!(
        processes_mentioning(target.path()).is_empty(),
        "dpkg-deb/tar ended with it"
    );
    // The download was completed and verified; the tree was not published.
    assert_eq!(std::fs::read(&cached).unwrap().len(), whole.len());
    assert!(!target.path().join(format!("kernel/src/url-{sha}")).exists());
    // The next run unpacks again without downloading again.
    let mut r = run("run2");
    r.wait_for("unpacking", Duration::from_secs(120));
    let (code, text) = r.signal_and_wait(libc::SIGINT, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    assert!(
        !text.contains("downloading") && !text.contains("damaged"),
        "{text}"
    );
}

#[test]
#[ignore = "mounts a tmpfs (root) and serves the linux-source-6.12 .deb of the main job; run by .ci/run"]
fn disk_full_under_the_target_dir_is_a_clear_source_error_and_leaves_nothing() {
    let ServedDeb { sha, url, .. } = serve_deb_6_12();
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs (needs root)");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _u = Unmount(mnt.path());
    let yaml = mnt.path().join("targets.yaml");
    std::fs::write(
        &yaml,
        format!(
            "default: loop\ntargets:\n  - name: loop\n    source:\n      tarball: {{ url: '{url}', sha256: {sha} }}\n    configs: [boot.config]\n    suites:\n      soft-dirty: {{}}\n"
        ),
    )
    .unwrap();
    let o = xtask(
        &[
            "test-kernel",
            "--tarball",
            "--targets",
            yaml.to_str().unwrap(),
        ],
        &[("CARGO_TARGET_DIR", mnt.path().to_str().unwrap())],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("stopped at stage source (exit 2)"), "{t}");
    assert!(t.contains("no space left: the file system of"), "{t}");
    // Nothing half-downloaded is kept; the run's reports are there.
    let kept: Vec<_> = std::fs::read_dir(mnt.path().join("kernel/downloads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(kept.is_empty(), "left in the cache: {kept:?}");
    let s = summary_of(&mnt.path().join("test-kernel/loop/latest"));
    assert_eq!(
        (s["exit"].as_u64(), s["stage"].as_str()),
        (Some(2), Some("source"))
    );
}
