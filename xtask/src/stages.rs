//! The pipeline's stages over a [`RunPlan`], each returning a typed outcome:
//! [`prepare`] (source + series) -> [`Prepared`], [`build`] (kconfig + make) ->
//! [`Built`], [`pack`] (initramfs) -> [`Initrd`], [`boot`] (QEMU, results fed to a
//! [`Judge`] as they arrive) -> [`Booted`]. A stage that fails returns a
//! [`StageFailure`] naming itself, with the patch and hunks of a patch that does not
//! apply or the first compiler error of a failed build.
//!
//! Every stage records into a [`RunLog`] (the run directory and its `run.json`), so
//! a run that stops anywhere still leaves its reports. Modes are loops over these
//! stages: `test-kernel` runs them once, `--compare-base` twice (the second with
//! [`RunPlan::base`]); a per-patch mode sets [`RunPlan::series_prefix`] and loops.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::build;
use crate::initramfs;
use crate::judge::{Judge, Progress};
use crate::plan::{BootFacts, RunPlan, RunRecord, SourcePlan};
use crate::qemu;
use crate::series::{self, NotApplied, Series};
use crate::source::{self, Tree};
use crate::util::{exit_code_of, fmt_duration, target_dir, Exit};

/// The stages, as named in reports (`summary.json`'s `stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    /// Resolving the plan: targets.yaml, `--suites`.
    Plan,
    /// Host programs (qemu, make, gcc, ...).
    Hosttools,
    Source,
    Series,
    Kconfig,
    Build,
    Initramfs,
    /// Booting the kernel and running the suites.
    Boot,
    /// Judging the results (a mismatch or a crash found there).
    Results,
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).expect("serialisable");
        f.write_str(s.as_str().unwrap_or("?"))
    }
}

/// Why a run stopped before a verdict from results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageFailure {
    pub stage: StageName,
    /// The exit code (2 for set-up/series/config/build errors).
    pub exit: u8,
    pub message: String,
    /// The patch that does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// What `patch` said about it, one entry per failed hunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<String>,
    /// The first compiler or linker error of a failed build, with context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The full build log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_log: Option<PathBuf>,
}

impl StageFailure {
    pub fn new(stage: StageName, e: &anyhow::Error) -> StageFailure {
        let mut f = StageFailure {
            stage,
            exit: exit_code_of(e) as u8,
            message: format!("{e:#}"),
            patch: None,
            hunks: Vec::new(),
            first_error: None,
            build_log: None,
        };
        if let Some(n) = e.downcast_ref::<NotApplied>() {
            f.patch = Some(n.patch.clone());
            f.hunks = n.problems.clone();
        }
        f
    }

    pub fn exit(&self) -> Exit {
        exit_from_u8(self.exit)
    }

    /// Stopped by SIGINT/SIGTERM (crate::interrupt), not by an error.
    pub fn interrupted(&self) -> bool {
        self.exit == crate::interrupt::EXIT_INTERRUPTED
    }
}

pub fn exit_from_u8(code: u8) -> Exit {
    match code {
        0 => Exit::Ok,
        1 => Exit::Mismatch,
        3 => Exit::Crash,
        130 => Exit::Interrupted,
        _ => Exit::Setup,
    }
}

/// A stage's outcome: its typed result, or the failure that stopped the run (boxed:
/// it carries the message, patch, hunks and compiler error).
pub type Stage<T> = Result<T, Box<StageFailure>>;

/// The run directory and its record (`run.json`, saved after every stage).
pub struct RunLog {
    pub dir: PathBuf,
    pub record: RunRecord,
    started: Instant,
}

impl RunLog {
    /// Creates the run directory and writes the plan to `run.json`.
    pub fn start(plan: &RunPlan) -> Result<RunLog> {
        let dir = plan.create_run_dir()?;
        let log = RunLog {
            dir,
            record: RunRecord::new(plan.clone()),
            started: Instant::now(),
        };
        log.record.save(&log.dir)?;
        Ok(log)
    }

    /// Runs one step of a stage, timed under `timing` when given; an error becomes
    /// the run's [`StageFailure`].
    pub fn step<T>(
        &mut self,
        stage: StageName,
        timing: Option<(&str, String)>,
        f: impl FnOnce() -> Result<T>,
    ) -> Stage<T> {
        let start = Instant::now();
        crate::interrupt::set_run(self.dir.clone(), stage);
        if let Some((name, what)) = &timing {
            eprintln!("==> {name}: {what}");
        }
        let r = f();
        if let (Some((name, _)), Ok(_)) = (&timing, &r) {
            let d = start.elapsed();
            eprintln!("    {name} done in {}", fmt_duration(d));
            self.record
                .timings
                .push((name.to_string(), d.as_secs_f64()));
        }
        r.map_err(|e| {
            let mut f = StageFailure::new(stage, &e);
            // ENOSPC reads differently in every tool (curl's 23, tar's "Cannot
            // write", make's "No space left"): say it once, plainly.
            for dir in [target_dir(), self.dir.clone()] {
                if let Some(note) = crate::util::disk_full(&dir) {
                    f.message = format!("{note}\n{}", f.message);
                    break;
                }
            }
            self.fail(f)
        })
    }

