//! `/proc/self/pagemap`: entries, the PAGEMAP_SCAN ioctl, `clear_refs`, and the
//! vm_util.c helpers `pagemap_get_entry`, `pagemap_is_softdirty`,
//! `pagemap_is_swapped`, `pagemap_is_populated`, `pagemap_get_pfn`,
//! `clear_softdirty` (tools/testing/selftests/mm/vm_util.c, linux-mm tree 2025).

use crate::error::{Error, Result};
use crate::mem::page_size;
use crate::scan::{Categories, PageRegion, ScanArgs, ScanResult};
use crate::uapi;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::OnceLock;

/// Path of our own pagemap file.
pub const PAGEMAP_PATH: &str = "/proc/self/pagemap";

/// One 64-bit pagemap entry.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    /// Bit 63.
    pub fn present(self) -> bool {
        self.0 & uapi::PM_PRESENT != 0
    }
    /// Bit 62.
    pub fn swapped(self) -> bool {
        self.0 & uapi::PM_SWAP != 0
    }
    /// Bit 61.
    pub fn file(self) -> bool {
        self.0 & uapi::PM_FILE != 0
    }
    /// Bit 58 (6.15+).
    pub fn guard(self) -> bool {
        self.0 & uapi::PM_GUARD_REGION != 0
    }
    /// Bit 57.
    pub fn uffd_wp(self) -> bool {
        self.0 & uapi::PM_UFFD_WP != 0
    }
    /// Bit 56.
    pub fn exclusive(self) -> bool {
        self.0 & uapi::PM_MMAP_EXCLUSIVE != 0
    }
    /// Bit 55.
    pub fn soft_dirty(self) -> bool {
        self.0 & uapi::PM_SOFT_DIRTY != 0
    }
    /// Present or swapped (vm_util's "populated").
    pub fn populated(self) -> bool {
        self.present() || self.swapped()
    }
    /// The PFN of a present page (bits 0-54; 0 without CAP_SYS_ADMIN), else `None`.
    pub fn pfn(self) -> Option<u64> {
        self.present().then_some(self.0 & uapi::PM_PFRAME_MASK)
    }
}

impl fmt::Debug for PagemapEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        for (set, n) in [
            (self.present(), "PRESENT"),
            (self.swapped(), "SWAP"),
            (self.file(), "FILE"),
            (self.guard(), "GUARD"),
            (self.uffd_wp(), "UFFD_WP"),
            (self.exclusive(), "EXCLUSIVE"),
            (self.soft_dirty(), "SOFT_DIRTY"),
        ] {
            if set {
                v.push(n);
            }
        }
        write!(
            f,
            "PagemapEntry({:#018x} [{}] pfn={:#x})",
            self.0,
            v.join("|"),
            self.0 & uapi::PM_PFRAME_MASK
        )
    }
}

/// An open `/proc/self/pagemap` (the C tests' `pagemap_fd`).
///
/// Also caches whether PAGEMAP_SCAN with the full vm_util category set works, for the
/// pagemap/ioctl cross-check of [`Pagemap::is_softdirty`] and friends. `Sync`: threads
/// may share one (pagemap_ioctl.c's transact_test scans from several threads).
#[derive(Debug)]
pub struct Pagemap {
    file: File,
    scan_supported: OnceLock<bool>,
}

/// The category set vm_util's `__pagemap_scan_get_categories` asks for.
/// (the 6.7 set plus SOFT_DIRTY).
pub const VM_UTIL_CATEGORIES: Categories =
    Categories(Categories::BASE.0 | uapi::PAGE_IS_SOFT_DIRTY);

impl Pagemap {
    /// Opens `/proc/self/pagemap` read-only.
    pub fn open() -> Result<Pagemap> {
        Self::open_path(PAGEMAP_PATH)
    }

    /// Opens another pagemap file (e.g. `/proc/<pid>/pagemap`).
    pub fn open_path(path: &str) -> Result<Pagemap> {
        let file = File::open(path)
            .map_err(|e| Error::from_io("open", format!("{path}, O_RDONLY"), &e))?;
        Ok(Pagemap {
            file,
            scan_supported: OnceLock::new(),
        })
    }

    /// The file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The entry of the page containing `addr` (vm_util's `pagemap_get_entry`).
    pub fn entry(&self, addr: usize) -> Result<PagemapEntry> {
        Ok(self.entries(addr, 1)?[0])
    }

