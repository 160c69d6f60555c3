//! kselftest's process-wide API: free functions with the C names, all writing to one
//! shared [`Ksft`] on standard output (flushed after every line), the way
//! `kselftest.h`'s static counters work.
//!
//! Use these in test binaries where threading a `&mut Ksft` through every helper would
//! be noise; use [`Ksft`] directly where the output must be captured (unit tests).
//! The `ksft_exit_*` functions end the process (`-> !`), like the C ones.
//!
//! A forked child must not call these while another thread of the parent held the
//! lock at `fork()` time (the lock would stay held in the child).

use crate::writer::{Ksft, KsftCounts};
use std::fmt::Display;
use std::io;
use std::sync::{Mutex, MutexGuard, OnceLock};

fn global() -> MutexGuard<'static, Ksft<io::Stdout>> {
    static K: OnceLock<Mutex<Ksft<io::Stdout>>> = OnceLock::new();
    K.get_or_init(|| Mutex::new(Ksft::stdout()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run `f` on the shared writer (for anything the free functions do not cover).
pub fn with_ksft<R>(f: impl FnOnce(&mut Ksft<io::Stdout>) -> R) -> R {
    f(&mut global())
}

/// `ksft_print_header()`.
pub fn ksft_print_header() {
    global().print_header()
}
/// `ksft_set_plan(n)`.
pub fn ksft_set_plan(n: u32) {
    global().set_plan(n)
}
/// `ksft_print_msg()`.
pub fn ksft_print_msg(msg: impl Display) {
    global().print_msg(msg)
}
/// `ksft_perror(msg)` with the current `errno`.
pub fn ksft_perror(msg: impl Display) {
    let e = io::Error::last_os_error();
    global().perror(msg, &e)
}
/// `ksft_test_result(cond, name)`; returns `cond`.
pub fn ksft_test_result(cond: bool, name: impl Display) -> bool {
    global().test_result(cond, name)
}
/// `ksft_test_result_pass()`.
pub fn ksft_test_result_pass(name: impl Display) {
    global().test_result_pass(name)
}
/// `ksft_test_result_fail()`.
pub fn ksft_test_result_fail(name: impl Display) {
    global().test_result_fail(name)
}
/// `ksft_test_result_skip()`.
pub fn ksft_test_result_skip(name: impl Display) {
    global().test_result_skip(name)
}
/// `ksft_test_result_xfail()`.
pub fn ksft_test_result_xfail(name: impl Display) {
    global().test_result_xfail(name)
}
/// `ksft_test_result_xpass()`.
pub fn ksft_test_result_xpass(name: impl Display) {
    global().test_result_xpass(name)
}
/// `ksft_test_result_error()`.
pub fn ksft_test_result_error(name: impl Display) {
    global().test_result_error(name)
}
/// `ksft_test_result_report()`.
pub fn ksft_test_result_report(code: i32, name: impl Display) {
    global().test_result_report(code, name)
}
/// `ksft_test_result_code()`.
pub fn ksft_test_result_code(code: i32, name: impl Display, msg: Option<&str>) {
    global().test_result_code(code, name, msg)
}
/// `ksft_print_cnts()`.
pub fn ksft_print_cnts() {
    global().print_cnts()
}
/// The counters (`ksft_get_*_cnt()`).
pub fn ksft_counts() -> KsftCounts {
    global().counts()
}
/// `ksft_test_num()`.
pub fn ksft_test_num() -> u32 {
    global().test_num()
}
/// The plan set by [`ksft_set_plan`].
pub fn ksft_plan() -> u32 {
    global().plan()
}
/// `ksft_finished()`: exits PASS if plan == pass + xfail + skip, else FAIL.
pub fn ksft_finished() -> ! {
    let e = global().finished();
    e.exit()
}
/// `ksft_exit(cond)`.
pub fn ksft_exit(cond: bool) -> ! {
    let e = global().exit(cond);
    e.exit()
}
/// `ksft_exit_pass()`.
pub fn ksft_exit_pass() -> ! {
    let e = global().exit_pass();
    e.exit()
}
/// `ksft_exit_fail()`.
pub fn ksft_exit_fail() -> ! {
    let e = global().exit_fail();
    e.exit()
}
/// `ksft_exit_xfail()`.
pub fn ksft_exit_xfail() -> ! {
    let e = global().exit_xfail();
    e.exit()
}
/// `ksft_exit_xpass()`.
pub fn ksft_exit_xpass() -> ! {
    let e = global().exit_xpass();
    e.exit()
}
/// `ksft_exit_skip(msg)`.
pub fn ksft_exit_skip(msg: impl Display) -> ! {
    let e = global().exit_skip(msg);
    e.exit()
}
/// `ksft_exit_fail_msg(msg)`: `Bail out! msg`, the counts, exit FAIL.
pub fn ksft_exit_fail_msg(msg: impl Display) -> ! {
    let e = global().exit_fail_msg(msg);
    e.exit()
}
/// `ksft_exit_fail_perror(msg)` with the current `errno`.
pub fn ksft_exit_fail_perror(msg: impl Display) -> ! {
    let err = io::Error::last_os_error();
    let e = global().exit_fail_perror(msg, &err);
    e.exit()
}
