//! The five ways of finding the pages written since the last reset, each behind
//! [`Watch`]: arm a populated range, let the caller write pages, then
//! [`Watch::round`] = "report which pages were written, and reset".
//!
//! Every watched range is anonymous, populated before arming, and `MADV_NOHUGEPAGE`:
//! soft-dirty reports a whole PMD for a THP (REFERENCE.md, "The seeds' benchmark"),
//! which would make the exact answer the round is checked against impossible.

use mm::mem::{page_size, Mapping};
use mm::pagemap::Pagemap;
use mm::probe;
use mm::scan::{Categories, ScanArgs, ScanFlags};
use mm::uapi;
use mm::uffd::{UffdBuilder, Userfaultfd};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

/// An approach of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approach {
    /// PAGEMAP_SCAN over userfaultfd WP-async, `PAGE_IS_WRITTEN` with
    /// `PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC`: find and re-protect in one call
    /// (Wine's GetWriteWatch).
    ScanWpAsync,
    /// Soft-dirty: read `/proc/self/pagemap` (bit 55), then `clear_refs` 4 (CRIU).
    SoftDirtyPagemap,
    /// Soft-dirty found with PAGEMAP_SCAN `PAGE_IS_SOFT_DIRTY`, reset with `clear_refs` 4.
    ScanSoftDirty,
    /// The range read-only; a SIGSEGV handler marks the page in a byte array and makes
    /// it writable; the round scans the array and mprotects the range read-only again.
    MprotectSigsegv,
    /// Synchronous userfaultfd WP: a handler thread marks the page and un-protects it;
    /// the round scans the array and write-protects the range again.
    UffdWpSync,
}

/// Is an approach usable on this kernel?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Present,
    /// Absent, with the reason a probe established.
    Absent(String),
}

impl Approach {
    pub const ALL: [Approach; 5] = [
        Approach::ScanWpAsync,
        Approach::SoftDirtyPagemap,
        Approach::ScanSoftDirty,
        Approach::MprotectSigsegv,
        Approach::UffdWpSync,
    ];

