//! `pagemap_scan_regressions`: PAGEMAP_SCAN checks that upstream's
//! `tools/testing/selftests/mm/pagemap_ioctl.c` (6.12 and mainline) does not make.
//! Written for this project (not a port); the kernel side it exercises is
//! `fs/proc/task_mmu.c` (`do_pagemap_scan()` and the `pagemap_scan_*` walkers) and
//! `fs/userfaultfd.c` / `mm/userfaultfd.c`.
//!
//! Every result runs in a forked child, so a test that crashes (a signal, or a kernel
//! oops that kills the task) is reported as `not ok` with the signal named and the
//! rest of the suite still reports. The test that can oops a buggy kernel runs last.
//!
//! Origins: each regression test fails on a kernel without the named upstream fix.
//!
//! | test | upstream fix (subject, author, version) |
//! |---|---|
//! | `wp_matching_skips_vma_without_uffd_wp`, `check_wpasync_eperm_on_vma_without_uffd_wp` | "mm/pagemap: fix ioctl(PAGEMAP_SCAN) on vma check", Peter Xu, 6.7-rc (2023-11) |
//! | `scan_without_vec_or_wp_matching_changes_no_pte` | "mm/pagemap: fix wr-protect even if PM_SCAN_WP_MATCHING not set", Peter Xu, 6.7-rc (2023-11) |
//! | `wp_scan_present_fast_matches_generic`, `wp_scan_swapped_fast_matches_generic` | "fs/proc/task_mmu: fix uffd-wp confusion in pagemap_scan_pmd_entry()" and "fs/proc/task_mmu: fix loss of young/dirty bits during pagemap scan", Ryan Roberts, 6.9-rc (2024-04) |
//! | `uffd_close_clears_wp_bits` | "mm/userfaultfd: reset ptes when close() for wr-protected ones", Peter Xu, 6.9-rc (2024-04), CVE-2024-36881 |
//! | `vec_len_overflow_rejected` | "fs/proc/task_mmu: prevent integer overflow in pagemap_scan_get_args()", Dan Carpenter, 6.13-rc (2024-11) |
//! | `huge_zero_page_is_pfnzero` | "fs/proc/task_mmu: fix PAGE_IS_PFNZERO detection for the huge zero folio", David Hildenbrand, 6.16-rc (2025-06) |
//! | `thp_subrange_wp_matching_without_vec` | "fs/proc/task_mmu: check p->vec_buf for NULL", Jakub Acs, 6.17-rc / 6.12.50 (2025-09) |
//! | `dontneed_pte_none_written_fast_matches_generic` | Kiryl Shutsemau's 2026-07 fix: pte_none reported PAGE_IS_WRITTEN by the generic path too (`pagemap_page_category()`) |
//! | `collapsed_thp_dontneed_hole_written` | Kiryl Shutsemau's 2026-07 fix: holes of a uffd-wp VMA reported PAGE_IS_WRITTEN (`pagemap_scan_pte_hole()`) |
//!
//! The other tests pin behaviour the upstream suite leaves open: `walk_end`
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

use ktap::{Ksft, KSFT_SKIP};
use mm::mem::{self, page_size, MapOptions, Mapping};
use mm::pagemap::{clear_softdirty, Pagemap, PagemapEntry};
use mm::probe;
use mm::scan::{Categories, PageRegion, ScanArgs, ScanFlags};
use mm::uapi;
use mm::uffd::Userfaultfd;
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long one test may take before its child is killed (each takes well under a
/// second under TCG; init's per-suite timeout is 300 s by default).
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Test outcome plumbing
// ---------------------------------------------------------------------------

/// Why a test stopped before passing.
#[derive(Debug)]
enum Stop {
    Fail(String),
    Skip(String),
}

type TestResult = Result<(), Stop>;

impl From<mm::Error> for Stop {
    fn from(e: mm::Error) -> Stop {
        if e.is_unsupported() {
            Stop::Skip(with_versions(&e.to_string()))
        } else {
            Stop::Fail(e.to_string())
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(Stop::Fail(format!($($arg)*)));
        }
    };
}

fn skip<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Skip(msg.into()))
}

/// A `# ` line from inside a test (the child's stdout is the suite's stdout).
fn note(msg: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "# {msg}");
    let _ = out.flush();
}

/// Appends "(added in X)" for the features an Unsupported error names.
fn with_versions(msg: &str) -> String {
    const SINCE: &[(&str, &str)] = &[
        (
            "UFFD_FEATURE_WP_ASYNC",
            "UFFD_FEATURE_WP_ASYNC added in 6.7",
        ),
        (
            "UFFD_FEATURE_WP_UNPOPULATED",
            "UFFD_FEATURE_WP_UNPOPULATED added in 6.6",
        ),
        ("PAGEMAP_SCAN", "PAGEMAP_SCAN added in 6.7"),
        (
            "userfaultfd",
            "userfaultfd needs CONFIG_USERFAULTFD (UFFD_USER_MODE_ONLY: 5.11)",
        ),
    ];
    let found: Vec<&str> = SINCE
        .iter()
        .filter(|(k, _)| msg.contains(k))
        .map(|(_, v)| *v)
        .collect();
    if found.is_empty() {
        msg.to_string()
    } else {
        format!("{msg} ({})", found.join("; "))
    }
}

// ---------------------------------------------------------------------------
// Helpers (private to this suite)
// ---------------------------------------------------------------------------

fn ps() -> usize {
    page_size()
}

fn pagemap() -> Result<Pagemap, Stop> {
    Ok(Pagemap::open()?)
}

/// A userfaultfd with WP-async + WP-unpopulated, or a SKIP naming what is missing.
fn wp_uffd() -> Result<Userfaultfd, Stop> {
    Ok(Userfaultfd::wp_async_anon()?)
}

/// "0-3,7,9-10" for the set indices.
fn pages_str(bits: &[bool]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < bits.len() {
        if bits[i] {
            let s = i;
            while i + 1 < bits.len() && bits[i + 1] {
                i += 1;
            }
            parts.push(if s == i {
                s.to_string()
            } else {
                format!("{s}-{i}")
            });
        }
        i += 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

fn regions_str(base: usize, regions: &[PageRegion]) -> String {
    let p = ps() as u64;
    let v: Vec<String> = regions
        .iter()
        .map(|r| {
            let s = r.start.wrapping_sub(base as u64) as i64 / p as i64;
            let e = r.end.wrapping_sub(base as u64) as i64 / p as i64;
            format!("[{s},{e}):{}", r.categories)
        })
        .collect();
    format!(
        "{} region(s) (pages from base {base:#x}) {}",
        v.len(),
        v.join(" ")
    )
}

/// The pages of `[base, base + n pages)` covered by regions whose categories
/// contain `want`; a region outside the range or with end <= start is an error.
fn bitmap(
    regions: &[PageRegion],
    base: usize,
    n: usize,
    want: Categories,
) -> Result<Vec<bool>, Stop> {
    let mut bits = vec![false; n];
    let end = (base + n * ps()) as u64;
    for r in regions {
        ensure!(
            r.start >= base as u64 && r.end <= end && r.start < r.end,
            "region [{:#x}, {:#x}) is empty or outside the scanned range [{base:#x}, {end:#x})",
            r.start,
            r.end
        );
        if !r.categories.contains(want) {
            continue;
        }
        let first = (r.start as usize - base) / ps();
        let last = (r.end as usize - base) / ps();
        for b in &mut bits[first..last] {
            *b = true;
        }
    }
    Ok(bits)
}

/// One PAGEMAP_SCAN over `args` that must walk the whole range.
fn scan_whole(pm: &Pagemap, args: &ScanArgs) -> Result<Vec<PageRegion>, Stop> {
    let r = pm.scan(args)?;
    ensure!(
        r.walk_end == args.end,
        "PAGEMAP_SCAN [{:#x}, {:#x}) with vec_len {} stopped early at walk_end {:#x}",
        args.start,
        args.end,
        args.vec_len,
        r.walk_end
    );
    Ok(r.regions)
}

/// Which pages are PAGE_IS_WRITTEN, asked through the fast path of
/// `pagemap_scan_pmd_entry()` (category_mask == return_mask == WRITTEN, nothing else)
/// or through the generic path (the same question as category_anyof_mask).
fn written(pm: &Pagemap, base: usize, n: usize, generic: bool) -> Result<Vec<bool>, Stop> {
    let mut a = ScanArgs::new(base, n * ps())
        .return_mask(Categories::WRITTEN)
        .vec_len(n);
    a = if generic {
        a.anyof(Categories::WRITTEN)
    } else {
        a.required(Categories::WRITTEN)
    };
    let regions = scan_whole(pm, &a)?;
    bitmap(&regions, base, n, Categories::WRITTEN)
}

/// Checks that the fast and the generic path both report exactly `expected` as
/// written.
fn check_written(pm: &Pagemap, base: usize, expected: &[bool], what: &str) -> TestResult {
    let n = expected.len();
    let fast = written(pm, base, n, false)?;
    let generic = written(pm, base, n, true)?;
    ensure!(
        fast == expected && generic == expected,
        "{what}: PAGE_IS_WRITTEN pages: expected {}, fast path (category_mask=return_mask=WRITTEN) \
         says {}, generic path (category_anyof_mask=WRITTEN) says {}",
        pages_str(expected),
        pages_str(&fast),
        pages_str(&generic)
    );
    Ok(())
}

fn entries(pm: &Pagemap, base: usize, n: usize) -> Result<Vec<PagemapEntry>, Stop> {
    Ok(pm.entries(base, n)?)
}

fn uffd_wp_bits(pm: &Pagemap, base: usize, n: usize) -> Result<Vec<bool>, Stop> {
    Ok(entries(pm, base, n)?.iter().map(|e| e.uffd_wp()).collect())
}

/// PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC over the range: write-protects every
/// written page; returns the regions it reported.
fn wp_scan(pm: &Pagemap, base: usize, len: usize) -> Result<Vec<PageRegion>, Stop> {
    let n = len / ps();
    let a = ScanArgs::new(base, len)
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN)
        .vec_len(n);
    scan_whole(pm, &a)
}

fn errno_of(r: &mm::Result<usize>) -> Option<i32> {
    r.as_ref().err().and_then(|e| e.errno())
}

fn describe(r: &mm::Result<usize>) -> String {
    match r {
        Ok(n) => format!("succeeded with {n}"),
        Err(e) => e.to_string(),
    }
}

/// A raw PAGEMAP_SCAN argument over `[start, end)` with no vec.
fn raw_arg(start: u64, end: u64) -> uapi::pm_scan_arg {
    ScanArgs::range(start, end).to_raw(0, 0)
}

/// Runs a raw scan; `arg.vec` must be 0 or point to `arg.vec_len` regions, or be an
/// address the kernel must reject.
fn raw_scan(pm: &Pagemap, arg: &mut uapi::pm_scan_arg) -> mm::Result<usize> {
    // SAFETY: every caller passes vec = 0, a buffer of vec_len regions, or an
    // address the kernel rejects before writing (the tests check that it does).
    unsafe { pm.scan_raw(arg) }
}

/// A PMD-mapped anonymous THP at a PMD-aligned address, optionally followed (in a
/// separate, MADV_NOHUGEPAGE VMA) by `extra` base pages that are not touched.
struct Thp {
    map: Mapping,
    base: usize,
    hps: usize,
}

fn hpage_size() -> Result<usize, Stop> {
    match probe::read_pmd_pagesize() {
        Some(s) => Ok(s as usize),
        None => skip(format!(
            "transparent hugepages not supported (no {}: CONFIG_TRANSPARENT_HUGEPAGE off)",
            probe::PMD_SIZE_FILE_PATH
        )),
    }
}

fn thp_mode_name() -> String {
    std::fs::read_to_string(format!("{}enabled", probe::THP_SYSFS))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unreadable".into())
}

/// Is `[base, base+len)` one PAGE_IS_HUGE region?
fn is_huge(pm: &Pagemap, base: usize, len: usize) -> Result<bool, Stop> {
    let a = ScanArgs::new(base, len)
        .return_mask(Categories::HUGE)
        .vec_len(len / ps());
    let r = scan_whole(pm, &a)?;
    Ok(r.len() == 1
        && r[0].start == base as u64
        && r[0].end == (base + len) as u64
        && r[0].categories == Categories::HUGE)
}

fn thp(pm: &Pagemap, extra: usize) -> Result<Thp, Stop> {
    let hps = hpage_size()?;
    let map = Mapping::anon(2 * hps + extra * ps())?;
    let base = (map.addr() + hps - 1) & !(hps - 1);
    let off = base - map.addr();
    if let Err(e) = map.advise(off, hps, libc::MADV_HUGEPAGE) {
        if e.errno() == Some(libc::EINVAL) {
            return skip(format!("MADV_HUGEPAGE rejected, THP not configured: {e}"));
        }
        return Err(e.into());
    }
    let rest = map.len() - off - hps;
    if rest > 0 {
        map.advise(off + hps, rest, libc::MADV_NOHUGEPAGE)?;
    }
    map.touch_pages(off, hps, 1);
    if !is_huge(pm, base, hps)? {
        // The fault did not get a THP (THP "never", no free 2 MB block): ask
        // khugepaged's synchronous path, which ignores the sysfs mode.
        match map.advise(off, hps, libc::MADV_COLLAPSE) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EINVAL) => {
                return skip(format!(
                    "no THP: a write fault did not map a PMD (THP enabled: {}) and \
                     MADV_COLLAPSE is not supported (added in 6.1): {e}",
                    thp_mode_name()
                ))
            }
            Err(e) => {
                return skip(format!(
                    "no THP: a write fault did not map a PMD (THP enabled: {}) and \
                     MADV_COLLAPSE failed: {e}",
                    thp_mode_name()
                ))
            }
        }
        if !is_huge(pm, base, hps)? {
            return skip("no THP: MADV_COLLAPSE succeeded but the range is not PAGE_IS_HUGE");
        }
    }
    Ok(Thp { map, base, hps })
}

