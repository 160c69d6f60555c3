//! `cargo xtask bench`: runs `pagemap_bench` (selftests/mm/src/bin/pagemap_bench.rs)
//! and writes its report into a run directory, `target/bench/<time>/` (`latest`
//! points at the newest):
//!
//! - `output.tap`: the program's output as received (TAP + `# bench-json:` records);
//! - `records.json`: the records (the program's `--json` array);
//! - `report.md`: the tables (rows approaches, columns N, like the seeds' table),
//!   ratios to PAGEMAP_SCAN, the fault path, absent approaches with their reasons,
//!   errors; and what the figures mean in this environment (host, KVM, TCG);
//! - `bench.json`: the environment, its note and every record;
//! - `round.svg`, `fault.svg`: the plots.
//!
//! `--compare-base` (with `--target`) runs it on the base kernel too (`base/` and
//! `series/`) and writes `compare.md` + `compare.json`: per cell both medians, their
//! ratio, and the cells that got slower by more than the runs' spread.
//! `--agree RUN1 RUN2` checks two runs (run directories or record files) of one
//! kernel: per cell, do the ratios between approaches agree within 10%
//! (`agree.md` + `agree.json`; exit 1 when a cell disagrees).
//!
//! `--host` runs the program on this machine. `--from FILE` renders the report of a
//! saved run offline (a records.json, output.tap or results.ktap), with `--env`.
//! On a kernel without some approach (a series' base has no PAGEMAP_SCAN), the
//! program skips it with the reason its probe found: absent, not a failure (the
//! judge's "unexpected skip" is taken back for exactly those; see `accept_absent`).
//! The program records the guest's clocksource and its own clock's step, and a run
//! whose clock cannot resolve the times it measured is refused (exit 2; report.md says
//! which cells). `--compare-base` runs every approach alone on both kernels.
//!
//! Exit: 0 every present approach measured correctly; 1 an error or wrong answer in
//! some cell; 2 set-up (build, bad input, a clock too coarse for the times measured);
//! 3 the program crashed or its output was cut short.

pub mod compare;
pub mod plot;
pub mod report;

use crate::util::{setup_error, target_dir, Exit, Failure};
use anyhow::{Context, Result};
use report::{Bench, Environment};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Run the benchmark on this machine's kernel.
    #[arg(long)]
    pub host: bool,
    /// A small fixed sample (N in {1, 100, 10000}, W = N/10, fewer repetitions).
    #[arg(long)]
    pub quick: bool,
    /// Render the report of a saved run (records.json, output.tap or results.ktap).
    #[arg(long, value_name = "FILE", conflicts_with = "host")]
    pub from: Option<PathBuf>,
    /// With --from: where it was measured (host, kvm, tcg).
    #[arg(long, default_value = "host", requires = "from")]
    pub env: String,
    /// Run it as the guest's only workload on this target's kernel (built, cached and
    /// booted exactly as `test-kernel --target NAME` does it).
    #[arg(long, conflicts_with_all = ["host", "from"])]
    pub target: Option<String>,
    /// With --target: also run it on the target's base kernel (without its series),
    /// in the same run directory (base/ and series/).
    #[arg(long, requires = "target")]
    pub compare_base: bool,
    /// Check that two runs (run directories or record files) agree: per cell, the
    /// ratios between approaches within 10%.
    #[arg(long, num_args = 2, value_names = ["RUN1", "RUN2"],
          conflicts_with_all = ["host", "from", "target"])]
    pub agree: Vec<PathBuf>,
    /// The run directory (default target/bench/<time>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The tolerance of `--agree`.
pub const AGREE_TOLERANCE: f64 = 0.10;

/// The records of a saved run: a file, or a run directory (its records.json, else the
/// results.ktap or output.tap in it or in its guest/ or series/).
fn load_run(path: &Path) -> Result<Bench> {
    let file = if path.is_dir() {
        let candidates = [
            "records.json",
            "results.ktap",
            "output.tap",
            "guest/results.ktap",
            "series/results.ktap",
        ];
        candidates
            .iter()
            .map(|c| path.join(c))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                setup_error(format!(
                    "bench: {} has none of {}",
                    path.display(),
                    candidates.join(", ")
                ))
            })?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| setup_error(format!("bench: reading {}: {e}", file.display())))?;
    report::parse(&text).map_err(|e| setup_error(format!("bench: {}: {e:#}", file.display())))
}

