//! Port of `tools/testing/selftests/mm/pagemap_ioctl.c` of Linux 7.2 (Debian's
//! linux-source-7.2 7.2.13-1), with the helpers it uses from that tree's
//! `vm_util.c`/`vm_util.h` (`check_huge_anon`, `detect_huge_zeropage`,
//! `force_read_pages`, `read_pmd_pagesize`, `read_num`) and `hugepage_settings.c`
//! (`hugetlb_setup_default`, `detect_hugetlb_page_sizes`, `default_huge_page_size`):
//! 118 results, in 7.2's order and words.
//!
//! Plan relative to the 115 of Linux 6.12: `zeropfn_tests` (2 results) and
//! `unpopulated_scan_test` (1, "fs/proc/task_mmu: fix PAGEMAP_SCAN written state for
//! unpopulated PTEs") were added since. The project's extra THP variant of the
//! unpopulated test is `unpopulated_thp_scan_test` in `pagemap_scan_regressions`,
//! so that this port's TAP diffs cleanly with the C program's. Other differences from
//! 6.12 that this port follows:
//! without userfaultfd WP-async the suite skips as a whole (`1..0 # SKIP`, exit 4;
//! 6.12 exits 0), `hugetlb_setup_default(4)` runs before the plan, the hugetlb
//! sizes come from `default_huge_page_size()`, the mapped-executable test reads its
//! pages with `force_read_pages()`, a failed open of the pagemap bails out, and the
//! program ends with `ksft_finished()`.
//!
//! Checked on the host (6.18, root): 7.2's C program (built against 7.2's uapi
//! headers) and this port print the same 118 result names in the same order; only
//! the counts inside `transact_test`'s name differ from run to run, as they do
//! between two runs of the C program.
//!
//! Test names, order and skip behaviour are upstream's, so the TAP output can be
//! diffed line by line with the C program's. Deliberate differences:
//! - `hugetlb_setup_default(4)` only *reads* the hugetlb pool unless `--hugetlb-setup`
//!   is given: upstream raises `nr_hugepages` when fewer than 4 pages are free (and
//!   restores it at exit), which must not happen when the suite runs on a developer's
//!   host. The harness's guest init reserves the pages itself. With the option, the
//!   pool of the default size is raised and restored at exit (also on `Bail out!`),
//!   but not on a fatal signal.
//! - Temporary files live in a fresh directory under `$TMPDIR` (or `/tmp`), removed
//!   at exit, not in the working directory; the mapped executable is
//!   `/proc/self/exe` rather than `argv[0]`.
//! - `Bail out!` messages name the failing call, its arguments and errno; the
//!   suite-level skip names the reason after upstream's text.
//! - PAGEMAP_SCAN itself is probed after userfaultfd, before the plan: upstream
//!   probes only `UFFD_FEATURE_WP_ASYNC`, so on a kernel that has it but not the
//!   ioctl (the 6.1 series after patch 2, before patch 3) its first scan fails and
//!   every result is lost. Here ENOTTY on a minimal valid scan skips the suite as a
//!   whole (`1..0 # SKIP PAGEMAP_SCAN ioctl not supported ...`, exit 4); any other
//!   error of that scan bails out. The pagemap is therefore opened before the plan
//!   (upstream opens it after `ksft_set_plan()`).
//! - `memfd_create(.., MFD_NOEXEC_SEAL)` falls back to no seal on EINVAL (kernels
//!   before 6.3, e.g. 6.1 with the PAGEMAP_SCAN backport), with a diagnostic: the
//!   seal is unrelated to what is tested, and upstream would bail out there.
//! - The "Smaller vec" loop stops once walk_end has reached the end of the range:
//!   on a kernel that loses writes or mis-reports walk_end, upstream's loop spins
//!   forever; this port reports `not ok` instead. No change on a correct kernel.
//! - Result buffers are allocated as large as the `vec_len` passed to the kernel
//!   (upstream's `sanity_tests_sd` passes 1000 for a 500-entry buffer).
//! - Mappings upstream leaks (the hugetlb kinds, `gethugepage()` buffers whose
//!   `MADV_HUGEPAGE` failed) are leaked too; the SysV segment is removed with
//!   `IPC_RMID` while attached, as upstream does.

use ktap::global::{
    ksft_exit_fail_msg, ksft_exit_skip, ksft_finished, ksft_print_header, ksft_print_msg,
    ksft_set_plan, ksft_test_result, ksft_test_result_fail, ksft_test_result_pass,
    ksft_test_result_skip,
};
use mm::mem::{self, MapOptions, Mapping, SysvShm};
use mm::pagemap::Pagemap;
use mm::probe;
use mm::uapi::{
    self, page_region, pm_scan_arg, PAGE_IS_FILE, PAGE_IS_HUGE, PAGE_IS_PFNZERO, PAGE_IS_PRESENT,
    PAGE_IS_SWAPPED, PAGE_IS_WPALLOWED, PAGE_IS_WRITTEN,
};
use mm::uffd::Userfaultfd;
use std::cell::{RefCell, UnsafeCell};
use std::ffi::CString;
use std::fmt::Display;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

const PAGEMAP_BITS_ALL: u64 = PAGE_IS_WPALLOWED
    | PAGE_IS_WRITTEN
    | PAGE_IS_FILE
    | PAGE_IS_PRESENT
    | PAGE_IS_SWAPPED
    | PAGE_IS_PFNZERO
    | PAGE_IS_HUGE;
const PAGEMAP_NON_WRITTEN_BITS: u64 = PAGE_IS_WPALLOWED
    | PAGE_IS_FILE
    | PAGE_IS_PRESENT
    | PAGE_IS_SWAPPED
    | PAGE_IS_PFNZERO
    | PAGE_IS_HUGE;
/// `PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC`.
const WP: u64 = uapi::PM_SCAN_WP_MATCHING | uapi::PM_SCAN_CHECK_WPASYNC;
/// C's `(int)-1` sign-extended into a `__u64` field.
const MINUS_ONE: u64 = u64::MAX;

const TEST_ITERATIONS: usize = 100;
const PLAN: u32 = 118;
const NULL: *mut page_region = std::ptr::null_mut();

// ---------------------------------------------------------------------------
// Process-wide clean-up: run before every exit (ksft_finished and Bail out!).
// ---------------------------------------------------------------------------

struct Cleanup {
    tmpdir: Option<PathBuf>,
    /// `(nr_hugepages path, value to restore)` when `--hugetlb-setup` raised the pool.
    hugetlb_restore: Option<(String, u64)>,
}

static CLEANUP: Mutex<Cleanup> = Mutex::new(Cleanup {
    tmpdir: None,
    hugetlb_restore: None,
});

fn cleanup() {
    let mut c = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = c.tmpdir.take() {
        let _ = std::fs::remove_dir_all(d);
    }
    if let Some((path, nr)) = c.hugetlb_restore.take() {
        if let Err(e) = std::fs::write(&path, nr.to_string()) {
            ksft_print_msg(format!("restoring {path} to {nr} failed: {e}"));
        }
    }
}

/// `ksft_exit_fail_msg()`: clean up, `Bail out! msg`, exit 1.
fn bail(msg: impl Display) -> ! {
    cleanup();
    ksft_exit_fail_msg(msg)
}

/// A path in this run's temporary directory (created on first use).
fn tmp_path(name: &str) -> PathBuf {
    let mut c = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
    if c.tmpdir.is_none() {
        let base = std::env::var_os("TMPDIR")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let template = base.join("pagemap_ioctl.XXXXXX");
        let mut buf = CString::new(template.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|_| bail("TMPDIR contains a NUL byte"))
            .into_bytes_with_nul();
        // SAFETY: buf is a writable NUL-terminated template.
        if unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) }.is_null() {
            let e = std::io::Error::last_os_error();
            drop(c);
            bail(format!("mkdtemp({}) failed: {e}", template.display()));
        }
        buf.pop();
        c.tmpdir = Some(PathBuf::from(String::from_utf8_lossy(&buf).into_owned()));
    }
    c.tmpdir
        .as_ref()
        .map(|d| d.join(name))
        .expect("tmpdir set above")
}

// ---------------------------------------------------------------------------
// Small memory helpers (the tests' own mappings, accessed through raw pointers)
// ---------------------------------------------------------------------------

/// `p[off]++`.
fn inc(p: *mut u8, off: usize) {
    // SAFETY: callers pass an offset inside one of the test's own writable buffers.
    unsafe {
        let q = p.add(off);
        q.write_volatile(q.read_volatile().wrapping_add(1));
    }
}

/// `memset(p + off, v, len)`.
fn fill(p: *mut u8, off: usize, v: u8, len: usize) {
    // SAFETY: callers pass a range inside one of the test's own writable buffers.
    unsafe { std::ptr::write_bytes(p.add(off), v, len) }
}

/// `FORCE_READ(p[off])`.
fn force_read(p: *const u8, off: usize) {
    // SAFETY: callers pass an offset inside one of the test's own readable buffers.
    unsafe {
        p.add(off).read_volatile();
    }
}

/// vm_util.h's `force_read_pages()`.
fn force_read_pages(p: *const u8, nr_pages: usize, pagesize: usize) {
    for i in 0..nr_pages {
        force_read(p, i * pagesize);
    }
}

