//! Raw kernel ABI: `#[repr(C)]` structs, ioctl numbers and flag bits used by the
//! pagemap / PAGEMAP_SCAN / userfaultfd tests.
//!
//! Sources: `include/uapi/linux/fs.h` (PAGEMAP_SCAN, mainline; PAGE_IS_GUARD is 6.16+),
//! `include/uapi/linux/userfaultfd.h`, `fs/proc/task_mmu.c` (the pagemap entry bits are
//! kernel-internal defines, documented in Documentation/admin-guide/mm/pagemap.rst).
//! Sizes and offsets are checked at compile time; the values are checked in the unit
//! tests against linux-raw-sys and the uapi headers installed on the host (found by the
//! C compiler), each constant against at least one of them; the kernel-internal
//! pagemap bits against the running kernel.

#![allow(non_camel_case_types)]

use std::mem::{offset_of, size_of};

// ---------------------------------------------------------------------------
// ioctl number encoding (asm-generic/ioctl.h; x86-64 uses the generic layout)
// ---------------------------------------------------------------------------

/// `_IOC_NONE`.
pub const IOC_NONE: u32 = 0;
/// `_IOC_WRITE`.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << 14), "ioctl argument too large for _IOC");
    (dir << 30) | ((size as u32) << 16) | (ty << 8) | nr
}

/// `_IOWR(type, nr, T)`.
pub const fn iowr(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// `_IOR(type, nr, T)`.
pub const fn ior(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

// ---------------------------------------------------------------------------
// PAGEMAP_SCAN (include/uapi/linux/fs.h)
// ---------------------------------------------------------------------------

/// `PROCFS_IOCTL_MAGIC` (`'f'`).
pub const PROCFS_IOCTL_MAGIC: u32 = b'f' as u32;

/// `struct page_region`: one run of pages with the same categories.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct page_region {
    /// First byte of the region.
    pub start: u64,
    /// One past the last byte (exclusive).
    pub end: u64,
    /// `PAGE_IS_*` bits of the region, masked by `return_mask`.
    pub categories: u64,
}

/// `struct pm_scan_arg`: the argument of `PAGEMAP_SCAN`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct pm_scan_arg {
    /// `sizeof(struct pm_scan_arg)`.
    pub size: u64,
    /// `PM_SCAN_*` flags.
    pub flags: u64,
    /// Start of the range (page aligned).
    pub start: u64,
    /// End of the range (exclusive).
    pub end: u64,
    /// Written by the kernel: where the walk stopped (`== end` when it finished).
    pub walk_end: u64,
    /// User address of a `page_region` array (may be 0 with `vec_len == 0`).
    pub vec: u64,
    /// Number of elements in `vec`.
    pub vec_len: u64,
    /// Stop after this many pages matched (0 = no limit).
    pub max_pages: u64,
    /// Categories whose value is inverted before matching.
    pub category_inverted: u64,
    /// Categories that must all be set.
    pub category_mask: u64,
    /// Categories of which at least one must be set.
    pub category_anyof_mask: u64,
    /// Categories reported in `page_region::categories`.
    pub return_mask: u64,
}

const _: () = {
    assert!(size_of::<page_region>() == 24);
    assert!(offset_of!(page_region, start) == 0);
    assert!(offset_of!(page_region, end) == 8);
    assert!(offset_of!(page_region, categories) == 16);

    assert!(size_of::<pm_scan_arg>() == 96);
    assert!(offset_of!(pm_scan_arg, size) == 0);
    assert!(offset_of!(pm_scan_arg, flags) == 8);
    assert!(offset_of!(pm_scan_arg, start) == 16);
    assert!(offset_of!(pm_scan_arg, end) == 24);
    assert!(offset_of!(pm_scan_arg, walk_end) == 32);
    assert!(offset_of!(pm_scan_arg, vec) == 40);
    assert!(offset_of!(pm_scan_arg, vec_len) == 48);
    assert!(offset_of!(pm_scan_arg, max_pages) == 56);
    assert!(offset_of!(pm_scan_arg, category_inverted) == 64);
    assert!(offset_of!(pm_scan_arg, category_mask) == 72);
    assert!(offset_of!(pm_scan_arg, category_anyof_mask) == 80);
    assert!(offset_of!(pm_scan_arg, return_mask) == 88);
};

/// `PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg)`.
pub const PAGEMAP_SCAN: u32 = iowr(PROCFS_IOCTL_MAGIC, 16, size_of::<pm_scan_arg>());
const _: () = assert!(PAGEMAP_SCAN == 0xC060_6610);

/// Page can be write-protected (registered with uffd WP-async).
pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
/// Page was written since it was last write-protected.
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// Page is file-backed (or shared).
pub const PAGE_IS_FILE: u64 = 1 << 2;
/// Page is present in memory.
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
/// Page is swapped out.
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// Page maps the zero page (or huge zero page).
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;
/// Page is part of a PMD-mapped THP or a hugetlb page.
pub const PAGE_IS_HUGE: u64 = 1 << 6;
/// Page is soft-dirty (6.8+).
pub const PAGE_IS_SOFT_DIRTY: u64 = 1 << 7;
/// Page is in a guard region installed by `MADV_GUARD_INSTALL` (6.16+).
pub const PAGE_IS_GUARD: u64 = 1 << 8;

