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

/// PM_SCAN_CHECK_WPASYNC on a VMA without uffd WP-async fails with EPERM (alone and
/// with PM_SCAN_WP_MATCHING) and changes no PTE. Not a test of Peter Xu's vma-check
/// fix: `pagemap_scan_test_walk()` returned this EPERM before it too (6.7-rc1's
/// `else if (p->arg.flags & PM_SCAN_CHECK_WPASYNC) return -EPERM;`), and the fix only
/// added the skip under PM_SCAN_WP_MATCHING alone, which
/// [`wp_matching_skips_vma_without_uffd_wp`] detects. This test pins the EPERM
/// against a later change (it passes at every prefix of the 6.1 series from patch 3).
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

/// The `VM_PFNMAP` mappings of this process (`pf` in their smaps `VmFlags`), as
/// `(start, end, name)`. An x86-64 process always has one: the vDSO's `[vvar]` up to
/// 6.12 (`map_vdso()`), `[vvar_vclock]` in 7.2 (whose `[vvar]` is VM_MIXEDMAP).
fn pfnmap_vmas() -> Result<Vec<(usize, usize, String)>, Stop> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| Stop::Fail(format!("reading /proc/self/smaps: {e}")))?;
    let mut found = Vec::new();
    let mut current: Option<(usize, usize, String)> = None;
    for line in smaps.lines() {
        let head = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = head.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                let name = line.split_whitespace().nth(5).unwrap_or("").to_string();
                current = Some((a, b, name));
                continue;
            }
        }
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if flags.split_whitespace().any(|f| f == "pf") {
                if let Some(v) = current.take() {
                    found.push(v);
                }
            }
        }
    }
    if found.is_empty() {
        return Err(Stop::Fail(
            "no VM_PFNMAP mapping (VmFlags pf) in /proc/self/smaps: an x86-64 process always \
             has the vDSO's [vvar] or [vvar_vclock]"
                .into(),
        ));
    }
    Ok(found)
}

/// Faults in what it can of `[start, end)` without risking a signal: the kernel
/// reads each page for a write(2) to a pipe, so a page the fault handler refuses
/// (VM_FAULT_SIGBUS: a vclock page without kvm-clock) is EFAULT, not SIGBUS. Returns
/// how many pages came in.
fn fault_in_quietly(start: usize, end: usize) -> Result<usize, Stop> {
    let mut fds = [0i32; 2];
    // SAFETY: a two-int array for pipe(2).
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Stop::Fail(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut n = 0;
    let mut byte = 0u8;
    for addr in (start..end).step_by(ps()) {
        // SAFETY: write(2) only reads from addr; a bad address is EFAULT.
        if unsafe { libc::write(fds[1], addr as *const libc::c_void, 1) } == 1 {
            n += 1;
            // SAFETY: one byte into a local.
            unsafe { libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) };
        }
    }
    // SAFETY: our own descriptors.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    Ok(n)
}

/// `pagemap_scan_test_walk()` skips `VM_PFNMAP` VMAs (since 6.7: there is no struct
/// page behind their PTEs to categorise): a scan over one reports nothing, neither
/// with no category filter (where a walked VMA reports every page, holes included)
/// nor for PAGE_IS_PRESENT on the pages just faulted in. Found by the mutants run
/// (`VM_PFNMAP` -> `0` in `pagemap_scan_test_walk()` survived the suites).
/// `/proc/self/pagemap` cannot show those pages: its walk skips VM_PFNMAP VMAs too
/// (walk_page_test() without a test_walk op).
pub(crate) fn pfnmap_vma_not_reported() -> TestResult {
    let pm = pagemap()?;
    for (start, end, name) in pfnmap_vmas()? {
        let present = fault_in_quietly(start, end)?;
        for (what, a) in [
            (
                "no category filter",
                ScanArgs::new(start, end - start).return_mask(Categories::BASE),
            ),
            (
                "PAGE_IS_PRESENT",
                ScanArgs::new(start, end - start)
                    .required(Categories::PRESENT)
                    .return_mask(Categories::PRESENT),
            ),
        ] {
            let r = pm.scan(&a.vec_len(16))?;
            ensure!(
                r.regions.is_empty() && r.walk_end == end as u64,
                "PAGEMAP_SCAN ({what}) over the VM_PFNMAP mapping {name} {start:#x}-{end:#x} \
                 ({present} page(s) faulted in): {} (walk_end {:#x}); a VM_PFNMAP VMA is skipped",
                regions_str(start, &r.regions),
                r.walk_end
            );
        }
    }
    Ok(())
}
