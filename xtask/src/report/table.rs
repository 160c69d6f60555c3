//! The text table at the end of a run: one row per suite, then the skips, the
//! expected failures, the unexpected results (at most [`MISMATCHES_SHOWN`] per
//! suite), results errors, console trouble and the phases.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use ktap::Status;

use crate::judge::Judgement;
use crate::util::fmt_duration;

/// Unexpected results listed per suite; summary.json has them all.
pub const MISMATCHES_SHOWN: usize = 20;

pub fn table(a: &Judgement, timings: &[(String, f64)]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<28} {:>5} {:>5} {:>5} {:>6} {:>8} {:>9}  verdict",
        "suite", "pass", "fail", "skip", "xfail", "crashed", "time"
    );
    for s in &a.suites {
        let time = s
            .guest_ms
            .map(|ms| format!("{:.2} s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "{:<28} {:>5} {:>5} {:>5} {:>6} {:>8} {:>9}  {}",
            s.name,
            s.pass,
            s.fail,
            s.skip,
            s.xfail,
            s.crashed,
            time,
            s.verdict()
        );
    }
    if !a.c_vs_rust.is_empty() {
        let _ = writeln!(o, "\nC programs vs Rust ports (configs/c-vs-rust.yaml):");
        for c in &a.c_vs_rust {
            let _ = writeln!(o, "  {}", c.line());
            for d in c.detail_lines() {
                let _ = writeln!(o, "    {d}");
            }
        }
    }
    let skips: Vec<_> = a
        .tests
        .iter()
        .filter(|t| t.status == Status::Skip)
        .collect();
    if !skips.is_empty() {
        let _ = writeln!(o, "\nskipped tests ({}):", skips.len());
        for t in skips {
            let _ = writeln!(
                o,
                "  {}: {} -- {}",
                t.suite,
                t.name,
                t.expectation.as_deref().unwrap_or(&t.reason)
            );
        }
    }
    let xf: Vec<_> = a
        .tests
        .iter()
        .filter(|t| t.as_expected && t.status != Status::Skip && t.expectation.is_some())
        .collect();
    if !xf.is_empty() {
        let _ = writeln!(o, "\nexpected failures ({}):", xf.len());
        for t in xf {
            let _ = writeln!(
                o,
                "  {}: {} -- {}",
                t.suite,
                t.name,
                t.expectation.as_deref().unwrap_or("")
            );
        }
    }
    let total = a.mismatches() + a.c_vs_rust_problems();
    if total > 0 {
        let _ = writeln!(o, "\nunexpected results ({total}):");
        for s in &a.suites {
            for m in s.mismatches.iter().take(MISMATCHES_SHOWN) {
                let _ = writeln!(o, "  {m}");
            }
            if s.mismatches.len() > MISMATCHES_SHOWN {
                let _ = writeln!(
                    o,
                    "  {}: ... and {} more (summary.json has them all)",
                    s.name,
                    s.mismatches.len() - MISMATCHES_SHOWN
                );
            }
        }
        for c in &a.c_vs_rust {
            for p in &c.problems {
                let _ = writeln!(o, "  {p}");
            }
        }
    }
    for e in &a.parse_errors {
        let _ = writeln!(o, "results: {e}");
    }
    if !a.console_problems.is_empty() {
        let _ = writeln!(
            o,
            "\nkernel console trouble ({}):",
            a.console_problems.len()
        );
        for p in &a.console_problems {
            let _ = writeln!(o, "  {}", p.replace('\n', "\n  "));
        }
    }
    if a.cut_short {
        let _ = writeln!(
            o,
            "\nthe results port ended without `# exit=`: the guest crashed, hung or was killed"
        );
    }
    o.push_str(&phases(timings));
    o
}

/// The phases and their wall times.
pub fn phases(timings: &[(String, f64)]) -> String {
    let mut o = String::from("\nphases:\n");
    for (name, s) in timings {
        let _ = writeln!(
            o,
            "  {:<12} {}",
            name,
            fmt_duration(Duration::from_secs_f64(*s))
        );
    }
    o
}

/// Median, min and max guest time per suite, for runs that list suites repeatedly
/// (`--suites a,b,a,b,...`: alternating, so that neither gains from going first).
pub fn timing_table(times: &[(String, u64)]) -> String {
    let mut by: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (n, ms) in times {
        by.entry(n).or_default().push(*ms);
    }
    let mut o = String::from("\nguest time per suite (ms):\n");
    for (n, v) in &mut by {
        v.sort_unstable();
        let _ = writeln!(
            o,
            "  {n:<28} runs {:>2}  median {:>6}  min {:>6}  max {:>6}  all {v:?}",
            v.len(),
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::tests::{judge, plan, RUN};

    #[test]
    fn table_lists_expected_failures_and_caps_mismatches() {
        let p = plan(
            "      soft-dirty:\n        fail: { 'Test test_vma_reuse reused memory location': 'a known bug' }\n        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n",
        );
        let t = table(&judge(&p, RUN, ""), &[("build".into(), 61.5)]);
        assert!(t.contains("expected failures (1)"), "{t}");
        assert!(
            t.contains("skipped as expected: PAGEMAP_SCAN not supported"),
            "{t}"
        );
        assert!(t.contains("  build        1m01.5s"), "{t}");
        // 25 unexpected failures: 20 listed, the rest counted.
        let mut many = String::from("KTAP version 1\n1..1\n  TAP version 13\n  1..25\n");
        for i in 1..=25 {
            many.push_str(&format!("  not ok {i} t{i}\n"));
        }
        many.push_str("not ok 1 soft-dirty\n# exit=1\n");
        let mut p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        p.suites = vec!["soft-dirty".into()];
        let t = table(&judge(&p, &many, ""), &[]);
        assert!(t.contains("unexpected results (25):"), "{t}");
        assert!(
            t.contains("soft-dirty: ... and 5 more (summary.json has them all)"),
            "{t}"
        );
    }

    #[test]
    fn timing_table_per_suite() {
        let v = [
            ("a".to_string(), 30),
            ("b".into(), 10),
            ("a".into(), 20),
            ("a".into(), 10),
        ];
        let table = timing_table(&v);
        assert!(
            table.contains(
                "a                            runs  3  median     20  min     10  max     30"
            ),
            "{table}"
        );
    }
}
