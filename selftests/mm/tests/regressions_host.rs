//! Runs the `pagemap_scan_regressions` binary on the host kernel and checks its TAP
//! with the ktap parser: well formed, plan equal to the results, the stable test
//! names in order, Totals and exit code consistent, and no `not ok` (the host must
//! pass everything it does not skip). Two test-only switches show that failures are
//! reported: `--force-soft-dirty` on a kernel without CONFIG_MEM_SOFT_DIRTY must make
//! the soft-dirty tests fail, and `--runner-selftest` checks that a child killed by a
//! signal or panicking is `not ok` with the cause named and the suite goes on.

mod common;
#[macro_use]
#[path = "common/host.rs"]
mod host;

use common::Suite;
use ktap::{Status, Test};
use std::io::Write;

/// The suite's test names, in order (stable: the harness keys expectations on them).
const NAMES: [&str; 38] = [
    "wp_matching_skips_vma_without_uffd_wp",
    "check_wpasync_eperm_on_vma_without_uffd_wp",
    "scan_without_vec_or_wp_matching_changes_no_pte",
    "wp_scan_present_fast_matches_generic",
    "wp_scan_swapped_fast_matches_generic",
    "uffd_close_clears_wp_bits",
    "vec_len_overflow_rejected",
    "pfnmap_vma_not_reported",
    "huge_zero_page_is_pfnzero",
    "dontneed_pte_none_written_fast_matches_generic",
    "collapsed_thp_dontneed_hole_written",
    "walk_end_resume_vec_full",
    "walk_end_resume_max_pages",
    "walk_end_resume_inside_thp",
    "walk_end_resume_wp_matching",
    "walk_end_resume_wp_matching_thp",
    "walk_end_after_bounce_buffer_refill",
    "soft_dirty_agrees_anon",
    "soft_dirty_agrees_thp",
    "soft_dirty_agrees_file",
    "soft_dirty_agrees_vma_merge",
    "category_inverted_selects_complement",
    "unknown_flags_rejected",
    "unknown_category_bits_rejected_category_inverted",
    "unknown_category_bits_rejected_category_mask",
    "unknown_category_bits_rejected_category_anyof_mask",
    "unknown_category_bits_rejected_return_mask",
    "wrong_size_rejected",
    "unaligned_start_rejected",
    "bad_range_or_vec_rejected",
    "guard_regions_reported",
    "unpopulated_thp_scan_test",
    "uffd_wp_hole_written_anon",
    "uffd_wp_hole_written_shmem",
    "uffd_wp_hole_not_written_hugetlb",
    "hugetlb_wp_matching_each_size",
    "hugetlb_hole_wp_matching",
    "thp_subrange_wp_matching_without_vec",
];

/// Kernel bugs the host kernel may carry (unfixed upstream when written): each test
/// may fail here only with its diagnosis, and the failure is written to the real
/// stderr as a `host-known-bug:` line, not hidden. Passing is fine (a fixed host).
const HOST_KNOWN_BUGS: [(&str, &str); 1] = [(
    // do_pagemap_scan() keeps the walk_end of a bounce-buffer refill when the walk
    // then completes (6.7 to 7.2.13 at least; the host's 6.18 too).
    "walk_end_after_bounce_buffer_refill",
    "the stale walk_end of a bounce-buffer refill",
)];

/// The [`HOST_KNOWN_BUGS`] tests that failed with their diagnosis (each reported).
fn known_bug_failures(doc: &Test) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (name, diagnosis) in HOST_KNOWN_BUGS {
        let Some(t) = doc.subtest(name) else { continue };
        if t.status == Status::Fail && t.diagnostics.iter().any(|d| d.contains(diagnosis)) {
            let _ = writeln!(
                std::io::stderr(),
                "host-known-bug: regressions_host::{name}: {}",
                t.diagnostics.join(" | ")
            );
            v.push(name);
        }
    }
    v
}

const SOFT_DIRTY_TESTS: [&str; 4] = [
    "soft_dirty_agrees_anon",
    "soft_dirty_agrees_thp",
    "soft_dirty_agrees_file",
    "soft_dirty_agrees_vma_merge",
];

const SUITE: Suite = Suite {
    name: "pagemap_scan_regressions",
    bin: env!("CARGO_BIN_EXE_pagemap_scan_regressions"),
    // Only a kernel without PAGEMAP_SCAN (before 6.7) may skip the whole suite.
    skip_all_reason: |r| r.contains("PAGEMAP_SCAN not supported"),
    plan: None,
    explained_results: true,
};

fn run(args: &[&str]) -> (String, i32) {
    let mut cmd = SUITE.command();
    cmd.args(args)
        .env_remove("PAGEMAP_SCAN_REGRESSIONS_FORCE_SOFT_DIRTY");
    SUITE.output(cmd)
}

fn names(doc: &Test) -> Vec<String> {
    doc.subtests.iter().map(|t| t.name.clone()).collect()
}

fn status_of(doc: &Test, name: &str) -> Status {
    doc.subtest(name)
        .unwrap_or_else(|| panic!("no result named {name}"))
        .status
}

fn reason_of(doc: &Test, name: &str) -> String {
    doc.subtest(name)
        .and_then(|t| t.reason.clone())
        .unwrap_or_default()
}

host_tests! {
    "regressions_host";
    regressions_on_host_kernel: [PagemapScan] = "needs PAGEMAP_SCAN";
    suite_skips_without_pagemap_scan: [NoPagemapScan] = "needs a kernel without PAGEMAP_SCAN";
    forced_soft_dirty_fails_where_soft_dirty_is_missing: [PagemapScan, NoSoftDirty] =
        "needs PAGEMAP_SCAN on a kernel without CONFIG_MEM_SOFT_DIRTY";
    runner_reports_crashes_and_goes_on: [PagemapScan] = "needs PAGEMAP_SCAN";
    suite_skips_where_the_ioctl_is_enotty: [PagemapScan] = "needs PAGEMAP_SCAN";
}

