//! Argument checks: Dan Carpenter's 6.13-rc `vec_len` overflow fix,
//! `category_inverted` at page and VMA level, unknown flags and category bits in
//! each mask, `size`, alignment, bad ranges and vecs.

use crate::common::*;

/// Dan Carpenter, "fs/proc/task_mmu: prevent integer overflow in
/// pagemap_scan_get_args()" (6.13-rc): `vec_len * sizeof(struct page_region)`
/// wrapped, so `access_ok()` checked a tiny size. vec_len = 2^61 makes it wrap to 0.
pub(crate) fn vec_len_overflow_rejected() -> TestResult {
    let pm = pagemap()?;
    let n = 4;
    let m = Mapping::anon(n * ps())?;
    m.touch_pages(0, m.len(), 1);
    const SENTINEL: uapi::page_region = uapi::page_region {
        start: 0xAAAA_AAAA_AAAA_AAAA,
        end: 0xAAAA_AAAA_AAAA_AAAA,
        categories: 0xAAAA_AAAA_AAAA_AAAA,
    };
    // 2^61 * 24 == 3 * 2^64 wraps to 0; 2^64/24 + 1 wraps to 8; 2^60 to 2^63; MAX.
    let lens: [u64; 4] = [1 << 61, u64::MAX / 24 + 1, 1 << 60, u64::MAX];
    for vec_len in lens {
        let mut buf = [SENTINEL; 4];
        let mut arg = ScanArgs::new(m.addr(), m.len())
            .return_mask(Categories::PRESENT)
            .to_raw(buf.as_mut_ptr() as u64, vec_len);
        let r = raw_scan(&pm, &mut arg);
        let e = errno_of(&r);
        ensure!(
            e == Some(libc::EFAULT) || e == Some(libc::EINVAL),
            "vec_len {vec_len:#x} (vec_len * 24 = {:#x} modulo 2^64): expected EFAULT or EINVAL, {}",
            vec_len.wrapping_mul(24),
            describe(&r)
        );
        ensure!(
            buf.iter().all(|r| *r == SENTINEL),
            "vec_len {vec_len:#x}: the call failed but wrote into vec: {:x?}",
            buf
        );
    }
    Ok(())
}

/// category_inverted selects the complement, at page level and at VMA level
/// (PAGE_IS_WPALLOWED), and does not change the categories returned.
pub(crate) fn category_inverted_selects_complement() -> TestResult {
    let pm = pagemap()?;
    let n = 16;
    let m = Mapping::anon(n * ps())?;
    let even: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    let odd: Vec<bool> = even.iter().map(|x| !x).collect();
    touch(&m, &even, 1);
    let base = ScanArgs::new(m.addr(), m.len()).vec_len(n);
    for (what, a) in [
        (
            "category_mask=PRESENT, inverted=PRESENT",
            base.clone()
                .required(Categories::PRESENT)
                .inverted(Categories::PRESENT)
                .return_mask(Categories::PRESENT),
        ),
        (
            "anyof=PRESENT, inverted=PRESENT",
            base.clone()
                .anyof(Categories::PRESENT)
                .inverted(Categories::PRESENT)
                .return_mask(Categories::PRESENT),
        ),
    ] {
        let r = scan_whole(&pm, &a)?;
        let got = bitmap(&r, m.addr(), n, Categories::NONE)?;
        ensure!(
            got == odd && r.iter().all(|r| r.categories.is_empty()),
            "{what}: expected the not-present pages {} with categories 0, got {}",
            pages_str(&odd),
            regions_str(m.addr(), &r)
        );
    }
    // Inverting a bit that is not required changes nothing.
    let a = base
        .clone()
        .required(Categories::PRESENT)
        .inverted(Categories::FILE)
        .return_mask(Categories::PRESENT | Categories::FILE);
    let r = scan_whole(&pm, &a)?;
    let got = bitmap(&r, m.addr(), n, Categories::PRESENT)?;
    ensure!(
        got == even && r.iter().all(|r| r.categories == Categories::PRESENT),
        "category_mask=PRESENT, inverted=FILE: expected the present pages {} as PRESENT, got {}",
        pages_str(&even),
        regions_str(m.addr(), &r)
    );
    // Required and inverted FILE on anonymous memory: every page.
    let a = base
        .clone()
        .required(Categories::FILE)
        .inverted(Categories::FILE)
        .return_mask(Categories::FILE | Categories::PRESENT);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        bitmap(&r, m.addr(), n, Categories::NONE)? == vec![true; n],
        "category_mask=FILE, inverted=FILE over anonymous memory: expected every page, got {}",
        regions_str(m.addr(), &r)
    );
    // VMA level: not WPALLOWED, asked as inverted WPALLOWED: the whole VMA.
    let a = base
        .clone()
        .required(Categories::WPALLOWED)
        .inverted(Categories::WPALLOWED)
        .return_mask(Categories::WPALLOWED);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        r.len() == 1 && r[0].pages() == n as u64 && r[0].categories.is_empty(),
        "category_mask=WPALLOWED, inverted=WPALLOWED over a VMA without uffd-WP: expected one \
         region of {n} pages with categories 0, got {}",
        regions_str(m.addr(), &r)
    );
    let a = base
        .clone()
        .required(Categories::WPALLOWED)
        .return_mask(Categories::WPALLOWED);
    let r = scan_whole(&pm, &a)?;
    ensure!(
        r.is_empty(),
        "category_mask=WPALLOWED over a VMA without uffd-WP: expected nothing, got {}",
        regions_str(m.addr(), &r)
    );
    Ok(())
}

