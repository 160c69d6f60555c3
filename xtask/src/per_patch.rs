//! Per-patch verdicts (`cargo xtask check-series --tests`, `--first-bad TEST`): which
//! patch of a series made or broke which test.
//!
//! A short loop over the run plan: prefix `i` of the series is the plan with
//! `series_prefix = i`, run through every stage by [`test_kernel::run`] in the one
//! per-version working copy and build directory (series.rs, build.rs), so each prefix
//! costs one incremental `make` and one boot. Only the Rust suites run: upstream's C
//! programs come from the tree under test, which early prefixes may not have yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use ktap::Status;
use serde::Serialize;

use crate::plan::RunPlan;
use crate::series::Series;
use crate::test_kernel;
use crate::util::{setup_error, target_dir, Exit};

/// One prefix's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Prefix {
    /// Patches applied (0 = the base).
    pub applied: usize,
    /// The last patch applied, or `(base)`.
    pub patch: String,
    pub exit: u8,
    /// `suite: test` -> status; empty when the run stopped before its results.
    pub verdicts: BTreeMap<String, String>,
    pub run_dir: PathBuf,
    /// The stage that stopped the run, if one did.
    pub stopped: Option<String>,
    pub build_s: f64,
    pub boot_s: f64,
}

/// A test whose verdict changes along the series.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Change {
    pub test: String,
    pub from: String,
    pub to: String,
    /// Patches applied where the new verdict first shows.
    pub at: usize,
    pub patch: String,
    /// Passed at an earlier prefix and does not pass here.
    pub regression: bool,
}

fn status_word(s: Status) -> &'static str {
    s.as_str()
}

fn is_bad(word: &str) -> bool {
    matches!(word, "FAIL" | "CRASHED" | "ERROR" | "TIMEOUT" | "XPASS")
}

/// The plan for prefix `i` (Rust suites only), writing under `dir`.
fn prefix_plan(plan: &RunPlan, i: usize, dir: &Path) -> RunPlan {
    let mut p = plan.clone();
    p.series_prefix = Some(i);
    p.suites.retain(|s| !s.ends_with(".c"));
    p.expect.retain(|s, _| !s.ends_with(".c"));
    p.out = Some(dir.join(format!("prefix-{i:02}")));
    p
}

/// Runs prefix `i` through every stage.
pub fn run_prefix(plan: &RunPlan, series: &Series, i: usize, dir: &Path) -> Result<Prefix> {
    let patch = if i == 0 {
        "(base)".to_string()
    } else {
        series.patches[i - 1].name.clone()
    };
    eprintln!("\n==> prefix {i}/{}: {patch}", series.patches.len());
    let p = prefix_plan(plan, i, dir);
    let f = test_kernel::run(&p)?;
    let run_dir = p.out.clone().expect("set above");
    let record = crate::plan::RunRecord::load(&run_dir).ok();
    let timing = |name: &str| {
        record
            .as_ref()
            .and_then(|r| r.timings.iter().find(|(n, _)| n == name).map(|(_, s)| *s))
            .unwrap_or(0.0)
    };
    let verdicts = match &f.judgement {
        Some(j) => verdict_map(
            j.suites.iter().map(|s| (s.name.as_str(), s.status)),
            j.tests
                .iter()
                .map(|t| (t.suite.as_str(), t.name.as_str(), t.status)),
        ),
        None => BTreeMap::new(),
    };
    Ok(Prefix {
        applied: i,
        patch,
        exit: f.exit as u8,
        verdicts,
        stopped: record
            .as_ref()
            .and_then(|r| r.failure.as_ref())
            .map(|f| format!("{:?}: {}", f.stage, f.message.lines().next().unwrap_or(""))),
        build_s: timing("build"),
        boot_s: timing("boot+test"),
        run_dir,
    })
}

/// The key of a suite's own verdict in the matrix: a suite skipped whole (`1..0 #
/// SKIP`, a missing feature) has no test lines, so its SKIP -> PASS shows here.
pub const SUITE_ROW: &str = "(suite)";

