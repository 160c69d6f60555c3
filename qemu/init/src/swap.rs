//! Swap on a RAM disk, so that `MADV_PAGEOUT` really swaps pages out in the VM.
//!
//! The kernel's `brd` driver (CONFIG_BLK_DEV_RAM) gives `/dev/ram0`, sized by the
//! kernel parameter `brd.rd_size=<KiB>`; its pages are allocated only when written.
//! The initramfs has no `mkswap`, so [`header`] builds the Linux swap header (version 1,
//! `union swap_header` in include/linux/swap.h, checked by `read_swap_header()` in
//! mm/swapfile.c) and [`setup`] writes it to the device and calls swapon(2).

use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use crate::system;

/// The RAM disk the swap area goes on.
pub const DEVICE: &str = "/dev/ram0";
/// Where the kernel lists the active swap areas.
pub const PROC_SWAPS: &str = "/proc/swaps";

/// The signature at the end of the header page (`magic.magic`).
pub const MAGIC: &[u8; 10] = b"SWAPSPACE2";
/// Offsets in `union swap_header` (`info`): after the 1024 bytes of `bootbits`.
pub const VERSION_OFFSET: usize = 1024;
pub const LAST_PAGE_OFFSET: usize = 1028;
pub const NR_BADPAGES_OFFSET: usize = 1032;
pub const UUID_OFFSET: usize = 1036;
pub const LABEL_OFFSET: usize = 1052;
/// `sws_volume[16]`.
pub const LABEL_LEN: usize = 16;

/// A fixed UUID (random bits, version 4 and RFC 4122 variant nibbles): every VM writes
/// the same header, nothing identifies the area by UUID.
pub const UUID: [u8; 16] = [
    0x5f, 0x1e, 0x6a, 0x7c, 0x2d, 0x3b, 0x4e, 0x8f, 0x9a, 0x01, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07,
];
/// The volume label.
pub const LABEL: &str = "harness-swap";

/// The header page of a swap area of `size_bytes` (whole pages; a partial last page is
/// left out), in the machine's byte order as mkswap writes it: `version` 1,
/// `last_page` = number of pages - 1 (page 0 is the header itself), no bad pages.
pub fn header(
    page_size: usize,
    size_bytes: u64,
    uuid: &[u8; 16],
    label: &str,
) -> Result<Vec<u8>, String> {
    if page_size < 4096 || !page_size.is_power_of_two() {
        return Err(format!(
            "page size {page_size} is not a power of two >= 4096"
        ));
    }
    let pages = size_bytes / page_size as u64;
    // The kernel refuses last_page == 0 ("Empty swap-file").
    if pages < 2 {
        return Err(format!(
            "{size_bytes} bytes is less than 2 pages of {page_size} bytes (header + one page)"
        ));
    }
    let last_page = u32::try_from(pages - 1)
        .map_err(|_| format!("{pages} pages do not fit the header's 32-bit last_page"))?;
    if label.len() > LABEL_LEN {
        return Err(format!("label {label:?} is longer than {LABEL_LEN} bytes"));
    }
    let mut page = vec![0u8; page_size];
    page[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&1u32.to_ne_bytes());
    page[LAST_PAGE_OFFSET..LAST_PAGE_OFFSET + 4].copy_from_slice(&last_page.to_ne_bytes());
    page[NR_BADPAGES_OFFSET..NR_BADPAGES_OFFSET + 4].copy_from_slice(&0u32.to_ne_bytes());
    page[UUID_OFFSET..UUID_OFFSET + 16].copy_from_slice(uuid);
    page[LABEL_OFFSET..LABEL_OFFSET + label.len()].copy_from_slice(label.as_bytes());
    page[page_size - MAGIC.len()..].copy_from_slice(MAGIC);
    Ok(page)
}