pub(crate) fn unknown_flags_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(ps())?;
    let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
    let r = raw_scan(&pm, &mut arg);
    ensure!(
        r.is_ok(),
        "control scan with flags 0 failed: {}",
        describe(&r)
    );
    let known = uapi::PM_SCAN_WP_MATCHING | uapi::PM_SCAN_CHECK_WPASYNC;
    let mut accepted = Vec::new();
    for bit in 0..64 {
        let f = 1u64 << bit;
        if f & known != 0 {
            continue;
        }
        for flags in [f, f | uapi::PM_SCAN_WP_MATCHING] {
            let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
            arg.flags = flags;
            let r = raw_scan(&pm, &mut arg);
            if errno_of(&r) != Some(libc::EINVAL) {
                accepted.push(format!("flags {flags:#x}: {}", describe(&r)));
            }
        }
    }
    ensure!(
        accepted.is_empty(),
        "unknown flags not rejected with EINVAL: {}",
        accepted.join("; ")
    );
    Ok(())
}

pub(crate) const MASK_FIELDS: [&str; 4] = [
    "category_inverted",
    "category_mask",
    "category_anyof_mask",
    "return_mask",
];

pub(crate) fn set_mask(arg: &mut uapi::pm_scan_arg, field: usize, v: u64) {
    match field {
        0 => arg.category_inverted = v,
        1 => arg.category_mask = v,
        2 => arg.category_anyof_mask = v,
        _ => arg.return_mask = v,
    }
}

/// Which of bits 0-63 the kernel accepts in mask field `field`.
pub(crate) fn accepted_bits(pm: &Pagemap, addr: usize, field: usize) -> Result<u64, Stop> {
    let mut ok = 0u64;
    for bit in 0..64 {
        let mut arg = raw_arg(addr as u64, (addr + ps()) as u64);
        set_mask(&mut arg, field, 1 << bit);
        let r = raw_scan(pm, &mut arg);
        match errno_of(&r) {
            None => ok |= 1 << bit,
            Some(libc::EINVAL) => {}
            Some(_) => {
                return Err(Stop::Fail(format!(
                    "{} = bit {bit}: {}",
                    MASK_FIELDS[field],
                    describe(&r)
                )))
            }
        }
    }
    Ok(ok)
}

/// Unknown category bits in one mask field are EINVAL; the bits a kernel knows are
/// the 6.7 set plus SOFT_DIRTY (6.8) and GUARD (6.16) where present, and the same
/// in all four fields.
pub(crate) fn unknown_category_bits_rejected(field: usize) -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(ps())?;
    let all: Vec<u64> = (0..4)
        .map(|f| accepted_bits(&pm, m.addr(), f))
        .collect::<Result<_, _>>()?;
    let mine = all[field];
    let known = Categories::ALL_KNOWN.bits();
    ensure!(
        mine & !known == 0,
        "{} accepts bits {} that no kernel defines (known: {})",
        MASK_FIELDS[field],
        Categories(mine & !known),
        Categories::ALL_KNOWN
    );
    ensure!(
        mine & Categories::BASE.bits() == Categories::BASE.bits(),
        "{} rejects 6.7 categories {}",
        MASK_FIELDS[field],
        Categories(Categories::BASE.bits() & !mine)
    );
    for (f, &other) in all.iter().enumerate() {
        ensure!(
            other == mine,
            "{} accepts {} but {} accepts {}",
            MASK_FIELDS[field],
            Categories(mine),
            MASK_FIELDS[f],
            Categories(other)
        );
    }
    note(format!(
        "unknown_category_bits_rejected_{}: accepted {}",
        MASK_FIELDS[field],
        Categories(mine)
    ));
    Ok(())
}

