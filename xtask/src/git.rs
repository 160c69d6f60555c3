//! A maintainer's own tree and branch: `--tree ~/linux --commits BASE..HEAD`.
//!
//! Each commit of the range is a patch of the series (`git format-patch`), applied to
//! the base commit's tree (`git archive`), both read from the object store only: the
//! user's work tree, index and refs are never touched. The base tree is cached by its
//! commit id like any other pristine source, so a run after an edit of the branch
//! reuses it and the per-version working copy, and only the changed patches' files
//! are rebuilt.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::series::{self, Series};
use crate::source::Tree;
use crate::util::{publish_dir, setup_error, target_dir};

/// A resolved commit range of a repository.
#[derive(Clone, Debug)]
pub struct Range {
    pub repo: PathBuf,
    /// As the user wrote it, for messages.
    pub spec: String,
    pub base: String,
    pub head: String,
    /// Oldest first: (commit id, subject).
    pub commits: Vec<(String, String)>,
}

fn git(repo: &Path, args: &[&str]) -> duct::Expression {
    duct::cmd("git", args)
        .dir(repo)
        // Never prompt, never page, never read the user's global hooks or config
        // beyond what git needs to read objects.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
}

fn read(repo: &Path, args: &[&str]) -> Result<String> {
    let out = git(repo, args)
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        anyhow::bail!("git {}: {}", args.join(" "), text.trim());
    }
    Ok(text)
}

/// Checks the repository and the range: a clean git tree, `BASE..HEAD` whose two ends
/// are commits, at least one commit, no merge commit.
pub fn resolve(repo: &Path, spec: &str) -> Result<Range> {
    let repo = repo
        .canonicalize()
        .map_err(|e| setup_error(format!("--tree {}: {e}", repo.display())))?;
    let err = |m: String| setup_error(format!("--commits {spec} in {}: {m}", repo.display()));
    read(&repo, &["rev-parse", "--git-dir"])
        .map_err(|_| setup_error(format!("--tree {}: not a git repository", repo.display())))?;
    let (a, b) = spec
        .split_once("..")
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.starts_with('.'))
        .ok_or_else(|| err("expected BASE..HEAD (two commits, two dots)".into()))?;
    let commit = |r: &str| -> Result<String> {
        read(
            &repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{r}^{{commit}}"),
            ],
        )
        .map(|s| s.trim().to_string())
        .map_err(|_| err(format!("{r:?} is not a commit of this repository")))
    };
    let (base, head) = (commit(a)?, commit(b)?);
    let dirty = read(&repo, &["status", "--porcelain", "--untracked-files=no"])?;
    if !dirty.trim().is_empty() {
        let first: Vec<&str> = dirty.lines().take(5).collect();
        return Err(setup_error(format!(
            "--tree {}: the work tree has uncommitted changes, which --commits would silently \
             leave out; commit or stash them first:\n    {}",
            repo.display(),
            first.join("\n    ")
        )));
    }
    let merges = read(&repo, &["rev-list", "--merges", &format!("{base}..{head}")])?;
    if let Some(m) = merges.lines().next() {
        return Err(err(format!(
            "commit {m} is a merge; a series is a linear range of commits"
        )));
    }
    let log = read(
        &repo,
        &[
            "log",
            "--reverse",
            "--format=%H %s",
            &format!("{base}..{head}"),
        ],
    )?;
    let commits: Vec<(String, String)> = log
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .collect();
    if commits.is_empty() {
        return Err(err(format!(
            "no commit in the range ({} is not an ancestor-side of {})",
            short(&head),
            short(&base)
        )));
    }
    Ok(Range {
        repo,
        spec: spec.to_string(),
        base,
        head,
        commits,
    })
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The range as a series: one patch per commit, named like `git format-patch` does.
pub fn series(r: &Range) -> Result<Series> {
    let mbox = read(
        &r.repo,
        &[
            "format-patch",
            "--stdout",
            "--no-signature",
            "--no-stat",
            "--full-index",
            "--no-color",
            &format!("{}..{}", r.base, r.head),
        ],
    )
    .map_err(|e| setup_error(format!("--commits {}: {e}", r.spec)))?;
    let mut patches = series::split_mbox(&mbox);
    if patches.len() != r.commits.len() {
        return Err(setup_error(format!(
            "--commits {}: git format-patch gave {} patches for {} commits (an empty commit?)",
            r.spec,
            patches.len(),
            r.commits.len()
        )));
    }
    for (p, (id, _)) in patches.iter_mut().zip(&r.commits) {
        p.name = format!("{} ({})", p.name, short(id));
    }
    Ok(Series {
        origin: PathBuf::from(format!("{} {}", r.repo.display(), r.spec)),
        patches,
    })
}

/// The base commit's tree, exported with `git archive` into the source cache (keyed
/// by the commit id, published atomically).
pub fn base_tree(r: &Range) -> Result<Tree> {
    base_tree_in(&target_dir().join("kernel/src"), r)
}