/// The size in KiB of `device` in the text of /proc/swaps
/// (`Filename Type Size Used Priority`), if it is listed.
pub fn listed_size_kib(proc_swaps: &str, device: &str) -> Option<u64> {
    proc_swaps.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next()? != device {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

/// The page size of the running kernel.
pub fn page_size() -> Result<usize, String> {
    // SAFETY: plain sysconf query.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(r).map_err(|_| format!("sysconf(_SC_PAGESIZE): {}", io::Error::last_os_error()))
}

/// Writes a swap header for `mib` MiB at the start of `device`, then swapon(device, 0).
/// Returns the size in KiB that /proc/swaps shows for it (the header page excluded).
pub fn setup(device: &str, mib: u64) -> Result<u64, String> {
    let page_size = page_size()?;
    let size = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("{mib} MiB overflows"))?;
    let page = header(page_size, size, &UUID, LABEL)?;
    {
        let mut dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .map_err(|e| {
                format!(
                    "open(\"{device}\", O_RDWR): {e} (kernel without CONFIG_BLK_DEV_RAM, or \
                     brd.rd_nr=0?)"
                )
            })?;
        let dev_size = dev
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("lseek({device}, 0, SEEK_END): {e}"))?;
        if dev_size < size {
            return Err(format!(
                "{device} has {} KiB, {mib} MiB of swap need kernel parameter \
                 brd.rd_size={} or more",
                dev_size >> 10,
                size >> 10
            ));
        }
        dev.write_all_at(&page, 0)
            .map_err(|e| format!("pwrite({device}, {page_size} bytes of swap header, 0): {e}"))?;
        // swapon reads the header through the block device's page cache, but set_blocksize
        // may drop it: make sure it is on the device.
        dev.sync_all()
            .map_err(|e| format!("fsync({device}): {e}"))?;
    }
    let cpath = std::ffi::CString::new(device).map_err(|e| format!("swapon {device}: {e}"))?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::swapon(cpath.as_ptr(), 0) } != 0 {
        return Err(format!(
            "swapon(\"{device}\", 0): {} (kernel without CONFIG_SWAP?)",
            io::Error::last_os_error()
        ));
    }
    let swaps = system::read_file(PROC_SWAPS)?;
    listed_size_kib(&swaps, device).ok_or_else(|| {
        format!("swapon(\"{device}\") succeeded but {PROC_SWAPS} does not list it: {swaps:?}")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn u32_at(page: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(page[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn header_layout_4k() {
        let p = header(4096, 256 << 20, &UUID, LABEL).unwrap();
        assert_eq!(p.len(), 4096);
        assert_eq!(&p[4086..4096], b"SWAPSPACE2");
        assert_eq!(u32_at(&p, 1024), 1, "version");
        assert_eq!(u32_at(&p, 1028), 65535, "last_page: 65536 pages of 4 KiB");
        assert_eq!(u32_at(&p, 1032), 0, "nr_badpages");
        assert_eq!(&p[1036..1052], &UUID);
        assert_eq!(&p[1052..1064], b"harness-swap");
        assert!(p[1064..1068].iter().all(|&b| b == 0), "label NUL-padded");
        // bootbits, padding and badpages stay zero.
        assert!(p[..1024].iter().all(|&b| b == 0));
        assert!(p[1068..4086].iter().all(|&b| b == 0));
        // Little endian on x86_64, as mkswap writes it there.
        #[cfg(target_endian = "little")]
        assert_eq!(&p[1024..1032], &[1, 0, 0, 0, 0xff, 0xff, 0, 0]);
    }

    #[test]
    fn header_layout_other_page_size_and_partial_page() {
        // 64 KiB pages: the magic moves with the page end; a partial page is left out.
        let p = header(65536, (1 << 20) + 100, &UUID, "").unwrap();
        assert_eq!(p.len(), 65536);
        assert_eq!(&p[65526..], MAGIC);
        assert_eq!(u32_at(&p, LAST_PAGE_OFFSET), 15);
        assert!(p[LABEL_OFFSET..LABEL_OFFSET + LABEL_LEN]
            .iter()
            .all(|&b| b == 0));
        let p = header(4096, 3 * 4096 + 4095, &UUID, LABEL).unwrap();
        assert_eq!(u32_at(&p, LAST_PAGE_OFFSET), 2);
    }

    #[test]
    fn header_refuses_what_the_kernel_would() {
        assert!(header(4096, 4096, &UUID, LABEL)
            .unwrap_err()
            .contains("less than 2 pages"));
        assert!(header(4096, 0, &UUID, LABEL).is_err());
        assert!(header(1000, 1 << 20, &UUID, LABEL)
            .unwrap_err()
            .contains("page size"));
        assert!(header(4096, 1 << 20, &UUID, "a-label-of-17-byt").is_err());
        assert!(header(4096, 1 << 20, &UUID, "label-of-16-byte").is_ok());
        let e = header(4096, (1u64 << 32) * 4096 + 4096, &UUID, LABEL).unwrap_err();
        assert!(e.contains("32-bit last_page"), "{e}");
        assert_eq!(
            u32_at(
                &header(4096, (1u64 << 32) * 4096, &UUID, LABEL).unwrap(),
                LAST_PAGE_OFFSET
            ),
            u32::MAX
        );
    }

    #[test]
    fn proc_swaps_parsing() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/ram0                               partition\t262140\t\t0\t\t-2\n";
        assert_eq!(listed_size_kib(text, "/dev/ram0"), Some(262140));
        assert_eq!(listed_size_kib(text, "/dev/ram1"), None);
        assert_eq!(
            listed_size_kib("Filename\tType\tSize\tUsed\tPriority\n", "/dev/ram0"),
            None
        );
    }

    #[test]
    fn setup_reports_a_missing_device_without_swapon() {
        let e = setup("/nonexistent/ram0", 1).unwrap_err();
        assert!(e.contains("open(\"/nonexistent/ram0\", O_RDWR)"), "{e}");
    }

    #[test]
    fn setup_checks_the_device_size_before_writing() {
        // A regular file stands in for a too small device: refused before any write.
        let dir = std::env::temp_dir().join(format!("guest-init-swap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("small");
        std::fs::write(&f, vec![7u8; 8192]).unwrap();
        let e = setup(f.to_str().unwrap(), 1).unwrap_err();
        assert!(e.contains("brd.rd_size=1024"), "{e}");
        assert_eq!(
            std::fs::read(&f).unwrap(),
            vec![7u8; 8192],
            "file untouched"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
