//! Fixtures: golden consoles under xtask/tests/data/alarms/ (whole reports as the
//! kernel prints them) and, for every pattern, its first lines in the exact format of
//! the printing function named in configs/alarms.yaml, wrapped by [`report`] in the
//! x86_64 dump_stack layout.

use super::*;

const LOCKDEP_RECURSIVE: &str =
    include_str!("../../tests/data/alarms/lockdep-recursive-hugetlb-6.12.txt");
const WARNING_REFCOUNT: &str = include_str!("../../tests/data/alarms/warning-refcount-6.1.txt");
const OOPS_PANIC: &str = include_str!("../../tests/data/alarms/oops-null-deref-panic-6.12.txt");
const HUNG_TASK: &str = include_str!("../../tests/data/alarms/hung-task-6.12.txt");
const RCU_SELF: &str = include_str!("../../tests/data/alarms/rcu-stall-self-6.1.txt");
const RCU_OTHER: &str = include_str!("../../tests/data/alarms/rcu-stall-other-6.12.txt");
const KASAN: &str = include_str!("../../tests/data/alarms/kasan-uaf-6.12.txt");
const MM_STATE: &str = include_str!("../../tests/data/alarms/mm-state-6.1.txt");
const CLEAN_61: &str = include_str!("../../tests/data/alarms/clean-6.1-pagemap-scan.txt");
/// v6.12 with configs/debug.config (lockdep, KFENCE, RCU self tests at boot), soft-dirty.
const CLEAN_612_DEBUG: &str =
    include_str!("../../tests/data/alarms/clean-6.12-debug-soft-dirty.txt");

fn pats() -> Patterns {
    static P: LazyLock<Patterns> = LazyLock::new(|| Patterns::builtin().unwrap());
    P.clone()
}

fn scan_all(console: &str) -> Vec<Alarm> {
    scan(console, &pats(), &Allowlist::default())
}

fn names(a: &[Alarm]) -> Vec<&str> {
    a.iter().map(|a| a.pattern.as_str()).collect()
}

/// A report as x86_64 prints it: the title lines, dump_stack's header, the
/// registers, the Call Trace between <TASK> markers and the end marker.
fn report(title: &[&str], rip: &str, frames: &[&str]) -> String {
    let mut s = String::from("init: running pagemap_ioctl\n");
    for t in title {
        s.push_str(t);
        s.push('\n');
    }
    s.push_str("Modules linked in:\n");
    s.push_str("CPU: 1 PID: 93 Comm: pagemap_ioctl Not tainted 6.1.192 #1\n");
    s.push_str("Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014\n");
    s.push_str(&format!("RIP: 0010:{rip}+0x3c1/0x4e0\n"));
    s.push_str("Code: 48 89 c7 e8 53 f1 ff ff 48 8b 44 24 10 <0f> 0b 48 83 c3 08\n");
    s.push_str("RSP: 0018:ffffc9000022bc80 EFLAGS: 00010246\n");
    s.push_str("RAX: 0000000000000000 RBX: ffff888004a8e400 RCX: 0000000000000000\n");
    s.push_str("Call Trace:\n <TASK>\n");
    for (i, f) in frames.iter().enumerate() {
        s.push_str(&format!(
            " {f}+0x{:x}/0x{:x}\n",
            0x10 + i * 7,
            0x200 + i * 16
        ));
    }
    s.push_str(
        " </TASK>\n---[ end trace 0000000000000000 ]---\ninit: pagemap_ioctl: 120 ms exit=1\n",
    );
    s
}

const FRAMES: &[&str] = &[
    "pagemap_scan_pmd_entry",
    "walk_pgd_range",
    "__walk_page_range",
    "walk_page_range",
    "do_pagemap_scan",
    "do_pagemap_cmd",
    "__x64_sys_ioctl",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
];

