//! PAGEMAP_SCAN over hugetlb VMAs registered for uffd WP-async: the hugetlb fixes of
//! Linux 7.2's `fs/proc/task_mmu.c` (also in Debian's 6.12.117 and the 6.1 backport
//! series; see REFERENCE.md), which no upstream selftest exercises:
//!
//! - `pagemap_scan_pte_hole()` write-protects an unpopulated hugetlb range through
//!   `pagemap_scan_hugetlb_hole_wp()` (markers installed under the page-table lock),
//!   not `uffd_wp_range()`, which takes `hugetlb_vma_lock_write()` while the walker
//!   (`walk_hugetlb_range()`) holds the read side: [`hugetlb_hole_wp_matching`];
//! - `pagemap_scan_hugetlb_entry()` detects a partial hugetlb page with
//!   `huge_page_size(hstate_vma(vma))`, not `HPAGE_SIZE` (2 MiB on x86-64, wrong for
//!   1 GiB pages): [`hugetlb_wp_matching_each_size`];
//! - `pagemap_scan_pte_hole()` reports an unpopulated range of a uffd-wp VMA written,
//!   *except* in hugetlb VMAs, where an unpopulated page reads as not written as
//!   `pagemap_hugetlb_category()` has it: [`uffd_wp_hole_not_written_hugetlb`] (the
//!   other VMA kinds are in the `unpopulated` module).
//!
//! The page walk reaches `pagemap_scan_pte_hole()` for a hugetlb page only when no
//! page table covers it (`hugetlb_walk()` returns NULL); otherwise it calls
//! `pagemap_scan_hugetlb_entry()` with a none entry. The hole tests therefore map at
//! a 512 GiB-aligned address this process has never used ([`map_fresh`]), where no
//! page table exists until a fault or the scan allocates one.
//!
//! Checked against a mutant of 7.2.13's `fs/proc/task_mmu.c` (`HPAGE_SIZE` restored in
//! `pagemap_scan_hugetlb_entry()`, and `pagemap_scan_pte_hole()` adding WRITTEN for
//! hugetlb VMAs only), booted with `--series` and one 1 GiB page: the three tests of
//! this module and the four hole tests of `unpopulated` (including
//! `collapsed_thp_dontneed_hole_written`) fail with the results their documentation
//! predicts; the other 29 pass. The deadlock of the `uffd_wp_range()` revert was not
//! run (the stuck task would hold the suite until its timeout).

use crate::common::*;

/// The default hugetlb page size, or a SKIP naming what is missing.
fn default_hugetlb_size() -> Result<usize, Stop> {
    match probe::default_huge_page_size() {
        Some(s) => Ok(s as usize),
        None => {
            skip("hugetlb not supported (no Hugepagesize in /proc/meminfo: CONFIG_HUGETLBFS off)")
        }
    }
}

/// `MAP_HUGETLB` with the page size encoded (`MAP_HUGE_2MB`, `MAP_HUGE_1GB`, ...).
fn hugetlb_flags(size: usize) -> i32 {
    libc::MAP_HUGETLB | ((size.trailing_zeros() as i32) << libc::MAP_HUGE_SHIFT)
}

/// A mapping made by `opts` at an address this process never used, 512 GiB aligned
/// (one top-level page-table entry each), so no page table covers it yet: the first
/// candidate not taken (EEXIST) is used.
pub(crate) fn map_fresh<'fd>(opts: impl Fn() -> MapOptions<'fd>) -> mm::Result<Mapping> {
    let mut last = None;
    for k in 0..32usize {
        let at = 0x2000_0000_0000usize + (k << 39);
        match opts().fixed_noreplace(at).map() {
            Err(e) if e.errno() == Some(libc::EEXIST) => last = Some(e),
            r => return r,
        }
    }
    Err(last.expect("32 candidates tried"))
}

