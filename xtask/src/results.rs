//! Stage 7: results. The results port's KTAP is parsed, each suite is held against
//! the target's expectations, the console is scanned for kernel trouble, and the run
//! is written out as results.ktap, junit.xml and summary.json; the exit code follows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use ktap::{Status, Test};
use regex::Regex;
use serde::Serialize;

use crate::targets::{Expect, Target};
use crate::util::Exit;

/// One test as judged against expectations.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    pub suite: String,
    pub name: String,
    pub status: String,
    /// The directive reason or first diagnostic (why it skipped/failed).
    pub reason: String,
    /// Expected by the target (pass, expected fail, expected skip).
    pub as_expected: bool,
    /// What the target says about this test, if anything.
    pub expectation: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SuiteSummary {
    pub name: String,
    pub status: String,
    pub pass: u32,
    pub fail: u32,
    pub skip: u32,
    pub xfail: u32,
    pub crashed: u32,
    pub expected_failures: u32,
    /// Whole-suite skip reason (`1..0 # SKIP reason`).
    pub skipped_suite: Option<String>,
    /// Guest time the suite took, from the init's diagnostic.
    pub guest_ms: Option<u64>,
    pub mismatches: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Analysis {
    pub suites: Vec<SuiteSummary>,
    pub tests: Vec<Judged>,
    /// Console lines quoting kernel trouble.
    pub console_problems: Vec<String>,
    pub panicked: bool,
    /// The results ended without the init's `# exit=` line.
    pub cut_short: bool,
    pub guest_exit: Option<i32>,
    pub init_info: Vec<String>,
    pub parse_errors: Vec<String>,
}

impl Analysis {
    pub fn mismatches(&self) -> usize {
        self.suites.iter().map(|s| s.mismatches.len()).sum()
    }

    pub fn exit(&self, watchdog_fired: bool) -> Exit {
        if self.panicked || self.cut_short || watchdog_fired {
            Exit::Crash
        } else if self.mismatches() > 0
            || !self.console_problems.is_empty()
            || !self.parse_errors.is_empty()
        {
            Exit::Mismatch
        } else {
            Exit::Ok
        }
    }
}

/// The clocksource the guest init reported (`# init: ... clocksource=<name> ...`).
pub fn guest_clocksource(a: &Analysis) -> Option<String> {
    a.init_info.iter().find_map(|l| {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix("clocksource="))
            .map(str::to_string)
    })
}

/// Kernel trouble on the console, quoted with the two lines that follow each hit.
pub fn scan_console(console: &str) -> (Vec<String>, bool) {
    let re = Regex::new(r"Kernel panic|BUG:|WARNING:|Oops|general protection fault").unwrap();
    let lines: Vec<&str> = console.lines().collect();
    let mut out = Vec::new();
    let mut panicked = false;
    let mut skip_until = 0;
    for (i, l) in lines.iter().enumerate() {
        if i < skip_until || !re.is_match(l) {
            continue;
        }
        panicked |= l.contains("Kernel panic");
        let end = (i + 3).min(lines.len());
        out.push(
            lines[i..end]
                .iter()
                .map(|s| s.trim_end())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        skip_until = end;
    }
    (out, panicked)
}

fn reason_of(t: &Test) -> String {
    t.reason
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| t.diagnostics.last().cloned())
        .unwrap_or_default()
}

/// Judges the parsed results of one run against a target's expectations.
/// Judges the suites that ran (`suites`, in run order; a repeated one once).
pub fn analyse(root: &Test, target: &Target, suites: &[String], console: &str) -> Analysis {
    let mut a = Analysis::default();
    (a.console_problems, a.panicked) = scan_console(console);
    a.guest_exit = root
        .diagnostic_value("exit")
        .and_then(|v| v.trim().parse().ok());
    a.cut_short = a.guest_exit.is_none();
    a.init_info = root
        .diagnostics
        .iter()
        .filter(|d| d.starts_with("init:"))
        .cloned()
        .collect();
    // Errors inside a suite's block are that suite's (judge_suite); these are the
    // results document's own.
    a.parse_errors = root
        .errors
        .iter()
        .map(|e| format!("results line {}: {}", e.line, e.message))
        .collect();
    let mut done = std::collections::BTreeSet::new();
    for name in suites.iter().filter(|n| done.insert(n.as_str())) {
        let expect = target.suites.get(name).cloned().unwrap_or_default();
        let (summary, tests) = judge_suite(name, root.subtest(name), &expect, root);
        a.suites.push(summary);
        a.tests.extend(tests);
    }
    a
}

