//! The forking runner end to end: single-threaded (`harness = false`), so `fork()`
//! is safe. Each scenario's TAP is checked line by line.

use ktap::runner::{run_forked, run_tests, skip, Case, Outcome, TestResult};
use ktap::{ensure, Ksft};
use std::time::Duration;

fn pass() -> TestResult {
    Ok(())
}

fn fails() -> TestResult {
    let x = 2;
    ensure!(x == 3, "x is {x}, not 3");
    Ok(())
}

fn skips() -> TestResult {
    skip("no THP here")
}

fn panics() -> TestResult {
    panic!("deliberate panic")
}

fn segfaults() -> TestResult {
    // A real fault: a write to a PROT_NONE page (raise() would be absorbed by std's
    // SIGSEGV handler for stack overflows).
    // SAFETY: a fresh anonymous mapping, written once to fault.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        (p as *mut u8).write_volatile(1);
    }
    Ok(())
}

fn exits() -> TestResult {
    std::process::exit(5)
}

fn hangs() -> TestResult {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn main() {
    // The default panic hook prints to stderr; keep the test's output readable.
    std::panic::set_hook(Box::new(|_| {}));
    let t = Duration::from_secs(10);

    let cases: &[Case] = &[
        ("a_pass", pass),
        ("b_fail", fails),
        ("c_skip", skips),
        ("d_panic", panics),
        ("e_segv", segfaults),
        ("f_exit", exits),
        ("g_pass", pass),
    ];
    let mut k = Ksft::new(Vec::new());
    k.set_plan(cases.len() as u32);
    run_tests(&mut k, cases, t);
    let c = k.counts();
    let out = String::from_utf8(k.into_inner()).unwrap();
    let want = [
        "1..7",
        "ok 1 a_pass",
        "# b_fail: x is 2, not 3",
        "not ok 2 b_fail",
        "ok 3 c_skip # SKIP no THP here",
        "# d_panic: panicked: deliberate panic",
        "not ok 4 d_panic",
        "# e_segv: child killed by SIGSEGV (signal 11)",
        "not ok 5 e_segv",
        "# f_exit: child exited with status 5 and result \"\"",
        "not ok 6 f_exit",
        "ok 7 g_pass",
    ];
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, want, "runner output:\n{out}");
    assert_eq!((c.pass, c.fail, c.skip), (2, 4, 1));

    // A hung child is killed at the timeout and named.
    let started = std::time::Instant::now();
    match run_forked(hangs, Duration::from_millis(300)) {
        Outcome::Fail(why) => assert!(why.starts_with("timed out after 0.3 s"), "{why}"),
        o => panic!("hung child: {o:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    println!("runner: 3 scenarios ok");
}
