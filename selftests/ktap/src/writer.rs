//! kselftest-compatible TAP writer.
//!
//! Port of the semantics of `tools/testing/selftests/kselftest.h` (Linux 6.12, as in
//! Debian's linux-source-6.12; plus `ksft_test_result_xpass()`, added to mainline in
//! December 2024 by "selftests: kselftest: Add ksft_test_result_xpass"). The strings
//! printed are the ones kselftest prints:
//!
//! ```text
//! TAP version 13                      ksft_print_header()
//! 1..N                                ksft_set_plan(N)
//! # msg                               ksft_print_msg()
//! ok N name                           ksft_test_result_pass()
//! not ok N name                       ksft_test_result_fail()
//! ok N # SKIP name                    ksft_test_result_skip()
//! ok N # XFAIL name                   ksft_test_result_xfail()
//! ok N # XPASS name                   ksft_test_result_xpass() (mainline)
//! not ok N # error name               ksft_test_result_error()
//! ok N name # SKIP msg                ksft_test_result_code() (directive after the name)
//! Bail out! msg                       ksft_exit_fail_msg()
//! 1..0 # SKIP msg                     ksft_exit_skip() before any plan or result
//! # Planned tests != run tests (P != R)
//! # Totals: pass:P fail:F xfail:X xpass:Y skip:S error:E
//! ```
//!
//! Differences from the C original, all deliberate:
//! - The C functions print the caller's format string verbatim (callers end it with
//!   `\n`); here a name or message is one line: trailing newlines are dropped, inner
//!   newlines become spaces in result lines and start a new `# ` line in messages.
//! - The `ksft_exit_*()` functions do not exit: they print, flush and return an
//!   [`Exit`] whose [`Exit::exit`] ends the process. That keeps the writer testable.
//! - `ksft_exit_skip()` after a plan or a result: 6.12 increments the skip counter and
//!   then prints `1 + ksft_test_num()`, one more than the number it just counted; here
//!   the line carries the counted number, so the numbering stays consecutive.
//! - Write errors are not returned from every call (printf's are not checked either);
//!   the first one is kept and available from [`Ksft::io_error`].

use std::fmt::{self, Display};
use std::io::{self, Write};

/// Exit code of a program whose tests all passed (`KSFT_PASS`).
pub const KSFT_PASS: i32 = 0;
/// Exit code of a program with a failed test (`KSFT_FAIL`).
pub const KSFT_FAIL: i32 = 1;
/// Exit code for an expected failure (`KSFT_XFAIL`).
pub const KSFT_XFAIL: i32 = 2;
/// Exit code for an unexpected pass (`KSFT_XPASS`).
pub const KSFT_XPASS: i32 = 3;
/// Exit code of a program that skipped (`KSFT_SKIP`).
pub const KSFT_SKIP: i32 = 4;

/// kselftest's counters (`struct ksft_count`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KsftCounts {
    /// `ksft_pass`.
    pub pass: u32,
    /// `ksft_fail`.
    pub fail: u32,
    /// `ksft_xfail`.
    pub xfail: u32,
    /// `ksft_xpass`.
    pub xpass: u32,
    /// `ksft_xskip`.
    pub skip: u32,
    /// `ksft_error`.
    pub error: u32,
}

impl KsftCounts {
    /// `ksft_test_num()`: the number of results reported so far.
    pub fn total(&self) -> u32 {
        self.pass + self.fail + self.xfail + self.xpass + self.skip + self.error
    }

    /// Parse a `Totals: pass:P fail:F xfail:X xpass:Y skip:S error:E` line, with or
    /// without its leading `# `. Returns `None` unless all six fields are present.
    pub fn parse_totals(line: &str) -> Option<KsftCounts> {
        let l = line.trim();
        let l = l.strip_prefix('#').map(str::trim_start).unwrap_or(l);
        let rest = l.strip_prefix("Totals:")?;
        let mut c = KsftCounts::default();
        let mut seen = 0u8;
        for field in rest.split_whitespace() {
            let (k, v) = field.split_once(':')?;
            let v: u32 = v.parse().ok()?;
            let (slot, bit) = match k {
                "pass" => (&mut c.pass, 1),
                "fail" => (&mut c.fail, 2),
                "xfail" => (&mut c.xfail, 4),
                "xpass" => (&mut c.xpass, 8),
                "skip" => (&mut c.skip, 16),
                "error" => (&mut c.error, 32),
                _ => return None,
            };
            *slot = v;
            seen |= bit;
        }
        (seen == 63).then_some(c)
    }
}