/// Merges adjacent regions with equal categories (what one full scan returns).
fn push_merged(out: &mut Vec<PageRegion>, r: PageRegion) {
    match out.last_mut() {
        Some(last) if last.end == r.start && last.categories == r.categories => last.end = r.end,
        _ => out.push(r),
    }
}

/// Scans `args` again and again from `walk_end` until the range is done, checking
/// each call: walk_end page aligned, advancing, within the range; regions ascending,
/// non-overlapping and below walk_end; at most max_pages pages; an early stop only
/// with a full vec or max_pages reached. Returns the concatenation (merged).
fn resume_scan(pm: &Pagemap, args: &ScanArgs, what: &str) -> Result<Vec<PageRegion>, Stop> {
    let mut a = args.clone();
    let mut out: Vec<PageRegion> = Vec::new();
    let p = ps() as u64;
    for call in 1.. {
        ensure!(
            call < 100_000,
            "{what}: more than 100000 calls, no progress"
        );
        let r = pm.scan(&a)?;
        let ctx = || {
            format!(
                "{what}: call {call} [{:#x}, {:#x}) vec_len {} max_pages {}",
                a.start, a.end, a.vec_len, a.max_pages
            )
        };
        ensure!(
            r.walk_end % p == 0 && r.walk_end > a.start && r.walk_end <= a.end,
            "{}: walk_end {:#x} not page aligned, not past start or beyond end",
            ctx(),
            r.walk_end
        );
        let mut prev = a.start;
        for reg in &r.regions {
            ensure!(
                reg.start >= prev && reg.start < reg.end && reg.end <= r.walk_end,
                "{}: region [{:#x}, {:#x}) overlaps the previous one (ends {prev:#x}), is \
                 empty or lies beyond walk_end {:#x}",
                ctx(),
                reg.start,
                reg.end,
                r.walk_end
            );
            prev = reg.end;
        }
        let pages = r.total_pages();
        ensure!(
            a.max_pages == 0 || pages <= a.max_pages,
            "{}: returned {pages} pages, more than max_pages",
            ctx()
        );
        if r.walk_end < a.end {
            let vec_full = r.regions.len() == a.vec_len;
            let max_hit = a.max_pages != 0 && pages == a.max_pages;
            ensure!(
                vec_full || max_hit,
                "{}: stopped at walk_end {:#x} with {} regions and {pages} pages: neither \
                 the vec is full nor max_pages reached",
                ctx(),
                r.walk_end,
                r.regions.len()
            );
        }
        for reg in r.regions {
            if let Some(last) = out.last() {
                ensure!(
                    reg.start >= last.end,
                    "{}: region [{:#x}, {:#x}) overlaps what earlier calls returned (up to \
                     {:#x}): walk_end too small",
                    ctx(),
                    reg.start,
                    reg.end,
                    last.end
                );
            }
            push_merged(&mut out, reg);
        }
        if r.walk_end >= a.end {
            break;
        }
        a.start = r.walk_end;
    }
    Ok(out)
}

fn compare_regions(what: &str, base: usize, got: &[PageRegion], want: &[PageRegion]) -> TestResult {
    ensure!(
        got == want,
        "{what}: resumed scans returned {}, one full scan returned {}",
        regions_str(base, got),
        regions_str(base, want)
    );
    Ok(())
}

/// 64 pages, present in runs of 1, 2, 3, 4 pages separated by holes of 1, 2, 3 pages.
fn pattern(n: usize) -> Vec<bool> {
    let mut v = Vec::with_capacity(n);
    let (mut run, mut gap) = (1, 1);
    while v.len() < n {
        v.extend(std::iter::repeat_n(true, run));
        v.extend(std::iter::repeat_n(false, gap));
        run = run % 4 + 1;
        gap = gap % 3 + 1;
    }
    v.truncate(n);
    v
}

