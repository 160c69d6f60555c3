//! Port of `tools/testing/selftests/mm/soft-dirty.c` of Linux 7.2 (Debian's
//! linux-source-7.2 7.2.13-1; the port first followed the mm tree at commit
//! 2005654f387226be02f3c26512c55203498b2699 and was checked against 7.2's file: the
//! same 19 result names in the same order, the same steps in each test), with
//! `softdirty_supported()`, `pagemap_is_softdirty()` and `clear_softdirty()` from that
//! tree's `vm_util.c`. It includes `test_merge` (Lorenzo Stoakes, "selftests/mm: add
//! soft-dirty merge test", upstream commit c7ba92bcfea3): 19 results.
//!
//! Differences from the 6.12 version (15 results): `test_merge` (4 results), the
//! whole-suite skip when soft-dirty is unsupported (6.12 has it too, mainline before
//! it does not), `test_hugepage` prints "Transparent Hugepages not available" and
//! skips both of its results, and failed ftruncate/mmap calls bail out.
//!
//! `test_merge` checks the fix "mm: propagate VM_SOFTDIRTY on merge" (Lorenzo
//! Stoakes, merged with the test for 6.19; proposed for 6.18.y stable). Kernels
//! without it (6.1, 6.12, 6.18) fail results 16-19. Checked under QEMU (tinyconfig +
//! configs/*.config): on Debian 6.12.117 the result lines are identical to those of
//! the C program (6.12's soft-dirty.c plus upstream's test_merge), 1-15 ok and 16-19
//! not ok; on pristine 6.1.192 (no PAGEMAP_SCAN, pagemap bit 55 only) likewise.
//!
//! Test names and order are upstream's, so the TAP output can be diffed line by line
//! with the C program's. Deliberate differences from the C program:
//! - The suite-level skip names the reason after upstream's text.
//! - One `# ` line after the plan says whether pagemap bit 55 is cross-checked with
//!   PAGEMAP_SCAN's `PAGE_IS_SOFT_DIRTY` (vm_util's `pagemap_is_softdirty()` does so
//!   when the kernel accepts the category, 6.8+) or read alone (e.g. 6.1).
//! - `Bail out!` messages carry the failing call, its arguments and errno.
//! - The file of `test_mprotect` lives in a fresh temporary directory (removed at
//!   exit), not in the working directory.
//! - `test_merge` also unmaps the last page of its reservation, which upstream leaks.
//!
//! Option `--force`: run the tests even when soft-dirty looks unsupported (after a
//! `# ` line saying so). On such a kernel the tests that expect a set bit must fail;
//! the crate's integration test uses this to show that the port can fail.

use ktap::Ksft;
use mm::mem::{self, AlignedBuf, Mapping};
use mm::pagemap::{clear_softdirty, Pagemap};
use mm::probe;
use std::ffi::CString;
use std::io::Stdout;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

const PAGEMAP_FILE_PATH: &str = "/proc/self/pagemap";
const TEST_ITERATIONS: usize = 10000;

struct Ctx {
    k: Ksft<Stdout>,
    pagemap: Pagemap,
    pagesize: usize,
    tmpdir: Option<PathBuf>,
}

impl Ctx {
    /// `ksft_exit_fail_msg()`: `Bail out!`, counts, temp dir removed, exit 1.
    fn bail(&mut self, msg: impl std::fmt::Display) -> ! {
        self.cleanup();
        self.k.exit_fail_msg(msg).exit()
    }