impl Display for KsftCounts {
    /// `pass:P fail:F xfail:X xpass:Y skip:S error:E`, as in the Totals line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pass:{} fail:{} xfail:{} xpass:{} skip:{} error:{}",
            self.pass, self.fail, self.xfail, self.xpass, self.skip, self.error
        )
    }
}

/// The exit code a `ksft_exit_*` call chose. Call [`exit`](Exit::exit) to end the
/// process with it, or inspect it with [`code`](Exit::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "call .exit() to end the process with this code"]
pub struct Exit(i32);

impl Exit {
    /// The process exit code (one of the `KSFT_*` constants).
    pub fn code(self) -> i32 {
        self.0
    }

    /// End the process with this code (output was already flushed).
    pub fn exit(self) -> ! {
        std::process::exit(self.0)
    }
}

/// A kselftest TAP writer over any [`Write`].
///
/// Each line is formatted completely and written with one `write_all`, so nothing is
/// left half-written in a buffer when the program forks or crashes; [`Ksft::stdout`]
/// also flushes after every line.
///
/// ```
/// let mut k = ktap::Ksft::new(Vec::new());
/// k.print_header();
/// k.set_plan(2);
/// k.test_result(1 + 1 == 2, "arith");
/// k.test_result_skip("no THP");
/// assert_eq!(k.finished().code(), ktap::KSFT_PASS);
/// let out = String::from_utf8(k.into_inner()).unwrap();
/// assert!(out.starts_with("TAP version 13\n1..2\nok 1 arith\nok 2 # SKIP no THP\n"));
/// ```
#[derive(Debug)]
pub struct Ksft<W: Write> {
    out: W,
    plan: u32,
    cnt: KsftCounts,
    flush_each_line: bool,
    io_error: Option<io::Error>,
}

impl Ksft<io::Stdout> {
    /// A writer on standard output that flushes after every line (standard output is
    /// a pipe in the VM; a line must not wait in a buffer when the kernel dies).
    pub fn stdout() -> Self {
        let mut k = Ksft::new(io::stdout());
        k.flush_each_line = true;
        k
    }
}

impl<W: Write> Ksft<W> {
    /// A writer on `out`, with no plan and all counters at zero.
    pub fn new(out: W) -> Self {
        Ksft {
            out,
            plan: 0,
            cnt: KsftCounts::default(),
            flush_each_line: false,
            io_error: None,
        }
    }

    /// Flush after every line (on for [`Ksft::stdout`]).
    pub fn set_flush_each_line(&mut self, on: bool) {
        self.flush_each_line = on;
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Give back the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The first write error, if any happened.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io_error.as_ref()
    }

    /// The counters.
    pub fn counts(&self) -> KsftCounts {
        self.cnt
    }

    /// The plan set by [`set_plan`](Self::set_plan) (0 before).
    pub fn plan(&self) -> u32 {
        self.plan
    }

    /// `ksft_test_num()`: results reported so far; the last result line carried it.
    pub fn test_num(&self) -> u32 {
        self.cnt.total()
    }

    /// `ksft_get_pass_cnt()`.
    pub fn pass_cnt(&self) -> u32 {
        self.cnt.pass
    }
    /// `ksft_get_fail_cnt()`.
    pub fn fail_cnt(&self) -> u32 {
        self.cnt.fail
    }
    /// `ksft_get_xfail_cnt()`.
    pub fn xfail_cnt(&self) -> u32 {
        self.cnt.xfail
    }
    /// `ksft_get_xpass_cnt()`.
    pub fn xpass_cnt(&self) -> u32 {
        self.cnt.xpass
    }
    /// `ksft_get_xskip_cnt()`.
    pub fn skip_cnt(&self) -> u32 {
        self.cnt.skip
    }
    /// `ksft_get_error_cnt()`.
    pub fn error_cnt(&self) -> u32 {
        self.cnt.error
    }

