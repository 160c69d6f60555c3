//! The uffd-wp bit as PAGEMAP_SCAN reads it: Ryan Roberts' 6.9-rc uffd-wp confusion
//! fix (swapped pages read the same through the fast and the generic path; present
//! pages are the baseline) and Peter Xu's close() fix (CVE-2024-36881: closing the
//! userfaultfd clears the bits).

use crate::common::*;

/// Present pages: after a WP scan and writes to some pages, the fast and the generic
/// path agree, and pagemap bit 57 is the inverse. The baseline of
/// [`wp_scan_swapped_fast_matches_generic`], not a test of Ryan Roberts' fixes: for a
/// present PTE `pte_uffd_wp()` was right before "fix uffd-wp confusion in
/// pagemap_scan_pmd_entry()", and "fix loss of young/dirty bits during pagemap scan"
/// closes a race with the hardware setting A/D bits that this cannot observe; it
/// passes without both (prefixes 3 to 11 of the 6.1 series).
pub(crate) fn wp_scan_present_fast_matches_generic() -> TestResult {
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
pub(crate) fn wp_scan_swapped_fast_matches_generic() -> TestResult {
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
        // The probe is /proc/swaps: no swap area is the environment (a SKIP); with one,
        // MADV_PAGEOUT of exclusive anonymous pages must swap some of them out.
        if areas == 0 {
            return skip(format!(
                "needs swap: no swap area in /proc/swaps, MADV_PAGEOUT left all {n} pages \
                 resident; the present-page case is wp_scan_present_fast_matches_generic"
            ));
        }
        return Err(Stop::Fail(format!(
            "MADV_PAGEOUT left all {n} pages resident although /proc/swaps lists {areas} swap \
             area(s)"
        )));
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
pub(crate) fn uffd_close_clears_wp_bits() -> TestResult {
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
