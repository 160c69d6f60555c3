//! Host tests that need a kernel feature the host may lack, made countable.
//!
//! `cargo test` has no run-time skip: a test that returns early is reported `ok`. So a
//! test that needs a host feature is written once as a plain function and declared
//! with [`host_tests!`], which generates
//!
//! - `needs_host::<name>`: an `#[ignore = "needs <features>"]` test (libtest prints
//!   it as `ignored, needs ...`: the count of such tests is fixed, not per host). Run by hand with `-- --ignored`, it first requires
//!   the features and *fails* naming the missing one.
//! - `host_feature_tests`: a normal test that probes the features once and runs every
//!   declared function whose features this host has (a failure in one fails it, named).
//!   For each one it cannot run it writes a line `host-skip: <binary>::<name>: needs
//!   <feature>: <why>` to the real stderr (past libtest's capture, so it shows in every
//!   `cargo test` log; CI counts them with `grep -c '^host-skip: '`).
//!
//! A missing feature is only ever a probe's verdict; a probe that fails for another
//! reason fails the test.

#![allow(
    dead_code,
    reason = "each test binary includes this file and uses a subset of the features"
)]

use std::io::Write;

/// A host kernel property a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// The PAGEMAP_SCAN ioctl on /proc/self/pagemap (6.7+).
    PagemapScan,
    /// A kernel *without* PAGEMAP_SCAN (the checks that the suites skip there).
    NoPagemapScan,
    /// userfaultfd with `UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED` (6.7+).
    UffdWpAsync,
    /// userfaultfd with every feature the pagemap_ioctl port asks for.
    UffdWpAsyncAll,
    /// A kernel *without* [`Feature::UffdWpAsyncAll`].
    NoUffdWpAsyncAll,
    /// CONFIG_MEM_SOFT_DIRTY (the `sd` VmFlag on a fresh mapping).
    SoftDirty,
    /// A kernel *without* CONFIG_MEM_SOFT_DIRTY (the forced-failure checks).
    NoSoftDirty,
    /// THP with `use_zero_page` = 1 (the huge zero page).
    ThpZeroPage,
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::PagemapScan => "PAGEMAP_SCAN",
            Feature::NoPagemapScan => "a kernel without PAGEMAP_SCAN",
            Feature::UffdWpAsync => "userfaultfd WP-async",
            Feature::UffdWpAsyncAll => "userfaultfd WP-async with the pagemap_ioctl features",
            Feature::NoUffdWpAsyncAll => {
                "a kernel without userfaultfd WP-async with the pagemap_ioctl features"
            }
            Feature::SoftDirty => "CONFIG_MEM_SOFT_DIRTY",
            Feature::NoSoftDirty => "a kernel without CONFIG_MEM_SOFT_DIRTY",
            Feature::ThpZeroPage => "THP with use_zero_page=1",
        }
    }

    /// `None` when the host has it, else why not. Panics when the probe itself fails.
    pub fn missing(self) -> Option<String> {
        let kernel = mm::probe::kernel_release();
        match self {
            Feature::PagemapScan => {
                let pm = mm::pagemap::Pagemap::open().expect("open /proc/self/pagemap");
                let ok = mm::probe::pagemap_scan_supported(&pm).expect("probe PAGEMAP_SCAN");
                (!ok).then(|| format!("kernel {kernel} has no PAGEMAP_SCAN ioctl"))
            }
            Feature::NoPagemapScan => Feature::PagemapScan
                .missing()
                .is_none()
                .then(|| format!("kernel {kernel} has PAGEMAP_SCAN")),
            Feature::NoUffdWpAsyncAll => Feature::UffdWpAsyncAll
                .missing()
                .is_none()
                .then(|| format!("kernel {kernel} has userfaultfd WP-async")),
            Feature::UffdWpAsync => uffd(mm::uffd::Userfaultfd::wp_async_anon()),
            Feature::UffdWpAsyncAll => uffd(mm::uffd::Userfaultfd::wp_async()),
            Feature::SoftDirty => {
                mm::probe::softdirty_unsupported_reason().expect("probe soft-dirty")
            }
            Feature::NoSoftDirty => {
                let sd = mm::probe::softdirty_supported().expect("probe soft-dirty");
                sd.then(|| format!("kernel {kernel} has soft-dirty"))
            }
            Feature::ThpZeroPage => {
                const P: &str = "/sys/kernel/mm/transparent_hugepage/use_zero_page";
                match std::fs::read_to_string(P) {
                    Ok(s) if s.trim() == "1" => None,
                    Ok(s) => Some(format!("{P} is {}", s.trim())),
                    Err(e) => Some(format!("{P}: {e} (no THP)")),
                }
            }
        }
    }
}