    /// `ksft_inc_pass_cnt()`: count without printing.
    pub fn inc_pass_cnt(&mut self) {
        self.cnt.pass += 1;
    }
    /// `ksft_inc_fail_cnt()`.
    pub fn inc_fail_cnt(&mut self) {
        self.cnt.fail += 1;
    }
    /// `ksft_inc_xfail_cnt()`.
    pub fn inc_xfail_cnt(&mut self) {
        self.cnt.xfail += 1;
    }
    /// `ksft_inc_xpass_cnt()`.
    pub fn inc_xpass_cnt(&mut self) {
        self.cnt.xpass += 1;
    }
    /// `ksft_inc_xskip_cnt()`.
    pub fn inc_skip_cnt(&mut self) {
        self.cnt.skip += 1;
    }
    /// `ksft_inc_error_cnt()`.
    pub fn inc_error_cnt(&mut self) {
        self.cnt.error += 1;
    }

    fn emit(&mut self, line: &str) {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        let mut r = self.out.write_all(buf.as_bytes());
        if r.is_ok() && self.flush_each_line {
            r = self.out.flush();
        }
        if let Err(e) = r {
            if self.io_error.is_none() {
                self.io_error = Some(e);
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            if self.io_error.is_none() {
                self.io_error = Some(e);
            }
        }
    }

    /// `ksft_print_header()`: `TAP version 13`, unless the environment variable
    /// `KSFT_TAP_LEVEL` is set (kselftest's runner sets it when it prints the header
    /// itself).
    pub fn print_header(&mut self) {
        if std::env::var_os("KSFT_TAP_LEVEL").is_none() {
            self.emit("TAP version 13");
        }
    }

    /// `ksft_set_plan(n)`: remember the plan and print `1..n`.
    pub fn set_plan(&mut self, n: u32) {
        self.plan = n;
        self.emit(&format!("1..{n}"));
    }

    /// `ksft_print_msg()`: `# msg`. A message with several lines prints several `# `
    /// lines.
    pub fn print_msg(&mut self, msg: impl Display) {
        let text = msg.to_string();
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            self.emit("# ");
            return;
        }
        for l in text.split('\n') {
            self.emit(&format!("# {}", l.trim_end_matches('\r')));
        }
    }

    /// `ksft_perror(msg)` for a given error: `# msg: strerror (errno)`, e.g.
    /// `# mmap: Cannot allocate memory (12)`. An error without an errno prints its
    /// text and `-1`.
    pub fn perror(&mut self, msg: impl Display, err: &io::Error) {
        let (text, errno) = strerror(err);
        self.print_msg(format_args!("{msg}: {text} ({errno})"));
    }

    /// `ksft_perror(msg)` with the calling thread's current `errno`
    /// ([`io::Error::last_os_error`]).
    pub fn perror_last(&mut self, msg: impl Display) {
        let e = io::Error::last_os_error();
        self.perror(msg, &e);
    }

    /// `ksft_test_result_pass()`: `ok N name`.
    pub fn test_result_pass(&mut self, name: impl Display) {
        self.cnt.pass += 1;
        let n = self.test_num();
        self.emit(&format!("ok {n} {}", one_line(name)));
    }

    /// `ksft_test_result_fail()`: `not ok N name`.
    pub fn test_result_fail(&mut self, name: impl Display) {
        self.cnt.fail += 1;
        let n = self.test_num();
        self.emit(&format!("not ok {n} {}", one_line(name)));
    }

    /// `ksft_test_result(cond, ...)`: pass if `cond`, else fail. Returns `cond`.
    pub fn test_result(&mut self, cond: bool, name: impl Display) -> bool {
        if cond {
            self.test_result_pass(name);
        } else {
            self.test_result_fail(name);
        }
        cond
    }

    /// `ksft_test_result_skip()`: `ok N # SKIP name`.
    pub fn test_result_skip(&mut self, name: impl Display) {
        self.cnt.skip += 1;
        let n = self.test_num();
        self.emit(&format!("ok {n} # SKIP {}", one_line(name)));
    }

    /// `ksft_test_result_xfail()`: `ok N # XFAIL name`.
    pub fn test_result_xfail(&mut self, name: impl Display) {
        self.cnt.xfail += 1;
        let n = self.test_num();
        self.emit(&format!("ok {n} # XFAIL {}", one_line(name)));
    }

    /// `ksft_test_result_xpass()` (mainline): `ok N # XPASS name`.
    pub fn test_result_xpass(&mut self, name: impl Display) {
        self.cnt.xpass += 1;
        let n = self.test_num();
        self.emit(&format!("ok {n} # XPASS {}", one_line(name)));
    }

