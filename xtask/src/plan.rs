//! The run plan: everything one run does, resolved once from the CLI and
//! `configs/targets.yaml`, before any stage starts.
//!
//! Stages ([`crate::stages`]) take a [`RunPlan`] and nothing from the CLI. The plan
//! is saved as the `plan` of `run.json` in the run directory ([`RunRecord`]), so a
//! run can be replayed offline (`cargo xtask parse <run dir>`) with exactly the
//! suites and expectations it ran with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::qemu::Accel;
use crate::targets::{Expect, QemuSettings, Source, Target};
use crate::util::{project_root, setup_error, target_dir};

/// Where the kernel source comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcePlan {
    /// The target's source (Debian package or tarball).
    Target {
        source: Source,
        /// `--tarball`: the URL source even where a Debian package is named.
        prefer_tarball: bool,
    },
    /// `--tree`: a developer's tree, never modified.
    Local { path: PathBuf },
    /// `--tree REPO --commits BASE..HEAD`: the base commit of a git range (its
    /// commits are the series, written to an mbox).
    Git { repo: PathBuf, range: String },
}

/// The accelerator the run asks for (`--accel`); serialisable mirror of [`Accel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelPlan {
    Auto,
    Kvm,
    Tcg,
}

impl From<Accel> for AccelPlan {
    fn from(a: Accel) -> Self {
        match a {
            Accel::Auto => AccelPlan::Auto,
            Accel::Kvm => AccelPlan::Kvm,
            Accel::Tcg => AccelPlan::Tcg,
        }
    }
}

impl From<AccelPlan> for Accel {
    fn from(a: AccelPlan) -> Self {
        match a {
            AccelPlan::Auto => Accel::Auto,
            AccelPlan::Kvm => Accel::Kvm,
            AccelPlan::Tcg => Accel::Tcg,
        }
    }
}

/// One run, fully resolved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPlan {
    pub target: String,
    #[serde(default)]
    pub description: String,
    pub source: SourcePlan,
    /// The series to apply (a directory with a `series` file, or an mbox); `None`
    /// runs the base kernel.
    pub series: Option<PathBuf>,
    /// Apply only the first N patches of the series (per-patch loops); `None`: all.
    #[serde(default)]
    pub series_prefix: Option<usize>,
    /// Config fragments merged over tinyconfig, in order (absolute paths).
    pub fragments: Vec<PathBuf>,
    /// QEMU and guest settings, with the CLI's overrides applied (`--suite-timeout`,
    /// `--append`).
    pub qemu: QemuSettings,
    /// Suites in run order; a suite may repeat (timing runs).
    pub suites: Vec<String>,
    /// `--repeat N`: the guest runs the whole suite list N times in one boot; a test
    /// with mixed verdicts across the repetitions is flaky (judge.rs).
    #[serde(default = "one")]
    pub repeat: u32,
    /// What each suite that runs is expected to do.
    pub expect: BTreeMap<String, Expect>,
    pub accel: AccelPlan,
    /// How long KVM may stay silent before `auto` falls back to TCG (seconds).
    pub kvm_deadline_s: u64,
    /// Fail unless the guest ran under KVM (and says so: clocksource kvm-clock).
    pub require_kvm: bool,
    /// `--out`: the run directory; `None`: `target/test-kernel/<target>/<time>`.
    pub out: Option<PathBuf>,
    /// `--build-dir`: build here instead of the cached build directory (absolute).
    #[serde(default)]
    pub build_dir: Option<PathBuf>,
    /// The target's allowed kernel alarms.
    #[serde(default)]
    pub alarms_allow: crate::alarms::Allowlist,
    /// Upstream's C programs and their Rust ports the run has both of, with the
    /// target's explained differences (configs/c-vs-rust.yaml).
    #[serde(default)]
    pub c_vs_rust: Vec<crate::crosscheck::Pair>,
}

fn one() -> u32 {
    1
}

/// The CLI's choices that shape a plan (test_kernel's `Options`, minus the modes).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub tree: Option<PathBuf>,
    pub series: Option<PathBuf>,
    pub no_series: bool,
    pub tarball: bool,
    pub accel: Option<Accel>,
    pub kvm_deadline_s: Option<u64>,
    pub suite_timeout_s: Option<u64>,
    pub suites: Vec<String>,
    pub require_kvm: bool,
    pub extra_configs: Vec<PathBuf>,
    pub append: Option<String>,
    pub out: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    /// `--commits BASE..HEAD` of the `--tree` repository.
    pub commits: Option<String>,
    /// `--repeat N` (`None`: once).
    pub repeat: Option<u32>,
}

