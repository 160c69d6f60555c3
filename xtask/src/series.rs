//! Stage 2: the patch series.
//!
//! A series is a directory with a `series` file (one patch per line, `#` comments,
//! quilt style) or an mbox (`git format-patch --stdout`, b4 output). It is applied to a
//! fresh copy of the pristine source, published only when every patch applied, so a
//! failed apply leaves no half-patched tree for a later run to pick up.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regex::Regex;

use crate::source::Tree;
use crate::util::{publish_dir, setup_error, target_dir, Key};

/// One patch: a name for messages and its text.
#[derive(Clone, Debug)]
pub struct Patch {
    pub name: String,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Series {
    /// Where it came from, for messages.
    pub origin: PathBuf,
    pub patches: Vec<Patch>,
}

impl Series {
    /// Loads a series directory or an mbox file.
    pub fn load(path: &Path) -> Result<Series> {
        if path.is_dir() {
            Self::load_dir(path)
        } else if path.is_file() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| setup_error(format!("series: reading {}: {e}", path.display())))?;
            let patches = split_mbox(&text);
            if patches.is_empty() {
                return Err(setup_error(format!(
                    "series: {} holds no patch (expected an mbox from git format-patch --stdout)",
                    path.display()
                )));
            }
            Ok(Series {
                origin: path.to_path_buf(),
                patches,
            })
        } else {
            Err(setup_error(format!(
                "series: {} does not exist",
                path.display()
            )))
        }
    }

    fn load_dir(dir: &Path) -> Result<Series> {
        let list = dir.join("series");
        let text = std::fs::read_to_string(&list)
            .map_err(|e| setup_error(format!("series: reading {}: {e}", list.display())))?;
        let mut patches = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            // quilt allows options after the name (-p1); we only support the default.
            let name = entry.split_whitespace().next().unwrap_or(entry);
            if entry.split_whitespace().count() > 1 && !entry.ends_with("-p1") {
                return Err(setup_error(format!(
                    "series: {}:{}: only -p1 patches are supported: {entry:?}",
                    list.display(),
                    i + 1
                )));
            }
            let p = dir.join(name);
            let text = std::fs::read_to_string(&p).map_err(|e| {
                setup_error(format!(
                    "series: {}:{}: patch {name}: {e}",
                    list.display(),
                    i + 1
                ))
            })?;
            if !text.contains("\n--- ") && !text.starts_with("--- ") {
                return Err(setup_error(format!(
                    "series: {}:{}: {name} contains no diff",
                    list.display(),
                    i + 1
                )));
            }
            patches.push(Patch {
                name: name.to_string(),
                text,
            });
        }
        if patches.is_empty() {
            return Err(setup_error(format!(
                "series: {} lists no patch",
                list.display()
            )));
        }
        Ok(Series {
            origin: dir.to_path_buf(),
            patches,
        })
    }

    /// No patch: the pristine source in the per-version working copy.
    pub fn empty() -> Series {
        Series {
            origin: PathBuf::from("(no series)"),
            patches: Vec::new(),
        }
    }

    /// Identity of the series content, in order.
    pub fn key(&self, k: &mut Key) {
        for p in &self.patches {
            k.str("patch", &p.text);
        }
    }
}

/// Splits a git-format-patch mbox into its messages, named after their subjects.
pub fn split_mbox(text: &str) -> Vec<Patch> {
    let sep = Regex::new(r"(?m)^From [0-9a-f]{40} |^From [^\s@]+@[^\s]+ ").unwrap();
    let starts: Vec<usize> = sep.find_iter(text).map(|m| m.start()).collect();
    let subject = Regex::new(r"(?m)^Subject: (?:\[[^\]]*\] ?)*(.*)$").unwrap();
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(text.len());
        let msg = &text[s..e];
        if !msg.contains("\n--- ") {
            continue; // a cover letter
        }
        let subj = subject
            .captures(msg)
            .map(|c| c[1].trim().to_string())
            .unwrap_or_else(|| "untitled".into());
        out.push(Patch {
            name: format!("{:04}-{subj}", out.len() + 1),
            text: msg.to_string(),
        });
    }
    out
}

