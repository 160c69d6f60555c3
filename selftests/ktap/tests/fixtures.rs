//! Parser behaviour pinned by logs named by scenario (tests/data/*.ktap, written for
//! this crate).

use ktap::{parse, Event, Parser, Status, Test};
use std::path::PathBuf;

fn load(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn statuses(t: &Test) -> Vec<Status> {
    t.subtests.iter().map(|s| s.status).collect()
}

fn error_messages(t: &Test) -> Vec<String> {
    t.all_errors().iter().map(|e| e.to_string()).collect()
}

#[test]
fn harness_example() {
    let root = parse(&load("harness_example.ktap"));
    assert_eq!(root.version, Some(("KTAP".to_string(), 1)));
    assert_eq!(root.plan.as_ref().map(|p| p.count), Some(3));
    assert_eq!(
        statuses(&root),
        [Status::Pass, Status::Skip, Status::Timeout]
    );
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));

    let sd = root.subtest("soft-dirty").expect("soft-dirty suite");
    assert_eq!(sd.number, 1);
    assert_eq!(sd.subtests.len(), 19);
    assert_eq!(sd.counts().pass, 19);
    assert_eq!(sd.subtests[18].name, "Test test_19");
    assert_eq!(sd.version, Some(("TAP".to_string(), 13)));
    // The block's trailing Totals line and the parent-level timing line both belong
    // to the suite.
    assert_eq!(
        sd.diagnostics,
        [
            "Totals: pass:19 fail:0 xfail:0 xpass:0 skip:0 error:0",
            "soft-dirty: 812 ms"
        ]
    );
    let totals = sd.ksft_totals().expect("Totals line");
    assert_eq!((totals.pass, totals.fail), (19, 0));

    let pm = root.subtest("pagemap_ioctl").expect("pagemap_ioctl suite");
    assert_eq!(pm.status, Status::Skip);
    assert_eq!(pm.skip_all_reason(), Some("PAGEMAP_SCAN not supported"));
    assert_eq!(pm.reason.as_deref(), Some("PAGEMAP_SCAN not supported"));
    assert!(pm.is_leaf());

    let reg = &root.subtests[2];
    assert_eq!(reg.name, "pagemap_scan_regressions");
    assert_eq!(reg.reason.as_deref(), Some("300 seconds"));

    assert_eq!(root.diagnostic_value("exit"), Some("1"));
    assert_eq!(root.status, Status::Fail);
    let c = root.counts();
    assert_eq!((c.pass, c.skip, c.timeout, c.total()), (19, 1, 1, 21));
    assert_eq!(c.failures(), 1);
}

#[test]
fn interrupted_output_reports_missing_as_crashed() {
    let root = parse(&load("interrupted.ktap"));
    assert_eq!(root.status, Status::Crashed);
    assert_eq!(root.subtests.len(), 2);
    let suite = &root.subtests[0];
    // The suite never got its result line.
    assert_eq!(suite.status, Status::Crashed);
    assert_eq!(suite.number, 1);
    assert_eq!(
        statuses(suite),
        [
            Status::Pass,
            Status::Fail,
            Status::Pass,
            Status::Crashed,
            Status::Crashed
        ]
    );
    // The cut-off last line (no newline) was still read.
    assert_eq!(suite.subtests[2].name, "Test te");
    assert_eq!(
        suite.subtests[1].diagnostics,
        ["about to check the huge page"]
    );
    assert_eq!(suite.subtests[0].diagnostics, ["Starting soft-dirty tests"]);
    // The second suite never started.
    assert_eq!(root.subtests[1].status, Status::Crashed);
    assert_eq!(root.subtests[1].number, 2);
    let errs = error_messages(&root);
    assert!(
        errs.iter().any(|e| e.contains("planned 5 tests, got 3")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("has no result line")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("planned 2 tests, got 1")),
        "{errs:?}"
    );
    let c = root.counts();
    assert_eq!((c.pass, c.fail, c.crashed), (2, 1, 3));
}

#[test]
fn panic_in_the_middle() {
    let root = parse(&load("panic_middle.ktap"));
    assert_eq!(root.status, Status::Crashed);
    let suite = &root.subtests[0];
    assert_eq!(suite.status, Status::Crashed);
    assert_eq!(suite.subtests.len(), 115);
    let c = suite.counts();
    assert_eq!((c.pass, c.skip, c.crashed), (3, 1, 111));
    assert_eq!(suite.subtests[2].name, "Huge page not supported");
    assert_eq!(suite.subtests[4].number, 5);
    assert_eq!(suite.subtests[4].status, Status::Crashed);
    // Console garbage is kept as unknown lines, at the document level (unindented).
    assert_eq!(root.unknown.len(), 4);
    assert!(root.unknown[3].text.contains("Kernel panic"));
    assert_eq!(root.unknown[0].line, 9);
    assert_eq!(statuses(&root)[1..], [Status::Crashed, Status::Crashed]);
    assert_eq!(root.counts().crashed, 111 + 2);
}

