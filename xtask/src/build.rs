//! Stages 3 and 4: configure (tinyconfig + fragments + olddefconfig, verified) and
//! build `bzImage` out of tree (`O=`), in a build directory keyed by source, series,
//! config and compiler. An unchanged rerun of an immutable tree builds nothing; a
//! developer's tree always runs an incremental `make`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::kconfig::{self, Config};
use crate::source::Tree;
use crate::util::{jobs, run_captured, setup_error, target_dir, Key};

pub struct BuildDir {
    pub dir: PathBuf,
    pub key: String,
    requests: BTreeMap<String, kconfig::Request>,
    config_key: String,
}

pub fn bzimage(dir: &Path) -> PathBuf {
    dir.join("arch/x86/boot/bzImage")
}

fn compiler_id() -> String {
    duct::cmd!("gcc", "--version")
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .read()
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown gcc".into())
}

/// Reads the fragments and works out the build directory for this tree and config.
pub fn plan(tree: &Tree, name: &str, fragments: &[PathBuf]) -> Result<BuildDir> {
    let mut texts = Vec::new();
    for f in fragments {
        let t = std::fs::read_to_string(f)
            .map_err(|e| setup_error(format!("kconfig: reading {}: {e}", f.display())))?;
        let root = crate::util::project_root();
        let shown = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        texts.push((shown, t));
    }
    let (requests, conflicts) = kconfig::merge(&texts)?;
    for c in &conflicts {
        eprintln!("    kconfig: conflict: {c}");
    }
    let mut ck = Key::new("config");
    for (o, t) in &texts {
        ck.str(o, t);
    }
    let cc = compiler_id();
    // One build directory per working copy and config: every series of a kernel
    // version builds incrementally in the same one (only what changed is rebuilt).
    let mut dk = Key::new("build-dir");
    // The pristine source is part of it: another source of the same version (a git
    // commit instead of Debian's package) has other files with older mtimes, which
    // make would not rebuild.
    let source = tree.key.split("+series:").next().unwrap_or(&tree.key);
    dk.str("path", &tree.path.display().to_string())
        .str("source", source)
        .str("config", &ck.hex())
        .str("cc", &cc);
    // What a finished build there was built from: an unchanged rerun builds nothing.
    let mut k = Key::new("build");
    k.str("tree", &tree.key)
        .str("config", &ck.hex())
        .str("cc", &cc);
    let dir = target_dir()
        .join("kernel/build")
        .join(format!("{name}-{}", dk.short()));
    Ok(BuildDir {
        dir,
        key: k.hex(),
        requests,
        config_key: ck.hex(),
    })
}

/// True when this build directory holds a finished build of an immutable tree.
pub fn up_to_date(tree: &Tree, bd: &BuildDir) -> bool {
    !tree.local
        && bzimage(&bd.dir).exists()
        && std::fs::read_to_string(bd.dir.join("harness.stamp"))
            .ok()
            .as_deref()
            == Some(bd.key.as_str())
}

fn make(tree: &Path, bd: &Path) -> duct::Expression {
    let mut args: Vec<String> = vec![
        "-C".into(),
        tree.display().to_string(),
        format!("O={}", bd.display()),
        "ARCH=x86_64".into(),
    ];
    if crate::hosttools::present("ccache") {
        args.push("CC=ccache gcc".into());
    }
    duct::cmd("make", args)
        // Reproducible builds: the same inputs give the same bzImage.
        .env("KBUILD_BUILD_TIMESTAMP", "1970-01-01 00:00:00 UTC")
        .env("KBUILD_BUILD_USER", "harness")
        .env("KBUILD_BUILD_HOST", "harness")
        .env("KBUILD_BUILD_VERSION", "1")
}