    /// Entries of `count` consecutive pages starting at the page containing `addr`.
    pub fn entries(&self, addr: usize, count: usize) -> Result<Vec<PagemapEntry>> {
        let mut buf = vec![0u64; count];
        let off = (addr / page_size()) as u64 * 8;
        let want = count * 8;
        // SAFETY: buf has `want` bytes.
        let n = unsafe {
            libc::pread(
                self.file.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                want,
                off as i64,
            )
        };
        let args = || format!("{PAGEMAP_PATH}, addr={addr:#x}, pages={count}, offset={off:#x}");
        if n < 0 {
            return Err(Error::last("pread", args()));
        }
        if n as usize != want {
            return Err(Error::ShortIo {
                call: "pread",
                args: args(),
                expected: want,
                got: n as usize,
            });
        }
        Ok(buf.into_iter().map(PagemapEntry).collect())
    }

    /// PAGEMAP_SCAN with a raw argument: returns the ioctl's value (regions written).
    ///
    /// `arg.walk_end` is updated by the kernel. Errors are [`Error::Sys`] named
    /// `ioctl(PAGEMAP_SCAN)` with every argument (so tests can check the errno).
    ///
    /// # Safety
    /// `arg.vec` must be 0 or point to `arg.vec_len` writable `page_region`s (or be an
    /// address the test *expects* the kernel to reject, like `~0`).
    pub unsafe fn scan_raw(&self, arg: &mut uapi::pm_scan_arg) -> Result<usize> {
        // SAFETY: arg is a valid pm_scan_arg; vec is the caller's responsibility.
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                uapi::PAGEMAP_SCAN as _,
                arg as *mut uapi::pm_scan_arg,
            )
        };
        if r < 0 {
            return Err(Error::last("ioctl(PAGEMAP_SCAN)", describe_arg(arg)));
        }
        Ok(r as usize)
    }

    /// PAGEMAP_SCAN over `args`, with a result vector of `args.vec_len` entries.
    ///
    /// `ENOTTY` (a kernel without PAGEMAP_SCAN, before 6.7) becomes
    /// [`Error::Unsupported`]; every other failure is [`Error::Sys`].
    pub fn scan(&self, args: &ScanArgs) -> Result<ScanResult> {
        let mut vec = vec![uapi::page_region::default(); args.vec_len];
        let ptr = if vec.is_empty() {
            0
        } else {
            vec.as_mut_ptr() as u64
        };
        let mut raw = args.to_raw(ptr, vec.len() as u64);
        // SAFETY: vec has vec_len writable entries (or is NULL with length 0).
        let n = match unsafe { self.scan_raw(&mut raw) } {
            Ok(n) => n,
            Err(e) if e.errno() == Some(libc::ENOTTY) => {
                return Err(Error::Unsupported {
                    feature: "PAGEMAP_SCAN".into(),
                    reason: e.to_string(),
                })
            }
            Err(e) => return Err(e),
        };
        if n > vec.len() {
            return Err(Error::Parse {
                what: "PAGEMAP_SCAN return value".into(),
                detail: format!("{n} regions but vec_len is {}", vec.len()),
            });
        }
        vec.truncate(n);
        Ok(ScanResult {
            regions: vec.into_iter().map(PageRegion::from).collect(),
            walk_end: raw.walk_end,
        })
    }

    /// PAGEMAP_SCAN writing into a caller's vector: `vec = NULL, vec_len = 0` for an
    /// empty slice, else the slice (whatever `args.vec_len` says). Returns the ioctl's
    /// value (regions written) and `walk_end`. Errors as [`Pagemap::scan_raw`]; unlike
    /// [`Pagemap::scan`], ENOTTY stays [`Error::Sys`].
    pub fn scan_into(
        &self,
        args: &ScanArgs,
        vec: &mut [uapi::page_region],
    ) -> Result<(usize, u64)> {
        let ptr = if vec.is_empty() {
            0
        } else {
            vec.as_mut_ptr() as u64
        };
        let mut raw = args.to_raw(ptr, vec.len() as u64);
        // SAFETY: vec has vec.len() writable entries (or is NULL with length 0).
        let n = unsafe { self.scan_raw(&mut raw)? };
        Ok((n, raw.walk_end))
    }

    /// Repeats [`Pagemap::scan`] from `walk_end` until the walk reaches `args.end`,
    /// concatenating the regions (adjacent regions with equal categories are merged).
    ///
    /// Each call's answer is checked by [`check_scan_step`] before it is used, so a
    /// kernel whose `walk_end` is inconsistent with its regions is an error here, not
    /// pages counted twice: do_pagemap_scan() from 6.7 to at least 7.2.13 keeps the
    /// `walk_end` of a bounce-buffer refill (more than 512 regions in one call) when
    /// the walk then completes ("reset walk_end before each walk", patch 18 of the 6.1
    /// series), and resuming there would return the regions past it again.
    pub fn scan_all(&self, args: &ScanArgs) -> Result<Vec<PageRegion>> {
        let mut out: Vec<PageRegion> = Vec::new();
        let mut a = args.clone();
        if a.vec_len == 0 {
            a.vec_len = 64;
        }
        loop {
            let r = self.scan(&a)?;
            check_scan_step(a.start, a.end, &r, out.last().map_or(a.start, |l| l.end))?;
            for reg in r.regions {
                match out.last_mut() {
                    Some(last) if last.end == reg.start && last.categories == reg.categories => {
                        last.end = reg.end
                    }
                    _ => out.push(reg),
                }
            }
            if r.walk_end >= a.end {
                return Ok(out);
            }
            a.start = r.walk_end;
        }
    }

    /// vm_util's `pagemap_scan_supported()`: PAGEMAP_SCAN with the full vm_util
    /// category set (which includes `PAGE_IS_SOFT_DIRTY`, 6.8+) and an invalid `vec`
    /// fails with EFAULT on a kernel that supports it (ENOTTY without the ioctl,
    /// EINVAL when a category is unknown). `addr` is any mapped address. Cached.
    pub fn scan_supported(&self, addr: usize) -> Result<bool> {
        if let Some(&s) = self.scan_supported.get() {
            return Ok(s);
        }
        let mut arg = Self::categories_arg(addr, u64::MAX);
        // SAFETY: vec = ~0 is rejected by access_ok() in the kernel; nothing is written.
        let s = match unsafe { self.scan_raw(&mut arg) } {
            Ok(_) => {
                return Err(Error::InvalidArgument {
                    func: "pagemap_scan_supported",
                    detail: "PAGEMAP_SCAN succeeded unexpectedly with vec=~0".into(),
                })
            }
            Err(e) => e.errno() == Some(libc::EFAULT),
        };
        let _ = self.scan_supported.set(s);
        Ok(s)
    }

    fn categories_arg(addr: usize, vec: u64) -> uapi::pm_scan_arg {
        let start = (addr & !(page_size() - 1)) as u64;
        uapi::pm_scan_arg {
            size: std::mem::size_of::<uapi::pm_scan_arg>() as u64,
            flags: 0,
            start,
            end: start + page_size() as u64,
            walk_end: 0,
            vec,
            vec_len: 1,
            max_pages: 0,
            category_inverted: 0,
            category_mask: 0,
            category_anyof_mask: VM_UTIL_CATEGORIES.0,
            return_mask: VM_UTIL_CATEGORIES.0,
        }
    }

    /// vm_util's `pagemap_scan_get_categories()`: the categories of the page at
    /// `addr` (empty when the page matches none).
    pub fn scan_categories(&self, addr: usize) -> Result<Categories> {
        let mut r = uapi::page_region::default();
        let mut arg = Self::categories_arg(addr, &mut r as *mut _ as u64);
        // SAFETY: vec points to one page_region.
        let n = unsafe { self.scan_raw(&mut arg)? };
        Ok(if n == 0 {
            Categories::NONE
        } else {
            Categories(r.categories)
        })
    }

    /// vm_util's `page_entry_is()`: the pagemap bits `pm_bits` of `addr`, cross-checked
    /// against the PAGEMAP_SCAN categories `scan_bits` when the kernel has PAGEMAP_SCAN
    /// with soft-dirty support; a disagreement is [`Error::Mismatch`].
    pub fn entry_is(
        &self,
        addr: usize,
        what: &'static str,
        pm_bits: u64,
        scan_bits: Categories,
    ) -> Result<bool> {
        let m = self.entry(addr)?.0 & pm_bits != 0;
        if self.scan_supported(addr)? {
            let s = self.scan_categories(addr)?.intersects(scan_bits);
            if m != s {
                return Err(Error::Mismatch {
                    what,
                    addr,
                    pagemap: m,
                    scan: s,
                });
            }
        }
        Ok(m)
    }

    /// vm_util's `pagemap_is_softdirty()` (bit 55, cross-checked with
    /// `PAGE_IS_SOFT_DIRTY`).
    pub fn is_softdirty(&self, addr: usize) -> Result<bool> {
        self.entry_is(
            addr,
            "soft-dirty",
            uapi::PM_SOFT_DIRTY,
            Categories::SOFT_DIRTY,
        )
    }

    /// vm_util's `pagemap_is_swapped()` (bit 62, cross-checked with `PAGE_IS_SWAPPED`).
    pub fn is_swapped(&self, addr: usize) -> Result<bool> {
        self.entry_is(addr, "swap", uapi::PM_SWAP, Categories::SWAPPED)
    }

    /// vm_util's `pagemap_is_populated()` (bits 62|63, cross-checked with
    /// `PAGE_IS_PRESENT|PAGE_IS_SWAPPED`).
    pub fn is_populated(&self, addr: usize) -> Result<bool> {
        self.entry_is(
            addr,
            "populated",
            uapi::PM_PRESENT | uapi::PM_SWAP,
            Categories::PRESENT | Categories::SWAPPED,
        )
    }

    /// vm_util's `pagemap_get_pfn()`: the PFN when present, else `None` (`-1ul` in C).
    pub fn pfn(&self, addr: usize) -> Result<Option<u64>> {
        Ok(self.entry(addr)?.pfn())
    }
}

