//! The `test-kernel` and `parse` commands: short functions over the stages.
//!
//! [`run`] is one run of a [`RunPlan`]: hosttools -> [`stages::prepare`] ->
//! [`stages::build`] -> [`stages::pack`] -> [`stages::boot`] (fed to a [`Judge`]) ->
//! [`report::write`], which leaves summary.json and junit.xml whichever stage it ended
//! at. `--all` loops over targets, `--compare-base` runs two plans and compares
//! them, and [`parse`] replays a saved run directory through the same judge.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::compare;
use crate::hosttools;
use crate::judge::{Judge, Judgement};
use crate::plan::{Overrides, RunPlan, RunRecord};
use crate::qemu::Accel;
use crate::report::{self, Ending};
use crate::stages::{self, RunLog, StageFailure, StageName};
use crate::targets::Matrix;
use crate::util::{project_root, setup_error, Exit};

#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Target from configs/targets.yaml (default: the file's `default`).
    #[arg(long, conflicts_with = "all")]
    pub target: Option<String>,
    /// Run every target in turn.
    #[arg(long)]
    pub all: bool,
    /// Use this kernel tree instead of the target's source (never modified; built out of tree).
    #[arg(long)]
    pub tree: Option<PathBuf>,
    /// Apply this series (a directory with a `series` file, or an mbox) instead of the target's.
    #[arg(long)]
    pub series: Option<PathBuf>,
    /// Run without any series (the target's base kernel).
    #[arg(long, conflicts_with = "series")]
    pub no_series: bool,
    /// Use the target's tarball source even where a Debian package is named.
    #[arg(long)]
    pub tarball: bool,
    /// Accelerator: auto uses KVM only when it works, else TCG.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// How long KVM may stay silent before auto falls back to TCG (seconds).
    #[arg(long, default_value = "10")]
    pub kvm_deadline: u64,
    /// Override the target's per-suite timeout (seconds).
    #[arg(long)]
    pub suite_timeout: Option<u64>,
    /// Only these suites (comma separated), in this order.
    #[arg(long, value_delimiter = ',')]
    pub suites: Vec<String>,
    /// Fail unless the guest ran under KVM (CI on runners with KVM).
    #[arg(long)]
    pub require_kvm: bool,
    /// An extra config fragment merged after the target's (repeatable).
    #[arg(long = "config")]
    pub extra_configs: Vec<PathBuf>,
    /// Extra kernel command line.
    #[arg(long)]
    pub append: Option<String>,
    /// Write the run's files here instead of target/test-kernel/<target>/<time>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --tree REPO: test the commits BASE..HEAD of that git repository, each a
    /// patch on the base commit (read with git format-patch and git archive; the work
    /// tree and index are never touched). A dirty tree or a bad range is exit 2.
    #[arg(long, requires = "tree", conflicts_with = "series")]
    pub commits: Option<String>,
    /// Build in this directory instead of the cached one under target/kernel/build
    /// (created if missing; ccache still serves). The host-tool and fault tests build
    /// from an empty directory with it.
    #[arg(long)]
    pub build_dir: Option<PathBuf>,
    /// Run the suites N times in one boot; a test whose verdict differs between the
    /// repetitions is reported as flaky with its pass count (exit 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Read the matrix from this file instead of configs/targets.yaml.
    #[arg(long)]
    pub targets: Option<PathBuf>,
    /// Also run the target without its series and print the tests whose verdict
    /// changed (the review view). A test that passed on the base and fails with the
    /// series is a regression (exit 1).
    #[arg(long, conflicts_with_all = ["no_series", "all"])]
    pub compare_base: bool,
}

pub fn matrix() -> Result<Matrix> {
    let m = matrix_unchecked()?;
    crate::crosscheck::Config::builtin()
        .and_then(|c| c.validate(&m))
        .map_err(|e| crate::util::setup_error(format!("{e:#}")))?;
    Ok(m)
}

/// configs/targets.yaml alone, without checking configs/c-vs-rust.yaml against it.
pub fn matrix_unchecked() -> Result<Matrix> {
    Matrix::load(&project_root().join("configs/targets.yaml"))
}

fn matrix_from(path: Option<&Path>) -> Result<Matrix> {
    match path {
        Some(p) => Matrix::load(p),
        None => matrix(),
    }
}

