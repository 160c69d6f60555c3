//! `pagemap_scan_regressions`: PAGEMAP_SCAN checks that upstream's
//! `tools/testing/selftests/mm/pagemap_ioctl.c` (6.12 and 7.2) does not make.
//! Written for this project (not a port); the kernel side it exercises is
//! `fs/proc/task_mmu.c` (`do_pagemap_scan()` and the `pagemap_scan_*` walkers) and
//! `fs/userfaultfd.c` / `mm/userfaultfd.c`.
//!
//! Every result runs in a forked child (the ktap crate's runner, [`ktap::runner`]),
//! so a test that crashes (a signal, or a kernel oops that kills the task) is
//! reported as `not ok` with the signal named and the rest of the suite still
//! reports. The test that can oops a buggy kernel runs last.
//!
//! Modules, by subject: [`vma_check`], [`uffd_wp`], [`pfnzero`], [`unpopulated`] and
//! [`vec_buf`] (one per family of fixed bugs), [`walk_end`] (resumption),
//! [`soft_dirty`] (PAGE_IS_SOFT_DIRTY against pagemap bit 55), [`args`] (argument
//! checks and `category_inverted`), [`guard`] (guard regions), [`hugetlb`] (7.2's
//! hugetlb fixes); [`common`] holds the
//! helpers they share. The order of the results is the `TESTS` table's.
//!
//! Origins: each regression test fails on a kernel without the named upstream fix.
//!
//! | test | upstream fix (subject, author, version) |
//! |---|---|
//! | `wp_matching_skips_vma_without_uffd_wp` | "mm/pagemap: fix ioctl(PAGEMAP_SCAN) on vma check", Peter Xu, 6.7-rc (2023-11) |
//! | `scan_without_vec_or_wp_matching_changes_no_pte` | "mm/pagemap: fix wr-protect even if PM_SCAN_WP_MATCHING not set", Peter Xu, 6.7-rc (2023-11) |
//! | `wp_scan_swapped_fast_matches_generic` | "fs/proc/task_mmu: fix uffd-wp confusion in pagemap_scan_pmd_entry()", Ryan Roberts, 6.9-rc (2024-04) |
//! | `uffd_close_clears_wp_bits` | "mm/userfaultfd: reset ptes when close() for wr-protected ones", Peter Xu, 6.9-rc (2024-04), CVE-2024-36881 |
//! | `vec_len_overflow_rejected` | "fs/proc/task_mmu: prevent integer overflow in pagemap_scan_get_args()", Dan Carpenter, 6.13-rc (2024-11) |
//! | `huge_zero_page_is_pfnzero` | "fs/proc/task_mmu: fix PAGE_IS_PFNZERO detection for the huge zero folio", David Hildenbrand, 6.16-rc (2025-06) |
//! | `thp_subrange_wp_matching_without_vec` | "fs/proc/task_mmu: check p->vec_buf for NULL", Jakub Acs, 6.17-rc / 6.12.50 (2025-09) |
//! | `dontneed_pte_none_written_fast_matches_generic` | Kiryl Shutsemau's 2026-07 fix: pte_none reported PAGE_IS_WRITTEN by the generic path too (`pagemap_page_category()`) |
//! | `collapsed_thp_dontneed_hole_written` | Kiryl Shutsemau's 2026-07 fix: holes of a uffd-wp VMA reported PAGE_IS_WRITTEN (`pagemap_scan_pte_hole()`) |
//! | `unpopulated_thp_scan_test`, `uffd_wp_hole_written_anon`, `uffd_wp_hole_written_shmem` | the same fix in Linux 7.2's `pagemap_scan_pte_hole()`: an unpopulated range of a uffd-wp VMA is WRITTEN (a THP dropped by MADV_DONTNEED; anonymous and shmem ranges never populated) |
//! | `uffd_wp_hole_not_written_hugetlb` | the same code, "except for hugetlb": an unpopulated hugetlb page is not WRITTEN, hole or none entry |
//! | `hugetlb_wp_matching_each_size` | 7.2's `pagemap_scan_hugetlb_entry()`: a partial hugetlb page is detected with `huge_page_size(hstate_vma(vma))`, not `HPAGE_SIZE` (only a 1 GiB page tells them apart) |
//! | `hugetlb_hole_wp_matching` | 7.2's `pagemap_scan_hugetlb_hole_wp()`: PM_SCAN_WP_MATCHING over an unpopulated hugetlb range installs markers instead of calling `uffd_wp_range()`, which deadlocks in the walk |
//!
//! Two tests sit next to a fix but cannot detect it, and are not credited to it:
//! `check_wpasync_eperm_on_vma_without_uffd_wp` pins the EPERM of
//! PM_SCAN_CHECK_WPASYNC, which `pagemap_scan_test_walk()` returned before Peter Xu's
//! vma-check fix too (the fix only adds the silent skip under PM_SCAN_WP_MATCHING
//! alone; the per-patch run of the 6.1 series shows it passing before patch 9);
//! `wp_scan_present_fast_matches_generic` is the present-page baseline of the swapped
//! test: for present PTEs `pte_uffd_wp()` was always right, and the young/dirty half
//! of Ryan Roberts' fixes is a race (below), so it passes without either fix (before
//! patches 11 and 12 of the series).
//!
//! The other tests pin behaviour the upstream suite leaves open: VM_PFNMAP VMAs are
//! skipped (`pfnmap_vma_not_reported`, found by the mutants run); `walk_end`
//! resumption at every early stop (full vec, `max_pages`, inside a THP, with and
//! without PM_SCAN_WP_MATCHING) against one full scan; PAGE_IS_SOFT_DIRTY against
//! pagemap bit 55 (6.8+, CONFIG_MEM_SOFT_DIRTY); `category_inverted` at page and VMA
//! level; argument validation (unknown flags and category bits in each mask, `size`,
//! alignment, `vec`); PAGE_IS_GUARD against pagemap bit 58 (6.16+).
//!
//! A feature the kernel lacks is found by probing (EINVAL on a category bit or a
//! madvise advice, a missing userfaultfd feature) and makes a SKIP naming it and the
//! version that brought it. Without PAGEMAP_SCAN the suite skips as a whole
//! (`1..0 # SKIP`, exit 4).
//!
//! What is not tested: the young/dirty half of Ryan Roberts' fix is a race between
//! the hardware setting A/D bits and `make_uffd_wp_pte()`; user space cannot observe
//! the lost bits deterministically, so only the uffd-wp-on-swap-entry half is a test.

