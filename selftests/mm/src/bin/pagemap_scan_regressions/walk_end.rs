//! walk_end resumption: scans stopped early (full vec, `max_pages`, inside a THP,
//! with and without PM_SCAN_WP_MATCHING) and resumed from walk_end return exactly
//! what one full scan returns.

use crate::common::*;

/// Merges adjacent regions with equal categories (what one full scan returns).
pub(crate) fn push_merged(out: &mut Vec<PageRegion>, r: PageRegion) {
    match out.last_mut() {
        Some(last) if last.end == r.start && last.categories == r.categories => last.end = r.end,
        _ => out.push(r),
    }
}

/// Scans `args` again and again from `walk_end` until the range is done, checking
/// each call: walk_end page aligned, advancing, within the range; regions ascending,
/// non-overlapping and below walk_end; at most max_pages pages; an early stop only
/// with a full vec or max_pages reached. Returns the concatenation (merged).
pub(crate) fn resume_scan(
    pm: &Pagemap,
    args: &ScanArgs,
    what: &str,
) -> Result<Vec<PageRegion>, Stop> {
    let mut a = args.clone();
    let mut out: Vec<PageRegion> = Vec::new();
    let p = ps() as u64;
    for call in 1.. {
        ensure!(
            call < 100_000,
            "{what}: more than 100000 calls, no progress"
        );
        let r = pm.scan(&a)?;
        let ctx = || {
            format!(
                "{what}: call {call} [{:#x}, {:#x}) vec_len {} max_pages {}",
                a.start, a.end, a.vec_len, a.max_pages
            )
        };
        ensure!(
            r.walk_end % p == 0 && r.walk_end > a.start && r.walk_end <= a.end,
            "{}: walk_end {:#x} not page aligned, not past start or beyond end",
            ctx(),
            r.walk_end
        );
        let mut prev = a.start;
        for reg in &r.regions {
            ensure!(
                reg.start >= prev && reg.start < reg.end && reg.end <= r.walk_end,
                "{}: region [{:#x}, {:#x}) overlaps the previous one (ends {prev:#x}), is \
                 empty or lies beyond walk_end {:#x}",
                ctx(),
                reg.start,
                reg.end,
                r.walk_end
            );
            prev = reg.end;
        }
        let pages = r.total_pages();
        ensure!(
            a.max_pages == 0 || pages <= a.max_pages,
            "{}: returned {pages} pages, more than max_pages",
            ctx()
        );
        if r.walk_end < a.end {
            let vec_full = r.regions.len() == a.vec_len;
            let max_hit = a.max_pages != 0 && pages == a.max_pages;
            ensure!(
                vec_full || max_hit,
                "{}: stopped at walk_end {:#x} with {} regions and {pages} pages: neither \
                 the vec is full nor max_pages reached",
                ctx(),
                r.walk_end,
                r.regions.len()
            );
        }
        for reg in r.regions {
            if let Some(last) = out.last() {
                ensure!(
                    reg.start >= last.end,
                    "{}: region [{:#x}, {:#x}) overlaps what earlier calls returned (up to \
                     {:#x}): walk_end too small",
                    ctx(),
                    reg.start,
                    reg.end,
                    last.end
                );
            }
            push_merged(&mut out, reg);
        }
        if r.walk_end >= a.end {
            break;
        }
        a.start = r.walk_end;
    }
    Ok(out)
}

pub(crate) fn compare_regions(
    what: &str,
    base: usize,
    got: &[PageRegion],
    want: &[PageRegion],
) -> TestResult {
    ensure!(
        got == want,
        "{what}: resumed scans returned {}, one full scan returned {}",
        regions_str(base, got),
        regions_str(base, want)
    );
    Ok(())
}