/// `suite: test` -> status word, plus one `suite: (suite)` row per suite. A test the
/// judge lists without a name (planned, never reported: the suite bailed out) is left
/// to its suite's row, not 118 rows of nothing.
pub fn verdict_map<'a>(
    suites: impl Iterator<Item = (&'a str, Status)>,
    tests: impl Iterator<Item = (&'a str, &'a str, Status)>,
) -> BTreeMap<String, String> {
    let mut verdicts = BTreeMap::new();
    for (suite, status) in suites {
        verdicts.insert(
            format!("{suite}: {SUITE_ROW}"),
            status_word(status).to_string(),
        );
    }
    for (suite, name, status) in tests {
        if name.trim().is_empty() {
            continue;
        }
        let mut key = format!("{suite}: {}", stable_name(name));
        // Two tests that differ only in their numbers stay two.
        let mut n = 1;
        while verdicts.contains_key(&key) {
            n += 1;
            key = format!("{suite}: {} (#{n})", stable_name(name));
        }
        verdicts.insert(key, status_word(status).to_string());
    }
    verdicts
}

/// A test's name with its measured figures replaced (`transact_test Extra pages 49
/// (0.1%)` names one test on every run, whatever it counted).
/// So is a trailing parenthesised count (`unpopulated_scan_test ... (16, 0 of 16)`).
pub fn stable_name(name: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static TAIL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"\d+(\.\d+)?%?").expect("valid"));
    let tail = TAIL.get_or_init(|| regex::Regex::new(r"\([^()]*\d[^()]*\)$").expect("valid"));
    if name.contains("Extra pages") || name.contains('%') {
        re.replace_all(name, "#").into_owned()
    } else if let Some(m) = tail.find(name) {
        format!("{}{}", &name[..m.start()], re.replace_all(m.as_str(), "#"))
    } else {
        name.to_string()
    }
}

/// Every verdict change between consecutive prefixes that both have results.
pub fn changes(prefixes: &[Prefix]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut passed: BTreeMap<&str, bool> = BTreeMap::new();
    let ran: Vec<&Prefix> = prefixes.iter().filter(|p| !p.verdicts.is_empty()).collect();
    for w in ran.windows(2) {
        let (a, b) = (w[0], w[1]);
        for (t, v) in &a.verdicts {
            if v == "PASS" {
                passed.insert(t, true);
            }
        }
        let mut tests: Vec<&String> = a.verdicts.keys().chain(b.verdicts.keys()).collect();
        tests.sort();
        tests.dedup();
        for t in tests {
            let from = a.verdicts.get(t).map(String::as_str).unwrap_or("ABSENT");
            let to = b.verdicts.get(t).map(String::as_str).unwrap_or("ABSENT");
            if from != to {
                out.push(Change {
                    test: t.clone(),
                    from: from.into(),
                    to: to.into(),
                    at: b.applied,
                    patch: b.patch.clone(),
                    regression: passed.contains_key(t.as_str()) && (is_bad(to) || to == "ABSENT"),
                });
            }
        }
    }
    out
}

/// The markdown report: one line per (patch, from -> to) group, then regressions.
pub fn markdown(prefixes: &[Prefix], changes: &[Change]) -> String {
    let mut s = String::from("# Per-patch verdicts\n\n| applied | patch | exit | build | boot+test | stopped |\n|---|---|---|---|---|---|\n");
    for p in prefixes {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} s | {:.1} s | {} |\n",
            p.applied,
            p.patch,
            p.exit,
            p.build_s,
            p.boot_s,
            p.stopped.as_deref().unwrap_or("")
        ));
    }
    s.push_str("\n## Verdict changes\n\n");
    let mut groups: BTreeMap<(usize, &str, &str, &str), Vec<&str>> = BTreeMap::new();
    for c in changes {
        groups
            .entry((c.at, c.patch.as_str(), c.from.as_str(), c.to.as_str()))
            .or_default()
            .push(c.test.as_str());
    }
    if groups.is_empty() {
        s.push_str("none\n");
    }
    for ((at, patch, from, to), tests) in &groups {
        s.push_str(&format!(
            "- at {at} ({patch}): {} test(s) {from} -> {to}",
            tests.len()
        ));
        if tests.len() <= 6 {
            s.push_str(&format!(": {}", tests.join("; ")));
        }
        s.push('\n');
    }
    let regs: Vec<&Change> = changes.iter().filter(|c| c.regression).collect();
    s.push_str(&format!(
        "\n## Regressions (passed earlier, not any more): {}\n\n",
        regs.len()
    ));
    for c in regs {
        s.push_str(&format!(
            "- {} breaks `{}` ({} -> {})\n",
            c.patch, c.test, c.from, c.to
        ));
    }
    s
}