fn agree(o: &Options) -> Result<Exit> {
    let (r1, r2) = (load_run(&o.agree[0])?, load_run(&o.agree[1])?);
    let rows = compare::agree_rows(&r1, &r2, AGREE_TOLERANCE);
    if rows.is_empty() {
        return Err(setup_error(
            "bench --agree: the runs have no round cell in common with a ratio to \
             PAGEMAP_SCAN (is it absent, or are these different kernels?)",
        ));
    }
    let dir = match &o.out {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => run_dir()?,
    };
    let md = compare::agree_markdown(&r1, &r2, &rows, AGREE_TOLERANCE);
    std::fs::write(dir.join("agree.md"), &md)?;
    std::fs::write(
        dir.join("agree.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "run1": o.agree[0], "run2": o.agree[1], "tolerance": AGREE_TOLERANCE,
            "cells": rows,
        }))?,
    )?;
    println!("{md}\nreport: {}", dir.display());
    Ok(if rows.iter().all(|r| r.agrees) {
        Exit::Ok
    } else {
        Exit::Mismatch
    })
}

pub fn main(o: Options) -> Result<Exit> {
    if !o.agree.is_empty() {
        return agree(&o);
    }
    if let Some(from) = &o.from {
        let env = Environment::parse(&o.env).map_err(|e| setup_error(format!("--env: {e}")))?;
        let text = std::fs::read_to_string(from)
            .map_err(|e| setup_error(format!("bench: reading {}: {e}", from.display())))?;
        let b = report::parse(&text)
            .map_err(|e| setup_error(format!("bench: {}: {e:#}", from.display())))?;
        let dir = match &o.out {
            Some(d) => d.clone(),
            None => run_dir()?,
        };
        return write_report(&b, env, &dir);
    }
    if let Some(name) = &o.target {
        return guest(&o, name);
    }
    if !o.host {
        return Err(setup_error(
            "bench: say where to run: --host (this machine's kernel), --target NAME (a \
             target's kernel in QEMU) or --from FILE (a saved run)",
        ));
    }
    let bin = build()?;
    let dir = match &o.out {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => run_dir()?,
    };
    eprintln!("==> bench: running {} on the host kernel", bin.display());
    let records = dir.join("records.json");
    let tap = dir.join("output.tap");
    let mut cmd = Command::new(&bin);
    cmd.arg("--json").arg(&records);
    if o.quick {
        cmd.arg("--quick");
    }
    let status = run_streaming(cmd, &tap)?;
    // The records: the --json file when the program finished, else what reached stdout.
    let text = match std::fs::read_to_string(&records) {
        Ok(t) => t,
        Err(_) => std::fs::read_to_string(&tap)?,
    };
    let b = report::parse(&text).map_err(|e| Failure {
        exit: Exit::Crash,
        message: format!(
            "bench: the program ended with {status} and left no readable records: {e:#}"
        ),
    })?;
    let exit = write_report(&b, Environment::Host, &dir)?;
    if !status.success() && status.code() != Some(1) && status.code() != Some(4) {
        eprintln!("bench: the program ended with {status}");
        return Ok(Exit::Crash);
    }
    Ok(exit)
}

/// The benchmark as the guest workload: the target's plan with `pagemap_bench` as its
/// only suite (it must pass: a wrong answer is `not ok`), then the report from the
/// records that came back on the results port.
fn guest(o: &Options, name: &str) -> Result<Exit> {
    let m = crate::test_kernel::matrix()?;
    let t = m.get(name).map_err(|e| setup_error(format!("{e:#}")))?;
    let mut plan = crate::plan::RunPlan::resolve(
        t,
        &crate::plan::Overrides {
            append: guest_append(o.quick, o.compare_base),
            ..Default::default()
        },
    )?;
    plan.suites = vec!["pagemap_bench".into()];
    plan.expect = [(
        "pagemap_bench".to_string(),
        crate::targets::Expect::default(),
    )]
    .into_iter()
    .collect();
    let dir = match &o.out {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => run_dir()?,
    };
    let mut runs = vec![("series", plan.clone())];
    if o.compare_base {
        if plan.series.is_none() {
            return Err(setup_error(format!(
                "bench --compare-base: target {name} has no series"
            )));
        }
        let mut base = plan.base();
        base.suites = plan.suites.clone();
        base.expect = plan.expect.clone();
        runs.push(("base", base));
    } else {
        runs[0].0 = "guest";
    }
    let mut worst = Exit::Ok;
    let mut benches: Vec<(&str, Bench)> = Vec::new();
    for (label, mut p) in runs {
        let sub = dir.join(label);
        p.out = Some(sub.clone());
        let mut f = crate::test_kernel::run(&p)?;
        let record = crate::plan::RunRecord::load(&sub)?;
        let env = match record.boot.as_ref().map(|b| b.kvm) {
            Some(true) => Environment::Kvm,
            _ => Environment::Tcg,
        };
        let text = std::fs::read_to_string(sub.join("results.ktap")).unwrap_or_default();
        let exit = match report::parse(&text) {
            Ok(b) => {
                eprintln!("==> bench: {label} ({})", plan.target);
                if let Some(j) = &mut f.judgement {
                    let accepted = accept_absent(j, &b);
                    if !accepted.is_empty() {
                        // The run's reports said "unexpected skip": rewrite them.
                        let end = crate::report::Ending::Judged(j);
                        crate::report::write(&sub, &record, end)?;
                        f.exit = end.exit(&record);
                        eprintln!(
                            "==> bench: {label}: absent by their probes, not failures: {} \
                             (run exit now {:?})",
                            accepted.join(", "),
                            f.exit
                        );
                    }
                }
                let exit = write_report(&b, env, &sub)?;
                benches.push((label, b));
                exit
            }
            Err(e) => {
                eprintln!("bench: {label}: no readable records: {e:#}");
                Exit::Crash
            }
        };
        worst = std::cmp::max_by_key(
            worst,
            std::cmp::max_by_key(exit, f.exit, |e| *e as u8),
            |e| *e as u8,
        );
    }
    if let [("series", series), ("base", base)] = &benches[..] {
        let rows = compare::base_rows(base, series);
        let md = compare::base_markdown(base, series, &rows);
        std::fs::write(dir.join("compare.md"), &md)?;
        std::fs::write(
            dir.join("compare.json"),
            serde_json::to_string_pretty(&serde_json::json!({
                "base_kernel": base.meta.kernel,
                "series_kernel": series.meta.kernel,
                "cells": rows,
            }))?,
        )?;
        println!("{md}");
    } else if o.compare_base {
        eprintln!("bench --compare-base: a side has no readable records: no comparison");
        worst = std::cmp::max_by_key(worst, Exit::Crash, |e| *e as u8);
    }
    println!("bench reports in {}", dir.display());
    Ok(worst)
}

