//! PAGE_IS_SOFT_DIRTY (6.8+) against pagemap bit 55 on anonymous memory, a THP, a
//! memfd (shared and private) and across VMA merges by mremap and mprotect.

use crate::common::*;

pub(crate) fn require_soft_dirty(pm: &Pagemap) -> TestResult {
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
pub(crate) const FORCE_SOFT_DIRTY_ENV: &str = "PAGEMAP_SCAN_REGRESSIONS_FORCE_SOFT_DIRTY";

/// Bit 55 of every page against PAGE_IS_SOFT_DIRTY; returns the bitmap.
pub(crate) fn sd_agree(pm: &Pagemap, base: usize, n: usize, step: &str) -> Result<Vec<bool>, Stop> {
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

pub(crate) fn sd_expect(pm: &Pagemap, base: usize, expected: &[bool], step: &str) -> TestResult {
    let got = sd_agree(pm, base, expected.len(), step)?;
    ensure!(
        got == expected,
        "{step}: soft-dirty on {}, expected on {}",
        pages_str(&got),
        pages_str(expected)
    );
    Ok(())
}

pub(crate) fn clear_sd() -> TestResult {
    clear_softdirty().map_err(|e| Stop::Fail(format!("clear_refs 4: {e}")))
}

/// Steps shared by the anon and file cases: clear, write some, mprotect RO/RW.
pub(crate) fn sd_steps(pm: &Pagemap, m: &Mapping, what: &str) -> TestResult {
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

pub(crate) fn soft_dirty_agrees_anon() -> TestResult {
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

pub(crate) fn soft_dirty_agrees_thp() -> TestResult {
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

pub(crate) fn soft_dirty_agrees_file() -> TestResult {
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
pub(crate) fn soft_dirty_agrees_vma_merge() -> TestResult {
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
