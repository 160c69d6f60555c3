//! `/init`, PID 1 of the test VM.
//!
//! An ordered boot script of small named steps. A step that fails is logged to the
//! console and recorded as a `# init: <step>: <error>` diagnostic in the results, and
//! the boot goes on. The script always ends in [`system::shutdown`], which never
//! returns. Settings come from `/proc/cmdline` (parsed by [`guest_protocol::cmdline`]);
//! results go to `/dev/ttyS1` as KTAP (see [`guest_init::runner`]) with the init's own
//! lines formatted by [`guest_protocol::Marker`].

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use guest_init::runner::{self, Options};
use guest_init::{log, swap, system};
use guest_protocol::cmdline::{self, Settings, Thp};
use guest_protocol::Marker;

/// Where the suites are in the initramfs.
const SUITES_DIR: &str = "/suites";
/// The results port (the second serial port).
const RESULTS_PORT: &str = "/dev/ttyS1";

/// What the boot steps found out, for the KTAP preamble.
struct Boot {
    settings: Settings,
    /// `# init: ...` markers, in order.
    notes: Vec<Marker>,
    thp: String,
    hugepages_got: String,
    kernel: String,
    clocksource: String,
}

impl Boot {
    /// Runs one named step; an error is logged and kept as a diagnostic.
    fn step(&mut self, name: &str, f: impl FnOnce(&mut Boot) -> Result<(), String>) {
        if let Err(e) = f(self) {
            self.note(name, e);
        }
    }

    /// A step's problem: logged now, a `# init: <step>: <message>` marker later.
    fn note(&mut self, step: &str, message: String) {
        log!("{step}: {message}");
        self.notes.push(Marker::StepError {
            step: step.to_string(),
            message,
        });
    }
}

fn mount_filesystems(b: &mut Boot) -> Result<(), String> {
    let errors: Vec<String> = system::MOUNTS
        .iter()
        .filter_map(|m| system::mount(m).err())
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    // Report each failed mount on its own line; the step itself then succeeds.
    for e in errors {
        b.note("mount_filesystems", e);
    }
    Ok(())
}

fn console_fds(b: &mut Boot) -> Result<(), String> {
    let fixed = system::ensure_console_fds()?;
    if !fixed.is_empty() {
        b.note(
            "console_fds",
            format!(
                "fds {fixed:?} were closed at boot (no /dev/console in the initramfs?); \
                 opened /dev/console on them"
            ),
        );
    }
    Ok(())
}

fn read_cmdline(b: &mut Boot) -> Result<(), String> {
    let text = system::read_file("/proc/cmdline")?;
    let parsed = cmdline::parse(&text);
    b.settings = parsed.settings;
    for d in parsed.diagnostics {
        b.note("read_cmdline", d);
    }
    Ok(())
}

