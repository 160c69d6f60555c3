//! What the running kernel offers, and vm_util.c's `/proc` and `/sys` readers:
//! `softdirty_supported`, `check_vmflag`, `__get_smap_entry`, `check_huge_anon`/
//! `_file`/`_shmem`, `read_pmd_pagesize`, `pmd_page_shift`, `thp_is_enabled`,
//! `default_huge_page_size`, `detect_hugetlb_page_sizes`, `get_free_hugepages`,
//! `rss_anon`, `allocate_transhuge`; plus PAGEMAP_SCAN probes
//! (tools/testing/selftests/mm/vm_util.c and hugepage_settings.c, linux-mm tree 2025).

use crate::error::{Error, Result};
use crate::mem::{page_shift, page_size, Mapping};
use crate::pagemap::Pagemap;
use crate::scan::{Categories, ScanArgs};
use crate::uapi;

/// The THP PMD size file.
pub const PMD_SIZE_FILE_PATH: &str = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size";
/// The THP directory.
pub const THP_SYSFS: &str = "/sys/kernel/mm/transparent_hugepage/";
/// Our smaps.
pub const SMAPS_PATH: &str = "/proc/self/smaps";

fn read_file(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::from_io("read", path.to_string(), &e))
}

/// The smaps block (header line plus fields) of the VMA that *starts* at `addr`,
/// like vm_util's `__get_smap_entry` (which matches `"%08lx-"` at a line start).
/// `None` when no VMA starts there.
pub fn smaps_block(addr: usize) -> Result<Option<Vec<String>>> {
    let text = read_file(SMAPS_PATH)?;
    Ok(smaps_block_in(&text, addr))
}

/// [`smaps_block`] over a given smaps text (pure; unit-tested).
pub fn smaps_block_in(text: &str, addr: usize) -> Option<Vec<String>> {
    let prefix = format!("{addr:08x}-");
    let mut lines = text.lines();
    lines.by_ref().find(|l| l.starts_with(&prefix))?;
    let mut block = Vec::new();
    for l in lines {
        if is_vma_header(l) {
            break;
        }
        block.push(l.to_string());
    }
    Some(block)
}