/// Formats every field of a `pm_scan_arg` for error messages.
pub fn describe_arg(a: &uapi::pm_scan_arg) -> String {
    format!(
        "size={}, flags={:?}, start={:#x}, end={:#x}, vec={:#x}, vec_len={}, max_pages={}, \
         inverted={}, mask={}, anyof={}, return_mask={}",
        a.size,
        crate::scan::ScanFlags(a.flags),
        a.start,
        a.end,
        a.vec,
        a.vec_len,
        a.max_pages,
        Categories(a.category_inverted),
        Categories(a.category_mask),
        Categories(a.category_anyof_mask),
        Categories(a.return_mask)
    )
}

/// Writes `value` to `/proc/self/clear_refs` (1 all, 2 anon, 3 file, 4 soft-dirty,
/// 5 mm hiwater).
pub fn write_clear_refs(value: &str) -> Result<()> {
    use std::io::Write;
    const PATH: &str = "/proc/self/clear_refs";
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(PATH)
        .map_err(|e| Error::from_io("open", format!("{PATH}, O_WRONLY"), &e))?;
    let n = f
        .write(value.as_bytes())
        .map_err(|e| Error::from_io("write", format!("{PATH}, {value:?}"), &e))?;
    if n != value.len() {
        return Err(Error::ShortIo {
            call: "write",
            args: format!("{PATH}, {value:?}"),
            expected: value.len(),
            got: n,
        });
    }
    Ok(())
}

