//! `--tree REPO --commits BASE..HEAD` on a real kernel repository: Debian's 6.1 source
//! committed as a base, the `pagemap-scan-6.1` series committed on top with `git am`,
//! and `check-series --tests` on the range giving the same verdicts, for the same
//! patch names, as on the series files; the repository's work tree, index and HEAD
//! untouched; a dirty tree and a range that does not exist refused with exit 2.
//!
//! Needs the unpacked Debian 6.1 source in the kernel cache (the main job of `.ci/run`
//! fetches it) and builds and boots kernels, so it is `#[ignore]`d; run it as
//! `flock /work/kernel-run.lock cargo test -p xtask --test gittree -- --ignored`.
//! The repository is made once (about 78,000 files: see the README's figures) and
//! kept in `target/git-test/`, remade when the series changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        // No background `gc --auto` after the 78,000-object commit: it would compete
        // with the kernel builds for the two cores.
        .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "harness test")
        .env("GIT_AUTHOR_EMAIL", "test@example.org")
        .env("GIT_COMMITTER_NAME", "harness test")
        .env("GIT_COMMITTER_EMAIL", "test@example.org")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn xtask(args: &[&str]) -> Output {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("running xtask");
    eprintln!(
        "--- xtask {} ({:.1} s, exit {:?})\n--- stdout\n{}\n--- stderr (tail)\n{}",
        args.join(" "),
        t.elapsed().as_secs_f64(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        tail(&String::from_utf8_lossy(&out.stderr), 40)
    );
    out
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The patch files of the series, in its order.
fn series_patches() -> Vec<PathBuf> {
    let dir = root().join("patches/pagemap-scan-6.1");
    std::fs::read_to_string(dir.join("series"))
        .expect("patches/pagemap-scan-6.1/series")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| dir.join(l))
        .collect()
}

/// Debian's unpacked 6.1 source in the kernel cache.
fn debian_6_1() -> PathBuf {
    let src = root().join("target/kernel/src");
    std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e} (run the v6.1 target first)", src.display()))
        .flatten()
        .map(|e| e.path().join("tree"))
        .find(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .is_some_and(|n| n.to_string_lossy().starts_with("linux-source-6.1_"))
                && p.join("Makefile").exists()
        })
        .unwrap_or_else(|| {
            panic!(
                "no linux-source-6.1_*/tree in {}: run `cargo xtask test-kernel --target v6.1` first",
                src.display()
            )
        })
}

