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
use crate::series::Series;
use crate::source;
use crate::stages;
use crate::targets::Target;
use crate::util::{fmt_duration, setup_error, Exit};

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
    /// Also boot every prefix and run the target's Rust suites: the per-patch verdict
    /// matrix (which patch made or broke which test). Exit 1 when a test that passed
    /// at an earlier prefix does not pass at a later one.
    #[arg(long)]
    pub tests: bool,
    /// Binary search for the first patch where this test (`name` or `suite: name`)
    /// fails: about log2(N) builds and boots. With --tests, the bisection runs first
    /// and the matrix reuses its prefixes: each prefix is built and booted once.
    #[arg(long)]
    pub first_bad: Option<String>,
    /// Start at this prefix (patches applied; 0 = the base).
    #[arg(long)]
    pub from: Option<usize>,
    /// Stop at this prefix (default: the whole series).
    #[arg(long)]
    pub to: Option<usize>,
    /// Only these suites (comma separated), with --tests / --first-bad.
    #[arg(long, value_delimiter = ',')]
    pub suites: Vec<String>,
    /// Use this git repository (with --commits) instead of the target's source.
    #[arg(long, requires = "commits")]
    pub tree: Option<PathBuf>,
    /// With --tree: the commits BASE..HEAD are the series.
    #[arg(long, requires = "tree", conflicts_with = "series")]
    pub commits: Option<String>,
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
            tree: o.tree.clone(),
            commits: o.commits.clone(),
            suites: o.suites.clone(),
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
    let n = series.patches.len();
    let (from, to) = (o.from.unwrap_or(0), o.to.unwrap_or(n));
    if from > to || to > n {
        return Err(setup_error(format!(
            "check-series: --from {from} --to {to}: the series has {n} patches (0 <= from <= to <= {n})"
        )));
    }
    let lock = stages::lock_caches()?;
    let pristine = stages::fetch_source(&plan)?;
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

    // The per-patch modes run the tests whatever checkpatch said, and then fail on
    // its ERRORs as plain check-series does (exit 2): with a prefix that does not
    // build also exit 2, `--tests` checks everything check-series checks.
    if o.tests || o.first_bad.is_some() {
        if !problems.is_empty() {
            eprintln!(
                "    (checkpatch: {} problem(s), listed above; the tests run anyway)",
                problems.len()
            );
        }
        drop(lock);
        let exit = match (&o.first_bad, o.tests) {
            (Some(test), true) => {
                crate::per_patch::matrix_and_first_bad(&plan, &series, test, from, to)?
            }
            (Some(test), false) => crate::per_patch::first_bad(&plan, &series, test, from, to)?,
            (None, _) => crate::per_patch::matrix(&plan, &series, from, to)?,
        };
        if !problems.is_empty() {
            return Err(setup_error(format!(
                "check-series: the tests ran (their verdict: exit {}), but {}",
                exit as u8,
                problems.join("\n")
            )));
        }
        return Ok(exit);
    }
    if !problems.is_empty() {
        return finish(problems);
    }

    // Every prefix in the per-version working copy and its build directory, the same
    // ones test-kernel uses: each step is an incremental make, and the last prefix
    // leaves the build test-kernel of the whole series reuses.
    for i in from..=to {
        let what = if i == 0 {
            "(base, no patch)"
        } else {
            series.patches[i - 1].name.as_str()
        };
        let prefix = Series {
            origin: series.origin.clone(),
            patches: series.patches[..i].to_vec(),
        };
        let t = Instant::now();
        let tree = series::patched_tree(&pristine, &prefix)?;
        let version = source::kernel_version(&tree.path);
        let bd = build::plan(&tree, &format!("linux-{version}"), &plan.fragments)?;
        let built = if build::up_to_date(&tree, &bd) {
            Ok(())
        } else {
            build::configure(&tree, &bd).and_then(|_| build::build(&tree, &bd).map(drop))
        };
        match built {
            Ok(()) => eprintln!(
                "    [{i:>2}/{n}] builds  {what} ({})",
                fmt_duration(t.elapsed())
            ),
            Err(e) => {
                eprintln!("    [{i:>2}/{n}] BREAKS  {what}");
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
