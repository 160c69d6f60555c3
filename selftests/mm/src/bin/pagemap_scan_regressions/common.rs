//! Helpers shared by the suite's modules: the prelude every module imports (the
//! runner's outcome types, the library's types), bitmaps of pages, whole-range
//! scans, the written state through the fast and the generic path, uffd-wp bits,
//! raw scans, and a PMD-mapped THP.

pub(crate) use ktap::ensure;
pub(crate) use ktap::runner::{skip, Stop, TestResult};
pub(crate) use mm::mem::{self, page_size, MapOptions, Mapping};
pub(crate) use mm::pagemap::{clear_softdirty, Pagemap, PagemapEntry};
pub(crate) use mm::probe;
pub(crate) use mm::scan::{Categories, PageRegion, ScanArgs, ScanFlags};
pub(crate) use mm::uapi;
pub(crate) use mm::uffd::Userfaultfd;
use std::io::Write;
pub(crate) use std::os::fd::AsFd;

/// A `# ` line from inside a test (the child's stdout is the suite's stdout).
pub(crate) fn note(msg: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "# {msg}");
    let _ = out.flush();
}

pub(crate) fn ps() -> usize {
    page_size()
}

pub(crate) fn pagemap() -> Result<Pagemap, Stop> {
    Ok(Pagemap::open()?)
}

/// A userfaultfd with WP-async + WP-unpopulated, or a SKIP naming what is missing.
pub(crate) fn wp_uffd() -> Result<Userfaultfd, Stop> {
    mm::suite::probed(Userfaultfd::wp_async_anon())
}