    fn cleanup(&mut self) {
        if let Some(d) = self.tmpdir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// vm_util's `pagemap_is_softdirty()`; like upstream, a pagemap/PAGEMAP_SCAN
    /// disagreement or a failed read bails out.
    fn is_softdirty(&mut self, addr: *mut u8) -> bool {
        match self.pagemap.is_softdirty(addr as usize) {
            Ok(b) => b,
            Err(e) => self.bail(e),
        }
    }

    /// vm_util's `clear_softdirty()`, which bails out on failure.
    fn clear_softdirty(&mut self) {
        if let Err(e) = clear_softdirty() {
            self.bail(format!("writing clear_refs failed: {e}"));
        }
    }
}

/// The dirty/clean loop shared by `test_simple` and `test_hugepage`: returns the
/// number of iterations completed.
fn dirty_loop(c: &mut Ctx, buf: &AlignedBuf) -> usize {
    let map = buf.as_ptr();
    c.clear_softdirty();
    let mut i = 0;
    while i < TEST_ITERATIONS {
        if c.is_softdirty(map) {
            c.k.print_msg(format!("dirty bit was 1, but should be 0 (i={i})"));
            break;
        }
        c.clear_softdirty();
        // Write something to the page to get the dirty bit enabled on the page
        buf.increment(0);
        if !c.is_softdirty(map) {
            c.k.print_msg(format!("dirty bit was 0, but should be 1 (i={i})"));
            break;
        }
        c.clear_softdirty();
        i += 1;
    }
    i
}

fn test_simple(c: &mut Ctx) {
    let buf = match AlignedBuf::new(c.pagesize, c.pagesize) {
        Ok(b) => b,
        Err(e) => c.bail(format!("mmap failed: {e}")),
    };
    let i = dirty_loop(c, &buf);
    drop(buf);
    c.k.test_result(i == TEST_ITERATIONS, "Test test_simple");
}

fn test_vma_reuse(c: &mut Ctx) {
    let map = match Mapping::anon(c.pagesize) {
        Ok(m) => m,
        Err(e) => c.bail(format!("mmap failed: {e}")),
    };
    // The kernel always marks new regions as soft dirty
    let sd = c.is_softdirty(map.as_ptr());
    c.k.test_result(sd, "Test test_vma_reuse dirty bit of allocated page");

    c.clear_softdirty();
    let addr = map.as_ptr();
    drop(map);

    let map2 = match Mapping::anon(c.pagesize) {
        Ok(m) => m,
        Err(e) => c.bail(format!("mmap failed: {e}")),
    };
    // Dirty bit is set for new regions even if they are reused
    if addr == map2.as_ptr() {
        let sd = c.is_softdirty(map2.as_ptr());
        c.k.test_result(sd, "Test test_vma_reuse dirty bit of reused address page");
    } else {
        c.k.test_result_skip("Test test_vma_reuse dirty bit of reused address page");
    }
}

fn test_hugepage(c: &mut Ctx) {
    if !probe::thp_is_enabled() {
        c.k.print_msg("Transparent Hugepages not available");
        c.k.test_result_skip("Test test_hugepage huge page allocation");
        c.k.test_result_skip("Test test_hugepage huge page dirty bit");
        return;
    }
    let Some(hpage_len) = probe::read_pmd_pagesize() else {
        c.bail(format!(
            "Reading PMD pagesize failed ({})",
            probe::PMD_SIZE_FILE_PATH
        ));
    };
    let hpage_len = hpage_len as usize;
    let buf = match AlignedBuf::new(hpage_len, hpage_len) {
        Ok(b) => b,
        Err(e) => c.bail(format!("memalign failed: {e}")),
    };
    if let Err(e) = buf.advise(0, hpage_len, libc::MADV_HUGEPAGE) {
        c.bail(format!("madvise failed: {e}"));
    }
    for i in 0..hpage_len {
        buf.write(i, i as u8);
    }
    let huge = match probe::check_huge_anon(buf.as_ptr() as usize, 1, hpage_len as u64) {
        Ok(h) => h,
        Err(e) => c.bail(e),
    };
    if huge {
        c.k.test_result_pass("Test test_hugepage huge page allocation");
        let i = dirty_loop(c, &buf);
        c.k.test_result(
            i == TEST_ITERATIONS,
            "Test test_hugepage huge page dirty bit",
        );
    } else {
        // hugepage allocation failed. skip these tests
        c.k.test_result_skip("Test test_hugepage huge page allocation");
        c.k.test_result_skip("Test test_hugepage huge page dirty bit");
    }
}

/// `open(path, O_RDWR | O_CREAT, 0664)`.
fn open_rw_create(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
            0o664,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn test_mprotect(c: &mut Ctx, anon: bool) {
    let ty = if anon { "anon" } else { "file" };
    let ps = c.pagesize;
    let mut _file: Option<OwnedFd> = None;

    let map = if anon {
        match Mapping::anon(ps) {
            Ok(m) => m,
            Err(e) => c.bail(format!("anon mmap failed: {e}")),
        }
    } else {
        let fname = match &c.tmpdir {
            Some(d) => d.join("soft-dirty-test-file"),
            None => PathBuf::from("./soft-dirty-test-file"),
        };
        let fd = match open_rw_create(&fname) {
            Ok(fd) => fd,
            Err(e) => {
                c.k.print_msg(format!("open({}): {e}", fname.display()));
                c.k.test_result_skip("Test test_mprotect open() file failed");
                return;
            }
        };
        let _ = std::fs::remove_file(&fname);
        if let Err(e) = mem::ftruncate(fd.as_fd(), ps as u64) {
            c.bail(format!("ftruncate failed: {e}"));
        }
        let m = match mem::MapOptions::new(ps).shared().file(fd.as_fd(), 0).map() {
            Ok(m) => m,
            Err(e) => c.bail(format!("file mmap failed: {e}")),
        };
        _file = Some(fd);
        m
    };

    let protect = |c: &mut Ctx, prot: i32| {
        // Upstream does not check mprotect(); a failure shows in the next result.
        if let Err(e) = map.protect(0, ps, prot) {
            c.k.print_msg(e);
        }
    };

    map.write(0, 1);
    let sd = c.is_softdirty(map.as_ptr());
    c.k.test_result(
        sd,
        format!("Test test_mprotect-{ty} dirty bit of new written page"),
    );
    c.clear_softdirty();
    let sd = c.is_softdirty(map.as_ptr());
    c.k.test_result(
        !sd,
        format!("Test test_mprotect-{ty} soft-dirty clear after clear_refs"),
    );
    protect(c, libc::PROT_READ);
    let sd = c.is_softdirty(map.as_ptr());
    c.k.test_result(
        !sd,
        format!("Test test_mprotect-{ty} soft-dirty clear after marking RO"),
    );
    protect(c, libc::PROT_READ | libc::PROT_WRITE);
    let sd = c.is_softdirty(map.as_ptr());
    c.k.test_result(
        !sd,
        format!("Test test_mprotect-{ty} soft-dirty clear after marking RW"),
    );
    map.write(0, 2);
    let sd = c.is_softdirty(map.as_ptr());
    c.k.test_result(
        sd,
        format!("Test test_mprotect-{ty} soft-dirty after rewritten"),
    );

    drop(map);
    drop(_file);
}

fn test_mprotect_anon(c: &mut Ctx) {
    test_mprotect(c, true);
}

fn test_mprotect_file(c: &mut Ctx) {
    test_mprotect(c, false);
}

/// `mmap(addr, len, prot, MAP_ANON | MAP_PRIVATE | MAP_FIXED, -1, 0)` inside the
/// reservation of `test_merge`, bailing out like upstream on failure.
fn map_fixed_in(c: &mut Ctx, addr: *mut u8, len: usize, prot: i32) -> *mut u8 {
    // SAFETY: `addr` lies in test_merge's reservation, which no Rust object owns.
    match unsafe {
        mem::mmap_raw(
            addr,
            len,
            prot,
            libc::MAP_ANONYMOUS | libc::MAP_PRIVATE | libc::MAP_FIXED,
            -1,
            0,
        )
    } {
        Ok(p) => p,
        Err(e) => c.bail(format!("mmap failed: {e}")),
    }
}

fn munmap_in(c: &mut Ctx, addr: *mut u8, len: usize) {
    // SAFETY: the range lies in test_merge's reservation.
    if let Err(e) = unsafe { mem::munmap_raw(addr, len) } {
        // Upstream does not check munmap(); report it and go on.
        c.k.print_msg(e);
    }
}

fn test_merge(c: &mut Ctx) {
    let ps = c.pagesize;
    let rw = libc::PROT_READ | libc::PROT_WRITE;

    /*
     * Reserve space for tests:
     *
     *   ---padding to ---
     *   |   avoid adj.  |
     *   v     merge     v
     * |---|---|---|---|---|
     * |   | 1 | 2 | 3 |   |
     * |---|---|---|---|---|
     */
    let reserved = match Mapping::anon_prot(5 * ps, libc::PROT_NONE) {
        Ok(m) => m.forget().0,
        Err(e) => c.bail(format!("mmap failed: {e}")),
    };
    munmap_in(c, reserved, 4 * ps);
    // SAFETY (for the `add`s below): offsets stay inside the 5-page reservation.
    let page = |i: usize| unsafe { reserved.add(i * ps) };

    /*
     * Establish initial VMA:
     *
     *      S/D
     * |---|---|---|---|---|
     * |   | 1 |   |   |   |
     * |---|---|---|---|---|
     */
    let map = map_fixed_in(c, page(1), ps, rw);

    /* This will clear VM_SOFTDIRTY too. */
    c.clear_softdirty();

    /*
     * Now place a new mapping which will be marked VM_SOFTDIRTY. Away from
     * map:
     *
     *       -      S/D
     * |---|---|---|---|---|
     * |   | 1 |   | 2 |   |
     * |---|---|---|---|---|
     */
    let map2 = map_fixed_in(c, page(3), ps, rw);

    /*
     * Now remap it immediately adjacent to map, if the merge correctly
     * propagates VM_SOFTDIRTY, we should then observe the VMA as a whole
     * being marked soft-dirty:
     *
     *       merge
     *        S/D
     * |---|-------|---|---|
     * |   |   1   |   |   |
     * |---|-------|---|---|
     */
    // SAFETY: both ranges lie in the reservation.
    let map2 = match unsafe {
        mem::mremap_raw(
            map2,
            ps,
            ps,
            libc::MREMAP_FIXED | libc::MREMAP_MAYMOVE,
            page(2),
        )
    } {
        Ok(p) => p,
        Err(e) => c.bail(format!("mremap failed: {e}")),
    };
    let sd = c.is_softdirty(map);
    c.k.test_result(
        sd,
        "Test test_merge-anon soft-dirty after remap merge 1st pg",
    );
    let sd = c.is_softdirty(map2);
    c.k.test_result(
        sd,
        "Test test_merge-anon soft-dirty after remap merge 2nd pg",
    );

    munmap_in(c, map, 2 * ps);

    /*
     * Now establish another VMA:
     *
     *      S/D
     * |---|---|---|---|---|
     * |   | 1 |   |   |   |
     * |---|---|---|---|---|
     */
    let map = map_fixed_in(c, page(1), ps, rw);

    /* Clear VM_SOFTDIRTY... */
    c.clear_softdirty();
    /* ...and establish incompatible adjacent VMA:
     *
     *       -  S/D
     * |---|---|---|---|---|
     * |   | 1 | 2 |   |   |
     * |---|---|---|---|---|
     */
    let map2 = map_fixed_in(c, page(2), ps, rw | libc::PROT_EXEC);

    /*
     * Now mprotect() VMA 1 so it's compatible with 2 and therefore merges:
     *
     *       merge
     *        S/D
     * |---|-------|---|---|
     * |   |   1   |   |   |
     * |---|-------|---|---|
     */
    if let Err(e) = mem::mprotect(map, ps, rw | libc::PROT_EXEC) {
        c.bail(format!("mprotect failed: {e}"));
    }

    let sd = c.is_softdirty(map);
    c.k.test_result(
        sd,
        "Test test_merge-anon soft-dirty after mprotect merge 1st pg",
    );
    let sd = c.is_softdirty(map2);
    c.k.test_result(
        sd,
        "Test test_merge-anon soft-dirty after mprotect merge 2nd pg",
    );

    munmap_in(c, map, 2 * ps);
    // The right-hand padding page (upstream leaks it).
    munmap_in(c, page(4), ps);
}

/// A fresh private directory for the test file.
fn make_tmpdir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let d = base.join(format!("soft-dirty.{}.{nanos}", std::process::id()));
    std::fs::create_dir(&d)?;
    Ok(d)
}

fn main() {
    let force = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--force") => true,
        Some(other) => {
            eprintln!("usage: soft-dirty [--force]  (unknown argument {other:?})");
            std::process::exit(2);
        }
    };