/// The init's `# <suite>: <ms> ms exit=<n>` diagnostic, wherever the parser kept it.
fn guest_ms(t: &Test, root: &Test, name: &str) -> Option<u64> {
    let prefix = format!("{name}: ");
    t.diagnostics
        .iter()
        .chain(root.diagnostics.iter())
        .find_map(|d| {
            let rest = d.strip_prefix(&prefix)?;
            let (ms, unit) = rest.split_once(' ')?;
            unit.starts_with("ms").then(|| ms.parse().ok()).flatten()
        })
}

fn judge_suite(
    name: &str,
    t: Option<&Test>,
    e: &Expect,
    root: &Test,
) -> (SuiteSummary, Vec<Judged>) {
    let mut s = SuiteSummary {
        name: name.to_string(),
        ..Default::default()
    };
    let mut judged = Vec::new();
    let Some(t) = t else {
        s.status = "CRASHED".into();
        s.crashed = 1;
        s.mismatches.push(format!(
            "{name}: no result (the run ended before this suite reported)"
        ));
        return (s, judged);
    };
    s.status = t.status.as_str().to_string();
    s.guest_ms = guest_ms(t, root, name);
    if let Some(why) = t.skip_all_reason() {
        s.skipped_suite = Some(why.to_string());
        match &e.skip_suite {
            Some(_) => {}
            None => s.mismatches.push(format!(
                "{name}: skipped as a whole ({why}), expected to run"
            )),
        }
        return (s, judged);
    }
    if let Some(expected_why) = &e.skip_suite {
        s.mismatches.push(format!(
            "{name}: ran ({}), expected to skip as a whole: {expected_why}",
            t.status
        ));
    }
    // On a deliberately broken kernel (`broken: reason`) every failure, crash,
    // bail-out and timeout is what the target expects; the suite must catch it.
    let broken = e.broken.as_deref();
    if matches!(t.status, Status::Timeout | Status::Crashed) && broken.is_none() {
        s.mismatches
            .push(format!("{name}: {} {}", t.status, reason_of(t)));
    }
    if broken.is_none() {
        for err in t.all_errors() {
            s.mismatches.push(format!(
                "{name}: results line {}: {}",
                err.line, err.message
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut failed = std::collections::BTreeSet::new();
    for leaf in t.leaves() {
        if std::ptr::eq(leaf, t) {
            continue;
        }
        seen.insert(leaf.name.clone());
        if leaf.status.is_failure() {
            failed.insert(leaf.name.clone());
        }
        let (fail_why, skip_why) = (e.fail.get(&leaf.name), e.skip.get(&leaf.name));
        let (ok, note) = match leaf.status {
            // Upstream repeats some names; on a broken kernel a listed name must fail
            // at least once (checked below), a same-named sibling may pass.
            Status::Pass if broken.is_some() && fail_why.is_some() => (true, None),
            Status::Pass => match (fail_why, skip_why) {
                (Some(w), _) => (false, Some(format!("expected to fail ({w}) but passed"))),
                (_, Some(w)) => (false, Some(format!("expected to skip ({w}) but passed"))),
                _ => (true, None),
            },
            Status::Xfail | Status::Todo => (true, None),
            Status::Skip => match skip_why {
                Some(w) => (true, Some(w.clone())),
                None => (
                    false,
                    Some("skipped, and the target does not expect it".into()),
                ),
            },
            Status::Fail | Status::Error | Status::Xpass | Status::Timeout | Status::Crashed => {
                match (fail_why, broken) {
                    (Some(w), _) => (true, Some(w.clone())),
                    (None, Some(b)) => (true, Some(format!("broken kernel: {b}"))),
                    (None, None) => (false, None),
                }
            }
        };
        match leaf.status {
            Status::Pass => s.pass += 1,
            Status::Skip => s.skip += 1,
            Status::Xfail => s.xfail += 1,
            Status::Crashed => s.crashed += 1,
            _ => s.fail += 1,
        }
        if ok && leaf.status.is_failure() {
            s.expected_failures += 1;
        }
        if !ok {
            s.mismatches.push(format!(
                "{name}: {} {}{}",
                leaf.status,
                leaf.name,
                note.as_deref()
                    .map(|n| format!(" -- {n}"))
                    .unwrap_or_else(|| {
                        let r = reason_of(leaf);
                        if r.is_empty() {
                            String::new()
                        } else {
                            format!(" -- {r}")
                        }
                    })
            ));
        }
        judged.push(Judged {
            suite: name.to_string(),
            name: leaf.name.clone(),
            status: leaf.status.as_str().to_string(),
            reason: reason_of(leaf),
            as_expected: ok,
            expectation: note.filter(|_| ok),
        });
    }
    for missing in e
        .fail
        .keys()
        .chain(e.skip.keys())
        .filter(|k| !seen.contains(*k))
    {
        s.mismatches.push(format!(
            "{name}: expectation for {missing:?}, but no such test ran"
        ));
    }
    if let Some(b) = broken {
        for (must, why) in &e.fail {
            if seen.contains(must) && !failed.contains(must) {
                s.mismatches.push(format!(
                    "{name}: {must} passed on a kernel broken on purpose, must fail: {why}"
                ));
            }
        }
        if s.fail + s.crashed == 0 && !t.status.is_failure() {
            s.mismatches.push(format!(
                "{name}: every test passed on a kernel broken on purpose ({b}): the suite does not catch it"
            ));
        }
        return (s, judged);
    }
    // A suite that exits non-zero with no failing test (plan mismatch, bail out) is a
    // mismatch too; with expected failures, a non-zero exit is what kselftest does.
    if t.status.is_failure()
        && s.fail == 0
        && s.crashed == 0
        && !matches!(t.status, Status::Timeout | Status::Crashed)
    {
        s.mismatches.push(format!(
            "{name}: suite result {} although no test failed: {}",
            t.status,
            reason_of(t)
        ));
    }
    (s, judged)
}

/// Guest time of each suite run, in run order, from the init's top-level
/// `# <suite>: <ms> ms exit=<n>` lines.
pub fn suite_times(ktap: &str) -> Vec<(String, u64)> {
    let re = Regex::new(r"^# (\S+): (\d+) ms ").unwrap();
    ktap.lines()
        .filter_map(|l| {
            re.captures(l)
                .map(|c| (c[1].to_string(), c[2].parse().unwrap_or(0)))
        })
        .collect()
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

/// The table printed at the end of a run.
pub fn table(a: &Analysis, timings: &[(&'static str, Duration)]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<28} {:>5} {:>5} {:>5} {:>6} {:>8} {:>9}  verdict",
        "suite", "pass", "fail", "skip", "xfail", "crashed", "time"
    );
    for s in &a.suites {
        let verdict = if !s.mismatches.is_empty() {
            format!("{} unexpected", s.mismatches.len())
        } else if let Some(why) = &s.skipped_suite {
            format!("skipped as expected: {why}")
        } else if s.expected_failures > 0 {
            format!("as expected ({} expected failures)", s.expected_failures)
        } else {
            "as expected".into()
        };
        let time = s
            .guest_ms
            .map(|ms| format!("{:.2} s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "{:<28} {:>5} {:>5} {:>5} {:>6} {:>8} {:>9}  {verdict}",
            s.name, s.pass, s.fail, s.skip, s.xfail, s.crashed, time
        );
    }
    let skips: Vec<_> = a.tests.iter().filter(|t| t.status == "SKIP").collect();
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
        .filter(|t| t.as_expected && t.status != "SKIP" && t.expectation.is_some())
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
    let total: usize = a.suites.iter().map(|s| s.mismatches.len()).sum();
    if total > 0 {
        let _ = writeln!(o, "\nunexpected results ({total}):");
        for s in &a.suites {
            // A suite cut short lists its missing tests in summary.json, not here.
            for m in s.mismatches.iter().take(20) {
                let _ = writeln!(o, "  {m}");
            }
            if s.mismatches.len() > 20 {
                let _ = writeln!(
                    o,
                    "  {}: ... and {} more (summary.json has them all)",
                    s.name,
                    s.mismatches.len() - 20
                );
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
    let _ = writeln!(o, "\nphases:");
    for (name, d) in timings {
        let _ = writeln!(o, "  {:<12} {}", name, crate::util::fmt_duration(*d));
    }
    o
}

/// One test whose verdict differs between two runs (base -> with the series).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub suite: String,
    pub name: String,
    pub before: String,
    pub after: String,
}

impl Change {
    /// Ran and passed before, does not pass now.
    pub fn is_regression(&self) -> bool {
        matches!(self.before.as_str(), "PASS" | "XFAIL")
            && !matches!(self.after.as_str(), "PASS" | "XFAIL")
    }
}

/// Per-test statuses of a run; a suite skipped as a whole counts its tests from the
/// other run as SKIP, a suite that never reported as CRASHED.
/// Upstream repeats some test names; the n-th repeat is keyed `name [n]`.
fn statuses(a: &Analysis) -> BTreeMap<(String, String), String> {
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    a.tests
        .iter()
        .map(|t| {
            let n = seen.entry((&t.suite, &t.name)).or_insert(0);
            *n += 1;
            let name = if *n == 1 {
                t.name.clone()
            } else {
                format!("{} [{n}]", t.name)
            };
            ((t.suite.clone(), name), t.status.clone())
        })
        .collect()
}

pub fn compare(base: &Analysis, with: &Analysis) -> Vec<Change> {
    let (b, w) = (statuses(base), statuses(with));
    let suite_status = |a: &Analysis, suite: &str| -> String {
        match a.suites.iter().find(|s| s.name == suite) {
            Some(s) if s.skipped_suite.is_some() => "SKIP".into(),
            Some(s) if s.status == "CRASHED" => "CRASHED".into(),
            Some(_) | None => "MISSING".into(),
        }
    };
    let mut keys: Vec<&(String, String)> = b.keys().chain(w.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let before = b
                .get(k)
                .cloned()
                .unwrap_or_else(|| suite_status(base, &k.0));
            let after = w
                .get(k)
                .cloned()
                .unwrap_or_else(|| suite_status(with, &k.0));
            (before != after).then(|| Change {
                suite: k.0.clone(),
                name: k.1.clone(),
                before,
                after,
            })
        })
        .collect()
}

/// "these 150 went from skip to pass, nothing went from pass to fail".
pub fn comparison_table(changes: &[Change]) -> String {
    let mut o = String::from("verdicts changed by the series (base -> with series):\n");
    if changes.is_empty() {
        o.push_str("  none\n");
        return o;
    }
    let mut groups: BTreeMap<(String, &str, &str), Vec<&Change>> = BTreeMap::new();
    for c in changes {
        groups
            .entry((c.suite.clone(), c.before.as_str(), c.after.as_str()))
            .or_default()
            .push(c);
    }
    for ((suite, before, after), list) in &groups {
        let flag = if list[0].is_regression() {
            "  REGRESSION"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {suite}: {} test(s) {before} -> {after}{flag}",
            list.len()
        );
        for c in list.iter().take(if list[0].is_regression() {
            usize::MAX
        } else {
            5
        }) {
            let _ = writeln!(o, "      {}", c.name);
        }
        if list.len() > 5 && !list[0].is_regression() {
            let _ = writeln!(o, "      ... and {} more", list.len() - 5);
        }
    }
    let regressions = changes.iter().filter(|c| c.is_regression()).count();
    let _ = writeln!(o, "  regressions (pass -> not pass): {regressions}");
    o
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one testsuite per suite, one testcase per test.
pub fn junit(target: &str, a: &Analysis) -> String {
    let mut by_suite: BTreeMap<&str, Vec<&Judged>> = BTreeMap::new();
    for t in &a.tests {
        by_suite.entry(&t.suite).or_default().push(t);
    }
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for s in &a.suites {
        let tests = by_suite.get(s.name.as_str()).cloned().unwrap_or_default();
        let failures = tests.iter().filter(|t| !t.as_expected).count()
            + usize::from(tests.is_empty() && !s.mismatches.is_empty());
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}.{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">",
            xml(target),
            xml(&s.name),
            tests.len().max(1),
            s.skip
        );
        if tests.is_empty() {
            let _ = write!(
                o,
                "    <testcase classname=\"{}.{}\" name=\"{}\">",
                xml(target),
                xml(&s.name),
                xml(&s.name)
            );
            if let Some(why) = &s.skipped_suite {
                let _ = write!(o, "<skipped message=\"{}\"/>", xml(why));
            } else if !s.mismatches.is_empty() {
                let _ = write!(
                    o,
                    "<failure message=\"{}\"/>",
                    xml(&s.mismatches.join("; "))
                );
            }
            o.push_str("</testcase>\n");
        }
        for t in tests {
            let _ = write!(
                o,
                "    <testcase classname=\"{}.{}\" name=\"{}\">",
                xml(target),
                xml(&s.name),
                xml(&t.name)
            );
            if t.status == "SKIP" {
                let _ = write!(
                    o,
                    "<skipped message=\"{}\"/>",
                    xml(t.expectation.as_deref().unwrap_or(&t.reason))
                );
            } else if !t.as_expected {
                let _ = write!(o, "<failure message=\"{} {}\"/>", t.status, xml(&t.reason));
            }
            o.push_str("</testcase>\n");
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Matrix;

    fn target(expect: &str) -> Target {
        let m = Matrix::parse(&format!(
            "default: t\ntargets:\n  - name: t\n    source: {{ debian: x }}\n    configs: [a]\n    order: [soft-dirty, pagemap_ioctl]\n    suites:\n{expect}"
        ))
        .unwrap();
        m.targets[0].clone()
    }

    const RUN: &str = "KTAP version 1
# init: kernel 6.12.117 clocksource=tsc
1..2
  TAP version 13
  1..3
  ok 1 Test test_simple
  not ok 2 Test test_vma_reuse reused memory location
  ok 3 # SKIP Test test_hugepage huge page allocation
  # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
# soft-dirty: 812 ms exit=1
not ok 1 soft-dirty
  TAP version 13
  1..0 # SKIP PAGEMAP_SCAN not supported
# pagemap_ioctl: 3 ms exit=4
ok 2 pagemap_ioctl # SKIP
# exit=1
";

    #[test]
    fn unexpected_fail_and_skip_are_mismatches() {
        let t =
            target("      soft-dirty: {}\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n");
        let a = analyse(&ktap::parse(RUN), &t, &t.suite_order(), "");
        assert_eq!(a.guest_exit, Some(1));
        assert_eq!(guest_clocksource(&a).as_deref(), Some("tsc"));
        assert!(!a.cut_short);
        assert_eq!(
            a.suites[0].mismatches.len(),
            2,
            "{:?}",
            a.suites[0].mismatches
        );
        assert_eq!(a.suites[0].guest_ms, Some(812));
        assert!(a.suites[1].mismatches.is_empty());
        assert_eq!(a.exit(false), Exit::Mismatch);
    }

    #[test]
    fn expectations_make_it_pass() {
        let t = target(
            "      soft-dirty:\n        fail: { 'Test test_vma_reuse reused memory location': 'a known bug' }\n        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n",
        );
        let a = analyse(&ktap::parse(RUN), &t, &t.suite_order(), "");
        assert_eq!(a.mismatches(), 0, "{:?}", a.suites);
        assert_eq!(a.exit(false), Exit::Ok);
        let j = junit("t", &a);
        assert!(j.contains("<skipped message=\"no THP\"/>"), "{j}");
        assert!(table(&a, &[]).contains("expected failures (1)"));
    }

    #[test]
    fn broken_kernel_must_be_caught() {
        let caught = target(
            "      soft-dirty:\n        broken: 'test data'\n        fail: { 'Test test_vma_reuse reused memory location': 'must fail' }\n        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: x }\n",
        );
        let a = analyse(&ktap::parse(RUN), &caught, &caught.suite_order(), "");
        assert_eq!(a.mismatches(), 0, "{:?}", a.suites);
        // The same expectation on a kernel where everything passes is a mismatch.
        let clean = RUN
            .replace(
                "  not ok 2 Test test_vma_reuse",
                "  ok 2 Test test_vma_reuse",
            )
            .replace("not ok 1 soft-dirty", "ok 1 soft-dirty");
        let a = analyse(&ktap::parse(&clean), &caught, &caught.suite_order(), "");
        let all = a.suites[0].mismatches.join("\n");
        assert!(
            all.contains("reused memory location passed on a kernel broken on purpose, must fail"),
            "{all}"
        );
        assert!(all.contains("does not catch it"), "{all}");
    }

    #[test]
    fn stale_expectation_is_a_mismatch() {
        let t = target(
            "      soft-dirty:\n        fail: { 'Test gone': 'x' }\n      pagemap_ioctl: {}\n",
        );
        let a = analyse(&ktap::parse(RUN), &t, &t.suite_order(), "");
        let all = a
            .suites
            .iter()
            .flat_map(|s| s.mismatches.clone())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("\"Test gone\", but no such test ran"), "{all}");
        assert!(
            all.contains("pagemap_ioctl: skipped as a whole (PAGEMAP_SCAN not supported)"),
            "{all}"
        );
    }

    #[test]
    fn panic_cuts_short_and_is_quoted() {
        let cut = RUN.split("# soft-dirty").next().unwrap();
        let console = "[    1.0] ok\n[    2.0] Kernel panic - not syncing: Attempted to kill init!\n[    2.1] CPU: 0\n";
        let t = target("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        let a = analyse(&ktap::parse(cut), &t, &t.suite_order(), console);
        assert!(a.panicked && a.cut_short);
        assert_eq!(a.exit(false), Exit::Crash);
        assert!(a.console_problems[0].contains("Attempted to kill init"));
        assert_eq!(a.suites[1].status, "CRASHED");
    }

    #[test]
    fn compare_counts_suite_skips_and_flags_regressions() {
        let t = target("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        let base = analyse(&ktap::parse(RUN), &t, &t.suite_order(), "");
        let with_text = RUN
            .replace(
                "  1..0 # SKIP PAGEMAP_SCAN not supported\n",
                "  1..1\n  ok 1 sanity\n",
            )
            .replace("ok 2 pagemap_ioctl # SKIP", "ok 2 pagemap_ioctl")
            .replace("  ok 1 Test test_simple", "  not ok 1 Test test_simple");
        let with = analyse(&ktap::parse(&with_text), &t, &t.suite_order(), "");
        let ch = compare(&base, &with);
        assert!(
            ch.contains(&Change {
                suite: "pagemap_ioctl".into(),
                name: "sanity".into(),
                before: "SKIP".into(),
                after: "PASS".into()
            }),
            "{ch:?}"
        );
        let reg: Vec<_> = ch.iter().filter(|c| c.is_regression()).collect();
        assert_eq!(reg.len(), 1);
        assert_eq!(reg[0].name, "Test test_simple");
        let table = comparison_table(&ch);
        assert!(
            table.contains("pagemap_ioctl: 1 test(s) SKIP -> PASS"),
            "{table}"
        );
        assert!(
            table.contains("regressions (pass -> not pass): 1"),
            "{table}"
        );
    }

    #[test]
    fn suite_times_in_run_order() {
        let t = "KTAP version 1\n  # a: 1 ms nested, ignored\n# a: 30 ms exit=0\nok 1 a\n# b: 10 ms exit=0\nok 2 b\n# a: 20 ms exit=0\nok 3 a\n# a: 10 ms exit=0\n";
        let v = suite_times(t);
        assert_eq!(
            v,
            [
                ("a".into(), 30),
                ("b".into(), 10),
                ("a".into(), 20),
                ("a".into(), 10)
            ]
        );
        let table = timing_table(&v);
        assert!(
            table.contains(
                "a                            runs  3  median     20  min     10  max     30"
            ),
            "{table}"
        );
    }

    #[test]
    fn warning_fails_a_clean_run() {
        let (p, panicked) =
            scan_console("a\n[ 3.1] WARNING: CPU: 1 PID: 1 at mm/memory.c:123 x\nb\nc\nd\n");
        assert_eq!(p.len(), 1);
        assert!(!panicked);
        assert_eq!(p[0].lines().count(), 3);
        let (none, _) = scan_console("Linux version 6.12\nRun /init as init process\n");
        assert!(none.is_empty());
    }
}
