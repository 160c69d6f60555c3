//! Runs the `pagemap_ioctl` binary on the host kernel and checks its TAP with the
//! ktap parser: well formed, the plan (118, Linux 7.2's count) equal to the number
//! of results, numbered in order, upstream's test names in upstream's order, totals
//! and exit code consistent with the results, and no `not ok` (skips are allowed:
//! the host may have no hugetlb pages reserved, THP off, ...). On a kernel without
//! userfaultfd WP-async the suite must skip as a whole (`1..0 # SKIP`, exit 4).
//! Also: temporary files go to a fresh directory under `$TMPDIR` that is removed, an
//! unknown option is a usage error, and the port *fails* where the kernel does not
//! give it what a test expects: with THP disabled for the process
//! (`prctl(PR_SET_THP_DISABLE)`, a per-process setting) the read fault of the
//! MADV_HUGEPAGE region maps 4 KiB zero pages instead of the huge zero page, so
//! `zeropfn_tests all huge pages must have PFNZERO set` must be `not ok` (as the C
//! program reports it) and the THP collapse test must skip.

mod common;
#[macro_use]
#[path = "common/host.rs"]
mod host;

use common::Suite;
use ktap::Status;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// Upstream's result names before its base_tests() calls, in order.
const BEFORE_BASE_TESTS: [&str; 35] = [
    "sanity_tests_sd Zero range size is valid",
    "sanity_tests_sd output buffer must be specified with size",
    "sanity_tests_sd output buffer can be 0",
    "sanity_tests_sd output buffer can be 0",
    "sanity_tests_sd wrong flag specified",
    "sanity_tests_sd flag has extra bits specified",
    "sanity_tests_sd no selection mask is specified",
    "sanity_tests_sd no return mask is specified",
    "sanity_tests_sd wrong return mask specified",
    "sanity_tests_sd mixture of correct and wrong flag",
    "sanity_tests_sd PAGEMAP_BITS_ALL can be specified with PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC",
    "sanity_tests_sd Clear area with larger vec size",
    "sanity_tests_sd Repeated pattern of written and non-written pages",
    "sanity_tests_sd Repeated pattern of written and non-written pages in parts *",
    "sanity_tests_sd Repeated pattern of written and non-written pages max_pages",
    "sanity_tests_sd only get 2 written pages and clear them as well",
    "sanity_tests_sd Two regions",
    "sanity_tests_sd Smaller max_pages",
    "Smaller vec",
    "Walk_end: Same start and end address",
    "Walk_end: Same start and end with WP",
    "Walk_end: Same start and end with 0 output buffer",
    "Walk_end: Big vec",
    "Walk_end: vec of minimum length",
    "Walk_end: Max pages specified",
    "Walk_end: Half max pages",
    "Walk_end: 1 max page",
    "Walk_end: max pages",
    "Walk_end sparse: Big vec",
    "Walk_end sparse: vec of minimum length",
    "Walk_end sparse: Max pages specified",
    "Walk_end sparse: Max pages specified",
    "Walk_end sparse: Max pages specified",
    "Walk_endsparse : Half max pages",
    "Walk_end: 1 max page",
];

/// The prefixes upstream's main() calls base_tests() with, in order.
const BASE_TESTS_PREFIXES: [&str; 8] = [
    "Page testing:",
    "Large Page testing:",
    "Huge page testing:",
    "Hugetlb shmem testing:",
    "Hugetlb mem testing:",
    "Hugetlb shmem testing:",
    "File memory testing:",
    "File anonymous memory testing:",
];

/// The results base_tests() reports after its prefix, in order.
const BASE_TESTS: [&str; 6] = [
    "all new pages must not be written (dirty)",
    "all pages must be written (dirty)",
    "all pages dirty other than first and the last one",
    "PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC",
    "only middle page dirty",
    "only two middle pages dirty",
];