fn is_vma_header(line: &str) -> bool {
    // "7f..-7f.. rw-p ..." : hex, '-', hex, ' '.
    let Some((range, _)) = line.split_once(' ') else {
        return false;
    };
    let Some((a, b)) = range.split_once('-') else {
        return false;
    };
    !a.is_empty()
        && !b.is_empty()
        && a.bytes().all(|c| c.is_ascii_hexdigit())
        && b.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The value after `field` (e.g. `"AnonHugePages:"`) in the smaps block of the VMA
/// starting at `addr`, trimmed. `None` when the VMA or the field is absent.
pub fn smaps_field(addr: usize, field: &str) -> Result<Option<String>> {
    Ok(smaps_block(addr)?.and_then(|b| field_in_block(&b, field)))
}

fn field_in_block(block: &[String], field: &str) -> Option<String> {
    block
        .iter()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
}

/// The VmFlags mnemonics (`rd wr mr mw me ac sd`) of the VMA starting at `addr`.
pub fn vm_flags(addr: usize) -> Result<Vec<String>> {
    match smaps_field(addr, "VmFlags:")? {
        Some(v) => Ok(v.split_whitespace().map(str::to_string).collect()),
        None => Err(Error::Parse {
            what: SMAPS_PATH.into(),
            detail: format!("no VmFlags for a VMA starting at {addr:#x}"),
        }),
    }
}

/// vm_util's `check_vmflag()`: does the VMA starting at `addr` have `flag`?
pub fn check_vmflag(addr: usize, flag: &str) -> Result<bool> {
    Ok(vm_flags(addr)?.iter().any(|f| f == flag))
}

/// vm_util's `softdirty_supported()`: a fresh anonymous mapping carries `sd`
/// (VM_SOFTDIRTY) in its VmFlags iff the kernel has CONFIG_MEM_SOFT_DIRTY.
pub fn softdirty_supported() -> Result<bool> {
    let m = own_vma()?;
    check_vmflag(m.addr(), "sd")
}

/// A fresh anonymous page that is a VMA of its own: MADV_DONTDUMP gives it a flag
/// no neighbour has, so a mapping another thread makes next to it cannot merge with
/// it (then it would no longer *start* a VMA, and its smaps block would be missing).
pub fn own_vma() -> Result<Mapping> {
    let m = Mapping::anon(page_size())?;
    m.advise(0, m.len(), libc::MADV_DONTDUMP)?;
    Ok(m)
}

/// Why soft-dirty is unavailable (`None` when it is available), for SKIP messages.
pub fn softdirty_unsupported_reason() -> Result<Option<String>> {
    let m = own_vma()?;
    let flags = vm_flags(m.addr())?;
    if flags.iter().any(|f| f == "sd") {
        Ok(None)
    } else {
        Ok(Some(format!(
            "a fresh anonymous mapping has no 'sd' in its VmFlags ({}): the kernel lacks \
             CONFIG_MEM_SOFT_DIRTY",
            flags.join(" ")
        )))
    }
}

fn parse_kb(value: &str, what: &str) -> Result<u64> {
    let num = value.trim().trim_end_matches("kB").trim();
    num.parse().map_err(|_| Error::Parse {
        what: what.to_string(),
        detail: format!("{value:?} is not \"<n> kB\""),
    })
}

fn check_pmd_huge(addr: usize, field: &str, nr_hpages: u64, hpage_size: u64) -> Result<bool> {
    let Some(v) = smaps_field(addr, field)? else {
        return Ok(false);
    };
    let kb = parse_kb(&v, &format!("{SMAPS_PATH} {field}"))?;
    Ok(kb == nr_hpages * (hpage_size >> 10))
}

fn check_huge(addr: usize, field: &str, nr_hpages: u64, hpage_size: u64) -> Result<bool> {
    let pmd = read_pmd_pagesize().ok_or_else(|| Error::Unsupported {
        feature: "transparent hugepages".into(),
        reason: format!("cannot read {PMD_SIZE_FILE_PATH}"),
    })?;
    if hpage_size != pmd {
        // Upstream falls back to /proc/kpageflags folio orders (check_large_folios);
        // the ported tests only check PMD-sized THPs.
        return Err(Error::InvalidArgument {
            func: "check_huge",
            detail: format!(
                "only PMD-sized ({pmd:#x}) huge pages can be checked, not {hpage_size:#x}"
            ),
        });
    }
    check_pmd_huge(addr, field, nr_hpages, hpage_size)
}

/// vm_util's `check_huge_anon()`: the VMA starting at `addr` has exactly
/// `nr_hpages` PMD-mapped anonymous THPs of `hpage_size` (smaps `AnonHugePages`).
pub fn check_huge_anon(addr: usize, nr_hpages: u64, hpage_size: u64) -> Result<bool> {
    check_huge(addr, "AnonHugePages:", nr_hpages, hpage_size)
}

/// vm_util's `check_huge_file()` (smaps `FilePmdMapped`).
pub fn check_huge_file(addr: usize, nr_hpages: u64, hpage_size: u64) -> Result<bool> {
    check_huge(addr, "FilePmdMapped:", nr_hpages, hpage_size)
}

/// vm_util's `check_huge_shmem()` (smaps `ShmemPmdMapped`).
pub fn check_huge_shmem(addr: usize, nr_hpages: u64, hpage_size: u64) -> Result<bool> {
    check_huge(addr, "ShmemPmdMapped:", nr_hpages, hpage_size)
}

/// vm_util's `read_pmd_pagesize()`: THP PMD size in bytes, `None` without THP.
pub fn read_pmd_pagesize() -> Option<u64> {
    let s = std::fs::read_to_string(PMD_SIZE_FILE_PATH).ok()?;
    s.trim().parse().ok().filter(|&v| v > 0)
}

/// vm_util's `pmd_page_shift()`.
pub fn pmd_page_shift() -> Option<u32> {
    read_pmd_pagesize().map(u64::trailing_zeros)
}

/// The THP `enabled` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThpMode {
    /// `never`.
    Never,
    /// `always`.
    Always,
    /// `inherit` (per-size directories only).
    Inherit,
    /// `madvise`.
    Madvise,
}

/// Parses `always [madvise] never`: the bracketed word.
pub fn parse_thp_mode(s: &str) -> Option<ThpMode> {
    let sel = s.split_whitespace().find(|w| w.starts_with('['))?;
    Some(match sel.trim_matches(|c| c == '[' || c == ']') {
        "never" => ThpMode::Never,
        "always" => ThpMode::Always,
        "inherit" => ThpMode::Inherit,
        "madvise" => ThpMode::Madvise,
        _ => return None,
    })
}

/// The mode in `/sys/kernel/mm/transparent_hugepage/enabled`; `None` without THP.
pub fn thp_mode() -> Option<ThpMode> {
    parse_thp_mode(&std::fs::read_to_string(format!("{THP_SYSFS}enabled")).ok()?)
}