/// Write-protect the matched pages.
pub const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// Abort the scan (EPERM) on a VMA not registered for uffd WP-async.
pub const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

// ---------------------------------------------------------------------------
// /proc/PID/pagemap entries (fs/proc/task_mmu.c)
// ---------------------------------------------------------------------------

/// Number of PFN bits (`PM_PFRAME_BITS`).
pub const PM_PFRAME_BITS: u32 = 55;
/// PFN (present pages) or swap type/offset (swapped pages): bits 0-54.
pub const PM_PFRAME_MASK: u64 = (1 << PM_PFRAME_BITS) - 1;
/// Bit 55: the page is soft-dirty.
pub const PM_SOFT_DIRTY: u64 = 1 << 55;
/// Bit 56: the page is exclusively mapped.
pub const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
/// Bit 57: the page is uffd write-protected.
pub const PM_UFFD_WP: u64 = 1 << 57;
/// Bit 58: the page is in a guard region (6.15+).
pub const PM_GUARD_REGION: u64 = 1 << 58;
/// Bit 61: the page is file-backed or shared anon.
pub const PM_FILE: u64 = 1 << 61;
/// Bit 62: the page is swapped.
pub const PM_SWAP: u64 = 1 << 62;
/// Bit 63: the page is present.
pub const PM_PRESENT: u64 = 1 << 63;

// ---------------------------------------------------------------------------
// userfaultfd (include/uapi/linux/userfaultfd.h)
// ---------------------------------------------------------------------------

/// `UFFD_API`.
pub const UFFD_API: u64 = 0xAA;
/// ioctl type of userfaultfd (`UFFDIO`).
pub const UFFDIO: u32 = 0xAA;
/// `userfaultfd(2)` flag: only handle faults from user mode (works unprivileged).
pub const UFFD_USER_MODE_ONLY: i32 = 1;

/// `struct uffdio_api`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct uffdio_api {
    /// Must be `UFFD_API`.
    pub api: u64,
    /// In: requested features; out: available features.
    pub features: u64,
    /// Out: bitmask of supported ioctls (`1 << _UFFDIO_*`).
    pub ioctls: u64,
}

/// `struct uffdio_range`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct uffdio_range {
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// `struct uffdio_register`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct uffdio_register {
    /// The range to register.
    pub range: uffdio_range,
    /// `UFFDIO_REGISTER_MODE_*`.
    pub mode: u64,
    /// Out: ioctls allowed on the range (`1 << _UFFDIO_*`).
    pub ioctls: u64,
}

/// `struct uffdio_writeprotect`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct uffdio_writeprotect {
    /// The range to (un)protect.
    pub range: uffdio_range,
    /// `UFFDIO_WRITEPROTECT_MODE_*`; without `_WP` the range is un-protected.
    pub mode: u64,
}

const _: () = {
    assert!(size_of::<uffdio_api>() == 24);
    assert!(offset_of!(uffdio_api, features) == 8);
    assert!(offset_of!(uffdio_api, ioctls) == 16);
    assert!(size_of::<uffdio_range>() == 16);
    assert!(offset_of!(uffdio_range, len) == 8);
    assert!(size_of::<uffdio_register>() == 32);
    assert!(offset_of!(uffdio_register, mode) == 16);
    assert!(offset_of!(uffdio_register, ioctls) == 24);
    assert!(size_of::<uffdio_writeprotect>() == 24);
    assert!(offset_of!(uffdio_writeprotect, mode) == 16);
};

/// ioctl index of `UFFDIO_REGISTER` (bit number in `ioctls` masks).
pub const _UFFDIO_REGISTER: u32 = 0x00;
/// ioctl index of `UFFDIO_UNREGISTER`.
pub const _UFFDIO_UNREGISTER: u32 = 0x01;
/// ioctl index of `UFFDIO_WAKE`.
pub const _UFFDIO_WAKE: u32 = 0x02;
/// ioctl index of `UFFDIO_COPY`.
pub const _UFFDIO_COPY: u32 = 0x03;
/// ioctl index of `UFFDIO_ZEROPAGE`.
pub const _UFFDIO_ZEROPAGE: u32 = 0x04;
/// ioctl index of `UFFDIO_MOVE`.
pub const _UFFDIO_MOVE: u32 = 0x05;
/// ioctl index of `UFFDIO_WRITEPROTECT`.
pub const _UFFDIO_WRITEPROTECT: u32 = 0x06;
/// ioctl index of `UFFDIO_CONTINUE`.
pub const _UFFDIO_CONTINUE: u32 = 0x07;
/// ioctl index of `UFFDIO_POISON`.
pub const _UFFDIO_POISON: u32 = 0x08;
/// ioctl index of `UFFDIO_API`.
pub const _UFFDIO_API: u32 = 0x3F;