/// 64 pages, present in runs of 1, 2, 3, 4 pages separated by holes of 1, 2, 3 pages.
pub(crate) fn pattern(n: usize) -> Vec<bool> {
    let mut v = Vec::with_capacity(n);
    let (mut run, mut gap) = (1, 1);
    while v.len() < n {
        v.extend(std::iter::repeat_n(true, run));
        v.extend(std::iter::repeat_n(false, gap));
        run = run % 4 + 1;
        gap = gap % 3 + 1;
    }
    v.truncate(n);
    v
}

pub(crate) fn pattern_mapping(n: usize) -> Result<(Mapping, Vec<bool>), Stop> {
    let m = Mapping::anon(n * ps())?;
    let p = pattern(n);
    touch(&m, &p, 1);
    Ok((m, p))
}

/// Early stops because the vec is full: every vec_len from 1 to one more than the
/// number of regions, filtered (category_mask) and unfiltered.
pub(crate) fn walk_end_resume_vec_full() -> TestResult {
    let pm = pagemap()?;
    let n = 64;
    let (m, _) = pattern_mapping(n)?;
    let variants = [
        (
            "category_mask=PRESENT",
            ScanArgs::new(m.addr(), m.len())
                .required(Categories::PRESENT)
                .return_mask(Categories::PRESENT),
        ),
        (
            "no mask",
            ScanArgs::new(m.addr(), m.len()).return_mask(Categories::PRESENT),
        ),
    ];
    for (what, a) in variants {
        let full = scan_whole(&pm, &a.clone().vec_len(n))?;
        ensure!(full.len() > 4, "{what}: only {} regions", full.len());
        for vl in 1..=full.len() + 1 {
            let got = resume_scan(
                &pm,
                &a.clone().vec_len(vl),
                &format!("{what}, vec_len {vl}"),
            )?;
            compare_regions(&format!("{what}, vec_len {vl}"), m.addr(), &got, &full)?;
        }
    }
    Ok(())
}

/// Early stops at max_pages: every max_pages from 1 to one more than the matching
/// pages, with a large vec and with vec_len 2.
pub(crate) fn walk_end_resume_max_pages() -> TestResult {
    let pm = pagemap()?;
    let n = 64;
    let (m, p) = pattern_mapping(n)?;
    let a = ScanArgs::new(m.addr(), m.len())
        .required(Categories::PRESENT)
        .return_mask(Categories::PRESENT);
    let full = scan_whole(&pm, &a.clone().vec_len(n))?;
    let present = p.iter().filter(|&&x| x).count() as u64;
    for max in 1..=present + 1 {
        for vl in [n, 2] {
            let what = format!("max_pages {max}, vec_len {vl}");
            let got = resume_scan(&pm, &a.clone().vec_len(vl).max_pages(max), &what)?;
            compare_regions(&what, m.addr(), &got, &full)?;
        }
    }
    // The first call stops exactly after max_pages matching pages.
    for max in [1u64, 2, 5, 13] {
        let r = pm.scan(&a.clone().vec_len(n).max_pages(max))?;
        let mut count = 0;
        let mut stop = n;
        for (i, &x) in p.iter().enumerate() {
            if x {
                count += 1;
                if count == max {
                    stop = i + 1;
                    break;
                }
            }
        }
        // walk_end is the next matching page after the last one returned, or that page + 1.
        let last_end = r.regions.last().map(|r| r.end).unwrap_or(0);
        ensure!(
            r.total_pages() == max && last_end == (m.addr() + stop * ps()) as u64,
            "max_pages {max}: first call returned {} (expected to end at page {stop})",
            regions_str(m.addr(), &r.regions)
        );
    }
    Ok(())
}