/// A THP sysfs setting, trimmed: `thp_setting("use_zero_page")`,
/// `thp_setting("defrag")`, `thp_setting("khugepaged/pages_to_scan")`. `None` when
/// the file is missing or unreadable.
pub fn thp_setting(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("{THP_SYSFS}{name}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// hugepage_settings.c's `thp_is_enabled()`: THP exists and is `always` or `madvise`.
pub fn thp_is_enabled() -> bool {
    matches!(thp_mode(), Some(ThpMode::Always | ThpMode::Madvise))
}

fn meminfo_value(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

/// vm_util's `default_huge_page_size()`: `Hugepagesize` of /proc/meminfo in bytes.
pub fn default_huge_page_size() -> Option<u64> {
    meminfo_value("Hugepagesize:")
        .map(|kb| kb << 10)
        .filter(|&v| v > 0)
}

/// vm_util's `get_free_hugepages()`: `HugePages_Free` of /proc/meminfo.
pub fn get_free_hugepages() -> Option<u64> {
    meminfo_value("HugePages_Free:")
}

/// vm_util's `detect_hugetlb_page_sizes()`: sizes in bytes from
/// `/sys/kernel/mm/hugepages/hugepages-<n>kB`, sorted.
pub fn detect_hugetlb_page_sizes() -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/hugepages/") else {
        return Vec::new();
    };
    let mut v: Vec<u64> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(kb * 1024)
        })
        .collect();
    v.sort_unstable();
    v
}