#[test]
fn missing_plan() {
    let root = parse(&load("missing_plan.ktap"));
    let a = &root.subtests[0];
    assert_eq!(a.status, Status::Fail);
    assert_eq!(a.plan, None);
    assert_eq!(statuses(a), [Status::Pass, Status::Fail, Status::Pass]);
    assert_eq!(a.errors.len(), 1, "{:?}", a.errors);
    assert_eq!(a.errors[0].message, "missing plan");
    assert_eq!(a.errors[0].line, 3);
    let b = &root.subtests[1];
    assert_eq!(b.status, Status::Pass);
    assert!(b.errors.is_empty());
    assert_eq!(root.status, Status::Fail);
    assert_eq!(root.all_errors().len(), 1);
}

#[test]
fn skip_all() {
    let root = parse(&load("skip_all.ktap"));
    assert_eq!(root.status, Status::Skip);
    assert_eq!(
        root.skip_all_reason(),
        Some("soft-dirty not compiled in (CONFIG_MEM_SOFT_DIRTY)")
    );
    assert_eq!(
        root.reason.as_deref(),
        Some("soft-dirty not compiled in (CONFIG_MEM_SOFT_DIRTY)")
    );
    assert!(root.subtests.is_empty());
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    assert_eq!(root.counts().skip, 1);
}

#[test]
fn nested_kselftest_runner_output() {
    let root = parse(&load("runner_prefixed.ktap"));
    assert_eq!(
        statuses(&root),
        [Status::Fail, Status::Skip, Status::Timeout, Status::Fail]
    );

    let sd = &root.subtests[0];
    assert_eq!(sd.name, "selftests: mm: soft-dirty");
    assert_eq!(sd.reason.as_deref(), Some("exit=1"));
    assert_eq!(statuses(sd), [Status::Pass, Status::Skip, Status::Fail]);
    assert_eq!(sd.subtests[0].diagnostics, ["Test test_simple"]);
    assert_eq!(
        sd.subtests[1].name,
        "Test test_hugepage huge page allocation"
    );
    // Runner lines before the nested version line belong to the suite, as does the
    // program's Totals line.
    assert_eq!(sd.diagnostics[0], "timeout set to 180");
    assert_eq!(sd.diagnostics[1], "selftests: mm: soft-dirty");
    assert_eq!(
        sd.ksft_totals().map(|t| (t.pass, t.fail, t.skip)),
        Some((1, 1, 1))
    );

    let pm = &root.subtests[1];
    assert_eq!(pm.reason.as_deref(), Some("PAGEMAP_SCAN not supported"));

    let uffd = &root.subtests[2];
    assert_eq!(uffd.reason.as_deref(), Some("45 seconds"));
    assert_eq!(
        statuses(uffd),
        [Status::Pass, Status::Pass, Status::Crashed, Status::Crashed]
    );
    assert!(uffd.errors.iter().any(|e| e.message
        == "planned 4 tests, got 2 results; no result for 3..4"
        && e.line == 22));

    let missing = &root.subtests[3];
    assert!(missing.is_leaf());
    assert_eq!(
        missing.diagnostics,
        [
            "selftests: mm: missing_binary",
            "Warning: file ./missing_binary is missing!"
        ]
    );
    assert_eq!(root.all_errors().len(), 1, "{:?}", error_messages(&root));
    assert_eq!(root.status, Status::Fail);
}

#[test]
fn ktap_indented_nesting() {
    let root = parse(&load("ktap_nested.ktap"));
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    let main = &root.subtests[0];
    assert_eq!(main.name, "main_test");
    assert_eq!(main.status, Status::Fail);
    assert_eq!(statuses(main), [Status::Pass, Status::Pass, Status::Fail]);
    let e1 = &main.subtests[0];
    assert_eq!(e1.subtests[0].diagnostics, ["test_1: initializing test_1"]);
    let e2 = &main.subtests[1];
    assert_eq!(statuses(e2), [Status::Skip, Status::Pass]);
    assert_eq!(e2.subtests[0].reason.as_deref(), Some("test_1 skipped"));
    let e3 = &main.subtests[2];
    assert_eq!(statuses(e3), [Status::Pass, Status::Fail, Status::Skip]);
    assert_eq!(e3.subtests[1].diagnostics, ["test_2: FAIL"]);
    let c = root.counts();
    assert_eq!((c.pass, c.fail, c.skip, c.total()), (3, 1, 2, 6));
    assert_eq!(root.status, Status::Fail);
    assert_eq!(root.descendants().len(), 10);
}