fn touch(m: &Mapping, pages: &[bool], value: u8) {
    for (i, &t) in pages.iter().enumerate() {
        if t {
            m.write(i * ps(), value);
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Fixed kernel bugs
// ---------------------------------------------------------------------------

/// Peter Xu, "mm/pagemap: fix ioctl(PAGEMAP_SCAN) on vma check" (6.7-rc): without
/// the fix `pagemap_scan_test_walk()` let PM_SCAN_WP_MATCHING walk a VMA that is not
/// registered for uffd WP-async and set uffd-wp bits in its PTEs.
fn wp_matching_skips_vma_without_uffd_wp() -> TestResult {
    let pm = pagemap()?;
    let n = 16;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, m.len(), 1);
    for vec_len in [n, 0] {
        let a = ScanArgs::new(m.addr(), m.len())
            .flags(ScanFlags::WP_MATCHING)
            .required(Categories::WRITTEN)
            .return_mask(Categories::WRITTEN)
            .vec_len(vec_len);
        let r = pm.scan(&a)?;
        ensure!(
            r.regions.is_empty(),
            "PM_SCAN_WP_MATCHING (vec_len {vec_len}) over a VMA without uffd-WP returned {} \
             instead of skipping the VMA",
            regions_str(m.addr(), &r.regions)
        );
        let wp = uffd_wp_bits(&pm, m.addr(), n)?;
        ensure!(
            !wp.contains(&true),
            "after PM_SCAN_WP_MATCHING (vec_len {vec_len}) over a VMA without uffd-WP, pagemap \
             bit 57 (uffd-wp) is set on pages {}",
            pages_str(&wp)
        );
        let all = vec![true; n];
        let w = written(&pm, m.addr(), n, true)?;
        ensure!(
            w == all,
            "after PM_SCAN_WP_MATCHING (vec_len {vec_len}) the pages should still be written, \
             PAGE_IS_WRITTEN only on {}",
            pages_str(&w)
        );
    }
    // And a write still works without a fault handler in sight.
    m.touch_pages(0, m.len(), 2);
    ensure!(m.read(0) == 2, "write after the scan was lost");
    Ok(())
}

/// Same fix: PM_SCAN_CHECK_WPASYNC on a VMA without uffd WP-async fails with EPERM
/// (alone and with PM_SCAN_WP_MATCHING) and changes no PTE.
fn check_wpasync_eperm_on_vma_without_uffd_wp() -> TestResult {
    let pm = pagemap()?;
    let n = 8;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, m.len(), 1);
    for flags in [
        ScanFlags::CHECK_WPASYNC,
        ScanFlags::CHECK_WPASYNC | ScanFlags::WP_MATCHING,
    ] {
        let a = ScanArgs::new(m.addr(), m.len())
            .flags(flags)
            .required(Categories::WRITTEN)
            .return_mask(Categories::WRITTEN)
            .vec_len(n);
        let r = pm.scan(&a);
        ensure!(
            matches!(&r, Err(e) if e.errno() == Some(libc::EPERM)),
            "PAGEMAP_SCAN flags {flags:?} over a VMA without uffd WP-async: expected EPERM, got {}",
            match &r {
                Ok(r) => format!("success with {}", regions_str(m.addr(), &r.regions)),
                Err(e) => e.to_string(),
            }
        );
        let wp = uffd_wp_bits(&pm, m.addr(), n)?;
        ensure!(
            !wp.contains(&true),
            "after the refused scan (flags {flags:?}) pagemap bit 57 is set on pages {}",
            pages_str(&wp)
        );
    }
    Ok(())
}

/// Peter Xu, "mm/pagemap: fix wr-protect even if PM_SCAN_WP_MATCHING not set"
/// (6.7-rc): without the fix the no-vec fast path of `pagemap_scan_pmd_entry()`
/// write-protected every PTE of a scan with vec = NULL, whatever the flags.
fn scan_without_vec_or_wp_matching_changes_no_pte() -> TestResult {
    let pm = pagemap()?;
    let n = 16;
    let plain = Mapping::anon(n * ps())?;
    plain.touch_pages(0, plain.len(), 1);
    let mut cases = vec![("a VMA without uffd-WP", &plain)];
    let registered = Mapping::anon(n * ps())?;
    let uffd = match wp_uffd() {
        Ok(u) => {
            u.register_wp(registered.addr(), registered.len())?;
            registered.touch_pages(0, registered.len(), 1);
            cases.push(("a uffd WP-async VMA", &registered));
            Some(u)
        }
        Err(Stop::Skip(why)) => {
            note(format!(
                "scan_without_vec_or_wp_matching_changes_no_pte: registered-VMA case not run: {why}"
            ));
            None
        }
        Err(e) => return Err(e),
    };
    for (what, m) in cases {
        for masks in [
            ScanArgs::new(m.addr(), m.len()),
            ScanArgs::new(m.addr(), m.len())
                .required(Categories::WRITTEN)
                .return_mask(Categories::WRITTEN),
        ] {
            let a = masks.vec_len(0);
            let r = pm.scan(&a)?;
            ensure!(
                r.regions.is_empty() && r.walk_end == a.end,
                "scan without vec over {what}: {} regions, walk_end {:#x} (end {:#x})",
                r.regions.len(),
                r.walk_end,
                a.end
            );
            let wp = uffd_wp_bits(&pm, m.addr(), n)?;
            ensure!(
                !wp.contains(&true),
                "a scan with vec=NULL, vec_len=0, flags=0 (masks {}/{}) over {what} \
                 write-protected pages {} (pagemap bit 57)",
                a.required,
                a.return_mask,
                pages_str(&wp)
            );
            let w = written(&pm, m.addr(), n, false)?;
            ensure!(
                w == vec![true; n],
                "after a scan with vec=NULL and no flags over {what} only pages {} are \
                 still PAGE_IS_WRITTEN",
                pages_str(&w)
            );
        }
    }
    drop(uffd);
    Ok(())
}

/// Ryan Roberts' fixes, present-page half: after a WP scan and writes to some pages,
/// the fast and the generic path agree, and pagemap bit 57 is the inverse.
fn wp_scan_present_fast_matches_generic() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let n = 64;
    let m = Mapping::anon(n * ps())?;
    u.register_wp(m.addr(), m.len())?;
    m.touch_pages(0, m.len(), 1);
    let first = wp_scan(&pm, m.addr(), m.len())?;
    let all = bitmap(&first, m.addr(), n, Categories::WRITTEN)?;
    ensure!(
        all == vec![true; n],
        "the first WP scan of freshly written pages reported only {}",
        pages_str(&all)
    );
    check_written(&pm, m.addr(), &vec![false; n], "right after the WP scan")?;
    let expected: Vec<bool> = (0..n).map(|i| i % 4 == 0 || i % 7 == 3).collect();
    touch(&m, &expected, 2);
    check_written(&pm, m.addr(), &expected, "after writing some pages")?;
    let wp = uffd_wp_bits(&pm, m.addr(), n)?;
    let not_written: Vec<bool> = expected.iter().map(|w| !w).collect();
    ensure!(
        wp == not_written,
        "pagemap bit 57 set on {}, expected on the pages not written since the WP scan: {}",
        pages_str(&wp),
        pages_str(&not_written)
    );
    for (i, &w) in expected.iter().enumerate() {
        let want = if w { 2 } else { 1 };
        ensure!(
            m.read(i * ps()) == want,
            "page {i} lost its contents across the WP scan"
        );
    }
    Ok(())
}

/// Ryan Roberts, "fs/proc/task_mmu: fix uffd-wp confusion in
/// pagemap_scan_pmd_entry()" (6.9-rc): the fast paths read `pte_uffd_wp()` on swap
/// entries (on x86 a bit of the swap offset), so swapped pages were reported
/// written or not at random. Needs swap for MADV_PAGEOUT.
fn wp_scan_swapped_fast_matches_generic() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let n = 128;
    let m = Mapping::anon(n * ps())?;
    u.register_wp(m.addr(), m.len())?;
    for i in 0..n {
        // Distinct contents so that nothing is merged or deduplicated.
        m.write(i * ps(), i as u8 | 1);
    }
    wp_scan(&pm, m.addr(), m.len())?;
    let expected: Vec<bool> = (0..n).map(|i| i % 3 == 0 || i % 8 == 5).collect();
    touch(&m, &expected, 0xEE);
    if let Err(e) = m.advise(0, m.len(), libc::MADV_PAGEOUT) {
        if e.errno() == Some(libc::EINVAL) {
            return skip(format!("MADV_PAGEOUT not supported (added in 5.4): {e}"));
        }
        return Err(e.into());
    }
    let e = entries(&pm, m.addr(), n)?;
    let swapped: Vec<bool> = e.iter().map(|e| e.swapped()).collect();
    if !swapped.contains(&true) {
        let areas = std::fs::read_to_string("/proc/swaps")
            .map(|s| s.lines().count().saturating_sub(1))
            .unwrap_or(0);
        return skip(format!(
            "needs swap: MADV_PAGEOUT left all {n} pages resident (/proc/swaps lists {areas} \
             swap area(s)); the present-page half is wp_scan_present_fast_matches_generic"
        ));
    }
    note(format!(
        "wp_scan_swapped_fast_matches_generic: pages swapped out: {}",
        pages_str(&swapped)
    ));
    check_written(&pm, m.addr(), &expected, "after MADV_PAGEOUT")?;
    for (i, (e, &w)) in e.iter().zip(&expected).enumerate() {
        ensure!(
            e.uffd_wp() != w,
            "page {i} ({e:?}): pagemap bit 57 is {} but the page was {}written since the WP scan",
            u8::from(e.uffd_wp()),
            if w { "" } else { "not " }
        );
    }
    // Swap everything back in by reading it, and check the contents and the state.
    for (i, &w) in expected.iter().enumerate() {
        let want = if w { 0xEE } else { i as u8 | 1 };
        ensure!(
            m.read(i * ps()) == want,
            "page {i}: contents lost across pageout"
        );
    }
    check_written(&pm, m.addr(), &expected, "after swapping back in")?;
    Ok(())
}

/// Peter Xu, "mm/userfaultfd: reset ptes when close() for wr-protected ones"
/// (6.9-rc, CVE-2024-36881): closing the userfaultfd without unregistering left
/// uffd-wp bits and markers in the PTEs of the no longer registered VMA.
fn uffd_close_clears_wp_bits() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let n = 16;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, n / 2 * ps(), 1);
    u.register_wp(m.addr(), m.len())?;
    u.writeprotect(m.addr(), m.len(), true)?;
    let wp = uffd_wp_bits(&pm, m.addr(), n)?;
    ensure!(
        wp == vec![true; n],
        "precondition: after UFFDIO_WRITEPROTECT (WP_UNPOPULATED) pagemap bit 57 is set only on \
         pages {} of 0-{}",
        pages_str(&wp),
        n - 1
    );
    drop(u); // close() without UFFDIO_UNREGISTER
    let wp = uffd_wp_bits(&pm, m.addr(), n)?;
    ensure!(
        !wp.contains(&true),
        "after close() of the userfaultfd, pagemap bit 57 is still set on pages {} (populated: \
         0-{}; the others had markers)",
        pages_str(&wp),
        n / 2 - 1
    );
    m.touch_pages(0, m.len(), 2);
    let e = entries(&pm, m.addr(), n)?;
    for (i, e) in e.iter().enumerate() {
        ensure!(e.present() && !e.uffd_wp(), "page {i} after writing: {e:?}");
    }
    let a = ScanArgs::new(m.addr(), m.len())
        .return_mask(Categories::WPALLOWED)
        .required(Categories::WPALLOWED)
        .vec_len(n);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        r.is_empty(),
        "the VMA is still PAGE_IS_WPALLOWED after close(): {}",
        regions_str(m.addr(), &r)
    );
    Ok(())
}