/// The series of a range written as an mbox in the cache (named by its two ends), so
/// a run's plan names a file that replays it.
pub fn series_file(r: &Range) -> Result<PathBuf> {
    let s = series(r)?;
    let dir = target_dir().join("kernel/git");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}..{}.mbox", short(&r.base), short(&r.head)));
    let text: String = s.patches.iter().map(|p| p.text.as_str()).collect();
    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::fs::write(tmp.path(), text)?;
    tmp.persist(&path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(path)
}

fn base_tree_in(cache: &Path, r: &Range) -> Result<Tree> {
    let entry = cache.join(format!("git-{}", r.base));
    let tree = entry.join("tree");
    if !tree.join("Makefile").exists() {
        eprintln!(
            "    git archive {} from {} (the base of {})",
            short(&r.base),
            r.repo.display(),
            r.spec
        );
        publish_dir(&entry, |tmp| {
            let dst = tmp.join("tree");
            std::fs::create_dir_all(&dst)?;
            git(&r.repo, &["archive", "--format=tar", &r.base])
                .pipe(duct::cmd!("tar", "-x", "-C", &dst))
                .run()
                .map_err(|e| setup_error(format!("git archive {}: {e}", r.base)))?;
            Ok(())
        })?;
    }
    if !tree.join("Kconfig").exists() {
        return Err(setup_error(format!(
            "--commits {}: the base commit {} holds no kernel tree (no top-level Kconfig)",
            r.spec,
            short(&r.base)
        )));
    }
    Ok(Tree {
        describe: format!("{} at {}", r.repo.display(), short(&r.base)),
        key: format!("git:{}", r.base),
        path: tree,
        local: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny repository: a "kernel" (Makefile + Kconfig) and two commits on top.
    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let g = |args: &[&str]| {
            git(p, args)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.org")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.org")
                .stdout_null()
                .stderr_null()
                .run()
                .unwrap();
        };
        g(&["init", "-q", "-b", "main"]);
        std::fs::write(p.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 12\n").unwrap();
        std::fs::write(p.join("Kconfig"), "").unwrap();
        std::fs::write(p.join("a.c"), "int a;\n").unwrap();
        g(&["add", "."]);
        g(&["commit", "-q", "-m", "base"]);
        g(&["tag", "base"]);
        std::fs::write(p.join("a.c"), "int a;\nint b;\n").unwrap();
        g(&["commit", "-q", "-am", "mm: add b"]);
        std::fs::write(p.join("a.c"), "int a;\nint b;\nint c;\n").unwrap();
        g(&["commit", "-q", "-am", "mm: add c"]);
        d
    }

    #[test]
    fn a_range_becomes_one_patch_per_commit() {
        let d = repo();
        let r = resolve(d.path(), "base..main").unwrap();
        assert_eq!(r.commits.len(), 2);
        let s = series(&r).unwrap();
        assert_eq!(s.patches.len(), 2);
        assert!(
            s.patches[0].name.starts_with("0001-mm: add b ("),
            "{}",
            s.patches[0].name
        );
        assert!(s.patches[1].text.contains("+int c;"));
    }

    #[test]
    fn bad_ranges_and_dirty_trees_are_set_up_errors_naming_the_problem() {
        let d = repo();
        let e = resolve(d.path(), "base..nosuch").unwrap_err();
        assert_eq!(crate::util::exit_code_of(&e) as u8, 2);
        assert!(e.to_string().contains("\"nosuch\" is not a commit"), "{e}");
        let e = resolve(d.path(), "base").unwrap_err();
        assert!(e.to_string().contains("expected BASE..HEAD"), "{e}");
        let e = resolve(d.path(), "main..base").unwrap_err();
        assert!(e.to_string().contains("no commit in the range"), "{e}");
        std::fs::write(d.path().join("a.c"), "edited\n").unwrap();
        let e = resolve(d.path(), "base..main").unwrap_err();
        assert!(e.to_string().contains("uncommitted changes"), "{e}");
        assert!(e.to_string().contains("a.c"), "{e}");
        let plain = tempfile::tempdir().unwrap();
        let e = resolve(plain.path(), "a..b").unwrap_err();
        assert!(e.to_string().contains("not a git repository"), "{e}");
    }

    #[test]
    fn the_base_tree_is_the_base_commit_and_the_user_tree_is_untouched() {
        let d = repo();
        let before = read(d.path(), &["status", "--porcelain"]).unwrap();
        let r = resolve(d.path(), "base..main").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let t = base_tree_in(cache.path(), &r).unwrap();
        assert_eq!(t.key, format!("git:{}", r.base));
        assert!(
            !t.local,
            "a commit is immutable: cached builds may be reused"
        );
        assert_eq!(
            std::fs::read_to_string(t.path.join("a.c")).unwrap(),
            "int a;\n"
        );
        // Cached: a second call does not export again.
        std::fs::write(t.path.join("marker"), "").unwrap();
        assert!(base_tree_in(cache.path(), &r)
            .unwrap()
            .path
            .join("marker")
            .exists());
        assert_eq!(read(d.path(), &["status", "--porcelain"]).unwrap(), before);
        assert_eq!(
            std::fs::read_to_string(d.path().join("a.c")).unwrap(),
            "int a;\nint b;\nint c;\n"
        );
    }
}