/// `UFFDIO_API = _IOWR(UFFDIO, _UFFDIO_API, struct uffdio_api)`.
pub const UFFDIO_API: u32 = iowr(UFFDIO, _UFFDIO_API, size_of::<uffdio_api>());
/// `UFFDIO_REGISTER = _IOWR(UFFDIO, _UFFDIO_REGISTER, struct uffdio_register)`.
pub const UFFDIO_REGISTER: u32 = iowr(UFFDIO, _UFFDIO_REGISTER, size_of::<uffdio_register>());
/// `UFFDIO_UNREGISTER = _IOR(UFFDIO, _UFFDIO_UNREGISTER, struct uffdio_range)`.
pub const UFFDIO_UNREGISTER: u32 = ior(UFFDIO, _UFFDIO_UNREGISTER, size_of::<uffdio_range>());
/// `UFFDIO_WAKE = _IOR(UFFDIO, _UFFDIO_WAKE, struct uffdio_range)`.
pub const UFFDIO_WAKE: u32 = ior(UFFDIO, _UFFDIO_WAKE, size_of::<uffdio_range>());
/// `UFFDIO_WRITEPROTECT = _IOWR(UFFDIO, _UFFDIO_WRITEPROTECT, struct uffdio_writeprotect)`.
pub const UFFDIO_WRITEPROTECT: u32 = iowr(
    UFFDIO,
    _UFFDIO_WRITEPROTECT,
    size_of::<uffdio_writeprotect>(),
);
const _: () = {
    assert!(UFFDIO_API == 0xC018_AA3F);
    assert!(UFFDIO_REGISTER == 0xC020_AA00);
    assert!(UFFDIO_UNREGISTER == 0x8010_AA01);
    assert!(UFFDIO_WRITEPROTECT == 0xC018_AA06);
};

/// Register mode: notify on missing pages.
pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
/// Register mode: write-protect tracking.
pub const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
/// Register mode: minor faults.
pub const UFFDIO_REGISTER_MODE_MINOR: u64 = 1 << 2;

/// `UFFDIO_WRITEPROTECT` mode: protect (without it: un-protect).
pub const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
/// `UFFDIO_WRITEPROTECT` mode: do not wake blocked faults.
pub const UFFDIO_WRITEPROTECT_MODE_DONTWAKE: u64 = 1 << 1;

/// `UFFD_FEATURE_PAGEFAULT_FLAG_WP`.
pub const UFFD_FEATURE_PAGEFAULT_FLAG_WP: u64 = 1 << 0;
/// `UFFD_FEATURE_EVENT_FORK`.
pub const UFFD_FEATURE_EVENT_FORK: u64 = 1 << 1;
/// `UFFD_FEATURE_EVENT_REMAP`.
pub const UFFD_FEATURE_EVENT_REMAP: u64 = 1 << 2;
/// `UFFD_FEATURE_EVENT_REMOVE`.
pub const UFFD_FEATURE_EVENT_REMOVE: u64 = 1 << 3;
/// `UFFD_FEATURE_MISSING_HUGETLBFS`.
pub const UFFD_FEATURE_MISSING_HUGETLBFS: u64 = 1 << 4;
/// `UFFD_FEATURE_MISSING_SHMEM`.
pub const UFFD_FEATURE_MISSING_SHMEM: u64 = 1 << 5;
/// `UFFD_FEATURE_EVENT_UNMAP`.
pub const UFFD_FEATURE_EVENT_UNMAP: u64 = 1 << 6;
/// `UFFD_FEATURE_SIGBUS`.
pub const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
/// `UFFD_FEATURE_THREAD_ID`.
pub const UFFD_FEATURE_THREAD_ID: u64 = 1 << 8;
/// `UFFD_FEATURE_MINOR_HUGETLBFS`.
pub const UFFD_FEATURE_MINOR_HUGETLBFS: u64 = 1 << 9;
/// `UFFD_FEATURE_MINOR_SHMEM`.
pub const UFFD_FEATURE_MINOR_SHMEM: u64 = 1 << 10;
/// `UFFD_FEATURE_EXACT_ADDRESS`.
pub const UFFD_FEATURE_EXACT_ADDRESS: u64 = 1 << 11;
/// `UFFD_FEATURE_WP_HUGETLBFS_SHMEM`.
pub const UFFD_FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
/// `UFFD_FEATURE_WP_UNPOPULATED`.
pub const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
/// `UFFD_FEATURE_POISON`.
pub const UFFD_FEATURE_POISON: u64 = 1 << 14;
/// `UFFD_FEATURE_WP_ASYNC`.
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `UFFD_FEATURE_MOVE`.
pub const UFFD_FEATURE_MOVE: u64 = 1 << 16;

