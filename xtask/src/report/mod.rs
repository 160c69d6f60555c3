//! Reports of a run, on every exit: `summary.json`, `junit.xml` and
//! `step-summary.md` (GitHub's step summary) in the run directory, and the text
//! printed at the end of a run (or of its replay). Rendered from the run's record
//! (`run.json`) and, when the run got that far, its [`Judgement`]; nothing here
//! decides a verdict.

mod junit;
mod markdown;
mod table;

use std::path::Path;

use anyhow::{Context, Result};

use crate::judge::Judgement;
use crate::plan::RunRecord;
use crate::stages::StageName;
use crate::util::Exit;

pub use table::{table, timing_table};

/// How a run ended: stopped at a stage, or judged from its results.
#[derive(Clone, Copy)]
pub enum Ending<'a> {
    Stopped,
    Judged(&'a Judgement),
}

impl Ending<'_> {
    /// The exit code of the run.
    pub fn exit(&self, r: &RunRecord) -> Exit {
        match (self, &r.failure) {
            (_, Some(f)) => f.exit(),
            (Ending::Judged(j), None) => j.exit(),
            (Ending::Stopped, None) => Exit::Setup,
        }
    }

    /// The stage to blame, if the run is not a success.
    pub fn stage(&self, r: &RunRecord) -> Option<StageName> {
        if let Some(f) = &r.failure {
            return Some(f.stage);
        }
        match self.exit(r) {
            Exit::Ok => None,
            Exit::Mismatch => Some(StageName::Results),
            Exit::Crash | Exit::Setup | Exit::Interrupted => Some(StageName::Boot),
        }
    }

    /// One line: what the exit code means for this run.
    pub fn headline(&self, r: &RunRecord) -> String {
        match (self, &r.failure) {
            (_, Some(f)) if f.interrupted() => format!("interrupted: {}", f.message),
            (_, Some(f)) => format!(
                "set-up error at stage {}: {}",
                f.stage,
                f.message.lines().next().unwrap_or("")
            ),
            (Ending::Judged(j), None) => j.headline(),
            (Ending::Stopped, None) => "stopped before any result".into(),
        }
    }
}

/// Writes summary.json, junit.xml and step-summary.md into `dir`.
pub fn write(dir: &Path, r: &RunRecord, end: Ending<'_>) -> Result<()> {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write(
        "summary.json",
        serde_json::to_string_pretty(&summary(r, end))?,
    )?;
    write("junit.xml", junit::render(r, end)?)?;
    write("step-summary.md", markdown::render(r, end))?;
    if let Ending::Judged(j) = end {
        if !j.c_vs_rust.is_empty() {
            write(
                "c-vs-rust.md",
                crate::crosscheck::markdown(&r.plan.target, &j.c_vs_rust, j, &r.plan.c_vs_rust),
            )?;
        }
    }
    Ok(())
}

/// summary.json: the verdict, the stage that failed, per-phase timing and the
/// whole judgement.
pub fn summary(r: &RunRecord, end: Ending<'_>) -> serde_json::Value {
    let phases: serde_json::Map<String, serde_json::Value> = r
        .timings
        .iter()
        .map(|(n, s)| (n.clone(), serde_json::json!(s)))
        .collect();
    let boot = r.boot.as_ref();
    serde_json::json!({
        "target": r.plan.target,
        "kernel": r.kernel,
        "suites": r.plan.suites,
        "exit": end.exit(r) as u8,
        "verdict": end.headline(r),
        "stage": end.stage(r),
        "failure": r.failure,
        "accel": boot.map(|b| if b.kvm { "kvm" } else { "tcg" }),
        "watchdog_fired": boot.map(|b| b.watchdog_fired),
        "qemu_exit": boot.and_then(|b| b.qemu_exit),
        "boot_and_test_s": boot.map(|b| b.elapsed_s),
        "phases_s": phases,
        "analysis": match end { Ending::Judged(j) => Some(j), Ending::Stopped => None },
    })
}

/// The text printed at the end of a run and by `parse`: boot notes, the table (or
/// the failure), phases, and the exit code with its headline.
pub fn text(r: &RunRecord, end: Ending<'_>) -> String {
    let mut o = String::new();
    let exit = end.exit(r);
    if let Some(f) = &r.failure {
        o.push_str(&format!(
            "stopped at stage {} (exit {}):\n  {}\n",
            f.stage,
            f.exit,
            f.message.replace('\n', "\n  ")
        ));
        if let Some(p) = &f.patch {
            o.push_str(&format!("patch: {p}\n"));
            for h in &f.hunks {
                o.push_str(&format!("  hunk: {h}\n"));
            }
        }
        if let Some(l) = &f.build_log {
            o.push_str(&format!("build log: {}\n", l.display()));
        }
    }
    if let Some(b) = &r.boot {
        if b.watchdog_fired {
            o.push_str(&format!("watchdog: QEMU killed after {} s\n", b.watchdog_s));
        }
        if exit == Exit::Crash && !b.qemu_stderr.trim().is_empty() {
            o.push_str(&format!("qemu stderr:\n{}\n", b.qemu_stderr.trim()));
        }
    }
    match end {
        Ending::Judged(j) if r.failure.is_none() => {
            o.push_str(&table(j, &r.timings));
            if r.plan.unique_suites().len() < r.plan.suites.len() {
                o.push_str(&timing_table(&j.suite_times));
            }
        }
        _ => o.push_str(&table::phases(&r.timings)),
    }
    o.push_str(&format!("verdict: {}\n", end.headline(r)));
    o.push_str(&format!("exit {}\n", exit as u8));
    o
}

/// `<target> (<kernel>, TCG)`: the first line of the end-of-run text.
pub fn title(r: &RunRecord) -> String {
    let accel = r.boot.as_ref().map(|b| if b.kvm { "KVM" } else { "TCG" });
    match (r.kernel.as_deref(), accel) {
        (Some(k), Some(a)) => format!("{} ({k}, {a})", r.plan.target),
        (Some(k), None) => format!("{} ({k})", r.plan.target),
        (None, _) => r.plan.target.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::tests::plan;
    use crate::stages::StageFailure;

    #[test]
    fn a_patch_that_does_not_apply_is_reported_with_its_hunks() {
        let mut r = RunRecord::new(plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n"));
        let e: anyhow::Error = crate::series::NotApplied {
            patch: "0003-x.patch".into(),
            problems: vec!["fs/proc/task_mmu.c: Hunk #2 FAILED at 1758.".into()],
        }
        .into();
        r.failure = Some(StageFailure::new(StageName::Series, &e));
        let t = text(&r, Ending::Stopped);
        assert!(t.starts_with("stopped at stage series (exit 2):"), "{t}");
        assert!(
            t.contains(
                "patch: 0003-x.patch\n  hunk: fs/proc/task_mmu.c: Hunk #2 FAILED at 1758.\n"
            ),
            "{t}"
        );
        assert!(t.ends_with("exit 2\n"), "{t}");
        let s = summary(&r, Ending::Stopped);
        assert_eq!(s["stage"], "series");
        assert_eq!(s["exit"], 2);
        assert_eq!(s["failure"]["patch"], "0003-x.patch");
    }
}