    /// The stable name used in the JSON and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Approach::ScanWpAsync => "pagemap_scan_wp_async",
            Approach::SoftDirtyPagemap => "soft_dirty_pagemap",
            Approach::ScanSoftDirty => "pagemap_scan_soft_dirty",
            Approach::MprotectSigsegv => "mprotect_sigsegv",
            Approach::UffdWpSync => "uffd_wp_sync",
        }
    }

    /// The row label of the report.
    pub fn label(self) -> &'static str {
        match self {
            Approach::ScanWpAsync => "PAGEMAP_SCAN WP_MATCHING over uffd WP-async",
            Approach::SoftDirtyPagemap => "soft-dirty: clear_refs 4 + pagemap read",
            Approach::ScanSoftDirty => "soft-dirty: clear_refs 4 + PAGEMAP_SCAN",
            Approach::MprotectSigsegv => "mprotect + SIGSEGV",
            Approach::UffdWpSync => "userfaultfd WP, handler thread",
        }
    }

    pub fn from_id(id: &str) -> Option<Approach> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Does the kernel have what this approach needs? `Err` when the probe itself
    /// failed in a way that is not "the kernel lacks it".
    pub fn probe(self) -> Result<Probe, String> {
        match self {
            Approach::ScanWpAsync => {
                if let Some(r) = no_pagemap_scan()? {
                    return Ok(Probe::Absent(r));
                }
                match Userfaultfd::wp_async_anon() {
                    Ok(_) => Ok(Probe::Present),
                    Err(e) if e.is_unsupported() => Ok(Probe::Absent(format!(
                        "{e} (UFFD_FEATURE_WP_ASYNC came in 6.7)"
                    ))),
                    Err(e) => Err(e.to_string()),
                }
            }
            Approach::SoftDirtyPagemap => {
                Ok(match probe::softdirty_unsupported_reason().map_err(s)? {
                    Some(r) => Probe::Absent(r),
                    None => Probe::Present,
                })
            }
            Approach::ScanSoftDirty => {
                if let Some(r) = probe::softdirty_unsupported_reason().map_err(s)? {
                    return Ok(Probe::Absent(r));
                }
                if let Some(r) = no_pagemap_scan()? {
                    return Ok(Probe::Absent(r));
                }
                let pm = Pagemap::open().map_err(s)?;
                if probe::scan_has_soft_dirty(&pm).map_err(s)? {
                    Ok(Probe::Present)
                } else {
                    Ok(Probe::Absent(
                        "PAGEMAP_SCAN rejects PAGE_IS_SOFT_DIRTY in return_mask (EINVAL): \
                         the category came in 6.8"
                            .into(),
                    ))
                }
            }
            Approach::MprotectSigsegv => Ok(Probe::Present),
            Approach::UffdWpSync => {
                let uffd = match UffdBuilder::new().create() {
                    Ok(u) => u,
                    Err(e) if e.is_unsupported() => return Ok(Probe::Absent(e.to_string())),
                    Err(e) => return Err(e.to_string()),
                };
                let m = Mapping::anon(page_size()).map_err(s)?;
                m.write(0, 1);
                match uffd.register_wp(m.addr(), m.len()) {
                    Ok(_) => Ok(Probe::Present),
                    Err(e) if e.is_unsupported() => Ok(Probe::Absent(e.to_string())),
                    Err(e) if e.errno() == Some(libc::EINVAL) => Ok(Probe::Absent(format!(
                        "{e}: no userfaultfd write-protect for anonymous memory (5.7+)"
                    ))),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    /// Maps `pages` populated pages and starts watching them (nothing written yet).
    /// A helper thread (the uffd handler) stays on the caller's CPU, pinned like it:
    /// every thread of the process on one CPU, so a round's TLB flush (mprotect,
    /// UFFDIO_WRITEPROTECT) needs no IPI to another CPU, whose cost depends on what
    /// else that CPU runs (on a loaded 2-CPU VM it made round times bimodal).
    pub fn arm(self, pages: usize) -> Result<Box<dyn Watch>, String> {
        self.arm_with(pages, false)
    }

    /// [`Approach::arm`], with the helper thread free to run on any CPU (`unpinned`):
    /// for the fault cells, whose writers run on every CPU.
    pub fn arm_with(self, pages: usize, unpinned: bool) -> Result<Box<dyn Watch>, String> {
        let m = watched_mapping(pages)?;
        Ok(match self {
            Approach::ScanWpAsync => Box::new(ScanWp::arm(m)?),
            Approach::SoftDirtyPagemap => Box::new(SoftDirty::arm(m, false)?),
            Approach::ScanSoftDirty => Box::new(SoftDirty::arm(m, true)?),
            Approach::MprotectSigsegv => Box::new(Mprotect::arm(m)?),
            Approach::UffdWpSync => Box::new(UffdSync::arm(m, unpinned)?),
        })
    }
}

fn s(e: mm::Error) -> String {
    e.to_string()
}

fn no_pagemap_scan() -> Result<Option<String>, String> {
    let pm = Pagemap::open().map_err(s)?;
    Ok(if probe::pagemap_scan_supported(&pm).map_err(s)? {
        None
    } else {
        Some("ioctl(PAGEMAP_SCAN) on /proc/self/pagemap answered ENOTTY: it came in 6.7".into())
    })
}

/// A watched range.
pub trait Watch {
    /// Address of page 0.
    fn base(&self) -> usize;
    /// Appends the indices of the pages written since the last round to `out`
    /// (cleared first), ascending, and resets the watch.
    fn round(&mut self, out: &mut Vec<usize>) -> Result<(), String>;
}

/// Writes `value` to page `index` of the range at `base` (a volatile store: the
/// write the watch must see).
#[inline]
pub fn write_page(base: usize, index: usize, value: u8) {
    let p = (base + index * page_size()) as *mut u8;
    // SAFETY: callers pass the base and an index of a live watched mapping.
    unsafe { p.write_volatile(value) }
}

/// An anonymous mapping of `pages`, without THP, every page written once.
fn watched_mapping(pages: usize) -> Result<Mapping, String> {
    let m = Mapping::anon(pages * page_size()).map_err(s)?;
    if let Err(e) = m.advise(0, m.len(), libc::MADV_NOHUGEPAGE) {
        // Without THP there is nothing to turn off (and tinyconfig may lack madvise).
        if probe::read_pmd_pagesize().is_some() {
            return Err(e.to_string());
        }
    }
    m.touch_pages(0, m.len(), 1);
    Ok(m)
}

fn push_region(out: &mut Vec<usize>, base: usize, start: u64, end: u64) {
    let ps = page_size() as u64;
    let (a, b) = ((start - base as u64) / ps, (end - base as u64) / ps);
    out.extend(a as usize..b as usize);
}

thread_local! {
    /// The first [`WalkEndAnomaly`] seen on this thread since the last
    /// [`take_walk_end_anomaly`], and how many calls showed one.
    static WALK_END_ANOMALY: std::cell::RefCell<(usize, Option<String>)> =
        const { std::cell::RefCell::new((0, None)) };
}

/// How many PAGEMAP_SCAN calls on this thread returned regions past their own
/// walk_end since the last call of this function, and what the first one looked like.
pub fn take_walk_end_anomaly() -> (usize, Option<String>) {
    WALK_END_ANOMALY.with(|a| std::mem::take(&mut *a.borrow_mut()))
}

/// PAGEMAP_SCAN over `args` into `vec`, resuming at `walk_end` while the kernel
/// stopped early.
///
/// When the walk is done. The uapi (include/uapi/linux/fs.h) says `walk_end == end`
/// means the scan completed. But do_pagemap_scan() (fs/proc/task_mmu.c, 6.7 to at
/// least 7.2.13, and the 6.1 backport) sets `walk_end` only when a walk stops with
/// -ENOSPC, and that includes its own bounce buffer (512 regions) filling up, after
/// which it flushes and walks on; when a later walk finishes, the stale `walk_end` of
/// the refill is what userspace gets: with more than 512 regions the call returns every
/// region up to `end` and a `walk_end` before the last ones. Resuming there (as this
/// function did) reports those pages twice for soft-dirty, and re-walks them for
/// WP_MATCHING. The kernel's loop ends early only when the user's vec is full or
/// `max_pages` is reached (else it walks to `end` or fails); `vec` holds one region
/// per page and `max_pages` is 0, so a call that returned fewer regions than `vec`
/// holds walked to `end`, whatever `walk_end` says. Such a call with regions past its
/// `walk_end` is counted (see [`take_walk_end_anomaly`]) for the report; the
/// regressions suite's `walk_end_after_bounce_buffer_refill` fails on it.
fn scan_pages(
    pm: &Pagemap,
    args: &ScanArgs,
    vec: &mut [uapi::page_region],
    base: usize,
    out: &mut Vec<usize>,
) -> Result<(), String> {
    out.clear();
    let mut a = args.clone();
    let mut prev_end = 0u64;
    for call in 1.. {
        let (n, walk_end) = pm.scan_into(&a, vec).map_err(s)?;
        for (i, r) in vec[..n].iter().enumerate() {
            // Regions come in address order and do not overlap: anything else would
            // count a page twice. Say exactly where, for the report.
            if r.start < prev_end || r.end <= r.start || r.start < a.start || r.end > a.end {
                return Err(format!(
                    "PAGEMAP_SCAN call {call} (start={:#x}, end={:#x}) returned region {i} of \
                     {n} = [{:#x}, {:#x}) after a region ending at {prev_end:#x} \
                     (walk_end={walk_end:#x}): out of order or overlapping",
                    a.start, a.end, r.start, r.end
                ));
            }
            prev_end = r.end;
            push_region(out, base, r.start, r.end);
        }
        if walk_end >= a.end {
            return Ok(());
        }
        if n < vec.len() && a.max_pages == 0 {
            // Walked to `end` (see above); a walk_end below the last region is the
            // kernel's stale value.
            if prev_end > walk_end {
                WALK_END_ANOMALY.with(|x| {
                    let mut x = x.borrow_mut();
                    x.0 += 1;
                    x.1.get_or_insert_with(|| {
                        format!(
                            "PAGEMAP_SCAN over [{:#x}, {:#x}) returned {n} regions up to \
                             {prev_end:#x} but walk_end={walk_end:#x} (the stale walk_end of \
                             a bounce-buffer refill; the walk had completed)",
                            a.start, a.end
                        )
                    });
                });
            }
            return Ok(());
        }
        if walk_end <= a.start {
            return Err(format!(
                "PAGEMAP_SCAN walk did not advance (start={:#x}, walk_end={walk_end:#x})",
                a.start
            ));
        }
        a.start = walk_end;
    }
    unreachable!("the loop returns")
}

// ---------------------------------------------------------------------------

struct ScanWp {
    m: Mapping,
    _uffd: Userfaultfd,
    pm: Pagemap,
    args: ScanArgs,
    vec: Vec<uapi::page_region>,
}

impl ScanWp {
    fn arm(m: Mapping) -> Result<ScanWp, String> {
        let uffd = Userfaultfd::wp_async_anon().map_err(s)?;
        uffd.wp_init(m.addr(), m.len()).map_err(s)?;
        let args = ScanArgs::new(m.addr(), m.len())
            .flags(ScanFlags::WP_MATCHING | ScanFlags::CHECK_WPASYNC)
            .required(Categories::WRITTEN)
            .return_mask(Categories::WRITTEN);
        Ok(ScanWp {
            vec: vec![uapi::page_region::default(); m.pages()],
            m,
            _uffd: uffd,
            pm: Pagemap::open().map_err(s)?,
            args,
        })
    }
}

impl Watch for ScanWp {
    fn base(&self) -> usize {
        self.m.addr()
    }
    fn round(&mut self, out: &mut Vec<usize>) -> Result<(), String> {
        scan_pages(&self.pm, &self.args, &mut self.vec, self.m.addr(), out)
    }
}

// ---------------------------------------------------------------------------

struct SoftDirty {
    m: Mapping,
    pm: Pagemap,
    clear_refs: File,
    /// `Some`: find with PAGEMAP_SCAN; `None`: read the pagemap file.
    scan: Option<(ScanArgs, Vec<uapi::page_region>)>,
    entries: Vec<u64>,
}

const CLEAR_REFS: &str = "/proc/self/clear_refs";

impl SoftDirty {
    fn arm(m: Mapping, via_scan: bool) -> Result<SoftDirty, String> {
        let clear_refs = std::fs::OpenOptions::new()
            .write(true)
            .open(CLEAR_REFS)
            .map_err(|e| format!("open({CLEAR_REFS}, O_WRONLY): {e}"))?;
        let scan = via_scan.then(|| {
            (
                ScanArgs::new(m.addr(), m.len())
                    .required(Categories::SOFT_DIRTY)
                    .return_mask(Categories::SOFT_DIRTY),
                vec![uapi::page_region::default(); m.pages()],
            )
        });
        let mut w = SoftDirty {
            entries: vec![0; m.pages()],
            m,
            pm: Pagemap::open().map_err(s)?,
            clear_refs,
            scan,
        };
        w.clear()?;
        Ok(w)
    }

    fn clear(&mut self) -> Result<(), String> {
        self.clear_refs
            .write_all(b"4")
            .map_err(|e| format!("write({CLEAR_REFS}, \"4\"): {e}"))
    }
}

impl Watch for SoftDirty {
    fn base(&self) -> usize {
        self.m.addr()
    }
    fn round(&mut self, out: &mut Vec<usize>) -> Result<(), String> {
        let base = self.m.addr();
        if let Some((args, vec)) = &mut self.scan {
            scan_pages(&self.pm, args, vec, base, out)?;
        } else {
            out.clear();
            let want = self.entries.len() * 8;
            let off = (base / page_size() * 8) as i64;
            // SAFETY: `entries` has `want` writable bytes.
            let n = unsafe {
                libc::pread(
                    self.pm.fd().as_raw_fd(),
                    self.entries.as_mut_ptr().cast(),
                    want,
                    off,
                )
            };
            if n != want as isize {
                return Err(format!(
                    "pread(/proc/self/pagemap, {want} bytes at {off:#x}) returned {n}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            out.extend(
                self.entries
                    .iter()
                    .enumerate()
                    .filter(|(_, &e)| e & uapi::PM_SOFT_DIRTY != 0)
                    .map(|(i, _)| i),
            );
        }
        self.clear()
    }
}

// ---------------------------------------------------------------------------
// mprotect + SIGSEGV. One armed range at a time: the handler reads these.

static SEGV_BASE: AtomicUsize = AtomicUsize::new(0);
static SEGV_PAGES: AtomicUsize = AtomicUsize::new(0);
static SEGV_PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static SEGV_FLAGS: AtomicPtr<AtomicU8> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_sigsegv(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Async-signal-safe: atomics, mprotect, signal.
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let flags = SEGV_FLAGS.load(Ordering::Acquire);
    let base = SEGV_BASE.load(Ordering::Relaxed);
    let pages = SEGV_PAGES.load(Ordering::Relaxed);
    let ps = SEGV_PAGE_SIZE.load(Ordering::Relaxed);
    if flags.is_null() || addr < base || addr >= base + pages * ps {
        // Not ours: the default action on the re-executed access (a real crash).
        // SAFETY: resetting a disposition is async-signal-safe.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
        return;
    }
    let idx = (addr - base) / ps;
    // SAFETY: idx < pages, the length of the array `flags` points to.
    unsafe { (*flags.add(idx)).store(1, Ordering::Relaxed) };
    let page = (base + idx * ps) as *mut libc::c_void;
    // SAFETY: a page of the watched mapping.
    if unsafe { libc::mprotect(page, ps, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
    }
}

struct Mprotect {
    m: Mapping,
    flags: Box<[AtomicU8]>,
}

impl Mprotect {
    fn arm(m: Mapping) -> Result<Mprotect, String> {
        let mut flags: Box<[AtomicU8]> = (0..m.pages()).map(|_| AtomicU8::new(0)).collect();
        // Arming happens on one thread, before the range is protected: no fault can
        // reach the handler between these stores.
        if !SEGV_FLAGS.load(Ordering::Acquire).is_null() {
            return Err("mprotect_sigsegv: another range is already armed".into());
        }
        SEGV_BASE.store(m.addr(), Ordering::Relaxed);
        SEGV_PAGES.store(m.pages(), Ordering::Relaxed);
        SEGV_PAGE_SIZE.store(page_size(), Ordering::Relaxed);
        SEGV_FLAGS.store(flags.as_mut_ptr(), Ordering::Release);
        // SAFETY: sigaction is plain data; the handler is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsegv as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut()) != 0 {
                SEGV_FLAGS.store(std::ptr::null_mut(), Ordering::Release);
                return Err(format!(
                    "sigaction(SIGSEGV): {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        let w = Mprotect { m, flags };
        w.m.protect(0, w.m.len(), libc::PROT_READ).map_err(s)?;
        Ok(w)
    }
}

impl Watch for Mprotect {
    fn base(&self) -> usize {
        self.m.addr()
    }
    fn round(&mut self, out: &mut Vec<usize>) -> Result<(), String> {
        out.clear();
        for (i, f) in self.flags.iter().enumerate() {
            if f.load(Ordering::Relaxed) != 0 {
                f.store(0, Ordering::Relaxed);
                out.push(i);
            }
        }
        self.m.protect(0, self.m.len(), libc::PROT_READ).map_err(s)
    }
}

impl Drop for Mprotect {
    fn drop(&mut self) {
        SEGV_FLAGS.store(std::ptr::null_mut(), Ordering::Release);
        let _ = self
            .m
            .protect(0, self.m.len(), libc::PROT_READ | libc::PROT_WRITE);
    }
}

// ---------------------------------------------------------------------------
// Synchronous userfaultfd WP.

/// `struct uffd_msg` with its `pagefault` arm (include/uapi/linux/userfaultfd.h);
/// not in the library's uapi, which has no reader of uffd events. Checked against
/// linux-raw-sys in the tests.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct UffdMsg {
    pub event: u8,
    pub reserved1: u8,
    pub reserved2: u16,
    pub reserved3: u32,
    pub flags: u64,
    pub address: u64,
    pub ptid: u32,
    pub pad: u32,
}

/// `UFFD_EVENT_PAGEFAULT`.
pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
/// `UFFD_PAGEFAULT_FLAG_WP`.
pub const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;

struct UffdSync {
    m: Mapping,
    uffd: Arc<Userfaultfd>,
    flags: Arc<Box<[AtomicU8]>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl UffdSync {
    fn arm(m: Mapping, unpinned: bool) -> Result<UffdSync, String> {
        let uffd = Arc::new(UffdBuilder::new().create().map_err(s)?);
        uffd.register_wp(m.addr(), m.len()).map_err(s)?;
        uffd.writeprotect(m.addr(), m.len(), true).map_err(s)?;
        let flags: Arc<Box<[AtomicU8]>> =
            Arc::new((0..m.pages()).map(|_| AtomicU8::new(0)).collect());
        let error = Arc::new(Mutex::new(None));
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptors we own.
        let (stop_r, stop_w) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let (u, f, e, base, len) = (
            uffd.clone(),
            flags.clone(),
            error.clone(),
            m.addr(),
            m.len(),
        );
        let thread = std::thread::Builder::new()
            .name("uffd-handler".into())
            .spawn(move || {
                if unpinned {
                    unpin_this_thread();
                }
                if let Err(msg) = handle_faults(&u, &f, base, len, &stop_r) {
                    if let Ok(mut g) = e.lock() {
                        *g = Some(msg);
                    }
                    // Let blocked writers go on (unregistering wakes them) so that the
                    // main thread sees the error instead of hanging.
                    let _ = u.unregister(base, len);
                }
            })
            .map_err(|e| format!("spawning the uffd handler thread: {e}"))?;
        Ok(UffdSync {
            m,
            uffd,
            flags,
            error,
            stop: Some(stop_w),
            thread: Some(thread),
        })
    }
}

fn handle_faults(
    uffd: &Userfaultfd,
    flags: &[AtomicU8],
    base: usize,
    len: usize,
    stop: &OwnedFd,
) -> Result<(), String> {
    let ps = page_size();
    let mut msgs = [UffdMsg::default(); 16];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: uffd.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll(uffd): {e}"));
        }
        if fds[1].revents != 0 {
            return Ok(());
        }
        if fds[0].revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return Err(format!("poll(uffd) revents={:#x}", fds[0].revents));
        }
        // SAFETY: msgs is a writable array of uffd_msg.
        let n = unsafe {
            libc::read(
                uffd.as_fd().as_raw_fd(),
                msgs.as_mut_ptr().cast(),
                std::mem::size_of_val(&msgs),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EAGAIN) || e.kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            }
            return Err(format!("read(uffd): {e}"));
        }
        let count = n as usize / std::mem::size_of::<UffdMsg>();
        for m in &msgs[..count] {
            if m.event != UFFD_EVENT_PAGEFAULT || m.flags & UFFD_PAGEFAULT_FLAG_WP == 0 {
                return Err(format!(
                    "unexpected uffd message: event={:#x} flags={:#x} address={:#x}",
                    m.event, m.flags, m.address
                ));
            }
            let addr = m.address as usize;
            if addr < base || addr >= base + len {
                return Err(format!(
                    "uffd fault at {addr:#x}, outside the watched range"
                ));
            }
            let idx = (addr - base) / ps;
            flags[idx].store(1, Ordering::Relaxed);
            uffd.writeprotect(base + idx * ps, ps, false).map_err(s)?;
        }
    }
}

impl Watch for UffdSync {
    fn base(&self) -> usize {
        self.m.addr()
    }
    fn round(&mut self, out: &mut Vec<usize>) -> Result<(), String> {
        if let Some(e) = self.error.lock().ok().and_then(|g| g.clone()) {
            return Err(format!("uffd handler thread: {e}"));
        }
        out.clear();
        for (i, f) in self.flags.iter().enumerate() {
            if f.load(Ordering::Relaxed) != 0 {
                f.store(0, Ordering::Relaxed);
                out.push(i);
            }
        }
        self.uffd
            .writeprotect(self.m.addr(), self.m.len(), true)
            .map_err(s)
    }
}

impl Drop for UffdSync {
    fn drop(&mut self) {
        if let Some(w) = self.stop.take() {
            // SAFETY: one byte from a valid buffer.
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.uffd.unregister(self.m.addr(), self.m.len());
    }
}

// ---------------------------------------------------------------------------
// CPU affinity.

static ALL_CPUS: OnceLock<Vec<usize>> = OnceLock::new();

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, filled by the call.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer and size.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i < CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Restricts the calling thread to `cpus`.
pub fn set_affinity(cpus: &[usize]) -> Result<(), String> {
    // SAFETY: as above.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: c < CPU_SETSIZE (it came from allowed_cpus or sched_getcpu).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: valid pointer and size.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(format!(
            "sched_setaffinity({cpus:?}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Pins the calling thread to the CPU it runs on; remembers the CPUs it was allowed
/// on for [`unpin_this_thread`]. Returns the CPU.
pub fn pin_to_current_cpu() -> Result<usize, String> {
    let _ = ALL_CPUS.set(allowed_cpus());
    // SAFETY: plain call.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        return Err(format!("sched_getcpu: {}", std::io::Error::last_os_error()));
    }
    set_affinity(&[cpu as usize])?;
    Ok(cpu as usize)
}

/// Gives the calling thread (a helper thread created by a pinned one) every CPU the
/// process had before pinning.
pub fn unpin_this_thread() {
    if let Some(all) = ALL_CPUS.get() {
        if !all.is_empty() {
            let _ = set_affinity(all);
        }
    }
}
