//! kselftest-compatible TAP writer and streaming KTAP/TAP parser.
//!
//! Used on both sides of the harness: the guest's test binaries report with the
//! writer ([`Ksft`], or the C-named free functions in [`global`]), the guest's init
//! nests their output as KTAP subtests, and the host reads the results port with the
//! [`Parser`] while the VM runs.
//!
//! - [`writer`]: port of the semantics of `tools/testing/selftests/kselftest.h`
//!   (Linux 6.12, plus mainline's `ksft_test_result_xpass()`).
//! - [`parser`]: TAP 13/14 and KTAP v1 (`Documentation/dev-tools/ktap.rst`), ideas
//!   from KUnit's `tools/testing/kunit/kunit_parser.py`; nested blocks indented or
//!   `# `-prefixed (kselftest's `runner.sh`), printk timestamps, Crashed entries for
//!   missing results.
//! - [`model`]: the result tree ([`Test`], [`Status`], [`Plan`], [`StatusCounts`]).
//! - [`runner`]: runs a list of named test functions, each in a forked child, and
//!   reports them with the writer (a crash, panic or hang is `not ok`, cause named).
//!
//! The crate uses the standard library, and `libc` for the runner's fork/poll/wait.

pub mod global;
pub mod model;
pub mod parser;
#[cfg(unix)]
pub mod runner;
pub mod writer;

pub use model::{ParseError, Plan, Status, StatusCounts, Test, UnknownLine};
pub use parser::{parse, Event, Parser};
pub use writer::{Exit, Ksft, KsftCounts, KSFT_FAIL, KSFT_PASS, KSFT_SKIP, KSFT_XFAIL, KSFT_XPASS};

/// A KTAP result line for a test with `status` (as the guest's init writes them
/// when nesting a suite): `ok N name`, `not ok N name`, or with a directive after the
/// name, `ok N name # SKIP reason`, `not ok N name # TIMEOUT reason`. Without a
/// directive a reason becomes a plain comment (`not ok 2 name # exit=1`). Crashed is
/// written as `not ok`. Line terminators in `name` and `reason` become spaces.
pub fn ktap_result_line(number: u32, name: &str, status: Status, reason: Option<&str>) -> String {
    let (ok, directive) = match status {
        Status::Pass => (true, None),
        Status::Fail | Status::Crashed => (false, None),
        Status::Skip => (true, Some("SKIP")),
        Status::Xfail => (true, Some("XFAIL")),
        Status::Xpass => (false, Some("XPASS")),
        Status::Todo => (false, Some("TODO")),
        Status::Timeout => (false, Some("TIMEOUT")),
        Status::Error => (false, Some("ERROR")),
    };
    let clean = |s: &str| s.replace(['\n', '\r'], " ").trim().to_string();
    let mut line = format!("{} {number}", if ok { "ok" } else { "not ok" });
    let name = clean(name);
    if !name.is_empty() {
        line.push(' ');
        line.push_str(&name);
    }
    let reason = reason.map(clean).filter(|r| !r.is_empty());
    match (directive, reason) {
        (Some(d), Some(r)) => line.push_str(&format!(" # {d} {r}")),
        (Some(d), None) => line.push_str(&format!(" # {d}")),
        (None, Some(r)) => line.push_str(&format!(" # {r}")),
        (None, None) => {}
    }
    line
}