/// Upstream's result names after its base_tests() calls, in order.
const AFTER_BASE_TESTS: [&str; 35] = [
    "hpage_unit_tests all new huge page must not be written (dirty)",
    "hpage_unit_tests all the huge page must not be written",
    "hpage_unit_tests all the huge page must be written and clear",
    "hpage_unit_tests only middle page written",
    "hpage_unit_tests clear first half of huge page",
    "hpage_unit_tests clear first half of huge page with limited buffer",
    "hpage_unit_tests clear second half huge page",
    "hpage_unit_tests get half huge page",
    "hpage_unit_tests get half huge page",
    "Test test_simple",
    "mprotect_tests Both pages written",
    "mprotect_tests Both pages are not written (dirty)",
    "mprotect_tests Both pages written after remap and mprotect",
    "mprotect_tests Clear and make the pages written",
    "transact_test count *",
    "transact_test count *",
    "transact_test Extra pages *",
    "sanity_tests WP op can be specified with !PAGE_IS_WRITTEN",
    "sanity_tests required_mask specified",
    "sanity_tests anyof_mask specified",
    "sanity_tests excluded_mask specified",
    "sanity_tests required_mask and anyof_mask specified",
    "sanity_tests Get sd and present pages with anyof_mask",
    "sanity_tests Get all the pages with required_mask",
    "sanity_tests Get sd and present pages with required_mask and anyof_mask",
    "sanity_tests Don't get sd pages",
    "sanity_tests Don't get present pages",
    "sanity_tests Find written present pages with return mask",
    "sanity_tests Memory mapped file",
    "sanity_tests Read/write to memory",
    "unmapped_region_tests Get status of pages",
    "userfaultfd_tests all new pages must not be written (dirty)",
    "zeropfn_tests all pages must have PFNZERO set",
    "zeropfn_tests all huge pages must have PFNZERO set",
    "unpopulated_scan_test unpopulated ptes reported written by both paths (*",
];

/// Upstream's 118 result names, in order, as the C program prints them when nothing
/// is skipped. A trailing `*` marks a prefix (the rest is a measured value).
fn names() -> Vec<String> {
    let base = BASE_TESTS_PREFIXES
        .iter()
        .flat_map(|p| BASE_TESTS.iter().map(move |t| format!("{p} {t}")));
    let names: Vec<String> = BEFORE_BASE_TESTS
        .iter()
        .map(|s| s.to_string())
        .chain(base)
        .chain(AFTER_BASE_TESTS.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(names.len(), 118);
    names
}

/// Names upstream gives a result when it is skipped, where they differ from
/// [`names`]: (index, alternatives).
const SKIP_NAMES: &[(usize, &[&str])] = &[
    (83, &["hpage_unit_tests all new huge page must be written"]),
    (
        116,
        &[
            "zeropfn_tests use_zero_page not supported or set to 1",
            "zeropfn_tests huge page not supported",
        ],
    ),
];

const SUITE: Suite = Suite {
    name: "pagemap_ioctl",
    bin: env!("CARGO_BIN_EXE_pagemap_ioctl"),
    skip_all_reason: |r| {
        r.starts_with("Failed to initialize userfaultfd")
            || r.starts_with("PAGEMAP_SCAN ioctl not supported")
    },
    plan: Some(118),
    explained_results: false,
};

fn run(args: &[&str], tmpdir: Option<&PathBuf>) -> (String, i32) {
    let mut cmd = SUITE.command();
    cmd.args(args);
    if let Some(d) = tmpdir {
        cmd.env("TMPDIR", d);
    }
    SUITE.output(cmd)
}

fn name_matches(got: &str, want: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => got == want,
    }
}

host_tests! {
    "pagemap_ioctl_host";
    pagemap_ioctl_on_host_kernel: [UffdWpAsyncAll] =
        "needs userfaultfd WP-async with the pagemap_ioctl features";
    suite_skips_without_wp_async: [NoUffdWpAsyncAll] =
        "needs a kernel without userfaultfd WP-async with the pagemap_ioctl features";
    suite_skips_where_the_ioctl_is_enotty: [UffdWpAsyncAll] =
        "needs userfaultfd WP-async with the pagemap_ioctl features";
    thp_disabled_process_fails_the_huge_zero_page_test: [ThpZeroPage, UffdWpAsyncAll] =
        "needs THP with use_zero_page=1 and userfaultfd WP-async with the pagemap_ioctl features";
}