/// The mode's own directory: target/check-series/<target>/<time>.
pub fn mode_dir(plan: &RunPlan) -> Result<PathBuf> {
    let base = target_dir().join("check-series").join(&plan.target);
    crate::util::stamped_dir(&base)
}

/// The prefixes of one invocation: each is run (built and booted) at most once, and
/// the combined `--tests --first-bad` mode reuses whichever the other part ran (same
/// process, same inputs: nothing to invalidate).
pub struct Prefixes<'a> {
    pub memo: BTreeMap<usize, Prefix>,
    /// Patches in the series.
    pub n: usize,
    run: Box<dyn FnMut(usize) -> Result<Prefix> + 'a>,
}

impl<'a> Prefixes<'a> {
    pub fn new(n: usize, run: impl FnMut(usize) -> Result<Prefix> + 'a) -> Prefixes<'a> {
        Prefixes {
            memo: BTreeMap::new(),
            n,
            run: Box::new(run),
        }
    }

    fn of(plan: &'a RunPlan, series: &'a Series, dir: &'a Path) -> Prefixes<'a> {
        Prefixes::new(series.patches.len(), move |i| {
            run_prefix(plan, series, i, dir)
        })
    }

    pub fn get(&mut self, i: usize) -> Result<Prefix> {
        if let Some(p) = self.memo.get(&i) {
            eprintln!(
                "\n==> prefix {i}/{}: {} (run above, reused)",
                self.n, p.patch
            );
            return Ok(p.clone());
        }
        let p = (self.run)(i)?;
        self.memo.insert(i, p.clone());
        Ok(p)
    }
}

/// `check-series --tests`: every prefix from..=to, the matrix, exit 1 on a regression.
pub fn matrix(plan: &RunPlan, series: &Series, from: usize, to: usize) -> Result<Exit> {
    let dir = mode_dir(plan)?;
    let mut runs = Prefixes::of(plan, series, &dir);
    matrix_in(&dir, &mut runs, from, to)
}

/// `check-series --tests --first-bad TEST`: the bisection first (its own boot count in
/// `first-bad.json`), then the rest of the window for the matrix, reusing the
/// bisection's prefixes: each prefix is built and booted once.
pub fn matrix_and_first_bad(
    plan: &RunPlan,
    series: &Series,
    test: &str,
    from: usize,
    to: usize,
) -> Result<Exit> {
    let dir = mode_dir(plan)?;
    let mut runs = Prefixes::of(plan, series, &dir);
    both_in(&dir, &mut runs, test, from, to)
}

fn both_in(dir: &Path, runs: &mut Prefixes, test: &str, from: usize, to: usize) -> Result<Exit> {
    let bisect = first_bad_in(dir, runs, test, from, to)?;
    let probed = runs.memo.len();
    let m = matrix_in(dir, runs, from, to)?;
    println!(
        "{} prefixes built and booted once each: {probed} by the bisection, {} more for the matrix",
        runs.memo.len(),
        runs.memo.len() - probed
    );
    Ok(std::cmp::max_by_key(bisect, m, |e| *e as u8))
}

fn matrix_in(dir: &Path, runs: &mut Prefixes, from: usize, to: usize) -> Result<Exit> {
    let mut prefixes = Vec::new();
    let mut worst = Exit::Ok;
    for i in from..=to {
        let p = runs.get(i)?;
        if p.exit == Exit::Setup as u8 {
            worst = Exit::Setup;
        }
        prefixes.push(p);
        // Keep the report current: an interrupted run still leaves one.
        write_reports(dir, &prefixes, &changes(&prefixes))?;
    }
    let ch = changes(&prefixes);
    let md = write_reports(dir, &prefixes, &ch)?;
    if let Some(last) = prefixes.last() {
        let _ = std::fs::copy(last.run_dir.join("junit.xml"), dir.join("junit.xml"));
    }
    println!("\n{md}");
    println!("reports in {}", dir.display());
    let regressions = ch.iter().filter(|c| c.regression).count();
    if regressions > 0 {
        for c in ch.iter().filter(|c| c.regression) {
            println!(
                "REGRESSION: {} breaks {} ({} -> {})",
                c.patch, c.test, c.from, c.to
            );
        }
        return Ok(std::cmp::max_by_key(worst, Exit::Mismatch, |e| *e as u8));
    }
    Ok(worst)
}

fn write_reports(dir: &Path, prefixes: &[Prefix], ch: &[Change]) -> Result<String> {
    let md = markdown(prefixes, ch);
    std::fs::write(dir.join("matrix.md"), &md)?;
    std::fs::write(
        dir.join("matrix.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "prefixes": prefixes,
            "changes": ch,
        }))?,
    )?;
    Ok(md)
}