/// A counter of `/sys/kernel/mm/hugepages/hugepages-<size>kB/`, 0 when unreadable.
fn hugetlb_counter(size: usize, name: &str) -> u64 {
    std::fs::read_to_string(format!(
        "/sys/kernel/mm/hugepages/hugepages-{}kB/{name}",
        size >> 10
    ))
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

/// The hugetlb pool of one page size, read before mapping: `pool` is what the system
/// set aside (`nr_hugepages + nr_overcommit_hugepages`), `available` what a new
/// private mapping can still reserve (`free_hugepages - resv_hugepages`, plus the
/// surplus pages not yet allocated).
struct HugetlbPool {
    pool: u64,
    available: u64,
    text: String,
}

fn hugetlb_pool(size: usize) -> HugetlbPool {
    let c = |n| hugetlb_counter(size, n);
    let (nr, over, free, resv, surplus) = (
        c("nr_hugepages"),
        c("nr_overcommit_hugepages"),
        c("free_hugepages"),
        c("resv_hugepages"),
        c("surplus_hugepages"),
    );
    HugetlbPool {
        pool: nr + over,
        available: free.saturating_sub(resv) + over.saturating_sub(surplus),
        text: format!(
            "{} kB pages: nr_hugepages {nr}, nr_overcommit_hugepages {over}, free {free}, \
             resv {resv}, surplus {surplus}",
            size >> 10
        ),
    }
}

/// The probe before a hugetlb mmap of `n` pages of `size`: a pool smaller than `n`
/// is the environment (the harness's init reserves 128 pages of the default size,
/// and 1 GiB pages only where a target asks for them): a SKIP. A pool of `n` or more
/// with fewer than `n` available is a FAIL, not a SKIP: a page leaked by an earlier
/// test (or held by another process) must not read as a missing feature.
fn hugetlb_probe(size: usize, n: usize) -> Result<HugetlbPool, Stop> {
    let p = hugetlb_pool(size);
    if p.pool < n as u64 {
        return skip(format!(
            "needs {n} hugetlb page(s) of {} kB, the pool has {} ({})",
            size >> 10,
            p.pool,
            p.text
        ));
    }
    ensure!(
        p.available >= n as u64,
        "needs {n} hugetlb page(s) of {} kB: the pool has {} but only {} are available ({}): \
         pages leaked by an earlier test or held by another process",
        size >> 10,
        p.pool,
        p.available,
        p.text
    );
    Ok(p)
}

/// A hugetlb mmap of `n` pages of `size` failed after [`hugetlb_probe`] found them
/// available: a FAIL naming the pool, ENOMEM included.
fn hugetlb_map_error(e: mm::Error, size: usize, n: usize, before: &HugetlbPool) -> Stop {
    Stop::Fail(format!(
        "mmap of {n} hugetlb page(s) of {} kB failed although {} were available before \
         ({}; now {}): {e}",
        size >> 10,
        before.available,
        before.text,
        hugetlb_pool(size).text
    ))
}

/// `n` private hugetlb pages of `size` bytes at a fresh address (see [`map_fresh`]).
fn hugetlb_fresh(size: usize, n: usize) -> Result<Mapping, Stop> {
    let pool = hugetlb_probe(size, n)?;
    map_fresh(|| MapOptions::new(n * size).add_flags(hugetlb_flags(size)))
        .map_err(|e| hugetlb_map_error(e, size, n, &pool))
}

/// `n` private hugetlb pages of `size` bytes wherever the kernel puts them.
fn hugetlb_anywhere(size: usize, n: usize) -> Result<Mapping, Stop> {
    let pool = hugetlb_probe(size, n)?;
    MapOptions::new(n * size)
        .add_flags(hugetlb_flags(size))
        .map()
        .map_err(|e| hugetlb_map_error(e, size, n, &pool))
}

/// Fix: "write-protect unpopulated hugetlb ranges through
/// `pagemap_scan_hugetlb_hole_wp()`" (7.2's `fs/proc/task_mmu.c`).
///
/// One unpopulated hugetlb page (default size) with no page table, registered for
/// uffd WP-async; PM_SCAN_WP_MATCHING with `category_mask = PAGE_IS_WPALLOWED` (a
/// hugetlb hole is not WRITTEN, so a WRITTEN mask would not reach the write-protect
/// step). `pagemap_scan_pte_hole()` must report the page and install a uffd-wp
/// marker: pagemap bit 57 set on every base page. Then a write resolves the marker
/// (WP-async): the page is present and WRITTEN, bit 57 clear; a second WP scan
/// protects it again through `pagemap_scan_hugetlb_entry()`.
///
/// With the fix reverted (`uffd_wp_range()` from inside the walk), the scanning task
/// deadlocks on the hugetlb VMA lock it already holds for reading: the ioctl never
/// returns and the runner reports a timeout with the child stuck in the kernel. A
/// kernel that skipped the hole instead would leave bit 57 clear, also a failure.
pub(crate) fn hugetlb_hole_wp_matching() -> TestResult {
    let pm = pagemap()?;
    let hs = default_hugetlb_size()?;
    let u = mm::suite::probed(Userfaultfd::wp_async())?;
    let m = hugetlb_fresh(hs, 1)?;
    u.register_wp(m.addr(), m.len())?;
    let n = hs / ps();
    let e = entries(&pm, m.addr(), n)?;
    ensure!(
        e.iter()
            .all(|e| !e.present() && !e.swapped() && !e.uffd_wp()),
        "precondition: the registered hugetlb page is not unpopulated and clean: {:?}",
        e[0]
    );
    let a = ScanArgs::new(m.addr(), m.len())
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WPALLOWED)
        .return_mask(Categories::WPALLOWED | Categories::WRITTEN)
        .vec_len(4);
    let r = scan_whole(&pm, &a)?;
    let whole = |categories| {
        vec![PageRegion {
            start: m.addr() as u64,
            end: (m.addr() + m.len()) as u64,
            categories,
        }]
    };
    ensure!(
        r == whole(Categories::WPALLOWED),
        "PM_SCAN_WP_MATCHING (category_mask=WPALLOWED) over an unpopulated hugetlb page of {} \
         kB returned {}, expected the whole page as WPALLOWED (not WRITTEN)",
        hs >> 10,
        regions_str(m.addr(), &r)
    );
    let wp = uffd_wp_bits(&pm, m.addr(), n)?;
    ensure!(
        wp == vec![true; n],
        "after PM_SCAN_WP_MATCHING over the unpopulated hugetlb page pagemap bit 57 is set on \
         pages {} of 0-{}: no uffd-wp marker was installed in the hole",
        pages_str(&wp),
        n - 1
    );
    m.write(0, 1);
    let e = entries(&pm, m.addr(), n)?;
    ensure!(
        e.iter().all(|e| e.present() && !e.uffd_wp()),
        "after writing the write-protected hugetlb page (WP-async): {:?}",
        e[0]
    );
    check_written(
        &pm,
        m.addr(),
        &vec![true; n],
        "after writing the hugetlb page",
    )?;
    let r = wp_scan(&pm, m.addr(), m.len())?;
    ensure!(
        r == whole(Categories::WRITTEN),
        "the WP scan of the written hugetlb page returned {}",
        regions_str(m.addr(), &r)
    );
    check_written(&pm, m.addr(), &vec![false; n], "after the second WP scan")?;
    ensure!(m.read(0) == 1, "the hugetlb page lost its contents");
    Ok(())
}