    /// `ksft_test_result_error()`: `not ok N # error name`.
    pub fn test_result_error(&mut self, name: impl Display) {
        self.cnt.error += 1;
        let n = self.test_num();
        self.emit(&format!("not ok {n} # error {}", one_line(name)));
    }

    /// `ksft_test_result_report(code, ...)`: pass, fail, xfail, xpass or skip by a
    /// `KSFT_*` code. Other codes print nothing, as in C.
    pub fn test_result_report(&mut self, code: i32, name: impl Display) {
        match code {
            KSFT_PASS => self.test_result_pass(name),
            KSFT_FAIL => self.test_result_fail(name),
            KSFT_XFAIL => self.test_result_xfail(name),
            KSFT_XPASS => self.test_result_xpass(name),
            KSFT_SKIP => self.test_result_skip(name),
            _ => {}
        }
    }

    /// `ksft_test_result_code(code, name, msg)`: the directive after the name,
    /// `ok N name # SKIP msg`; with `KSFT_PASS` and a message, `ok N name #  msg`
    /// (kselftest's double space). Codes other than PASS/XFAIL/XPASS/SKIP count and
    /// print as a failure.
    pub fn test_result_code(&mut self, code: i32, name: impl Display, msg: Option<&str>) {
        let (tap, mut directive) = match code {
            KSFT_PASS => {
                self.cnt.pass += 1;
                ("ok", "")
            }
            KSFT_XFAIL => {
                self.cnt.xfail += 1;
                ("ok", " # XFAIL ")
            }
            KSFT_XPASS => {
                self.cnt.xpass += 1;
                ("ok", " # XPASS ")
            }
            KSFT_SKIP => {
                self.cnt.skip += 1;
                ("ok", " # SKIP ")
            }
            _ => {
                self.cnt.fail += 1;
                ("not ok", "")
            }
        };
        if directive.is_empty() && msg.is_some() {
            directive = " #  ";
        }
        let n = self.test_num();
        let msg = msg.map(one_line).unwrap_or_default();
        self.emit(&format!("{tap} {n} {}{directive}{msg}", one_line(name)));
    }

    /// `ksft_print_cnts()`: `# Planned tests != run tests (P != R)` when they differ,
    /// then `# Totals: ...`.
    pub fn print_cnts(&mut self) {
        let run = self.test_num();
        if self.plan != run {
            self.emit(&format!(
                "# Planned tests != run tests ({} != {run})",
                self.plan
            ));
        }
        let c = self.cnt;
        self.emit(&format!("# Totals: {c}"));
    }

    fn exit_with(&mut self, code: i32) -> Exit {
        self.print_cnts();
        self.flush();
        Exit(code)
    }

    /// `ksft_exit_pass()`: print the counts; [`KSFT_PASS`].
    pub fn exit_pass(&mut self) -> Exit {
        self.exit_with(KSFT_PASS)
    }

    /// `ksft_exit_fail()`: print the counts; [`KSFT_FAIL`].
    pub fn exit_fail(&mut self) -> Exit {
        self.exit_with(KSFT_FAIL)
    }

    /// `ksft_exit_xfail()`: print the counts; [`KSFT_XFAIL`].
    pub fn exit_xfail(&mut self) -> Exit {
        self.exit_with(KSFT_XFAIL)
    }

    /// `ksft_exit_xpass()`: print the counts; [`KSFT_XPASS`].
    pub fn exit_xpass(&mut self) -> Exit {
        self.exit_with(KSFT_XPASS)
    }

    /// `ksft_exit(cond)`: [`exit_pass`](Self::exit_pass) if `cond`, else
    /// [`exit_fail`](Self::exit_fail).
    pub fn exit(&mut self, cond: bool) -> Exit {
        if cond {
            self.exit_pass()
        } else {
            self.exit_fail()
        }
    }

    /// `ksft_finished()`: print the counts; PASS only if
    /// `plan == pass + xfail + skip`, else FAIL.
    pub fn finished(&mut self) -> Exit {
        let c = self.cnt;
        self.exit(self.plan == c.pass + c.xfail + c.skip)
    }