/// `mmap()` of a fresh mapping; failures bail out like upstream's "error nomem".
fn map_or_bail(opts: MapOptions<'_>) -> Mapping {
    opts.map()
        .unwrap_or_else(|e| bail(format!("error nomem: {e}")))
}

fn anon(len: usize, prot: i32) -> Mapping {
    map_or_bail(MapOptions::new(len).prot(prot))
}

const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

/// `mprotect()` whose result upstream ignores.
fn mprotect(p: *mut u8, len: usize, prot: i32) {
    let _ = mem::mprotect(p, len, prot);
}

/// `calloc(n, sizeof(struct page_region))`.
fn regions(n: usize) -> Vec<page_region> {
    vec![page_region::default(); n]
}

/// `open(path, O_RDWR | O_CREAT, mode)` and `buf_size` one-byte writes of "c", as
/// upstream creates its test files.
fn create_c_file(
    path: &std::path::Path,
    mode: libc::mode_t,
    buf_size: usize,
    what: &str,
) -> OwnedFd {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|_| bail(format!("{} contains a NUL byte", path.display())));
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CREAT, mode) };
    if fd < 0 {
        bail(format!(
            "{what}: open({}, O_RDWR|O_CREAT, {mode:#o}) failed: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    write_c(&fd, buf_size);
    fd
}

/// `for (i = 0; i < buf_size; i++) write(fd, "c", 1)`.
fn write_c(fd: &OwnedFd, buf_size: usize) {
    for _ in 0..buf_size {
        // SAFETY: one byte from a static buffer.
        if unsafe { libc::write(fd.as_raw_fd(), b"c".as_ptr().cast(), 1) } < 0 {
            bail(format!(
                "Create and read/write to a memory mapped file: write(fd={}, \"c\", 1) failed: {}",
                fd.as_raw_fd(),
                std::io::Error::last_os_error()
            ));
        }
    }
}

fn fstat_size(fd: &OwnedFd, what: &str) -> usize {
    // SAFETY: stat is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        bail(format!(
            "fstat({what}) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    st.st_size as usize
}

// ---------------------------------------------------------------------------
// The test context: pagemap fd, uffd, sizes (upstream's globals)
// ---------------------------------------------------------------------------

struct Ctx {
    pagemap: Pagemap,
    uffd: Userfaultfd,
    page_size: usize,
    hpage_size: usize,
    /// The error of the last failed PAGEMAP_SCAN (upstream's `errno`).
    last_err: RefCell<Option<mm::Error>>,
}

impl Ctx {
    /// `LEN(region)`.
    fn len(&self, r: &page_region) -> u64 {
        (r.end.wrapping_sub(r.start)) / self.page_size as u64
    }

    /// Upstream's `pagemap_ioc()`: PAGEMAP_SCAN with every field given, returning the
    /// ioctl's value (-1 on error, the error kept for messages) and `walk_end`.
    #[allow(clippy::too_many_arguments)]
    fn pagemap_ioc(
        &self,
        start: *const u8,
        len: usize,
        vec: *mut page_region,
        vec_len: u64,
        flag: u64,
        max_pages: u64,
        required_mask: u64,
        anyof_mask: u64,
        excluded_mask: u64,
        return_mask: u64,
    ) -> (i64, u64) {
        let mut arg = pm_scan_arg {
            size: std::mem::size_of::<pm_scan_arg>() as u64,
            flags: flag,
            start: start as u64,
            end: (start as u64).wrapping_add(len as u64),
            walk_end: 0,
            vec: vec as u64,
            vec_len,
            max_pages,
            category_inverted: excluded_mask,
            category_mask: required_mask,
            category_anyof_mask: anyof_mask,
            return_mask,
        };
        // SAFETY: vec is NULL or points to at least vec_len page_regions of the
        // caller (or the test expects the kernel to reject it).
        match unsafe { self.pagemap.scan_raw(&mut arg) } {
            Ok(n) => (n as i64, arg.walk_end),
            Err(e) => {
                *self.last_err.borrow_mut() = Some(e);
                (-1, arg.walk_end)
            }
        }
    }

    /// Upstream's `pagemap_ioctl()`.
    #[allow(clippy::too_many_arguments)]
    fn pagemap_ioctl(
        &self,
        start: *const u8,
        len: usize,
        vec: *mut page_region,
        vec_len: u64,
        flag: u64,
        max_pages: u64,
        required_mask: u64,
        anyof_mask: u64,
        excluded_mask: u64,
        return_mask: u64,
    ) -> i64 {
        self.pagemap_ioc(
            start,
            len,
            vec,
            vec_len,
            flag,
            max_pages,
            required_mask,
            anyof_mask,
            excluded_mask,
            return_mask,
        )
        .0
    }

    /// `if (ret < 0) ksft_exit_fail_msg("error %ld %d %s\n", ret, errno, ...)`.
    fn check(&self, ret: i64) -> i64 {
        if ret < 0 {
            bail(format!("error {ret}: {}", self.last_err_text()));
        }
        ret
    }

    /// The error of the last failed PAGEMAP_SCAN (C's `strerror(errno)`).
    fn last_err_text(&self) -> String {
        let e = self.last_err.borrow().as_ref().map(|e| e.to_string());
        e.unwrap_or_else(|| "unknown".into())
    }

    /// Upstream's `wp_init()`: register for WP and write-protect.
    fn wp_init(&self, addr: *const u8, size: usize) {
        if let Err(e) = self.uffd.wp_init(addr as usize, size) {
            bail(e);
        }
    }

    /// Upstream's `wp_free()`: unregister.
    fn wp_free(&self, addr: *const u8, size: usize) {
        if let Err(e) = self.uffd.wp_free(addr as usize, size) {
            bail(format!("ioctl unregister failure: {e}"));
        }
    }

    /// Upstream's `wp_addr_range()`: write-protect by a PAGEMAP_SCAN without vec.
    fn wp_addr_range(&self, addr: *const u8, size: usize) {
        if self.pagemap_ioctl(
            addr,
            size,
            NULL,
            0,
            WP,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ) < 0
        {
            let e = self.last_err.borrow().as_ref().map(|e| e.to_string());
            bail(format!("error 1: {}", e.unwrap_or_default()));
        }
    }

    /// Upstream's `gethugepage()`: `memalign(hpage_size)`, `MADV_HUGEPAGE` (NULL when
    /// it fails; the buffer is leaked, as upstream does), zero-filled.
    fn gethugepage(&self, map_size: usize) -> *mut u8 {
        // SAFETY: plain allocation.
        let map = unsafe { libc::memalign(self.hpage_size, map_size) }.cast::<u8>();
        if map.is_null() {
            bail(format!(
                "memalign({:#x}, {map_size:#x}) failed: {}",
                self.hpage_size,
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: madvise on our own allocation.
        if unsafe { libc::madvise(map.cast(), map_size, libc::MADV_HUGEPAGE) } != 0 {
            return std::ptr::null_mut();
        }
        fill(map, 0, 0, map_size);
        map
    }

    // -----------------------------------------------------------------------
    // userfaultfd_tests
    // -----------------------------------------------------------------------

    fn userfaultfd_tests(&self) {
        let num_pages = 16;
        let mem_size = num_pages * self.page_size;
        let m = anon(mem_size, libc::PROT_NONE);
        let mem = m.as_ptr();

        self.wp_init(mem, mem_size);

        // Change protection of pages differently
        let e = mem_size / 8;
        mprotect(mem, e, RW);
        mprotect(m.at(e), e, libc::PROT_READ);
        mprotect(m.at(2 * e), e, RW);
        mprotect(m.at(3 * e), e, libc::PROT_READ);
        mprotect(m.at(4 * e), e, RW);
        mprotect(m.at(5 * e), e, libc::PROT_NONE);
        mprotect(m.at(6 * e), e, RW);
        mprotect(m.at(7 * e), e, libc::PROT_READ);

        self.wp_addr_range(m.at(mem_size / 16), mem_size - 2 * (mem_size / 8));
        self.wp_addr_range(mem, mem_size);

        let vec_size = mem_size / self.page_size;
        let mut vec = regions(vec_size);

        let written = self.pagemap_ioctl(
            mem,
            mem_size,
            vec.as_mut_ptr(),
            1,
            WP,
            vec_size as u64 - 2,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        );
        self.check(written);

        ksft_test_result(
            written == 0,
            "userfaultfd_tests all new pages must not be written (dirty)",
        );

        self.wp_free(mem, mem_size);
        drop(m);
    }

    fn get_reads(&self, vec: &[page_region], n: usize) -> u64 {
        vec[..n].iter().map(|r| self.len(r)).sum()
    }

    // -----------------------------------------------------------------------
    // sanity_tests_sd
    // -----------------------------------------------------------------------

    fn sanity_tests_sd(&self) {
        const F: &str = "sanity_tests_sd";
        let ps = self.page_size;
        let num_pages: usize = 1000;
        let mut vec_size = num_pages / 2;
        let mut mem_size = num_pages * ps;

        // Allocated for the largest vec_len passed below (1000), see the module doc.
        let mut vec = regions(num_pages);
        let mut vec2 = regions(num_pages);

        let m = anon(mem_size, RW);
        let mem = m.as_ptr();

        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        let v = vec.as_mut_ptr();
        let vs = vec_size as u64;

        // 1. wrong operation
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                0,
                v,
                vs,
                0,
                0,
                PAGEMAP_BITS_ALL,
                0,
                0,
                PAGEMAP_BITS_ALL,
            ) == 0,
            format!("{F} Zero range size is valid"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                NULL,
                vs,
                0,
                0,
                PAGEMAP_BITS_ALL,
                0,
                0,
                PAGEMAP_BITS_ALL,
            ) < 0,
            format!("{F} output buffer must be specified with size"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                v,
                0,
                0,
                0,
                PAGEMAP_BITS_ALL,
                0,
                0,
                PAGEMAP_BITS_ALL,
            ) == 0,
            format!("{F} output buffer can be 0"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                NULL,
                0,
                0,
                0,
                PAGEMAP_BITS_ALL,
                0,
                0,
                PAGEMAP_BITS_ALL,
            ) == 0,
            format!("{F} output buffer can be 0"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                v,
                vs,
                MINUS_ONE,
                0,
                PAGE_IS_WRITTEN,
                0,
                0,
                PAGE_IS_WRITTEN,
            ) < 0,
            format!("{F} wrong flag specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                v,
                vs,
                WP | 0xFF,
                0,
                PAGE_IS_WRITTEN,
                0,
                0,
                PAGE_IS_WRITTEN,
            ) < 0,
            format!("{F} flag has extra bits specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, 0, 0, 0, PAGE_IS_WRITTEN) >= 0,
            format!("{F} no selection mask is specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                v,
                vs,
                0,
                0,
                PAGE_IS_WRITTEN,
                PAGE_IS_WRITTEN,
                0,
                0,
            ) == 0,
            format!("{F} no return mask is specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, PAGE_IS_WRITTEN, 0, 0, 0x1000) < 0,
            format!("{F} wrong return mask specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(
                mem,
                mem_size,
                v,
                vs,
                WP,
                0,
                0xFFF,
                PAGE_IS_WRITTEN,
                0,
                PAGE_IS_WRITTEN,
            ) < 0,
            format!("{F} mixture of correct and wrong flag"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, WP, 0, 0, 0, PAGEMAP_BITS_ALL, PAGE_IS_WRITTEN) >= 0,
            format!("{F} PAGEMAP_BITS_ALL can be specified with PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC"),
        );

        // 2. Clear area with larger vec size
        let ret = self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            WP,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        );
        ksft_test_result(ret >= 0, format!("{F} Clear area with larger vec size"));

        // 3. Repeated pattern of written and non-written pages
        for i in (0..mem_size).step_by(2 * ps) {
            inc(mem, i);
        }
        let ret = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            0,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        ksft_test_result(
            ret as usize == mem_size / (ps * 2),
            format!("{F} Repeated pattern of written and non-written pages"),
        );

        // 4. Repeated pattern of written and non-written pages in parts
        let ret = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            WP,
            (num_pages / 2 - 2) as u64,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        let ret2 = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            2,
            0,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        let ret3 = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            WP,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        ksft_test_result(
            (ret + ret3) as usize == num_pages / 2 && ret2 == 2,
            format!("{F} Repeated pattern of written and non-written pages in parts {ret} {ret3} {ret2}"),
        );

        // 5. Repeated pattern of written and non-written pages max_pages
        for i in (0..mem_size).step_by(2 * ps) {
            inc(mem, i);
        }
        inc(mem, (mem_size / ps - 1) * ps);
        let ret = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            WP,
            (num_pages / 2) as u64,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        let ret2 = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            WP,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        ksft_test_result(
            ret as usize == num_pages / 2 && ret2 == 1,
            format!("{F} Repeated pattern of written and non-written pages max_pages"),
        );

        // 6. only get 2 dirty pages and clear them as well
        vec_size = mem_size / ps;
        fill(mem, 0, 0xff, mem_size);

        // get and clear second and third pages
        let ret = self.check(self.pagemap_ioctl(
            m.at(ps),
            2 * ps,
            v,
            1,
            WP,
            2,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        let ret2 = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            vec2.as_mut_ptr(),
            vec_size as u64,
            0,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        ksft_test_result(
            ret == 1
                && self.len(&vec[0]) == 2
                && vec[0].start == m.at(ps) as u64
                && ret2 == 2
                && self.len(&vec2[0]) == 1
                && vec2[0].start == mem as u64
                && self.len(&vec2[1]) == vec_size as u64 - 3
                && vec2[1].start == m.at(3 * ps) as u64,
            format!("{F} only get 2 written pages and clear them as well"),
        );

        self.wp_free(mem, mem_size);
        drop(m);

        // 7. Two regions
        let m0 = anon(mem_size, RW);
        let m1 = anon(mem_size, RW);
        self.wp_init(m0.as_ptr(), mem_size);
        self.wp_init(m1.as_ptr(), mem_size);
        self.wp_addr_range(m0.as_ptr(), mem_size);
        self.wp_addr_range(m1.as_ptr(), mem_size);

        fill(m0.as_ptr(), 0, b'a', mem_size);
        fill(m1.as_ptr(), 0, b'b', mem_size);

        self.wp_addr_range(m0.as_ptr(), mem_size);

        let v = vec.as_mut_ptr();
        let ret = self.check(self.pagemap_ioctl(
            m1.as_ptr(),
            mem_size,
            v,
            1,
            0,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));
        ksft_test_result(
            ret == 1 && self.len(&vec[0]) == (mem_size / ps) as u64,
            format!("{F} Two regions"),
        );

        self.wp_free(m0.as_ptr(), mem_size);
        self.wp_free(m1.as_ptr(), mem_size);
        drop(m0);
        drop(m1);
        drop(vec);
        drop(vec2);

        // 8. Smaller vec
        mem_size = 1050 * ps;
        vec_size = mem_size / (ps * 2);
        let mut vec = regions(vec_size);
        let v = vec.as_mut_ptr();
        let vs = vec_size as u64;

        let m = anon(mem_size, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            WP,
            0,
            PAGE_IS_WRITTEN,
            0,
            0,
            PAGE_IS_WRITTEN,
        ));

        for i in (0..mem_size / ps).step_by(2) {
            inc(mem, i * ps);
        }

        let max = (mem_size / (ps * 5)) as u64;
        let mut total_pages = 0;
        for _ in 0..3 {
            total_pages += self.check(self.pagemap_ioctl(
                mem,
                mem_size,
                v,
                vs,
                WP,
                max,
                PAGE_IS_WRITTEN,
                0,
                0,
                PAGE_IS_WRITTEN,
            ));
        }
        ksft_test_result(
            total_pages as usize == mem_size / (ps * 2),
            format!("{F} Smaller max_pages"),
        );

        drop(vec);
        self.wp_free(mem, mem_size);
        drop(m);

        // 9. Smaller vec
        mem_size = 10000 * ps;
        vec_size = 50;
        let mut vec = regions(vec_size);
        let v = vec.as_mut_ptr();
        let vs = vec_size as u64;

        let m = anon(mem_size, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        let mut count = 0;
        while count < TEST_ITERATIONS {
            let mut total_writes = 0u64;
            let mut total_reads = 0u64;
            let mut walk_end = mem as u64;

            for i in (0..mem_size).step_by(ps) {
                // SAFETY: plain libc call (upstream's unseeded rand()).
                if unsafe { libc::rand() } % 2 != 0 {
                    inc(mem, i);
                    total_writes += 1;
                }
            }

            while total_reads < total_writes {
                let (ret, we) = self.pagemap_ioc(
                    walk_end as *const u8,
                    mem_size - (walk_end - mem as u64) as usize,
                    v,
                    vs,
                    WP,
                    0,
                    PAGE_IS_WRITTEN,
                    0,
                    0,
                    PAGE_IS_WRITTEN,
                );
                walk_end = we;
                self.check(ret);
                if ret as u64 > vs {
                    break;
                }
                total_reads += self.get_reads(&vec, ret as usize);
                // Not upstream: once the walk has reached the end there is nothing
                // left to read, so a kernel that lost writes (or mis-reports walk_end)
                // fails this test instead of spinning forever (upstream's loop never
                // ends there). On a correct kernel the loop has ended by then.
                if walk_end >= mem as u64 + mem_size as u64 {
                    break;
                }
            }

            if total_reads != total_writes {
                break;
            }
            count += 1;
        }
        ksft_test_result(count == TEST_ITERATIONS, "Smaller vec");

        drop(vec);
        self.wp_free(mem, mem_size);
        drop(m);

        // 10. Walk_end tester
        vec_size = 1000;
        mem_size = vec_size * ps;
        let mut vec = regions(vec_size);
        let v = vec.as_mut_ptr();
        let vs = vec_size as u64;

        let m = anon(mem_size, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        fill(mem, 0, 0, mem_size);

        let at = |off: usize| mem as u64 + off as u64;
        let w = PAGE_IS_WRITTEN;
        let ioc = |len: usize, vec_len: u64, flag: u64, max: u64| {
            let (ret, walk_end) = self.pagemap_ioc(mem, len, v, vec_len, flag, max, w, 0, 0, w);
            (self.check(ret), walk_end)
        };

        let (ret, we) = ioc(0, vs, 0, 0);
        ksft_test_result(
            ret == 0 && we == at(0),
            "Walk_end: Same start and end address",
        );
        let (ret, we) = ioc(0, vs, WP, 0);
        ksft_test_result(
            ret == 0 && we == at(0),
            "Walk_end: Same start and end with WP",
        );
        let (ret, we) = ioc(0, 0, WP, 0);
        ksft_test_result(
            ret == 0 && we == at(0),
            "Walk_end: Same start and end with 0 output buffer",
        );
        let (ret, we) = ioc(mem_size, vs, 0, 0);
        ksft_test_result(ret == 1 && we == at(mem_size), "Walk_end: Big vec");
        let (ret, we) = ioc(mem_size, 1, 0, 0);
        ksft_test_result(
            ret == 1 && we == at(mem_size),
            "Walk_end: vec of minimum length",
        );
        let (ret, we) = ioc(mem_size, 1, 0, vs);
        ksft_test_result(
            ret == 1 && we == at(mem_size),
            "Walk_end: Max pages specified",
        );
        let (ret, we) = ioc(mem_size, vs, 0, vs / 2);
        ksft_test_result(
            ret == 1 && we == at(mem_size / 2),
            "Walk_end: Half max pages",
        );
        let (ret, we) = ioc(mem_size, vs, 0, 1);
        ksft_test_result(ret == 1 && we == at(ps), "Walk_end: 1 max page");
        let (ret, we) = ioc(mem_size, vs, 0, MINUS_ONE);
        ksft_test_result(ret == 1 && we == at(mem_size), "Walk_end: max pages");

        self.wp_addr_range(mem, mem_size);
        for i in (0..mem_size).step_by(2 * ps) {
            inc(mem, i);
        }

        let (ret, we) = ioc(mem_size, vs, 0, 0);
        ksft_test_result(
            ret as u64 == vs / 2 && we == at(mem_size),
            "Walk_end sparse: Big vec",
        );
        let (ret, we) = ioc(mem_size, 1, 0, 0);
        ksft_test_result(
            ret == 1 && we == at(ps * 2),
            "Walk_end sparse: vec of minimum length",
        );
        let (ret, we) = ioc(mem_size, 1, 0, vs);
        ksft_test_result(
            ret == 1 && we == at(ps * 2),
            "Walk_end sparse: Max pages specified",
        );
        let (ret, we) = ioc(mem_size, vs / 2, 0, vs);
        ksft_test_result(
            ret as u64 == vs / 2 && we == at(mem_size),
            "Walk_end sparse: Max pages specified",
        );
        let (ret, we) = ioc(mem_size, vs, 0, vs);
        ksft_test_result(
            ret as u64 == vs / 2 && we == at(mem_size),
            "Walk_end sparse: Max pages specified",
        );
        let (ret, we) = ioc(mem_size, vs, 0, vs / 2);
        ksft_test_result(
            ret as u64 == vs / 2 && we == at(mem_size),
            "Walk_endsparse : Half max pages",
        );
        let (ret, we) = ioc(mem_size, vs, 0, 1);
        ksft_test_result(ret == 1 && we == at(ps * 2), "Walk_end: 1 max page");

        drop(vec);
        self.wp_free(mem, mem_size);
        drop(m);
    }

    // -----------------------------------------------------------------------
    // base_tests
    // -----------------------------------------------------------------------

    /// Upstream's `base_tests(prefix, mem, mem_size, skip)`: `mem` is `None` for a
    /// memory kind that could not be allocated (its 6 results are skips).
    fn base_tests(&self, prefix: &str, mem: Option<(*mut u8, usize)>) {
        let Some((mem, mem_size)) = mem else {
            ksft_test_result_skip(format!(
                "{prefix} all new pages must not be written (dirty)"
            ));
            ksft_test_result_skip(format!("{prefix} all pages must be written (dirty)"));
            ksft_test_result_skip(format!(
                "{prefix} all pages dirty other than first and the last one"
            ));
            ksft_test_result_skip(format!(
                "{prefix} PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC"
            ));
            ksft_test_result_skip(format!("{prefix} only middle page dirty"));
            ksft_test_result_skip(format!("{prefix} only two middle pages dirty"));
            return;
        };
        let ps = self.page_size;
        let vec_size = mem_size / ps;
        let mut vec = regions(vec_size);
        let v = vec.as_mut_ptr();
        let w = PAGE_IS_WRITTEN;

        // 1. all new pages must be not be written (dirty)
        let written = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            1,
            WP,
            vec_size as u64 - 2,
            w,
            0,
            0,
            w,
        ));
        ksft_test_result(
            written == 0,
            format!("{prefix} all new pages must not be written (dirty)"),
        );

        // 2. all pages must be written
        fill(mem, 0, 0xff, mem_size);
        let written = self.check(self.pagemap_ioctl(mem, mem_size, v, 1, 0, 0, w, 0, 0, w));
        ksft_test_result(
            written == 1 && self.len(&vec[0]) == (mem_size / ps) as u64,
            format!("{prefix} all pages must be written (dirty)"),
        );

        // 3. all pages dirty other than first and the last one
        self.check(self.pagemap_ioctl(mem, mem_size, v, 1, WP, 0, w, 0, 0, w));
        fill(mem, ps, 0, mem_size - 2 * ps);
        let written = self.check(self.pagemap_ioctl(mem, mem_size, v, 1, WP, 0, w, 0, 0, w));
        let l = self.len(&vec[0]);
        ksft_test_result(
            written == 1 && l >= vec_size as u64 - 2 && l <= vec_size as u64,
            format!("{prefix} all pages dirty other than first and the last one"),
        );

        let written = self.check(self.pagemap_ioctl(mem, mem_size, v, 1, 0, 0, w, 0, 0, w));
        ksft_test_result(
            written == 0,
            format!("{prefix} PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC"),
        );

        // 4. only middle page dirty
        self.check(self.pagemap_ioctl(mem, mem_size, v, 1, WP, 0, w, 0, 0, w));
        inc(mem, vec_size / 2 * ps);
        let written =
            self.check(self.pagemap_ioctl(mem, mem_size, v, vec_size as u64, 0, 0, w, 0, 0, w));
        ksft_test_result(
            written == 1 && self.len(&vec[0]) >= 1,
            format!("{prefix} only middle page dirty"),
        );

        // 5. only two middle pages dirty and walk over only middle pages
        self.check(self.pagemap_ioctl(mem, mem_size, v, 1, WP, 0, w, 0, 0, w | PAGE_IS_HUGE));
        inc(mem, vec_size / 2 * ps);
        inc(mem, (vec_size / 2 + 1) * ps);
        // SAFETY: inside the buffer (vec_size / 2 < vec_size).
        let mid = unsafe { mem.add(vec_size / 2 * ps) };
        let written =
            self.check(self.pagemap_ioctl(mid, 2 * ps, v, 1, 0, 0, w, 0, 0, w | PAGE_IS_HUGE));
        ksft_test_result(
            written == 1 && vec[0].start == mid as u64 && self.len(&vec[0]) == 2,
            format!("{prefix} only two middle pages dirty"),
        );
    }

    // -----------------------------------------------------------------------
    // hpage_unit_tests
    // -----------------------------------------------------------------------

    fn hpage_unit_tests(&self) {
        const F: &str = "hpage_unit_tests";
        let ps = self.page_size;
        let hs = self.hpage_size;
        let num_pages = 10;
        let map_size = hs * num_pages;
        let vec_size = map_size / ps;
        let mut vec = regions(vec_size);
        let v = vec.as_mut_ptr();
        let vs = vec_size as u64;
        let w = PAGE_IS_WRITTEN;
        let free = |p: *mut u8| {
            // SAFETY: p came from memalign in gethugepage.
            unsafe { libc::free(p.cast()) }
        };

        let mut map = self.gethugepage(map_size);
        if !map.is_null() {
            self.wp_init(map, map_size);
            self.wp_addr_range(map, map_size);

            // 1. all new huge page must not be written (dirty)
            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, WP, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 0,
                format!("{F} all new huge page must not be written (dirty)"),
            );

            // 2. all the huge page must not be written
            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, 0, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 0,
                format!("{F} all the huge page must not be written"),
            );

            // 3. all the huge page must be written and clear dirty as well
            fill(map, 0, 0xff, map_size);
            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, WP, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 1
                    && vec[0].start == map as u64
                    && self.len(&vec[0]) == vs
                    && vec[0].categories == w,
                format!("{F} all the huge page must be written and clear"),
            );

            // 4. only middle page written
            self.wp_free(map, map_size);
            free(map);
            map = self.gethugepage(map_size);
            self.wp_init(map, map_size);
            self.wp_addr_range(map, map_size);
            inc(map, vec_size / 2 * ps);

            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, 0, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 1 && self.len(&vec[0]) > 0,
                format!("{F} only middle page written"),
            );

            self.wp_free(map, map_size);
            free(map);
        } else {
            ksft_test_result_skip(format!("{F} all new huge page must be written"));
            ksft_test_result_skip(format!("{F} all the huge page must not be written"));
            ksft_test_result_skip(format!("{F} all the huge page must be written and clear"));
            ksft_test_result_skip(format!("{F} only middle page written"));
        }

        // 5. clear first half of huge page
        let map = self.gethugepage(map_size);
        if !map.is_null() {
            self.wp_init(map, map_size);
            self.wp_addr_range(map, map_size);

            fill(map, 0, 0, map_size);

            self.wp_addr_range(map, map_size / 2);

            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, 0, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 1
                    && self.len(&vec[0]) == vs / 2
                    && vec[0].start == map as u64 + (map_size / 2) as u64,
                format!("{F} clear first half of huge page"),
            );
            self.wp_free(map, map_size);
            free(map);
        } else {
            ksft_test_result_skip(format!("{F} clear first half of huge page"));
        }

        // 6. clear first half of huge page with limited buffer
        let map = self.gethugepage(map_size);
        if !map.is_null() {
            self.wp_init(map, map_size);
            self.wp_addr_range(map, map_size);

            fill(map, 0, 0, map_size);

            self.check(self.pagemap_ioctl(map, map_size, v, vs, WP, vs / 2, w, 0, 0, w));
            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, 0, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 1
                    && self.len(&vec[0]) == vs / 2
                    && vec[0].start == map as u64 + (map_size / 2) as u64,
                format!("{F} clear first half of huge page with limited buffer"),
            );
            self.wp_free(map, map_size);
            free(map);
        } else {
            ksft_test_result_skip(format!(
                "{F} clear first half of huge page with limited buffer"
            ));
        }

        // 7. clear second half of huge page
        let map = self.gethugepage(map_size);
        if !map.is_null() {
            self.wp_init(map, map_size);
            self.wp_addr_range(map, map_size);

            fill(map, 0, 0xff, map_size);

            // SAFETY: inside the buffer.
            let second = unsafe { map.add(map_size / 2) };
            self.check(self.pagemap_ioctl(second, map_size / 2, v, vs, WP, vs / 2, w, 0, 0, w));
            let ret = self.check(self.pagemap_ioctl(map, map_size, v, vs, 0, 0, w, 0, 0, w));
            ksft_test_result(
                ret == 1 && self.len(&vec[0]) == vs / 2,
                format!("{F} clear second half huge page"),
            );
            self.wp_free(map, map_size);
            free(map);
        } else {
            ksft_test_result_skip(format!("{F} clear second half huge page"));
        }

        // 8. get half huge page
        let map = self.gethugepage(map_size);
        if !map.is_null() {
            self.wp_init(map, map_size);
            self.wp_addr_range(map, map_size);

            fill(map, 0, 0xff, map_size);
            // SAFETY: plain libc call.
            unsafe { libc::usleep(100) };

            let half = (hs / (2 * ps)) as u64;
            let ret = self.check(self.pagemap_ioctl(map, map_size, v, 1, WP, half, w, 0, 0, w));
            ksft_test_result(
                ret == 1 && self.len(&vec[0]) == half,
                format!("{F} get half huge page"),
            );

            let ret2 = self.check(self.pagemap_ioctl(map, map_size, v, vs, 0, 0, w, 0, 0, w));
            ksft_test_result(
                ret2 == 1 && self.len(&vec[0]) == ((map_size - hs / 2) / ps) as u64,
                format!("{F} get half huge page"),
            );

            self.wp_free(map, map_size);
            free(map);
        } else {
            ksft_test_result_skip(format!("{F} get half huge page"));
            ksft_test_result_skip(format!("{F} get half huge page"));
        }
    }

    // -----------------------------------------------------------------------
    // unmapped_region_tests, test_simple
    // -----------------------------------------------------------------------

    fn unmapped_region_tests(&self) {
        let start = 0x1000_0000usize as *const u8;
        let len = 0x0004_0000usize;
        let vec_size = len / self.page_size;
        let mut vec = regions(vec_size);

        // 1. Get written pages
        let written = self.check(self.pagemap_ioctl(
            start,
            len,
            vec.as_mut_ptr(),
            vec_size as u64,
            0,
            0,
            PAGEMAP_NON_WRITTEN_BITS,
            0,
            0,
            PAGEMAP_NON_WRITTEN_BITS,
        ));
        ksft_test_result(written >= 0, "unmapped_region_tests Get status of pages");
    }

    fn test_simple(&self) {
        let ps = self.page_size;
        // SAFETY: plain allocation.
        let map = unsafe { libc::aligned_alloc(ps, ps) }.cast::<u8>();
        if map.is_null() {
            bail("aligned_alloc failed");
        }
        let mut vec = page_region::default();
        let v: *mut page_region = &mut vec;
        let w = PAGE_IS_WRITTEN;

        self.wp_init(map, ps);
        self.wp_addr_range(map, ps);

        let mut i = 0;
        while i < TEST_ITERATIONS {
            if self.pagemap_ioctl(map, ps, v, 1, 0, 0, w, 0, 0, w) == 1 {
                ksft_print_msg(format!("written bit was 1, but should be 0 (i={i})"));
                break;
            }

            self.wp_addr_range(map, ps);
            // Write something to the page to get the written bit enabled on the page
            inc(map, 0);

            if self.pagemap_ioctl(map, ps, v, 1, 0, 0, w, 0, 0, w) == 0 {
                ksft_print_msg(format!("written bit was 0, but should be 1 (i={i})"));
                break;
            }

            self.wp_addr_range(map, ps);
            i += 1;
        }
        self.wp_free(map, ps);
        // SAFETY: from aligned_alloc above.
        unsafe { libc::free(map.cast()) };

        ksft_test_result(i == TEST_ITERATIONS, "Test test_simple");
    }

    // -----------------------------------------------------------------------
    // unpopulated_scan_test
    // -----------------------------------------------------------------------

    /*
     * A range that was populated and then MADV_DONTNEED'd is genuine pte_none
     * with no uffd-wp marker. Such a pte must read the same regardless of which
     * PAGEMAP_SCAN path serves the request: both the PAGE_IS_WRITTEN fast path and
     * the generic path (reached e.g. via category_anyof_mask) must report every
     * page written.
     */
    fn unpopulated_scan_test(&self) {
        const F: &str = "unpopulated_scan_test";
        let npages: u64 = 16;
        let mem_size = npages as usize * self.page_size;
        let mut regions = [page_region::default(); 16];
        let w = PAGE_IS_WRITTEN;

        let m = match MapOptions::new(mem_size).map() {
            Ok(m) => m,
            Err(e) => bail(format!("{F} mmap failed: {e}")),
        };
        let mem = m.as_ptr();

        self.wp_init(mem, mem_size);

        /* Populate, then drop: the ptes become pte_none without a marker. */
        fill(mem, 0, 1, mem_size);
        // SAFETY: our own mapping.
        if unsafe { libc::madvise(mem.cast(), mem_size, libc::MADV_DONTNEED) } != 0 {
            bail(format!(
                "{F} MADV_DONTNEED failed: {}",
                std::io::Error::last_os_error()
            ));
        }

        let r = regions.as_mut_ptr();
        /* Fast path: category_mask == return_mask == PAGE_IS_WRITTEN. */
        let ret = self.pagemap_ioctl(mem, mem_size, r, npages, 0, 0, w, 0, 0, w);
        if ret < 0 {
            bail(format!("{F} fast scan failed: {}", self.last_err_text()));
        }
        let fast = self.get_reads(&regions, ret as usize);

        /* Generic path: same query expressed via category_anyof_mask. */
        let ret = self.pagemap_ioctl(mem, mem_size, r, npages, 0, 0, 0, w, 0, w);
        if ret < 0 {
            bail(format!("{F} generic scan failed: {}", self.last_err_text()));
        }
        let slow = self.get_reads(&regions, ret as usize);

        ksft_test_result(
            fast == npages && slow == npages,
            format!(
                "{F} unpopulated ptes reported written by both paths ({fast}, {slow} of {npages})"
            ),
        );

        self.wp_free(mem, mem_size);
        drop(m);
    }

    // -----------------------------------------------------------------------
    // sanity_tests
    // -----------------------------------------------------------------------

    fn sanity_tests(&self) {
        const F: &str = "sanity_tests";
        let ps = self.page_size;
        let w = PAGE_IS_WRITTEN;
        let all = PAGEMAP_BITS_ALL;

        // 1. wrong operation
        let mem_size = 10 * ps;
        let vec_size = mem_size / ps;
        let mut vec = regions(vec_size);
        let v = vec.as_mut_ptr();
        let vs = vec_size as u64;

        let m = anon(mem_size, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, WP, 0, all, 0, 0, all) >= 0,
            format!("{F} WP op can be specified with !PAGE_IS_WRITTEN"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, all, 0, 0, all) >= 0,
            format!("{F} required_mask specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, 0, all, 0, all) >= 0,
            format!("{F} anyof_mask specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, 0, 0, all, all) >= 0,
            format!("{F} excluded_mask specified"),
        );
        ksft_test_result(
            self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, all, all, 0, all) >= 0,
            format!("{F} required_mask and anyof_mask specified"),
        );
        self.wp_free(mem, mem_size);
        drop(m);

        // 2. Get sd and present pages with anyof_mask
        let m = anon(mem_size, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        fill(mem, 0, 0, mem_size);

        let wp = PAGE_IS_WRITTEN | PAGE_IS_PRESENT;
        let whole = |ret: i64, vec: &[page_region]| {
            ret >= 0 && vec[0].start == mem as u64 && self.len(&vec[0]) == vs
        };
        let ret = self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, 0, all, 0, all);
        ksft_test_result(
            whole(ret, &vec) && vec[0].categories & wp == wp,
            format!("{F} Get sd and present pages with anyof_mask"),
        );

        // 3. Get sd and present pages with required_mask
        let ret = self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, all, 0, 0, all);
        ksft_test_result(
            whole(ret, &vec) && vec[0].categories & wp == wp,
            format!("{F} Get all the pages with required_mask"),
        );

        // 4. Get sd and present pages with required_mask and anyof_mask
        let ret = self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, w, PAGE_IS_PRESENT, 0, all);
        ksft_test_result(
            whole(ret, &vec) && vec[0].categories & wp == wp,
            format!("{F} Get sd and present pages with required_mask and anyof_mask"),
        );

        // 5. Don't get sd pages
        let ret = self.pagemap_ioctl(mem, mem_size, v, vs, 0, 0, w, 0, w, all);
        ksft_test_result(ret == 0, format!("{F} Don't get sd pages"));

        // 6. Don't get present pages
        let ret = self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            vs,
            0,
            0,
            PAGE_IS_PRESENT,
            0,
            PAGE_IS_PRESENT,
            all,
        );
        ksft_test_result(ret == 0, format!("{F} Don't get present pages"));

        self.wp_free(mem, mem_size);
        drop(m);

        // 8. Find written present pages with return mask
        let m = anon(mem_size, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, mem_size);
        self.wp_addr_range(mem, mem_size);

        fill(mem, 0, 0, mem_size);

        let ret = self.pagemap_ioctl(mem, mem_size, v, vs, WP, 0, 0, all, 0, w);
        ksft_test_result(
            ret >= 0
                && vec[0].start == mem as u64
                && self.len(&vec[0]) == vs
                && vec[0].categories == w,
            format!("{F} Find written present pages with return mask"),
        );
        self.wp_free(mem, mem_size);
        drop(m);

        // 9. Memory mapped file
        let exe = std::fs::File::open("/proc/self/exe")
            .unwrap_or_else(|e| bail(format!("{F} Memory mapped file: open(/proc/self/exe): {e}")));
        let fd: OwnedFd = exe.into();
        let st_size = fstat_size(&fd, "/proc/self/exe");
        let fm = map_or_bail(
            MapOptions::new(st_size)
                .prot(libc::PROT_READ)
                .file(fd.as_fd(), 0),
        );
        let fmem = fm.as_ptr();

        let nr_pages = st_size.div_ceil(ps);
        force_read_pages(fmem, nr_pages, ps);

        let nw = PAGEMAP_NON_WRITTEN_BITS;
        let ret = self.pagemap_ioctl(fmem, st_size, v, vs, 0, 0, 0, nw, 0, nw);
        ksft_test_result(
            ret >= 0
                && vec[0].start == fmem as u64
                && self.len(&vec[0]) == nr_pages as u64
                && vec[0].categories & PAGE_IS_FILE != 0,
            format!("{F} Memory mapped file"),
        );
        drop(fm);
        drop(fd);

        // 10. Create and read/write to a memory mapped file
        let buf_size = ps * 10;
        let fd = create_c_file(
            &tmp_path("pagemap_ioctl.c.tmp2"),
            0o666,
            buf_size,
            "Read/write to memory",
        );
        let fm = map_or_bail(MapOptions::new(buf_size).file(fd.as_fd(), 0));
        let fmem = fm.as_ptr();

        self.wp_init(fmem, buf_size);
        self.wp_addr_range(fmem, buf_size);

        for i in 0..buf_size {
            // SAFETY: inside our private file mapping.
            unsafe { fmem.add(i).write_volatile(b'z') };
        }
        // SAFETY: our own mapping.
        unsafe { libc::msync(fmem.cast(), buf_size, libc::MS_SYNC) };

        let ret = self.pagemap_ioctl(
            fmem,
            buf_size,
            v,
            vs,
            0,
            0,
            w,
            PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE,
            0,
            all,
        );
        ksft_test_result(
            ret >= 0
                && vec[0].start == fmem as u64
                && self.len(&vec[0]) == (buf_size / ps) as u64
                && vec[0].categories & w != 0,
            format!("{F} Read/write to memory"),
        );

        self.wp_free(fmem, buf_size);
        drop(fm);
        drop(fd);
    }

    // -----------------------------------------------------------------------
    // mprotect_tests
    // -----------------------------------------------------------------------

    fn mprotect_tests(&self) {
        const F: &str = "mprotect_tests";
        let ps = self.page_size;
        let mut vec = page_region::default();
        let v: *mut page_region = &mut vec;
        let w = PAGE_IS_WRITTEN;

        // 1. Map two pages
        let m = anon(2 * ps, RW);
        let mem = m.as_ptr();
        self.wp_init(mem, 2 * ps);
        self.wp_addr_range(mem, 2 * ps);

        // Populate both pages.
        fill(mem, 0, 1, 2 * ps);

        let ret = self.check(self.pagemap_ioctl(mem, 2 * ps, v, 1, 0, 0, w, 0, 0, w));
        ksft_test_result(
            ret == 1 && self.len(&vec) == 2,
            format!("{F} Both pages written"),
        );

        // 2. Start tracking
        self.wp_addr_range(mem, 2 * ps);
        ksft_test_result(
            self.pagemap_ioctl(mem, 2 * ps, v, 1, 0, 0, w, 0, 0, w) == 0,
            format!("{F} Both pages are not written (dirty)"),
        );

        // 3. Remap the second page
        // SAFETY: replaces the second page of our own mapping `m`, which still covers
        // it (and unmaps it on drop).
        let mem2 = unsafe {
            Mapping::map_fixed(
                m.at(ps),
                ps,
                RW,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                None,
                0,
            )
        }
        .unwrap_or_else(|e| bail(format!("error nomem: {e}")))
        .forget()
        .0;
        self.wp_init(mem2, ps);
        self.wp_addr_range(mem2, ps);

        // Protect + unprotect.
        mprotect(mem, ps, libc::PROT_NONE);
        mprotect(mem, 2 * ps, libc::PROT_READ);
        mprotect(mem, 2 * ps, RW);

        // Modify both pages.
        fill(mem, 0, 2, 2 * ps);

        // Protect + unprotect.
        mprotect(mem, ps, libc::PROT_NONE);
        mprotect(mem, ps, libc::PROT_READ);
        mprotect(mem, ps, RW);

        let ret = self.check(self.pagemap_ioctl(mem, 2 * ps, v, 1, 0, 0, w, 0, 0, w));
        ksft_test_result(
            ret == 1 && self.len(&vec) == 2,
            format!("{F} Both pages written after remap and mprotect"),
        );

        // 4. Clear and make the pages written
        self.wp_addr_range(mem, 2 * ps);
        fill(mem, 0, b'A', 2 * ps);

        let ret = self.check(self.pagemap_ioctl(mem, 2 * ps, v, 1, 0, 0, w, 0, 0, w));
        ksft_test_result(
            ret == 1 && self.len(&vec) == 2,
            format!("{F} Clear and make the pages written"),
        );

        self.wp_free(mem, 2 * ps);
        drop(m);
    }

    // -----------------------------------------------------------------------
    // transact_test
    // -----------------------------------------------------------------------

    /// Upstream's `get_dirty_pages_reset()`: the number of written pages among the
    /// first `count` pages of `mem`, write-protecting them again when `reset`.
    fn get_dirty_pages_reset(&self, mem: *mut u8, count: u32, reset: bool) -> u32 {
        let mut rgns = [page_region::default(); 256];
        let mut arg = pm_scan_arg {
            size: std::mem::size_of::<pm_scan_arg>() as u64,
            start: mem as u64,
            max_pages: count as u64,
            end: mem as u64 + count as u64 * self.page_size as u64,
            vec: rgns.as_mut_ptr() as u64,
            vec_len: rgns.len() as u64,
            flags: if reset { WP } else { 0 },
            category_mask: PAGE_IS_WRITTEN,
            return_mask: PAGE_IS_WRITTEN,
            ..Default::default()
        };
        // SAFETY: vec points to rgns (vec_len entries).
        let ret = match unsafe { self.pagemap.scan_raw(&mut arg) } {
            Ok(n) => n,
            Err(e) => bail(format!("ioctl failed: {e}")),
        };
        let mut cnt = 0;
        for r in &rgns[..ret.min(rgns.len())] {
            if r.categories != PAGE_IS_WRITTEN {
                bail(format!("wrong flags: {:#x}", r.categories));
            }
            cnt += self.len(r) as u32;
        }
        cnt
    }

    fn transact_test(&self) {
        const F: &str = "transact_test";
        let ps = self.page_size;
        let len = ps * NTHREADS as usize * PAGES_PER_THREAD as usize;
        let npages = NTHREADS * PAGES_PER_THREAD;
        let expected = NTHREADS * ACCESS_PER_THREAD;

        let start_barrier = PthreadBarrier::new(NTHREADS + 1);
        let end_barrier = PthreadBarrier::new(NTHREADS + 1);

        // Left mapped until exit: the threads may still be blocked on a barrier
        // when a failure ends the test early, as upstream leaves them.
        let mem = anon(len, RW).forget().0;

        self.wp_init(mem, len);
        self.wp_addr_range(mem, len);

        fill(mem, 0, 0, len);

        let count = self.get_dirty_pages_reset(mem, npages, true);
        ksft_test_result(count > 0, format!("{F} count {count}"));
        let count = self.get_dirty_pages_reset(mem, npages, true);
        ksft_test_result(count == 0, format!("{F} count {count}"));

        FINISH.store(false, Ordering::SeqCst);
        for i in 0..NTHREADS as usize {
            let addr = mem as usize + ps * i * PAGES_PER_THREAD as usize;
            let spawned = std::thread::Builder::new()
                .name(format!("transact{i}"))
                .spawn(move || thread_proc(addr, ps, start_barrier, end_barrier));
            if let Err(e) = spawned {
                bail(format!("pthread_create failed: {e}"));
            }
        }

        let mut extra_pages: u32 = 0;
        for i in 0..ITER_COUNT {
            start_barrier.wait();
            let mut count = self.get_dirty_pages_reset(mem, npages, true);
            end_barrier.wait();

            if count > expected {
                bail(format!(
                    "Too big count {count} expected {expected}, iter {i}"
                ));
            }

            let c = self.get_dirty_pages_reset(mem, npages, true);
            count += c;

            if c > expected {
                ksft_test_result_fail(format!(" {F} count > nthreads"));
                return;
            }

            if count != expected {
                // As upstream explains: a page may be reported on two consecutive
                // read-resets (the fault that sets the written state and the
                // application's repeated write can straddle a reset), but an update
                // must never be lost.
                if count < expected {
                    ksft_test_result_fail(format!("Lost update, iter {i}, {count} vs {expected}."));
                    return;
                }
                extra_pages += count - expected;
            }
        }

        start_barrier.wait();
        FINISH.store(true, Ordering::SeqCst);
        end_barrier.wait();

        ksft_test_result_pass(format!(
            "{F} Extra pages {extra_pages} ({:.1}%), extra thread faults {}.",
            100.0 * extra_pages as f64 / (ITER_COUNT * NTHREADS * ACCESS_PER_THREAD) as f64,
            EXTRA_THREAD_FAULTS.load(Ordering::SeqCst)
        ));
    }

    // -----------------------------------------------------------------------
    // zeropfn_tests
    // -----------------------------------------------------------------------

    fn zeropfn_tests(&self) {
        const F: &str = "zeropfn_tests";
        let ps = self.page_size;
        let hs = self.hpage_size;
        let mut vec = page_region::default();
        let v: *mut page_region = &mut vec;
        let z = PAGE_IS_PFNZERO;

        // Test with normal memory
        let mem_size = 10 * ps;
        let m = anon(mem_size, libc::PROT_READ);
        let mem = m.as_ptr();

        // Touch each page to ensure it's mapped
        for i in (0..mem_size).step_by(ps) {
            force_read(mem, i);
        }

        let ret = self.check(self.pagemap_ioctl(
            mem,
            mem_size,
            v,
            1,
            0,
            (mem_size / ps) as u64,
            z,
            0,
            0,
            z,
        ));
        ksft_test_result(
            ret == 1 && self.len(&vec) == (mem_size / ps) as u64,
            format!("{F} all pages must have PFNZERO set"),
        );
        drop(m);

        // Test with huge page if user_zero_page is set to 1
        if !detect_huge_zeropage() {
            ksft_test_result_skip(format!("{F} use_zero_page not supported or set to 1"));
            return;
        }

        let mem_size = 2 * hs;
        let mm = anon(mem_size, RW);

        // We need a THP-aligned memory area.
        let mem = ((mm.addr() + hs) & !(hs.wrapping_sub(1))) as *mut u8;

        // SAFETY: inside our own mapping.
        if unsafe { libc::madvise(mem.cast(), hs, libc::MADV_HUGEPAGE) } == 0 {
            force_read(mem, 0);

            let ret = self.check(self.pagemap_ioctl(mem, hs, v, 1, 0, 0, z, 0, 0, z));
            ksft_test_result(
                ret == 1 && self.len(&vec) == (hs / ps) as u64,
                format!("{F} all huge pages must have PFNZERO set"),
            );
        } else {
            ksft_test_result_skip(format!("{F} huge page not supported"));
        }
        drop(mm);
    }
}