/// Fix: "an unpopulated range in a uffd-wp VMA is reported written, except for
/// hugetlb" (`pagemap_scan_pte_hole()` in 7.2), the hugetlb half.
///
/// Two unpopulated hugetlb pages (default size) with no page table, registered for
/// uffd WP-async: neither is PAGE_IS_WRITTEN (both reach `pagemap_scan_pte_hole()`).
/// Then page 1 is written, which allocates the page table: page 1 is WRITTEN, and
/// page 0, now a none entry seen by `pagemap_scan_hugetlb_entry()`, is still not
/// written: both paths agree.
///
/// With the hugetlb exception reverted (`if (userfaultfd_wp(vma))` alone), the hole
/// path reports both unpopulated pages WRITTEN in the first step and the test fails
/// there.
pub(crate) fn uffd_wp_hole_not_written_hugetlb() -> TestResult {
    let pm = pagemap()?;
    let hs = default_hugetlb_size()?;
    let u = mm::suite::probed(Userfaultfd::wp_async())?;
    let m = hugetlb_fresh(hs, 2)?;
    u.register_wp(m.addr(), m.len())?;
    let n = m.len() / ps();
    let per = hs / ps();
    check_written(
        &pm,
        m.addr(),
        &vec![false; n],
        "two unpopulated hugetlb pages of a uffd-wp VMA, no page table (pagemap_scan_pte_hole())",
    )?;
    m.write(hs, 1);
    let expected: Vec<bool> = (0..n).map(|i| i >= per).collect();
    check_written(
        &pm,
        m.addr(),
        &expected,
        "after writing hugetlb page 1 (page 0: a none entry, pagemap_scan_hugetlb_entry())",
    )?;
    Ok(())
}