    /// Records a failure (and saves the record).
    pub fn fail(&mut self, f: StageFailure) -> Box<StageFailure> {
        self.record.failure = Some(f.clone());
        let _ = self.record.save(&self.dir);
        Box::new(f)
    }

    /// Adds the total wall time and saves the record.
    pub fn finish(&mut self) -> Result<()> {
        self.record
            .timings
            .push(("total".into(), self.started.elapsed().as_secs_f64()));
        self.record.save(&self.dir)
    }
}

/// Source, series and build share caches with any other run: one at a time.
pub fn lock_caches() -> Result<crate::util::Lock> {
    crate::util::lock(&target_dir().join("kernel/lock"))
}

/// The pristine source tree of a plan.
pub fn fetch_source(plan: &RunPlan) -> Result<Tree> {
    match &plan.source {
        SourcePlan::Local { path } => source::fetch(source::Choice::Local(path), false),
        SourcePlan::Target {
            source,
            prefer_tarball,
        } => source::fetch(source::Choice::Target(source), *prefer_tarball),
        SourcePlan::Git { repo, range } => {
            crate::git::base_tree(&crate::git::resolve(repo, range)?)
        }
    }
}

/// The plan's series (only its first `series_prefix` patches when set).
pub fn load_series(plan: &RunPlan) -> Result<Option<Series>> {
    let Some(p) = &plan.series else {
        return Ok(None);
    };
    let mut s = Series::load(p)?;
    if let Some(n) = plan.series_prefix {
        s.patches.truncate(n);
    }
    Ok(Some(s))
}

/// A source tree with the plan's series applied.
pub struct Prepared {
    pub tree: Tree,
    /// `6.1.158`.
    pub version: String,
}

/// Stage: source + series.
pub fn prepare(plan: &RunPlan, log: &mut RunLog) -> Stage<Prepared> {
    let pristine = log.step(
        StageName::Source,
        Some(("source", "kernel source tree".into())),
        || fetch_source(plan),
    )?;
    eprintln!("    {} at {}", pristine.describe, pristine.path.display());
    let series = log.step(StageName::Series, None, || load_series(plan))?;
    let tree = match &series {
        Some(s) => log.step(
            StageName::Series,
            Some(("series", s.origin.display().to_string())),
            || series::patched_tree(&pristine, s),
        )?,
        // A local tree is built in place. A cached source is built from its
        // per-version working copy too, so that with and without a series the
        // compiler sees the same paths and ccache serves what the series left alone.
        None if pristine.local => pristine,
        None => log.step(StageName::Series, None, || {
            series::patched_tree(&pristine, &Series::empty())
        })?,
    };
    let version = source::kernel_version(&tree.path);
    log.record.kernel = Some(version.clone());
    let _ = log.record.save(&log.dir);
    Ok(Prepared { tree, version })
}

/// A built kernel.
pub struct Built {
    pub kernel: PathBuf,
    /// The build directory (`O=`), for the upstream C suites' headers.
    pub build_dir: PathBuf,
}

/// Stage: kconfig + build (nothing to do when the build directory is up to date).
pub fn build(plan: &RunPlan, p: &Prepared, log: &mut RunLog) -> Stage<Built> {
    // Named by kernel version: the key tells contents apart, so a target's base
    // (`--no-series`, `--compare-base`) reuses the plain target's build.
    let bd = log.step(StageName::Kconfig, None, || {
        let mut bd = build::plan(&p.tree, &format!("linux-{}", p.version), &plan.fragments)?;
        if let Some(d) = &plan.build_dir {
            bd.dir = d.clone();
        }
        Ok(bd)
    })?;
    if build::up_to_date(&p.tree, &bd) {
        eprintln!("==> build: unchanged, reusing {}", bd.dir.display());
        return Ok(Built {
            kernel: build::bzimage(&bd.dir),
            build_dir: bd.dir,
        });
    }
    let what = format!(
        "tinyconfig + {} fragment(s), {}",
        plan.fragments.len(),
        p.version
    );
    log.step(StageName::Kconfig, Some(("kconfig", what)), || {
        build::configure(&p.tree, &bd)
    })?;
    let what = format!(
        "bzImage in {} (-j{})",
        bd.dir.display(),
        crate::util::jobs()
    );
    let r = log.step(StageName::Build, Some(("build", what)), || {
        build::build(&p.tree, &bd)
    });
    match r {
        Ok(kernel) => Ok(Built {
            kernel,
            build_dir: bd.dir,
        }),
        Err(mut f) => {
            let log_path = bd.dir.join("build.log");
            if let Ok(text) = std::fs::read_to_string(&log_path) {
                f.first_error = Some(build::first_error(&text));
                f.build_log = Some(log_path);
            }
            Err(log.fail(*f))
        }
    }
}

/// The initramfs of a run.
pub struct Initrd {
    pub path: PathBuf,
}