mod args;
mod common;
mod guard;
mod hugetlb;
mod pfnzero;
mod soft_dirty;
mod uffd_wp;
mod unpopulated;
mod vec_buf;
mod vma_check;
mod walk_end;

use common::*;
use ktap::runner::{run_tests, Case};
use ktap::Ksft;
use std::time::Duration;

/// How long one test may take before its child is killed (each takes well under a
/// second under TCG; init's per-suite timeout is 300 s by default).
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

const TESTS: &[Case] = &[
    (
        "wp_matching_skips_vma_without_uffd_wp",
        vma_check::wp_matching_skips_vma_without_uffd_wp,
    ),
    (
        "check_wpasync_eperm_on_vma_without_uffd_wp",
        vma_check::check_wpasync_eperm_on_vma_without_uffd_wp,
    ),
    (
        "scan_without_vec_or_wp_matching_changes_no_pte",
        vma_check::scan_without_vec_or_wp_matching_changes_no_pte,
    ),
    (
        "wp_scan_present_fast_matches_generic",
        uffd_wp::wp_scan_present_fast_matches_generic,
    ),
    (
        "wp_scan_swapped_fast_matches_generic",
        uffd_wp::wp_scan_swapped_fast_matches_generic,
    ),
    (
        "uffd_close_clears_wp_bits",
        uffd_wp::uffd_close_clears_wp_bits,
    ),
    ("vec_len_overflow_rejected", args::vec_len_overflow_rejected),
    (
        "pfnmap_vma_not_reported",
        vma_check::pfnmap_vma_not_reported,
    ),
    (
        "huge_zero_page_is_pfnzero",
        pfnzero::huge_zero_page_is_pfnzero,
    ),
    (
        "dontneed_pte_none_written_fast_matches_generic",
        unpopulated::dontneed_pte_none_written_fast_matches_generic,
    ),
    (
        "collapsed_thp_dontneed_hole_written",
        unpopulated::collapsed_thp_dontneed_hole_written,
    ),
    (
        "walk_end_resume_vec_full",
        walk_end::walk_end_resume_vec_full,
    ),
    (
        "walk_end_resume_max_pages",
        walk_end::walk_end_resume_max_pages,
    ),
    (
        "walk_end_resume_inside_thp",
        walk_end::walk_end_resume_inside_thp,
    ),
    (
        "walk_end_resume_wp_matching",
        walk_end::walk_end_resume_wp_matching,
    ),
    (
        "walk_end_resume_wp_matching_thp",
        walk_end::walk_end_resume_wp_matching_thp,
    ),
    (
        "walk_end_after_bounce_buffer_refill",
        walk_end::walk_end_after_bounce_buffer_refill,
    ),
    ("soft_dirty_agrees_anon", soft_dirty::soft_dirty_agrees_anon),
    ("soft_dirty_agrees_thp", soft_dirty::soft_dirty_agrees_thp),
    ("soft_dirty_agrees_file", soft_dirty::soft_dirty_agrees_file),
    (
        "soft_dirty_agrees_vma_merge",
        soft_dirty::soft_dirty_agrees_vma_merge,
    ),
    (
        "category_inverted_selects_complement",
        args::category_inverted_selects_complement,
    ),
    ("unknown_flags_rejected", args::unknown_flags_rejected),
    (
        "unknown_category_bits_rejected_category_inverted",
        args::unknown_category_bits_rejected_category_inverted,
    ),
    (
        "unknown_category_bits_rejected_category_mask",
        args::unknown_category_bits_rejected_category_mask,
    ),
    (
        "unknown_category_bits_rejected_category_anyof_mask",
        args::unknown_category_bits_rejected_category_anyof_mask,
    ),
    (
        "unknown_category_bits_rejected_return_mask",
        args::unknown_category_bits_rejected_return_mask,
    ),
    ("wrong_size_rejected", args::wrong_size_rejected),
    ("unaligned_start_rejected", args::unaligned_start_rejected),
    ("bad_range_or_vec_rejected", args::bad_range_or_vec_rejected),
    ("guard_regions_reported", guard::guard_regions_reported),
    (
        "unpopulated_thp_scan_test",
        unpopulated::unpopulated_thp_scan_test,
    ),
    (
        "uffd_wp_hole_written_anon",
        unpopulated::uffd_wp_hole_written_anon,
    ),
    (
        "uffd_wp_hole_written_shmem",
        unpopulated::uffd_wp_hole_written_shmem,
    ),
    (
        "uffd_wp_hole_not_written_hugetlb",
        hugetlb::uffd_wp_hole_not_written_hugetlb,
    ),
    (
        "hugetlb_wp_matching_each_size",
        hugetlb::hugetlb_wp_matching_each_size,
    ),
    // Deadlocks (the child hangs in the kernel) without pagemap_scan_hugetlb_hole_wp().
    (
        "hugetlb_hole_wp_matching",
        hugetlb::hugetlb_hole_wp_matching,
    ),
    // Last: oopses a kernel without "fs/proc/task_mmu: check p->vec_buf for NULL".
    (
        "thp_subrange_wp_matching_without_vec",
        vec_buf::thp_subrange_wp_matching_without_vec,
    ),
];