pub fn list_targets(json: bool) -> Result<Exit> {
    let m = matrix()?;
    if json {
        let v: Vec<_> = m
            .targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "default": t.name == m.default,
                    "description": t.description,
                    "series": t.series,
                    "debian": t.source.debian,
                    "tarball": t.source.tarball.as_ref().map(|x| &x.url),
                    "tarball_sha256": t.source.tarball.as_ref().map(|x| &x.sha256),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        for t in &m.targets {
            let d = if t.name == m.default {
                " (default)"
            } else {
                ""
            };
            println!("{:<22}{d} {}", t.name, t.description);
        }
    }
    Ok(Exit::Ok)
}

/// `cargo xtask parse`: replays a saved run. A run directory (or a results.ktap with
/// run.json beside it) is judged with the plan it ran with; a bare results file is
/// judged against a target's suites (`--suites` narrows them).
pub fn parse(
    path: &Path,
    target: Option<&str>,
    console: Option<&Path>,
    suites: &[String],
) -> Result<Exit> {
    let dir = if path.is_dir() {
        Some(path.to_path_buf())
    } else {
        path.parent()
            .filter(|d| d.join(crate::plan::RUN_JSON).exists() && target.is_none())
            .map(Path::to_path_buf)
    };
    if let Some(dir) = dir {
        let record = RunRecord::load(&dir)?;
        let judged = record.failure.is_none().then(|| {
            let (results, con) = stages::saved_output(&dir);
            Judge::replay(&record.plan, &results, &con, record.boot.as_ref())
        });
        return Ok(show(
            &record,
            judged.as_ref(),
            &format!("replayed from {}", dir.display()),
        ));
    }
    let m = matrix()?;
    let t = m.get(target.unwrap_or(&m.default))?;
    let plan = RunPlan::resolve(
        t,
        &Overrides {
            suites: suites.to_vec(),
            ..Default::default()
        },
    )?;
    let results = std::fs::read(path)
        .map_err(|e| setup_error(format!("parse: reading {}: {e}", path.display())))?;
    let con = match console {
        Some(c) => std::fs::read(c)
            .map_err(|e| setup_error(format!("parse: reading {}: {e}", c.display())))?,
        None => Vec::new(),
    };
    let j = Judge::replay(
        &plan,
        &String::from_utf8_lossy(&results),
        &String::from_utf8_lossy(&con),
        None,
    );
    let record = RunRecord::new(plan);
    Ok(show(
        &record,
        Some(&j),
        &format!("judged from {}", path.display()),
    ))
}

/// Prints the end-of-run text; returns the exit code.
fn show(record: &RunRecord, judged: Option<&Judgement>, whence: &str) -> Exit {
    let end = match judged {
        Some(j) => Ending::Judged(j),
        None => Ending::Stopped,
    };
    println!("\n{}: {whence}", report::title(record));
    print!("{}", report::text(record, end));
    end.exit(record)
}

impl Options {
    fn overrides(&self) -> Overrides {
        Overrides {
            tree: self.tree.clone(),
            series: self.series.clone(),
            no_series: self.no_series,
            tarball: self.tarball,
            accel: Some(self.accel),
            kvm_deadline_s: Some(self.kvm_deadline),
            suite_timeout_s: self.suite_timeout,
            suites: self.suites.clone(),
            require_kvm: self.require_kvm,
            extra_configs: self.extra_configs.clone(),
            append: self.append.clone(),
            out: self.out.clone(),
            build_dir: self.build_dir.clone(),
            commits: self.commits.clone(),
            repeat: self.repeat,
        }
    }
}

