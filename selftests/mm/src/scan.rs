//! PAGEMAP_SCAN argument and result types: [`Categories`], [`ScanFlags`], the
//! [`ScanArgs`] builder, [`PageRegion`] and [`ScanResult`]. The ioctl itself is
//! [`crate::pagemap::Pagemap::scan`] (safe, owns the result vector) and
//! [`crate::pagemap::Pagemap::scan_raw`] (unsafe, any `pm_scan_arg`).

use crate::uapi;
use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

/// A set of `PAGE_IS_*` category bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Categories(pub u64);

impl Categories {
    /// No category.
    pub const NONE: Categories = Categories(0);
    /// `PAGE_IS_WPALLOWED`.
    pub const WPALLOWED: Categories = Categories(uapi::PAGE_IS_WPALLOWED);
    /// `PAGE_IS_WRITTEN`.
    pub const WRITTEN: Categories = Categories(uapi::PAGE_IS_WRITTEN);
    /// `PAGE_IS_FILE`.
    pub const FILE: Categories = Categories(uapi::PAGE_IS_FILE);
    /// `PAGE_IS_PRESENT`.
    pub const PRESENT: Categories = Categories(uapi::PAGE_IS_PRESENT);
    /// `PAGE_IS_SWAPPED`.
    pub const SWAPPED: Categories = Categories(uapi::PAGE_IS_SWAPPED);
    /// `PAGE_IS_PFNZERO`.
    pub const PFNZERO: Categories = Categories(uapi::PAGE_IS_PFNZERO);
    /// `PAGE_IS_HUGE`.
    pub const HUGE: Categories = Categories(uapi::PAGE_IS_HUGE);
    /// `PAGE_IS_SOFT_DIRTY` (6.8+).
    pub const SOFT_DIRTY: Categories = Categories(uapi::PAGE_IS_SOFT_DIRTY);
    /// `PAGE_IS_GUARD` (6.16+).
    pub const GUARD: Categories = Categories(uapi::PAGE_IS_GUARD);

    /// The 6.7 set (what pagemap_ioctl.c calls `PAGEMAP_BITS_ALL`).
    pub const BASE: Categories = Categories(
        uapi::PAGE_IS_WPALLOWED
            | uapi::PAGE_IS_WRITTEN
            | uapi::PAGE_IS_FILE
            | uapi::PAGE_IS_PRESENT
            | uapi::PAGE_IS_SWAPPED
            | uapi::PAGE_IS_PFNZERO
            | uapi::PAGE_IS_HUGE,
    );
    /// `PAGEMAP_NON_WRITTEN_BITS` of pagemap_ioctl.c.
    pub const NON_WRITTEN: Categories = Categories(Self::BASE.0 & !uapi::PAGE_IS_WRITTEN);
    /// Every category this crate knows (WPALLOWED..GUARD).
    pub const ALL_KNOWN: Categories =
        Categories(Self::BASE.0 | uapi::PAGE_IS_SOFT_DIRTY | uapi::PAGE_IS_GUARD);

    /// Names of the known bits, lowest first.
    pub const NAMES: &'static [(Categories, &'static str)] = &[
        (Self::WPALLOWED, "WPALLOWED"),
        (Self::WRITTEN, "WRITTEN"),
        (Self::FILE, "FILE"),
        (Self::PRESENT, "PRESENT"),
        (Self::SWAPPED, "SWAPPED"),
        (Self::PFNZERO, "PFNZERO"),
        (Self::HUGE, "HUGE"),
        (Self::SOFT_DIRTY, "SOFT_DIRTY"),
        (Self::GUARD, "GUARD"),
    ];

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// All bits of `other` are set.
    pub const fn contains(self, other: Categories) -> bool {
        self.0 & other.0 == other.0
    }
    /// Any bit of `other` is set.
    pub const fn intersects(self, other: Categories) -> bool {
        self.0 & other.0 != 0
    }
    /// No bit set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Bits not known to this crate.
    pub const fn unknown_bits(self) -> u64 {
        self.0 & !Self::ALL_KNOWN.0
    }
}