    let mut k = Ksft::stdout();
    k.print_header();

    match probe::softdirty_unsupported_reason() {
        Ok(None) => {}
        Ok(Some(reason)) if force => k.print_msg(format!(
            "--force: running although soft-dirty is not support: {reason}"
        )),
        Ok(Some(reason)) => k
            .exit_skip(format!("soft-dirty is not support: {reason}"))
            .exit(),
        Err(e) => k.exit_fail_msg(format!("softdirty_supported: {e}")).exit(),
    }

    k.set_plan(19);
    let pagemap = match Pagemap::open_path(PAGEMAP_FILE_PATH) {
        Ok(p) => p,
        Err(e) => k
            .exit_fail_msg(format!("Failed to open {PAGEMAP_FILE_PATH}: {e}"))
            .exit(),
    };

    let tmpdir = match make_tmpdir() {
        Ok(d) => Some(d),
        Err(e) => {
            k.print_msg(format!(
                "cannot create a temporary directory in {}: {e}",
                std::env::temp_dir().display()
            ));
            None
        }
    };

    let mut c = Ctx {
        k,
        pagemap,
        pagesize: mem::page_size(),
        tmpdir,
    };

    // Say which check pagemap_is_softdirty() will use on this kernel.
    let probe_map = match Mapping::anon(c.pagesize) {
        Ok(m) => m,
        Err(e) => c.bail(format!("mmap failed: {e}")),
    };
    match c.pagemap.scan_supported(probe_map.addr()) {
        Ok(true) => c.k.print_msg(
            "soft-dirty read from pagemap bit 55, cross-checked with PAGEMAP_SCAN PAGE_IS_SOFT_DIRTY",
        ),
        Ok(false) => c.k.print_msg(
            "soft-dirty read from pagemap bit 55 only (no PAGEMAP_SCAN with PAGE_IS_SOFT_DIRTY)",
        ),
        Err(e) => c.bail(e),
    }
    drop(probe_map);

    test_simple(&mut c);
    test_vma_reuse(&mut c);
    test_hugepage(&mut c);
    test_mprotect_anon(&mut c);
    test_mprotect_file(&mut c);
    test_merge(&mut c);

    c.cleanup();
    c.k.finished().exit();
}