pub fn main(o: Options) -> Result<Exit> {
    let m = matrix_from(o.targets.as_deref()).map_err(|e| setup_error(format!("{e:#}")))?;
    let names: Vec<String> = if o.all {
        m.targets.iter().map(|t| t.name.clone()).collect()
    } else {
        vec![o.target.clone().unwrap_or_else(|| m.default.clone())]
    };
    let mut worst = Exit::Ok;
    for name in names {
        let t = m.get(&name).map_err(|e| setup_error(format!("{e:#}")))?;
        let r = match RunPlan::resolve(t, &o.overrides()) {
            Ok(plan) if o.compare_base => compare_base(&plan),
            Ok(plan) => run(&plan).map(|f| f.exit),
            // A plan that cannot be resolved still leaves a run directory with its
            // reports: the target's own plan, stopped at the plan stage.
            Err(e) => {
                let fallback = RunPlan::resolve(
                    t,
                    &Overrides {
                        suites: Vec::new(),
                        ..o.overrides()
                    },
                )?;
                stopped_at_plan(&fallback, &e)
            }
        };
        let code = match r {
            Ok(c) => c,
            Err(e) if o.all => {
                eprintln!("error: {name}: {e:#}");
                crate::util::exit_code_of(&e)
            }
            Err(e) => return Err(e),
        };
        eprintln!("==> {name}: exit {}", code as u8);
        if code as u8 > worst as u8 {
            worst = code;
        }
    }
    Ok(worst)
}

fn stopped_at_plan(plan: &RunPlan, e: &anyhow::Error) -> Result<Exit> {
    let mut log = RunLog::start(plan)?;
    log.fail(StageFailure::new(StageName::Plan, e));
    Ok(finish(&mut log, None)?.exit)
}

/// A run that went as far as it could.
pub struct Finished {
    /// The judgement, when the run got to its results.
    pub judgement: Option<Judgement>,
    pub exit: Exit,
}

/// One run of a plan, through every stage; its reports are written whichever stage
/// it stopped at. Only a failure to write the run directory itself is an `Err`.
pub fn run(plan: &RunPlan) -> Result<Finished> {
    let mut log = RunLog::start(plan)?;
    eprintln!("==> target {}: {}", plan.target, plan.description);
    let judged = pipeline(plan, &mut log).ok();
    finish(&mut log, judged)
}

/// The stages in order; the first failure stops the run.
fn pipeline(plan: &RunPlan, log: &mut RunLog) -> stages::Stage<Judgement> {
    log.step(StageName::Hosttools, None, hosttools::ensure)?;
    let lock = log.step(StageName::Source, None, stages::lock_caches)?;
    let prepared = stages::prepare(plan, log)?;
    let built = stages::build(plan, &prepared, log)?;
    let initrd = stages::pack(plan, &prepared, &built, log)?;
    // The kernel and the C suites are built: other runs may use the caches now.
    drop(lock);
    let mut judge = Judge::new(plan);
    let booted = stages::boot(plan, &built, &initrd, &mut judge, log)?;
    Ok(judge.finish(&booted.console_text(), Some(&booted.facts)))
}

/// Saves the record, writes the reports and prints the end-of-run text.
fn finish(log: &mut RunLog, judged: Option<Judgement>) -> Result<Finished> {
    log.finish()?;
    crate::interrupt::park_if_interrupted();
    let end = match &judged {
        Some(j) => Ending::Judged(j),
        None => Ending::Stopped,
    };
    report::write(&log.dir, &log.record, end)?;
    crate::interrupt::clear_run();
    if let Some(f) = &log.record.failure {
        eprintln!("error: {}", f.message);
    }
    let exit = show(
        &log.record,
        judged.as_ref(),
        &format!("results in {}", log.dir.display()),
    );
    Ok(Finished {
        judgement: judged,
        exit,
    })
}

/// Runs the plan with and without its series and prints what changed.
fn compare_base(plan: &RunPlan) -> Result<Exit> {
    if plan.series.is_none() {
        return Err(setup_error(format!(
            "--compare-base: target {} has no series",
            plan.target
        )));
    }
    let with = run(plan)?;
    let Some(wj) = &with.judgement else {
        return Ok(with.exit);
    };
    eprintln!("==> --compare-base: the same target without its series");
    let base = run(&plan.base())?;
    let Some(bj) = &base.judgement else {
        return Ok(worse(with.exit, base.exit));
    };
    let changes = compare::compare(bj, wj);
    println!("\n{}", compare::table(&changes));
    let regressions = changes.iter().filter(|c| c.is_regression()).count();
    if regressions > 0 {
        println!("{regressions} regression(s): passed without the series, not with it");
        return Ok(worse(with.exit, Exit::Mismatch));
    }
    Ok(with.exit)
}

fn worse(a: Exit, b: Exit) -> Exit {
    std::cmp::max_by_key(a, b, |e| *e as u8)
}
