//! Peter Xu's 6.7-rc fixes of `pagemap_scan_test_walk()` and of the no-vec fast
//! path: PM_SCAN_WP_MATCHING and PM_SCAN_CHECK_WPASYNC on a VMA that is not
//! registered for uffd WP-async, and a scan without vec or WP_MATCHING, change no PTE.

use crate::common::*;

/// Peter Xu, "mm/pagemap: fix ioctl(PAGEMAP_SCAN) on vma check" (6.7-rc): without
/// the fix `pagemap_scan_test_walk()` let PM_SCAN_WP_MATCHING walk a VMA that is not
/// registered for uffd WP-async and set uffd-wp bits in its PTEs.
pub(crate) fn wp_matching_skips_vma_without_uffd_wp() -> TestResult {
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
pub(crate) fn check_wpasync_eperm_on_vma_without_uffd_wp() -> TestResult {
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
pub(crate) fn scan_without_vec_or_wp_matching_changes_no_pte() -> TestResult {
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