/// Dan Carpenter, "fs/proc/task_mmu: prevent integer overflow in
/// pagemap_scan_get_args()" (6.13-rc): `vec_len * sizeof(struct page_region)`
/// wrapped, so `access_ok()` checked a tiny size. vec_len = 2^61 makes it wrap to 0.
fn vec_len_overflow_rejected() -> TestResult {
    let pm = pagemap()?;
    let n = 4;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, m.len(), 1);
    const SENTINEL: uapi::page_region = uapi::page_region {
        start: 0xAAAA_AAAA_AAAA_AAAA,
        end: 0xAAAA_AAAA_AAAA_AAAA,
        categories: 0xAAAA_AAAA_AAAA_AAAA,
    };
    // 2^61 * 24 == 3 * 2^64 wraps to 0; 2^64/24 + 1 wraps to 8; 2^60 to 2^63; MAX.
    let lens: [u64; 4] = [1 << 61, u64::MAX / 24 + 1, 1 << 60, u64::MAX];
    for vec_len in lens {
        let mut buf = [SENTINEL; 4];
        let mut arg = ScanArgs::new(m.addr(), m.len())
            .return_mask(Categories::PRESENT)
            .to_raw(buf.as_mut_ptr() as u64, vec_len);
        let r = raw_scan(&pm, &mut arg);
        let e = errno_of(&r);
        ensure!(
            e == Some(libc::EFAULT) || e == Some(libc::EINVAL),
            "vec_len {vec_len:#x} (vec_len * 24 = {:#x} modulo 2^64): expected EFAULT or EINVAL, {}",
            vec_len.wrapping_mul(24),
            describe(&r)
        );
        ensure!(
            buf.iter().all(|r| *r == SENTINEL),
            "vec_len {vec_len:#x}: the call failed but wrote into vec: {:x?}",
            buf
        );
    }
    Ok(())
}

/// David Hildenbrand, "fs/proc/task_mmu: fix PAGE_IS_PFNZERO detection for the huge
/// zero folio" (6.16-rc): `pagemap_thp_category()` tested `is_zero_pfn()`, which is
/// false for the huge zero page.
fn huge_zero_page_is_pfnzero() -> TestResult {
    let pm = pagemap()?;
    // Base zero page first (a control: this was always right).
    let n = 8;
    let m = Mapping::anon_prot(n * ps(), libc::PROT_READ)?;
    m.read_pages(0, m.len());
    let want = Categories::PFNZERO | Categories::PRESENT;
    let a = ScanArgs::new(m.addr(), m.len())
        .return_mask(want | Categories::HUGE)
        .vec_len(n);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        r.len() == 1 && r[0].pages() == n as u64 && r[0].categories == want,
        "read faults of {n} base pages: expected one PFNZERO|PRESENT region, got {}",
        regions_str(m.addr(), &r)
    );

    let hps = hpage_size()?;
    let use_zero = std::fs::read_to_string(format!("{}use_zero_page", probe::THP_SYSFS))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if use_zero != "1" {
        return skip(format!(
            "huge zero page disabled ({}use_zero_page is {use_zero:?}, not 1)",
            probe::THP_SYSFS
        ));
    }
    let map = MapOptions::new(2 * hps).prot(libc::PROT_READ).map()?;
    let base = (map.addr() + hps - 1) & !(hps - 1);
    let off = base - map.addr();
    if let Err(e) = map.advise(off, hps, libc::MADV_HUGEPAGE) {
        if e.errno() == Some(libc::EINVAL) {
            return skip(format!("MADV_HUGEPAGE rejected, THP not configured: {e}"));
        }
        return Err(e.into());
    }
    map.read(off);
    let a = ScanArgs::new(base, hps)
        .return_mask(want | Categories::HUGE)
        .vec_len(hps / ps());
    let r = scan_whole(&pm, &a)?;
    if !r.iter().any(|r| r.categories.contains(Categories::HUGE)) {
        return skip(format!(
            "huge zero page not in use: a read fault of a 2 MB aligned MADV_HUGEPAGE region \
             was not PMD-mapped (THP enabled: {}; use_zero_page=1): {}",
            thp_mode_name(),
            regions_str(base, &r)
        ));
    }
    ensure!(
        r.len() == 1
            && r[0].start == base as u64
            && r[0].end == (base + hps) as u64
            && r[0].categories == want | Categories::HUGE,
        "read fault mapped the huge zero page: expected one PFNZERO|PRESENT|HUGE region of {} \
         pages, got {}",
        hps / ps(),
        regions_str(base, &r)
    );
    Ok(())
}

/// Kiryl Shutsemau (2026-07): after WP and MADV_DONTNEED of some pages of a uffd-wp
/// anonymous VMA the PTEs are none (anonymous zap installs no marker). The fast path
/// reported them written, the generic path (`pagemap_page_category()`) did not.
fn dontneed_pte_none_written_fast_matches_generic() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let n = 32;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, m.len(), 1);
    u.register_wp(m.addr(), m.len())?;
    wp_scan(&pm, m.addr(), m.len())?;
    check_written(&pm, m.addr(), &vec![false; n], "after the WP scan")?;
    let mut expected = vec![false; n];
    for (s, e) in [(4, 8), (20, 21), (31, 32)] {
        m.advise(s * ps(), (e - s) * ps(), libc::MADV_DONTNEED)?;
        for x in &mut expected[s..e] {
            *x = true;
        }
    }
    let e = entries(&pm, m.addr(), n)?;
    for (i, (e, &z)) in e.iter().zip(&expected).enumerate() {
        ensure!(
            !z || !(e.present() || e.swapped()),
            "precondition: page {i} still populated after MADV_DONTNEED: {e:?}"
        );
    }
    check_written(
        &pm,
        m.addr(),
        &expected,
        "after MADV_DONTNEED of pages 4-7, 20, 31 of a write-protected uffd-wp VMA",
    )?;
    // A WP_MATCHING scan re-arms the zapped pages.
    let r = wp_scan(&pm, m.addr(), m.len())?;
    let got = bitmap(&r, m.addr(), n, Categories::WRITTEN)?;
    ensure!(
        got == expected,
        "the WP scan after MADV_DONTNEED reported {}, expected {}",
        pages_str(&got),
        pages_str(&expected)
    );
    check_written(&pm, m.addr(), &vec![false; n], "after re-arming")?;
    Ok(())
}

/// Kiryl Shutsemau (2026-07): MADV_DONTNEED of a whole write-protected THP leaves a
/// PMD hole; `pagemap_scan_pte_hole()` reported it not written, so all 512 pages
/// vanished from a dirty-page tracker.
fn collapsed_thp_dontneed_hole_written() -> TestResult {
    let pm = pagemap()?;
    let hps = hpage_size()?;
    let map = Mapping::anon(2 * hps)?;
    let base = (map.addr() + hps - 1) & !(hps - 1);
    let off = base - map.addr();
    map.touch_pages(off, hps, 1);
    match map.advise(off, hps, libc::MADV_COLLAPSE) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(libc::EINVAL) => {
            return skip(format!("MADV_COLLAPSE not supported (added in 6.1): {e}"))
        }
        Err(e) => return skip(format!("MADV_COLLAPSE could not make a THP: {e}")),
    }
    if !is_huge(&pm, base, hps)? {
        return skip("MADV_COLLAPSE succeeded but the range is not PAGE_IS_HUGE");
    }
    let u = wp_uffd()?;
    u.register_wp(base, hps)?;
    let n = hps / ps();
    let r = wp_scan(&pm, base, hps)?;
    ensure!(
        bitmap(&r, base, n, Categories::WRITTEN)? == vec![true; n],
        "the WP scan of the collapsed THP reported {}",
        regions_str(base, &r)
    );
    check_written(&pm, base, &vec![false; n], "after write-protecting the THP")?;
    map.advise(off, hps, libc::MADV_DONTNEED)?;
    let e = entries(&pm, base, n)?;
    ensure!(
        e.iter().all(|e| !e.present() && !e.swapped()),
        "precondition: the THP is still populated after MADV_DONTNEED of the whole PMD"
    );
    check_written(
        &pm,
        base,
        &vec![true; n],
        "after MADV_DONTNEED of the whole write-protected THP",
    )?;
    let r = wp_scan(&pm, base, hps)?;
    ensure!(
        bitmap(&r, base, n, Categories::WRITTEN)? == vec![true; n],
        "the WP scan of the hole reported {}",
        regions_str(base, &r)
    );
    check_written(&pm, base, &vec![false; n], "after re-arming the hole")?;
    Ok(())
}