/// Whether TEST (`name` or `suite: name`) is bad at this prefix: it ran and did not
/// pass, or the kernel died before it could report.
fn bad_at(p: &Prefix, test: &str) -> Option<bool> {
    let hits: Vec<&String> = p
        .verdicts
        .iter()
        .filter(|(k, _)| k.as_str() == test || k.split_once(": ").map(|x| x.1) == Some(test))
        .map(|(_, v)| v)
        .collect();
    if p.exit == Exit::Crash as u8 && hits.iter().all(|v| *v != "PASS") {
        return Some(true);
    }
    if p.exit == Exit::Setup as u8 {
        return None;
    }
    Some(hits.iter().any(|v| is_bad(v)))
}

/// `check-series --first-bad TEST`: binary search for the first prefix where TEST is
/// bad, given that it is good at `from` and bad at `to`: about log2(to - from) boots.
pub fn first_bad(
    plan: &RunPlan,
    series: &Series,
    test: &str,
    from: usize,
    to: usize,
) -> Result<Exit> {
    let dir = mode_dir(plan)?;
    let mut runs = Prefixes::of(plan, series, &dir);
    first_bad_in(&dir, &mut runs, test, from, to)
}

fn first_bad_in(
    dir: &Path,
    runs: &mut Prefixes,
    test: &str,
    from: usize,
    to: usize,
) -> Result<Exit> {
    let mut boots = 0;
    let mut probe = |i: usize, boots: &mut usize| -> Result<bool> {
        *boots += 1;
        let p = runs.get(i)?;
        bad_at(&p, test).ok_or_else(|| {
            setup_error(format!(
                "--first-bad: prefix {i} ({}) stopped before its tests: {}",
                p.patch,
                p.stopped.as_deref().unwrap_or("set-up error")
            ))
        })
    };
    if !probe(to, &mut boots)? {
        return Err(setup_error(format!(
            "--first-bad: {test:?} is not bad with {to} patch(es) applied: nothing to search"
        )));
    }
    if probe(from, &mut boots)? {
        return Err(setup_error(format!(
            "--first-bad: {test:?} is already bad with {from} patch(es) applied (use --from)"
        )));
    }
    let (mut good, mut bad) = (from, to);
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if probe(mid, &mut boots)? {
            bad = mid;
        } else {
            good = mid;
        }
    }
    let patch = runs.get(bad)?.patch;
    let result = serde_json::json!({
        "test": test, "first_bad": bad, "patch": patch, "boots": boots,
        "from": from, "to": to,
    });
    std::fs::write(
        dir.join("first-bad.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    println!(
        "first bad: patch {bad}/{} {patch} (first breaks {test:?}); {boots} builds and boots for {} prefixes",
        runs.n,
        to - from + 1
    );
    Ok(Exit::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(i: usize, v: &[(&str, &str)]) -> Prefix {
        Prefix {
            applied: i,
            patch: format!("p{i}"),
            exit: 0,
            verdicts: v
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            run_dir: PathBuf::new(),
            stopped: None,
            build_s: 0.0,
            boot_s: 0.0,
        }
    }

    #[test]
    fn a_feature_arriving_is_a_change_and_a_breakage_is_a_regression() {
        let ps = [
            prefix(0, &[("s: a", "SKIP"), ("s: b", "SKIP")]),
            prefix(1, &[("s: a", "PASS"), ("s: b", "PASS")]),
            prefix(2, &[("s: a", "FAIL"), ("s: b", "PASS")]),
            prefix(3, &[("s: a", "FAIL"), ("s: b", "PASS")]),
        ];
        let ch = changes(&ps);
        assert_eq!(ch.len(), 3);
        assert!(!ch[0].regression && ch[0].to == "PASS" && ch[0].at == 1);
        let r: Vec<&Change> = ch.iter().filter(|c| c.regression).collect();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].test.as_str(), r[0].at, r[0].patch.as_str()),
            ("s: a", 2, "p2")
        );
        let md = markdown(&ps, &ch);
        assert!(md.contains("p2 breaks `s: a` (PASS -> FAIL)"), "{md}");
        assert!(md.contains("at 1 (p1): 2 test(s) SKIP -> PASS"), "{md}");
    }

    #[test]
    fn a_test_that_never_passed_is_no_regression_and_a_stopped_prefix_is_skipped() {
        let mut stopped = prefix(1, &[]);
        stopped.exit = 2;
        let ps = [
            prefix(0, &[("s: a", "FAIL")]),
            stopped,
            prefix(2, &[("s: a", "FAIL")]),
        ];
        assert!(changes(&ps).is_empty());
    }

    #[test]
    fn a_suite_skipped_whole_has_a_row_that_goes_skip_to_pass() {
        let before = verdict_map(
            [("regressions", Status::Skip), ("ioctl", Status::Crashed)].into_iter(),
            [
                ("ioctl", "", Status::Crashed),
                ("ioctl", "", Status::Crashed),
            ]
            .into_iter(),
        );
        assert_eq!(before.len(), 2, "{before:?}");
        assert_eq!(before["regressions: (suite)"], "SKIP");
        let after = verdict_map(
            [("regressions", Status::Pass), ("ioctl", Status::Pass)].into_iter(),
            [
                ("regressions", "a", Status::Pass),
                ("ioctl", "b", Status::Pass),
            ]
            .into_iter(),
        );
        let mut p0 = prefix(0, &[]);
        p0.verdicts = before;
        let mut p1 = prefix(1, &[]);
        p1.verdicts = after;
        let ch = changes(&[p0, p1]);
        assert!(ch.iter().any(|c| c.test == "regressions: (suite)"
            && c.from == "SKIP"
            && c.to == "PASS"
            && c.at == 1));
        assert!(ch.iter().all(|c| !c.regression));
    }

    #[test]
    fn tests_and_first_bad_together_run_each_prefix_once() {
        // Test `a` passes up to prefix 10 and fails from 11 on (patch 11 breaks it).
        let runs_seen = std::cell::RefCell::new(Vec::new());
        let mut runs = Prefixes::new(16, |i| {
            runs_seen.borrow_mut().push(i);
            let v = if i >= 11 { "FAIL" } else { "PASS" };
            Ok(prefix(i, &[("s: a", v), ("s: b", "PASS")]))
        });
        let dir = tempfile::tempdir().unwrap();
        let exit = both_in(dir.path(), &mut runs, "a", 9, 12).unwrap();
        assert_eq!(exit, Exit::Mismatch);
        let mut seen = runs_seen.borrow().clone();
        let bisection: Vec<usize> = seen.clone();
        seen.sort();
        assert_eq!(seen, vec![9, 10, 11, 12], "each prefix once: {bisection:?}");
        let fb: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("first-bad.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(fb["first_bad"], 11);
        assert_eq!(fb["patch"], "p11");
        assert_eq!(fb["boots"], 4);
        let md = std::fs::read_to_string(dir.path().join("matrix.md")).unwrap();
        assert!(md.contains("p11 breaks `s: a` (PASS -> FAIL)"), "{md}");
        assert!(
            md.contains("| 9 | p9 |") && md.contains("| 12 | p12 |"),
            "{md}"
        );
    }

    #[test]
    fn measured_figures_do_not_make_a_new_test() {
        assert_eq!(
            stable_name("transact_test Extra pages 49 (0.1%), extra thread faults 49."),
            stable_name("transact_test Extra pages 0 (0.0%), extra thread faults 0.")
        );
        assert_eq!(stable_name("Walk_end: 1 max page"), "Walk_end: 1 max page");
        assert_eq!(
            stable_name("unpopulated_scan_test written by both paths (16, 0 of 16)"),
            stable_name("unpopulated_scan_test written by both paths (0, 0 of 16)")
        );
        assert_eq!(stable_name("Sanity (2 pages)"), "Sanity (# pages)");
    }

    #[test]
    fn bad_means_ran_and_did_not_pass_or_the_kernel_died() {
        let p = prefix(3, &[("s: a", "PASS"), ("t: b", "FAIL")]);
        assert_eq!(bad_at(&p, "b"), Some(true));
        assert_eq!(bad_at(&p, "t: b"), Some(true));
        assert_eq!(bad_at(&p, "a"), Some(false));
        assert_eq!(bad_at(&p, "absent"), Some(false));
        let mut crashed = prefix(4, &[]);
        crashed.exit = 3;
        assert_eq!(bad_at(&crashed, "a"), Some(true));
        let mut setup = prefix(5, &[]);
        setup.exit = 2;
        assert_eq!(bad_at(&setup, "a"), None);
    }
}