/// The suite's documents, when it runs (not skipped as a whole).
fn ran(args: &[&str]) -> (Test, String, i32) {
    let (out, code) = run(args);
    let doc = SUITE.well_formed(&out, code);
    assert!(
        doc.skip_all_reason().is_none(),
        "PAGEMAP_SCAN works but the suite skipped:\n{out}"
    );
    (doc, out, code)
}

fn suite_skips_without_pagemap_scan() {
    let (out, code) = run(&[]);
    let doc = SUITE.well_formed(&out, code);
    let why = doc.skip_all_reason().unwrap_or_default();
    assert!(
        why.contains("PAGEMAP_SCAN"),
        "no PAGEMAP_SCAN but no suite skip naming it:\n{out}"
    );
}

/// PAGEMAP_SCAN answering ENOTTY (a seccomp filter): the suite's probe skips it as a
/// whole, naming the ioctl.
fn suite_skips_where_the_ioctl_is_enotty() {
    let mut cmd = SUITE.command();
    common::without_pagemap_scan(&mut cmd);
    let (out, code) = SUITE.output(cmd);
    let doc = SUITE.well_formed(&out, code);
    let why = doc.skip_all_reason().unwrap_or_default();
    assert!(
        why.starts_with("PAGEMAP_SCAN not supported (added in 6.7)"),
        "PAGEMAP_SCAN is ENOTTY but the suite did not skip naming it:\n{out}"
    );
    assert_eq!(code, ktap::KSFT_SKIP, "{out}");
}

fn regressions_on_host_kernel() {
    let (doc, out, code) = ran(&[]);
    assert_eq!(names(&doc), NAMES, "{out}");
    let c = doc.counts();
    let known = known_bug_failures(&doc).len() as u32;
    let failures = c.failures() - known;
    if !common::kernel_may_fail(SUITE.name, failures, &out) {
        assert_eq!(failures, 0, "not ok on the host kernel:\n{out}");
        let want = if known > 0 {
            ktap::KSFT_FAIL
        } else {
            ktap::KSFT_PASS
        };
        assert_eq!(code, want, "{out}");
    }

    // Skips must name their cause, and only what the host lacks may skip.
    let sd = mm::probe::softdirty_supported().expect("soft-dirty probe");
    for t in SOFT_DIRTY_TESTS {
        if sd {
            assert_eq!(status_of(&doc, t), Status::Pass, "{out}");
        } else {
            assert_eq!(status_of(&doc, t), Status::Skip, "{out}");
            let r = reason_of(&doc, t);
            assert!(
                r.contains("CONFIG_MEM_SOFT_DIRTY") || r.contains("PAGE_IS_SOFT_DIRTY"),
                "{t}: {r}"
            );
        }
    }
    if status_of(&doc, "wp_scan_swapped_fast_matches_generic") == Status::Skip {
        let r = reason_of(&doc, "wp_scan_swapped_fast_matches_generic");
        assert!(r.contains("swap") || r.contains("MADV_PAGEOUT"), "{r}");
    }
    // Tests that need nothing but PAGEMAP_SCAN (6.7+) never skip.
    for t in [
        "wp_matching_skips_vma_without_uffd_wp",
        "check_wpasync_eperm_on_vma_without_uffd_wp",
        "vec_len_overflow_rejected",
        "pfnmap_vma_not_reported",
        "walk_end_resume_vec_full",
        "walk_end_resume_max_pages",
        "category_inverted_selects_complement",
        "unknown_flags_rejected",
        "unknown_category_bits_rejected_return_mask",
        "wrong_size_rejected",
        "unaligned_start_rejected",
        "bad_range_or_vec_rejected",
    ] {
        assert_eq!(status_of(&doc, t), Status::Pass, "{t}:\n{out}");
    }
}

fn forced_soft_dirty_fails_where_soft_dirty_is_missing() {
    let (doc, out, code) = ran(&["--force-soft-dirty"]);
    assert_eq!(code, ktap::KSFT_FAIL, "{out}");
    for t in SOFT_DIRTY_TESTS {
        assert_eq!(status_of(&doc, t), Status::Fail, "{t} must fail:\n{out}");
    }
    // Nothing else changes.
    let known = known_bug_failures(&doc);
    for t in NAMES
        .iter()
        .filter(|n| !SOFT_DIRTY_TESTS.contains(n) && !known.contains(n))
    {
        assert_ne!(status_of(&doc, t), Status::Fail, "{t}:\n{out}");
    }
}

fn runner_reports_crashes_and_goes_on() {
    let (doc, out, code) = ran(&["--runner-selftest"]);
    assert_eq!(code, ktap::KSFT_FAIL, "{out}");
    let st: Vec<Status> = doc.subtests.iter().map(|t| t.status).collect();
    assert_eq!(
        st,
        [Status::Fail, Status::Fail, Status::Skip, Status::Pass],
        "{out}"
    );
    let seg = doc.subtest("runner_selftest_sigsegv").unwrap();
    assert!(
        seg.diagnostics.iter().any(|d| d.contains("SIGSEGV")),
        "the signal is named: {seg:?}"
    );
    let p = doc.subtest("runner_selftest_panic").unwrap();
    assert!(
        p.diagnostics.iter().any(|d| d.contains("deliberate panic")),
        "{p:?}"
    );
    assert_eq!(reason_of(&doc, "runner_selftest_skip"), "deliberate skip");
}