/// Jakub Acs, "fs/proc/task_mmu: check p->vec_buf for NULL" (6.17-rc, 6.12.50):
/// PM_SCAN_WP_MATCHING with vec = NULL over part of a THP splits it and calls
/// `pagemap_scan_backout_range()`, which dereferenced the NULL bounce buffer: an
/// oops. Runs last; in a forked child like every test.
fn thp_subrange_wp_matching_without_vec() -> TestResult {
    let pm = pagemap()?;
    let t = thp(&pm, 0)?;
    let u = wp_uffd()?;
    u.register_wp(t.base, t.hps)?;
    let n = t.hps / ps();
    let a = ScanArgs::range((t.base + ps()) as u64, (t.base + t.hps) as u64)
        .flags(ScanFlags::WP_MATCHING)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN)
        .max_pages(256)
        .vec_len(0);
    let r = pm.scan(&a)?;
    ensure!(
        r.regions.is_empty() && r.walk_end == a.end,
        "scan returned {} regions, walk_end {:#x} (end {:#x})",
        r.regions.len(),
        r.walk_end,
        a.end
    );
    let wp = uffd_wp_bits(&pm, t.base, n)?;
    let mut expected = vec![true; n];
    expected[0] = false;
    ensure!(
        wp == expected,
        "PM_SCAN_WP_MATCHING without vec over pages 1-{} of a THP: pagemap bit 57 on {}, \
         expected on {}",
        n - 1,
        pages_str(&wp),
        pages_str(&expected)
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. walk_end resumption
// ---------------------------------------------------------------------------

fn pattern_mapping(n: usize) -> Result<(Mapping, Vec<bool>), Stop> {
    let m = Mapping::anon(n * ps())?;
    let p = pattern(n);
    touch(&m, &p, 1);
    Ok((m, p))
}

/// Early stops because the vec is full: every vec_len from 1 to one more than the
/// number of regions, filtered (category_mask) and unfiltered.
fn walk_end_resume_vec_full() -> TestResult {
    let pm = pagemap()?;
    let n = 64;
    let (m, _) = pattern_mapping(n)?;
    let variants = [
        (
            "category_mask=PRESENT",
            ScanArgs::new(m.addr(), m.len())
                .required(Categories::PRESENT)
                .return_mask(Categories::PRESENT),
        ),
        (
            "no mask",
            ScanArgs::new(m.addr(), m.len()).return_mask(Categories::PRESENT),
        ),
    ];
    for (what, a) in variants {
        let full = scan_whole(&pm, &a.clone().vec_len(n))?;
        ensure!(full.len() > 4, "{what}: only {} regions", full.len());
        for vl in 1..=full.len() + 1 {
            let got = resume_scan(
                &pm,
                &a.clone().vec_len(vl),
                &format!("{what}, vec_len {vl}"),
            )?;
            compare_regions(&format!("{what}, vec_len {vl}"), m.addr(), &got, &full)?;
        }
    }
    Ok(())
}

/// Early stops at max_pages: every max_pages from 1 to one more than the matching
/// pages, with a large vec and with vec_len 2.
fn walk_end_resume_max_pages() -> TestResult {
    let pm = pagemap()?;
    let n = 64;
    let (m, p) = pattern_mapping(n)?;
    let a = ScanArgs::new(m.addr(), m.len())
        .required(Categories::PRESENT)
        .return_mask(Categories::PRESENT);
    let full = scan_whole(&pm, &a.clone().vec_len(n))?;
    let present = p.iter().filter(|&&x| x).count() as u64;
    for max in 1..=present + 1 {
        for vl in [n, 2] {
            let what = format!("max_pages {max}, vec_len {vl}");
            let got = resume_scan(&pm, &a.clone().vec_len(vl).max_pages(max), &what)?;
            compare_regions(&what, m.addr(), &got, &full)?;
        }
    }
    // The first call stops exactly after max_pages matching pages.
    for max in [1u64, 2, 5, 13] {
        let r = pm.scan(&a.clone().vec_len(n).max_pages(max))?;
        let mut count = 0;
        let mut stop = n;
        for (i, &x) in p.iter().enumerate() {
            if x {
                count += 1;
                if count == max {
                    stop = i + 1;
                    break;
                }
            }
        }
        // walk_end is the next matching page after the last one returned, or that page + 1.
        let last_end = r.regions.last().map(|r| r.end).unwrap_or(0);
        ensure!(
            r.total_pages() == max && last_end == (m.addr() + stop * ps()) as u64,
            "max_pages {max}: first call returned {} (expected to end at page {stop})",
            regions_str(m.addr(), &r.regions)
        );
    }
    Ok(())
}

/// max_pages stops inside a THP (and just around its end), then resumption from a
/// walk_end inside the PMD.
fn walk_end_resume_inside_thp() -> TestResult {
    let pm = pagemap()?;
    let extra = 64;
    let t = thp(&pm, extra)?;
    let n = t.hps / ps();
    let p = pattern(extra);
    for (i, &x) in p.iter().enumerate() {
        if x {
            // The extra pages follow the THP in t.map (offsets are from its start).
            let off = t.base + t.hps + i * ps() - t.map.addr();
            t.map.write(off, 1);
        }
    }
    let len = t.hps + extra * ps();
    let a = ScanArgs::new(t.base, len)
        .required(Categories::PRESENT)
        .return_mask(Categories::PRESENT | Categories::HUGE);
    let full = scan_whole(&pm, &a.clone().vec_len(n + extra))?;
    ensure!(
        full.first()
            == Some(&PageRegion {
                start: t.base as u64,
                end: (t.base + t.hps) as u64,
                categories: Categories::PRESENT | Categories::HUGE,
            }),
        "full scan does not start with the THP: {}",
        regions_str(t.base, &full)
    );
    for max in [1u64, 7, 256, 511, 512, 513, 520] {
        let r = pm.scan(&a.clone().vec_len(n + extra).max_pages(max))?;
        if max < n as u64 {
            ensure!(
                r.walk_end == (t.base + max as usize * ps()) as u64
                    && r.regions.len() == 1
                    && r.total_pages() == max,
                "max_pages {max} inside the THP: walk_end {:#x} (expected base + {max} pages \
                 = {:#x}), {}",
                r.walk_end,
                t.base + max as usize * ps(),
                regions_str(t.base, &r.regions)
            );
        }
        for vl in [n + extra, 1, 3] {
            let what = format!("max_pages {max}, vec_len {vl}");
            let got = resume_scan(&pm, &a.clone().vec_len(vl).max_pages(max), &what)?;
            compare_regions(&what, t.base, &got, &full)?;
        }
    }
    ensure!(
        is_huge(&pm, t.base, t.hps)?,
        "read-only scans split the THP"
    );
    Ok(())
}

/// Resumption under PM_SCAN_WP_MATCHING: every page is reported (and write-protected)
/// exactly once, and none is left written.
fn walk_end_resume_wp_matching() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let n = 64;
    let m = Mapping::anon(n * ps())?;
    u.register_wp(m.addr(), m.len())?;
    m.touch_pages(0, m.len(), 1);
    let a = ScanArgs::new(m.addr(), m.len())
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN);
    let whole = vec![PageRegion {
        start: m.addr() as u64,
        end: (m.addr() + m.len()) as u64,
        categories: Categories::WRITTEN,
    }];
    let got = resume_scan(&pm, &a.clone().vec_len(n).max_pages(5), "max_pages 5")?;
    compare_regions("WP_MATCHING, max_pages 5", m.addr(), &got, &whole)?;
    check_written(&pm, m.addr(), &vec![false; n], "after the resumed WP scans")?;
    let wp = uffd_wp_bits(&pm, m.addr(), n)?;
    ensure!(
        wp == vec![true; n],
        "after the resumed WP scans pagemap bit 57 is set only on {}",
        pages_str(&wp)
    );
    // Now a pattern of written runs, collected with vec_len 1 and with max_pages 3.
    for (what, vl, max) in [("vec_len 1", 1, 0), ("max_pages 3", n, 3)] {
        let p = pattern(n);
        touch(&m, &p, 2);
        check_written(&pm, m.addr(), &p, "after writing the pattern")?;
        let want = scan_whole(
            &pm,
            &ScanArgs::new(m.addr(), m.len())
                .required(Categories::WRITTEN)
                .return_mask(Categories::WRITTEN)
                .vec_len(n),
        )?;
        let got = resume_scan(&pm, &a.clone().vec_len(vl).max_pages(max), what)?;
        compare_regions(&format!("WP_MATCHING, {what}"), m.addr(), &got, &want)?;
        check_written(
            &pm,
            m.addr(),
            &vec![false; n],
            &format!("after WP scans, {what}"),
        )?;
    }
    Ok(())
}

