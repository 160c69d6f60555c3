//! The protocol between the host (`xtask`) and the guest init (`qemu/init`), owned in
//! one place.
//!
//! - [`cmdline`]: host -> guest. The `harness.*` kernel parameters, their single set
//!   of defaults, [`Settings::encode`] (what the host appends to the kernel command
//!   line) and [`cmdline::parse`] (what the init reads back from `/proc/cmdline`).
//! - [`marker`]: guest -> host. The top-level `# ...` lines the init writes on the
//!   results port (ttyS1) around the suites' KTAP: boot facts, boot-step problems,
//!   each suite's start and end, and the final `# exit=N`. [`Marker`]'s `Display` is
//!   what the init prints; [`Marker::parse`] is what the host reads.
//!
//! Both directions are pure and round-trip (`Settings -> cmdline -> Settings`,
//! `Marker -> line -> Marker`); the tests pin that. No dependencies, no panics: the
//! static PID 1 links this crate.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cmdline;
pub mod marker;

pub use cmdline::{Parsed, Settings, Thp};
pub use marker::{Ended, Marker, SuiteEnd};