// transact test

/// A `pthread_barrier_t` (upstream's `start_barrier`/`end_barrier`): waiters sleep on
/// one futex and nobody re-takes a mutex on wake-up, as in the C test. Leaked, like
/// upstream's statics, because threads may stay blocked on it when the test fails.
struct PthreadBarrier(UnsafeCell<libc::pthread_barrier_t>);

// SAFETY: pthread barriers are made to be shared between threads.
unsafe impl Sync for PthreadBarrier {}

impl PthreadBarrier {
    fn new(count: u32) -> &'static PthreadBarrier {
        // SAFETY: an all-zero pthread_barrier_t is a valid argument of _init.
        let b: &'static PthreadBarrier =
            Box::leak(Box::new(PthreadBarrier(UnsafeCell::new(unsafe {
                std::mem::zeroed()
            }))));
        // SAFETY: the barrier lives forever and is initialized once, before any wait.
        let r = unsafe { libc::pthread_barrier_init(b.0.get(), std::ptr::null(), count) };
        if r != 0 {
            bail(format!(
                "pthread_barrier_init(count={count}) failed: {}",
                std::io::Error::from_raw_os_error(r)
            ));
        }
        b
    }

    fn wait(&self) {
        // SAFETY: initialized in new() and never destroyed.
        let r = unsafe { libc::pthread_barrier_wait(self.0.get()) };
        if r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD {
            bail(format!(
                "pthread_barrier_wait failed: {}",
                std::io::Error::from_raw_os_error(r)
            ));
        }
    }
}