#[test]
fn garbage_between_lines() {
    let root = parse(&load("garbage_between.ktap"));
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    assert_eq!(statuses(&root), [Status::Pass, Status::Fail]);
    let a = &root.subtests[0];
    assert_eq!(statuses(a), [Status::Pass, Status::Pass, Status::Pass]);
    // Indented junk stays with the open block; unindented junk goes to the document.
    let unknown_a: Vec<&str> = a.unknown.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(unknown_a, ["???"]);
    let unknown_root: Vec<&str> = root.unknown.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(
        unknown_root,
        [
            "random boot noise before the results",
            "this line is garbage",
            "\ttabbed junk",
            "%%% more garbage %%%"
        ]
    );
    assert_eq!(root.unknown[1].line, 7);
}

#[test]
fn timestamps_are_stripped() {
    let root = parse(&load("timestamps.ktap"));
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    assert_eq!(statuses(&root), [Status::Pass, Status::Skip]);
    let first = &root.subtests[0];
    assert_eq!(first.name, "first_suite");
    assert_eq!(statuses(first), [Status::Pass, Status::Timeout]);
    assert_eq!(first.subtests[0].diagnostics, ["probing"]);
    assert_eq!(first.subtests[1].reason.as_deref(), Some("5 seconds"));
    let second = &root.subtests[1];
    assert_eq!(second.subtests[0].reason.as_deref(), Some("no hardware"));
    // Boot lines before the version line and the stray kernel message are unknown.
    assert_eq!(root.unknown.len(), 3);
    assert_eq!(root.unknown[2].text, "random kernel message in between");
    assert_eq!(root.subtests[0].line, 10);
}

#[test]
fn directive_forms() {
    let root = parse(&load("directives.ktap"));
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    use Status::*;
    assert_eq!(
        statuses(&root),
        [
            Pass, Fail, Skip, Skip, Skip, Xfail, Xfail, Xpass, Error, Error, Timeout, Todo, Pass,
            Pass
        ]
    );
    let t = &root.subtests;
    assert_eq!(t[2].name, "kselftest skip reason");
    assert_eq!(t[3].name, "ktap_skip");
    assert_eq!(t[3].reason.as_deref(), Some("ktap skip reason"));
    assert_eq!(t[4].reason.as_deref(), Some("lower case"));
    assert_eq!(t[8].name, "kselftest error");
    assert_eq!(t[9].reason.as_deref(), Some("setup failed"));
    assert_eq!(t[10].reason.as_deref(), Some("30 seconds"));
    assert_eq!(t[12].name, "dashed");
    assert_eq!(t[12].reason.as_deref(), Some("rcode=0"));
    assert_eq!(t[13].name, "unknown_directive");
    assert_eq!(t[13].reason.as_deref(), Some("FOO bar"));
    let c = root.counts();
    assert_eq!(
        (c.pass, c.fail, c.skip, c.xfail, c.xpass, c.error, c.timeout, c.todo),
        (3, 1, 3, 2, 1, 2, 1, 1)
    );
    assert_eq!(root.status, Fail);
}

#[test]
fn numbering_errors() {
    let root = parse(&load("numbering_errors.ktap"));
    let nums: Vec<u32> = root.subtests.iter().map(|t| t.number).collect();
    // Sorted by number; 3 and 6 never came and are Crashed.
    assert_eq!(nums, [1, 2, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        root.subtest_by_number(3).map(|t| t.status),
        Some(Status::Crashed)
    );
    assert_eq!(
        root.subtest_by_number(6).map(|t| t.status),
        Some(Status::Crashed)
    );
    let errs: Vec<(usize, &str)> = root
        .errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        errs,
        [
            (5, "duplicate test number 2 (expected 3)"),
            (
                6,
                "test number 5 skips ahead (expected 3): no result for 3..4"
            ),
            (7, "test number 4 out of order (expected 6)"),
            (8, "test number 7 skips ahead (expected 6): no result for 6"),
            (8, "test number 7 outside plan 1..6"),
            (2, "planned 6 tests, got 6 results; no result for 3, 6"),
        ]
    );
    assert_eq!(root.status, Status::Crashed);
}