/// tinyconfig + fragments + olddefconfig; fails listing every dropped option.
pub fn configure(tree: &Tree, bd: &BuildDir) -> Result<()> {
    start_afresh_if_other_generation(tree, &bd.dir)?;
    std::fs::create_dir_all(&bd.dir)?;
    let stamp = bd.dir.join("harness.config-stamp");
    // The fragments and every Kconfig file of the tree: a series that changes a
    // Kconfig file is configured (and its requests verified) again.
    let config_key = format!("{}+{}", bd.config_key, kconfig_digest(&tree.path));
    if bd.dir.join(".config").exists()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(config_key.as_str())
    {
        return Ok(());
    }
    let _ = std::fs::remove_file(&stamp);
    let log = bd.dir.join("config.log");
    let run = |target: &str| -> Result<()> {
        let t = target.to_string();
        let expr = make(&tree.path, &bd.dir).before_spawn(move |c| {
            c.arg(&t);
            Ok(())
        });
        let r = run_captured(expr, &format!("kconfig: make {target}"), 15);
        if let Ok(text) = &r {
            std::fs::write(&log, text)?;
        }
        r.map(drop)
    };
    run("tinyconfig")?;
    let dot = bd.dir.join(".config");
    let mut cfg = Config::parse(&std::fs::read_to_string(&dot)?, ".config")?;
    cfg.apply(&bd.requests);
    std::fs::write(&dot, cfg.render())?;
    run("olddefconfig")?;
    let got = Config::parse(&std::fs::read_to_string(&dot)?, ".config")?;
    let dropped = kconfig::dropped(&bd.requests, &got);
    if !dropped.is_empty() {
        // Leave no .config that a later run could take for a verified one.
        let _ = std::fs::rename(&dot, bd.dir.join(".config.rejected"));
        return Err(kconfig::dropped_error(&tree.path, &dropped));
    }
    std::fs::write(&stamp, &config_key)?;
    Ok(())
}