impl BitOr for Categories {
    type Output = Categories;
    fn bitor(self, rhs: Categories) -> Categories {
        Categories(self.0 | rhs.0)
    }
}
impl BitOrAssign for Categories {
    fn bitor_assign(&mut self, rhs: Categories) {
        self.0 |= rhs.0;
    }
}
impl BitAnd for Categories {
    type Output = Categories;
    fn bitand(self, rhs: Categories) -> Categories {
        Categories(self.0 & rhs.0)
    }
}
impl Not for Categories {
    type Output = Categories;
    fn not(self) -> Categories {
        Categories(!self.0)
    }
}

impl fmt::Display for Categories {
    /// `WRITTEN|PRESENT`, `0` when empty, unknown bits as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("0");
        }
        let mut first = true;
        for &(c, n) in Self::NAMES {
            if self.contains(c) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        let rest = self.unknown_bits();
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Categories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Categories({self})")
    }
}

/// `PM_SCAN_*` flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScanFlags(pub u64);

impl ScanFlags {
    /// No flag.
    pub const NONE: ScanFlags = ScanFlags(0);
    /// `PM_SCAN_WP_MATCHING`.
    pub const WP_MATCHING: ScanFlags = ScanFlags(uapi::PM_SCAN_WP_MATCHING);
    /// `PM_SCAN_CHECK_WPASYNC`.
    pub const CHECK_WPASYNC: ScanFlags = ScanFlags(uapi::PM_SCAN_CHECK_WPASYNC);
    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }
}

impl BitOr for ScanFlags {
    type Output = ScanFlags;
    fn bitor(self, rhs: ScanFlags) -> ScanFlags {
        ScanFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for ScanFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        if self.0 & uapi::PM_SCAN_WP_MATCHING != 0 {
            v.push("WP_MATCHING".to_string());
        }
        if self.0 & uapi::PM_SCAN_CHECK_WPASYNC != 0 {
            v.push("CHECK_WPASYNC".to_string());
        }
        let rest = self.0 & !(uapi::PM_SCAN_WP_MATCHING | uapi::PM_SCAN_CHECK_WPASYNC);
        if rest != 0 {
            v.push(format!("{rest:#x}"));
        }
        if v.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&v.join("|"))
        }
    }
}

/// Arguments of a safe PAGEMAP_SCAN call (the library owns the result vector).
///
/// ```no_run
/// # use mm::scan::{ScanArgs, Categories, ScanFlags};
/// let args = ScanArgs::new(0x7f00_0000_0000, 16 * 4096)
///     .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
///     .required(Categories::WRITTEN)
///     .return_mask(Categories::WRITTEN)
///     .vec_len(16);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArgs {
    /// `start`.
    pub start: u64,
    /// `end` (exclusive).
    pub end: u64,
    /// `flags`.
    pub flags: ScanFlags,
    /// `max_pages` (0 = no limit).
    pub max_pages: u64,
    /// `category_inverted`.
    pub inverted: Categories,
    /// `category_mask`: all required.
    pub required: Categories,
    /// `category_anyof_mask`.
    pub anyof: Categories,
    /// `return_mask`.
    pub return_mask: Categories,
    /// Number of `page_region`s to provide; 0 passes `vec = NULL, vec_len = 0`.
    pub vec_len: usize,
}