/// Names of the `UFFD_FEATURE_*` bits, lowest bit first (for error messages).
pub const UFFD_FEATURE_NAMES: &[(u64, &str)] = &[
    (
        UFFD_FEATURE_PAGEFAULT_FLAG_WP,
        "UFFD_FEATURE_PAGEFAULT_FLAG_WP",
    ),
    (UFFD_FEATURE_EVENT_FORK, "UFFD_FEATURE_EVENT_FORK"),
    (UFFD_FEATURE_EVENT_REMAP, "UFFD_FEATURE_EVENT_REMAP"),
    (UFFD_FEATURE_EVENT_REMOVE, "UFFD_FEATURE_EVENT_REMOVE"),
    (
        UFFD_FEATURE_MISSING_HUGETLBFS,
        "UFFD_FEATURE_MISSING_HUGETLBFS",
    ),
    (UFFD_FEATURE_MISSING_SHMEM, "UFFD_FEATURE_MISSING_SHMEM"),
    (UFFD_FEATURE_EVENT_UNMAP, "UFFD_FEATURE_EVENT_UNMAP"),
    (UFFD_FEATURE_SIGBUS, "UFFD_FEATURE_SIGBUS"),
    (UFFD_FEATURE_THREAD_ID, "UFFD_FEATURE_THREAD_ID"),
    (UFFD_FEATURE_MINOR_HUGETLBFS, "UFFD_FEATURE_MINOR_HUGETLBFS"),
    (UFFD_FEATURE_MINOR_SHMEM, "UFFD_FEATURE_MINOR_SHMEM"),
    (UFFD_FEATURE_EXACT_ADDRESS, "UFFD_FEATURE_EXACT_ADDRESS"),
    (
        UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
        "UFFD_FEATURE_WP_HUGETLBFS_SHMEM",
    ),
    (UFFD_FEATURE_WP_UNPOPULATED, "UFFD_FEATURE_WP_UNPOPULATED"),
    (UFFD_FEATURE_POISON, "UFFD_FEATURE_POISON"),
    (UFFD_FEATURE_WP_ASYNC, "UFFD_FEATURE_WP_ASYNC"),
    (UFFD_FEATURE_MOVE, "UFFD_FEATURE_MOVE"),
];