/// "0-3,7,9-10" for the set indices.
pub(crate) fn pages_str(bits: &[bool]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < bits.len() {
        if bits[i] {
            let s = i;
            while i + 1 < bits.len() && bits[i + 1] {
                i += 1;
            }
            parts.push(if s == i {
                s.to_string()
            } else {
                format!("{s}-{i}")
            });
        }
        i += 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

pub(crate) fn regions_str(base: usize, regions: &[PageRegion]) -> String {
    let p = ps() as u64;
    let v: Vec<String> = regions
        .iter()
        .map(|r| {
            let s = r.start.wrapping_sub(base as u64) as i64 / p as i64;
            let e = r.end.wrapping_sub(base as u64) as i64 / p as i64;
            format!("[{s},{e}):{}", r.categories)
        })
        .collect();
    format!(
        "{} region(s) (pages from base {base:#x}) {}",
        v.len(),
        v.join(" ")
    )
}

/// The pages of `[base, base + n pages)` covered by regions whose categories
/// contain `want`; a region outside the range or with end <= start is an error.
pub(crate) fn bitmap(
    regions: &[PageRegion],
    base: usize,
    n: usize,
    want: Categories,
) -> Result<Vec<bool>, Stop> {
    let mut bits = vec![false; n];
    let end = (base + n * ps()) as u64;
    for r in regions {
        ensure!(
            r.start >= base as u64 && r.end <= end && r.start < r.end,
            "region [{:#x}, {:#x}) is empty or outside the scanned range [{base:#x}, {end:#x})",
            r.start,
            r.end
        );
        if !r.categories.contains(want) {
            continue;
        }
        let first = (r.start as usize - base) / ps();
        let last = (r.end as usize - base) / ps();
        for b in &mut bits[first..last] {
            *b = true;
        }
    }
    Ok(bits)
}

/// One PAGEMAP_SCAN over `args` that must walk the whole range.
pub(crate) fn scan_whole(pm: &Pagemap, args: &ScanArgs) -> Result<Vec<PageRegion>, Stop> {
    let r = pm.scan(args)?;
    ensure!(
        r.walk_end == args.end,
        "PAGEMAP_SCAN [{:#x}, {:#x}) with vec_len {} stopped early at walk_end {:#x}",
        args.start,
        args.end,
        args.vec_len,
        r.walk_end
    );
    Ok(r.regions)
}

/// Which pages are PAGE_IS_WRITTEN, asked through the fast path of
/// `pagemap_scan_pmd_entry()` (category_mask == return_mask == WRITTEN, nothing else)
/// or through the generic path (the same question as category_anyof_mask).
pub(crate) fn written(
    pm: &Pagemap,
    base: usize,
    n: usize,
    generic: bool,
) -> Result<Vec<bool>, Stop> {
    let mut a = ScanArgs::new(base, n * ps())
        .return_mask(Categories::WRITTEN)
        .vec_len(n);
    a = if generic {
        a.anyof(Categories::WRITTEN)
    } else {
        a.required(Categories::WRITTEN)
    };
    let regions = scan_whole(pm, &a)?;
    bitmap(&regions, base, n, Categories::WRITTEN)
}

/// Checks that the fast and the generic path both report exactly `expected` as
/// written.
pub(crate) fn check_written(
    pm: &Pagemap,
    base: usize,
    expected: &[bool],
    what: &str,
) -> TestResult {
    let n = expected.len();
    let fast = written(pm, base, n, false)?;
    let generic = written(pm, base, n, true)?;
    ensure!(
        fast == expected && generic == expected,
        "{what}: PAGE_IS_WRITTEN pages: expected {}, fast path (category_mask=return_mask=WRITTEN) \
         says {}, generic path (category_anyof_mask=WRITTEN) says {}",
        pages_str(expected),
        pages_str(&fast),
        pages_str(&generic)
    );
    Ok(())
}

pub(crate) fn entries(pm: &Pagemap, base: usize, n: usize) -> Result<Vec<PagemapEntry>, Stop> {
    Ok(pm.entries(base, n)?)
}

pub(crate) fn uffd_wp_bits(pm: &Pagemap, base: usize, n: usize) -> Result<Vec<bool>, Stop> {
    Ok(entries(pm, base, n)?.iter().map(|e| e.uffd_wp()).collect())
}

/// PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC over the range: write-protects every
/// written page; returns the regions it reported.
pub(crate) fn wp_scan(pm: &Pagemap, base: usize, len: usize) -> Result<Vec<PageRegion>, Stop> {
    let n = len / ps();
    let a = ScanArgs::new(base, len)
        .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
        .required(Categories::WRITTEN)
        .return_mask(Categories::WRITTEN)
        .vec_len(n);
    scan_whole(pm, &a)
}

pub(crate) fn errno_of(r: &mm::Result<usize>) -> Option<i32> {
    r.as_ref().err().and_then(|e| e.errno())
}

pub(crate) fn describe(r: &mm::Result<usize>) -> String {
    match r {
        Ok(n) => format!("succeeded with {n}"),
        Err(e) => e.to_string(),
    }
}

/// A raw PAGEMAP_SCAN argument over `[start, end)` with no vec.
pub(crate) fn raw_arg(start: u64, end: u64) -> uapi::pm_scan_arg {
    ScanArgs::range(start, end).to_raw(0, 0)
}

/// Runs a raw scan; `arg.vec` must be 0 or point to `arg.vec_len` regions, or be an
/// address the kernel must reject.
pub(crate) fn raw_scan(pm: &Pagemap, arg: &mut uapi::pm_scan_arg) -> mm::Result<usize> {
    // SAFETY: every caller passes vec = 0, a buffer of vec_len regions, or an
    // address the kernel rejects before writing (the tests check that it does).
    unsafe { pm.scan_raw(arg) }
}

/// A PMD-mapped anonymous THP at a PMD-aligned address, optionally followed (in a
/// separate, MADV_NOHUGEPAGE VMA) by `extra` base pages that are not touched.
pub(crate) struct Thp {
    pub(crate) map: Mapping,
    pub(crate) base: usize,
    pub(crate) hps: usize,
}

pub(crate) fn hpage_size() -> Result<usize, Stop> {
    match probe::read_pmd_pagesize() {
        Some(s) => Ok(s as usize),
        None => skip(format!(
            "transparent hugepages not supported (no {}: CONFIG_TRANSPARENT_HUGEPAGE off)",
            probe::PMD_SIZE_FILE_PATH
        )),
    }
}

pub(crate) fn thp_mode_name() -> String {
    std::fs::read_to_string(format!("{}enabled", probe::THP_SYSFS))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unreadable".into())
}

/// Is `[base, base+len)` one PAGE_IS_HUGE region?
pub(crate) fn is_huge(pm: &Pagemap, base: usize, len: usize) -> Result<bool, Stop> {
    let a = ScanArgs::new(base, len)
        .return_mask(Categories::HUGE)
        .vec_len(len / ps());
    let r = scan_whole(pm, &a)?;
    Ok(r.len() == 1
        && r[0].start == base as u64
        && r[0].end == (base + len) as u64
        && r[0].categories == Categories::HUGE)
}

pub(crate) fn thp(pm: &Pagemap, extra: usize) -> Result<Thp, Stop> {
    let hps = hpage_size()?;
    let map = Mapping::anon(2 * hps + extra * ps())?;
    let base = (map.addr() + hps - 1) & !(hps - 1);
    let off = base - map.addr();
    if let Err(e) = map.advise(off, hps, libc::MADV_HUGEPAGE) {
        if e.errno() == Some(libc::EINVAL) {
            return skip(format!("MADV_HUGEPAGE rejected, THP not configured: {e}"));
        }
        return Err(e.into());
    }
    let rest = map.len() - off - hps;
    if rest > 0 {
        map.advise(off + hps, rest, libc::MADV_NOHUGEPAGE)?;
    }
    map.touch_pages(off, hps, 1);
    if !is_huge(pm, base, hps)? {
        // The fault did not get a THP (THP "never", no free 2 MB block): ask
        // khugepaged's synchronous path, which ignores the sysfs mode.
        collapse(pm, &map, off, base, hps)?;
    }
    Ok(Thp { map, base, hps })
}

/// MADV_COLLAPSE of `[base, base + hps)` (offset `off` of `map`), which must then be
/// one PAGE_IS_HUGE region. The probe is MADV_COLLAPSE's own answer: EINVAL (a
/// kernel before 6.1, or a VMA THP may not back) is a SKIP; once the kernel accepted
/// the advice, failing to form the THP (any other errno after a few tries on the
/// transient EAGAIN, or success without a PMD mapping) is a FAIL: the guest has THP
/// and memory for it, so the SKIP would hide a broken collapse.
pub(crate) fn collapse(
    pm: &Pagemap,
    map: &Mapping,
    off: usize,
    base: usize,
    hps: usize,
) -> TestResult {
    let mut tries = 0;
    loop {
        tries += 1;
        match map.advise(off, hps, libc::MADV_COLLAPSE) {
            Ok(()) => break,
            Err(e) if e.errno() == Some(libc::EINVAL) => {
                return skip(format!(
                    "no THP: MADV_COLLAPSE not supported (added in 6.1) or the VMA not THP                      eligible (THP enabled: {}): {e}",
                    thp_mode_name()
                ))
            }
            Err(e) if e.errno() == Some(libc::EAGAIN) && tries < 5 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => {
                return Err(Stop::Fail(format!(
                    "MADV_COLLAPSE is supported (it did not answer EINVAL) but could not form                      a THP at {base:#x} after {tries} tr{} (THP enabled: {}): {e}",
                    if tries == 1 { "y" } else { "ies" },
                    thp_mode_name()
                )))
            }
        }
    }
    ensure!(
        is_huge(pm, base, hps)?,
        "MADV_COLLAPSE succeeded but [{base:#x}, +{hps:#x}) is not one PAGE_IS_HUGE region"
    );
    Ok(())
}

pub(crate) fn touch(m: &Mapping, pages: &[bool], value: u8) {
    for (i, &t) in pages.iter().enumerate() {
        if t {
            m.write(i * ps(), value);
        }
    }
}

pub(crate) trait WithVec {
    /// The same argument with `vec` and `vec_len` set.
    fn with_vec(self, vec: u64, vec_len: u64) -> Self;
}

impl WithVec for uapi::pm_scan_arg {
    fn with_vec(mut self, vec: u64, vec_len: u64) -> Self {
        self.vec = vec;
        self.vec_len = vec_len;
        self
    }
}
