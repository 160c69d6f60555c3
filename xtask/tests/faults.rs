//! Fault tests of `cargo xtask test-kernel`: each drives the real binary against the
//! real v6.12 kernel source and checks the exit code and the message.
//!
//! They need the v6.12 source (and, for the boot tests, its build), so they are
//! `#[ignore]`d in `cargo test --workspace` and run by `.ci/run` after the main job
//! has built the kernel: `cargo test -p xtask --test faults -- --ignored --test-threads 1`.

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