fn set_thp(b: &mut Boot) -> Result<(), String> {
    if !system::exists(system::THP_ENABLED) {
        b.thp = "unavailable".into();
        return Err(format!(
            "{} missing (kernel without CONFIG_TRANSPARENT_HUGEPAGE)",
            system::THP_ENABLED
        ));
    }
    let want = b.settings.thp.as_str();
    let mut errors = Vec::new();
    if let Err(e) = system::write_file(system::THP_ENABLED, want) {
        errors.push(e);
    }
    // Direct compaction on fault, so that the tests' THP allocations succeed.
    if b.settings.thp != Thp::Never {
        if let Err(e) = system::write_file(system::THP_DEFRAG, want) {
            errors.push(e);
        }
    }
    match system::read_file(system::THP_ENABLED) {
        Ok(content) => {
            let got = system::selected_choice(&content).unwrap_or("unknown");
            b.thp = got.to_string();
            if got != want {
                errors.push(format!(
                    "asked for thp={want}, the kernel shows {content:?}"
                ));
            }
        }
        Err(e) => {
            b.thp = "unknown".into();
            errors.push(e);
        }
    }
    match system::read_file(system::THP_DEFRAG) {
        Ok(content) => {
            let got = system::selected_choice(&content).unwrap_or("unknown");
            b.notes.push(Marker::ThpDefrag(got.to_string()));
        }
        Err(e) => errors.push(e),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn set_hugepages(b: &mut Boot) -> Result<(), String> {
    if !system::exists(system::NR_HUGEPAGES) {
        b.hugepages_got = "unavailable".into();
        return Err(format!(
            "{} missing (kernel without CONFIG_HUGETLBFS)",
            system::NR_HUGEPAGES
        ));
    }
    let want = b.settings.hugepages;
    let written = system::write_file(system::NR_HUGEPAGES, &want.to_string());
    let got = system::read_file(system::NR_HUGEPAGES);
    b.hugepages_got = got.clone().unwrap_or_else(|_| "unknown".into());
    written?;
    let got = got?;
    if got != want.to_string() {
        return Err(format!(
            "asked for {want} huge pages, the kernel gave {got} (memory too small or \
             fragmented?)"
        ));
    }
    Ok(())
}

/// `harness.swap=<MiB>`: a swap area on the RAM disk, so that MADV_PAGEOUT swaps.
fn set_swap(b: &mut Boot) -> Result<(), String> {
    let mib = b.settings.swap_mib;
    if mib == 0 {
        return Ok(());
    }
    let kib = swap::setup(swap::DEVICE, mib)?;
    b.notes.push(Marker::Swap {
        mib,
        device: swap::DEVICE.to_string(),
        listed_kib: kib,
    });
    Ok(())
}

fn kernel_info(b: &mut Boot) -> Result<(), String> {
    let release = system::kernel_release();
    let clocksource = system::read_file(system::CLOCKSOURCE);
    b.kernel = release.clone().unwrap_or_else(|_| "unknown".into());
    b.clocksource = clocksource.clone().unwrap_or_else(|_| "unknown".into());
    release?;
    clocksource?;
    Ok(())
}

/// The results port, or `None` for the console (our stdout) when it cannot be opened.
fn open_results(b: &mut Boot) -> Option<File> {
    match system::open_results_port(RESULTS_PORT) {
        Ok(f) => Some(f),
        Err(e) => {
            b.note(
                "open_results",
                format!("{e}; writing results to the console instead"),
            );
            None
        }
    }
}

/// The suites to run, in order: the list (or every suite) `harness.repeat` times over.
fn suite_list(b: &mut Boot) -> Vec<String> {
    let once = if let Some(list) = &b.settings.suites {
        list.clone()
    } else {
        match runner::list_suites(Path::new(SUITES_DIR)) {
            Ok(list) => list,
            Err(e) => {
                b.note("suite_list", format!("read_dir {SUITES_DIR}: {e}"));
                Vec::new()
            }
        }
    };
    runner::repeat_list(&once, b.settings.repeat)
}

fn child_options(settings: &Settings) -> Options {
    let mut opts = Options::new(settings.timeout());
    let env = [
        ("PATH", "/suites:/"),
        ("TMPDIR", "/tmp"),
        ("HOME", "/tmp"),
        ("TERM", "dumb"),
    ];
    opts.env = Some(
        env.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect(),
    );
    opts.console_progress = true;
    opts.reap_orphans = true;
    opts
}

/// The boot script. Returns when the results are written; the caller shuts down.
fn boot() {
    let mut b = Boot {
        settings: Settings::default(),
        notes: Vec::new(),
        thp: "unknown".into(),
        hugepages_got: "unknown".into(),
        kernel: "unknown".into(),
        clocksource: "unknown".into(),
    };
    b.step("mount_filesystems", mount_filesystems);
    b.step("console_fds", console_fds);
    log!("starting (guest-init {})", env!("CARGO_PKG_VERSION"));
    b.step("read_cmdline", read_cmdline);
    b.step("set_thp", set_thp);
    b.step("set_hugepages", set_hugepages);
    b.step("swap", set_swap);
    b.step("kernel_info", kernel_info);
    b.step("chdir_tmp", |_| {
        // The children inherit it (Command::current_dir fails with ENOSYS in the guest).
        std::env::set_current_dir("/tmp").map_err(|e| format!("chdir(\"/tmp\"): {e}"))
    });
    let mut results = open_results(&mut b);
    let names = suite_list(&mut b);

    let header = Marker::Boot {
        kernel: b.kernel.clone(),
        clocksource: b.clocksource.clone(),
        thp: b.thp.clone(),
        hugepages_requested: b.settings.hugepages,
        hugepages_got: b.hugepages_got.clone(),
    };
    log!("{}", header.to_string().trim_start_matches("# init: "));
    let mut preamble = vec![header];
    preamble.append(&mut b.notes);

    let opts = child_options(&b.settings);
    let dir = Path::new(SUITES_DIR);
    let summary = match results.as_mut() {
        Some(port) => {
            let summary = runner::run_suites(dir, &names, &opts, &preamble, port);
            // Everything must have left the UART before the reboot.
            if let Err(e) = system::drain_tty(port) {
                log!("drain results port: {e}");
            }
            summary
        }
        None => {
            let mut stdout = std::io::stdout();
            let summary = runner::run_suites(dir, &names, &opts, &preamble, &mut stdout);
            if let Err(e) = stdout.flush() {
                log!("flush results: {e}");
            }
            summary
        }
    };
    let failed = summary
        .results
        .iter()
        .filter(|r| !r.outcome.is_ok())
        .count();
    log!(
        "done: {} suites, {failed} not ok, exit={}",
        summary.results.len(),
        summary.exit_code
    );
}

fn main() {
    let pid = std::process::id();
    if pid != 1 {
        let _ = writeln!(
            std::io::stderr(),
            "init: this is the PID 1 of the test VM (it mounts file systems, runs \
             {SUITES_DIR}/* and reboots the machine); it refuses to run as pid {pid}"
        );
        std::process::exit(2);
    }
    if std::panic::catch_unwind(boot).is_err() {
        log!("the boot script panicked; shutting down");
    }
    system::shutdown()
}