/// Resumption under PM_SCAN_WP_MATCHING with max_pages stops inside a THP (which the
/// kernel splits to write-protect part of it).
fn walk_end_resume_wp_matching_thp() -> TestResult {
    let pm = pagemap()?;
    let extra = 16;
    let t = thp(&pm, extra)?;
    let u = wp_uffd()?;
    let len = t.hps + extra * ps();
    let n = len / ps();
    u.register_wp(t.base, len)?;
    let off = t.base - t.map.addr();
    t.map.touch_pages(off + t.hps, extra * ps(), 1);
    let a = ScanArgs::new(t.base, len)
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN);
    let whole = vec![PageRegion {
        start: t.base as u64,
        end: (t.base + len) as u64,
        categories: Categories::WRITTEN,
    }];
    let got = resume_scan(&pm, &a.clone().vec_len(n).max_pages(100), "max_pages 100")?;
    compare_regions(
        "WP_MATCHING over a THP, max_pages 100",
        t.base,
        &got,
        &whole,
    )?;
    check_written(&pm, t.base, &vec![false; n], "after the resumed WP scans")?;
    let wp = uffd_wp_bits(&pm, t.base, n)?;
    ensure!(
        wp == vec![true; n],
        "after the resumed WP scans pagemap bit 57 is set only on {}",
        pages_str(&wp)
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. PAGE_IS_SOFT_DIRTY vs pagemap bit 55
// ---------------------------------------------------------------------------

fn require_soft_dirty(pm: &Pagemap) -> TestResult {
    let cats = probe::supported_categories(pm)?;
    if !cats.contains(Categories::SOFT_DIRTY) {
        return skip("PAGE_IS_SOFT_DIRTY not supported (added in 6.8)");
    }
    if let Some(why) = probe::softdirty_unsupported_reason()? {
        if std::env::var_os(FORCE_SOFT_DIRTY_ENV).is_some() {
            note(format!(
                "running anyway ({FORCE_SOFT_DIRTY_ENV} set): {why}"
            ));
            return Ok(());
        }
        return skip(format!("soft-dirty not supported: {why}"));
    }
    Ok(())
}

/// Set by `--force-soft-dirty`: run the soft-dirty tests on a kernel without
/// CONFIG_MEM_SOFT_DIRTY, where the tests expecting a set bit must fail (the crate's
/// host test uses it to show that they can).
const FORCE_SOFT_DIRTY_ENV: &str = "PAGEMAP_SCAN_REGRESSIONS_FORCE_SOFT_DIRTY";

/// Bit 55 of every page against PAGE_IS_SOFT_DIRTY; returns the bitmap.
fn sd_agree(pm: &Pagemap, base: usize, n: usize, step: &str) -> Result<Vec<bool>, Stop> {
    let pmap: Vec<bool> = entries(pm, base, n)?
        .iter()
        .map(|e| e.soft_dirty())
        .collect();
    let a = ScanArgs::new(base, n * ps())
        .return_mask(Categories::SOFT_DIRTY)
        .vec_len(n);
    let scan = bitmap(&scan_whole(pm, &a)?, base, n, Categories::SOFT_DIRTY)?;
    let a = ScanArgs::new(base, n * ps())
        .required(Categories::SOFT_DIRTY)
        .return_mask(Categories::SOFT_DIRTY)
        .vec_len(n);
    let scan_req = bitmap(&scan_whole(pm, &a)?, base, n, Categories::SOFT_DIRTY)?;
    ensure!(
        pmap == scan && scan == scan_req,
        "{step}: soft-dirty pages: pagemap bit 55 on {}, PAGE_IS_SOFT_DIRTY (return_mask) on {}, \
         (category_mask) on {}",
        pages_str(&pmap),
        pages_str(&scan),
        pages_str(&scan_req)
    );
    Ok(pmap)
}

fn sd_expect(pm: &Pagemap, base: usize, expected: &[bool], step: &str) -> TestResult {
    let got = sd_agree(pm, base, expected.len(), step)?;
    ensure!(
        got == expected,
        "{step}: soft-dirty on {}, expected on {}",
        pages_str(&got),
        pages_str(expected)
    );
    Ok(())
}

fn clear_sd() -> TestResult {
    clear_softdirty().map_err(|e| Stop::Fail(format!("clear_refs 4: {e}")))
}

/// Steps shared by the anon and file cases: clear, write some, mprotect RO/RW.
fn sd_steps(pm: &Pagemap, m: &Mapping, what: &str) -> TestResult {
    let n = m.pages();
    sd_expect(
        pm,
        m.addr(),
        &vec![true; n],
        &format!("{what}: fresh mapping"),
    )?;
    m.touch_pages(0, m.len(), 1);
    sd_expect(
        pm,
        m.addr(),
        &vec![true; n],
        &format!("{what}: after writing"),
    )?;
    clear_sd()?;
    sd_expect(
        pm,
        m.addr(),
        &vec![false; n],
        &format!("{what}: after clear_refs"),
    )?;
    let some: Vec<bool> = (0..n).map(|i| i % 5 == 1).collect();
    touch(m, &some, 2);
    sd_expect(pm, m.addr(), &some, &format!("{what}: after writing pages"))?;
    clear_sd()?;
    m.protect(0, m.len(), libc::PROT_READ)?;
    sd_expect(
        pm,
        m.addr(),
        &vec![false; n],
        &format!("{what}: after mprotect(PROT_READ)"),
    )?;
    m.protect(0, m.len(), libc::PROT_READ | libc::PROT_WRITE)?;
    sd_expect(
        pm,
        m.addr(),
        &vec![false; n],
        &format!("{what}: after mprotect(PROT_READ|PROT_WRITE)"),
    )?;
    let one: Vec<bool> = (0..n).map(|i| i == 3).collect();
    touch(m, &one, 3);
    sd_expect(pm, m.addr(), &one, &format!("{what}: after writing page 3"))?;
    // Part of the range read-only: the VMA splits; then back, and it merges.
    clear_sd()?;
    m.protect(2 * ps(), 2 * ps(), libc::PROT_READ)?;
    m.protect(2 * ps(), 2 * ps(), libc::PROT_READ | libc::PROT_WRITE)?;
    sd_expect(
        pm,
        m.addr(),
        &vec![false; n],
        &format!("{what}: after split and merge by mprotect"),
    )?;
    Ok(())
}

fn soft_dirty_agrees_anon() -> TestResult {
    let pm = pagemap()?;
    require_soft_dirty(&pm)?;
    // Reserve 20 pages and give back the last 4, so that the address right after
    // the 16-page mapping is free for the merge step.
    let (ptr, _) = Mapping::anon(20 * ps())?.forget();
    // SAFETY: the last 4 pages of our own reservation; nothing refers to them.
    unsafe { mem::munmap_raw(ptr.add(16 * ps()), 4 * ps())? };
    // SAFETY: the first 16 pages stay mapped and are owned by this Mapping only.
    let m = unsafe { Mapping::from_raw(ptr, 16 * ps()) }.expect("non-null");
    sd_steps(&pm, &m, "anon")?;
    // A new mapping right after ours merges with it (mmap_region() marks the
    // expanded VMA VM_SOFTDIRTY): the new pages are soft-dirty.
    let next = MapOptions::new(4 * ps())
        .fixed_noreplace(m.addr() + m.len())
        .map()?;
    let n = m.pages() + next.pages();
    let bits = sd_agree(&pm, m.addr(), n, "anon: after mapping an adjacent VMA")?;
    ensure!(
        bits[m.pages()..].iter().all(|&b| b),
        "anon: the new adjacent mapping is not soft-dirty: {}",
        pages_str(&bits)
    );
    Ok(())
}

fn soft_dirty_agrees_thp() -> TestResult {
    let pm = pagemap()?;
    require_soft_dirty(&pm)?;
    let t = thp(&pm, 0)?;
    let n = t.hps / ps();
    let off = t.base - t.map.addr();
    sd_expect(&pm, t.base, &vec![true; n], "THP: fresh")?;
    clear_sd()?;
    sd_expect(&pm, t.base, &vec![false; n], "THP: after clear_refs")?;
    t.map.write(off + 3 * ps(), 2);
    let bits = sd_agree(&pm, t.base, n, "THP: after writing page 3")?;
    if is_huge(&pm, t.base, t.hps)? {
        ensure!(
            bits == vec![true; n],
            "THP still PMD-mapped: a write to page 3 makes the whole PMD soft-dirty, got {}",
            pages_str(&bits)
        );
    } else {
        ensure!(bits[3], "THP split: page 3 written but not soft-dirty");
    }
    clear_sd()?;
    t.map.protect(off, t.hps, libc::PROT_READ)?;
    t.map
        .protect(off, t.hps, libc::PROT_READ | libc::PROT_WRITE)?;
    sd_expect(
        &pm,
        t.base,
        &vec![false; n],
        "THP: after mprotect RO and RW",
    )?;
    Ok(())
}

fn soft_dirty_agrees_file() -> TestResult {
    let pm = pagemap()?;
    require_soft_dirty(&pm)?;
    let n = 16;
    let fd = mem::memfd_create("pagemap_scan_regressions", libc::MFD_CLOEXEC)?;
    mem::ftruncate(fd.as_fd(), (n * ps()) as u64)?;
    let shared = MapOptions::new(n * ps())
        .file(fd.as_fd(), 0)
        .shared()
        .map()?;
    sd_steps(&pm, &shared, "memfd MAP_SHARED")?;
    // MAP_PRIVATE of the file: read faults map the file pages, writes COW them.
    let private = MapOptions::new(n * ps()).file(fd.as_fd(), 0).map()?;
    private.read_pages(0, private.len());
    sd_agree(
        &pm,
        private.addr(),
        n,
        "memfd MAP_PRIVATE: after read faults",
    )?;
    clear_sd()?;
    sd_expect(
        &pm,
        private.addr(),
        &vec![false; n],
        "memfd MAP_PRIVATE: after clear_refs",
    )?;
    let some: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
    touch(&private, &some, 9);
    sd_expect(
        &pm,
        private.addr(),
        &some,
        "memfd MAP_PRIVATE: after COW writes",
    )?;
    Ok(())
}

/// Soft-dirty across VMA merges by mremap (moved PTEs are marked soft-dirty by
/// `move_soft_dirty_pte()`) and by mprotect.
fn soft_dirty_agrees_vma_merge() -> TestResult {
    let pm = pagemap()?;
    require_soft_dirty(&pm)?;
    // B first, so that it cannot land in the page freed next.
    let b = Mapping::anon(ps())?;
    b.write(0, 7);
    // Reserve 3 pages; keep pages 0-1 as A, free page 2, move B there.
    let a = Mapping::anon(3 * ps())?;
    let (aptr, _) = a.forget();
    let a_addr = aptr as usize;
    // SAFETY: page 2 of our own reservation; nothing refers to it.
    unsafe { mem::munmap_raw(aptr.add(2 * ps()), ps())? };
    // SAFETY: pages 0-1 remain mapped and are owned by this new Mapping.
    let a = unsafe { Mapping::from_raw(aptr, 2 * ps()) }.expect("non-null");
    a.touch_pages(0, a.len(), 1);
    clear_sd()?;
    sd_expect(&pm, a_addr, &[false, false], "before mremap")?;
    let (bptr, blen) = b.forget();
    // SAFETY: moves our own page B onto the free page after A.
    let moved = unsafe {
        mem::mremap_raw(
            bptr,
            blen,
            ps(),
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            aptr.add(2 * ps()),
        )?
    };
    let (aptr2, _) = a.forget();
    // SAFETY: A and the moved page are now one 3-page range we own.
    let all = unsafe { Mapping::from_raw(aptr2, 3 * ps()) }.expect("non-null");
    ensure!(
        moved as usize == a_addr + 2 * ps(),
        "mremap put B at {moved:p}"
    );
    ensure!(all.read(2 * ps()) == 7, "moved page lost its contents");
    let bits = sd_agree(&pm, a_addr, 3, "after mremap next to A")?;
    ensure!(
        bits[2],
        "the moved page is not soft-dirty (move_soft_dirty_pte): {}",
        pages_str(&bits)
    );
    clear_sd()?;
    all.protect(ps(), ps(), libc::PROT_READ)?;
    all.protect(ps(), ps(), libc::PROT_READ | libc::PROT_WRITE)?;
    sd_expect(
        &pm,
        a_addr,
        &[false, false, false],
        "after mprotect split and merge",
    )?;
    all.write(ps(), 5);
    sd_expect(
        &pm,
        a_addr,
        &[false, true, false],
        "after writing the middle page",
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Argument validation and category_inverted
// ---------------------------------------------------------------------------

/// category_inverted selects the complement, at page level and at VMA level
/// (PAGE_IS_WPALLOWED), and does not change the categories returned.
fn category_inverted_selects_complement() -> TestResult {
    let pm = pagemap()?;
    let n = 16;
    let m = Mapping::anon(n * ps())?;
    let even: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    let odd: Vec<bool> = even.iter().map(|x| !x).collect();
    touch(&m, &even, 1);
    let base = ScanArgs::new(m.addr(), m.len()).vec_len(n);
    for (what, a) in [
        (
            "category_mask=PRESENT, inverted=PRESENT",
            base.clone()
                .required(Categories::PRESENT)
                .inverted(Categories::PRESENT)
                .return_mask(Categories::PRESENT),
        ),
        (
            "anyof=PRESENT, inverted=PRESENT",
            base.clone()
                .anyof(Categories::PRESENT)
                .inverted(Categories::PRESENT)
                .return_mask(Categories::PRESENT),
        ),
    ] {
        let r = scan_whole(&pm, &a)?;
        let got = bitmap(&r, m.addr(), n, Categories::NONE)?;
        ensure!(
            got == odd && r.iter().all(|r| r.categories.is_empty()),
            "{what}: expected the not-present pages {} with categories 0, got {}",
            pages_str(&odd),
            regions_str(m.addr(), &r)
        );
    }
    // Inverting a bit that is not required changes nothing.
    let a = base
        .clone()
        .required(Categories::PRESENT)
        .inverted(Categories::FILE)
        .return_mask(Categories::PRESENT | Categories::FILE);
    let r = scan_whole(&pm, &a)?;
    let got = bitmap(&r, m.addr(), n, Categories::PRESENT)?;
    ensure!(
        got == even && r.iter().all(|r| r.categories == Categories::PRESENT),
        "category_mask=PRESENT, inverted=FILE: expected the present pages {} as PRESENT, got {}",
        pages_str(&even),
        regions_str(m.addr(), &r)
    );
    // Required and inverted FILE on anonymous memory: every page.
    let a = base
        .clone()
        .required(Categories::FILE)
        .inverted(Categories::FILE)
        .return_mask(Categories::FILE | Categories::PRESENT);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        bitmap(&r, m.addr(), n, Categories::NONE)? == vec![true; n],
        "category_mask=FILE, inverted=FILE over anonymous memory: expected every page, got {}",
        regions_str(m.addr(), &r)
    );
    // VMA level: not WPALLOWED, asked as inverted WPALLOWED: the whole VMA.
    let a = base
        .clone()
        .required(Categories::WPALLOWED)
        .inverted(Categories::WPALLOWED)
        .return_mask(Categories::WPALLOWED);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        r.len() == 1 && r[0].pages() == n as u64 && r[0].categories.is_empty(),
        "category_mask=WPALLOWED, inverted=WPALLOWED over a VMA without uffd-WP: expected one \
         region of {n} pages with categories 0, got {}",
        regions_str(m.addr(), &r)
    );
    let a = base
        .clone()
        .required(Categories::WPALLOWED)
        .return_mask(Categories::WPALLOWED);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        r.is_empty(),
        "category_mask=WPALLOWED over a VMA without uffd-WP: expected nothing, got {}",
        regions_str(m.addr(), &r)
    );
    Ok(())
}