/// glibc's `PTHREAD_BARRIER_SERIAL_THREAD`.
const PTHREAD_BARRIER_SERIAL_THREAD: i32 = -1;

const NTHREADS: u32 = 6;
const PAGES_PER_THREAD: u32 = 32;
const ACCESS_PER_THREAD: u32 = 8;
const ITER_COUNT: u32 = 1000;
static EXTRA_THREAD_FAULTS: AtomicU32 = AtomicU32::new(0);
static FINISH: AtomicBool = AtomicBool::new(false);

fn thread_minflt() -> i64 {
    // SAFETY: rusage is plain data filled by the kernel.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid buffer.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) } != 0 {
        bail(format!(
            "getrusage(RUSAGE_THREAD) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    r.ru_minflt
}

/// Upstream's `thread_proc()`: per round, increment the first int of
/// `ACCESS_PER_THREAD` pages between the two barriers and account the page faults
/// beyond one per access.
fn thread_proc(mem: usize, page_size: usize, start: &PthreadBarrier, end: &PthreadBarrier) {
    let mut curr_faults = thread_minflt();
    while !FINISH.load(Ordering::SeqCst) {
        start.wait();
        for i in 0..ACCESS_PER_THREAD as usize {
            // SAFETY: an aligned int inside the thread's pages of the transact
            // mapping, which is never unmapped.
            let m = unsafe { &*((mem + i * page_size) as *const AtomicI32) };
            m.fetch_add(1, Ordering::SeqCst);
        }
        end.wait();

        let now = thread_minflt();
        let faults = now - curr_faults;
        if faults < ACCESS_PER_THREAD as i64 {
            bail("faults < access_per_thread");
        }
        EXTRA_THREAD_FAULTS.fetch_add((faults - ACCESS_PER_THREAD as i64) as u32, Ordering::SeqCst);
        curr_faults = now;
    }
}

/// vm_util's `detect_huge_zeropage()`: THP's `use_zero_page` reads 1.
fn detect_huge_zeropage() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/use_zero_page")
        .ok()
        .filter(|s| !s.is_empty() && s.len() < 15)
        .is_some_and(|s| strtoul(&s) == 1)
}

/// C's `strtoul(s, NULL, 10)`: leading blanks, then the leading digits (0 if none).
fn strtoul(s: &str) -> u64 {
    let t = s.trim_start();
    let digits: &str = &t[..t.bytes().take_while(u8::is_ascii_digit).count()];
    digits.parse().unwrap_or(0)
}

/// hugepage_settings.c's `read_num()`, which bails out on a file it cannot read.
fn read_num(path: &str) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.is_empty() => strtoul(&s),
        Ok(_) => bail(format!("read_file(): {path} is empty")),
        Err(e) => bail(format!("read_file(): {path}: {e}")),
    }
}

