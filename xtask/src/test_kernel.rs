//! The `test-kernel` command: runs the stages in order for each target, times them,
//! and turns the analysis into files and an exit code.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::build;
use crate::hosttools;
use crate::initramfs;
use crate::qemu::{self, Accel};
use crate::results::{self, Analysis};
use crate::series::{self, Series};
use crate::source;
use crate::targets::{Matrix, Target};
use crate::util::{project_root, target_dir, Exit, Stage};

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
    /// Build in this directory instead of the cached one under target/kernel/build
    /// (created if missing; ccache still serves). The host-tool and fault tests build
    /// from an empty directory with it.
    #[arg(long)]
    pub build_dir: Option<PathBuf>,
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

pub fn parse_offline(results: &Path, target: Option<&str>, console: Option<&Path>) -> Result<Exit> {
    let m = matrix()?;
    let t = m.get(target.unwrap_or(&m.default))?;
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let con = console
        .map(std::fs::read_to_string)
        .transpose()?
        .unwrap_or_default();
    let a = results::analyse(&ktap::parse(&text), t, &t.suite_order(), &con);
    print!("{}", results::table(&a, &[]));
    Ok(a.exit(false))
}

pub fn main(o: Options) -> Result<Exit> {
    let m = matrix_from(o.targets.as_deref())
        .map_err(|e| crate::util::setup_error(format!("{e:#}")))?;
    let names: Vec<String> = if o.all {
        m.targets.iter().map(|t| t.name.clone()).collect()
    } else {
        vec![o.target.clone().unwrap_or_else(|| m.default.clone())]
    };
    hosttools::ensure()?;
    let mut worst = Exit::Ok;
    for name in names {
        let t = m.get(&name)?.clone();
        let r = if o.compare_base {
            compare_base(&t, &o)
        } else {
            run_target(&t, &o).map(|(c, _)| c)
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

fn run_dir(target: &str) -> Result<PathBuf> {
    let base = target_dir().join("test-kernel").join(target);
    std::fs::create_dir_all(&base)?;
    let stamp = duct::cmd!("date", "-u", "+%Y%m%d-%H%M%S")
        .read()
        .unwrap_or_else(|_| "run".into());
    let mut dir = base.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}.{n}"));
    }
    std::fs::create_dir_all(&dir)?;
    let latest = base.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(dir.file_name().expect("named"), &latest);
    Ok(dir)
}

/// Runs the target with and without its series and prints what changed.
fn compare_base(t: &Target, o: &Options) -> Result<Exit> {
    if t.series.is_none() && o.series.is_none() {
        return Err(crate::util::setup_error(format!(
            "--compare-base: target {} has no series",
            t.name
        )));
    }
    let (code, with) = run_target(t, o)?;
    // Upstream's C programs come from the tree under test: the base tree may not
    // have them (the series adds pagemap_ioctl.c to 6.1), so the base runs the Rust
    // suites, and only those are compared.
    let ran: Vec<String> = if o.suites.is_empty() {
        t.suite_order()
    } else {
        o.suites.clone()
    };
    let rust_suites: Vec<String> = ran.into_iter().filter(|s| !s.ends_with(".c")).collect();
    let base_opts = Options {
        no_series: true,
        series: None,
        suites: rust_suites.clone(),
        out: o.out.as_ref().map(|d| d.join("base")),
        ..o.clone()
    };
    eprintln!("==> --compare-base: the same target without its series");
    let (_, base) = run_target(t, &base_opts)?;
    let with = results::Analysis {
        tests: with
            .tests
            .into_iter()
            .filter(|x| rust_suites.contains(&x.suite))
            .collect(),
        suites: with
            .suites
            .into_iter()
            .filter(|x| rust_suites.contains(&x.name))
            .collect(),
        ..with
    };
    let changes = results::compare(&base, &with);
    println!(
        "
{}",
        results::comparison_table(&changes)
    );
    let regressions = changes.iter().filter(|c| c.is_regression()).count();
    if regressions > 0 {
        println!("{regressions} regression(s): passed without the series, not with it");
        return Ok(std::cmp::max_by_key(code, Exit::Mismatch, |e| *e as u8));
    }
    Ok(code)
}

/// The whole pipeline for one target.
pub fn run_target(t: &Target, o: &Options) -> Result<(Exit, Analysis)> {
    let mut timings: Vec<(&'static str, Duration)> = Vec::new();
    let total = Instant::now();
    eprintln!("==> target {}: {}", t.name, t.description);

    // Source, series and build share caches with any other run: one at a time.
    let kernel_lock = crate::util::lock(&target_dir().join("kernel/lock"))?;
    let st = Stage::start("source", "kernel source tree");
    let choice = match &o.tree {
        Some(p) => source::Choice::Local(p),
        None => source::Choice::Target(&t.source),
    };
    let pristine = source::fetch(choice, o.tarball)?;
    eprintln!("    {} at {}", pristine.describe, pristine.path.display());
    st.done(&mut timings);

    let series_path = if o.no_series {
        None
    } else {
        o.series
            .clone()
            .or_else(|| t.series.as_ref().map(|s| project_root().join(s)))
    };
    let tree = match &series_path {
        Some(p) => {
            let st = Stage::start("series", p.display());
            let s = Series::load(p)?;
            let tree = series::patched_tree(&pristine, &s)?;
            st.done(&mut timings);
            tree
        }
        // A local tree is built in place. A cached source is built from its
        // per-version working copy too, so that with and without a series the
        // compiler sees the same paths and ccache serves what the series left alone.
        None if pristine.local => pristine,
        None => series::patched_tree(&pristine, &Series::empty())?,
    };
    let version = source::kernel_version(&tree.path);

    let mut fragments: Vec<PathBuf> = t
        .configs
        .iter()
        .map(|c| project_root().join("configs").join(c))
        .collect();
    fragments.extend(o.extra_configs.iter().cloned());
    // Named by kernel version: the key tells contents apart, so a target's base
    // (`--no-series`, `--compare-base`) reuses the plain target's build.
    let mut bd = build::plan(&tree, &format!("linux-{version}"), &fragments)?;
    if let Some(d) = &o.build_dir {
        bd.dir = std::path::absolute(d)?;
    }
    let kernel = if build::up_to_date(&tree, &bd) {
        eprintln!("==> build: unchanged, reusing {}", bd.dir.display());
        build::bzimage(&bd.dir)
    } else {
        let st = Stage::start(
            "kconfig",
            format!("tinyconfig + {} fragment(s), {version}", fragments.len()),
        );
        build::configure(&tree, &bd)?;
        st.done(&mut timings);
        let st = Stage::start(
            "build",
            format!(
                "bzImage in {} (-j{})",
                bd.dir.display(),
                crate::util::jobs()
            ),
        );
        let img = build::build(&tree, &bd)?;
        st.done(&mut timings);
        img
    };

    let run = match &o.out {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => run_dir(&t.name)?,
    };
    let st = Stage::start("initramfs", "static guest binaries + newc cpio");
    let suites: Vec<String> = if o.suites.is_empty() {
        t.suite_order()
    } else {
        o.suites.clone()
    };
    for s in &suites {
        if !t.suites.contains_key(s) {
            return Err(crate::util::setup_error(format!(
                "--suites: {s:?} is not a suite of target {}",
                t.name
            )));
        }
    }
    let bins = initramfs::build_guest()?;
    let init = initramfs::read_static(&bins.join("init"))?;
    let mut members = Vec::new();
    // A suite may be listed more than once (timing runs): one copy in the archive.
    let mut unique = suites.clone();
    unique.sort();
    unique.dedup();
    for s in &unique {
        let bin = if s.ends_with(".c") {
            initramfs::build_upstream_c(&tree.path, &bd.dir, s)?
        } else {
            bins.join(s)
        };
        members.push((s.clone(), initramfs::read_static(&bin)?));
    }
    let cpio = initramfs::write_newc(&initramfs::layout(init, members));
    let initrd = run.join("initramfs.cpio");
    std::fs::write(&initrd, &cpio)?;
    st.done(&mut timings);

    // The kernel and the C suites are built: other runs may use the caches now.
    drop(kernel_lock);
    let st = Stage::start(
        "boot+test",
        format!("{} suite(s): {}", suites.len(), suites.join(", ")),
    );
    let q = &t.qemu;
    let vm = qemu::Vm {
        kernel,
        initrd,
        memory_mib: q.memory_mib,
        cpus: q.cpus,
        append: qemu::kernel_cmdline(
            &suites,
            o.suite_timeout.unwrap_or(q.suite_timeout_s),
            &q.thp,
            q.hugepages,
            q.swap_mib,
            &format!("{} {}", q.append, o.append.as_deref().unwrap_or("")),
        ),
        console_log: run.join("console.log"),
        results_raw: run.join("results.ktap"),
        timeout: Duration::from_secs(q.timeout_s),
    };
    let started = Instant::now();
    let mut live = |line: &str| {
        eprintln!("    [{:>6.1}s] {line}", started.elapsed().as_secs_f64());
    };
    let outcome = qemu::run(
        &vm,
        o.accel,
        Duration::from_secs(o.kvm_deadline),
        &target_dir().join("test-kernel"),
        &mut live,
    )?;
    st.done(&mut timings);
    if o.require_kvm && !outcome.kvm {
        return Err(crate::util::setup_error(
            "--require-kvm: the guest did not run under KVM",
        ));
    }

    let text = std::fs::read_to_string(&vm.results_raw).unwrap_or_default();
    let console =
        String::from_utf8_lossy(&std::fs::read(&vm.console_log).unwrap_or_default()).to_string();
    let root = ktap::parse(&text);
    let a = results::analyse(&root, t, &suites, &console);
    if o.require_kvm {
        // The guest's own word: its clocksource is kvm-clock only under KVM.
        let cs = results::guest_clocksource(&a);
        if cs.as_deref() != Some("kvm-clock") {
            return Err(crate::util::setup_error(format!(
                "--require-kvm: the guest reports clocksource {}, not kvm-clock",
                cs.as_deref().unwrap_or("(none)")
            )));
        }
    }
    let exit = a.exit(outcome.timed_out);
    timings.push(("total", total.elapsed()));
    write_reports(&run, t, &a, &timings, &outcome, exit, &version)?;
    println!(
        "\n{} ({version}, {}): results in {}",
        t.name,
        if outcome.kvm { "KVM" } else { "TCG" },
        run.display()
    );
    if outcome.timed_out {
        println!("watchdog: QEMU killed after {} s", q.timeout_s);
    }
    if exit == Exit::Crash && !outcome.stderr.trim().is_empty() {
        println!("qemu stderr:\n{}", outcome.stderr.trim());
    }
    print!("{}", results::table(&a, &timings));
    if unique.len() < suites.len() {
        print!("{}", results::timing_table(&results::suite_times(&text)));
    }
    println!("exit {}", exit as u8);
    Ok((exit, a))
}

fn write_reports(
    run: &Path,
    t: &Target,
    a: &Analysis,
    timings: &[(&'static str, Duration)],
    outcome: &qemu::Outcome,
    exit: Exit,
    version: &str,
) -> Result<()> {
    std::fs::write(run.join("junit.xml"), results::junit(&t.name, a))?;
    let phases: serde_json::Map<String, serde_json::Value> = timings
        .iter()
        .map(|(n, d)| (n.to_string(), serde_json::json!(d.as_secs_f64())))
        .collect();
    let summary = serde_json::json!({
        "target": t.name,
        "kernel": version,
        "accel": if outcome.kvm { "kvm" } else { "tcg" },
        "exit": exit as u8,
        "watchdog_fired": outcome.timed_out,
        "qemu_exit": outcome.status.and_then(|s| s.code()),
        "boot_and_test_s": outcome.elapsed.as_secs_f64(),
        "phases_s": phases,
        "analysis": a,
    });
    std::fs::write(
        run.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    Ok(())
}