/// Why a patch did not apply: the problems `patch` named, one per failed hunk or missing file; without any,
/// the last lines of its output.
pub fn failure_problems(output: &str) -> Vec<String> {
    let mut file = String::new();
    let mut problems = Vec::new();
    for line in output.lines() {
        if let Some(f) = line.strip_prefix("patching file ") {
            file = f.trim_matches(['\'', '"', '`']).to_string();
        } else if line.starts_with("Hunk #") && line.contains("FAILED") {
            problems.push(format!("{file}: {}", line.trim()));
        } else if line.contains("can't find file to patch") {
            problems.push("a file the patch changes does not exist in the tree".to_string());
        } else if line.starts_with("Reversed (or previously applied) patch detected") {
            problems.push(format!("{file}: already applied (reversed patch detected)"));
        } else if line.contains("malformed patch") || line.contains("Only garbage") {
            problems.push(line.trim().to_string());
        }
    }
    if problems.is_empty() {
        let lines: Vec<&str> = output.lines().collect();
        vec![lines[lines.len().saturating_sub(5)..].join("\n")]
    } else {
        problems
    }
}

/// A patch that does not apply, as data: reports carry the patch and its hunks.
#[derive(Debug, Clone)]
pub struct NotApplied {
    /// The patch's name in the series (`0002-...patch`).
    pub patch: String,
    /// What `patch` said, one entry per failed hunk (`file: Hunk #2 FAILED at 120.`).
    pub problems: Vec<String>,
}

impl std::fmt::Display for NotApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "series: {} does not apply:\n    {}",
            self.patch,
            self.problems.join("\n").replace('\n', "\n    ")
        )
    }
}

impl std::error::Error for NotApplied {}

/// Applies one patch to `dir` with GNU patch, strictly (no fuzz).
pub fn apply_one(dir: &Path, patch: &Patch) -> Result<()> {
    let out = duct::cmd!(
        "patch",
        "-p1",
        "--forward",
        "--batch",
        "--fuzz=0",
        "--no-backup-if-mismatch",
        "--reject-file=-",
        "-d",
        dir
    )
    .stdin_bytes(patch.text.as_bytes())
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run()
    .context("running patch")?;
    if out.status.success() {
        return Ok(());
    }
    // Not a `Failure`: any other error maps to exit 2 (util::exit_code_of), and
    // the reports downcast to this type for the patch and its hunks.
    Err(NotApplied {
        patch: patch.name.clone(),
        problems: failure_problems(&String::from_utf8_lossy(&out.stdout)),
    }
    .into())
}