fn hugetlb_sysfs_path(size: u64, attr: &str) -> String {
    format!(
        "/sys/kernel/mm/hugepages/hugepages-{}kB/{attr}",
        size / 1024
    )
}

/// hugepage_settings.c's `hugetlb_setup_default(nr)`: true when `nr` hugetlb pages
/// of the default size are free. Like upstream it first lists the sizes (one
/// `# [INFO]` line each) and reads every pool; it raises the pool only with
/// `allow_write` (`--hugetlb-setup`), restoring it at exit.
fn hugetlb_setup_default(nr: u64, allow_write: bool) -> bool {
    let Some(size) = probe::default_huge_page_size() else {
        return false;
    };
    // __hugetlb_save_settings(): detect_hugetlb_page_sizes() and every pool size.
    let mut saved_default = None;
    if let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/hugepages/") {
        let mut count = 0;
        for entry in dir.flatten() {
            if count == 10 {
                break;
            }
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("hugepages-")) else {
                continue;
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(kb) = rest[..digits].parse::<u64>() else {
                continue;
            };
            count += 1;
            ksft_print_msg(format!("[INFO] detected hugetlb page size: {kb} KiB"));
            let nr_pages = read_num(&hugetlb_sysfs_path(kb * 1024, "nr_hugepages"));
            if kb * 1024 == size {
                saved_default = Some(nr_pages);
            }
        }
    }
    // __hugetlb_setup()
    let free_path = hugetlb_sysfs_path(size, "free_hugepages");
    let nr_path = hugetlb_sysfs_path(size, "nr_hugepages");
    let free = read_num(&free_path);
    let total = read_num(&nr_path);
    if free >= nr {
        return true;
    }
    if !allow_write {
        return false;
    }
    {
        let mut c = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
        if c.hugetlb_restore.is_none() {
            c.hugetlb_restore = Some((nr_path.clone(), saved_default.unwrap_or(total)));
        }
    }
    let want = total + (nr - free);
    if let Err(e) = std::fs::write(&nr_path, want.to_string()) {
        bail(format!("{nr_path} write({want}) failed: {e}"));
    }
    read_num(&free_path) >= nr
}

