//! The written state of unpopulated ranges in a uffd-wp VMA: pte_none without a
//! marker and PMD holes are reported PAGE_IS_WRITTEN, through the fast and the
//! generic path alike (Kiryl Shutsemau's 2026-07 fixes).

use crate::common::*;

/// Kiryl Shutsemau (2026-07): after WP and MADV_DONTNEED of some pages of a uffd-wp
/// anonymous VMA the PTEs are none (anonymous zap installs no marker). The fast path
/// reported them written, the generic path (`pagemap_page_category()`) did not.
pub(crate) fn dontneed_pte_none_written_fast_matches_generic() -> TestResult {
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
pub(crate) fn collapsed_thp_dontneed_hole_written() -> TestResult {
    let pm = pagemap()?;
    let hps = hpage_size()?;
    let map = Mapping::anon(2 * hps)?;
    let base = (map.addr() + hps - 1) & !(hps - 1);
    let off = base - map.addr();
    map.touch_pages(off, hps, 1);
    collapse(&pm, &map, off, base, hps)?;
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

/// The THP variant of upstream's `unpopulated_scan_test` (7.2's pagemap_ioctl.c has
/// the PTE one only; this project's port carried both, and this one moved here so
/// that the port's TAP diffs cleanly with the C program's). A write-protected range
/// (`wp_init()`: register + UFFDIO_WRITEPROTECT) is written, collapsed into a THP
/// with MADV_COLLAPSE and dropped with MADV_DONTNEED: the PMD is none (no marker), so
/// both the fast path (`category_mask = return_mask = PAGE_IS_WRITTEN`) and the
/// generic path (`category_anyof_mask`) must report all of it written. A kernel
/// without "an unpopulated range in a uffd-wp VMA is reported written" in
/// `pagemap_scan_pte_hole()` reports none of it through either path.
pub(crate) fn unpopulated_thp_scan_test() -> TestResult {
    let pm = pagemap()?;
    let hps = hpage_size()?;
    let u = wp_uffd()?;
    let area = Mapping::anon(2 * hps)?;
    let base = (area.addr() + hps - 1) & !(hps - 1);
    let off = base - area.addr();
    u.wp_init(base, hps)?;
    area.touch_pages(off, hps, 1);
    collapse(&pm, &area, off, base, hps)?;
    area.advise(off, hps, libc::MADV_DONTNEED)?;
    check_written(
        &pm,
        base,
        &vec![true; hps / ps()],
        "a collapsed THP of a write-protected range, dropped with MADV_DONTNEED",
    )
}

/// A fresh, 2 MiB-aligned range of `len` bytes mapped by `opts`, with no page table
/// (see `hugetlb::map_fresh`), so the scan reaches `pagemap_scan_pte_hole()`.
fn fresh<'fd>(opts: impl Fn() -> MapOptions<'fd>) -> Result<Mapping, Stop> {
    Ok(crate::hugetlb::map_fresh(opts)?)
}

/// Shared steps of the anonymous and shmem hole tests: `m` is registered for uffd
/// WP-async and never touched. All of it is WRITTEN (fast and generic path); a WP
/// scan reports all of it and arms it (markers); then only what is written after is
/// WRITTEN.
fn hole_written_steps(pm: &Pagemap, m: &Mapping, what: &str) -> TestResult {
    let n = m.pages();
    check_written(
        pm,
        m.addr(),
        &vec![true; n],
        &format!("{what}: never touched, no page table (pagemap_scan_pte_hole())"),
    )?;
    let r = wp_scan(pm, m.addr(), m.len())?;
    let got = bitmap(&r, m.addr(), n, Categories::WRITTEN)?;
    ensure!(
        got == vec![true; n],
        "{what}: the WP scan of the hole reported {}",
        regions_str(m.addr(), &r)
    );
    check_written(
        pm,
        m.addr(),
        &vec![false; n],
        &format!("{what}: after the WP scan"),
    )?;
    let expected: Vec<bool> = (0..n).map(|i| i == 3 || i == n / 2 || i == n - 1).collect();
    touch(m, &expected, 5);
    check_written(
        pm,
        m.addr(),
        &expected,
        &format!("{what}: after writing 3 pages"),
    )?;
    Ok(())
}

/// Fix: "an unpopulated range in a uffd-wp VMA is reported written, except for
/// hugetlb" (`pagemap_scan_pte_hole()` in 7.2), anonymous memory never populated:
/// 2 MiB (MADV_NOHUGEPAGE) registered for uffd WP-async at a fresh address, so no
/// page table covers it. Reverted (holes get only the VMA's categories), the first
/// step reports no page written through either path.
pub(crate) fn uffd_wp_hole_written_anon() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let len = 2 << 20;
    let m = fresh(|| MapOptions::new(len))?;
    m.advise(0, len, libc::MADV_NOHUGEPAGE)?;
    u.register_wp(m.addr(), m.len())?;
    hole_written_steps(&pm, &m, "anonymous, uffd-wp")
}

/// The same fix for shmem: a 2 MiB memfd mapped MAP_SHARED at a fresh address,
/// registered for uffd WP-async (UFFD_FEATURE_WP_HUGETLBFS_SHMEM), never touched.
/// Reverted, the first step reports no page written.
pub(crate) fn uffd_wp_hole_written_shmem() -> TestResult {
    let pm = pagemap()?;
    let u = mm::suite::probed(Userfaultfd::wp_async())?;
    let len = 2 << 20;
    let fd = mem::memfd_create("uffd_wp_hole_written_shmem", libc::MFD_CLOEXEC)?;
    mem::ftruncate(fd.as_fd(), len as u64)?;
    let m = fresh(|| MapOptions::new(len).file(fd.as_fd(), 0).shared())?;
    m.advise(0, len, libc::MADV_NOHUGEPAGE)?;
    u.register_wp(m.addr(), m.len())?;
    hole_written_steps(&pm, &m, "shmem MAP_SHARED, uffd-wp")
}
