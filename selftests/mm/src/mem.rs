//! Memory: mmap/munmap/mprotect/madvise/mremap wrappers, an owning [`Mapping`] that
//! unmaps on drop, an owning [`AlignedBuf`] (the `aligned_alloc`/`memalign` of the C
//! tests), `memfd_create`, and volatile byte access so that the writes a test relies
//! on are never optimised away.

use crate::error::{Error, Result};
use std::alloc::Layout;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// The base page size (`sysconf(_SC_PAGESIZE)`), cached (vm_util's `psize()`).
pub fn page_size() -> usize {
    static PS: OnceLock<usize> = OnceLock::new();
    *PS.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 {
            v as usize
        } else {
            4096
        }
    })
}

/// log2 of [`page_size`] (vm_util's `pshift()`).
pub fn page_shift() -> u32 {
    page_size().trailing_zeros()
}

/// Formats `PROT_*` bits as in C (`PROT_READ|PROT_WRITE`).
pub fn prot_name(prot: i32) -> String {
    if prot == libc::PROT_NONE {
        return "PROT_NONE".into();
    }
    let mut v = Vec::new();
    for (b, n) in [
        (libc::PROT_READ, "PROT_READ"),
        (libc::PROT_WRITE, "PROT_WRITE"),
        (libc::PROT_EXEC, "PROT_EXEC"),
    ] {
        if prot & b != 0 {
            v.push(n.to_string());
        }
    }
    let rest = prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC);
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    v.join("|")
}

/// Formats `MAP_*` bits as in C (`MAP_PRIVATE|MAP_ANONYMOUS`).
pub fn map_flags_name(flags: i32) -> String {
    let mut v = Vec::new();
    let mut rest = flags;
    for (b, n) in [
        (libc::MAP_SHARED, "MAP_SHARED"),
        (libc::MAP_PRIVATE, "MAP_PRIVATE"),
        (libc::MAP_FIXED, "MAP_FIXED"),
        (libc::MAP_ANONYMOUS, "MAP_ANONYMOUS"),
        (libc::MAP_NORESERVE, "MAP_NORESERVE"),
        (libc::MAP_POPULATE, "MAP_POPULATE"),
        (libc::MAP_HUGETLB, "MAP_HUGETLB"),
        (libc::MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
        (libc::MAP_LOCKED, "MAP_LOCKED"),
    ] {
        if flags & b == b {
            v.push(n.to_string());
            rest &= !b;
        }
    }
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

/// Names of the `MADV_*` values the tests use.
pub fn madvise_name(advice: i32) -> String {
    match advice {
        libc::MADV_NORMAL => "MADV_NORMAL".into(),
        libc::MADV_DONTNEED => "MADV_DONTNEED".into(),
        libc::MADV_FREE => "MADV_FREE".into(),
        libc::MADV_REMOVE => "MADV_REMOVE".into(),
        libc::MADV_DONTFORK => "MADV_DONTFORK".into(),
        libc::MADV_HUGEPAGE => "MADV_HUGEPAGE".into(),
        libc::MADV_NOHUGEPAGE => "MADV_NOHUGEPAGE".into(),
        libc::MADV_PAGEOUT => "MADV_PAGEOUT".into(),
        libc::MADV_COLD => "MADV_COLD".into(),
        libc::MADV_POPULATE_READ => "MADV_POPULATE_READ".into(),
        libc::MADV_POPULATE_WRITE => "MADV_POPULATE_WRITE".into(),
        libc::MADV_COLLAPSE => "MADV_COLLAPSE".into(),
        crate::uapi::MADV_GUARD_INSTALL => "MADV_GUARD_INSTALL".into(),
        crate::uapi::MADV_GUARD_REMOVE => "MADV_GUARD_REMOVE".into(),
        other => other.to_string(),
    }
}

/// `mmap(2)`. Returns the address; errors name every argument.
///
/// # Safety
/// With `MAP_FIXED` this replaces whatever was mapped at `addr`, which may be memory
/// Rust code still refers to. Without `MAP_FIXED` it is safe in practice; the
/// function is `unsafe` for the fixed case.
pub unsafe fn mmap_raw(
    addr: *mut u8,
    len: usize,
    prot: i32,
    flags: i32,
    fd: i32,
    offset: i64,
) -> Result<*mut u8> {
    // SAFETY: forwarded to the caller.
    let p = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, offset) };
    if p == libc::MAP_FAILED {
        return Err(Error::last(
            "mmap",
            format!(
                "addr={addr:p}, len={len:#x}, {}, {}, fd={fd}, offset={offset:#x}",
                prot_name(prot),
                map_flags_name(flags)
            ),
        ));
    }
    Ok(p.cast())
}