/// Every path a patch reads or writes: `--- a/X`, `+++ b/X`, git's rename/copy lines.
pub fn touched_files(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("+++ b/")
                .or_else(|| l.strip_prefix("--- a/"))
                .or_else(|| l.strip_prefix("rename from "))
                .or_else(|| l.strip_prefix("rename to "))
                .or_else(|| l.strip_prefix("copy from "))
                .or_else(|| l.strip_prefix("copy to "))
        })
        .map(|p| p.split('\t').next().unwrap_or(p).trim().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A file's state before the working copy changes: its content and mtime.
struct Before {
    data: Option<Vec<u8>>,
    mtime: Option<std::time::SystemTime>,
}

fn before(path: &Path) -> Before {
    Before {
        data: std::fs::read(path).ok(),
        mtime: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    }
}

/// A patched tree for (source, series), at one stable path per kernel version.
///
/// The working copy lives at `target/kernel/trees/linux-<version>/tree`: ccache's
/// direct mode hashes the compiler's -I paths, so a stable path lets every series on
/// the same base hit the cache for the files it does not touch. It is made once from
/// the pristine source (hard links: GNU patch writes each changed file anew and
/// renames it, so the pristine tree is never written) and then brought from one
/// series to the next in place: the files either series touches are restored from the
/// pristine tree and the new series applied, and every file whose content came out
/// the same gets its old mtime back. The build directory, shared by every series of
/// that version, then rebuilds exactly the objects whose sources changed (the edit
/// loop: one changed patch of `fs/proc/task_mmu.c` costs one object and the link).
///
/// While the copy is changing its `series-key` is absent, so an interrupted or failed
/// update is never taken as done: the next run recreates the copy from scratch, with
/// a new `generation`, and a build directory made from another generation is started
/// afresh (its objects may come from files whose new copies look older).
pub fn patched_tree(src: &Tree, series: &Series) -> Result<Tree> {
    patched_tree_in(&target_dir().join("kernel/trees"), src, series)
}

fn patched_tree_in(trees: &Path, src: &Tree, series: &Series) -> Result<Tree> {
    let mut k = Key::new("patched-tree");
    k.str("source", &src.key);
    series.key(&mut k);
    let version = crate::source::kernel_version(&src.path);
    let slot = if src.local {
        format!("local-{}", Key::new("local").str("path", &src.key).short())
    } else {
        format!("linux-{version}")
    };
    let entry = trees.join(slot);
    let tree = entry.join("tree");
    let key_file = entry.join("series-key");
    let touched_file = entry.join("touched");
    let source_file = entry.join("source-key");
    let current = std::fs::read_to_string(&key_file).ok();
    let same_source =
        std::fs::read_to_string(&source_file).ok().as_deref() == Some(src.key.as_str());
    let wanted = k.hex();
    if !src.local && current.as_deref() == Some(wanted.as_str()) && tree.join("Makefile").exists() {
        // Unchanged.
    } else if !src.local && current.is_some() && same_source && tree.join("Makefile").exists() {
        // Another series on the same source: change only what differs.
        let mut paths: Vec<String> = std::fs::read_to_string(&touched_file)
            .unwrap_or_default()
            .lines()
            // A series that touched nothing (the base) left an empty line: not a path.
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let new_touched: Vec<String> = series
            .patches
            .iter()
            .flat_map(|p| touched_files(&p.text))
            .collect();
        paths.extend(new_touched.iter().cloned());
        paths.sort();
        paths.dedup();
        let old: Vec<(String, Before)> = paths
            .iter()
            .map(|p| (p.clone(), before(&tree.join(p))))
            .collect();
        std::fs::remove_file(&key_file)?;
        for p in &paths {
            let (w, pristine) = (tree.join(p), src.path.join(p));
            if w.symlink_metadata().is_ok() {
                std::fs::remove_file(&w).with_context(|| format!("series: restoring {p}"))?;
            }
            if pristine.exists() {
                // A copy, not a link: its mtime may be set below.
                std::fs::copy(&pristine, &w).with_context(|| format!("series: restoring {p}"))?;
            }
        }
        for p in &series.patches {
            eprintln!("    applying {}", p.name);
            apply_one(&tree, p)?;
        }
        let mut changed = 0;
        for (p, was) in &old {
            let w = tree.join(p);
            let now = std::fs::read(&w).ok();
            match (&was.data, now, was.mtime) {
                (Some(a), Some(b), Some(t)) if *a == b => {
                    std::fs::File::options()
                        .write(true)
                        .open(&w)
                        .and_then(|f| f.set_modified(t))
                        .with_context(|| format!("series: keeping the mtime of {p}"))?;
                }
                (None, None, _) => {}
                _ => changed += 1,
            }
        }
        eprintln!(
            "    working copy {}: {changed} file(s) changed from the previous series",
            tree.display()
        );
        let mut list = new_touched.join("\n");
        list.push('\n');
        std::fs::write(&touched_file, list)?;
        std::fs::write(&key_file, &wanted)?;
    } else {
        if entry.exists() {
            std::fs::remove_dir_all(&entry).with_context(|| {
                format!("removing the previous patched tree {}", entry.display())
            })?;
        }
        publish_dir(&entry, |tmp| {
            let dst = tmp.join("tree");
            // A local tree is copied for real (it may be edited while we run); cp -a
            // keeps mtimes, so make rebuilds only what the series changed.
            let flags = if src.local { "-a" } else { "-al" };
            let from = format!("{}/.", src.path.display());
            duct::cmd!("cp", flags, from, &dst)
                .run()
                .map_err(|e| setup_error(format!("series: copying the source: {e}")))?;
            let mut touched = Vec::new();
            for p in &series.patches {
                eprintln!("    applying {}", p.name);
                apply_one(&dst, p)?;
                touched.extend(touched_files(&p.text));
            }
            let mut list = touched.join("\n");
            list.push('\n');
            std::fs::write(tmp.join("touched"), list)?;
            std::fs::write(tmp.join("source-key"), &src.key)?;
            // A new copy: a build directory made from an earlier one cannot trust
            // its mtimes (build.rs starts it afresh).
            let generation = format!(
                "{:?}-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
                std::process::id()
            );
            std::fs::write(tmp.join("generation"), generation)?;
            std::fs::write(tmp.join("series-key"), &wanted)?;
            Ok(())
        })?;
    }
    Ok(Tree {
        describe: format!(
            "{} + {} ({} patches)",
            src.describe,
            series.origin.display(),
            series.patches.len()
        ),
        key: format!("{}+series:{}", src.key, wanted),
        path: tree,
        local: src.local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime};

    fn series_of(texts: &[&str]) -> Series {
        Series {
            origin: PathBuf::from("test"),
            patches: texts
                .iter()
                .enumerate()
                .map(|(i, t)| Patch {
                    name: format!("{:04}.patch", i + 1),
                    text: t.to_string(),
                })
                .collect(),
        }
    }

    fn mtime(p: &Path) -> SystemTime {
        std::fs::metadata(p).unwrap().modified().unwrap()
    }

    #[test]
    fn the_working_copy_changes_only_what_the_new_series_changes() {
        let d = tempfile::tempdir().unwrap();
        let pristine = d.path().join("pristine");
        std::fs::create_dir_all(&pristine).unwrap();
        std::fs::write(
            pristine.join("Makefile"),
            "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n",
        )
        .unwrap();
        std::fs::write(pristine.join("f.txt"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(pristine.join("g.txt"), "x\n").unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for f in ["Makefile", "f.txt", "g.txt"] {
            let file = std::fs::File::options()
                .write(true)
                .open(pristine.join(f))
                .unwrap();
            file.set_modified(old).unwrap();
        }
        let src = Tree {
            describe: "p".into(),
            key: "pristine-1".into(),
            path: pristine.clone(),
            local: false,
        };
        let trees = d.path().join("trees");
        let g = "--- a/g.txt\n+++ b/g.txt\n@@ -1 +1 @@\n-x\n+y\n";
        let a = patched_tree_in(&trees, &src, &series_of(&[GOOD])).unwrap();
        let f = a.path.join("f.txt");
        let gp = a.path.join("g.txt");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "one\nTWO\nthree\n");
        let f_a = mtime(&f);
        assert!(f_a > old);
        assert_eq!(mtime(&gp), old, "untouched files keep the pristine mtime");

        // A + g: f's content is unchanged, so its mtime is too; g is newer.
        let b = patched_tree_in(&trees, &src, &series_of(&[GOOD, g])).unwrap();
        assert_eq!(b.path, a.path, "one working copy per version");
        assert_ne!(b.key, a.key);
        assert_eq!(
            mtime(&f),
            f_a,
            "same content, same mtime: make rebuilds nothing for it"
        );
        assert_eq!(std::fs::read_to_string(&gp).unwrap(), "y\n");
        let g_b = mtime(&gp);
        assert!(g_b > old);

        // g only: f goes back to the pristine text, with a new mtime (make must see
        // it as changed); g keeps its mtime.
        std::thread::sleep(Duration::from_millis(20));
        patched_tree_in(&trees, &src, &series_of(&[g])).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "one\ntwo\nthree\n");
        assert!(
            mtime(&f) > f_a,
            "changed content must look newer than its objects"
        );
        assert_eq!(mtime(&gp), g_b);

        // The pristine tree is never written.
        assert_eq!(
            std::fs::read_to_string(pristine.join("f.txt")).unwrap(),
            "one\ntwo\nthree\n"
        );
        assert_eq!(
            std::fs::read_to_string(pristine.join("g.txt")).unwrap(),
            "x\n"
        );
        assert_eq!(mtime(&pristine.join("f.txt")), old);

        // A series that fails leaves no key: the next run rebuilds the copy whole.
        let e = patched_tree_in(&trees, &src, &series_of(&[g, BAD])).unwrap_err();
        assert!(e.to_string().contains("0002.patch does not apply"), "{e}");
        assert!(!trees.join("linux-6.1.0/series-key").exists());
        let generation = std::fs::read_to_string(trees.join("linux-6.1.0/generation")).unwrap();
        let again = patched_tree_in(&trees, &src, &series_of(&[GOOD])).unwrap();
        assert_ne!(
            std::fs::read_to_string(trees.join("linux-6.1.0/generation")).unwrap(),
            generation,
            "a recreated copy is a new generation: its build directory starts afresh"
        );
        assert_eq!(
            std::fs::read_to_string(again.path.join("g.txt")).unwrap(),
            "x\n"
        );
        assert_eq!(
            std::fs::read_to_string(again.path.join("f.txt")).unwrap(),
            "one\nTWO\nthree\n"
        );
    }

    #[test]
    fn touched_files_reads_old_new_and_renamed_paths() {
        let p = "--- a/fs/proc/task_mmu.c\n+++ b/fs/proc/task_mmu.c\n@@\n--- /dev/null\n+++ b/tools/x.c\t2020\n--- a/gone.c\n+++ /dev/null\nrename from a.h\nrename to b.h\n";
        assert_eq!(
            touched_files(p),
            ["a.h", "b.h", "fs/proc/task_mmu.c", "gone.c", "tools/x.c"]
        );
    }

    const GOOD: &str = "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n";
    const BAD: &str = "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n one\n-zwei\n+TWO\n three\n";

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f.txt"), "one\ntwo\nthree\n").unwrap();
        d
    }

    #[test]
    fn series_file_with_comments() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("series"), "# c\n\n0001-a.patch # why\n").unwrap();
        std::fs::write(d.path().join("0001-a.patch"), GOOD).unwrap();
        let s = Series::load(d.path()).unwrap();
        assert_eq!(s.patches.len(), 1);
        assert_eq!(s.patches[0].name, "0001-a.patch");
    }

    #[test]
    fn missing_patch_names_the_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("series"), "# c\n0002-gone.patch\n").unwrap();
        let e = Series::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("series:2") && e.contains("0002-gone.patch"),
            "{e}"
        );
    }

    #[test]
    fn failed_hunk_is_named() {
        let t = tree();
        let p = Patch {
            name: "0003-bad.patch".into(),
            text: BAD.into(),
        };
        let e = apply_one(t.path(), &p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("0003-bad.patch"), "{msg}");
        assert!(msg.contains("f.txt: Hunk #1 FAILED"), "{msg}");
        assert_eq!(crate::util::exit_code_of(&e), crate::util::Exit::Setup);
        // Strict: the file is untouched.
        assert_eq!(
            std::fs::read_to_string(t.path().join("f.txt")).unwrap(),
            "one\ntwo\nthree\n"
        );
    }

    #[test]
    fn hardlinked_copy_leaves_pristine_alone() {
        let t = tree();
        let copy = tempfile::tempdir().unwrap();
        let dst = copy.path().join("c");
        duct::cmd!("cp", "-al", format!("{}/.", t.path().display()), &dst)
            .run()
            .unwrap();
        let before = std::fs::metadata(t.path().join("f.txt")).unwrap().ino();
        assert_eq!(before, std::fs::metadata(dst.join("f.txt")).unwrap().ino());
        apply_one(
            &dst,
            &Patch {
                name: "good".into(),
                text: GOOD.into(),
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("f.txt")).unwrap(),
            "one\nTWO\nthree\n"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("f.txt")).unwrap(),
            "one\ntwo\nthree\n"
        );
    }

    #[test]
    fn mbox_split_skips_cover_letter() {
        let mbox = format!(
            "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
             Subject: [PATCH 0/2] cover\n\nhello\n\
             From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n\
             Subject: [PATCH 1/2] fs: first\n\n---\n{GOOD}\
             From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001\n\
             Subject: [PATCH v2 2/2] mm: second\n\n---\n{GOOD}"
        );
        let p = split_mbox(&mbox);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "0001-fs: first");
        assert_eq!(p[1].name, "0002-mm: second");
    }

    #[test]
    fn reversed_patch_is_reported() {
        let t = tree();
        let good = Patch {
            name: "good".into(),
            text: GOOD.into(),
        };
        apply_one(t.path(), &good).unwrap();
        let e = apply_one(t.path(), &good).unwrap_err().to_string();
        assert!(e.contains("already applied"), "{e}");
    }
}