/// Fix: "detect a partial hugetlb page with `huge_page_size(hstate_vma(vma))`, not
/// `HPAGE_SIZE`" (`pagemap_scan_hugetlb_entry()` in 7.2).
///
/// For every hugetlb page size with a pool: one written, uffd WP-async
/// registered page. (a) PM_SCAN_WP_MATCHING with `max_pages` half a huge page stops
/// inside it: a partial hugetlb page cannot be write-protected, so the kernel backs
/// the range out: no region, walk_end = start, bit 57 clear. (b) The same scan
/// without `max_pages`: the whole page is one WRITTEN region, walk_end = end, and
/// every base page has bit 57 set afterwards.
///
/// With `HPAGE_SIZE` restored, a 1 GiB page fails (b): `end != start + HPAGE_SIZE`
/// holds for the whole page, so it is backed out (no region, walk_end = start, no
/// write-protection). For 2 MiB pages `HPAGE_SIZE` equals the page size: there the
/// test covers the partial-page logic ((a) and (b)) but cannot tell the two
/// expressions apart. The sizes covered are printed; without a pool of any size the
/// test skips; a size whose pool has no available page fails. The harness gives the v7.2 guest one 1 GiB page
/// (`hugepagesz=1G hugepages=1`).
pub(crate) fn hugetlb_wp_matching_each_size() -> TestResult {
    let pm = pagemap()?;
    let u = mm::suite::probed(Userfaultfd::wp_async())?;
    let sizes = probe::detect_hugetlb_page_sizes();
    let mut covered = Vec::new();
    let mut not_covered = Vec::new();
    for &size in &sizes {
        let size = size as usize;
        // A size without a pool is not covered (the environment); a size with one
        // must work (hugetlb_anywhere() fails if its page is not available).
        if hugetlb_pool(size).pool == 0 {
            not_covered.push(format!("{} kB (no page in the pool)", size >> 10));
            continue;
        }
        let m = hugetlb_anywhere(size, 1)?;
        u.register_wp(m.addr(), m.len())?;
        m.write(0, 1);
        let n = size / ps();
        let what = format!("hugetlb page of {} kB", size >> 10);
        let a = ScanArgs::new(m.addr(), m.len())
            .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
            .required(Categories::WRITTEN)
            .return_mask(Categories::WRITTEN)
            .vec_len(4);
        let r = pm.scan(&a.clone().max_pages(n as u64 / 2))?;
        ensure!(
            r.regions.is_empty() && r.walk_end == m.addr() as u64,
            "{what}: PM_SCAN_WP_MATCHING with max_pages {} (half the page) returned {} with \
             walk_end {:#x}; expected the partial page backed out: no region, walk_end = start \
             {:#x}",
            n / 2,
            regions_str(m.addr(), &r.regions),
            r.walk_end,
            m.addr()
        );
        let wp = uffd_wp_bits(&pm, m.addr(), n)?;
        ensure!(
            !wp.contains(&true),
            "{what}: the backed-out partial scan write-protected pages {}",
            pages_str(&wp)
        );
        let r = pm.scan(&a)?;
        ensure!(
            r.walk_end == (m.addr() + size) as u64
                && r.regions
                    == vec![PageRegion {
                        start: m.addr() as u64,
                        end: (m.addr() + size) as u64,
                        categories: Categories::WRITTEN,
                    }],
            "{what}: PM_SCAN_WP_MATCHING over the whole written page returned {} with walk_end \
             {:#x} (end {:#x}): the full page was taken for a partial one",
            regions_str(m.addr(), &r.regions),
            r.walk_end,
            m.addr() + size
        );
        let wp = uffd_wp_bits(&pm, m.addr(), n)?;
        ensure!(
            wp == vec![true; n],
            "{what}: after the WP scan pagemap bit 57 is set on pages {} of 0-{}",
            pages_str(&wp),
            n - 1
        );
        covered.push(format!("{} kB", size >> 10));
        u.unregister(m.addr(), m.len())?;
    }
    if covered.is_empty() {
        return skip(format!(
            "no hugetlb pool of any size (sizes: {})",
            if not_covered.is_empty() {
                "none".into()
            } else {
                not_covered.join(", ")
            }
        ));
    }
    note(format!(
        "hugetlb_wp_matching_each_size: covered {}; not covered: {}",
        covered.join(", "),
        if not_covered.is_empty() {
            "none".into()
        } else {
            not_covered.join(", ")
        }
    ));
    Ok(())
}