/// max_pages stops inside a THP (and just around its end), then resumption from a
/// walk_end inside the PMD.
pub(crate) fn walk_end_resume_inside_thp() -> TestResult {
    let pm = pagemap()?;
    let extra = 64;
    let t = thp(&pm, extra)?;
    let n = t.hps / ps();
    let p = pattern(extra);
    for (i, &x) in p.iter().enumerate() {
        if x {
            // The extra pages follow the THP in t.map (offsets are from its start).
            let off = t.base + t.hps + i * ps() - t.map.addr();
            t.map.write(off, 1);
        }
    }
    let len = t.hps + extra * ps();
    let a = ScanArgs::new(t.base, len)
        .required(Categories::PRESENT)
        .return_mask(Categories::PRESENT | Categories::HUGE);
    let full = scan_whole(&pm, &a.clone().vec_len(n + extra))?;
    ensure!(
        full.first()
            == Some(&PageRegion {
                start: t.base as u64,
                end: (t.base + t.hps) as u64,
                categories: Categories::PRESENT | Categories::HUGE,
            }),
        "full scan does not start with the THP: {}",
        regions_str(t.base, &full)
    );
    for max in [1u64, 7, 256, 511, 512, 513, 520] {
        let r = pm.scan(&a.clone().vec_len(n + extra).max_pages(max))?;
        if max < n as u64 {
            ensure!(
                r.walk_end == (t.base + max as usize * ps()) as u64
                    && r.regions.len() == 1
                    && r.total_pages() == max,
                "max_pages {max} inside the THP: walk_end {:#x} (expected base + {max} pages \
                 = {:#x}), {}",
                r.walk_end,
                t.base + max as usize * ps(),
                regions_str(t.base, &r.regions)
            );
        }
        for vl in [n + extra, 1, 3] {
            let what = format!("max_pages {max}, vec_len {vl}");
            let got = resume_scan(&pm, &a.clone().vec_len(vl).max_pages(max), &what)?;
            compare_regions(&what, t.base, &got, &full)?;
        }
    }
    ensure!(
        is_huge(&pm, t.base, t.hps)?,
        "read-only scans split the THP"
    );
    Ok(())
}

/// Resumption under PM_SCAN_WP_MATCHING: every page is reported (and write-protected)
/// exactly once, and none is left written.
pub(crate) fn walk_end_resume_wp_matching() -> TestResult {
    let pm = pagemap()?;
    let u = wp_uffd()?;
    let n = 64;
    let m = Mapping::anon(n * ps())?;
    u.register_wp(m.addr(), m.len())?;
    m.touch_pages(0, m.len(), 1);
    let a = ScanArgs::new(m.addr(), m.len())
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN);
    let whole = vec![PageRegion {
        start: m.addr() as u64,
        end: (m.addr() + m.len()) as u64,
        categories: Categories::WRITTEN,
    }];
    let got = resume_scan(&pm, &a.clone().vec_len(n).max_pages(5), "max_pages 5")?;
    compare_regions("WP_MATCHING, max_pages 5", m.addr(), &got, &whole)?;
    check_written(&pm, m.addr(), &vec![false; n], "after the resumed WP scans")?;
    let wp = uffd_wp_bits(&pm, m.addr(), n)?;
    ensure!(
        wp == vec![true; n],
        "after the resumed WP scans pagemap bit 57 is set only on {}",
        pages_str(&wp)
    );
    // Now a pattern of written runs, collected with vec_len 1 and with max_pages 3.
    for (what, vl, max) in [("vec_len 1", 1, 0), ("max_pages 3", n, 3)] {
        let p = pattern(n);
        touch(&m, &p, 2);
        check_written(&pm, m.addr(), &p, "after writing the pattern")?;
        let want = scan_whole(
            &pm,
            &ScanArgs::new(m.addr(), m.len())
                .required(Categories::WRITTEN)
                .return_mask(Categories::WRITTEN)
                .vec_len(n),
        )?;
        let got = resume_scan(&pm, &a.clone().vec_len(vl).max_pages(max), what)?;
        compare_regions(&format!("WP_MATCHING, {what}"), m.addr(), &got, &want)?;
        check_written(
            &pm,
            m.addr(),
            &vec![false; n],
            &format!("after WP scans, {what}"),
        )?;
    }
    Ok(())
}