#[test]
fn bail_out() {
    let root = parse(&load("bail_out.ktap"));
    let sd = &root.subtests[0];
    assert_eq!(sd.status, Status::Fail);
    assert_eq!(
        sd.bail_out.as_deref(),
        Some("mmap failed: Cannot allocate memory (12)")
    );
    assert_eq!(
        statuses(sd),
        [
            Status::Pass,
            Status::Pass,
            Status::Crashed,
            Status::Crashed,
            Status::Crashed
        ]
    );
    assert!(sd.subtests[2]
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("not run: bailed out: mmap failed")));
    assert_eq!(sd.ksft_totals().map(|t| t.pass), Some(2));
    // The run goes on after a suite bailed out.
    assert_eq!(root.subtests[1].status, Status::Pass);
    assert_eq!(root.subtests[1].subtests[0].name, "still runs");
    assert_eq!(root.bail_out, None);
}

#[test]
fn kunit_style_subtest_header() {
    let root = parse(&load("kunit_subtest.ktap"));
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    let ex = &root.subtests[0];
    assert_eq!(ex.name, "example");
    assert_eq!(statuses(ex), [Status::Pass, Status::Skip]);
    assert_eq!(
        ex.diagnostics,
        [
            "Subtest: example",
            "module: example_test",
            "example: pass:1 fail:0 skip:1 total:2"
        ]
    );
}

#[test]
fn tap14_subtest_without_version_line() {
    let root = parse(&load("tap14_subtest.ktap"));
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    let outer = &root.subtests[0];
    assert_eq!(outer.name, "outer");
    assert_eq!(outer.status, Status::Fail);
    assert_eq!(statuses(outer), [Status::Pass, Status::Fail]);
    assert_eq!(root.subtests[1].status, Status::Pass);
}

/// Events arrive as soon as the line that completes them is fed, and the streamed
/// tree equals the one-shot parse.
#[test]
fn streaming_events_are_live() {
    let text = load("harness_example.ktap");
    let mut p = Parser::new();
    let mut results_by_line = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for ev in p.feed(line) {
            if let Event::Result {
                line, depth, test, ..
            } = ev
            {
                assert_eq!(
                    line,
                    i + 1,
                    "event for line {line} reported at line {}",
                    i + 1
                );
                results_by_line.push((line, depth, test.name.clone(), test.status));
            }
        }
    }
    assert_eq!(results_by_line.len(), 19 + 3);
    assert_eq!(
        results_by_line[0],
        (5, 1, "Test test_1".to_string(), Status::Pass)
    );
    assert_eq!(
        results_by_line[19],
        (26, 0, "soft-dirty".to_string(), Status::Pass)
    );
    assert_eq!(p.end(), Vec::new());
    assert_eq!(p.finish(), parse(&text));
}

/// Bytes in arbitrary chunks (as read off a serial port) give the same tree.
#[test]
fn feed_bytes_in_chunks() {
    for name in [
        "runner_prefixed.ktap",
        "interrupted.ktap",
        "timestamps.ktap",
    ] {
        let text = load(name);
        for chunk in [1, 3, 7, 64] {
            let mut p = Parser::new();
            let mut crashed_events = 0;
            for c in text.as_bytes().chunks(chunk) {
                p.feed_bytes(c);
            }
            for ev in p.end() {
                if let Event::Result { test, .. } = ev {
                    if test.status == Status::Crashed {
                        crashed_events += 1;
                    }
                }
            }
            let tree = p.finish();
            assert_eq!(tree, parse(&text), "{name} in chunks of {chunk}");
            if name == "interrupted.ktap" {
                // 2 missing in the suite, the suite itself, the second suite.
                assert_eq!(crashed_events, 4, "chunks of {chunk}");
            }
        }
    }
}

#[test]
fn suite_output_names_parents_from_subtest_header() {
    let mut p = Parser::new();
    let mut seen = Vec::new();
    for l in [
        "KTAP version 1",
        "1..1",
        "# Subtest: soft-dirty",
        "  TAP version 13",
        "  1..1",
        "  ok 1 Test test_simple",
        "ok 1 soft-dirty",
    ] {
        for ev in p.feed(l) {
            match ev {
                Event::Start { depth, name, .. } => seen.push(format!("start {depth} {name:?}")),
                Event::Result {
                    depth,
                    parents,
                    test,
                    ..
                } => seen.push(format!("result {depth} {parents:?} {}", test.name)),
                _ => {}
            }
        }
    }
    assert_eq!(
        seen,
        [
            "start 0 None",
            "start 1 Some(\"soft-dirty\")",
            "result 1 [\"soft-dirty\"] Test test_simple",
            "result 0 [] soft-dirty",
        ]
    );
}

