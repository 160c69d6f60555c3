//! What the writer prints, the parser reads back with the same statuses and counts,
//! alone and nested the way the guest's init nests suites.

use ktap::{ktap_result_line, parse, Ksft, KsftCounts, Status, KSFT_FAIL, KSFT_PASS, KSFT_SKIP};

fn text(k: Ksft<Vec<u8>>) -> String {
    String::from_utf8(k.into_inner()).expect("utf-8")
}

/// Indent a program's output by two spaces under a KTAP parent and add its result.
fn nest(
    doc: &mut String,
    number: u32,
    name: &str,
    out: &str,
    status: Status,
    reason: Option<&str>,
) {
    for l in out.lines() {
        doc.push_str("  ");
        doc.push_str(l);
        doc.push('\n');
    }
    doc.push_str(&ktap_result_line(number, name, status, reason));
    doc.push('\n');
}

#[test]
fn every_result_kind_round_trips() {
    let mut k = Ksft::new(Vec::new());
    k.print_header();
    k.set_plan(8);
    k.print_msg("starting");
    k.test_result_pass("pass one");
    k.test_result(false, "failing check");
    k.test_result_skip("Huge page not supported");
    k.test_result_xfail("known broken");
    k.test_result_xpass("unexpectedly fine");
    k.test_result_error("setup went wrong");
    k.test_result_code(KSFT_SKIP, "coded", Some("why not"));
    k.test_result_code(KSFT_PASS, "coded pass", Some("detail"));
    let counts = k.counts();
    let code = k.finished().code();
    assert_eq!(code, KSFT_FAIL);
    let out = text(k);

    let root = parse(&out);
    assert!(root.all_errors().is_empty(), "{:?}", root.all_errors());
    let st: Vec<Status> = root.subtests.iter().map(|t| t.status).collect();
    assert_eq!(
        st,
        [
            Status::Pass,
            Status::Fail,
            Status::Skip,
            Status::Xfail,
            Status::Xpass,
            Status::Error,
            Status::Skip,
            Status::Pass
        ]
    );
    let names: Vec<&str> = root.subtests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pass one",
            "failing check",
            "Huge page not supported",
            "known broken",
            "unexpectedly fine",
            "setup went wrong",
            "coded",
            "coded pass"
        ]
    );
    assert_eq!(root.subtests[0].diagnostics, ["starting"]);
    assert_eq!(root.subtests[6].reason.as_deref(), Some("why not"));
    assert_eq!(root.subtests[7].reason.as_deref(), Some("detail"));

    // The Totals line is read back and equals the writer's counters, which equal what
    // the parser counted.
    assert_eq!(root.ksft_totals(), Some(counts));
    let c = root.counts();
    assert_eq!(
        KsftCounts {
            pass: c.pass,
            fail: c.fail,
            xfail: c.xfail,
            xpass: c.xpass,
            skip: c.skip,
            error: c.error
        },
        counts
    );
}

#[test]
fn suites_nested_by_init_round_trip() {
    // Suite 1: all pass.
    let mut a = Ksft::new(Vec::new());
    a.print_header();
    a.set_plan(3);
    for i in 0..3 {
        a.test_result(true, format_args!("Test test_{i}"));
    }
    assert_eq!(a.finished().code(), KSFT_PASS);
    let a = text(a);

    // Suite 2: skipped as a whole.
    let mut b = Ksft::new(Vec::new());
    b.print_header();
    assert_eq!(b.exit_skip("PAGEMAP_SCAN not supported").code(), KSFT_SKIP);
    let b = text(b);

    // Suite 3: bails out after one result.
    let mut c = Ksft::new(Vec::new());
    c.print_header();
    c.set_plan(4);
    c.test_result_pass("first");
    assert_eq!(
        c.exit_fail_msg("uffd: Operation not permitted (1)").code(),
        KSFT_FAIL
    );
    let c = text(c);

    let mut doc = String::from("KTAP version 1\n1..3\n");
    nest(&mut doc, 1, "soft-dirty", &a, Status::Pass, None);
    nest(&mut doc, 2, "pagemap_ioctl", &b, Status::Skip, None);
    nest(&mut doc, 3, "uffd", &c, Status::Fail, Some("exit=1"));
    doc.push_str("# exit=1\n");

    let root = parse(&doc);
    assert!(root
        .all_errors()
        .iter()
        .all(|e| e.message.starts_with("planned 4")));
    assert_eq!(root.all_errors().len(), 1, "{:?}", root.all_errors());

    let s1 = root.subtest("soft-dirty").expect("suite 1");
    assert_eq!(s1.status, Status::Pass);
    assert_eq!(s1.counts().pass, 3);

    let s2 = root.subtest("pagemap_ioctl").expect("suite 2");
    assert_eq!(s2.status, Status::Skip);
    assert_eq!(s2.reason.as_deref(), Some("PAGEMAP_SCAN not supported"));

    let s3 = root.subtest("uffd").expect("suite 3");
    assert_eq!(s3.status, Status::Fail);
    assert_eq!(s3.reason.as_deref(), Some("exit=1"));
    assert_eq!(
        s3.bail_out.as_deref(),
        Some("uffd: Operation not permitted (1)")
    );
    let st: Vec<Status> = s3.subtests.iter().map(|t| t.status).collect();
    assert_eq!(
        st,
        [
            Status::Pass,
            Status::Crashed,
            Status::Crashed,
            Status::Crashed
        ]
    );

    assert_eq!(root.diagnostic_value("exit"), Some("1"));
    assert_eq!(root.status, Status::Fail);
}

#[test]
fn ktap_result_line_forms() {
    assert_eq!(ktap_result_line(1, "a", Status::Pass, None), "ok 1 a");
    assert_eq!(
        ktap_result_line(2, "b", Status::Skip, Some("no THP")),
        "ok 2 b # SKIP no THP"
    );
    assert_eq!(
        ktap_result_line(3, "c", Status::Timeout, Some("300 seconds")),
        "not ok 3 c # TIMEOUT 300 seconds"
    );
    assert_eq!(
        ktap_result_line(4, "d", Status::Fail, Some("exit=1")),
        "not ok 4 d # exit=1"
    );
    assert_eq!(
        ktap_result_line(5, "e\n", Status::Crashed, None),
        "not ok 5 e"
    );
    // And each parses back to its status.
    for s in Status::ALL {
        let l = ktap_result_line(1, "x", s, Some("r"));
        let root = parse(&format!("KTAP version 1\n1..1\n{l}\n"));
        let want = if s == Status::Crashed {
            Status::Fail
        } else {
            s
        };
        assert_eq!(root.subtests[0].status, want, "{l}");
    }
}