fn unknown_flags_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(ps())?;
    let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
    let r = raw_scan(&pm, &mut arg);
    ensure!(
        r.is_ok(),
        "control scan with flags 0 failed: {}",
        describe(&r)
    );
    let known = uapi::PM_SCAN_WP_MATCHING | uapi::PM_SCAN_CHECK_WPASYNC;
    let mut accepted = Vec::new();
    for bit in 0..64 {
        let f = 1u64 << bit;
        if f & known != 0 {
            continue;
        }
        for flags in [f, f | uapi::PM_SCAN_WP_MATCHING] {
            let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
            arg.flags = flags;
            let r = raw_scan(&pm, &mut arg);
            if errno_of(&r) != Some(libc::EINVAL) {
                accepted.push(format!("flags {flags:#x}: {}", describe(&r)));
            }
        }
    }
    ensure!(
        accepted.is_empty(),
        "unknown flags not rejected with EINVAL: {}",
        accepted.join("; ")
    );
    Ok(())
}

const MASK_FIELDS: [&str; 4] = [
    "category_inverted",
    "category_mask",
    "category_anyof_mask",
    "return_mask",
];

fn set_mask(arg: &mut uapi::pm_scan_arg, field: usize, v: u64) {
    match field {
        0 => arg.category_inverted = v,
        1 => arg.category_mask = v,
        2 => arg.category_anyof_mask = v,
        _ => arg.return_mask = v,
    }
}

/// Which of bits 0-63 the kernel accepts in mask field `field`.
fn accepted_bits(pm: &Pagemap, addr: usize, field: usize) -> Result<u64, Stop> {
    let mut ok = 0u64;
    for bit in 0..64 {
        let mut arg = raw_arg(addr as u64, (addr + ps()) as u64);
        set_mask(&mut arg, field, 1 << bit);
        let r = raw_scan(pm, &mut arg);
        match errno_of(&r) {
            None => ok |= 1 << bit,
            Some(libc::EINVAL) => {}
            Some(_) => {
                return Err(Stop::Fail(format!(
                    "{} = bit {bit}: {}",
                    MASK_FIELDS[field],
                    describe(&r)
                )))
            }
        }
    }
    Ok(ok)
}

/// Unknown category bits in one mask field are EINVAL; the bits a kernel knows are
/// the 6.7 set plus SOFT_DIRTY (6.8) and GUARD (6.16) where present, and the same
/// in all four fields.
fn unknown_category_bits_rejected(field: usize) -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(ps())?;
    let all: Vec<u64> = (0..4)
        .map(|f| accepted_bits(&pm, m.addr(), f))
        .collect::<Result<_, _>>()?;
    let mine = all[field];
    let known = Categories::ALL_KNOWN.bits();
    ensure!(
        mine & !known == 0,
        "{} accepts bits {} that no kernel defines (known: {})",
        MASK_FIELDS[field],
        Categories(mine & !known),
        Categories::ALL_KNOWN
    );
    ensure!(
        mine & Categories::BASE.bits() == Categories::BASE.bits(),
        "{} rejects 6.7 categories {}",
        MASK_FIELDS[field],
        Categories(Categories::BASE.bits() & !mine)
    );
    for (f, &other) in all.iter().enumerate() {
        ensure!(
            other == mine,
            "{} accepts {} but {} accepts {}",
            MASK_FIELDS[field],
            Categories(mine),
            MASK_FIELDS[f],
            Categories(other)
        );
    }
    note(format!(
        "unknown_category_bits_rejected_{}: accepted {}",
        MASK_FIELDS[field],
        Categories(mine)
    ));
    Ok(())
}

fn unknown_category_bits_rejected_category_inverted() -> TestResult {
    unknown_category_bits_rejected(0)
}
fn unknown_category_bits_rejected_category_mask() -> TestResult {
    unknown_category_bits_rejected(1)
}
fn unknown_category_bits_rejected_category_anyof_mask() -> TestResult {
    unknown_category_bits_rejected(2)
}
fn unknown_category_bits_rejected_return_mask() -> TestResult {
    unknown_category_bits_rejected(3)
}

fn wrong_size_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(ps())?;
    for size in [0u64, 8, 88, 95, 97, 192, u64::MAX] {
        let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
        arg.size = size;
        let r = raw_scan(&pm, &mut arg);
        ensure!(
            errno_of(&r) == Some(libc::EINVAL),
            "size {size}: expected EINVAL, {}",
            describe(&r)
        );
    }
    Ok(())
}

fn unaligned_start_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(4 * ps())?;
    m.touch_pages(0, m.len(), 1);
    let end = (m.addr() + m.len()) as u64;
    for delta in [1u64, 8, ps() as u64 - 1] {
        let mut arg = raw_arg(m.addr() as u64 + delta, end);
        let r = raw_scan(&pm, &mut arg);
        ensure!(
            errno_of(&r) == Some(libc::EINVAL),
            "start = page + {delta}: expected EINVAL, {}",
            describe(&r)
        );
    }
    // An unaligned end is rounded up: walk_end is the next page boundary.
    let mut buf = [uapi::page_region::default(); 4];
    let mut arg = ScanArgs::range(m.addr() as u64, m.addr() as u64 + ps() as u64 + 1)
        .return_mask(Categories::PRESENT)
        .to_raw(buf.as_mut_ptr() as u64, 4);
    let r = raw_scan(&pm, &mut arg);
    let want_end = m.addr() as u64 + 2 * ps() as u64;
    ensure!(
        matches!(r, Ok(1)) && arg.walk_end == want_end && buf[0].end == want_end,
        "end = start + page + 1: expected 1 region up to and walk_end at {want_end:#x}, {} with \
         walk_end {:#x}, region [{:#x}, {:#x})",
        describe(&r),
        arg.walk_end,
        buf[0].start,
        buf[0].end
    );
    Ok(())
}

fn bad_range_or_vec_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(4 * ps())?;
    m.touch_pages(0, m.len(), 1);
    let (s, e) = (m.addr() as u64, (m.addr() + m.len()) as u64);
    let mut buf = [uapi::page_region::default(); 4];
    let bufp = buf.as_mut_ptr() as u64;
    let cases: Vec<(&str, uapi::pm_scan_arg, &[i32])> = vec![
        (
            "vec NULL with vec_len 1",
            raw_arg(s, e).with_vec(0, 1),
            &[libc::EINVAL],
        ),
        (
            "vec in kernel space",
            raw_arg(s, e).with_vec(0xffff_8000_0000_0000, 4),
            &[libc::EFAULT],
        ),
        (
            "vec ending beyond user space",
            raw_arg(s, e).with_vec(0x7fff_ffff_f000, 1 << 20),
            &[libc::EFAULT],
        ),
        (
            "end before start",
            raw_arg(e, s).with_vec(bufp, 4),
            &[libc::EFAULT, libc::EINVAL],
        ),
        (
            "range in kernel space",
            raw_arg(0xffff_8000_0000_0000, 0xffff_8000_0001_0000).with_vec(bufp, 4),
            &[libc::EFAULT],
        ),
    ];
    for (what, mut arg, errnos) in cases {
        let r = raw_scan(&pm, &mut arg);
        ensure!(
            errno_of(&r).is_some_and(|e| errnos.contains(&e)),
            "{what}: expected {}, {}",
            errnos
                .iter()
                .map(|&e| mm::error::errno_name(e).unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(" or "),
            describe(&r)
        );
    }
    // An empty range is fine: no region, walk_end == end.
    let mut arg = raw_arg(s, s).with_vec(bufp, 4);
    let r = raw_scan(&pm, &mut arg);
    ensure!(
        matches!(r, Ok(0)) && arg.walk_end == s,
        "empty range: expected 0 regions and walk_end {s:#x}, {} with walk_end {:#x}",
        describe(&r),
        arg.walk_end
    );
    Ok(())
}

