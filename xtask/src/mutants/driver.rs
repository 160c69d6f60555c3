//! `cargo xtask mutants --run`: each selected mutant applied to the target's working
//! copy, built incrementally (one object and the link), booted, judged, reverted.
//!
//! A short loop over the run plan's stages: `stages::prepare` once (the whole series
//! in the per-version working copy), then per mutant `stages::build` / `pack` /
//! `boot` with a tree key naming the mutant (so the build directory's stamp never
//! takes a mutated build for the series' own), and the judge against the target's
//! expectations: any result the target does not expect, a crash, a hang or a kernel
//! alarm kills the mutant. The cache lock is held for the whole run, and while a
//! mutant is in the working copy its `series-key` is absent: an interrupted run leaves
//! a copy the next run recreates, never a mutated tree taken for the series.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use super::generate::Mutant;
use super::store::{Kill, Outcome, Record, Store};
use crate::judge::Judge;
use crate::plan::RunPlan;
use crate::stages::{self, Prepared, RunLog};
use crate::util::{setup_error, target_dir, Exit};

#[allow(
    clippy::boxed_local,
    reason = "a stage's error comes boxed (stages::Stage)"
)]
fn stage_err(f: Box<stages::StageFailure>) -> anyhow::Error {
    setup_error(format!("mutants: {:?}: {}", f.stage, f.message))
}

/// Runs the pending mutants of `chosen`, recording each outcome in `store`.
pub fn run(plan: &RunPlan, chosen: &[Mutant], store: &mut Store, dir: &Path) -> Result<()> {
    let pending: Vec<&Mutant> = store.pending(chosen);
    eprintln!(
        "==> mutants: {} selected, {} already done, {} to run (results: {})",
        chosen.len(),
        chosen.len() - pending.len(),
        pending.len(),
        store_path(dir).display()
    );
    if pending.is_empty() {
        return Ok(());
    }
    crate::hosttools::ensure()?;
    let _lock = stages::lock_caches()?;
    let mut base = plan.clone();
    base.out = Some(dir.join("runs/series"));
    let mut log = RunLog::start(&base)?;
    let prepared = stages::prepare(&base, &mut log).map_err(stage_err)?;
    let tree = prepared.tree.path.clone();
    let key_file = tree
        .parent()
        .map(|e| e.join("series-key"))
        .ok_or_else(|| setup_error("mutants: the working copy has no parent"))?;
    let key = std::fs::read_to_string(&key_file)
        .map_err(|e| setup_error(format!("mutants: {}: {e}", key_file.display())))?;
    for (i, m) in pending.iter().enumerate() {
        eprintln!(
            "\n==> mutant {}/{}: {} ({})",
            i + 1,
            pending.len(),
            m.id,
            m.description
        );
        std::fs::remove_file(&key_file)?;
        m.apply(&tree)?;
        let outcome = one(plan, m, &prepared, dir);
        // Revert whatever happened, then give the copy its key back.
        m.revert(&tree)?;
        std::fs::write(&key_file, &key)?;
        let (outcome, build_secs, run_secs) = outcome?;
        eprintln!("    -> {}", describe(&outcome));
        store.record(Record {
            id: m.id.clone(),
            fingerprint: m.fingerprint(),
            outcome,
            suites: plan.suites.clone(),
            build_secs,
            run_secs,
        })?;
    }
    Ok(())
}

pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("results.jsonl")
}

/// The results directory of a target: resumable across runs.
pub fn results_dir(target: &str) -> PathBuf {
    target_dir().join("mutants").join(target)
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Killed { by } => format!("killed ({} reason(s))", by.len()),
        Outcome::Survived => "SURVIVED".into(),
        Outcome::BuildError { .. } => "build error (not counted)".into(),
        Outcome::Timeout { phase, secs } => {
            format!("timeout in {phase} after {secs:.0} s (killed)")
        }
        Outcome::Equivalent { reason } => format!("equivalent: {reason}"),
    }
}

/// One mutant (already applied): build, pack, boot, judge.
fn one(plan: &RunPlan, m: &Mutant, prepared: &Prepared, dir: &Path) -> Result<(Outcome, f64, f64)> {
    let mut p = plan.clone();
    let safe: String =
        m.id.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
    p.out = Some(dir.join("runs").join(safe));
    let mut log = RunLog::start(&p)?;
    let mutated = Prepared {
        tree: crate::source::Tree {
            key: format!("{}+mutant:{}", prepared.tree.key, m.fingerprint()),
            ..prepared.tree.clone()
        },
        version: prepared.version.clone(),
    };
    let t = Instant::now();
    let built = match stages::build(&p, &mutated, &mut log) {
        Ok(b) => b,
        Err(f) => {
            let tail = f.first_error.clone().unwrap_or(f.message.clone());
            return Ok((
                Outcome::BuildError { log_tail: tail },
                t.elapsed().as_secs_f64(),
                0.0,
            ));
        }
    };
    let build_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let initrd = stages::pack(&p, &mutated, &built, &mut log).map_err(stage_err)?;
    let mut judge = Judge::new(&p);
    let booted = stages::boot(&p, &built, &initrd, &mut judge, &mut log).map_err(stage_err)?;
    let j = judge.finish(&booted.console_text(), Some(&booted.facts));
    let run_secs = t.elapsed().as_secs_f64();
    if j.watchdog_fired {
        return Ok((
            Outcome::Timeout {
                phase: "boot+test".into(),
                secs: run_secs,
            },
            build_secs,
            run_secs,
        ));
    }
    let mut by = Vec::new();
    if j.panicked || j.cut_short {
        by.push(Kill::Crash {
            detail: j.headline(),
        });
    }
    for a in j.alarms.iter().filter(|a| a.fails() && !a.fatal) {
        by.push(Kill::Warn {
            detail: format!("{} {}", a.pattern, a.fingerprint),
        });
    }
    for t in j.tests.iter().filter(|t| !t.as_expected) {
        by.push(Kill::Test {
            suite: t.suite.clone(),
            test: t.name.clone(),
        });
    }
    if by.is_empty() && j.exit() != Exit::Ok {
        by.push(Kill::Crash {
            detail: j.headline(),
        });
    }
    let outcome = if by.is_empty() {
        Outcome::Survived
    } else {
        Outcome::Killed { by }
    };
    Ok((outcome, build_secs, run_secs))
}