#[test]
fn no_tap_at_all_is_crashed() {
    let root = parse("[    0.1] booting\nKernel panic - not syncing: VFS\n");
    assert_eq!(root.status, Status::Crashed);
    assert_eq!(root.unknown.len(), 2);
    assert_eq!(root.errors[0].message, "no KTAP/TAP version line found");
    let root = parse("");
    assert_eq!(root.status, Status::Crashed);
}

#[test]
fn missing_version_line_still_parses() {
    let root = parse("1..2\nok 1 a\nnot ok 2 b\n");
    assert_eq!(statuses(&root), [Status::Pass, Status::Fail]);
    assert_eq!(root.errors.len(), 1);
    assert_eq!(root.errors[0].message, "missing version line");
    assert_eq!(root.errors[0].line, 1);
}

#[test]
fn sibling_block_without_result_line() {
    let root = parse(
        "KTAP version 1\n1..2\n  KTAP version 1\n  1..1\n  ok 1 a\n  KTAP version 1\n  1..1\n  ok 1 b\nok 2 second\n",
    );
    assert_eq!(statuses(&root), [Status::Crashed, Status::Pass]);
    assert_eq!(root.subtests[0].subtests[0].name, "a");
    assert_eq!(root.subtests[1].subtests[0].name, "b");
    let errs = error_messages(&root);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("line 6: subtest block started at line 3"),
        "{errs:?}"
    );
}

#[test]
fn duplicate_plan_and_unsupported_version() {
    let root = parse("TAP version 12\n1..1\n1..2\nok 1 a\n");
    let errs: Vec<&str> = root.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        errs,
        [
            "unsupported version: TAP version 12",
            "duplicate plan 1..2 (first plan at line 2)"
        ]
    );
    assert_eq!(root.plan.as_ref().map(|p| p.count), Some(1));
    assert_eq!(root.status, Status::Pass);
}

#[test]
fn crlf_line_endings() {
    let root = parse("KTAP version 1\r\n1..2\r\n  TAP version 13\r\n  1..1\r\n  ok 1 a\r\nok 1 s\r\nnot ok 2 t # SKIP r\r\n");
    assert!(root.all_errors().is_empty(), "{:?}", error_messages(&root));
    assert_eq!(statuses(&root), [Status::Pass, Status::Skip]);
    assert_eq!(root.subtests[1].reason.as_deref(), Some("r"));
    assert_eq!(root.subtests[0].subtests[0].name, "a");
}

/// Arbitrary mixes of TAP fragments, nesting prefixes and garbage never panic, and
/// every result promised by a plan shows up in the tree (as itself or as Crashed).
#[test]
fn random_input_never_panics() {
    const PIECES: &[&str] = &[
        "KTAP version 1",
        "TAP version 13",
        "TAP version 14",
        "1..3",
        "1..0 # SKIP x",
        "1..",
        "ok 1 a",
        "ok 2 # SKIP b",
        "not ok 3 c # TIMEOUT 9",
        "ok 0",
        "ok 4294967295 big",
        "ok 99999999999999 overflow",
        "not ok 2",
        "Bail out! stop",
        "# diag",
        "# Subtest: s",
        "#",
        "",
        "garbage ### ok",
        "[    1.000000] ",
        "\u{fffd}\u{0}",
    ];
    const PREFIXES: &[&str] = &["", "  ", "    ", "# ", "  # ", "# # ", " ", "[    2.5] "];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % n
    };
    for _ in 0..300 {
        let mut doc = String::new();
        for _ in 0..(1 + next(40)) {
            doc.push_str(PREFIXES[next(PREFIXES.len())]);
            doc.push_str(PIECES[next(PIECES.len())]);
            doc.push('\n');
        }
        let root = parse(&doc);
        fn check(t: &Test) {
            if let Some(p) = t.plan.as_ref().filter(|p| p.skip.is_none()) {
                for n in 1..=p.count {
                    assert!(t.subtest_by_number(n).is_some(), "missing {n} in {t:#?}");
                }
            }
            t.subtests.iter().for_each(check);
        }
        check(&root);
        // Streaming byte-wise gives the same tree.
        let mut p = Parser::new();
        for b in doc.as_bytes().chunks(5) {
            p.feed_bytes(b);
        }
        assert_eq!(p.finish(), root, "{doc}");
    }
}

#[test]
fn absurd_plan_is_an_error_not_billions_of_crashes() {
    let root = parse("KTAP version 1\n1..4000000000\nok 1 a\nok 4294967295 last\n");
    assert_eq!(root.subtests.len(), 2);
    let errs = error_messages(&root);
    assert!(
        errs.iter()
            .any(|e| e.contains("3999999999 results missing: too many")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("planned 4000000000 tests, got 2 results")),
        "{errs:?}"
    );
}