/// `munmap(2)`.
///
/// # Safety
/// Nothing may use the range afterwards (no live [`Mapping`] may cover it unless it is
/// forgotten).
pub unsafe fn munmap_raw(addr: *mut u8, len: usize) -> Result<()> {
    // SAFETY: forwarded to the caller.
    if unsafe { libc::munmap(addr.cast(), len) } != 0 {
        return Err(Error::last(
            "munmap",
            format!("addr={addr:p}, len={len:#x}"),
        ));
    }
    Ok(())
}

/// `mprotect(2)` on any range (fails with ENOMEM if part of it is unmapped).
///
/// Safe: changing protection cannot break Rust's memory model by itself; a later
/// access to a protected page faults (SIGSEGV), which is the caller's test design.
pub fn mprotect(addr: *mut u8, len: usize, prot: i32) -> Result<()> {
    // SAFETY: mprotect only changes page permissions.
    if unsafe { libc::mprotect(addr.cast(), len, prot) } != 0 {
        return Err(Error::last(
            "mprotect",
            format!("addr={addr:p}, len={len:#x}, {}", prot_name(prot)),
        ));
    }
    Ok(())
}

/// `madvise(2)`.
///
/// # Safety
/// Advice like `MADV_DONTNEED`/`MADV_REMOVE`/`MADV_FREE` discards memory contents;
/// the caller must own the range and expect that.
pub unsafe fn madvise_raw(addr: *mut u8, len: usize, advice: i32) -> Result<()> {
    // SAFETY: forwarded to the caller.
    if unsafe { libc::madvise(addr.cast(), len, advice) } != 0 {
        return Err(Error::last(
            "madvise",
            format!("addr={addr:p}, len={len:#x}, {}", madvise_name(advice)),
        ));
    }
    Ok(())
}

/// `mremap(2)`; pass `new_addr` with `MREMAP_FIXED`, null otherwise.
///
/// # Safety
/// Moves or unmaps memory: the old range becomes invalid, and with `MREMAP_FIXED`
/// whatever was at `new_addr` is replaced.
pub unsafe fn mremap_raw(
    old: *mut u8,
    old_len: usize,
    new_len: usize,
    flags: i32,
    new_addr: *mut u8,
) -> Result<*mut u8> {
    // SAFETY: forwarded to the caller.
    let p = unsafe { libc::mremap(old.cast(), old_len, new_len, flags, new_addr) };
    if p == libc::MAP_FAILED {
        return Err(Error::last(
            "mremap",
            format!(
                "old={old:p}, old_len={old_len:#x}, new_len={new_len:#x}, flags={flags:#x}, \
                 new_addr={new_addr:p}"
            ),
        ));
    }
    Ok(p.cast())
}

/// Options of a [`Mapping`]: `MapOptions::new(len).prot(..).flags(..).map()`.
///
/// Default: `PROT_READ|PROT_WRITE`, `MAP_PRIVATE|MAP_ANONYMOUS`, no fd.
#[derive(Debug, Clone)]
pub struct MapOptions<'fd> {
    len: usize,
    addr: usize,
    prot: i32,
    flags: i32,
    fd: Option<BorrowedFd<'fd>>,
    offset: i64,
}