impl RunPlan {
    /// Resolves a target and the CLI's overrides into a plan; bad suites are
    /// set-up errors naming the suite and the target.
    pub fn resolve(t: &Target, o: &Overrides) -> Result<RunPlan> {
        let (source, git_series) = match (&o.tree, &o.commits) {
            (Some(repo), Some(range)) => {
                if o.series.is_some() {
                    return Err(setup_error(
                        "--commits and --series both name a series: give one",
                    ));
                }
                let r = crate::git::resolve(repo, range)?;
                let mbox = crate::git::series_file(&r)?;
                (
                    SourcePlan::Git {
                        repo: r.repo.clone(),
                        range: range.clone(),
                    },
                    Some(mbox),
                )
            }
            (None, Some(_)) => {
                return Err(setup_error(
                    "--commits BASE..HEAD needs --tree, the git repository they are in",
                ))
            }
            (Some(p), None) => (SourcePlan::Local { path: p.clone() }, None),
            (None, None) => (
                SourcePlan::Target {
                    source: t.source.clone(),
                    prefer_tarball: o.tarball,
                },
                None,
            ),
        };
        let series = if o.no_series {
            None
        } else {
            git_series.or_else(|| {
                o.series
                    .clone()
                    .or_else(|| t.series.as_ref().map(|s| project_root().join(s)))
            })
        };
        let mut fragments: Vec<PathBuf> = t
            .configs
            .iter()
            .map(|c| project_root().join("configs").join(c))
            .collect();
        fragments.extend(o.extra_configs.iter().cloned());
        let mut qemu = t.qemu.clone();
        if let Some(s) = o.suite_timeout_s {
            qemu.suite_timeout_s = s;
        }
        if let Some(a) = &o.append {
            qemu.append = format!("{} {a}", qemu.append).trim().to_string();
        }
        let suites = if o.suites.is_empty() {
            t.suite_order()
        } else {
            o.suites.clone()
        };
        let repeat = o.repeat.unwrap_or(1);
        if repeat == 0 {
            return Err(setup_error("--repeat: must be at least 1"));
        }
        // The watchdog guards the whole boot: N repetitions get N times its time.
        qemu.timeout_s = qemu.timeout_s.saturating_mul(u64::from(repeat));
        let mut expect = BTreeMap::new();
        for s in &suites {
            let e = t.suites.get(s).ok_or_else(|| {
                setup_error(format!(
                    "--suites: {s:?} is not a suite of target {} (have: {})",
                    t.name,
                    t.suite_order().join(", ")
                ))
            })?;
            expect.insert(s.clone(), e.clone());
        }
        let c_vs_rust = crate::crosscheck::Config::builtin()
            .map_err(|e| setup_error(format!("{e:#}")))?
            .for_run(&t.name, &suites);
        Ok(RunPlan {
            target: t.name.clone(),
            description: t.description.clone(),
            source,
            series,
            series_prefix: None,
            fragments,
            qemu,
            suites,
            repeat,
            expect,
            accel: o.accel.unwrap_or(Accel::Auto).into(),
            kvm_deadline_s: o.kvm_deadline_s.unwrap_or(10),
            require_kvm: o.require_kvm,
            out: o.out.clone(),
            alarms_allow: t.alarms_allow.clone(),
            c_vs_rust,
            build_dir: o
                .build_dir
                .as_deref()
                .map(std::path::absolute)
                .transpose()?,
        })
    }

