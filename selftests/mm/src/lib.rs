//! `mm`: the Rust counterpart of the kernel's `tools/testing/selftests/mm/vm_util.c`
//! and `vm_util.h` for the soft-dirty and PAGEMAP_SCAN selftest ports.
//!
//! Modules:
//! - [`uapi`]: raw `#[repr(C)]` structs, ioctl numbers and bits (PAGEMAP_SCAN,
//!   pagemap entries, userfaultfd), checked at compile time and in tests.
//! - [`error`]: [`Error`]: every failure names the call, its arguments and errno.
//! - [`mem`]: mmap/munmap/mprotect/madvise/mremap, the owning [`mem::Mapping`] and
//!   [`mem::AlignedBuf`], memfd.
//! - [`pagemap`]: [`pagemap::Pagemap`] (entries, PAGEMAP_SCAN, the cross-checked
//!   `is_softdirty`/`is_swapped`/`is_populated`), `clear_softdirty`.
//! - [`scan`]: PAGEMAP_SCAN argument/result types ([`scan::Categories`],
//!   [`scan::ScanArgs`], [`scan::ScanResult`]).
//! - [`uffd`]: [`uffd::Userfaultfd`] (user-mode-only, feature handshake, WP).
//! - [`probe`]: what the kernel supports; smaps/THP/hugetlb readers.
//! - [`suite`]: library errors as the ktap runner's test outcomes (SKIP for an
//!   unsupported feature, with the version that brought it).
//!
//! Functions never exit the process: they return [`Result`], and the test binaries
//! decide whether an error is a `Bail out!`, a failed test or a SKIP.

pub mod error;
pub mod mem;
pub mod pagemap;
pub mod probe;
pub mod scan;
pub mod suite;
pub mod uapi;
pub mod uffd;

pub use error::{Error, Result};