/// Runs the suite with a fresh `TMPDIR`, checks that nothing was left in it, and
/// returns the checked document.
fn run_in_fresh_tmpdir() -> (ktap::Test, String, i32) {
    let tmp = std::env::temp_dir().join(format!("pagemap_ioctl_host.{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create test TMPDIR");
    let (out, code) = run(&[], Some(&tmp));
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("read TMPDIR").collect();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    (SUITE.well_formed(&out, code), out, code)
}

/// WP-async there but PAGEMAP_SCAN answering ENOTTY (the 6.1 series at patch 2; here
/// a seccomp filter): the suite skips as a whole with a plan that parses, instead of
/// losing its 118 results to the first scan.
fn suite_skips_where_the_ioctl_is_enotty() {
    let mut cmd = SUITE.command();
    common::without_pagemap_scan(&mut cmd);
    let (out, code) = SUITE.output(cmd);
    let doc = SUITE.well_formed(&out, code);
    let why = doc.skip_all_reason().unwrap_or_default();
    assert!(
        why.starts_with("PAGEMAP_SCAN ioctl not supported (ENOTTY"),
        "PAGEMAP_SCAN is ENOTTY but the suite did not skip naming it:\n{out}"
    );
    assert_eq!(code, ktap::KSFT_SKIP, "{out}");
}

fn suite_skips_without_wp_async() {
    let (doc, out, _) = run_in_fresh_tmpdir();
    assert!(
        doc.skip_all_reason().is_some(),
        "no WP-async but no suite skip:\n{out}"
    );
}

fn pagemap_ioctl_on_host_kernel() {
    let (doc, out, code) = run_in_fresh_tmpdir();
    assert!(
        doc.skip_all_reason().is_none(),
        "WP-async works but the suite skipped:\n{out}"
    );
    let c = doc.counts();
    if !common::kernel_may_fail(SUITE.name, c.failures(), &out) {
        assert_eq!(c.failures(), 0, "not ok on the host kernel:\n{out}");
        assert_eq!(code, ktap::KSFT_PASS, "{out}");
    }
    let names = names();
    for (i, t) in doc.subtests.iter().enumerate() {
        let ok = name_matches(&t.name, &names[i])
            || (t.status == Status::Skip
                && SKIP_NAMES
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .any(|(_, alts)| alts.contains(&t.name.as_str())));
        assert!(
            ok,
            "result {} is {:?}, upstream names it {:?}:\n{out}",
            i + 1,
            t.name,
            names[i]
        );
        assert!(
            matches!(t.status, Status::Pass | Status::Skip),
            "result {} ({}) is {:?}:\n{out}",
            i + 1,
            t.name,
            t.status
        );
    }
    // The whole-suite tests that need nothing but WP-async and anonymous/file memory
    // must really run (not skip) wherever WP-async works.
    // Results that need nothing but WP-async and anonymous or file memory (not THP,
    // hugetlb or the huge zero page) must really run wherever WP-async works.
    for i in (0..47).chain(71..83).chain(92..116) {
        assert_eq!(
            doc.subtests[i].status,
            Status::Pass,
            "result {}:\n{out}",
            i + 1
        );
    }
}

#[test]
fn unknown_argument_is_a_usage_error() {
    let (out, code) = run(&["--bogus"], None);
    assert_eq!(code, 2);
    assert_eq!(out, "", "nothing on stdout for a usage error");
}

fn thp_disabled_process_fails_the_huge_zero_page_test() {
    let mut cmd = SUITE.command();
    // SAFETY: prctl is async-signal-safe; it only changes this child's THP policy.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (out, code) = SUITE.output(cmd);
    let doc = SUITE.well_formed(&out, code);
    assert_eq!(code, ktap::KSFT_FAIL, "{out}");
    let zeropfn = &doc.subtests[116];
    assert_eq!(zeropfn.name, names()[116], "{out}");
    assert_eq!(zeropfn.status, Status::Fail, "{out}");
    for (i, t) in doc.subtests.iter().enumerate() {
        if i != 116 {
            assert!(
                matches!(t.status, Status::Pass | Status::Skip),
                "result {}:\n{out}",
                i + 1
            );
        }
    }
}