/// What the benchmark adds to the guest's kernel command line: the program's
/// arguments (`pagemap_bench.args=`). `--quick`; and with `--compare-base`,
/// `--no-interleave`: base against series compares each approach's own time across
/// two boots, so it must run in the same company on both, and the base lacks
/// PAGEMAP_SCAN (it would take turns with one approach fewer there). Alone on both
/// sides, as the seeds measured.
///
/// Not added: `clocksource=tsc tsc=reliable`. Tried on v6.1-pagemap-scan under TCG:
/// the guest still ran on refined-jiffies ("tsc: Unable to calibrate against PIT",
/// "No reference (HPET/PMTIMER) available", "Marking TSC unstable due to could not
/// calculate TSC khz": the boot config has neither HPET nor the ACPI PM timer), so
/// the program times with the TSC itself (calibrated against CLOCK_MONOTONIC) and the
/// clock check refuses a run that clock cannot resolve.
fn guest_append(quick: bool, compare_base: bool) -> Option<String> {
    let mut args = Vec::new();
    if quick {
        args.push("--quick");
    }
    if compare_base {
        args.push("--no-interleave");
    }
    (!args.is_empty()).then(|| format!("pagemap_bench.args={}", args.join(",")))
}

/// The judge knows only the target's expectations, and they do not list the
/// benchmark's approaches: a kernel without PAGEMAP_SCAN (a series' base) skips two of
/// them, which the judge calls unexpected. The program skips an approach only when its
/// probe established the kernel lacks it (an `absent` record with the reason; a probe
/// that failed is `not ok`, and an approach that is present and then fails is `not
/// ok`): such a skip is what the issue calls "absent, with the reason". Accepts exactly
/// those skips; returns the approaches accepted.
fn accept_absent(j: &mut crate::judge::Judgement, b: &Bench) -> Vec<String> {
    b.approaches
        .iter()
        .filter_map(|a| {
            let reason = a.absent.as_deref()?;
            j.accept_skip(
                "pagemap_bench",
                &a.id,
                &format!("absent (its probe): {reason}"),
            )
            .then(|| a.id.clone())
        })
        .collect()
}

/// Builds the program with the initramfs' guest build (same target dir, target and
/// flags: the build is shared), returns its path.
fn build() -> Result<PathBuf> {
    eprintln!("==> bench: building pagemap_bench");
    Ok(crate::initramfs::build_guest(Some(&["pagemap_bench"]))?.join("pagemap_bench"))
}

/// Runs `cmd`, printing its stdout as it comes and saving it to `log`.
fn run_streaming(mut cmd: Command, log: &Path) -> Result<std::process::ExitStatus> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the benchmark's output")?;
        writeln!(file, "{line}")?;
        // The records are for the files; people read the `# ` summary lines.
        if !line.contains(report::MARKER) {
            println!("    {line}");
        }
    }
    Ok(child.wait()?)
}

/// `target/bench/<UTC time>/`, and `target/bench/latest` pointing at it.
fn run_dir() -> Result<PathBuf> {
    let base = target_dir().join("bench");
    crate::util::stamped_dir(&base)
}