fn uffd(r: mm::Result<mm::uffd::Userfaultfd>) -> Option<String> {
    match r {
        Ok(_) => None,
        Err(e) if e.is_unsupported() => Some(e.to_string()),
        Err(e) => panic!("userfaultfd probe failed: {e}"),
    }
}

/// The first of `needs` this host lacks, with why.
pub fn first_missing(needs: &[Feature]) -> Option<(Feature, String)> {
    needs.iter().find_map(|&f| f.missing().map(|why| (f, why)))
}

/// For the `#[ignore]`d tests: fail, naming the feature, when the host lacks one.
pub fn require(needs: &[Feature]) {
    if let Some((f, why)) = first_missing(needs) {
        panic!("needs {}: {why}", f.name());
    }
}

/// Reports a test that could not run here, where every `cargo test` log shows it
/// (see the module doc), and returns the line.
pub fn report_skip(binary: &str, test: &str, f: Feature, why: &str) -> String {
    let line = format!("host-skip: {binary}::{test}: needs {}: {why}", f.name());
    // Straight to fd 2: `eprintln!` would be captured and dropped for a passing test.
    let _ = writeln!(std::io::stderr(), "{line}");
    line
}

/// One declared host test.
pub struct HostTest {
    pub name: &'static str,
    pub needs: &'static [Feature],
    /// Its `#[ignore]` reason.
    pub reason: &'static str,
    pub run: fn(),
}

/// Runs each of `tests` this host can run; reports the others. Panics naming every
/// test that failed.
pub fn run_supported(binary: &str, tests: &[HostTest]) {
    let mut skips = Vec::new();
    let mut failed = Vec::new();
    for t in tests {
        for f in t.needs {
            assert!(
                t.reason.contains(f.name()),
                "{binary}::{}: the #[ignore] reason {:?} does not name {:?}",
                t.name,
                t.reason,
                f.name()
            );
        }
        if let Some((f, why)) = first_missing(t.needs) {
            skips.push(report_skip(binary, t.name, f, &why));
            continue;
        }
        if std::panic::catch_unwind(t.run).is_err() {
            failed.push(t.name);
        }
    }
    assert!(
        failed.is_empty(),
        "{binary}: host tests failed: {failed:?} (their panic messages are above); \
         {} skipped on this host",
        skips.len()
    );
}

/// Declares host tests that need features:
/// `host_tests!("binary"; name: [Feature, ...] = "needs <feature names>"; ...)`. Each
/// `name` is a plain `fn name()` in the same file, which includes this file as
/// `#[macro_use] #[path = "common/host.rs"] mod host;`. The reason is the `#[ignore]`
/// text libtest prints; `host_feature_tests` checks that it names every feature.
macro_rules! host_tests {
    ($binary:literal; $($name:ident : [$($f:ident),+ $(,)?] = $reason:literal;)+) => {
        mod needs_host {
            $(
                #[test]
                #[ignore = $reason]
                fn $name() {
                    use super::host::Feature::*;
                    super::host::require(&[$($f),+]);
                    super::$name();
                }
            )+
        }

        #[test]
        fn host_feature_tests() {
            use host::Feature::*;
            host::run_supported(
                $binary,
                &[$(host::HostTest {
                    name: stringify!($name),
                    needs: &[$($f),+],
                    reason: $reason,
                    run: $name,
                }),+],
            );
        }
    };
}