pub(crate) fn unknown_category_bits_rejected_category_inverted() -> TestResult {
    unknown_category_bits_rejected(0)
}

pub(crate) fn unknown_category_bits_rejected_category_mask() -> TestResult {
    unknown_category_bits_rejected(1)
}

pub(crate) fn unknown_category_bits_rejected_category_anyof_mask() -> TestResult {
    unknown_category_bits_rejected(2)
}

pub(crate) fn unknown_category_bits_rejected_return_mask() -> TestResult {
    unknown_category_bits_rejected(3)
}

pub(crate) fn wrong_size_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(ps())?;
    for size in [0u64, 8, 88, 95, 97, 192, u64::MAX] {
        let mut arg = raw_arg(m.addr() as u64, (m.addr() + ps()) as u64);
        arg.size = size;
        let r = raw_scan(&pm, &mut arg);
        ensure!(
            errno_of(&r) == Some(libc::EINVAL),
            "size {size}: expected EINVAL, {}",
            describe(&r)
        );
    }
    Ok(())
}

pub(crate) fn unaligned_start_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(4 * ps())?;
    m.touch_pages(0, m.len(), 1);
    let end = (m.addr() + m.len()) as u64;
    for delta in [1u64, 8, ps() as u64 - 1] {
        let mut arg = raw_arg(m.addr() as u64 + delta, end);
        let r = raw_scan(&pm, &mut arg);
        ensure!(
            errno_of(&r) == Some(libc::EINVAL),
            "start = page + {delta}: expected EINVAL, {}",
            describe(&r)
        );
    }
    // An unaligned end is rounded up: walk_end is the next page boundary.
    let mut buf = [uapi::page_region::default(); 4];
    let mut arg = ScanArgs::range(m.addr() as u64, m.addr() as u64 + ps() as u64 + 1)
        .return_mask(Categories::PRESENT)
        .to_raw(buf.as_mut_ptr() as u64, 4);
    let r = raw_scan(&pm, &mut arg);
    let want_end = m.addr() as u64 + 2 * ps() as u64;
    ensure!(
        matches!(r, Ok(1)) && arg.walk_end == want_end && buf[0].end == want_end,
        "end = start + page + 1: expected 1 region up to and walk_end at {want_end:#x}, {} with \
         walk_end {:#x}, region [{:#x}, {:#x})",
        describe(&r),
        arg.walk_end,
        buf[0].start,
        buf[0].end
    );
    Ok(())
}

pub(crate) fn bad_range_or_vec_rejected() -> TestResult {
    let pm = pagemap()?;
    let m = Mapping::anon(4 * ps())?;
    m.touch_pages(0, m.len(), 1);
    let (s, e) = (m.addr() as u64, (m.addr() + m.len()) as u64);
    let mut buf = [uapi::page_region::default(); 4];
    let bufp = buf.as_mut_ptr() as u64;
    let cases: Vec<(&str, uapi::pm_scan_arg, &[i32])> = vec![
        (
            "vec NULL with vec_len 1",
            raw_arg(s, e).with_vec(0, 1),
            &[libc::EINVAL],
        ),
        (
            "vec in kernel space",
            raw_arg(s, e).with_vec(0xffff_8000_0000_0000, 4),
            &[libc::EFAULT],
        ),
        (
            "vec ending beyond user space",
            raw_arg(s, e).with_vec(0x7fff_ffff_f000, 1 << 20),
            &[libc::EFAULT],
        ),
        (
            "end before start",
            raw_arg(e, s).with_vec(bufp, 4),
            &[libc::EFAULT, libc::EINVAL],
        ),
        (
            "range in kernel space",
            raw_arg(0xffff_8000_0000_0000, 0xffff_8000_0001_0000).with_vec(bufp, 4),
            &[libc::EFAULT],
        ),
    ];
    for (what, mut arg, errnos) in cases {
        let r = raw_scan(&pm, &mut arg);
        ensure!(
            errno_of(&r).is_some_and(|e| errnos.contains(&e)),
            "{what}: expected {}, {}",
            errnos
                .iter()
                .map(|&e| mm::error::errno_name(e).unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(" or "),
            describe(&r)
        );
    }
    // An empty range is fine: no region, walk_end == end.
    let mut arg = raw_arg(s, s).with_vec(bufp, 4);
    let r = raw_scan(&pm, &mut arg);
    ensure!(
        matches!(r, Ok(0)) && arg.walk_end == s,
        "empty range: expected 0 regions and walk_end {s:#x}, {} with walk_end {:#x}",
        describe(&r),
        arg.walk_end
    );
    Ok(())
}