    /// `ksft_exit_fail_msg(msg)`: `Bail out! msg`, the counts; [`KSFT_FAIL`].
    pub fn exit_fail_msg(&mut self, msg: impl Display) -> Exit {
        self.emit(&format!("Bail out! {}", one_line(msg)));
        self.exit_with(KSFT_FAIL)
    }

    /// `ksft_exit_fail_perror(msg)`: `Bail out! msg: strerror (errno)`, the counts;
    /// [`KSFT_FAIL`].
    pub fn exit_fail_perror(&mut self, msg: impl Display, err: &io::Error) -> Exit {
        let (text, errno) = strerror(err);
        self.exit_fail_msg(format_args!("{msg}: {text} ({errno})"))
    }

    /// `ksft_exit_skip(msg)`: before any plan or result, the suite-level skip
    /// `1..0 # SKIP msg`; otherwise one more skipped result `ok N # SKIP msg` followed by
    /// the counts. [`KSFT_SKIP`].
    pub fn exit_skip(&mut self, msg: impl Display) -> Exit {
        if self.plan != 0 || self.test_num() != 0 {
            self.cnt.skip += 1;
            let n = self.test_num();
            self.emit(&format!("ok {n} # SKIP {}", one_line(msg)));
        } else {
            self.emit(&format!("1..0 # SKIP {}", one_line(msg)));
        }
        if self.test_num() != 0 {
            self.print_cnts();
        }
        self.flush();
        Exit(KSFT_SKIP)
    }
}

/// One line of text: trailing line terminators dropped, inner ones turned to spaces.
fn one_line(d: impl Display) -> String {
    let s = d.to_string();
    let s = s.trim_end_matches(['\n', '\r']);
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ")
    } else {
        s.to_string()
    }
}