impl<'fd> MapOptions<'fd> {
    /// A private anonymous read/write mapping of `len` bytes.
    pub fn new(len: usize) -> Self {
        MapOptions {
            len,
            addr: 0,
            prot: libc::PROT_READ | libc::PROT_WRITE,
            flags: libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            fd: None,
            offset: 0,
        }
    }
    /// Sets `PROT_*`.
    pub fn prot(mut self, prot: i32) -> Self {
        self.prot = prot;
        self
    }
    /// Replaces all `MAP_*` flags.
    pub fn flags(mut self, flags: i32) -> Self {
        self.flags = flags;
        self
    }
    /// Adds `MAP_*` flags (e.g. `MAP_HUGETLB`, `MAP_POPULATE`, `MAP_NORESERVE`).
    pub fn add_flags(mut self, flags: i32) -> Self {
        self.flags |= flags;
        self
    }
    /// Maps `fd` at `offset`: drops `MAP_ANONYMOUS`, keeps the sharing type.
    pub fn file(mut self, fd: BorrowedFd<'fd>, offset: i64) -> Self {
        self.fd = Some(fd);
        self.offset = offset;
        self.flags &= !libc::MAP_ANONYMOUS;
        self
    }
    /// `MAP_SHARED` instead of `MAP_PRIVATE`.
    pub fn shared(mut self) -> Self {
        self.flags = (self.flags & !libc::MAP_PRIVATE) | libc::MAP_SHARED;
        self
    }
    /// Address hint (without `MAP_FIXED*` the kernel may ignore it).
    pub fn hint(mut self, addr: usize) -> Self {
        self.addr = addr;
        self
    }
    /// Maps at exactly `addr` but fails with EEXIST instead of replacing anything
    /// (`MAP_FIXED_NOREPLACE`); a safe way to place a mapping.
    pub fn fixed_noreplace(mut self, addr: usize) -> Self {
        self.addr = addr;
        self.flags |= libc::MAP_FIXED_NOREPLACE;
        self
    }
    /// Performs the `mmap`.
    pub fn map(self) -> Result<Mapping> {
        if self.flags & libc::MAP_FIXED != 0 {
            return Err(Error::InvalidArgument {
                func: "MapOptions::map",
                detail: "MAP_FIXED may replace live memory: use Mapping::map_fixed".into(),
            });
        }
        let fd = self.fd.map_or(-1, |f| f.as_raw_fd());
        // SAFETY: no MAP_FIXED (checked above), so nothing existing is replaced.
        let p = unsafe {
            mmap_raw(
                self.addr as *mut u8,
                self.len,
                self.prot,
                self.flags,
                fd,
                self.offset,
            )?
        };
        if self.flags & libc::MAP_FIXED_NOREPLACE != 0 && p as usize != self.addr {
            // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat it as a hint.
            // SAFETY: we just created this mapping.
            let _ = unsafe { munmap_raw(p, self.len) };
            return Err(Error::Unsupported {
                feature: "MAP_FIXED_NOREPLACE".into(),
                reason: format!("mmap placed the mapping at {p:p}, not {:#x}", self.addr),
            });
        }
        Ok(Mapping {
            ptr: NonNull::new(p).expect("mmap returned NULL"),
            len: self.len,
        })
    }
}