/// The repository: base commit (tag `debian-6.1`) = Debian's tree, every file of it
/// (`git add -f`: the kernel's .gitignore must not drop a file the tarball has), and
/// one commit per patch (`git am`). Cached by the series' text; a half-made one
/// (no `ready` marker) is made again.
fn series_repo() -> PathBuf {
    let patches = series_patches();
    let mut id = String::new();
    for p in &patches {
        id.push_str(&std::fs::read_to_string(p).unwrap());
    }
    let stamp = format!("{:016x}", fxhash(&id));
    let top = root().join("target/git-test");
    let repo = top.join("linux-6.1-pagemap-scan");
    let ready = top.join("ready");
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(stamp.as_str()) {
        eprintln!("reusing {}", repo.display());
        return repo;
    }
    let _ = std::fs::remove_file(&ready);
    if repo.exists() {
        std::fs::remove_dir_all(&repo).unwrap();
    }
    std::fs::create_dir_all(&repo).unwrap();
    let src = debian_6_1();
    let t = Instant::now();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(&repo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", src.display(), repo.display());
    let copied = t.elapsed();
    git(&repo, &["init", "-q", "-b", "work"]);
    let t = Instant::now();
    git(&repo, &["add", "-f", "-A", "."]);
    let added = t.elapsed();
    let t = Instant::now();
    git(&repo, &["commit", "-q", "-m", "Debian linux-source-6.1"]);
    git(&repo, &["tag", "debian-6.1"]);
    let committed = t.elapsed();
    let t = Instant::now();
    let mut am = vec!["am", "-q", "--whitespace=nowarn"];
    let names: Vec<String> = patches.iter().map(|p| p.display().to_string()).collect();
    am.extend(names.iter().map(String::as_str));
    git(&repo, &am);
    let applied = t.elapsed();
    let files = git(&repo, &["ls-files"]).lines().count();
    eprintln!(
        "made {}: {files} files; cp -a {:.1} s, git add {:.1} s, git commit {:.1} s, git am of {} patches {:.1} s",
        repo.display(),
        copied.as_secs_f64(),
        added.as_secs_f64(),
        committed.as_secs_f64(),
        patches.len(),
        applied.as_secs_f64()
    );
    std::fs::write(&ready, &stamp).unwrap();
    repo
}

/// FNV-1a: a stable id of the series text (no crate needed for a cache marker).
fn fxhash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run directory a `check-series --tests` printed (`reports in DIR`).
fn matrix_of(o: &Output) -> serde_json::Value {
    let t = text(o);
    let dir = t
        .lines()
        .find_map(|l| l.strip_prefix("reports in "))
        .unwrap_or_else(|| panic!("no `reports in` line:\n{t}"));
    let m = std::fs::read_to_string(Path::new(dir.trim()).join("matrix.json")).unwrap();
    serde_json::from_str(&m).unwrap()
}

/// (applied, patch name without the ` (<commit>)` a range adds, verdicts) per prefix.
fn rows(m: &serde_json::Value) -> Vec<(u64, String, serde_json::Value)> {
    m["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["patch"].as_str().unwrap();
            let name = match name.rsplit_once(" (") {
                Some((n, id)) if id.ends_with(')') && id.len() == 13 => n,
                _ => name,
            };
            (
                p["applied"].as_u64().unwrap(),
                name.trim_start_matches("../pagemap-scan-6.1/").to_string(),
                p["verdicts"].clone(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the Debian 6.1 source; makes a 78,000-file repository"]
fn the_repository_holds_every_file_of_the_tarball_and_one_commit_per_patch() {
    let repo = series_repo();
    let src = debian_6_1();
    let walked = Command::new("find")
        .arg(".")
        .args(["-type", "f", "-o", "-type", "l"])
        .current_dir(&src)
        .output()
        .unwrap();
    let in_tarball = String::from_utf8_lossy(&walked.stdout).lines().count();
    let in_base = git(&repo, &["ls-tree", "-r", "--name-only", "debian-6.1"])
        .lines()
        .count();
    assert_eq!(
        in_base, in_tarball,
        "files in the base commit vs the tarball"
    );
    let subjects = git(
        &repo,
        &["log", "--reverse", "--format=%s", "debian-6.1..HEAD"],
    );
    let subjects: Vec<&str> = subjects.lines().collect();
    assert_eq!(subjects.len(), series_patches().len());
    assert_eq!(subjects[0], "mm/uffd: UFFD_FEATURE_WP_UNPOPULATED");
}

#[test]
#[ignore = "needs the Debian 6.1 source; makes a 78,000-file repository"]
fn a_dirty_tree_and_a_missing_range_are_exit_2_and_the_repository_is_left_alone() {
    let repo = series_repo();
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let branch = git(&repo, &["symbolic-ref", "HEAD"]);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "", "made clean");
    let repo_s = repo.to_str().unwrap();

    // A range that does not exist: exit 2, naming it; nothing built.
    let o = xtask(&[
        "check-series",
        "--target",
        "v6.1-pagemap-scan",
        "--tree",
        repo_s,
        "--commits",
        "debian-6.1..no-such-branch",
        "--tests",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("\"no-such-branch\" is not a commit"),
        "{}",
        text(&o)
    );

    // A dirty work tree: exit 2, naming the file; then restored.
    let f = repo.join("fs/proc/task_mmu.c");
    let orig = std::fs::read(&f).unwrap();
    let mut edited = orig.clone();
    edited.extend_from_slice(b"/* uncommitted */\n");
    std::fs::write(&f, &edited).unwrap();
    let o = xtask(&[
        "test-kernel",
        "--target",
        "v6.1-pagemap-scan",
        "--tree",
        repo_s,
        "--commits",
        "debian-6.1..HEAD",
    ]);
    std::fs::write(&f, &orig).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("uncommitted changes"), "{t}");
    assert!(t.contains("fs/proc/task_mmu.c"), "{t}");
    // Restoring the content leaves a stat-dirty index entry; git status refreshes it.
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");

    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head, "HEAD moved");
    assert_eq!(
        git(&repo, &["symbolic-ref", "HEAD"]),
        branch,
        "branch changed"
    );
}

#[test]
#[ignore = "needs the Debian 6.1 source, builds and boots kernels; run by hand (README)"]
fn a_branch_in_a_debian_6_1_repository_gives_the_series_verdicts() {
    let repo = series_repo();
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let branch = git(&repo, &["symbolic-ref", "HEAD"]);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "", "made clean");
    let repo_s = repo.to_str().unwrap();
    let from = (series_patches().len() - 1).to_string();

    // The last two prefixes of the range, then of the series files.
    let o = xtask(&[
        "check-series",
        "--target",
        "v6.1-pagemap-scan",
        "--tree",
        repo_s,
        "--commits",
        "debian-6.1..HEAD",
        "--tests",
        "--from",
        &from,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", tail(&text(&o), 60));
    let from_git = rows(&matrix_of(&o));
    assert_eq!(
        git(&repo, &["status", "--porcelain", "--ignored"]),
        "",
        "the run wrote into the repository's work tree"
    );
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head, "HEAD moved");
    assert_eq!(
        git(&repo, &["symbolic-ref", "HEAD"]),
        branch,
        "branch changed"
    );

    let o = xtask(&[
        "check-series",
        "--target",
        "v6.1-pagemap-scan",
        "--tests",
        "--from",
        &from,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", tail(&text(&o), 60));
    let from_files = rows(&matrix_of(&o));

    assert_eq!(from_git.len(), 2);
    for ((ga, gn, gv), (fa, fname, fv)) in from_git.iter().zip(&from_files) {
        assert_eq!(ga, fa);
        assert_eq!(gn, fname, "prefix {ga}: patch names differ");
        assert!(
            gv.as_object().is_some_and(|v| v.len() > 100),
            "prefix {ga}: too few verdicts: {gv}"
        );
        let (g, f) = (gv.as_object().unwrap(), fv.as_object().unwrap());
        let differ: Vec<String> = g
            .keys()
            .chain(f.keys())
            .filter(|k| g.get(*k) != f.get(*k))
            .map(|k| format!("{k}: git {:?}, files {:?}", g.get(k), f.get(k)))
            .collect();
        assert!(differ.is_empty(), "prefix {ga}: {differ:#?}");
    }
}