/// Writes report.md, bench.json and the SVGs into `dir`, prints the report; the exit
/// code the records call for.
pub fn write_report(b: &Bench, env: Environment, dir: &Path) -> Result<Exit> {
    std::fs::create_dir_all(dir)?;
    let md = report::markdown(b, env);
    let write = |name: &str, text: &str| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("report.md", &md)?;
    write("bench.json", &report::json(b, env)?)?;
    // The round plot shows the seeds' layout (W = N/10) when it was measured.
    let kinds = b.w_kinds();
    if let Some(k) = kinds.first() {
        write("round.svg", &plot::round_svg(b, k, env)?)?;
    }
    if !b.thread_counts().is_empty() {
        write("fault.svg", &plot::fault_svg(b, env)?)?;
    }
    println!("\n{md}");
    println!("report: {}", dir.display());
    let unresolved = b.unresolved();
    if !unresolved.is_empty() {
        eprintln!(
            "bench: the clock (step {:.0} ns, clocksource {}) cannot resolve {} cell(s): \
             the run measures nothing (report.md says which)",
            b.meta.clock_resolution_ns.unwrap_or(f64::NAN),
            b.meta.clocksource,
            unresolved.len()
        );
    }
    Ok(if !b.complete {
        Exit::Crash
    } else if b.error_count() > 0 {
        Exit::Mismatch
    } else if !unresolved.is_empty() {
        Exit::Setup
    } else {
        Exit::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::report::tests::SAMPLE;
    use super::*;

    #[test]
    fn guest_arguments() {
        assert_eq!(guest_append(false, false), None);
        assert_eq!(
            guest_append(true, false).as_deref(),
            Some("pagemap_bench.args=--quick")
        );
        assert_eq!(
            guest_append(true, true).as_deref(),
            Some("pagemap_bench.args=--quick,--no-interleave")
        );
    }

    /// The guest's results of a base kernel: one approach absent by its probe, one
    /// skipped without an absent record, one present that failed.
    #[test]
    fn only_probed_absence_is_accepted() {
        let m = crate::targets::Matrix::parse(
            "default: t\ntargets:\n  - name: t\n    source: { debian: x }\n    configs: [a]\n    order: [pagemap_bench]\n    suites:\n      pagemap_bench: {}\n",
        )
        .unwrap();
        let p = crate::plan::RunPlan::resolve(&m.targets[0], &Default::default()).unwrap();
        let meta = SAMPLE.lines().nth(2).unwrap().trim();
        let run = format!(
            "KTAP version 1\n1..1\n  TAP version 13\n  1..3\n  {meta}\n  \
             # bench-json: {{\"kind\":\"absent\",\"approach\":\"pagemap_scan_wp_async\",\"label\":\"x\",\"reason\":\"PAGEMAP_SCAN: ENOTTY\"}}\n  \
             # bench-json: {{\"kind\":\"approach\",\"approach\":\"mprotect_sigsegv\",\"label\":\"m\"}}\n  \
             ok 1 pagemap_scan_wp_async # SKIP PAGEMAP_SCAN: ENOTTY\n  \
             ok 2 uffd_wp_sync # SKIP no record says why\n  \
             not ok 3 mprotect_sigsegv\n  \
             # bench-json: {{\"kind\":\"end\",\"seconds\":1.0}}\n\
             not ok 1 pagemap_bench\n# exit=1\n"
        );
        let mut j = crate::judge::Judge::replay(&p, &run, "", None);
        assert_eq!(
            j.suites[0].mismatches.len(),
            3,
            "{:?}",
            j.suites[0].mismatches
        );
        let b = report::parse(&run).unwrap();
        assert_eq!(accept_absent(&mut j, &b), vec!["pagemap_scan_wp_async"]);
        let left = &j.suites[0].mismatches;
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|m| m.contains("uffd_wp_sync")), "{left:?}");
        assert!(
            left.iter().any(|m| m.contains("mprotect_sigsegv")),
            "{left:?}"
        );
        assert_eq!(j.exit(), Exit::Mismatch);
    }

    #[test]
    fn report_files_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let b = report::parse(SAMPLE).unwrap();
        // The sample has a wrong-answer cell: exit 1.
        assert_eq!(
            write_report(&b, Environment::Tcg, dir.path()).unwrap(),
            Exit::Mismatch
        );
        for f in ["report.md", "bench.json", "round.svg", "fault.svg"] {
            let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(!text.is_empty(), "{f}");
        }
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("bench.json")).unwrap())
                .unwrap();
        assert_eq!(j["environment"], "tcg");
        // Cut short: exit 3.
        let mut cut = b.clone();
        cut.complete = false;
        assert_eq!(
            write_report(&cut, Environment::Tcg, dir.path()).unwrap(),
            Exit::Crash
        );
    }
}