/// `"UFFD_FEATURE_WP_ASYNC|UFFD_FEATURE_WP_UNPOPULATED"` for a feature mask; unknown
/// bits are shown as `0x...`.
pub fn uffd_feature_names(mask: u64) -> String {
    let mut parts = Vec::new();
    let mut rest = mask;
    for &(bit, name) in UFFD_FEATURE_NAMES {
        if mask & bit != 0 {
            parts.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

/// `MADV_GUARD_INSTALL` (6.13+; not in libc 0.2 yet).
pub const MADV_GUARD_INSTALL: i32 = 102;
/// `MADV_GUARD_REMOVE` (6.13+).
pub const MADV_GUARD_REMOVE: i32 = 103;
/// `MFD_NOEXEC_SEAL` (6.3+).
pub const MFD_NOEXEC_SEAL: u32 = 0x0008;
/// `MFD_EXEC` (6.3+).
pub const MFD_EXEC: u32 = 0x0010;

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::{general as g, ioctl as io};

    #[test]
    fn scan_constants_match_linux_raw_sys() {
        assert_eq!(PAGE_IS_WPALLOWED, u64::from(g::PAGE_IS_WPALLOWED));
        assert_eq!(PAGE_IS_WRITTEN, u64::from(g::PAGE_IS_WRITTEN));
        assert_eq!(PAGE_IS_FILE, u64::from(g::PAGE_IS_FILE));
        assert_eq!(PAGE_IS_PRESENT, u64::from(g::PAGE_IS_PRESENT));
        assert_eq!(PAGE_IS_SWAPPED, u64::from(g::PAGE_IS_SWAPPED));
        assert_eq!(PAGE_IS_PFNZERO, u64::from(g::PAGE_IS_PFNZERO));
        assert_eq!(PAGE_IS_HUGE, u64::from(g::PAGE_IS_HUGE));
        assert_eq!(PAGE_IS_SOFT_DIRTY, u64::from(g::PAGE_IS_SOFT_DIRTY));
        assert_eq!(PAGE_IS_GUARD, u64::from(g::PAGE_IS_GUARD));
        assert_eq!(PM_SCAN_WP_MATCHING, u64::from(g::PM_SCAN_WP_MATCHING));
        assert_eq!(PM_SCAN_CHECK_WPASYNC, u64::from(g::PM_SCAN_CHECK_WPASYNC));
        assert_eq!(size_of::<pm_scan_arg>(), size_of::<g::pm_scan_arg>());
        assert_eq!(size_of::<page_region>(), size_of::<g::page_region>());
        assert_eq!(
            offset_of!(pm_scan_arg, return_mask),
            offset_of!(g::pm_scan_arg, return_mask)
        );
        assert_eq!(
            offset_of!(pm_scan_arg, walk_end),
            offset_of!(g::pm_scan_arg, walk_end)
        );
    }

    #[test]
    fn uffd_constants_match_linux_raw_sys() {
        assert_eq!(UFFDIO_API, io::UFFDIO_API);
        assert_eq!(UFFDIO_REGISTER, io::UFFDIO_REGISTER);
        assert_eq!(UFFDIO_UNREGISTER, io::UFFDIO_UNREGISTER);
        assert_eq!(UFFDIO_WAKE, io::UFFDIO_WAKE);
        assert_eq!(UFFDIO_WRITEPROTECT, io::UFFDIO_WRITEPROTECT);
        assert_eq!(UFFD_API, u64::from(g::UFFD_API));
        assert_eq!(UFFD_USER_MODE_ONLY, g::UFFD_USER_MODE_ONLY as i32);
        assert_eq!(
            UFFDIO_REGISTER_MODE_WP,
            u64::from(g::UFFDIO_REGISTER_MODE_WP)
        );
        assert_eq!(
            UFFDIO_REGISTER_MODE_MISSING,
            u64::from(g::UFFDIO_REGISTER_MODE_MISSING)
        );
        assert_eq!(
            UFFDIO_REGISTER_MODE_MINOR,
            u64::from(g::UFFDIO_REGISTER_MODE_MINOR)
        );
        // UFFDIO_WRITEPROTECT_MODE_* are not in linux-raw-sys: checked against the
        // 6.12 header below.
        assert_eq!(_UFFDIO_WRITEPROTECT, g::_UFFDIO_WRITEPROTECT);
        assert_eq!(_UFFDIO_API, g::_UFFDIO_API);
        let theirs: &[(u64, u32)] = &[
            (
                UFFD_FEATURE_PAGEFAULT_FLAG_WP,
                g::UFFD_FEATURE_PAGEFAULT_FLAG_WP,
            ),
            (UFFD_FEATURE_EVENT_FORK, g::UFFD_FEATURE_EVENT_FORK),
            (UFFD_FEATURE_EVENT_REMAP, g::UFFD_FEATURE_EVENT_REMAP),
            (UFFD_FEATURE_EVENT_REMOVE, g::UFFD_FEATURE_EVENT_REMOVE),
            (
                UFFD_FEATURE_MISSING_HUGETLBFS,
                g::UFFD_FEATURE_MISSING_HUGETLBFS,
            ),
            (UFFD_FEATURE_MISSING_SHMEM, g::UFFD_FEATURE_MISSING_SHMEM),
            (UFFD_FEATURE_EVENT_UNMAP, g::UFFD_FEATURE_EVENT_UNMAP),
            (UFFD_FEATURE_SIGBUS, g::UFFD_FEATURE_SIGBUS),
            (UFFD_FEATURE_THREAD_ID, g::UFFD_FEATURE_THREAD_ID),
            (
                UFFD_FEATURE_MINOR_HUGETLBFS,
                g::UFFD_FEATURE_MINOR_HUGETLBFS,
            ),
            (UFFD_FEATURE_MINOR_SHMEM, g::UFFD_FEATURE_MINOR_SHMEM),
            (UFFD_FEATURE_EXACT_ADDRESS, g::UFFD_FEATURE_EXACT_ADDRESS),
            (
                UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
                g::UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
            ),
            (UFFD_FEATURE_WP_UNPOPULATED, g::UFFD_FEATURE_WP_UNPOPULATED),
            (UFFD_FEATURE_POISON, g::UFFD_FEATURE_POISON),
            (UFFD_FEATURE_WP_ASYNC, g::UFFD_FEATURE_WP_ASYNC),
            (UFFD_FEATURE_MOVE, g::UFFD_FEATURE_MOVE),
        ];
        for &(ours, theirs) in theirs {
            assert_eq!(ours, u64::from(theirs), "{}", uffd_feature_names(ours));
        }
        assert_eq!(UFFD_FEATURE_NAMES.len(), theirs.len());
    }

    #[test]
    fn other_constants_match_linux_raw_sys() {
        assert_eq!(MADV_GUARD_INSTALL, g::MADV_GUARD_INSTALL as i32);
        assert_eq!(MADV_GUARD_REMOVE, g::MADV_GUARD_REMOVE as i32);
        assert_eq!(MFD_NOEXEC_SEAL, g::MFD_NOEXEC_SEAL);
        assert_eq!(MFD_EXEC, g::MFD_EXEC);
    }

    #[test]
    fn ioc_encoding() {
        // A second computation of PAGEMAP_SCAN from its parts: dir=3, size=0x60.
        assert_eq!(PAGEMAP_SCAN >> 30, 3);
        assert_eq!((PAGEMAP_SCAN >> 16) & 0x3fff, 96);
        assert_eq!((PAGEMAP_SCAN >> 8) & 0xff, u32::from(b'f'));
        assert_eq!(PAGEMAP_SCAN & 0xff, 16);
    }

    #[test]
    fn feature_names() {
        assert_eq!(
            uffd_feature_names(UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_ASYNC),
            "UFFD_FEATURE_WP_UNPOPULATED|UFFD_FEATURE_WP_ASYNC"
        );
        assert_eq!(uffd_feature_names(1 << 40), "0x10000000000");
        assert_eq!(uffd_feature_names(0), "0");
    }

    /// Every hand-typed uapi constant, by its C name.
    macro_rules! named {
        ($($name:ident),* $(,)?) => { &[$((stringify!($name), $name as u64)),*] };
    }
    const OURS: &[(&str, u64)] = named![
        PROCFS_IOCTL_MAGIC,
        PAGEMAP_SCAN,
        PAGE_IS_WPALLOWED,
        PAGE_IS_WRITTEN,
        PAGE_IS_FILE,
        PAGE_IS_PRESENT,
        PAGE_IS_SWAPPED,
        PAGE_IS_PFNZERO,
        PAGE_IS_HUGE,
        PAGE_IS_SOFT_DIRTY,
        PAGE_IS_GUARD,
        PM_SCAN_WP_MATCHING,
        PM_SCAN_CHECK_WPASYNC,
        UFFD_API,
        UFFDIO,
        UFFD_USER_MODE_ONLY,
        _UFFDIO_REGISTER,
        _UFFDIO_UNREGISTER,
        _UFFDIO_WAKE,
        _UFFDIO_COPY,
        _UFFDIO_ZEROPAGE,
        _UFFDIO_MOVE,
        _UFFDIO_WRITEPROTECT,
        _UFFDIO_CONTINUE,
        _UFFDIO_POISON,
        _UFFDIO_API,
        UFFDIO_API,
        UFFDIO_REGISTER,
        UFFDIO_UNREGISTER,
        UFFDIO_WAKE,
        UFFDIO_WRITEPROTECT,
        UFFDIO_REGISTER_MODE_MISSING,
        UFFDIO_REGISTER_MODE_WP,
        UFFDIO_REGISTER_MODE_MINOR,
        UFFDIO_WRITEPROTECT_MODE_WP,
        UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
        UFFD_FEATURE_PAGEFAULT_FLAG_WP,
        UFFD_FEATURE_EVENT_FORK,
        UFFD_FEATURE_EVENT_REMAP,
        UFFD_FEATURE_EVENT_REMOVE,
        UFFD_FEATURE_MISSING_HUGETLBFS,
        UFFD_FEATURE_MISSING_SHMEM,
        UFFD_FEATURE_EVENT_UNMAP,
        UFFD_FEATURE_SIGBUS,
        UFFD_FEATURE_THREAD_ID,
        UFFD_FEATURE_MINOR_HUGETLBFS,
        UFFD_FEATURE_MINOR_SHMEM,
        UFFD_FEATURE_EXACT_ADDRESS,
        UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
        UFFD_FEATURE_WP_UNPOPULATED,
        UFFD_FEATURE_POISON,
        UFFD_FEATURE_WP_ASYNC,
        UFFD_FEATURE_MOVE,
        MADV_GUARD_INSTALL,
        MADV_GUARD_REMOVE,
        MFD_NOEXEC_SEAL,
        MFD_EXEC,
    ];

    /// Struct layouts: (C expression, ours).
    const LAYOUT: &[(&str, usize)] = &[
        ("sizeof(struct pm_scan_arg)", size_of::<pm_scan_arg>()),
        ("sizeof(struct page_region)", size_of::<page_region>()),
        (
            "offsetof(struct pm_scan_arg, walk_end)",
            offset_of!(pm_scan_arg, walk_end),
        ),
        (
            "offsetof(struct pm_scan_arg, return_mask)",
            offset_of!(pm_scan_arg, return_mask),
        ),
        ("sizeof(struct uffdio_api)", size_of::<uffdio_api>()),
        (
            "sizeof(struct uffdio_register)",
            size_of::<uffdio_register>(),
        ),
        (
            "sizeof(struct uffdio_writeprotect)",
            size_of::<uffdio_writeprotect>(),
        ),
        (
            "offsetof(struct uffdio_writeprotect, mode)",
            offset_of!(uffdio_writeprotect, mode),
        ),
    ];

    /// The values the installed uapi headers (linux-libc-dev, found by the C compiler
    /// on its include path, `$CC` or `cc`) give for `OURS` and `LAYOUT`, by name; a
    /// name the headers are too old for is absent. No C compiler or no headers is a
    /// failure, not a skip.
    fn installed_headers() -> std::collections::HashMap<String, u64> {
        let mut c = String::from(
            "#include <stddef.h>\n#include <stdio.h>\n#include <linux/fs.h>\n\
             #include <linux/userfaultfd.h>\n#include <linux/mman.h>\n\
             #include <linux/memfd.h>\nint main(void) {\n",
        );
        for (name, _) in OURS {
            c.push_str(&format!(
                "#ifdef {name}\nprintf(\"{name} %llu\\n\", (unsigned long long)({name}));\n#endif\n"
            ));
        }
        for (expr, _) in LAYOUT {
            // pm_scan_arg is 6.7+: only where the headers have PAGEMAP_SCAN.
            let guard = if expr.contains("pm_scan_arg") || expr.contains("page_region") {
                "PAGEMAP_SCAN"
            } else {
                "UFFDIO_API"
            };
            c.push_str(&format!(
                "#ifdef {guard}\nprintf(\"{expr} %llu\\n\", (unsigned long long)({expr}));\n#endif\n"
            ));
        }
        c.push_str("return 0;\n}\n");
        let dir = std::env::temp_dir().join(format!("uapi-headers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, exe) = (dir.join("uapi.c"), dir.join("uapi"));
        std::fs::write(&src, &c).unwrap();
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let built = std::process::Command::new(&cc)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| {
                panic!("cross-check needs a C compiler ({cc}: {e}); install gcc and linux-libc-dev")
            });
        assert!(
            built.status.success(),
            "{cc} could not build the header probe (are linux-libc-dev's headers \
             installed?):\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let out = std::process::Command::new(&exe).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (name, v) = l.rsplit_once(' ').unwrap();
                (name.to_string(), v.parse().unwrap())
            })
            .collect()
    }

    /// The same names from linux-raw-sys (generated from a recent kernel's uapi).
    fn linux_raw_sys() -> std::collections::HashMap<&'static str, u64> {
        let mut m: std::collections::HashMap<&'static str, u64> = [
            ("PAGE_IS_WPALLOWED", u64::from(g::PAGE_IS_WPALLOWED)),
            ("PAGE_IS_WRITTEN", u64::from(g::PAGE_IS_WRITTEN)),
            ("PAGE_IS_FILE", u64::from(g::PAGE_IS_FILE)),
            ("PAGE_IS_PRESENT", u64::from(g::PAGE_IS_PRESENT)),
            ("PAGE_IS_SWAPPED", u64::from(g::PAGE_IS_SWAPPED)),
            ("PAGE_IS_PFNZERO", u64::from(g::PAGE_IS_PFNZERO)),
            ("PAGE_IS_HUGE", u64::from(g::PAGE_IS_HUGE)),
            ("PAGE_IS_SOFT_DIRTY", u64::from(g::PAGE_IS_SOFT_DIRTY)),
            ("PAGE_IS_GUARD", u64::from(g::PAGE_IS_GUARD)),
            ("PM_SCAN_WP_MATCHING", u64::from(g::PM_SCAN_WP_MATCHING)),
            ("PM_SCAN_CHECK_WPASYNC", u64::from(g::PM_SCAN_CHECK_WPASYNC)),
            ("UFFD_API", u64::from(g::UFFD_API)),
            ("UFFD_USER_MODE_ONLY", u64::from(g::UFFD_USER_MODE_ONLY)),
            ("PROCFS_IOCTL_MAGIC", u64::from(g::PROCFS_IOCTL_MAGIC)),
            // Not in linux-raw-sys as a number: _IOWR('f', 16, struct pm_scan_arg) from
            // its parts (the _IOWR encoding itself is checked by UFFDIO_API below).
            (
                "PAGEMAP_SCAN",
                u64::from(iowr(
                    u32::from(g::PROCFS_IOCTL_MAGIC),
                    16,
                    size_of::<g::pm_scan_arg>(),
                )),
            ),
            ("UFFDIO", u64::from(g::UFFDIO)),
            ("_UFFDIO_REGISTER", u64::from(g::_UFFDIO_REGISTER)),
            ("_UFFDIO_UNREGISTER", u64::from(g::_UFFDIO_UNREGISTER)),
            ("_UFFDIO_WAKE", u64::from(g::_UFFDIO_WAKE)),
            ("_UFFDIO_COPY", u64::from(g::_UFFDIO_COPY)),
            ("_UFFDIO_ZEROPAGE", u64::from(g::_UFFDIO_ZEROPAGE)),
            ("_UFFDIO_MOVE", u64::from(g::_UFFDIO_MOVE)),
            ("_UFFDIO_WRITEPROTECT", u64::from(g::_UFFDIO_WRITEPROTECT)),
            ("_UFFDIO_CONTINUE", u64::from(g::_UFFDIO_CONTINUE)),
            ("_UFFDIO_POISON", u64::from(g::_UFFDIO_POISON)),
            ("_UFFDIO_API", u64::from(g::_UFFDIO_API)),
            ("UFFDIO_API", u64::from(io::UFFDIO_API)),
            ("UFFDIO_REGISTER", u64::from(io::UFFDIO_REGISTER)),
            ("UFFDIO_UNREGISTER", u64::from(io::UFFDIO_UNREGISTER)),
            ("UFFDIO_WAKE", u64::from(io::UFFDIO_WAKE)),
            ("UFFDIO_WRITEPROTECT", u64::from(io::UFFDIO_WRITEPROTECT)),
            (
                "UFFDIO_REGISTER_MODE_MISSING",
                u64::from(g::UFFDIO_REGISTER_MODE_MISSING),
            ),
            (
                "UFFDIO_REGISTER_MODE_WP",
                u64::from(g::UFFDIO_REGISTER_MODE_WP),
            ),
            (
                "UFFDIO_REGISTER_MODE_MINOR",
                u64::from(g::UFFDIO_REGISTER_MODE_MINOR),
            ),
            ("MADV_GUARD_INSTALL", u64::from(g::MADV_GUARD_INSTALL)),
            ("MADV_GUARD_REMOVE", u64::from(g::MADV_GUARD_REMOVE)),
            ("MFD_NOEXEC_SEAL", u64::from(g::MFD_NOEXEC_SEAL)),
            ("MFD_EXEC", u64::from(g::MFD_EXEC)),
        ]
        .into_iter()
        .collect();
        for (name, v) in [
            (
                "UFFD_FEATURE_PAGEFAULT_FLAG_WP",
                g::UFFD_FEATURE_PAGEFAULT_FLAG_WP,
            ),
            ("UFFD_FEATURE_EVENT_FORK", g::UFFD_FEATURE_EVENT_FORK),
            ("UFFD_FEATURE_EVENT_REMAP", g::UFFD_FEATURE_EVENT_REMAP),
            ("UFFD_FEATURE_EVENT_REMOVE", g::UFFD_FEATURE_EVENT_REMOVE),
            (
                "UFFD_FEATURE_MISSING_HUGETLBFS",
                g::UFFD_FEATURE_MISSING_HUGETLBFS,
            ),
            ("UFFD_FEATURE_MISSING_SHMEM", g::UFFD_FEATURE_MISSING_SHMEM),
            ("UFFD_FEATURE_EVENT_UNMAP", g::UFFD_FEATURE_EVENT_UNMAP),
            ("UFFD_FEATURE_SIGBUS", g::UFFD_FEATURE_SIGBUS),
            ("UFFD_FEATURE_THREAD_ID", g::UFFD_FEATURE_THREAD_ID),
            (
                "UFFD_FEATURE_MINOR_HUGETLBFS",
                g::UFFD_FEATURE_MINOR_HUGETLBFS,
            ),
            ("UFFD_FEATURE_MINOR_SHMEM", g::UFFD_FEATURE_MINOR_SHMEM),
            ("UFFD_FEATURE_EXACT_ADDRESS", g::UFFD_FEATURE_EXACT_ADDRESS),
            (
                "UFFD_FEATURE_WP_HUGETLBFS_SHMEM",
                g::UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
            ),
            (
                "UFFD_FEATURE_WP_UNPOPULATED",
                g::UFFD_FEATURE_WP_UNPOPULATED,
            ),
            ("UFFD_FEATURE_POISON", g::UFFD_FEATURE_POISON),
            ("UFFD_FEATURE_WP_ASYNC", g::UFFD_FEATURE_WP_ASYNC),
            ("UFFD_FEATURE_MOVE", g::UFFD_FEATURE_MOVE),
        ] {
            m.insert(name, u64::from(v));
        }
        m
    }

    /// Every hand-typed constant and layout agrees with each second source that has it
    /// (the installed headers, linux-raw-sys), and has at least one: a constant no
    /// source confirms is a failure.
    #[test]
    fn constants_match_the_installed_uapi_headers_and_linux_raw_sys() {
        let headers = installed_headers();
        let raw = linux_raw_sys();
        let mut unconfirmed = Vec::new();
        for &(name, ours) in OURS {
            let h = headers.get(name).copied();
            let r = raw.get(name).copied();
            if let Some(h) = h {
                assert_eq!(ours, h, "{name}: ours vs the installed headers");
            }
            if let Some(r) = r {
                assert_eq!(ours, r, "{name}: ours vs linux-raw-sys");
            }
            if h.is_none() && r.is_none() {
                unconfirmed.push(name);
            }
        }
        assert!(
            unconfirmed.is_empty(),
            "no second source for {unconfirmed:?}: neither the installed headers nor \
             linux-raw-sys define them"
        );
        // The features table names each feature by its C name.
        for &(bit, name) in UFFD_FEATURE_NAMES {
            assert_eq!(
                OURS.iter().find(|(n, _)| *n == name).map(|p| p.1),
                Some(bit),
                "{name}"
            );
        }
        for &(expr, ours) in LAYOUT {
            if let Some(&h) = headers.get(expr) {
                assert_eq!(ours as u64, h, "{expr}");
            }
        }
        // The userfaultfd basics are in every header since 5.7: they must be there.
        for name in [
            "UFFDIO",
            "UFFDIO_WRITEPROTECT_MODE_WP",
            "sizeof(struct uffdio_api)",
        ] {
            assert!(
                headers.contains_key(name),
                "the installed headers lack {name}"
            );
        }
    }

    /// The pagemap entry bits are kernel-internal (fs/proc/task_mmu.c, documented in
    /// Documentation/admin-guide/mm/pagemap.rst): no header has them. The ones every
    /// kernel shows are checked against the running kernel; the soft-dirty, uffd-wp,
    /// swap and guard bits are cross-checked against PAGEMAP_SCAN's categories where the
    /// kernel has them (`Pagemap::entry_is`).
    #[test]
    fn pagemap_bits_match_the_running_kernel() {
        use std::io::{Read, Seek, SeekFrom};
        let ps = crate::mem::page_size();
        let entry = |addr: usize| {
            let mut f = std::fs::File::open("/proc/self/pagemap").unwrap();
            f.seek(SeekFrom::Start((addr / ps * 8) as u64)).unwrap();
            let mut b = [0u8; 8];
            f.read_exact(&mut b).unwrap();
            u64::from_ne_bytes(b)
        };
        let anon = crate::mem::Mapping::anon(2 * ps).unwrap();
        anon.write(0, 1);
        let e = entry(anon.addr());
        assert_eq!(
            e & (PM_PRESENT | PM_MMAP_EXCLUSIVE | PM_FILE | PM_SWAP),
            PM_PRESENT | PM_MMAP_EXCLUSIVE,
            "{e:#x}"
        );
        let untouched = entry(anon.addr() + ps);
        assert_eq!(
            untouched & (PM_PRESENT | PM_SWAP | PM_FILE),
            0,
            "{untouched:#x}"
        );
        // A file page: a read of the process's own executable text.
        let text = pagemap_bits_match_the_running_kernel as *const () as usize;
        let e = entry(text);
        assert_eq!(e & (PM_PRESENT | PM_FILE), PM_PRESENT | PM_FILE, "{e:#x}");
        assert_eq!(PM_PFRAME_MASK, (1u64 << PM_PFRAME_BITS) - 1);
    }
}