impl ScanArgs {
    /// Scan `[start, start+len)`. Defaults: no flags, `max_pages = 0`, all masks
    /// empty, `vec_len = 1`; callers set the masks and `vec_len` they need.
    pub fn new(start: usize, len: usize) -> Self {
        Self::range(start as u64, (start + len) as u64)
    }
    /// Scan `[start, end)`.
    pub fn range(start: u64, end: u64) -> Self {
        ScanArgs {
            start,
            end,
            flags: ScanFlags::NONE,
            max_pages: 0,
            inverted: Categories::NONE,
            required: Categories::NONE,
            anyof: Categories::NONE,
            return_mask: Categories::NONE,
            vec_len: 1,
        }
    }
    /// Sets `flags`.
    pub fn flags(mut self, f: ScanFlags) -> Self {
        self.flags = f;
        self
    }
    /// Sets `max_pages`.
    pub fn max_pages(mut self, n: u64) -> Self {
        self.max_pages = n;
        self
    }
    /// Sets `category_inverted`.
    pub fn inverted(mut self, c: Categories) -> Self {
        self.inverted = c;
        self
    }
    /// Sets `category_mask`.
    pub fn required(mut self, c: Categories) -> Self {
        self.required = c;
        self
    }
    /// Sets `category_anyof_mask`.
    pub fn anyof(mut self, c: Categories) -> Self {
        self.anyof = c;
        self
    }
    /// Sets `return_mask`.
    pub fn return_mask(mut self, c: Categories) -> Self {
        self.return_mask = c;
        self
    }
    /// Sets the number of result slots (0 = `vec = NULL`).
    pub fn vec_len(mut self, n: usize) -> Self {
        self.vec_len = n;
        self
    }
    /// The raw argument with `vec`/`vec_len` filled in by the caller.
    pub fn to_raw(&self, vec: u64, vec_len: u64) -> uapi::pm_scan_arg {
        uapi::pm_scan_arg {
            size: std::mem::size_of::<uapi::pm_scan_arg>() as u64,
            flags: self.flags.0,
            start: self.start,
            end: self.end,
            walk_end: 0,
            vec,
            vec_len,
            max_pages: self.max_pages,
            category_inverted: self.inverted.0,
            category_mask: self.required.0,
            category_anyof_mask: self.anyof.0,
            return_mask: self.return_mask.0,
        }
    }
}

/// One returned region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRegion {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Categories (masked by `return_mask`).
    pub categories: Categories,
}

impl PageRegion {
    /// Number of base pages in the region.
    pub fn pages(&self) -> u64 {
        (self.end - self.start) / crate::mem::page_size() as u64
    }
}

impl From<uapi::page_region> for PageRegion {
    fn from(r: uapi::page_region) -> Self {
        PageRegion {
            start: r.start,
            end: r.end,
            categories: Categories(r.categories),
        }
    }
}

/// Result of a PAGEMAP_SCAN call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// The regions the kernel wrote (the ioctl's return value is `regions.len()`).
    pub regions: Vec<PageRegion>,
    /// Where the walk ended (`== end` when the whole range was walked).
    pub walk_end: u64,
}

impl ScanResult {
    /// Total base pages over all regions.
    pub fn total_pages(&self) -> u64 {
        self.regions.iter().map(PageRegion::pages).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_display() {
        assert_eq!(
            (Categories::WRITTEN | Categories::PRESENT).to_string(),
            "WRITTEN|PRESENT"
        );
        assert_eq!(Categories::NONE.to_string(), "0");
        assert_eq!(Categories(1 << 20 | 1).to_string(), "WPALLOWED|0x100000");
        assert_eq!(Categories::ALL_KNOWN.0, 0x1ff);
        assert_eq!(Categories::BASE.0, 0x7f);
        assert!(!Categories::NON_WRITTEN.intersects(Categories::WRITTEN));
        assert_eq!(
            format!("{:?}", ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC),
            "WP_MATCHING|CHECK_WPASYNC"
        );
    }

    #[test]
    fn to_raw_fills_every_field() {
        let a = ScanArgs::new(0x1000, 0x3000)
            .flags(ScanFlags::WP_MATCHING)
            .max_pages(5)
            .inverted(Categories::FILE)
            .required(Categories::WRITTEN)
            .anyof(Categories::PRESENT)
            .return_mask(Categories::HUGE)
            .vec_len(3);
        let r = a.to_raw(0xdead, 3);
        assert_eq!(r.size, 96);
        assert_eq!((r.start, r.end), (0x1000, 0x4000));
        assert_eq!(r.flags, uapi::PM_SCAN_WP_MATCHING);
        assert_eq!(r.max_pages, 5);
        assert_eq!(r.category_inverted, uapi::PAGE_IS_FILE);
        assert_eq!(r.category_mask, uapi::PAGE_IS_WRITTEN);
        assert_eq!(r.category_anyof_mask, uapi::PAGE_IS_PRESENT);
        assert_eq!(r.return_mask, uapi::PAGE_IS_HUGE);
        assert_eq!((r.vec, r.vec_len, r.walk_end), (0xdead, 3, 0));
    }
}