/// Stage: the initramfs (static guest binaries, the plan's suites, newc cpio).
pub fn pack(plan: &RunPlan, p: &Prepared, b: &Built, log: &mut RunLog) -> Stage<Initrd> {
    let path = log.dir.join("initramfs.cpio");
    log.step(
        StageName::Initramfs,
        Some(("initramfs", "static guest binaries + newc cpio".into())),
        || {
            let bins = initramfs::build_guest(None)?;
            let init = initramfs::read_static(&bins.join("init"))?;
            let mut members = Vec::new();
            // A suite may be listed more than once (timing runs): one copy in the archive.
            for s in plan.unique_suites() {
                let bin = if s.ends_with(".c") {
                    initramfs::build_upstream_c(&p.tree.path, &b.build_dir, &s)?
                } else {
                    bins.join(&s)
                };
                members.push((s, initramfs::read_static(&bin)?));
            }
            let cpio = initramfs::write_newc(&initramfs::layout(init, members));
            std::fs::write(&path, &cpio)?;
            Ok(())
        },
    )?;
    Ok(Initrd { path })
}

/// The kernel command line of a plan: the one call into the guest protocol's
/// encoding (an unencodable setting is a set-up error).
pub fn guest_cmdline(plan: &RunPlan) -> Result<String> {
    let q = &plan.qemu;
    let guest = guest_protocol::Settings {
        suites: Some(plan.suites.clone()),
        timeout_s: q.suite_timeout_s,
        thp: q.thp,
        hugepages: q.hugepages,
        swap_mib: q.swap_mib,
        repeat: plan.repeat,
    };
    qemu::append_line(&guest, &q.append)
}

/// A finished boot: its facts and where its output is.
pub struct Booted {
    pub facts: BootFacts,
    pub console: PathBuf,
}

impl Booted {
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).to_string()
    }
}

/// Stage: boot the kernel with the initramfs, feed each results line to `judge` as
/// it arrives, and show the raw line and each suite's live verdict.
pub fn boot(
    plan: &RunPlan,
    b: &Built,
    i: &Initrd,
    judge: &mut Judge<'_>,
    log: &mut RunLog,
) -> Stage<Booted> {
    let q = &plan.qemu;
    let append = log.step(StageName::Boot, None, || guest_cmdline(plan))?;
    let vm = qemu::Vm {
        kernel: b.kernel.clone(),
        initrd: i.path.clone(),
        memory_mib: q.memory_mib,
        cpus: q.cpus,
        append,
        console_log: log.dir.join("console.log"),
        results_raw: log.dir.join("results.ktap"),
        timeout: Duration::from_secs(q.timeout_s),
    };
    let mut what = format!("{} suite(s): {}", plan.suites.len(), plan.suites.join(", "));
    if plan.repeat > 1 {
        what.push_str(&format!(", {} times over", plan.repeat));
    }
    let outcome = log.step(StageName::Boot, Some(("boot+test", what)), || {
        let started = Instant::now();
        let mut live = |line: &str| {
            let t = started.elapsed().as_secs_f64();
            for p in judge.feed(line) {
                match p {
                    Progress::Line(l) => eprintln!("    [{t:>6.1}s] {l}"),
                    Progress::Suite(s) => {
                        eprintln!("    [{t:>6.1}s] ==> {}: {}", s.name, s.verdict())
                    }
                }
            }
        };
        qemu::run(
            &vm,
            plan.accel.into(),
            Duration::from_secs(plan.kvm_deadline_s),
            &target_dir().join("test-kernel"),
            &mut live,
        )
    })?;
    let facts = BootFacts {
        kvm: outcome.kvm,
        watchdog_fired: outcome.timed_out,
        watchdog_s: q.timeout_s,
        qemu_exit: outcome.status.and_then(|s| s.code()),
        elapsed_s: outcome.elapsed.as_secs_f64(),
        qemu_stderr: outcome.stderr,
    };
    log.record.boot = Some(facts.clone());
    let _ = log.record.save(&log.dir);
    Ok(Booted {
        facts,
        console: vm.console_log,
    })
}

/// Reads a saved run's results and console (missing files read as empty).
pub fn saved_output(dir: &Path) -> (String, String) {
    let read = |n: &str| {
        String::from_utf8_lossy(&std::fs::read(dir.join(n)).unwrap_or_default()).to_string()
    };
    (read("results.ktap"), read("console.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_applied_becomes_structured_failure() {
        let e: anyhow::Error = NotApplied {
            patch: "0002-x.patch".into(),
            problems: vec!["fs/proc/task_mmu.c: Hunk #2 FAILED at 120.".into()],
        }
        .into();
        let e = e.context("preparing");
        let f = StageFailure::new(StageName::Series, &e);
        assert_eq!(f.exit(), Exit::Setup);
        assert_eq!(f.patch.as_deref(), Some("0002-x.patch"));
        assert_eq!(f.hunks, ["fs/proc/task_mmu.c: Hunk #2 FAILED at 120."]);
        let j = serde_json::to_string(&f).unwrap();
        assert!(j.contains("\"stage\":\"series\""), "{j}");
        assert_eq!(StageName::Boot.to_string(), "boot");
    }
}