/// Free hugetlb pages of size `size` bytes
/// (`/sys/kernel/mm/hugepages/hugepages-<n>kB/free_hugepages`).
pub fn free_hugetlb_pages(size: u64) -> Option<u64> {
    let p = format!(
        "/sys/kernel/mm/hugepages/hugepages-{}kB/free_hugepages",
        size >> 10
    );
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// vm_util's `rss_anon()`: `RssAnon` of /proc/self/status in kB.
pub fn rss_anon() -> Result<u64> {
    let text = read_file("/proc/self/status")?;
    match text.lines().find_map(|l| l.strip_prefix("RssAnon:")) {
        Some(v) => parse_kb(v, "/proc/self/status RssAnon"),
        None => Ok(0),
    }
}

/// vm_util's `allocate_transhuge()`: maps a fresh THP-advised PMD at `ptr` (which
/// must be PMD aligned), touches it, and returns the PFN of its first page when the
/// first two pages are present, contiguous and PMD-aligned (i.e. a THP), else `None`.
/// PFNs read as 0 without CAP_SYS_ADMIN, which makes this return `None`... or a
/// false `Some(0)`: callers should run it privileged, as upstream does.
///
/// # Safety
/// `[ptr, ptr + PMD size)` is replaced (MAP_FIXED) and must be owned by the caller.
pub unsafe fn allocate_transhuge(ptr: *mut u8, pagemap: &Pagemap) -> Result<Option<u64>> {
    let (Some(hsize), Some(hshift)) = (read_pmd_pagesize(), pmd_page_shift()) else {
        return Ok(None);
    };
    let m = unsafe {
        Mapping::map_fixed(
            ptr,
            hsize as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_PRIVATE,
            None,
            0,
        )?
    };
    m.advise(0, hsize as usize, libc::MADV_HUGEPAGE)?;
    m.write(0, 1);
    let e = pagemap.entries(m.addr(), 2)?;
    m.forget(); // the caller owns the range
    let (p0, p1) = (e[0].pfn(), e[1].pfn());
    let align_mask = (1u64 << (hshift - page_shift())) - 1;
    Ok(match (p0, p1) {
        (Some(a), Some(b)) if a + 1 == b && a & align_mask == 0 => Some(a),
        _ => None,
    })
}

/// Is PAGEMAP_SCAN available at all (6.7+)? ENOTTY means no; any other answer yes.
pub fn pagemap_scan_supported(pagemap: &Pagemap) -> Result<bool> {
    let m = Mapping::anon(page_size())?;
    match pagemap.scan(&ScanArgs::new(m.addr(), m.len()).vec_len(1)) {
        Ok(_) => Ok(true),
        Err(e) if e.is_unsupported() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The `PAGE_IS_*` bits this kernel accepts, probed one bit at a time: a
/// `return_mask` with an unknown bit fails with EINVAL. Bits 0..63 are tried, so a
/// kernel newer than this crate shows its new bits too.
/// [`Error::Unsupported`] without PAGEMAP_SCAN.
pub fn supported_categories(pagemap: &Pagemap) -> Result<Categories> {
    let m = Mapping::anon(page_size())?;
    let mut ok = Categories::NONE;
    for bit in 0..64 {
        let c = Categories(1 << bit);
        let args = ScanArgs::new(m.addr(), m.len()).return_mask(c).vec_len(1);
        match pagemap.scan(&args) {
            Ok(_) => ok |= c,
            Err(e) if e.errno() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ok)
}

/// `uname -r`.
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data, filled by uname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: NUL-terminated by the kernel.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Does this kernel know `PAGE_IS_SOFT_DIRTY` (6.8+)?
pub fn scan_has_soft_dirty(pagemap: &Pagemap) -> Result<bool> {
    Ok(supported_categories(pagemap)?.contains(Categories::SOFT_DIRTY))
}

/// Is the pagemap GUARD bit / category known? (`PAGE_IS_GUARD`, 6.16+.)
pub fn scan_has_guard(pagemap: &Pagemap) -> Result<bool> {
    Ok(supported_categories(pagemap)?.contains(Categories(uapi::PAGE_IS_GUARD)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 123  /bin/x
Size:                  4 kB
VmFlags: rd mr mw me sd
7f0000000000-7f0000200000 rw-p 00000000 00:00 0
Size:               2048 kB
AnonHugePages:      2048 kB
VmFlags: rd wr mr mw me ac sd hg
7f0000200000-7f0000201000 rw-p 00000000 00:00 0
Size:                  4 kB
VmFlags: rd wr mr mw me ac
";

    #[test]
    fn smaps_block_is_the_vma_starting_at_addr() {
        let b = smaps_block_in(SMAPS, 0x7f00_0000_0000).unwrap();
        assert_eq!(
            field_in_block(&b, "AnonHugePages:").as_deref(),
            Some("2048 kB")
        );
        assert_eq!(
            field_in_block(&b, "VmFlags:").as_deref(),
            Some("rd wr mr mw me ac sd hg")
        );
        // The next VMA has no AnonHugePages line: the search stops at its header.
        let b = smaps_block_in(SMAPS, 0x7f00_0020_0000).unwrap();
        assert_eq!(field_in_block(&b, "AnonHugePages:"), None);
        // An address inside a VMA is not a VMA start.
        assert!(smaps_block_in(SMAPS, 0x7f00_0000_1000).is_none());
    }

    #[test]
    fn thp_mode_parsing() {
        assert_eq!(
            parse_thp_mode("always [madvise] never\n"),
            Some(ThpMode::Madvise)
        );
        assert_eq!(
            parse_thp_mode("[always] madvise never"),
            Some(ThpMode::Always)
        );
        assert_eq!(
            parse_thp_mode("always inherit madvise [never]"),
            Some(ThpMode::Never)
        );
        assert_eq!(parse_thp_mode("always madvise never"), None);
    }

    #[test]
    fn thp_setting_matches_mode() {
        match (thp_setting("enabled"), thp_mode()) {
            (Some(s), Some(m)) => assert_eq!(parse_thp_mode(&s), Some(m)),
            (None, None) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(thp_setting("no-such-setting"), None);
    }

    #[test]
    fn kb_parsing() {
        assert_eq!(parse_kb("   2048 kB", "x").unwrap(), 2048);
        assert!(parse_kb("lots", "x").is_err());
    }

    #[test]
    fn fresh_mapping_has_vmflags() {
        // Its own VMA: test threads map and unmap next to it all the time.
        let m = own_vma().unwrap();
        let f = vm_flags(m.addr()).unwrap();
        assert!(
            f.iter().any(|x| x == "rd") && f.iter().any(|x| x == "wr"),
            "{f:?}"
        );
        // softdirty_supported agrees with the VmFlags we just read.
        assert_eq!(softdirty_supported().unwrap(), f.iter().any(|x| x == "sd"));
        assert_eq!(
            softdirty_unsupported_reason().unwrap().is_none(),
            softdirty_supported().unwrap()
        );
    }

    #[test]
    fn smaps_of_an_unmapped_address_is_none() {
        // An address no user mapping can ever have (the kernel half): a page just
        // unmapped here could be mapped again at once by another test thread.
        let a = 0xffff_8000_0000_0000usize;
        assert!(smaps_block(a).unwrap().is_none());
        assert!(vm_flags(a).is_err());
    }

    #[test]
    fn kernel_release_looks_like_a_version() {
        let r = kernel_release();
        assert!(r.chars().next().unwrap().is_ascii_digit(), "{r}");
    }

    #[test]
    fn hugetlb_sizes_include_default() {
        let sizes = detect_hugetlb_page_sizes();
        if let Some(d) = default_huge_page_size() {
            if !sizes.is_empty() {
                assert!(sizes.contains(&d), "{d:#x} not in {sizes:x?}");
            }
        }
    }
}
