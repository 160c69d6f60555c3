//! Shared by the host tests that run one of the crate's suite binaries and check its
//! TAP with the ktap parser (`pagemap_ioctl_host.rs`, `regressions_host.rs`,
//! `soft_dirty.rs`): spawning the binary and the checks that must hold for any run
//! of a kselftest-style suite. What differs between the suites is a [`Suite`] value.

use ktap::{Status, Test};
use std::process::Command;

/// On a host kernel nobody chose (a CI runner's), a `not ok` may be that kernel's
/// verdict: it lacks a fix the suite checks. With `MM_HOST_KERNEL_MAY_FAIL=1` the
/// host tests print such failures instead of failing on them; every other check
/// (well formed, plan, names, Totals, exit code, explained results) still holds.
/// Unset (this project's CI, whose host kernel is known), any `not ok` fails.
pub fn kernel_may_fail(suite: &str, failures: u32, out: &str) -> bool {
    if failures == 0 || std::env::var_os("MM_HOST_KERNEL_MAY_FAIL").is_none() {
        return false;
    }
    eprintln!(
        "{suite}: {failures} not ok on this host kernel, tolerated (MM_HOST_KERNEL_MAY_FAIL):"
    );
    for l in out
        .lines()
        .filter(|l| l.starts_with("not ok") || l.starts_with("# "))
    {
        eprintln!("  {l}");
    }
    true
}

/// What [`well_formed`] requires of one suite's output beyond the common checks.
pub struct Suite {
    /// The binary's name, for messages.
    pub name: &'static str,
    /// Its path (`env!("CARGO_BIN_EXE_<name>")`).
    pub bin: &'static str,
    /// Whether a whole-suite skip (`1..0 # SKIP reason`) gives the expected reason.
    pub skip_all_reason: fn(&str) -> bool,
    /// The plan a run that is not skipped as a whole must announce, where it is fixed.
    pub plan: Option<u32>,
    /// Every SKIP must carry a non-empty reason and every failure a diagnostic line
    /// `<test name>: ...`.
    pub explained_results: bool,
}

impl Suite {
    /// A command for the suite binary, with `KSFT_TAP_LEVEL` removed so that it
    /// prints its own TAP header.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.bin);
        cmd.env_remove("KSFT_TAP_LEVEL");
        cmd
    }

    /// Runs `cmd` to completion: its stdout (which must be UTF-8) and exit code (it
    /// must not be killed by a signal).
    pub fn output(&self, mut cmd: Command) -> (String, i32) {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        let stdout = String::from_utf8(out.stdout).expect("TAP is UTF-8");
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("{} killed by a signal: {}", self.name, out.status));
        (stdout, code)
    }

    /// Checks everything that must hold for any run (`out` is its stdout, `code` its
    /// exit code) and returns the parsed document: no parse errors, no non-TAP lines,
    /// `TAP version 13`, no bail out, a plan; for a whole-suite skip no results, the
    /// expected reason and exit code 4 (KSFT_SKIP); otherwise the plan (the fixed one
    /// where there is one) equal to the number of results, numbered in order, a
    /// `# Totals` line that agrees with the results, and the exit code
    /// `ksft_finished()` gives: PASS only if plan == pass + xfail + skip.
    pub fn well_formed(&self, out: &str, code: i32) -> Test {
        let doc = ktap::parse(out);
        assert!(
            doc.all_errors().is_empty(),
            "parse errors {:?} in:\n{out}",
            doc.all_errors()
        );
        assert!(
            doc.unknown.is_empty(),
            "non-TAP lines {:?} in:\n{out}",
            doc.unknown
        );
        assert_eq!(doc.version, Some(("TAP".to_string(), 13)), "{out}");
        assert!(
            doc.bail_out.is_none(),
            "bail out: {:?}\n{out}",
            doc.bail_out
        );
        let plan = doc.plan.as_ref().expect("a plan line");
        if let Some(reason) = doc.skip_all_reason() {
            assert_eq!(plan.count, 0, "{out}");
            assert!(doc.subtests.is_empty(), "{out}");
            assert!((self.skip_all_reason)(reason), "{reason}");
            assert_eq!(code, ktap::KSFT_SKIP, "suite skip must exit 4:\n{out}");
            return doc;
        }
        if let Some(want) = self.plan {
            assert_eq!(plan.count, want, "upstream's plan:\n{out}");
        }
        assert_eq!(
            plan.count as usize,
            doc.subtests.len(),
            "plan vs results:\n{out}"
        );
        for (i, t) in doc.subtests.iter().enumerate() {
            assert_eq!(t.number as usize, i + 1, "{out}");
            if self.explained_results && t.status == Status::Skip {
                assert!(
                    t.reason.as_deref().is_some_and(|r| !r.is_empty()),
                    "a SKIP without a reason: {t:?}"
                );
            }
            if self.explained_results && t.status == Status::Fail {
                assert!(
                    t.diagnostics
                        .iter()
                        .any(|d| d.starts_with(&format!("{}: ", t.name))),
                    "a failure without a diagnostic naming it: {t:?}"
                );
            }
        }
        let c = doc.counts();
        let totals = doc.ksft_totals().expect("a Totals line");
        assert_eq!(
            (totals.pass, totals.fail, totals.skip),
            (c.pass, c.fail, c.skip),
            "Totals (pass, fail, skip) vs results:\n{out}"
        );
        let expect = if plan.count == c.pass + c.xfail + c.skip {
            ktap::KSFT_PASS
        } else {
            ktap::KSFT_FAIL
        };
        assert_eq!(code, expect, "exit code vs results:\n{out}");
        doc
    }
}

/// Makes `cmd`'s process see a kernel without the PAGEMAP_SCAN ioctl: a seccomp
/// filter (installed between fork and exec, inherited by the suite's children) answers
/// `ioctl(fd, PAGEMAP_SCAN, ..)` with ENOTTY, what a kernel before 6.7 (or the 6.1
/// series before its patch 3) answers. Every other system call is allowed. x86-64
/// only (another architecture's ioctl passes unchanged).
#[allow(
    dead_code,
    reason = "soft_dirty.rs includes this file and does not use it"
)]
pub fn without_pagemap_scan(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // struct seccomp_data: nr at 0, arch at 4, args[1] (the ioctl request, low half
    // on little-endian) at 24.
    let filter = [
        op(LD_W_ABS, 0, 0, 4),
        op(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 3, libc::SYS_ioctl as u32),
        op(LD_W_ABS, 0, 0, 24),
        op(JEQ_K, 0, 1, mm::uapi::PAGEMAP_SCAN),
        op(RET_K, 0, 0, RET_ERRNO | libc::ENOTTY as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes two prctl calls on data
    // it owns (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