/// Is PAGEMAP_SCAN there at all? `Err(reason)` for a suite-level skip.
fn probe_pagemap_scan(pm: &Pagemap) -> Result<(), String> {
    let m = Mapping::anon(ps()).map_err(|e| format!("Bail: {e}"))?;
    let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
    match raw_scan(pm, &mut arg) {
        Ok(_) => Ok(()),
        // Before 6.7 /proc/PID/pagemap has no ioctl at all: ENOTTY. An EINVAL on this
        // minimal valid request is a kernel that has PAGEMAP_SCAN and gets it wrong.
        Err(e) if e.errno() == Some(libc::ENOTTY) => {
            Err(format!("PAGEMAP_SCAN not supported (added in 6.7): {e}"))
        }
        Err(e) => Err(format!("Bail: {e}")),
    }
}

/// `--runner-selftest`: tests of the runner itself (a child killed by a signal, a
/// panicking child, then a passing test), used by the crate's host test to show that
/// a crash is `not ok` with the signal named and that the suite goes on.
const RUNNER_SELFTEST: &[Case] = &[
    ("runner_selftest_sigsegv", || {
        // A real fault (raise() would be absorbed by std's SIGSEGV handler).
        let m = Mapping::anon_prot(ps(), libc::PROT_NONE)?;
        m.write(0, 1);
        Ok(())
    }),
    ("runner_selftest_panic", || panic!("deliberate panic")),
    ("runner_selftest_skip", || skip("deliberate skip")),
    ("runner_selftest_pass", || Ok(())),
];

fn main() {
    let mut tests = TESTS;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            // SAFETY: single-threaded at this point; children inherit the variable.
            "--force-soft-dirty" => unsafe {
                std::env::set_var(soft_dirty::FORCE_SOFT_DIRTY_ENV, "1")
            },
            "--runner-selftest" => tests = RUNNER_SELFTEST,
            other => {
                eprintln!(
                    "usage: pagemap_scan_regressions [--force-soft-dirty] [--runner-selftest] \
                     (unknown argument {other:?})"
                );
                std::process::exit(2);
            }
        }
    }
    let mut k = Ksft::stdout();
    k.print_header();
    let pm = match Pagemap::open() {
        Ok(p) => p,
        Err(e) => k.exit_fail_msg(e).exit(),
    };
    match probe_pagemap_scan(&pm) {
        Ok(()) => {}
        Err(r) if r.starts_with("Bail: ") => k.exit_fail_msg(&r[6..]).exit(),
        Err(r) => k.exit_skip(r).exit(),
    }
    drop(pm);
    k.set_plan(tests.len() as u32);
    k.print_msg(format!(
        "kernel {}, page size {}, THP enabled: {}",
        probe::kernel_release(),
        ps(),
        thp_mode_name()
    ));
    run_tests(&mut k, tests, TEST_TIMEOUT);
    k.finished().exit()
}