/// Resumption under PM_SCAN_WP_MATCHING with max_pages stops inside a THP (which the
/// kernel splits to write-protect part of it).
pub(crate) fn walk_end_resume_wp_matching_thp() -> TestResult {
    let pm = pagemap()?;
    let extra = 16;
    let t = thp(&pm, extra)?;
    let u = wp_uffd()?;
    let len = t.hps + extra * ps();
    let n = len / ps();
    u.register_wp(t.base, len)?;
    let off = t.base - t.map.addr();
    t.map.touch_pages(off + t.hps, extra * ps(), 1);
    let a = ScanArgs::new(t.base, len)
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN);
    let whole = vec![PageRegion {
        start: t.base as u64,
        end: (t.base + len) as u64,
        categories: Categories::WRITTEN,
    }];
    let got = resume_scan(&pm, &a.clone().vec_len(n).max_pages(100), "max_pages 100")?;
    compare_regions(
        "WP_MATCHING over a THP, max_pages 100",
        t.base,
        &got,
        &whole,
    )?;
    check_written(&pm, t.base, &vec![false; n], "after the resumed WP scans")?;
    let wp = uffd_wp_bits(&pm, t.base, n)?;
    ensure!(
        wp == vec![true; n],
        "after the resumed WP scans pagemap bit 57 is set only on {}",
        pages_str(&wp)
    );
    Ok(())
}

/// A walk that outgrows the kernel's bounce buffer and then completes must say so.
/// do_pagemap_scan() (fs/proc/task_mmu.c, 6.7 to 7.2.13 at least) copies regions out
/// through a buffer of PAGEMAP_WALK_SIZE >> PAGE_SHIFT (512 with 4 KiB pages) regions;
/// when it fills, pagemap_scan_output() stops the walk with -ENOSPC and sets walk_end,
/// the loop flushes and walks on, and when that walk finishes (ret 0) nothing resets
/// walk_end: `if (!p.arg.walk_end) p.arg.walk_end = p.arg.end;` keeps the refill's
/// address. The uapi (include/uapi/linux/fs.h) says walk_end is where the scan stopped
/// and `walk_end == end` means it completed; so a caller resuming at walk_end gets the
/// regions past it twice. Here: 1200 pages, every other one present, one call with a
/// vec for all 600 regions: the answer must be 600 regions and walk_end == end.
pub(crate) fn walk_end_after_bounce_buffer_refill() -> TestResult {
    let pm = pagemap()?;
    let n = 1200;
    let m = Mapping::anon(n * ps())?;
    // Every other page present: 600 one-page regions (no THP to merge them).
    if let Err(e) = m.advise(0, m.len(), libc::MADV_NOHUGEPAGE) {
        // Without THP there is nothing to turn off (tinyconfig may lack the advice).
        ensure!(
            mm::probe::read_pmd_pagesize().is_none(),
            "MADV_NOHUGEPAGE: {e}"
        );
    }
    let p: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    touch(&m, &p, 1);
    let a = ScanArgs::new(m.addr(), m.len())
        .required(Categories::PRESENT)
        .return_mask(Categories::PRESENT)
        .vec_len(n);
    let r = pm.scan(&a)?;
    let last = r.regions.last().map_or(0, |x| x.end);
    ensure!(
        r.regions.len() == n / 2,
        "{} regions for {} present pages, expected one each: {}",
        r.regions.len(),
        n / 2,
        regions_str(m.addr(), &r.regions)
    );
    ensure!(
        r.walk_end == a.end && last <= r.walk_end,
        "the walk returned all {} regions (the last ends at page {}) but walk_end is page \
         {} of {n}: the stale walk_end of a bounce-buffer refill (512 regions), so a \
         caller resuming there gets pages {}..{n} twice",
        r.regions.len(),
        (last - m.addr() as u64) / ps() as u64,
        (r.walk_end - m.addr() as u64) / ps() as u64,
        (r.walk_end - m.addr() as u64) / ps() as u64,
    );
    Ok(())
}
