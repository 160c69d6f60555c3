//! `cargo xtask check-series`: bisectability and style of a series.
//!
//! Builds the kernel after each patch of the series, in one working copy and one
//! build directory (so each step is an incremental build, with ccache), reports the
//! first patch that breaks the build, and runs the tree's `scripts/checkpatch.pl` on
//! every patch: any ERROR fails the check, WARNINGs are listed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::build;
use crate::plan::{Overrides, RunPlan};
use crate::series;
use crate::source;
use crate::stages;
use crate::targets::Target;
use crate::util::{fmt_duration, publish_dir, setup_error, target_dir, Exit};

#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Target whose source, series and configs are used (default: the default target).
    #[arg(long)]
    pub target: Option<String>,
    /// Check this series instead of the target's.
    #[arg(long)]
    pub series: Option<PathBuf>,
    /// Only run checkpatch, no builds.
    #[arg(long)]
    pub checkpatch_only: bool,
}

/// Files a patch creates or changes (`+++ b/<path>`).
pub fn touched_files(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("+++ b/"))
        .map(|p| p.split('\t').next().unwrap_or(p).trim().to_string())
        .collect()
}

/// checkpatch's verdict line: (errors, warnings).
pub fn checkpatch_totals(output: &str) -> Option<(u32, u32)> {
    let line = output.lines().find(|l| l.starts_with("total: "))?;
    let mut it = line.split_whitespace();
    let mut errors = None;
    let mut warnings = None;
    while let Some(w) = it.next() {
        if let Some(n) = it.clone().next() {
            if n.starts_with("error") {
                errors = w.parse().ok();
            } else if n.starts_with("warning") {
                warnings = w.parse().ok();
            }
        }
    }
    Some((errors?, warnings?))
}

pub fn main(o: Options, target: &Target) -> Result<Exit> {
    let plan = RunPlan::resolve(
        target,
        &Overrides {
            series: o.series.clone(),
            ..Default::default()
        },
    )?;
    let Some(series) = stages::load_series(&plan)? else {
        return Err(setup_error(format!(
            "check-series: target {} has no series; pass --series",
            target.name
        )));
    };
    crate::hosttools::ensure()?;
    let _lock = stages::lock_caches()?;
    let pristine = stages::fetch_source(&plan)?;
    let version = source::kernel_version(&pristine.path);
    eprintln!(
        "==> check-series: {} ({} patches) on {}",
        series.origin.display(),
        series.patches.len(),
        pristine.describe
    );

    // checkpatch first: it is quick and needs no build.
    let mut problems = Vec::new();
    let checkpatch = pristine.path.join("scripts/checkpatch.pl");
    for p in &series.patches {
        let out = duct::cmd!(
            "perl",
            &checkpatch,
            "--no-tree",
            "--no-summary-file",
            "--show-types",
            "-"
        )
        .stdin_bytes(p.text.as_bytes())
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .context("running checkpatch.pl")?;
        let text = String::from_utf8_lossy(&out.stdout);
        match checkpatch_totals(&text) {
            Some((e, w)) => {
                eprintln!("    checkpatch {:<70} {e} errors, {w} warnings", p.name);
                for l in text
                    .lines()
                    .filter(|l| l.starts_with("ERROR:") || l.starts_with("WARNING:"))
                {
                    eprintln!("        {l}");
                }
                if e > 0 {
                    problems.push(format!("checkpatch: {} has {e} ERROR(s)", p.name));
                }
            }
            None => problems.push(format!("checkpatch: no verdict for {}:\n{text}", p.name)),
        }
    }
    if o.checkpatch_only {
        return finish(problems);
    }

    // One working copy, recreated fresh; files the series touches are rewritten so
    // that make sees them as newer than any object built from a patched version.
    let work = target_dir()
        .join("kernel/bisect")
        .join(format!("linux-{version}"));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    publish_dir(&work, |tmp| {
        let from = format!("{}/.", pristine.path.display());
        duct::cmd!("cp", "-al", from, tmp.join("tree")).run()?;
        for f in series.patches.iter().flat_map(|p| touched_files(&p.text)) {
            let path = tmp.join("tree").join(&f);
            if let Ok(data) = std::fs::read(&path) {
                std::fs::remove_file(&path)?;
                std::fs::write(&path, data)?;
            }
        }
        Ok(())
    })?;
    let tree = source::Tree {
        describe: format!("bisect copy of {}", pristine.describe),
        key: format!("bisect:{}", pristine.key),
        path: work.join("tree"),
        local: true,
    };
    let bd = build::plan(&tree, &format!("bisect-{version}"), &plan.fragments)?;
    build::configure(&tree, &bd)?;
    let steps = std::iter::once(None).chain(series.patches.iter().map(Some));
    for (i, p) in steps.enumerate() {
        let what = p.map(|p| p.name.as_str()).unwrap_or("(base, no patch)");
        if let Some(p) = p {
            series::apply_one(&tree.path, p)?;
        }
        let t = Instant::now();
        match build::build(&tree, &bd) {
            Ok(_) => eprintln!(
                "    [{i:>2}/{}] builds  {what} ({})",
                series.patches.len(),
                fmt_duration(t.elapsed())
            ),
            Err(e) => {
                eprintln!("    [{i:>2}/{}] BREAKS  {what}", series.patches.len());
                problems.push(format!(
                    "build: the first patch that breaks the build is {what}:\n{e:#}"
                ));
                break;
            }
        }
    }
    finish(problems)
}

fn finish(problems: Vec<String>) -> Result<Exit> {
    if problems.is_empty() {
        eprintln!("==> check-series: every prefix builds, checkpatch has no ERROR");
        Ok(Exit::Ok)
    } else {
        Err(setup_error(problems.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_files_reads_new_paths() {
        let p = "--- a/fs/proc/task_mmu.c\n+++ b/fs/proc/task_mmu.c\n@@\n--- /dev/null\n+++ b/tools/x.c\t2020\n";
        assert_eq!(touched_files(p), ["fs/proc/task_mmu.c", "tools/x.c"]);
    }

    #[test]
    fn checkpatch_totals_parse() {
        assert_eq!(
            checkpatch_totals("x\ntotal: 0 errors, 3 warnings, 120 lines checked\n"),
            Some((0, 3))
        );
        assert_eq!(
            checkpatch_totals("total: 2 errors, 0 warnings, 1 checks, 5 lines checked"),
            Some((2, 0))
        );
        assert_eq!(checkpatch_totals("garbage"), None);
    }
}