fn usage() -> ! {
    eprintln!(
        "usage: pagemap_ioctl [--hugetlb-setup]\n  --hugetlb-setup  raise the default-size \
         hugetlb pool to 4 free pages if needed (restored at exit), as upstream does"
    );
    std::process::exit(2)
}

fn main() {
    let mut hugetlb_setup = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--hugetlb-setup" => hugetlb_setup = true,
            _ => usage(),
        }
    }

    ksft_print_header();

    let uffd = match Userfaultfd::wp_async() {
        Ok(u) => u,
        Err(e) => ksft_exit_skip(format!("Failed to initialize userfaultfd: {e}")),
    };

    // Not upstream: probe the ioctl as well (see the top of the file).
    let pagemap =
        Pagemap::open().unwrap_or_else(|e| bail(format!("Failed to open /proc/self/pagemap: {e}")));
    match probe::pagemap_scan_supported(&pagemap) {
        Ok(true) => {}
        Ok(false) => ksft_exit_skip(
            "PAGEMAP_SCAN ioctl not supported (ENOTTY; added in 6.7) although userfaultfd has \
             UFFD_FEATURE_WP_ASYNC",
        ),
        Err(e) => bail(format!("PAGEMAP_SCAN probe failed: {e}")),
    }

    if !hugetlb_setup_default(4, hugetlb_setup) {
        ksft_print_msg("HugeTLB test will be skipped");
    }

    ksft_set_plan(PLAN);

    let page_size = mem::page_size();
    let hpage_size = probe::read_pmd_pagesize().unwrap_or(0) as usize;

    let c = Ctx {
        pagemap,
        uffd,
        page_size,
        hpage_size,
        last_err: RefCell::new(None),
    };
    let ps = page_size;

    // 1. Sanity testing
    c.sanity_tests_sd();

    // 2. Normal page testing
    let mem_size = 10 * ps;
    let m = anon(mem_size, RW);
    c.wp_init(m.as_ptr(), mem_size);
    c.wp_addr_range(m.as_ptr(), mem_size);
    c.base_tests("Page testing:", Some((m.as_ptr(), mem_size)));
    c.wp_free(m.as_ptr(), mem_size);
    drop(m);

    // 3. Large page testing
    let mem_size = 512 * 10 * ps;
    let m = anon(mem_size, RW);
    c.wp_init(m.as_ptr(), mem_size);
    c.wp_addr_range(m.as_ptr(), mem_size);
    c.base_tests("Large Page testing:", Some((m.as_ptr(), mem_size)));
    c.wp_free(m.as_ptr(), mem_size);
    drop(m);

    // 4. Huge page testing
    let map = c.gethugepage(hpage_size);
    if !map.is_null() {
        c.wp_init(map, hpage_size);
        c.wp_addr_range(map, hpage_size);
        c.base_tests("Huge page testing:", Some((map, hpage_size)));
        c.wp_free(map, hpage_size);
        // SAFETY: from memalign in gethugepage.
        unsafe { libc::free(map.cast()) };
    } else {
        c.base_tests("Huge page testing:", None);
    }

    // 5. SHM Hugetlb page testing
    let mem_size = probe::default_huge_page_size().unwrap_or(0) as usize;
    let mut shmid = -1;
    match SysvShm::create(2, mem_size, libc::SHM_HUGETLB) {
        Ok(shm) => {
            shmid = shm.id();
            c.wp_init(shm.as_ptr(), mem_size);
            c.wp_addr_range(shm.as_ptr(), mem_size);
            c.base_tests("Hugetlb shmem testing:", Some((shm.as_ptr(), mem_size)));
            c.wp_free(shm.as_ptr(), mem_size);
            // Removed while still attached, as upstream does.
            // SAFETY: plain syscall on our segment.
            unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
            std::mem::forget(shm);
        }
        Err(e @ mm::Error::Sys { call: "shmat", .. }) => {
            bail(format!("Shared memory attach failure: {e}"))
        }
        Err(_) => c.base_tests("Hugetlb shmem testing:", None),
    }

    // 6. Hugetlb page testing
    match MapOptions::new(mem_size).add_flags(libc::MAP_HUGETLB).map() {
        Ok(m) => {
            c.wp_init(m.as_ptr(), mem_size);
            c.wp_addr_range(m.as_ptr(), mem_size);
            c.base_tests("Hugetlb mem testing:", Some((m.as_ptr(), mem_size)));
            c.wp_free(m.as_ptr(), mem_size);
            // Upstream never unmaps it.
            m.forget();
        }
        Err(_) => c.base_tests("Hugetlb mem testing:", None),
    }

    // 7. File Hugetlb testing
    let mem_size = probe::default_huge_page_size().unwrap_or(0) as usize;
    let fd = memfd_noexec("uffd-test", libc::MFD_HUGETLB)
        .unwrap_or_else(|e| bail(format!("uffd-test creation failed: {e}")));
    match MapOptions::new(mem_size).shared().file(fd.as_fd(), 0).map() {
        Ok(m) => {
            c.wp_init(m.as_ptr(), mem_size);
            c.wp_addr_range(m.as_ptr(), mem_size);
            c.base_tests("Hugetlb shmem testing:", Some((m.as_ptr(), mem_size)));
            c.wp_free(m.as_ptr(), mem_size);
            // Upstream repeats the (stale) SysV removal here and never unmaps.
            // SAFETY: plain syscall; fails harmlessly on a removed or invalid id.
            unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
            m.forget();
        }
        Err(_) => c.base_tests("Hugetlb shmem testing:", None),
    }
    drop(fd);

    // 8. File memory testing
    let buf_size = ps * 10;
    let fd = create_c_file(
        &tmp_path("pagemap_ioctl.c.tmp0"),
        0o777,
        buf_size,
        "Create and read/write to a memory mapped file",
    );
    let st_size = fstat_size(&fd, "pagemap_ioctl.c.tmp0");
    let fm = map_or_bail(MapOptions::new(st_size).file(fd.as_fd(), 0));
    c.wp_init(fm.as_ptr(), st_size);
    c.wp_addr_range(fm.as_ptr(), st_size);
    c.base_tests("File memory testing:", Some((fm.as_ptr(), st_size)));
    c.wp_free(fm.as_ptr(), st_size);
    drop(fm);
    drop(fd);

    // 9. File memory testing
    let buf_size = ps * 10;
    let fd = memfd_noexec("pagemap_ioctl.c.tmp00", 0).unwrap_or_else(|e| {
        bail(format!(
            "Create and read/write to a memory mapped file: {e}"
        ))
    });
    if let Err(e) = mem::ftruncate(fd.as_fd(), buf_size as u64) {
        bail(format!("Error ftruncate: {e}"));
    }
    write_c(&fd, buf_size);
    let fm = map_or_bail(MapOptions::new(buf_size).file(fd.as_fd(), 0));
    c.wp_init(fm.as_ptr(), buf_size);
    c.wp_addr_range(fm.as_ptr(), buf_size);
    c.base_tests(
        "File anonymous memory testing:",
        Some((fm.as_ptr(), buf_size)),
    );
    c.wp_free(fm.as_ptr(), buf_size);
    drop(fm);
    drop(fd);

    // 10. Huge page tests
    c.hpage_unit_tests();

    // 11. Iterative test
    c.test_simple();

    // 12. Mprotect test
    c.mprotect_tests();

    // 13. Transact test
    c.transact_test();

    // 14. Sanity testing
    c.sanity_tests();

    // 15. Unmapped address test
    c.unmapped_region_tests();

    // 16. Userfaultfd tests
    c.userfaultfd_tests();

    // 17. ZEROPFN tests
    c.zeropfn_tests();

    // 18. Unpopulated pte scan-path consistency
    c.unpopulated_scan_test();

    drop(c);
    cleanup();
    ksft_finished();
}

/// `memfd_create(name, flags | MFD_NOEXEC_SEAL)` as upstream calls it, falling back
/// to `flags` alone on a kernel older than 6.3 (EINVAL: no MFD_NOEXEC_SEAL), such as
/// a 6.1 kernel with the PAGEMAP_SCAN backport. The seal only keeps 6.3+ kernels
/// from warning about executable memfds; it has no part in what is tested.
fn memfd_noexec(name: &str, flags: u32) -> mm::Result<std::os::fd::OwnedFd> {
    match mem::memfd_create(name, flags | libc::MFD_NOEXEC_SEAL) {
        Err(e) if e.errno() == Some(libc::EINVAL) => {
            ksft_print_msg(format_args!(
                "memfd_create({name}): MFD_NOEXEC_SEAL not supported (added in 6.3), retrying without it"
            ));
            mem::memfd_create(name, flags)
        }
        r => r,
    }
}
