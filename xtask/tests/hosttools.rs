//! The host-tool list is complete, and a failed step is redone.
//!
//! Both tests build and boot the default target, so they are `#[ignore]`d in
//! `cargo test --workspace` and run by `.ci/run` after the main job (which leaves the
//! source, the working copy and a warm ccache): `cargo test -p xtask --test hosttools
//! -- --ignored --test-threads 1`. Each builds in a build directory of its own
//! (`--build-dir`), from empty: ccache serves the compiler, but every other program of
//! the build runs.
//!
//! `HOSTTOOLS_DROP=<package>` leaves that package out of the reduced PATH, to see the
//! completeness test fail by name (e.g. `HOSTTOOLS_DROP=rsync`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> tempfile::TempDir {
    let base = root().join("target/hosttools-tests");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap()
}

fn xtask(args: &[&str], path: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("PATH", path)
        .output()
        .expect("running xtask");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Programs a failed build says it could not find: the shells', make's and env's
/// ways of saying so.
fn not_found(output: &str) -> Vec<String> {
    let shell = regex::Regex::new(
        r"(?m)^\S*?:(?: line \d+:| \d+:)? '?([A-Za-z0-9_.+-]+)'?: (?:command )?not found",
    )
    .unwrap();
    let exec = regex::Regex::new(
        r"(?m)(?:^|/)(?:make(?:\[\d+\])?|env|xargs|execvp)[^:\n]*: '?([A-Za-z0-9_.+-]+)'?: No such file or directory",
    )
    .unwrap();
    let mut v: Vec<String> = shell
        .captures_iter(output)
        .chain(exec.captures_iter(output))
        .map(|c| c[1].to_string())
        .collect();
    // "cannot run: No such file or directory" is the harness's own spawn failing.
    let own =
        regex::Regex::new(r"(?m)^error: (.*): cannot run: No such file or directory").unwrap();
    v.extend(
        own.captures_iter(output)
            .map(|c| format!("(the harness's step: {})", &c[1])),
    );
    v.sort();
    v.dedup();
    v
}

#[test]
fn not_found_names_the_program() {
    let log = "  INSTALL ./usr/include\n/bin/sh: 1: rsync: not found\nmake[1]: *** [Makefile:1286: headers_install] Error 127\nmake: pahole: No such file or directory\nscripts/x.sh: line 3: zstd: command not found\ncat: foo.h: No such file or directory\n";
    assert_eq!(not_found(log), ["pahole", "rsync", "zstd"]);
    assert!(not_found("all fine\n").is_empty());
}

#[test]
#[ignore = "builds and boots the default target with PATH reduced to the declared tools; run by .ci/run"]
fn declared_host_tools_build_and_boot_the_default_target() {
    let tmp = scratch("reduced-path");
    let bin = tmp.path().join("bin");
    let mut args = vec![
        "host-tools".to_string(),
        "--reduced-path".into(),
        bin.display().to_string(),
    ];
    let dropped = std::env::var("HOSTTOOLS_DROP").unwrap_or_default();
    for d in dropped.split(',').filter(|d| !d.is_empty()) {
        args.extend(["--drop".into(), d.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = xtask(&args, &std::env::var("PATH").unwrap());
    assert_eq!(o.status.code(), Some(0), "host-tools --reduced-path failed");
    let build = tmp.path().join("build");
    let o = xtask(
        &["test-kernel", "--build-dir", build.to_str().unwrap()],
        bin.to_str().unwrap(),
    );
    // The harness quotes the build's first error; the whole log says more.
    let log = std::fs::read_to_string(build.join("build.log")).unwrap_or_default();
    let t = format!("{}{log}", text(&o));
    let missing = not_found(&t);
    assert!(
        missing.is_empty(),
        "undeclared host program(s) {missing:?}: add them to xtask/src/hosttools.rs (TOOLS, or BASE_PACKAGES)"
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "the default target did not pass with PATH reduced to the declared tools"
    );
}

/// Every file under `dir` with a hash of its contents, by relative path.
fn tree_digest(dir: &Path) -> Vec<(String, u64)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).unwrap_or_default().hash(&mut h);
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, h.finish()));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

#[test]
#[ignore = "builds and boots the default target twice; run by .ci/run after the main job"]
fn a_failed_headers_install_is_redone_by_the_next_run() {
    let tmp = scratch("injected-failure");
    let build = tmp.path().join("build");
    let real_path = std::env::var("PATH").unwrap();
    let real_rsync = std::env::split_paths(&real_path)
        .map(|d| d.join("rsync"))
        .find(|p| p.is_file())
        .expect("rsync is installed (a declared host tool)");
    let args = [
        "test-kernel",
        "--build-dir",
        build.to_str().unwrap(),
        "--suites",
        "pagemap_ioctl.c",
    ];

    // 1. headers_install fails: a tool it runs exits non-zero.
    let fake = tmp.path().join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    write_script(
        &fake.join("rsync"),
        "#!/bin/sh\necho 'rsync: injected failure' >&2\nexit 1\n",
    );
    let o = xtask(&args, &format!("{}:{real_path}", fake.display()));
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an injected failure is a set-up error"
    );
    assert!(
        t.contains("make headers_install failed") && t.contains("injected failure"),
        "{t}"
    );

    // 2. The rerun redoes the step (the spy records that rsync ran) and passes.
    let spy = tmp.path().join("spy");
    std::fs::create_dir_all(&spy).unwrap();
    let calls = tmp.path().join("rsync-calls");
    write_script(
        &spy.join("rsync"),
        &format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec {} \"$@\"\n",
            calls.display(),
            real_rsync.display()
        ),
    );
    let o = xtask(&args, &format!("{}:{real_path}", spy.display()));
    assert_eq!(o.status.code(), Some(0), "the rerun passes");
    assert!(
        calls.exists(),
        "the rerun took the failed headers_install as done: rsync never ran"
    );

    // 3. Its result is a clean run's: the same headers as a build directory of the
    // same tree whose headers_install never failed (the main job's).
    let stamp = std::fs::read_to_string(build.join("harness.headers_install.stamp")).unwrap();
    let clean = std::fs::read_dir(root().join("target/kernel/build"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|d| {
            std::fs::read_to_string(d.join("harness.headers_install.stamp"))
                .ok()
                .as_deref()
                == Some(stamp.as_str())
        })
        .expect("a clean build of the default target (run `cargo xtask test-kernel` first)");
    let ours = tree_digest(&build.join("usr/include"));
    assert!(ours.len() > 500, "{} headers installed", ours.len());
    assert_eq!(
        ours,
        tree_digest(&clean.join("usr/include")),
        "headers differ from the clean run's in {}",
        clean.display()
    );
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