/// The working copy's generation (series.rs): a build directory holds objects made
/// from one generation of the copy; a recreated copy has files whose mtimes may be
/// older than those objects, so the directory is emptied and built again (ccache
/// serves the compiler). A tree without a generation (a developer's tree built in
/// place) is tracked by make alone.
fn start_afresh_if_other_generation(tree: &Tree, dir: &Path) -> Result<()> {
    let Some(entry) = tree.path.parent() else {
        return Ok(());
    };
    let Ok(generation) = std::fs::read_to_string(entry.join("generation")) else {
        return Ok(());
    };
    let mark = dir.join("harness.generation");
    let built = std::fs::read_to_string(&mark).ok();
    if built.as_deref() == Some(generation.as_str()) {
        return Ok(());
    }
    if built.is_some() || dir.join(".config").exists() {
        eprintln!(
            "    build: the working copy was recreated; starting {} afresh",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&mark, generation)?;
    Ok(())
}

/// A digest of every `Kconfig*` file of a tree (about 1,700 files: well under a second).
fn kconfig_digest(tree: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !name.starts_with('.') && name != "Documentation" && name != "tools" {
                    walk(&e.path(), out);
                }
            } else if name.starts_with("Kconfig") {
                out.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(tree, &mut files);
    files.sort();
    let mut k = Key::new("kconfig-files");
    for f in &files {
        k.part(
            &f.strip_prefix(tree).unwrap_or(f).display().to_string(),
            &std::fs::read(f).unwrap_or_default(),
        );
    }
    k.hex()
}

/// Runs `make bzImage`, logging to build.log and showing progress.
pub fn build(tree: &Tree, bd: &BuildDir) -> Result<PathBuf> {
    let _ = std::fs::remove_file(bd.dir.join("harness.stamp"));
    let log_path = bd.dir.join("build.log");
    let mut log = std::fs::File::create(&log_path)?;
    let expr = make(&tree.path, &bd.dir)
        .before_spawn(|c| {
            c.arg(format!("-j{}", jobs())).arg("bzImage");
            Ok(())
        })
        .stderr_to_stdout();
    let reader = expr.reader().context("starting make")?;
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut compiled = 0usize;
    let mut last = String::new();
    let mut lines = BufReader::new(&reader).lines();
    use std::io::Write;
    let status = loop {
        match lines.next() {
            Some(Ok(line)) => {
                writeln!(log, "{line}")?;
                if line.trim_start().starts_with("CC ") {
                    compiled += 1;
                    last = line.trim().to_string();
                }
                if last_report.elapsed() > Duration::from_secs(30) {
                    eprintln!(
                        "    building: {} elapsed, {compiled} files compiled, last {last}",
                        crate::util::fmt_duration(start.elapsed())
                    );
                    last_report = Instant::now();
                }
            }
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    drop(lines);
    match status {
        Ok(()) => {}
        Err(_) => {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(setup_error(format!(
                "build: make bzImage failed (full log: {}):\n{}",
                log_path.display(),
                first_error(&text)
            )));
        }
    }
    let img = bzimage(&bd.dir);
    if !img.exists() {
        return Err(setup_error(format!(
            "build: make succeeded but {} is missing",
            img.display()
        )));
    }
    std::fs::write(bd.dir.join("harness.stamp"), &bd.key)?;
    eprintln!("    {compiled} files compiled");
    Ok(img)
}

/// The first compiler/linker error in a build log, with a little context.
pub fn first_error(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let idx = lines
        .iter()
        .position(|l| {
            l.contains("error:")
                || l.contains(": undefined reference")
                // A host program the build runs is missing (exit 127).
                || l.ends_with(": not found")
                || l.ends_with(": command not found")
        })
        .or_else(|| lines.iter().position(|l| l.contains("Error ")));
    match idx {
        Some(i) => lines[i.saturating_sub(2)..(i + 6).min(lines.len())].join("\n"),
        None => lines[lines.len().saturating_sub(15)..].join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_or_foreign_build_stamp_means_build_again() {
        let d = tempfile::tempdir().unwrap();
        let tree = Tree {
            describe: "t".into(),
            key: "k".into(),
            path: d.path().join("tree"),
            local: false,
        };
        let bd = BuildDir {
            dir: d.path().join("build"),
            key: "the-key".into(),
            requests: BTreeMap::new(),
            config_key: String::new(),
        };
        std::fs::create_dir_all(bzimage(&bd.dir).parent().unwrap()).unwrap();
        std::fs::write(bzimage(&bd.dir), b"kernel").unwrap();
        let stamp = bd.dir.join("harness.stamp");
        std::fs::write(&stamp, "the-key").unwrap();
        assert!(up_to_date(&tree, &bd));
        for bad in [&b"\0\xff garbage"[..], b"the-ke", b"the-key\n", b""] {
            std::fs::write(&stamp, bad).unwrap();
            assert!(!up_to_date(&tree, &bd), "{bad:?}");
        }
        std::fs::write(&stamp, "the-key").unwrap();
        std::fs::remove_file(bzimage(&bd.dir)).unwrap();
        assert!(!up_to_date(&tree, &bd), "stamped but no bzImage");
    }

    #[test]
    fn first_error_finds_the_compiler_error() {
        let log = "  CC      mm/a.o\n  CC      fs/proc/task_mmu.o\nfs/proc/task_mmu.c:12:5: error: 'x' undeclared\n   12 | x = 1;\nmake[4]: *** [x] Error 1\n";
        let e = first_error(log);
        assert!(e.starts_with("  CC      mm/a.o"));
        assert!(e.contains("task_mmu.c:12:5: error"));
    }

    #[test]
    fn first_error_names_a_missing_program() {
        let log = "  HOSTLD  fixdep\n/bin/sh: 1: awk: not found\nmake[2]: *** [scripts/Makefile.build:255: scripts/mod/empty.o] Error 127\n";
        assert!(first_error(log).contains("awk: not found"));
    }
}