    /// The same run without its series, for `--compare-base`. Upstream's C programs
    /// come from the tree under test and the base tree may not have them (the series
    /// adds pagemap_ioctl.c to 6.1), so the base runs the Rust suites only.
    pub fn base(&self) -> RunPlan {
        let suites: Vec<String> = self
            .suites
            .iter()
            .filter(|s| !s.ends_with(".c"))
            .cloned()
            .collect();
        RunPlan {
            series: None,
            series_prefix: None,
            expect: self
                .expect
                .iter()
                .filter(|(k, _)| suites.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            c_vs_rust: self
                .c_vs_rust
                .iter()
                .filter(|p| suites.contains(&p.rust) && suites.contains(&p.c))
                .cloned()
                .collect(),
            suites,
            out: self.out.as_ref().map(|d| d.join("base")),
            ..self.clone()
        }
    }

    /// Each suite once, in first-run order.
    pub fn unique_suites(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        self.suites
            .iter()
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect()
    }

    /// Creates the run directory: `--out`, or a new `target/test-kernel/<target>/<time>`
    /// with `latest` pointing at it.
    pub fn create_run_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.out {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            return Ok(d.clone());
        }
        let base = target_dir().join("test-kernel").join(&self.target);
        crate::util::stamped_dir(&base)
    }
}

/// `run.json`: the plan and what each stage left, written as the run goes, so that
/// a run that stopped anywhere can be reported and replayed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub plan: RunPlan,
    /// Kernel version of the tree that was prepared (`6.1.158`).
    #[serde(default)]
    pub kernel: Option<String>,
    /// Each finished stage with its wall time in seconds, in order.
    #[serde(default)]
    pub timings: Vec<(String, f64)>,
    /// How the boot ended, if it happened.
    #[serde(default)]
    pub boot: Option<BootFacts>,
    /// The stage that stopped the run before a verdict from results, if any.
    #[serde(default)]
    pub failure: Option<crate::stages::StageFailure>,
}

/// How a boot ended, as recorded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BootFacts {
    pub kvm: bool,
    pub watchdog_fired: bool,
    pub watchdog_s: u64,
    pub qemu_exit: Option<i32>,
    pub elapsed_s: f64,
    #[serde(default)]
    pub qemu_stderr: String,
}

pub const RUN_JSON: &str = "run.json";

impl RunRecord {
    pub fn new(plan: RunPlan) -> RunRecord {
        RunRecord {
            plan,
            kernel: None,
            timings: Vec::new(),
            boot: None,
            failure: None,
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        // After SIGINT/SIGTERM the handler records the run; the main thread waits.
        crate::interrupt::park_if_interrupted();
        self.save_now(dir)
    }

    /// [`RunRecord::save`] from the signal handler itself.
    pub fn save_now(&self, dir: &Path) -> Result<()> {
        let p = dir.join(RUN_JSON);
        std::fs::write(&p, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", p.display()))
    }

    pub fn load(dir: &Path) -> Result<RunRecord> {
        let p = dir.join(RUN_JSON);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("reading {} (a run directory has one)", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Matrix;

    fn target() -> Target {
        Matrix::parse(
            "default: t\ntargets:\n  - name: t\n    source: { debian: x }\n    configs: [a.config]\n    series: patches/s\n    order: [soft-dirty, pagemap_ioctl.c, pagemap_ioctl]\n    suites:\n      soft-dirty: {}\n      pagemap_ioctl: { skip_suite: old }\n      pagemap_ioctl.c: {}\n",
        )
        .unwrap()
        .targets[0]
            .clone()
    }

    #[test]
    fn resolve_applies_overrides_and_checks_suites() {
        let t = target();
        let p = RunPlan::resolve(
            &t,
            &Overrides {
                suites: vec!["pagemap_ioctl".into(), "soft-dirty".into()],
                suite_timeout_s: Some(5),
                append: Some("quiet".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.suites, ["pagemap_ioctl", "soft-dirty"]);
        assert_eq!(p.expect.len(), 2);
        assert_eq!(p.qemu.suite_timeout_s, 5);
        assert_eq!(p.qemu.append, "quiet");
        assert!(p.series.unwrap().ends_with("patches/s"));
        let e = RunPlan::resolve(
            &t,
            &Overrides {
                suites: vec!["nope".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(format!("{e}").contains("\"nope\" is not a suite of target t"));
    }

    #[test]
    fn base_drops_series_and_c_suites_and_round_trips() {
        let p = RunPlan::resolve(
            &target(),
            &Overrides {
                out: Some("/tmp/x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let b = p.base();
        assert!(b.series.is_none());
        assert_eq!(b.suites, ["soft-dirty", "pagemap_ioctl"]);
        assert!(!b.expect.contains_key("pagemap_ioctl.c"));
        assert_eq!(b.out.as_deref(), Some(Path::new("/tmp/x/base")));
        let r = RunRecord::new(b);
        let back: RunRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.plan.suites, r.plan.suites);
    }
}
