//! David Hildenbrand's 6.16-rc fix: PAGE_IS_PFNZERO for the huge zero folio.

use crate::common::*;

/// David Hildenbrand, "fs/proc/task_mmu: fix PAGE_IS_PFNZERO detection for the huge
/// zero folio" (6.16-rc): `pagemap_thp_category()` tested `is_zero_pfn()`, which is
/// false for the huge zero page.
pub(crate) fn huge_zero_page_is_pfnzero() -> TestResult {
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
        // THP "never" is the environment (no huge zero page for any fault); under
        // "always" or "madvise" (the region is MADV_HUGEPAGE) with use_zero_page=1 the
        // read fault maps it, so a PTE-mapped result is a FAIL.
        ensure!(
            probe::thp_mode() == Some(probe::ThpMode::Never),
            "a read fault of a 2 MB aligned MADV_HUGEPAGE region was not PMD-mapped (THP \
             enabled: {}; use_zero_page=1): {}",
            thp_mode_name(),
            regions_str(base, &r)
        );
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
