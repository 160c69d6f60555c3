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