/// For every pattern: reports whose first lines are printed in the kernel's format.
fn per_pattern() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("kasan", vec![
            "==================================================================",
            "BUG: KASAN: slab-out-of-bounds in pagemap_scan_output+0x9c/0x1a0",
            "Write of size 24 at addr ffff888004b3e5f8 by task pagemap_ioctl/93",
        ]),
        ("kfence", vec![
            "==================================================================",
            "BUG: KFENCE: use-after-free read in pagemap_scan_backout_range+0x4f/0x120",
            "",
            "Use-after-free read at 0x00000000b31c2481 (in kfence-#12):",
        ]),
        ("ubsan", vec![
            "================================================================================",
            "UBSAN: shift-out-of-bounds in fs/proc/task_mmu.c:1923:20",
            "shift exponent 64 is too large for 64-bit type 'long unsigned int'",
        ]),
        ("ubsan", vec![
            "------------[ cut here ]------------",
            "UBSAN: array-index-out-of-bounds in mm/hugetlb.c:1234:5",
            "index 3 is out of range for type 'unsigned long[2]'",
        ]),
        ("slab-corruption", vec![
            "=============================================================================",
            "BUG kmalloc-128 (Not tainted): Object already free",
            "-----------------------------------------------------------------------------",
            "",
            "Allocated in do_pagemap_scan+0x10a/0x5a0 age=3 cpu=0 pid=93",
        ]),
        ("slab-corruption", vec![
            "BUG kmalloc-64 (Tainted: G    B             ): Poison overwritten",
        ]),
        ("lockdep-circular", vec![
            "",
            "======================================================",
            "WARNING: possible circular locking dependency detected",
            "6.1.192 #1 Not tainted",
            "------------------------------------------------------",
            "pagemap_ioctl/93 is trying to acquire lock:",
            "ffff888004f3a148 (&mm->mmap_lock){++++}-{3:3}, at: do_pagemap_scan+0x1b5/0x5a0",
            "",
            "but task is already holding lock:",
            "ffff888004b8e0d8 (&hugetlb_fault_mutex_table[i]){+.+.}-{3:3}, at: hugetlb_fault+0x9e/0x8c0",
            "",
            "which lock already depends on the new lock.",
            "",
            "",
            "the existing dependency chain (in reverse order) is:",
            "",
            "-> #1 (&mm->mmap_lock){++++}-{3:3}:",
            "       lock_acquire+0xc4/0x2d0",
            "       down_read+0x3e/0x140",
            "       do_pagemap_scan+0x1b5/0x5a0",
            "",
            "-> #0 (&hugetlb_fault_mutex_table[i]){+.+.}-{3:3}:",
            "       __lock_acquire+0x13c1/0x2110",
            "       lock_acquire+0xc4/0x2d0",
            "       __mutex_lock+0x9a/0xa40",
            "       hugetlb_fault+0x9e/0x8c0",
            "",
            "other info that might help us debug this:",
            "",
            "stack backtrace:",
        ]),
        ("lockdep-recursive", vec![
            "============================================",
            "WARNING: possible recursive locking detected",
            "6.1.192 #1 Not tainted",
            "--------------------------------------------",
        ]),
        ("lockdep-inconsistent", vec![
            "================================",
            "WARNING: inconsistent lock state",
            "6.1.192 #1 Not tainted",
            "--------------------------------",
            "inconsistent {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage.",
            "pagemap_ioctl/93 [HC0[0]:SC0[0]:HE1:SE1] takes:",
        ]),
        ("lockdep-irq-order", vec![
            "========================================================",
            "WARNING: possible irq lock inversion dependency detected",
        ]),
        ("lockdep-irq-order", vec![
            "=====================================================",
            "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
        ]),
        ("suspicious-rcu", vec![
            "=============================",
            "WARNING: suspicious RCU usage",
            "6.1.192 #1 Not tainted",
            "-----------------------------",
            "mm/hugetlb.c:1234 suspicious rcu_dereference_check() usage!",
        ]),
        ("lockdep-misuse", vec![
            "=====================================",
            "WARNING: bad unlock balance detected!",
            "pagemap_ioctl/93 is trying to release lock (&mm->mmap_lock) at:",
        ]),
        ("lockdep-misuse", vec![
            "================================================",
            "WARNING: lock held when returning to user space!",
        ]),
        ("lockdep-misuse", vec![
            "====================================",
            "WARNING: pagemap_ioctl/93 still has locks held!",
        ]),
        ("lockdep-off", vec![
            "BUG: MAX_LOCKDEP_ENTRIES too low!",
            "turning off the locking correctness validator.",
        ]),
        ("sleep-in-atomic", vec![
            "BUG: sleeping function called from invalid context at mm/hugetlb.c:5123",
            "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 93, name: pagemap_ioctl",
            "preempt_count: 1, expected: 0",
            "RCU nest depth: 0, expected: 0",
        ]),
        ("scheduling-while-atomic", vec![
            "BUG: scheduling while atomic: pagemap_ioctl/93/0x00000002",
        ]),
        ("soft-lockup", vec![
            "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [pagemap_ioctl:93]",
        ]),
        ("hard-lockup", vec!["NMI watchdog: Watchdog detected hard LOCKUP on cpu 1"]),
        ("hard-lockup", vec!["watchdog: Watchdog detected hard LOCKUP on cpu 1"]),
        ("hard-lockup", vec!["watchdog: CPU0: Watchdog detected hard LOCKUP on cpu 1"]),
        ("rcu-stall", vec![
            "rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 1-... } 21002 jiffies s: 133 root: 0x2/.",
        ]),
        ("rcu-stall", vec!["INFO: rcu_tasks detected stalls on tasks:"]),
        ("hung-task", vec![
            "INFO: task soft-dirty:88 blocked for more than 120 seconds.",
            "      Not tainted 6.1.192 #1",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
            "task:soft-dirty      state:D stack:0     pid:88    ppid:1      flags:0x00004002",
        ]),
        ("hung-task", vec![
            "INFO: task pagemap_ioctl:95 blocked in I/O wait for more than 122 seconds.",
            "      Not tainted 7.2.13 #1",
        ]),
        ("workqueue-lockup", vec![
            "BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 31s!",
        ]),
        ("bad-page-map", vec![
            "BUG: Bad page map in process pagemap_ioctl  pte:8000000004a2c025 pmd:04a8b067",
            "page:00000000c1a4f2d5 refcount:0 mapcount:-1 mapping:0000000000000000 index:0x0 pfn:0x4a2c",
            "addr:00007f3c00200000 vm_flags:00100073 anon_vma:ffff888003c4a000 mapping:0000000000000000 index:7f3c00200",
            "file:(null) fault:0x0 mmap:0x0 read_folio:0x0",
        ]),
        ("bad-page-state", vec![
            "BUG: Bad page state in process pagemap_ioctl  pfn:04a2c",
            "page dumped because: nonzero mapcount",
        ]),
        ("bad-rss-counter", vec![
            "BUG: Bad rss-counter state mm:00000000b2e4a9c1 type:MM_ANONPAGES val:1 Comm:pagemap_ioctl Pid:93",
        ]),
        ("pgtables-bytes", vec!["BUG: non-zero pgtables_bytes on freeing mm: -4096"]),
        ("bad-swap-entry", vec!["swap_info_get: Bad swap file entry 3ffffffffffff"]),
        ("bad-swap-entry", vec!["Bad swap offset entry 0c000001"]),
        ("refcount", vec![
            "------------[ cut here ]------------",
            "refcount_t: addition on 0; use-after-free.",
            "WARNING: CPU: 1 PID: 93 at lib/refcount.c:25 refcount_warn_saturate+0x13a/0x150",
        ]),
        ("list-corruption", vec![
            "------------[ cut here ]------------",
            "list_del corruption. prev->next should be ffff888004b3e600, but was ffff888004b3e6c0. (prev=ffff888004b3e6c0)",
            "WARNING: CPU: 1 PID: 93 at lib/list_debug.c:62 __list_del_entry_valid_or_report+0xa1/0xe0",
        ]),
        ("list-corruption", vec![
            "------------[ cut here ]------------",
            "list_add corruption. next->prev should be prev (ffff888004b3e600), but was ffff888004b3e6c0. (next=ffff888004b3e6c0).",
            "WARNING: CPU: 0 PID: 93 at lib/list_debug.c:29 __list_add_valid+0x6d/0xa0",
        ]),
        ("list-corruption", vec![
            "list_del corruption, ffff888004b3e600->next is LIST_POISON1 (dead000000000100)",
            "------------[ cut here ]------------",
            "kernel BUG at lib/list_debug.c:56!",
            "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("oom-kill", vec![
            "pagemap_ioctl invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        ]),
        ("nx-exec", vec![
            "kernel tried to execute NX-protected page - exploit attempt? (uid: 0)",
            "BUG: unable to handle page fault for address: ffff888004a2c000",
            "#PF: supervisor instruction fetch in kernel mode",
            "#PF: error_code(0x0011) - permissions violation",
            "Oops: 0011 [#1] PREEMPT SMP NOPTI",
        ]),
        ("page-fault", vec![
            "BUG: unable to handle page fault for address: ffffc9000022c000",
            "#PF: supervisor write access in kernel mode",
            "#PF: error_code(0x0002) - not-present page",
            "PGD 3a81067 P4D 3a81067 PUD 3a80067 PMD 0 ",
            "Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI",
        ]),
        ("null-deref", vec![
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "#PF: supervisor read access in kernel mode",
            "#PF: error_code(0x0000) - not-present page",
            "PGD 0 P4D 0 ",
            "Oops: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("stack-overflow", vec![
            "BUG: TASK stack guard page was hit at 00000000a3f5c2d1 (stack is 00000000e3b0c442..000000003a7c1d2e)",
            "stack guard page: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("general-protection-fault", vec![
            "general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("general-protection-fault", vec![
            "Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("kernel-bug", vec![
            "kernel BUG at mm/hugetlb.c:5678!",
            "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("kernel-bug", vec![
            "page:000000001d4c6f1e refcount:2 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x4a200",
            "page dumped because: VM_BUG_ON_PAGE(PageTail(page))",
            "------------[ cut here ]------------",
            "kernel BUG at mm/hugetlb.c:5678!",
            "Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        ]),
        ("oops", vec!["invalid opcode: 0000 [#1] PREEMPT SMP NOPTI"]),
        ("panic", vec!["Kernel panic - not syncing: softlockup: hung tasks"]),
        ("warning", vec![
            "------------[ cut here ]------------",
            "WARNING: CPU: 1 PID: 93 at fs/proc/task_mmu.c:2301 pagemap_scan_pmd_entry+0x3c1/0x4e0",
        ]),
        ("warning", vec![
            "------------[ cut here ]------------",
            "WARNING: fs/proc/task_mmu.c:2301 at pagemap_scan_pmd_entry+0x3c1/0x4e0, CPU#1: pagemap_ioctl/93",
        ]),
        ("bug", vec![
            "BUG: using smp_processor_id() in preemptible [00000000] code: pagemap_ioctl/93",
            "caller is pagemap_scan_init_bmap+0x12/0x40",
        ]),
        ("bug", vec!["BUG: spinlock bad magic on CPU#0, pagemap_ioctl/93"]),
    ]
}

#[test]
fn builtin_patterns_parse_and_every_pattern_has_a_fixture() {
    let p = pats();
    let cases = per_pattern();
    for pat in &p.patterns {
        assert!(
            cases.iter().any(|(n, _)| *n == pat.name),
            "pattern {} has no fixture in per_pattern()",
            pat.name
        );
    }
    for (n, _) in &cases {
        assert!(p.get(n).is_some(), "fixture for unknown pattern {n}");
    }
}

#[test]
fn every_pattern_names_its_report() {
    let p = pats();
    for (want, title) in per_pattern() {
        let console = report(&title, "pagemap_scan_pmd_entry", FRAMES);
        let got = scan(&console, &p, &Allowlist::default());
        assert_eq!(got.len(), 1, "{want}: {:#?}", got);
        let a = &got[0];
        assert_eq!(a.pattern, want, "{console}");
        assert!(a.fails());
        assert_eq!(a.fatal, want == "panic", "{want}");
        let trig = p.get(want).unwrap();
        assert!(
            a.lines.iter().any(|l| trig.regex.is_match(l)),
            "{want}: the trigger line is quoted: {:?}",
            a.lines
        );
        if trig.trace {
            // The whole block up to the end marker, and the frames of the trace.
            assert_eq!(
                a.lines.last().unwrap(),
                "---[ end trace 0000000000000000 ]---",
                "{want}"
            );
            assert_eq!(
                a.fingerprint.frames,
                [
                    "pagemap_scan_pmd_entry",
                    "walk_pgd_range",
                    "__walk_page_range",
                    "walk_page_range",
                    "do_pagemap_scan"
                ],
                "{want}"
            );
            assert_eq!(
                a.fingerprint.id,
                format!(
                    "{want}:pagemap_scan_pmd_entry<walk_pgd_range<__walk_page_range<walk_page_range<do_pagemap_scan"
                )
            );
        } else {
            assert!(a.fingerprint.frames.is_empty());
            assert!(a.fingerprint.id.starts_with(&format!("{want}:")));
        }
        assert_eq!(a.fingerprint.hash.len(), 8);
    }
}

#[test]
fn the_same_titles_with_timestamps_and_crlf_give_the_same_result() {
    let p = pats();
    for (want, title) in per_pattern() {
        let plain = report(&title, "pagemap_scan_pmd_entry", FRAMES);
        let stamped: String = plain
            .lines()
            .enumerate()
            .map(|(i, l)| format!("[{:>5}.{:06}] {l}\r\n", 12 + i / 10, i * 1371 % 1000000))
            .collect();
        let a = scan(&plain, &p, &Allowlist::default());
        let b = scan(&stamped, &p, &Allowlist::default());
        assert_eq!(names(&a), names(&b), "{want}");
        assert_eq!(a[0].fingerprint, b[0].fingerprint, "{want}");
        assert_eq!(a[0].lines, b[0].lines, "{want}");
    }
}

#[test]
fn a_clean_console_gives_nothing() {
    assert!(scan_all(CLEAN_61).is_empty());
    assert!(scan_all(CLEAN_612_DEBUG).is_empty());
    let noise = "\
RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks, data leaks possible!
Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar
... MAX_LOCKDEP_SUBCLASSES:  8
rcu: RCU lockdep checking is enabled.
kfence: initialized - using 2097152 bytes for 255 objects at 0x(____ptrval____)-0x(____ptrval____)
NMI watchdog: Perf NMI watchdog permanently disabled
INFO: lockdep is turned off.
init: BUG: the guest's own words are not the kernel's
ok 12 Test test_hugepage WARNING: not a kernel line
# Oops, a test diagnostic
workqueue: drain_vmap_area_work hogged CPU for >10000us 4 times, consider switching to WQ_UNBOUND
";
    assert!(scan_all(noise).is_empty(), "{:#?}", scan_all(noise));
}

#[test]
fn lockdep_recursive_deadlock_then_soft_lockup() {
    let a = scan_all(LOCKDEP_RECURSIVE);
    assert_eq!(names(&a), ["lockdep-recursive", "soft-lockup"]);
    let l = &a[0];
    assert_eq!(l.line, 4);
    assert_eq!(l.lines[0], "WARNING: possible recursive locking detected");
    assert_eq!(l.lines.last().unwrap(), " </TASK>");
    assert_eq!(
        l.fingerprint.id,
        "lockdep-recursive:pagemap_scan_hugetlb_entry<walk_hugetlb_range<__walk_page_range<walk_page_range_mm<do_pagemap_scan"
    );
    // The soft lockup of the same CPU: RIP in the spinlock, IRQ frames and `?` frames
    // left out, the same chain as the lockdep report.
    let s = &a[1];
    assert!(s.lines[0].starts_with("watchdog: BUG: soft lockup - CPU#1 stuck for 26s!"));
    assert_eq!(s.fingerprint.frames, l.fingerprint.frames);
    assert_ne!(s.fingerprint.id, l.fingerprint.id);
}

/// Rewrites every number the kernel prints that differs between two runs of the
/// same bug: timestamps, code offsets and sizes, addresses, PIDs.
fn another_run(console: &str) -> String {
    let ts = Regex::new(r"^\[\s*(\d+)\.(\d+)\]").unwrap();
    let off = Regex::new(r"\+0x[0-9a-f]+/0x[0-9a-f]+").unwrap();
    let addr = Regex::new(r"ffff[0-9a-f]{12}").unwrap();
    let pid = Regex::new(r"(PID: |pid:|/)93\b").unwrap();
    console
        .lines()
        .map(|l| {
            let l = ts.replace(l, |c: &regex::Captures| {
                format!("[{:>5}.{}]", c[1].parse::<u64>().unwrap() + 311, &c[2])
            });
            let l = off.replace_all(&l, "+0x1f7/0x9a0");
            let l = addr.replace_all(&l, "ffff88800dead000");
            pid.replace_all(&l, "${1}4242").into_owned() + "\n"
        })
        .collect()
}

#[test]
fn fingerprints_are_stable_across_runs() {
    for console in [
        LOCKDEP_RECURSIVE,
        WARNING_REFCOUNT,
        OOPS_PANIC,
        HUNG_TASK,
        RCU_SELF,
        RCU_OTHER,
        KASAN,
        MM_STATE,
    ] {
        let other = another_run(console);
        assert_ne!(other, console);
        let a = scan_all(console);
        let b = scan_all(&other);
        assert!(!a.is_empty());
        let ids = |v: &[Alarm]| v.iter().map(|a| a.fingerprint.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b), "{console}");
    }
    // A junk `?` frame from a stale stack slot changes nothing either.
    let junk = LOCKDEP_RECURSIVE.replace(
        "  walk_hugetlb_range+0xd1/0x180\n",
        "  ? stale_function+0x10/0x20\n[   42.124362]  walk_hugetlb_range+0xd1/0x180\n",
    );
    assert_eq!(
        scan_all(&junk)[0].fingerprint,
        scan_all(LOCKDEP_RECURSIVE)[0].fingerprint
    );
}

#[test]
fn different_traces_give_different_fingerprints() {
    let a = scan_all(LOCKDEP_RECURSIVE);
    let b = scan_all(&LOCKDEP_RECURSIVE.replace("walk_hugetlb_range", "walk_pmd_range"));
    assert_ne!(a[0].fingerprint.id, b[0].fingerprint.id);
    assert_ne!(a[0].fingerprint.hash, b[0].fingerprint.hash);
    // Same trace, other pattern: another id.
    let w = report(
        &["WARNING: CPU: 1 PID: 93 at fs/proc/task_mmu.c:2301 f+0x1/0x2"],
        "x",
        FRAMES,
    );
    let g = report(&["kernel BUG at fs/proc/task_mmu.c:2301!"], "x", FRAMES);
    assert_ne!(
        scan_all(&w)[0].fingerprint.id,
        scan_all(&g)[0].fingerprint.id
    );
    // Frames past the fifth do not count; the first five do.
    let mut longer = FRAMES.to_vec();
    longer.insert(6, "extra_outer_frame");
    assert_eq!(
        scan_all(&report(&["BUG: x"], "pagemap_scan_pmd_entry", FRAMES))[0].fingerprint,
        scan_all(&report(&["BUG: x"], "pagemap_scan_pmd_entry", &longer))[0].fingerprint
    );
    let mut swapped = FRAMES.to_vec();
    swapped.swap(1, 2);
    assert_ne!(
        scan_all(&report(&["BUG: x"], "pagemap_scan_pmd_entry", FRAMES))[0].fingerprint,
        scan_all(&report(&["BUG: x"], "pagemap_scan_pmd_entry", &swapped))[0].fingerprint
    );
}

#[test]
fn refcount_warning_is_one_report_quoted_from_its_message() {
    let a = scan_all(WARNING_REFCOUNT);
    assert_eq!(names(&a), ["refcount"]);
    let r = &a[0];
    assert_eq!(r.line, 3);
    assert_eq!(r.lines[0], "refcount_t: underflow; use-after-free.");
    assert!(r.lines[1].starts_with("WARNING: CPU: 0 PID: 88 at lib/refcount.c:28"));
    assert_eq!(
        r.lines.last().unwrap(),
        "---[ end trace 0000000000000000 ]---"
    );
    // RIP refcount_warn_saturate and the `?` trap frames are left out; .isra.0 is cut.
    assert_eq!(
        r.fingerprint.id,
        "refcount:page_remove_rmap<zap_pte_range<unmap_page_range<unmap_vmas<unmap_region"
    );
}

#[test]
fn oops_then_panic() {
    let a = scan_all(OOPS_PANIC);
    assert_eq!(names(&a), ["null-deref", "panic"]);
    assert!(!a[0].fatal);
    assert_eq!(
        a[0].lines.last().unwrap(),
        "---[ end trace 0000000000000000 ]---"
    );
    assert!(a[0]
        .lines
        .iter()
        .any(|l| l == "Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI"));
    assert_eq!(
        a[0].fingerprint.frames,
        [
            "pagemap_scan_thp_entry",
            "pagemap_scan_pmd_entry",
            "walk_pgd_range",
            "__walk_page_range",
            "walk_page_range_mm"
        ]
    );
    assert!(a[1].fatal);
    assert!(a[1].lines[0].starts_with("Kernel panic - not syncing: Attempted to kill init!"));
    assert!(a[1]
        .lines
        .last()
        .unwrap()
        .starts_with("---[ end Kernel panic"));
    assert_eq!(
        a[1].fingerprint.frames,
        ["do_exit", "make_task_dead", "rewind_stack_and_make_dead"]
    );
}

#[test]
fn hung_task_names_the_waiter() {
    let a = scan_all(HUNG_TASK);
    assert_eq!(names(&a), ["hung-task"]);
    // The scheduler and rwsem frames are left out: the id is where it waits.
    assert_eq!(
        a[0].fingerprint.frames,
        ["lock_mm_and_find_vma"],
        "{:#?}",
        a[0]
    );
    // The held-locks list after the trace, up to its closing line, is quoted.
    assert!(a[0]
        .lines
        .iter()
        .any(|l| l.contains("pagemap_scan_hugetlb_entry")));
    assert_eq!(
        a[0].lines.last().unwrap(),
        "============================================="
    );
}

#[test]
fn rcu_stalls_in_both_wordings() {
    let s = scan_all(RCU_SELF);
    assert_eq!(names(&s), ["rcu-stall"]);
    assert_eq!(
        s[0].lines[0],
        "rcu: INFO: rcu_sched self-detected stall on CPU"
    );
    let o = scan_all(RCU_OTHER);
    assert_eq!(names(&o), ["rcu-stall"]);
    assert_eq!(
        o[0].lines[0],
        "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"
    );
    // The interrupted code (its RIP inside the trace), not the timer or NMI path.
    for a in [&s[0], &o[0]] {
        assert_eq!(
            a.fingerprint.frames[..3],
            [
                "pagemap_scan_pmd_entry",
                "walk_pgd_range",
                "__walk_page_range"
            ]
        );
    }
}

#[test]
fn kasan_report_up_to_its_closing_line() {
    let a = scan_all(KASAN);
    assert_eq!(names(&a), ["kasan"]);
    assert!(a[0].lines.iter().any(|l| l == "Freed by task 93:"));
    assert!(is_separator(a[0].lines.last().unwrap()));
    assert_eq!(
        a[0].fingerprint.frames,
        [
            "pagemap_scan_backout_range",
            "pagemap_scan_pmd_entry",
            "walk_pgd_range",
            "__walk_page_range",
            "walk_page_range_mm"
        ]
    );
}

#[test]
fn mm_state_reports_with_and_without_traces() {
    let a = scan_all(MM_STATE);
    assert_eq!(
        names(&a),
        ["bad-page-state", "bad-rss-counter", "pgtables-bytes"]
    );
    assert_eq!(
        a[0].fingerprint.frames,
        [
            "free_pcp_prepare",
            "free_unref_page_list",
            "release_pages",
            "tlb_finish_mmu",
            "unmap_region"
        ]
    );
    // Both rss counters are one report; without a trace the id is the title with
    // its numbers and the hashed pointer replaced.
    assert_eq!(a[1].lines.len(), 2);
    assert_eq!(
        a[1].fingerprint.id,
        "bad-rss-counter:BUG: Bad rss-counter state mm:X type:MM_ANONPAGES val:N"
    );
    assert_eq!(
        a[2].fingerprint.id,
        "pgtables-bytes:BUG: non-zero pgtables_bytes on freeing mm: N"
    );
}

#[test]
fn a_report_cut_short_keeps_its_lines() {
    let cut: String = OOPS_PANIC
        .lines()
        .take(9)
        .map(|l| format!("{l}\n"))
        .collect();
    let a = scan_all(&cut);
    assert_eq!(names(&a), ["null-deref"]);
    assert_eq!(a[0].lines.len(), 9);
    assert_eq!(a[0].fingerprint.frames, ["pagemap_scan_thp_entry"]);
}

#[test]
fn a_traceless_report_does_not_swallow_the_next_one() {
    let console = format!(
        "BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 31s!\n{}{}",
        "Showing busy workqueues and worker pools:\n".repeat(20),
        report(
            &["watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [init:1]"],
            "f",
            FRAMES
        )
    );
    let a = scan_all(&console);
    assert_eq!(names(&a), ["workqueue-lockup", "soft-lockup"]);
    // The trigger line, the 20 lines after it and the next line (no trigger).
    assert_eq!(a[0].lines.len(), 22);
    assert!(a[0].fingerprint.frames.is_empty());
}

#[test]
fn old_style_trace_without_markers() {
    let console = "\
kernel BUG at mm/hugetlb.c:5678!
invalid opcode: 0000 [#1] SMP
RIP: 0010:[<ffffffff811c2a3e>]  [<ffffffff811c2a3e>] hugetlb_fault+0x3e/0x8c0
Call Trace:
 [<ffffffff811a1b2c>] handle_mm_fault+0x11c/0x300
 [<ffffffff81060f2d>] ? __do_page_fault+0x1ad/0x470
 [<ffffffff81061200>] do_page_fault+0x20/0x70
Code: 48 8b 45 00 <0f> 0b
RIP  [<ffffffff811c2a3e>] hugetlb_fault+0x3e/0x8c0
---[ end trace 5e4a3f2b1c0d9e8f ]---
";
    let a = scan_all(console);
    assert_eq!(names(&a), ["kernel-bug"]);
    assert_eq!(
        a[0].fingerprint.frames,
        ["hugetlb_fault", "handle_mm_fault", "do_page_fault"]
    );
    assert_eq!(
        a[0].lines.last().unwrap(),
        "---[ end trace 5e4a3f2b1c0d9e8f ]---"
    );
}

#[test]
fn timestamps_and_caller_ids_are_stripped() {
    assert_eq!(strip_timestamp("[   12.345678] WARNING: x"), "WARNING: x");
    assert_eq!(strip_timestamp("[12.3] [    T93] BUG: y\r"), "BUG: y");
    assert_eq!(strip_timestamp("[   42.1] "), "");
    assert_eq!(
        strip_timestamp("[<ffffffff81000000>] f+0x1/0x2"),
        "[<ffffffff81000000>] f+0x1/0x2"
    );
    assert_eq!(
        strip_timestamp("[mem 0x0-0x9fbff] usable"),
        "[mem 0x0-0x9fbff] usable"
    );
}

#[test]
fn allowlist_allows_by_pattern_and_match() {
    let p = pats();
    let allow = Allowlist::parse(
        "- pattern: soft-lockup\n  match: 'pagemap_scan_hugetlb_entry'\n  reason: the deadlock patch under test\n",
        "t",
    )
    .unwrap();
    allow.validate(&p, "targets[0].alarms_allow").unwrap();
    let a = scan(LOCKDEP_RECURSIVE, &p, &allow);
    assert!(a[0].fails(), "lockdep-recursive is not listed");
    assert_eq!(
        a[1].allowed.as_deref(),
        Some("the deadlock patch under test")
    );
    assert!(!a[1].fails());
    // A match that does not hit allows nothing.
    let other = Allowlist::parse(
        "- {pattern: soft-lockup, match: 'no_such_function', reason: r}\n",
        "t",
    )
    .unwrap();
    assert!(scan(LOCKDEP_RECURSIVE, &p, &other).iter().all(Alarm::fails));
    // Without `match`, every report of the pattern.
    let any = Allowlist::parse("- {pattern: lockdep-recursive, reason: r}\n", "t").unwrap();
    let a = scan(LOCKDEP_RECURSIVE, &p, &any);
    assert!(!a[0].fails() && a[1].fails());
}

#[test]
fn allowlist_errors_name_the_key() {
    let p = pats();
    let e = Allowlist::parse("- {pattern: soft-lockups, reason: r}\n", "t")
        .unwrap()
        .validate(&p, "targets[2].alarms_allow")
        .unwrap_err()
        .to_string();
    assert!(e.contains("targets[2].alarms_allow[0].pattern"), "{e}");
    assert!(
        e.contains("soft-lockups") && e.contains("soft-lockup,"),
        "{e}"
    );
    let e = Allowlist::parse("- {pattern: bug, reason: ' '}\n", "t")
        .unwrap()
        .validate(&p, "k")
        .unwrap_err()
        .to_string();
    assert!(e.contains("k[0].reason"), "{e}");
    let e = format!(
        "{:#}",
        Allowlist::parse("- {pattern: bug, match: '(', reason: r}\n", "t").unwrap_err()
    );
    assert!(e.contains("regex") || e.contains("unclosed"), "{e}");
    let e = format!(
        "{:#}",
        Allowlist::parse("- {pattern: bug, reason: r, because: x}\n", "t").unwrap_err()
    );
    assert!(e.contains("because"), "{e}");
    assert!(Allowlist::parse("- {pattern: bug}\n", "t").is_err());
}

#[test]
fn pattern_file_errors_name_the_pattern() {
    let ok = "ignore_frames: ['x']\npatterns:\n  - {name: a, regex: 'A', reason: r, source: s}\n";
    Patterns::parse(ok, "f").unwrap();
    let bad = |text: &str, want: &str| {
        let e = format!("{:#}", Patterns::parse(text, "f.yaml").unwrap_err());
        assert!(e.contains(want), "{e}");
    };
    bad(&ok.replace("'A'", "'('"), "patterns[0] (\"a\"): regex");
    bad(&ok.replace("name: a", "name: A b"), "name must be");
    bad(&ok.replace("reason: r", "reason: ''"), "reason and source");
    bad(&ok.replace("source: s", "source: s, fatl: true"), "fatl");
    bad(
        &format!("{ok}  - {{name: a, regex: 'B', reason: r, source: s}}\n"),
        "duplicate",
    );
    bad("ignore_frames: []\npatterns: []\n", "no patterns");
}

#[test]
fn render_groups_by_fingerprint_and_quotes() {
    let p = pats();
    let two = format!("{LOCKDEP_RECURSIVE}{}", another_run(LOCKDEP_RECURSIVE));
    let allow = Allowlist::parse("- {pattern: soft-lockup, reason: expected}\n", "t").unwrap();
    let a = scan(&two, &p, &allow);
    assert_eq!(a.len(), 4);
    let out = render(&a, 3);
    let text = out.join("\n");
    assert_eq!(
        out.iter().filter(|l| l.starts_with("kernel alarm")).count(),
        2
    );
    assert!(out[0].starts_with("kernel alarm lockdep-recursive (lockdep saw a task take"));
    assert!(out[0].ends_with(": FAIL"));
    assert_eq!(out[1], format!("    fingerprint {}", a[0].fingerprint));
    assert!(out[1].contains("pagemap_scan_hugetlb_entry<walk_hugetlb_range"));
    assert!(
        out[2].starts_with("    console line 4, ") && out[2].ends_with(", 2 times:"),
        "{text}"
    );
    assert_eq!(out[3], "    | WARNING: possible recursive locking detected");
    assert!(out[6].starts_with("    | ... ("), "{text}");
    assert!(text.contains("kernel alarm soft-lockup") && text.contains(": allowed: expected"));
    let panic = render(&scan_all(OOPS_PANIC), 2).join("\n");
    assert!(panic.contains("kernel alarm panic (the kernel panicked and stopped): FATAL"));
    assert!(render(&[], 3).is_empty());
}

/// Each pattern's `source` names files and quotes format strings: in every kernel tree
/// at hand (the harness's source cache, and the colon-separated ALARMS_KERNEL_TREES),
/// at least one quoted string of each pattern is in one of its named files.
#[test]
#[ignore = "needs kernel trees (target/kernel/src/*/tree or ALARMS_KERNEL_TREES)"]
fn pattern_sources_quote_the_kernel() {
    let mut trees: Vec<std::path::PathBuf> = Vec::new();
    let cache = crate::util::target_dir().join("kernel/src");
    for e in std::fs::read_dir(&cache).into_iter().flatten().flatten() {
        if e.path().join("tree/Makefile").exists() {
            trees.push(e.path().join("tree"));
        }
    }
    if let Ok(extra) = std::env::var("ALARMS_KERNEL_TREES") {
        trees.extend(extra.split(':').filter(|s| !s.is_empty()).map(Into::into));
    }
    assert!(
        !trees.is_empty(),
        "no kernel tree under {}",
        cache.display()
    );
    let file = Regex::new(r"\b(?:arch|kernel|lib|mm|fs|include)(?:/[\w.-]+)+\.[ch]\b").unwrap();
    let quoted = Regex::new(r#""((?:[^"\\]|\\.)*)""#).unwrap();
    let mut bad = Vec::new();
    for tree in &trees {
        for p in &pats().patterns {
            let files: Vec<&str> = file.find_iter(&p.source).map(|m| m.as_str()).collect();
            let texts: Vec<String> = files
                .iter()
                .filter_map(|f| std::fs::read_to_string(tree.join(f)).ok())
                .collect();
            let found = quoted
                .captures_iter(&p.source)
                .map(|c| c[1].to_string())
                .filter(|q| q.len() >= 10)
                .any(|q| texts.iter().any(|t| t.contains(&format!("\"{q}\""))));
            if !found {
                bad.push(format!("{}: {} ({files:?})", tree.display(), p.name));
            }
        }
        eprintln!(
            "checked {} patterns against {}",
            pats().patterns.len(),
            tree.display()
        );
    }
    assert!(
        bad.is_empty(),
        "no quoted string found:\n{}",
        bad.join("\n")
    );
}

/// A kernel without KALLSYMS (tinyconfig's default) prints bare addresses: no frames,
/// so the id is the title, still the same across runs.
#[test]
fn without_kallsyms_the_title_is_the_id() {
    let console = |addr: &str, pid: u32, line: u32| {
        format!(
            "------------[ cut here ]------------
WARNING: CPU: 1 PID: {pid} at fs/proc/task_mmu.c:{line} 0x{addr}
Modules linked in:
CPU: 1 PID: {pid} Comm: pagemap_ioctl Not tainted 6.1.192 #1
RIP: 0010:0x{addr}
Call Trace:
 <TASK>
 0xffffffff811a1b2c
 ? 0xffffffff81060f2d
 </TASK>
---[ end trace 0000000000000000 ]---
"
        )
    };
    let a = scan_all(&console("ffffffff811c2a3e", 93, 2301));
    let b = scan_all(&console("ffffffff812d0004", 4242, 2301));
    assert_eq!(names(&a), ["warning"]);
    assert!(a[0].fingerprint.frames.is_empty());
    assert_eq!(
        a[0].fingerprint.id,
        "warning:WARNING: CPU: N PID: N at fs/proc/task_mmu.c:2301 X"
    );
    assert_eq!(a[0].fingerprint, b[0].fingerprint);
    // Another WARN_ON() of the same file is another bug.
    let c = scan_all(&console("ffffffff811c2a3e", 93, 2350));
    assert_ne!(a[0].fingerprint, c[0].fingerprint);
    assert_eq!(a[0].lines.len(), 10);
}
