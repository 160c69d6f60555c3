//! `cargo xtask`: the host side of the harness.
//!
//! [`targets`] + the CLI resolve into a [`plan::RunPlan`]; [`stages`] run it:
//! [`hosttools`], [`source`] + [`series`] (prepare), [`kconfig`] + [`build`],
//! [`initramfs`] (pack), [`qemu`] (boot); [`judge`] computes the verdict as results
//! arrive; [`report`] writes and prints it; [`compare`] sets two runs side by side.
//! The commands ([`test_kernel`], [`check_series`]) are short functions over those.

mod alarms;
mod bench;
mod build;
mod check_series;
mod compare;
mod crosscheck;
mod git;
mod hosttools;
mod initramfs;
mod interrupt;
mod judge;
mod kconfig;
mod mutants;
mod per_patch;
mod plan;
mod qemu;
mod report;
mod series;
mod source;
mod stages;
mod targets;
mod test_kernel;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, boot and test kernels for the soft-dirty / PAGEMAP_SCAN series"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a kernel (with its series), boot it in QEMU, run the suites, report.
    ///
    /// Exit codes: 0 every result as the target expects; 1 a result differs from the
    /// expectation (or the console shows WARNING/BUG/Oops); 2 set-up, source, series,
    /// config or build error; 3 the kernel crashed, hung or its output was cut short.
    TestKernel(test_kernel::Options),
    /// Time finding and resetting written pages by every approach the kernel has
    /// (PAGEMAP_SCAN, soft-dirty, mprotect+SIGSEGV, userfaultfd) and report it.
    ///
    /// Exit codes: 0 measured; 1 a cell failed its check; 2 set-up; 3 crash or cut short.
    Bench(bench::Options),
    /// List the targets of configs/targets.yaml.
    ListTargets {
        /// Machine-readable output (used by the GitHub Actions matrix).
        #[arg(long)]
        json: bool,
    },
    /// Build the kernel after each patch of a series (bisectability) and run
    /// checkpatch.pl on every patch.
    CheckSeries(check_series::Options),
    /// The declared host tools: list them, install what is missing, or make a PATH
    /// directory holding only them (the completeness test's host).
    HostTools {
        /// Fill this directory with links to the declared programs and nothing else.
        #[arg(long)]
        reduced_path: Option<PathBuf>,
        /// With --reduced-path: leave out this package's programs (repeatable).
        #[arg(long)]
        drop: Vec<String>,
        /// Install what is missing (as root; else print the command).
        #[arg(long)]
        install: bool,
        /// Print every declared package on one line (for `apt-get install` in CI).
        #[arg(long)]
        packages: bool,
    },
    /// Mutation testing of the series' added lines (issue 16). So far `--list` only:
    /// print the mutants, build nothing.
    Mutants(mutants::Options),
    /// Replay a saved run offline: its verdict, table and exit code.
    ///
    /// Given a run directory (or its results.ktap), the run is judged with the plan it
    /// recorded (run.json). A results file without run.json is judged against a
    /// target's suites (`--target`, `--suites`, `--console`).
    Parse {
        /// A run directory (`target/test-kernel/<target>/latest`) or a results file.
        path: PathBuf,
        /// Judge a bare results file against this target (default: the default target).
        #[arg(long)]
        target: Option<String>,
        /// The console log of a bare results file.
        #[arg(long)]
        console: Option<PathBuf>,
        /// The suites a bare results file ran (comma separated; default: the target's).
        #[arg(long, value_delimiter = ',')]
        suites: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = interrupt::install() {
        eprintln!("warning: cannot handle SIGINT/SIGTERM: {e}");
    }
    let r = match cli.cmd {
        Cmd::TestKernel(o) => test_kernel::main(o),
        Cmd::CheckSeries(o) => test_kernel::matrix().and_then(|m| {
            let name = o.target.clone().unwrap_or_else(|| m.default.clone());
            check_series::main(o, m.get(&name)?)
        }),
        Cmd::HostTools {
            reduced_path,
            drop,
            install,
            packages,
        } => {
            if packages {
                let all: Vec<&str> = hosttools::TOOLS.iter().map(|t| t.package).collect();
                println!("{}", all.join(" "));
                Ok(util::Exit::Ok)
            } else {
                hosttools::main(reduced_path.as_deref(), &drop, install)
            }
        }
        Cmd::Bench(o) => bench::main(o),
        Cmd::Mutants(o) => mutants::main(o),
        Cmd::ListTargets { json } => test_kernel::list_targets(json),
        Cmd::Parse {
            path,
            target,
            console,
            suites,
        } => test_kernel::parse(&path, target.as_deref(), console.as_deref(), &suites),
    };
    match r {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let code = util::exit_code_of(&e);
            eprintln!("error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}
