//! Jakub Acs' fix "fs/proc/task_mmu: check p->vec_buf for NULL" (6.17-rc,
//! 6.12.50): PM_SCAN_WP_MATCHING without a vec over part of a THP. The test can oops
//! a kernel without the fix, so the suite runs it last.

use crate::common::*;

/// Jakub Acs, "fs/proc/task_mmu: check p->vec_buf for NULL" (6.17-rc, 6.12.50):
/// PM_SCAN_WP_MATCHING with vec = NULL over part of a THP splits it and calls
/// `pagemap_scan_backout_range()`, which dereferenced the NULL bounce buffer: an
/// oops. Runs last; in a forked child like every test.
pub(crate) fn thp_subrange_wp_matching_without_vec() -> TestResult {
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