/// An owned memory mapping, unmapped on drop.
///
/// Byte access goes through [`Mapping::read`]/[`Mapping::write`] (volatile), because
/// the tests observe side effects of accesses (dirty bits, faults) that the compiler
/// cannot see.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// The mapping is plain memory; tests share it between threads (transact_test).
// SAFETY: the type only hands out raw pointers and volatile accesses.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A private anonymous read/write mapping of `len` bytes.
    pub fn anon(len: usize) -> Result<Mapping> {
        MapOptions::new(len).map()
    }

    /// A private anonymous mapping with protection `prot`.
    pub fn anon_prot(len: usize, prot: i32) -> Result<Mapping> {
        MapOptions::new(len).prot(prot).map()
    }

    /// `mmap(addr, len, prot, flags | MAP_FIXED, fd, offset)`: replaces what is there.
    ///
    /// # Safety
    /// Nothing else may own or reference `[addr, addr+len)` (e.g. carve it out of a
    /// reservation you then [`Mapping::forget`]).
    pub unsafe fn map_fixed(
        addr: *mut u8,
        len: usize,
        prot: i32,
        flags: i32,
        fd: Option<BorrowedFd<'_>>,
        offset: i64,
    ) -> Result<Mapping> {
        let fd = fd.map_or(-1, |f| f.as_raw_fd());
        // SAFETY: forwarded to the caller.
        let p = unsafe { mmap_raw(addr, len, prot, flags | libc::MAP_FIXED, fd, offset)? };
        Ok(Mapping {
            ptr: NonNull::new(p).expect("mmap returned NULL"),
            len,
        })
    }

    /// Adopts an existing mapping.
    ///
    /// # Safety
    /// `[ptr, ptr+len)` must be a mapping nobody else will unmap.
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Option<Mapping> {
        NonNull::new(ptr).map(|ptr| Mapping { ptr, len })
    }

    /// Gives up ownership without unmapping; returns `(ptr, len)`.
    pub fn forget(self) -> (*mut u8, usize) {
        let r = (self.ptr.as_ptr(), self.len);
        std::mem::forget(self);
        r
    }

    /// Start address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Start address as an integer.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length mapping (never created by this crate).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address of byte `offset` (panics when out of range).
    pub fn at(&self, offset: usize) -> *mut u8 {
        assert!(
            offset < self.len,
            "offset {offset:#x} beyond {:#x}",
            self.len
        );
        // SAFETY: in bounds (checked).
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    /// Address of page `index`.
    pub fn page(&self, index: usize) -> *mut u8 {
        self.at(index * page_size())
    }

    /// Number of base pages.
    pub fn pages(&self) -> usize {
        self.len / page_size()
    }

    /// Volatile read of byte `offset` (faults the page in; SIGSEGV if PROT_NONE).
    pub fn read(&self, offset: usize) -> u8 {
        // SAFETY: in bounds; volatile access to memory we own.
        unsafe { self.at(offset).read_volatile() }
    }

    /// Volatile write of byte `offset` (SIGSEGV if not writable).
    pub fn write(&self, offset: usize, value: u8) {
        // SAFETY: in bounds; volatile access to memory we own.
        unsafe { self.at(offset).write_volatile(value) }
    }

    /// Volatile `byte += 1` at `offset` (the C tests' `map[0]++`).
    pub fn increment(&self, offset: usize) {
        let v = self.read(offset);
        self.write(offset, v.wrapping_add(1));
    }

    /// Writes one byte to each page of `[offset, offset+len)`.
    pub fn touch_pages(&self, offset: usize, len: usize, value: u8) {
        let ps = page_size();
        let mut o = offset;
        while o < offset + len {
            self.write(o, value);
            o += ps;
        }
    }

    /// Reads one byte of each page of `[offset, offset+len)` (read faults).
    pub fn read_pages(&self, offset: usize, len: usize) {
        let ps = page_size();
        let mut o = offset;
        while o < offset + len {
            let _ = self.read(o);
            o += ps;
        }
    }

    /// `mprotect` of a sub-range.
    pub fn protect(&self, offset: usize, len: usize, prot: i32) -> Result<()> {
        self.check_range("Mapping::protect", offset, len)?;
        mprotect(self.at_or_end(offset), len, prot)
    }

    /// `madvise` of a sub-range.
    ///
    /// Safe because the mapping is owned and accessed only through volatile reads
    /// and writes: discarding advice just makes later reads see zeros or file data.
    pub fn advise(&self, offset: usize, len: usize, advice: i32) -> Result<()> {
        self.check_range("Mapping::advise", offset, len)?;
        // SAFETY: the range is inside our mapping; see above.
        unsafe { madvise_raw(self.at_or_end(offset), len, advice) }
    }

    /// Unmaps explicitly (reporting errors, which drop cannot).
    pub fn unmap(self) -> Result<()> {
        let (p, len) = self.forget();
        // SAFETY: we owned the mapping.
        unsafe { munmap_raw(p, len) }
    }

    fn at_or_end(&self, offset: usize) -> *mut u8 {
        // SAFETY: offset <= len was checked by the callers.
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    fn check_range(&self, func: &'static str, offset: usize, len: usize) -> Result<()> {
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Error::InvalidArgument {
                func,
                detail: format!(
                    "range {offset:#x}+{len:#x} outside mapping of {:#x} bytes",
                    self.len
                ),
            });
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own the mapping; errors cannot be reported from drop.
        let _ = unsafe { munmap_raw(self.ptr.as_ptr(), self.len) };
    }
}

