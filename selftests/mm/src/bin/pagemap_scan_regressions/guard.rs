//! Guard regions: PAGE_IS_GUARD (6.16+) against pagemap bit 58 after
//! MADV_GUARD_INSTALL (6.13+) and MADV_GUARD_REMOVE.

use crate::common::*;

pub(crate) fn guard_regions_reported() -> TestResult {
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