/// vm_util's `clear_softdirty()`: `echo 4 > /proc/self/clear_refs` (clears the
/// soft-dirty bits of every page and VM_SOFTDIRTY of every VMA of this process).
pub fn clear_softdirty() -> Result<()> {
    write_clear_refs("4")
}

/// Checks one PAGEMAP_SCAN answer over `[start, end)` before a caller resumes at its
/// `walk_end`: `walk_end` past `start` and not beyond `end`; the regions non-empty,
/// ascending, not before `prev_end` (where the previous call's regions ended: no page
/// reported twice) and not beyond `walk_end`. A region beyond `walk_end` is the stale
/// `walk_end` of a bounce-buffer refill (do_pagemap_scan() before "reset walk_end
/// before each walk"), named as such: resuming there would report those pages again.
pub fn check_scan_step(start: u64, end: u64, r: &ScanResult, prev_end: u64) -> Result<()> {
    let bad = |detail: String| {
        Err(Error::Parse {
            what: format!("PAGEMAP_SCAN answer over [{start:#x}, {end:#x})"),
            detail,
        })
    };
    if r.walk_end <= start || r.walk_end > end {
        return bad(format!(
            "walk_end {:#x} is not past start and within end (walk did not advance or overran)",
            r.walk_end
        ));
    }
    let mut prev = prev_end.max(start);
    for (i, reg) in r.regions.iter().enumerate() {
        if reg.start >= reg.end || reg.start < prev {
            return bad(format!(
                "region {i} [{:#x}, {:#x}) is empty, or starts before {prev:#x} (the end of \
                 the previous region or of the previous call's): a page reported twice",
                reg.start, reg.end
            ));
        }
        if reg.end > r.walk_end {
            return bad(format!(
                "region {i} [{:#x}, {:#x}) of {} ends beyond walk_end {:#x}: the stale walk_end \
                 of a bounce-buffer refill (do_pagemap_scan() without \"reset walk_end before \
                 each walk\"); resuming at walk_end would report its pages twice",
                reg.start,
                reg.end,
                r.regions.len(),
                r.walk_end
            ));
        }
        prev = reg.end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::Mapping;

    fn answer(walk_end: u64, regions: &[(u64, u64)]) -> ScanResult {
        ScanResult {
            regions: regions
                .iter()
                .map(|&(start, end)| PageRegion {
                    start,
                    end,
                    categories: Categories::PRESENT,
                })
                .collect(),
            walk_end,
        }
    }

    #[test]
    fn scan_steps_that_would_double_count_are_errors() {
        let (s, e) = (0x10000, 0x20000);
        // Consistent: regions below walk_end, walk_end within the range.
        check_scan_step(
            s,
            e,
            &answer(0x18000, &[(0x10000, 0x11000), (0x13000, 0x18000)]),
            s,
        )
        .unwrap();
        check_scan_step(s, e, &answer(e, &[]), s).unwrap();
        // The stale walk_end of a bounce-buffer refill: regions past it.
        let err = check_scan_step(
            s,
            e,
            &answer(0x14000, &[(0x10000, 0x11000), (0x19000, 0x1a000)]),
            s,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ends beyond walk_end 0x14000"), "{err}");
        assert!(
            err.contains("stale walk_end of a bounce-buffer refill"),
            "{err}"
        );
        // A region the previous call already reported (walk_end too small before).
        let err = check_scan_step(s, e, &answer(e, &[(0x12000, 0x13000)]), 0x12800)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reported twice"), "{err}");
        // Out of order, empty, no progress, overrun.
        for bad in [
            answer(e, &[(0x13000, 0x14000), (0x11000, 0x12000)]),
            answer(e, &[(0x13000, 0x13000)]),
            answer(s, &[]),
            answer(e + 0x1000, &[]),
        ] {
            assert!(check_scan_step(s, e, &bad, s).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entry_bits() {
        let e = PagemapEntry(uapi::PM_PRESENT | uapi::PM_SOFT_DIRTY | 0x1234);
        assert!(e.present() && e.soft_dirty() && !e.swapped() && !e.uffd_wp());
        assert_eq!(e.pfn(), Some(0x1234));
        assert_eq!(PagemapEntry(uapi::PM_SWAP | 5).pfn(), None);
        assert!(PagemapEntry(uapi::PM_SWAP).populated());
        assert!(format!("{e:?}").contains("PRESENT|SOFT_DIRTY"));
    }

    #[test]
    fn present_after_write_and_not_before() {
        let pm = Pagemap::open().unwrap();
        let m = Mapping::anon(2 * page_size()).unwrap();
        let before = pm.entries(m.addr(), 2).unwrap();
        assert!(!before[0].present() && !before[1].present(), "{before:?}");
        m.write(0, 1);
        let e = pm.entry(m.addr()).unwrap();
        assert!(e.present(), "{e:?}");
        assert!(
            e.exclusive(),
            "a private anon page we wrote is exclusive: {e:?}"
        );
        assert!(!pm.entry(m.addr() + page_size()).unwrap().present());
        assert!(pm.is_populated(m.addr()).unwrap());
        assert!(!pm.is_populated(m.addr() + page_size()).unwrap());
        assert!(!pm.is_swapped(m.addr()).unwrap());
    }

    /// A file without PAGEMAP_SCAN answers ENOTTY, as /proc/PID/pagemap does before
    /// 6.7: the probe says "unsupported", the safe scan says Unsupported, and the
    /// soft-dirty helpers fall back to the pagemap bits alone.
    #[test]
    fn enotty_means_no_pagemap_scan() {
        let pm = Pagemap::open_path("/proc/self/status").unwrap();
        let m = Mapping::anon(page_size()).unwrap();
        assert!(!pm.scan_supported(m.addr()).unwrap());
        let e = pm.scan(&ScanArgs::new(m.addr(), m.len())).unwrap_err();
        assert!(e.is_unsupported(), "{e}");
        assert!(e.to_string().contains("PAGEMAP_SCAN"), "{e}");
        // Raw calls keep the errno.
        let r = pm.scan_into(&ScanArgs::new(m.addr(), m.len()), &mut []);
        assert_eq!(r.unwrap_err().errno(), Some(libc::ENOTTY));
    }

    #[test]
    fn clear_refs_rejects_garbage() {
        let e = write_clear_refs("9").unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
        assert!(e.to_string().contains("/proc/self/clear_refs"));
    }
}