/// A heap buffer from the C library allocator with a given alignment, freed on drop:
/// the `aligned_alloc(pagesize, pagesize)` / `memalign(hpage, hpage)` of the C tests.
///
/// Unlike a fresh [`Mapping`], the memory may come from an existing heap VMA, which
/// is what upstream's soft-dirty test exercises.
#[derive(Debug)]
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: plain owned memory accessed through raw pointers/volatile ops.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `size` bytes aligned to `align` (a power of two); contents undefined
    /// (never read before written by this crate's users).
    pub fn new(align: usize, size: usize) -> Result<AlignedBuf> {
        let layout = Layout::from_size_align(size, align).map_err(|e| Error::InvalidArgument {
            func: "AlignedBuf::new",
            detail: format!("align={align:#x}, size={size:#x}: {e}"),
        })?;
        if size == 0 {
            return Err(Error::InvalidArgument {
                func: "AlignedBuf::new",
                detail: "size 0".into(),
            });
        }
        // SAFETY: layout has a non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        match NonNull::new(p) {
            Some(ptr) => Ok(AlignedBuf { ptr, layout }),
            None => Err(Error::Sys {
                call: "posix_memalign",
                args: format!("align={align:#x}, size={size:#x}"),
                errno: libc::ENOMEM,
            }),
        }
    }

    /// Start address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Always false (zero-sized buffers are refused).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Volatile read of byte `offset`.
    pub fn read(&self, offset: usize) -> u8 {
        assert!(offset < self.len());
        // SAFETY: in bounds.
        unsafe { self.ptr.as_ptr().add(offset).read_volatile() }
    }

    /// Volatile write of byte `offset`.
    pub fn write(&self, offset: usize, value: u8) {
        assert!(offset < self.len());
        // SAFETY: in bounds.
        unsafe { self.ptr.as_ptr().add(offset).write_volatile(value) }
    }

    /// Volatile `byte += 1`.
    pub fn increment(&self, offset: usize) {
        let v = self.read(offset);
        self.write(offset, v.wrapping_add(1));
    }

    /// `madvise` over `[offset, offset+len)` (e.g. `MADV_HUGEPAGE`).
    pub fn advise(&self, offset: usize, len: usize, advice: i32) -> Result<()> {
        if offset.checked_add(len).is_none_or(|e| e > self.len()) {
            return Err(Error::InvalidArgument {
                func: "AlignedBuf::advise",
                detail: format!("range {offset:#x}+{len:#x} outside {:#x}", self.len()),
            });
        }
        // SAFETY: the range is ours.
        unsafe { madvise_raw(self.ptr.as_ptr().add(offset), len, advice) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// `memfd_create(name, flags)` (e.g. `MFD_HUGETLB | MFD_NOEXEC_SEAL`).
pub fn memfd_create(name: &str, flags: u32) -> Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| Error::InvalidArgument {
        func: "memfd_create",
        detail: format!("name {name:?} contains NUL"),
    })?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Error::last(
            "memfd_create",
            format!("name={name:?}, flags={flags:#x}"),
        ));
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ftruncate(fd, len)`.
pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
    // SAFETY: plain syscall on a valid fd.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) } != 0 {
        return Err(Error::last(
            "ftruncate",
            format!("fd={}, len={len:#x}", fd.as_raw_fd()),
        ));
    }
    Ok(())
}

/// A System V shared memory segment, attached; detached and removed on drop
/// (pagemap_ioctl.c's `gethugetlb_mem(size, &shmid)` with `SHM_HUGETLB`).
#[derive(Debug)]
pub struct SysvShm {
    id: i32,
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: plain shared memory accessed through raw pointers/volatile ops.
unsafe impl Send for SysvShm {}
// SAFETY: as above.
unsafe impl Sync for SysvShm {}

impl SysvShm {
    /// `shmget(key, len, flags | IPC_CREAT | SHM_R | SHM_W)` then `shmat(id, NULL, 0)`.
    /// Pass `libc::IPC_PRIVATE` as key for a private segment, `libc::SHM_HUGETLB` in
    /// `flags` for hugetlb memory.
    pub fn create(key: i32, len: usize, flags: i32) -> Result<SysvShm> {
        let flags = flags | libc::IPC_CREAT | libc::SHM_R | libc::SHM_W;
        // SAFETY: plain syscall.
        let id = unsafe { libc::shmget(key, len, flags) };
        if id < 0 {
            return Err(Error::last(
                "shmget",
                format!("key={key}, len={len:#x}, flags={flags:#o}"),
            ));
        }
        // SAFETY: attaching a segment we just created at a kernel-chosen address.
        let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if p as isize == -1 {
            let e = Error::last("shmat", format!("shmid={id}, addr=NULL, flags=0"));
            // SAFETY: removing the segment we created.
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
            return Err(e);
        }
        Ok(SysvShm {
            id,
            addr: NonNull::new(p.cast()).expect("shmat returned NULL"),
            len,
        })
    }

    /// The segment id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Attach address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// Attach address as an integer.
    pub fn addr(&self) -> usize {
        self.addr.as_ptr() as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Volatile write of byte `offset`.
    pub fn write(&self, offset: usize, value: u8) {
        assert!(offset < self.len);
        // SAFETY: in bounds of the attached segment.
        unsafe { self.addr.as_ptr().add(offset).write_volatile(value) }
    }

    /// Volatile read of byte `offset`.
    pub fn read(&self, offset: usize) -> u8 {
        assert!(offset < self.len);
        // SAFETY: in bounds of the attached segment.
        unsafe { self.addr.as_ptr().add(offset).read_volatile() }
    }
}

impl Drop for SysvShm {
    fn drop(&mut self) {
        // SAFETY: detaching and removing our own segment.
        unsafe {
            libc::shmdt(self.addr.as_ptr().cast());
            libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert_eq!(1usize << page_shift(), page_size());
    }

    #[test]
    fn names() {
        assert_eq!(
            prot_name(libc::PROT_READ | libc::PROT_WRITE),
            "PROT_READ|PROT_WRITE"
        );
        assert_eq!(prot_name(libc::PROT_NONE), "PROT_NONE");
        assert_eq!(
            map_flags_name(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS),
            "MAP_PRIVATE|MAP_ANONYMOUS"
        );
        assert_eq!(madvise_name(libc::MADV_HUGEPAGE), "MADV_HUGEPAGE");
    }

    #[test]
    fn mapping_rw_protect_and_advise() {
        let ps = page_size();
        let m = Mapping::anon(4 * ps).unwrap();
        assert_eq!(m.pages(), 4);
        m.write(ps, 7);
        m.increment(ps);
        assert_eq!(m.read(ps), 8);
        m.protect(0, ps, libc::PROT_READ).unwrap();
        m.advise(ps, ps, libc::MADV_DONTNEED).unwrap();
        assert_eq!(m.read(ps), 0, "MADV_DONTNEED on private anon gives zeros");
        let e = m.protect(ps, 4 * ps, libc::PROT_READ).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }

    #[test]
    fn mmap_error_names_arguments() {
        let e = MapOptions::new(0).map().unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        let s = e.to_string();
        assert!(
            s.starts_with(
                "mmap(addr=0x0, len=0x0, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS"
            ),
            "{s}"
        );
        assert!(MapOptions::new(4096)
            .add_flags(libc::MAP_FIXED)
            .map()
            .is_err());
    }

    #[test]
    fn fixed_noreplace_refuses_occupied_range() {
        let m = Mapping::anon(page_size()).unwrap();
        let e = MapOptions::new(page_size())
            .fixed_noreplace(m.addr())
            .map()
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
    }

    #[test]
    fn aligned_buf_alignment() {
        let b = AlignedBuf::new(page_size(), page_size()).unwrap();
        assert_eq!(b.as_ptr() as usize % page_size(), 0);
        b.write(0, 1);
        b.increment(0);
        assert_eq!(b.read(0), 2);
        assert!(AlignedBuf::new(3, 8).is_err());
    }

    #[test]
    fn sysv_shm_roundtrip() {
        let shm = match SysvShm::create(libc::IPC_PRIVATE, page_size(), 0) {
            Ok(s) => s,
            // Kernels without CONFIG_SYSVIPC answer ENOSYS.
            Err(e) if e.errno() == Some(libc::ENOSYS) => return,
            Err(e) => panic!("{e}"),
        };
        shm.write(1, 5);
        assert_eq!(shm.read(1), 5);
        let e = SysvShm::create(libc::IPC_PRIVATE, usize::MAX / 2, 0).unwrap_err();
        assert!(e.to_string().starts_with("shmget(key=0, len="), "{e}");
    }

    #[test]
    fn memfd_roundtrip() {
        use std::os::fd::AsFd;
        let fd = memfd_create("mm-selftests", libc::MFD_CLOEXEC).unwrap();
        ftruncate(fd.as_fd(), page_size() as u64).unwrap();
        let m = MapOptions::new(page_size())
            .shared()
            .file(fd.as_fd(), 0)
            .map()
            .unwrap();
        m.write(0, 42);
        assert_eq!(m.read(0), 42);
    }
}