trait WithVec {
    fn with_vec(self, vec: u64, vec_len: u64) -> Self;
}

impl WithVec for uapi::pm_scan_arg {
    fn with_vec(mut self, vec: u64, vec_len: u64) -> Self {
        self.vec = vec;
        self.vec_len = vec_len;
        self
    }
}

// ---------------------------------------------------------------------------
// 5. Guard regions
// ---------------------------------------------------------------------------

fn guard_regions_reported() -> TestResult {
    let pm = pagemap()?;
    let n = 16;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, m.len(), 1);
    match m.advise(2 * ps(), 3 * ps(), uapi::MADV_GUARD_INSTALL) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(libc::EINVAL) => {
            return skip(format!(
                "MADV_GUARD_INSTALL not supported (added in 6.13): {e}"
            ))
        }
        Err(e) => return Err(e.into()),
    }
    if !probe::supported_categories(&pm)?.contains(Categories::GUARD) {
        return skip("PAGE_IS_GUARD not supported (added in 6.16)");
    }
    m.advise(9 * ps(), ps(), uapi::MADV_GUARD_INSTALL)?;
    let mut expected = vec![false; n];
    for i in [2, 3, 4, 9] {
        expected[i] = true;
    }
    for step in [
        "after MADV_GUARD_INSTALL of pages 2-4 and 9",
        "after MADV_GUARD_REMOVE of pages 2-4",
    ] {
        let pmap: Vec<bool> = entries(&pm, m.addr(), n)?
            .iter()
            .map(|e| e.guard())
            .collect();
        let a = ScanArgs::new(m.addr(), m.len())
            .return_mask(Categories::GUARD | Categories::PRESENT)
            .vec_len(n);
        let r = scan_whole(&pm, &a)?;
        let scan = bitmap(&r, m.addr(), n, Categories::GUARD)?;
        let a = ScanArgs::new(m.addr(), m.len())
            .required(Categories::GUARD)
            .return_mask(Categories::GUARD)
            .vec_len(n);
        let req = bitmap(&scan_whole(&pm, &a)?, m.addr(), n, Categories::GUARD)?;
        ensure!(
            pmap == expected && scan == expected && req == expected,
            "{step}: expected guard pages {}; pagemap bit 58 on {}, PAGE_IS_GUARD (return_mask) \
             on {}, (category_mask) on {}",
            pages_str(&expected),
            pages_str(&pmap),
            pages_str(&scan),
            pages_str(&req)
        );
        ensure!(
            r.iter().all(|r| !(r.categories.contains(Categories::GUARD)
                && r.categories.contains(Categories::PRESENT))),
            "{step}: a guard page is also PRESENT: {}",
            regions_str(m.addr(), &r)
        );
        m.advise(2 * ps(), 3 * ps(), uapi::MADV_GUARD_REMOVE)?;
        for x in &mut expected[2..5] {
            *x = false;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------

type TestFn = fn() -> TestResult;

const TESTS: &[(&str, TestFn)] = &[
    (
        "wp_matching_skips_vma_without_uffd_wp",
        wp_matching_skips_vma_without_uffd_wp,
    ),
    (
        "check_wpasync_eperm_on_vma_without_uffd_wp",
        check_wpasync_eperm_on_vma_without_uffd_wp,
    ),
    (
        "scan_without_vec_or_wp_matching_changes_no_pte",
        scan_without_vec_or_wp_matching_changes_no_pte,
    ),
    (
        "wp_scan_present_fast_matches_generic",
        wp_scan_present_fast_matches_generic,
    ),
    (
        "wp_scan_swapped_fast_matches_generic",
        wp_scan_swapped_fast_matches_generic,
    ),
    ("uffd_close_clears_wp_bits", uffd_close_clears_wp_bits),
    ("vec_len_overflow_rejected", vec_len_overflow_rejected),
    ("huge_zero_page_is_pfnzero", huge_zero_page_is_pfnzero),
    (
        "dontneed_pte_none_written_fast_matches_generic",
        dontneed_pte_none_written_fast_matches_generic,
    ),
    (
        "collapsed_thp_dontneed_hole_written",
        collapsed_thp_dontneed_hole_written,
    ),
    ("walk_end_resume_vec_full", walk_end_resume_vec_full),
    ("walk_end_resume_max_pages", walk_end_resume_max_pages),
    ("walk_end_resume_inside_thp", walk_end_resume_inside_thp),
    ("walk_end_resume_wp_matching", walk_end_resume_wp_matching),
    (
        "walk_end_resume_wp_matching_thp",
        walk_end_resume_wp_matching_thp,
    ),
    ("soft_dirty_agrees_anon", soft_dirty_agrees_anon),
    ("soft_dirty_agrees_thp", soft_dirty_agrees_thp),
    ("soft_dirty_agrees_file", soft_dirty_agrees_file),
    ("soft_dirty_agrees_vma_merge", soft_dirty_agrees_vma_merge),
    (
        "category_inverted_selects_complement",
        category_inverted_selects_complement,
    ),
    ("unknown_flags_rejected", unknown_flags_rejected),
    (
        "unknown_category_bits_rejected_category_inverted",
        unknown_category_bits_rejected_category_inverted,
    ),
    (
        "unknown_category_bits_rejected_category_mask",
        unknown_category_bits_rejected_category_mask,
    ),
    (
        "unknown_category_bits_rejected_category_anyof_mask",
        unknown_category_bits_rejected_category_anyof_mask,
    ),
    (
        "unknown_category_bits_rejected_return_mask",
        unknown_category_bits_rejected_return_mask,
    ),
    ("wrong_size_rejected", wrong_size_rejected),
    ("unaligned_start_rejected", unaligned_start_rejected),
    ("bad_range_or_vec_rejected", bad_range_or_vec_rejected),
    ("guard_regions_reported", guard_regions_reported),
    // Last: oopses a kernel without "fs/proc/task_mmu: check p->vec_buf for NULL".
    (
        "thp_subrange_wp_matching_without_vec",
        thp_subrange_wp_matching_without_vec,
    ),
];

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    format!("{name} (signal {sig})")
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".into()
    }
}

/// Runs `f` in a forked child; the child sends "P", "F<why>" or "S<why>" on a pipe.
fn run_forked(f: TestFn) -> Outcome {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Outcome::Fail(mm::Error::last("pipe2", "O_CLOEXEC").to_string());
    }
    // SAFETY: both descriptors are fresh and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let _ = std::io::stdout().flush();
    // SAFETY: the process is single-threaded here; the child only runs the test and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Outcome::Fail(mm::Error::last("fork", "").to_string());
    }
    if pid == 0 {
        drop(rd);
        let msg = match std::panic::catch_unwind(f) {
            Ok(Ok(())) => "P".to_string(),
            Ok(Err(Stop::Fail(m))) => format!("F{m}"),
            Ok(Err(Stop::Skip(m))) => format!("S{m}"),
            Err(p) => format!("Fpanicked: {}", panic_text(&*p)),
        };
        let _ = std::io::stdout().flush();
        let mut w = std::fs::File::from(wr);
        let _ = w.write_all(msg.as_bytes());
        drop(w);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    drop(wr);
    let deadline = Instant::now() + TEST_TIMEOUT;
    let mut file = std::fs::File::from(rd);
    let mut msg = Vec::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&file),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if r == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => msg.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if timed_out {
        // SAFETY: pid is our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // Reap, but do not hang on a child stuck in the kernel.
    let reap_deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    let reaped = loop {
        // SAFETY: pid is our child; status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break true;
        }
        if r < 0 || Instant::now() >= reap_deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if timed_out {
        return Outcome::Fail(format!(
            "timed out after {} s{}",
            TEST_TIMEOUT.as_secs(),
            if reaped {
                ""
            } else {
                "; the child did not die after SIGKILL (stuck in the kernel: look for an Oops \
                 on the console)"
            }
        ));
    }
    if !reaped {
        return Outcome::Fail(format!(
            "child {pid} closed its pipe but did not exit within 10 s (stuck in the kernel?)"
        ));
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        return Outcome::Fail(format!(
            "child killed by {}{}",
            signal_name(sig),
            if sig == libc::SIGKILL {
                ": a kernel oops kills the task this way, check the console"
            } else {
                ""
            }
        ));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let msg = String::from_utf8_lossy(&msg).into_owned();
    match (code, msg.chars().next()) {
        (0, Some('P')) => Outcome::Pass,
        (0, Some('F')) => Outcome::Fail(msg[1..].to_string()),
        (0, Some('S')) => Outcome::Skip(msg[1..].to_string()),
        _ => Outcome::Fail(format!(
            "child exited with status {code} and result {msg:?}"
        )),
    }
}

/// Is PAGEMAP_SCAN there at all? `Err(reason)` for a suite-level skip.
fn probe_pagemap_scan(pm: &Pagemap) -> Result<(), String> {
    let m = Mapping::anon(ps()).map_err(|e| format!("Bail: {e}"))?;
    let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
    match raw_scan(pm, &mut arg) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.errno(), Some(libc::ENOTTY) | Some(libc::EINVAL)) => {
            Err(format!("PAGEMAP_SCAN not supported (added in 6.7): {e}"))
        }
        Err(e) => Err(format!("Bail: {e}")),
    }
}

/// `--runner-selftest`: tests of the runner itself (a child killed by a signal, a
/// panicking child, then a passing test), used by the crate's host test to show that
/// a crash is `not ok` with the signal named and that the suite goes on.
const RUNNER_SELFTEST: &[(&str, TestFn)] = &[
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
            "--force-soft-dirty" => unsafe { std::env::set_var(FORCE_SOFT_DIRTY_ENV, "1") },
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
    for &(name, f) in tests {
        match run_forked(f) {
            Outcome::Pass => k.test_result_pass(name),
            Outcome::Skip(why) => k.test_result_code(KSFT_SKIP, name, Some(&why)),
            Outcome::Fail(why) => {
                k.print_msg(format!("{name}: {why}"));
                k.test_result_fail(name);
            }
        }
    }
    k.finished().exit()
}