/// `(strerror(errno), errno)` from an [`io::Error`], without libc: the standard
/// library's text for an OS error is `"<strerror> (os error N)"`.
fn strerror(err: &io::Error) -> (String, i32) {
    match err.raw_os_error() {
        Some(code) => {
            let full = err.to_string();
            let suffix = format!(" (os error {code})");
            let text = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
            (text, code)
        }
        None => (err.to_string(), -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(k: Ksft<Vec<u8>>) -> String {
        String::from_utf8(k.into_inner()).unwrap()
    }

    #[test]
    fn result_lines_are_kselftest_strings() {
        let mut k = Ksft::new(Vec::new());
        k.set_plan(6);
        k.test_result_pass("a");
        k.test_result_fail("b");
        k.test_result_skip("c");
        k.test_result_xfail("d");
        k.test_result_xpass("e");
        k.test_result_error("f");
        assert_eq!(
            k.counts(),
            KsftCounts {
                pass: 1,
                fail: 1,
                xfail: 1,
                xpass: 1,
                skip: 1,
                error: 1
            }
        );
        assert_eq!(
            out(k),
            "1..6\nok 1 a\nnot ok 2 b\nok 3 # SKIP c\nok 4 # XFAIL d\nok 5 # XPASS e\n\
             not ok 6 # error f\n"
        );
    }

    #[test]
    fn test_result_condition_and_newlines() {
        let mut k = Ksft::new(Vec::new());
        assert!(k.test_result(true, "yes\n"));
        assert!(!k.test_result(false, format_args!("no {}\n", 2)));
        k.print_msg("two\nlines\n");
        assert_eq!(k.pass_cnt(), 1);
        assert_eq!(k.fail_cnt(), 1);
        assert_eq!(out(k), "ok 1 yes\nnot ok 2 no 2\n# two\n# lines\n");
    }

    #[test]
    fn finished_passes_only_when_plan_matches_pass_xfail_skip() {
        let mut k = Ksft::new(Vec::new());
        k.set_plan(3);
        k.test_result_pass("a");
        k.test_result_xfail("b");
        k.test_result_skip("c");
        assert_eq!(k.finished().code(), KSFT_PASS);
        assert!(out(k).ends_with("# Totals: pass:1 fail:0 xfail:1 xpass:0 skip:1 error:0\n"));

        // An xpass or error is not in the sum: FAIL.
        let mut k = Ksft::new(Vec::new());
        k.set_plan(2);
        k.test_result_pass("a");
        k.test_result_xpass("b");
        assert_eq!(k.finished().code(), KSFT_FAIL);

        // Fewer results than planned: FAIL, and the mismatch line.
        let mut k = Ksft::new(Vec::new());
        k.set_plan(3);
        k.test_result_pass("a");
        assert_eq!(k.finished().code(), KSFT_FAIL);
        let s = out(k);
        assert!(s.contains("# Planned tests != run tests (3 != 1)\n"), "{s}");
        assert!(s.ends_with("# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n"));
    }

    #[test]
    fn exit_codes() {
        let mut k = Ksft::new(Vec::new());
        assert_eq!(k.exit_pass().code(), 0);
        assert_eq!(k.exit_fail().code(), 1);
        assert_eq!(k.exit_xfail().code(), 2);
        assert_eq!(k.exit_xpass().code(), 3);
        assert_eq!(k.exit(true).code(), 0);
        assert_eq!(k.exit(false).code(), 1);
    }

    #[test]
    fn exit_skip_before_plan_is_suite_skip() {
        let mut k = Ksft::new(Vec::new());
        k.print_header();
        let e = k.exit_skip("PAGEMAP_SCAN not supported\n");
        assert_eq!(e.code(), KSFT_SKIP);
        let s = out(k);
        assert!(
            s.ends_with("1..0 # SKIP PAGEMAP_SCAN not supported\n"),
            "{s}"
        );
        assert!(!s.contains("Totals"), "{s}");
    }

    #[test]
    fn exit_skip_after_results_is_one_more_skip() {
        let mut k = Ksft::new(Vec::new());
        k.set_plan(3);
        k.test_result_pass("a");
        assert_eq!(k.exit_skip("no uffd").code(), KSFT_SKIP);
        assert_eq!(k.skip_cnt(), 1);
        let s = out(k);
        assert!(s.contains("ok 1 a\nok 2 # SKIP no uffd\n"), "{s}");
        assert!(s.contains("# Planned tests != run tests (3 != 2)\n"), "{s}");
    }

    #[test]
    fn exit_fail_msg_bails_out() {
        let mut k = Ksft::new(Vec::new());
        k.set_plan(2);
        k.test_result_pass("a");
        assert_eq!(k.exit_fail_msg("mmap failed").code(), KSFT_FAIL);
        let s = out(k);
        assert!(s.contains("ok 1 a\nBail out! mmap failed\n"), "{s}");
        assert!(s.ends_with("# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n"));
    }

    #[test]
    fn result_code_puts_directive_after_name() {
        let mut k = Ksft::new(Vec::new());
        k.test_result_code(KSFT_PASS, "a", None);
        k.test_result_code(KSFT_PASS, "b", Some("detail"));
        k.test_result_code(KSFT_SKIP, "c", Some("why"));
        k.test_result_code(KSFT_XFAIL, "d", Some("known"));
        k.test_result_code(KSFT_XPASS, "e", Some("odd"));
        k.test_result_code(KSFT_FAIL, "f", None);
        k.test_result_code(77, "g", None);
        assert_eq!(k.fail_cnt(), 2);
        assert_eq!(
            out(k),
            "ok 1 a\nok 2 b #  detail\nok 3 c # SKIP why\nok 4 d # XFAIL known\n\
             ok 5 e # XPASS odd\nnot ok 6 f\nnot ok 7 g\n"
        );
    }

    #[test]
    fn perror_formats_errno() {
        let mut k = Ksft::new(Vec::new());
        k.perror("mmap", &io::Error::from_raw_os_error(12));
        let s = out(k);
        assert!(s.starts_with("# mmap: "), "{s}");
        assert!(s.ends_with(" (12)\n"), "{s}");
        assert!(!s.contains("os error"), "{s}");
    }

    #[test]
    fn totals_parse_round_trip() {
        let c = KsftCounts {
            pass: 19,
            fail: 2,
            xfail: 0,
            xpass: 1,
            skip: 3,
            error: 4,
        };
        let line = format!("# Totals: {c}");
        assert_eq!(KsftCounts::parse_totals(&line), Some(c));
        assert_eq!(KsftCounts::parse_totals("Totals: pass:1 fail:0"), None);
        assert_eq!(KsftCounts::parse_totals("Totals pass:1"), None);
    }

    #[test]
    fn write_errors_are_kept() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(32))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut k = Ksft::new(Broken);
        k.test_result_pass("a");
        assert_eq!(k.io_error().and_then(|e| e.raw_os_error()), Some(32));
        assert_eq!(k.pass_cnt(), 1);
    }
}
