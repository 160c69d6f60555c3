//! Upstream's C selftest against its Rust port, test by test, in the same boot.
//!
//! `configs/c-vs-rust.yaml` pairs a Rust suite with upstream's C program
//! (`pagemap_ioctl` with `pagemap_ioctl.c`) and lists, per target, each difference
//! that is explained, with its reason. [`RunPlan::resolve`](crate::plan::RunPlan)
//! copies the pairs whose two suites the run has (and the target's explanations)
//! into the plan, so a replay compares with what the run had. After the judge has
//! judged every suite, [`compare`] matches the two suites' tests by name and lists
//! the tests only one side has, the tests whose verdicts differ, and whether the
//! names come in the same order. A difference without an explanation, a change of
//! order, and an explanation that matches no difference (stale) are problems: the
//! run is a mismatch (exit 1). On a kernel broken on purpose (`broken:`) the two
//! programs may well catch the breakage differently: the comparison is reported
//! there but decides nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::judge::{Judgement, TestVerdict};
use crate::targets::Matrix;

const BUILTIN: &str = include_str!("../../configs/c-vs-rust.yaml");
const FILE: &str = "configs/c-vs-rust.yaml";

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub pairs: Vec<PairSpec>,
}

/// One Rust suite and upstream's C program it ports.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    pub rust: String,
    pub c: String,
    /// Test names that carry measured values (counts, percentages): matched by
    /// this prefix only.
    #[serde(default)]
    pub measured: Vec<String>,
    /// Per target: the differences that are explained.
    #[serde(default)]
    pub explained: BTreeMap<String, Explained>,
}

/// The explained differences of one pair on one target: test name -> reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Explained {
    /// Tests the Rust port has and the C program of this tree does not.
    #[serde(default)]
    pub only_rust: BTreeMap<String, String>,
    /// Tests the C program has and the Rust port does not.
    #[serde(default)]
    pub only_c: BTreeMap<String, String>,
    /// Tests both have, with different verdicts.
    #[serde(default)]
    pub verdict: BTreeMap<String, String>,
}

/// A pair as a run plan carries it: the target's explanations only.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub rust: String,
    pub c: String,
    #[serde(default)]
    pub measured: Vec<String>,
    #[serde(default)]
    pub explained: Explained,
}

impl Config {
    /// `configs/c-vs-rust.yaml` as compiled in.
    pub fn builtin() -> Result<Config> {
        Config::parse(BUILTIN, FILE)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config> {
        let c: Config = serde_yaml::from_str(text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!("line {} column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            anyhow::anyhow!("{file}: {loc}{e}")
        })?;
        for (i, p) in c.pairs.iter().enumerate() {
            let at = format!("{file}: pairs[{i}] ({} vs {})", p.rust, p.c);
            if !p.c.ends_with(".c") {
                bail!("{at}.c: {:?} is not a C program's suite (`<name>.c`)", p.c);
            }
            if p.rust == p.c || p.rust.ends_with(".c") {
                bail!("{at}.rust: {:?} is not a Rust suite", p.rust);
            }
            if c.pairs[..i].iter().any(|q| q.rust == p.rust || q.c == p.c) {
                bail!("{at}: a suite of this pair is already paired");
            }
            for (j, m) in p.measured.iter().enumerate() {
                if m.trim().is_empty() {
                    bail!("{at}.measured[{j}]: empty prefix");
                }
            }
            for (target, e) in &p.explained {
                for (kind, map) in e.kinds() {
                    for (name, why) in map {
                        if why.trim().is_empty() {
                            bail!("{at}.explained.{target}.{kind}: {name:?} needs a reason");
                        }
                        if name.trim().is_empty() {
                            bail!("{at}.explained.{target}.{kind}: an empty test name");
                        }
                    }
                }
            }
        }
        Ok(c)
    }

    /// Checks the file against the matrix: each explained target exists and runs
    /// both suites of its pair.
    pub fn validate(&self, m: &Matrix) -> Result<()> {
        for (i, p) in self.pairs.iter().enumerate() {
            let at = format!("{FILE}: pairs[{i}] ({} vs {})", p.rust, p.c);
            for target in p.explained.keys() {
                let Some(t) = m.targets.iter().find(|t| &t.name == target) else {
                    bail!("{at}.explained.{target}: no such target in configs/targets.yaml");
                };
                for s in [&p.rust, &p.c] {
                    if !t.suites.contains_key(s) {
                        bail!("{at}.explained.{target}: the target does not run {s}");
                    }
                }
            }
        }
        Ok(())
    }

    /// The pairs a run of `target` with these suites compares.
    pub fn for_run(&self, target: &str, suites: &[String]) -> Vec<Pair> {
        self.pairs
            .iter()
            .filter(|p| suites.contains(&p.rust) && suites.contains(&p.c))
            .map(|p| Pair {
                rust: p.rust.clone(),
                c: p.c.clone(),
                measured: p.measured.clone(),
                explained: p.explained.get(target).cloned().unwrap_or_default(),
            })
            .collect()
    }
}

impl Explained {
    fn kinds(&self) -> [(&'static str, &BTreeMap<String, String>); 3] {
        [
            ("only_rust", &self.only_rust),
            ("only_c", &self.only_c),
            ("verdict", &self.verdict),
        ]
    }
}

/// A test one side has and the other does not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OneSided {
    /// The name as the run printed it.
    pub name: String,
    pub status: String,
    /// Its explanation, if configs/c-vs-rust.yaml has one.
    pub explained: Option<String>,
}

/// A test both sides have, with different verdicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictDiff {
    pub name: String,
    pub rust: String,
    pub c: String,
    pub explained: Option<String>,
}

/// One pair compared in one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub rust: String,
    pub c: String,
    /// Why the two were not compared test by test (a suite skipped as a whole or
    /// never reported), if so.
    pub not_compared: Option<String>,
    pub rust_tests: usize,
    pub c_tests: usize,
    pub only_rust: Vec<OneSided>,
    pub only_c: Vec<OneSided>,
    pub verdicts: Vec<VerdictDiff>,
    /// The tests both have come in the same order.
    pub same_order: bool,
    /// No test only one side has, and the same order: the same names, line by line.
    pub same_names_and_order: bool,
    /// The first test both have whose position differs: (Rust's, C's at that place).
    pub first_out_of_order: Option<(String, String)>,
    /// Explanations that match no difference of this run.
    pub stale: Vec<String>,
    /// A suite of the pair is judged as broken on purpose: reported, decides nothing.
    pub informational: bool,
    /// What makes the run a mismatch, one line each, naming the test.
    pub problems: Vec<String>,
}

impl Comparison {
    /// The one line of the end-of-run table.
    pub fn line(&self) -> String {
        let head = format!("{} vs {}", self.rust, self.c);
        if let Some(why) = &self.not_compared {
            return format!("{head}: not compared: {why}");
        }
        let count = if self.rust_tests == self.c_tests {
            format!("{} tests", self.rust_tests)
        } else {
            format!("{} vs {} tests", self.rust_tests, self.c_tests)
        };
        let explained = |n: usize, all: usize| match (n, all) {
            (_, 0) => String::new(),
            (n, all) if n == all => " (explained)".into(),
            (n, all) => format!(" ({} UNEXPLAINED)", all - n),
        };
        let mut parts = vec![count];
        if self.only_rust.is_empty() && self.only_c.is_empty() {
            parts.push("same names".into());
        } else {
            for (side, list) in [(&self.rust, &self.only_rust), (&self.c, &self.only_c)] {
                if !list.is_empty() {
                    let n = list.iter().filter(|t| t.explained.is_some()).count();
                    parts.push(format!(
                        "{} only in {side}{}",
                        list.len(),
                        explained(n, list.len())
                    ));
                }
            }
        }
        parts.push(if self.same_order {
            "same order".into()
        } else {
            "ORDER DIFFERS".into()
        });
        if self.verdicts.is_empty() {
            parts.push("same verdicts".into());
        } else {
            let n = self
                .verdicts
                .iter()
                .filter(|t| t.explained.is_some())
                .count();
            parts.push(format!(
                "{} verdict(s) differ{}",
                self.verdicts.len(),
                explained(n, self.verdicts.len())
            ));
        }
        if !self.stale.is_empty() {
            parts.push(format!("{} STALE explanation(s)", self.stale.len()));
        }
        let mut l = format!("{head}: {}", parts.join(", "));
        if self.informational {
            l.push_str(" (a kernel broken on purpose: decides nothing)");
        }
        l
    }

    /// Every difference, one line each with its explanation or why it fails.
    pub fn detail_lines(&self) -> Vec<String> {
        let why = |e: &Option<String>| match e {
            Some(r) => format!("explained: {r}"),
            None => "UNEXPLAINED".into(),
        };
        let mut v = Vec::new();
        for (side, list) in [(&self.rust, &self.only_rust), (&self.c, &self.only_c)] {
            for t in list {
                v.push(format!(
                    "only in {side}: {} ({}) -- {}",
                    t.name,
                    t.status,
                    why(&t.explained)
                ));
            }
        }
        for d in &self.verdicts {
            v.push(format!(
                "verdict differs: {} ({} {}, {} {}) -- {}",
                d.name,
                self.rust,
                d.rust,
                self.c,
                d.c,
                why(&d.explained)
            ));
        }
        if let Some((r, c)) = &self.first_out_of_order {
            v.push(format!(
                "order differs: first at {r:?} ({}) vs {c:?} ({})",
                self.rust, self.c
            ));
        }
        for s in &self.stale {
            v.push(format!("STALE explanation: {s}"));
        }
        v
    }
}

/// The headline's part: "1 unexplained C-vs-Rust difference(s), 2 stale ...".
pub fn headline(cmp: &[Comparison]) -> String {
    let stale: usize = cmp
        .iter()
        .filter(|c| !c.informational)
        .map(|c| c.stale.len())
        .sum();
    let all: usize = cmp.iter().map(|c| c.problems.len()).sum();
    let mut v = Vec::new();
    if all > stale {
        v.push(format!(
            "{} unexplained C-vs-Rust difference(s)",
            all - stale
        ));
    }
    if stale > 0 {
        v.push(format!("{stale} stale C-vs-Rust explanation(s)"));
    }
    v.join(", ")
}

/// The key a test is matched by: the measured prefix if it has one; a name that
/// repeats within the suite is keyed `name #k` (the k-th, from 1), as expectations
/// key it (judge.rs).
fn keyed<'a>(tests: &[&'a TestVerdict], measured: &[String]) -> Vec<(String, &'a TestVerdict)> {
    let base = |t: &TestVerdict| {
        measured
            .iter()
            .find(|m| t.name.starts_with(m.as_str()))
            .cloned()
            .unwrap_or_else(|| t.name.clone())
    };
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for t in tests {
        *count.entry(base(t)).or_default() += 1;
    }
    let mut nth: BTreeMap<String, usize> = BTreeMap::new();
    tests
        .iter()
        .map(|t| {
            let b = base(t);
            let k = nth.entry(b.clone()).or_default();
            *k += 1;
            let key = if count[&b] > 1 {
                format!("{b} #{k}")
            } else {
                b
            };
            (key, *t)
        })
        .collect()
}

/// Compares every pair of the plan whose two suites were judged (a loop that
/// narrows a plan's suites, per-patch runs or the bench, leaves the pair out).
pub fn compare_all(
    target: &str,
    pairs: &[Pair],
    j: &Judgement,
    broken: &dyn Fn(&str) -> bool,
) -> Vec<Comparison> {
    let judged = |s: &str| j.suites.iter().any(|v| v.name == s);
    pairs
        .iter()
        .filter(|p| judged(&p.rust) && judged(&p.c))
        .map(|p| compare(target, p, j, broken(&p.rust) || broken(&p.c)))
        .collect()
}

/// Compares one pair over the judged tests.
pub fn compare(target: &str, p: &Pair, j: &Judgement, informational: bool) -> Comparison {
    let mut c = Comparison {
        rust: p.rust.clone(),
        c: p.c.clone(),
        not_compared: None,
        rust_tests: 0,
        c_tests: 0,
        only_rust: Vec::new(),
        only_c: Vec::new(),
        verdicts: Vec::new(),
        same_order: true,
        same_names_and_order: false,
        first_out_of_order: None,
        stale: Vec::new(),
        informational,
        problems: Vec::new(),
    };
    let suite = |name: &str| j.suites.iter().find(|s| s.name == name);
    let (rs, cs) = (suite(&p.rust), suite(&p.c));
    let (Some(rs), Some(cs)) = (rs, cs) else {
        c.not_compared = Some("a suite of the pair was not run".into());
        return c;
    };
    // A suite that never reported is the judge's mismatch already.
    let never = |s: &crate::judge::SuiteVerdict| {
        s.status == ktap::Status::Crashed && !j.tests.iter().any(|t| t.suite == s.name)
    };
    if never(rs) || never(cs) {
        let who = if never(rs) { &p.rust } else { &p.c };
        c.not_compared = Some(format!("{who} never reported"));
        return c;
    }
    match (&rs.skipped_suite, &cs.skipped_suite) {
        (Some(_), Some(_)) => {
            c.not_compared = Some("both skipped as a whole".into());
            return c;
        }
        (Some(why), None) | (None, Some(why)) => {
            let (who, other) = if rs.skipped_suite.is_some() {
                (&p.rust, &p.c)
            } else {
                (&p.c, &p.rust)
            };
            c.not_compared = Some(format!("{who} skipped as a whole ({why}), {other} ran"));
            if !informational {
                c.problems.push(format!(
                    "{} vs {}: {who} skipped as a whole ({why}), {other} ran",
                    p.rust, p.c
                ));
            }
            return c;
        }
        (None, None) => {}
    }
    let of =
        |name: &str| -> Vec<&TestVerdict> { j.tests.iter().filter(|t| t.suite == name).collect() };
    let (rt, ct) = (of(&p.rust), of(&p.c));
    c.rust_tests = rt.len();
    c.c_tests = ct.len();
    let (rk, ck) = (keyed(&rt, &p.measured), keyed(&ct, &p.measured));
    let cmap: BTreeMap<&str, &TestVerdict> = ck.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    let rmap: BTreeMap<&str, &TestVerdict> = rk.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    let mut used = BTreeSet::new();
    let mut use_expl = |kind: &str, map: &BTreeMap<String, String>, key: &str| {
        map.get(key).map(|r| {
            used.insert((kind.to_string(), key.to_string()));
            r.clone()
        })
    };
    for (k, t) in &rk {
        match cmap.get(k.as_str()) {
            None => c.only_rust.push(OneSided {
                name: t.name.clone(),
                status: t.status.as_str().into(),
                explained: use_expl("only_rust", &p.explained.only_rust, k),
            }),
            Some(ctest) if ctest.status != t.status => c.verdicts.push(VerdictDiff {
                name: t.name.clone(),
                rust: t.status.as_str().into(),
                c: ctest.status.as_str().into(),
                explained: use_expl("verdict", &p.explained.verdict, k),
            }),
            Some(_) => {}
        }
    }
    for (k, t) in &ck {
        if !rmap.contains_key(k.as_str()) {
            c.only_c.push(OneSided {
                name: t.name.clone(),
                status: t.status.as_str().into(),
                explained: use_expl("only_c", &p.explained.only_c, k),
            });
        }
    }
    // Order: the tests both have, in each side's order.
    let common_r: Vec<&str> = rk
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| cmap.contains_key(k))
        .collect();
    let common_c: Vec<&str> = ck
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| rmap.contains_key(k))
        .collect();
    if let Some((r, cc)) = common_r.iter().zip(&common_c).find(|(a, b)| a != b) {
        c.same_order = false;
        c.first_out_of_order = Some((r.to_string(), cc.to_string()));
    }
    c.same_names_and_order = c.only_rust.is_empty() && c.only_c.is_empty() && c.same_order;
    for (kind, map) in p.explained.kinds() {
        for name in map.keys() {
            if !used.contains(&(kind.to_string(), name.clone())) {
                let now = match (rmap.get(name.as_str()), cmap.get(name.as_str())) {
                    (Some(r), Some(x)) if r.status == x.status => {
                        format!("both have it, both {}", r.status.as_str())
                    }
                    (Some(r), Some(x)) => format!(
                        "both have it ({} {}, {} {})",
                        p.rust,
                        r.status.as_str(),
                        p.c,
                        x.status.as_str()
                    ),
                    (Some(_), None) => format!("only {} has it", p.rust),
                    (None, Some(_)) => format!("only {} has it", p.c),
                    (None, None) => "neither side has a test of that name".into(),
                };
                c.stale.push(format!(
                    "{FILE}: explained.{target}.{kind}: {name:?}: {now}"
                ));
            }
        }
    }
    if !informational {
        let head = format!("{} vs {}", p.rust, p.c);
        for (side, list) in [(&p.rust, &c.only_rust), (&p.c, &c.only_c)] {
            for t in list.iter().filter(|t| t.explained.is_none()) {
                c.problems.push(format!(
                    "{head}: {} ({}) only in {side}, not explained in {FILE}",
                    t.name, t.status
                ));
            }
        }
        for d in c.verdicts.iter().filter(|d| d.explained.is_none()) {
            c.problems.push(format!(
                "{head}: {} is {} in {} but {} in {}, not explained in {FILE}",
                d.name, d.rust, p.rust, d.c, p.c
            ));
        }
        if let Some((r, cc)) = &c.first_out_of_order {
            c.problems.push(format!(
                "{head}: the order differs, first at {r:?} ({}) vs {cc:?} ({})",
                p.rust, p.c
            ));
        }
        for s in &c.stale {
            c.problems.push(format!("{head}: stale explanation: {s}"));
        }
    }
    c
}

/// c-vs-rust.md: every pair, its line, its differences, and the test-by-test table.
pub fn markdown(target: &str, cmp: &[Comparison], j: &Judgement, pairs: &[Pair]) -> String {
    let mut o = format!("# Upstream's C programs vs the Rust ports: {target}\n");
    for (c, p) in cmp.iter().zip(pairs) {
        let _ = writeln!(o, "\n## {} vs {}\n\n{}\n", c.rust, c.c, c.line());
        let d = c.detail_lines();
        if !d.is_empty() {
            for l in d {
                let _ = writeln!(o, "- {l}");
            }
            o.push('\n');
        }
        if c.not_compared.is_some() {
            continue;
        }
        let of = |name: &str| -> Vec<&TestVerdict> {
            j.tests.iter().filter(|t| t.suite == name).collect()
        };
        let (rt, ct) = (of(&c.rust), of(&c.c));
        let (rk, ck) = (keyed(&rt, &p.measured), keyed(&ct, &p.measured));
        let cpos: BTreeMap<&str, (usize, &TestVerdict)> = ck
            .iter()
            .enumerate()
            .map(|(i, (k, t))| (k.as_str(), (i + 1, *t)))
            .collect();
        let _ = writeln!(
            o,
            "| # {r} | # {cc} | test ({r}'s name) | {r} | {cc} |\n|---|---|---|---|---|",
            r = c.rust,
            cc = c.c
        );
        for (i, (k, t)) in rk.iter().enumerate() {
            let (n, s) = match cpos.get(k.as_str()) {
                Some((n, ct)) => (n.to_string(), ct.status.as_str()),
                None => ("-".into(), "-"),
            };
            let _ = writeln!(
                o,
                "| {} | {n} | {} | {} | {s} |",
                i + 1,
                t.name.replace('|', "\\|"),
                t.status.as_str()
            );
        }
        let rkeys: BTreeSet<&str> = rk.iter().map(|(k, _)| k.as_str()).collect();
        for (i, (k, t)) in ck.iter().enumerate() {
            if !rkeys.contains(k.as_str()) {
                let _ = writeln!(
                    o,
                    "| - | {} | {} | - | {} |",
                    i + 1,
                    t.name.replace('|', "\\|"),
                    t.status.as_str()
                );
            }
        }
    }
    o
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::judge::Judge;
    use crate::plan::RunPlan;

    /// A plan with the pair pagemap_ioctl / pagemap_ioctl.c and these explanations.
    pub fn paired(explained: &str) -> RunPlan {
        let m = Matrix::parse(
            "default: t\ntargets:\n  - name: t\n    source: { debian: x }\n    configs: [a]\n    order: [pagemap_ioctl, pagemap_ioctl.c]\n    suites:\n      pagemap_ioctl: {}\n      pagemap_ioctl.c: {}\n",
        )
        .unwrap();
        let mut p = RunPlan::resolve(&m.targets[0], &Default::default()).unwrap();
        let cfg = Config::parse(
            &format!(
                "pairs:\n  - rust: pagemap_ioctl\n    c: pagemap_ioctl.c\n    measured: ['transact_test Extra pages']\n    explained:\n      t:\n{explained}"
            ),
            "test",
        )
        .unwrap();
        p.c_vs_rust = cfg.for_run("t", &p.suites);
        p
    }

    /// Results of both suites: `(name, ok)` each, in order.
    pub fn run(rust: &[(&str, bool)], c: &[(&str, bool)]) -> String {
        let mut o = String::from("KTAP version 1\n1..2\n");
        for (i, (suite, tests)) in [("pagemap_ioctl", rust), ("pagemap_ioctl.c", c)]
            .iter()
            .enumerate()
        {
            o.push_str(&format!("  TAP version 13\n  1..{}\n", tests.len()));
            for (n, (name, ok)) in tests.iter().enumerate() {
                let r = if *ok { "ok" } else { "not ok" };
                o.push_str(&format!("  {r} {} {name}\n", n + 1));
            }
            o.push_str(&format!("ok {} {suite}\n", i + 1));
        }
        o.push_str("# exit=0\n");
        o
    }

    fn compared(p: &RunPlan, text: &str) -> (Comparison, Judgement) {
        let j = Judge::replay(p, text, "", None);
        assert_eq!(j.c_vs_rust.len(), 1);
        (j.c_vs_rust[0].clone(), j)
    }

    const BOTH: &[(&str, bool)] = &[("a", true), ("b", true), ("c", true)];

    #[test]
    fn identical_results_say_so() {
        let p = paired("        {}\n");
        let (c, j) = compared(&p, &run(BOTH, BOTH));
        assert_eq!(
            c.line(),
            "pagemap_ioctl vs pagemap_ioctl.c: 3 tests, same names, same order, same verdicts"
        );
        assert!(c.same_names_and_order && c.problems.is_empty());
        assert_eq!(j.exit(), crate::util::Exit::Ok);
    }

    #[test]
    fn measured_names_match_by_their_prefix() {
        let p = paired("        {}\n");
        let r = [(
            "transact_test Extra pages 2 (0.0%), extra thread faults 2.",
            true,
        )];
        let c = [(
            "transact_test Extra pages 12 (0.1%), extra thread faults 12.",
            true,
        )];
        let (c, _) = compared(&p, &run(&r, &c));
        assert!(c.same_names_and_order && c.problems.is_empty(), "{c:?}");
    }

    #[test]
    fn a_test_only_one_side_has_fails_unless_explained() {
        let c_side = &BOTH[..2];
        let p = paired("        {}\n");
        let (c, j) = compared(&p, &run(BOTH, c_side));
        assert_eq!(
            c.line(),
            "pagemap_ioctl vs pagemap_ioctl.c: 3 vs 2 tests, 1 only in pagemap_ioctl (1 UNEXPLAINED), same order, same verdicts"
        );
        assert_eq!(
            c.problems,
            ["pagemap_ioctl vs pagemap_ioctl.c: c (PASS) only in pagemap_ioctl, not explained in configs/c-vs-rust.yaml"]
        );
        assert_eq!(j.exit(), crate::util::Exit::Mismatch);
        assert_eq!(
            j.headline(),
            "mismatch: 1 unexplained C-vs-Rust difference(s)"
        );
        let t = crate::report::table(&j, &[]);
        assert!(t.contains("unexpected results (1):\n  pagemap_ioctl vs pagemap_ioctl.c: c (PASS) only in pagemap_ioctl"), "{t}");

        let p = paired("        only_rust: { c: 'the C program of this tree lacks it' }\n");
        let (c, j) = compared(&p, &run(BOTH, c_side));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(c.line().contains("1 only in pagemap_ioctl (explained)"));
        assert_eq!(j.exit(), crate::util::Exit::Ok);
        // The other side.
        let (c, _) = compared(&paired("        {}\n"), &run(c_side, BOTH));
        assert_eq!(c.only_c.len(), 1);
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].contains("c (PASS) only in pagemap_ioctl.c"));
    }

    #[test]
    fn a_different_verdict_fails_unless_explained() {
        let c_side = [("a", true), ("b", false), ("c", true)];
        let mut p = paired("        {}\n");
        // pagemap_ioctl.c's failure is expected by the target: only the comparison fails.
        p.expect
            .get_mut("pagemap_ioctl.c")
            .unwrap()
            .fail
            .insert("b".into(), "known".into());
        let (c, j) = compared(&p, &run(BOTH, &c_side));
        assert_eq!(j.mismatches(), 0, "{:?}", j.suites);
        assert_eq!(
            c.problems,
            ["pagemap_ioctl vs pagemap_ioctl.c: b is PASS in pagemap_ioctl but FAIL in pagemap_ioctl.c, not explained in configs/c-vs-rust.yaml"]
        );
        assert!(
            c.line().ends_with("1 verdict(s) differ (1 UNEXPLAINED)"),
            "{}",
            c.line()
        );
        assert_eq!(j.exit(), crate::util::Exit::Mismatch);
        let mut q = paired("        verdict: { b: 'a known difference' }\n");
        q.expect = p.expect.clone();
        let (c, j) = compared(&q, &run(BOTH, &c_side));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(j.exit(), crate::util::Exit::Ok);
    }

    #[test]
    fn a_different_order_fails() {
        let c_side = [("a", true), ("c", true), ("b", true)];
        let (c, j) = compared(&paired("        {}\n"), &run(BOTH, &c_side));
        assert!(!c.same_order && !c.same_names_and_order);
        assert!(c.only_rust.is_empty() && c.only_c.is_empty());
        assert_eq!(
            c.problems,
            ["pagemap_ioctl vs pagemap_ioctl.c: the order differs, first at \"b\" (pagemap_ioctl) vs \"c\" (pagemap_ioctl.c)"]
        );
        assert!(
            c.line().contains("same names, ORDER DIFFERS"),
            "{}",
            c.line()
        );
        assert_eq!(j.exit(), crate::util::Exit::Mismatch);
    }

    #[test]
    fn a_stale_explanation_fails() {
        let p = paired("        only_rust: { c: 'lacks it', gone: 'removed upstream' }\n");
        let (c, j) = compared(&p, &run(BOTH, BOTH));
        assert_eq!(c.stale.len(), 2, "{:?}", c.stale);
        assert!(
            c.problems.iter().any(|l| l
                == "pagemap_ioctl vs pagemap_ioctl.c: stale explanation: configs/c-vs-rust.yaml: explained.t.only_rust: \"c\": both have it, both PASS"),
            "{:?}",
            c.problems
        );
        assert!(
            c.problems
                .iter()
                .any(|l| l.contains("\"gone\": neither side has a test of that name")),
            "{:?}",
            c.problems
        );
        assert!(c.line().ends_with("2 STALE explanation(s)"), "{}", c.line());
        assert_eq!(j.headline(), "mismatch: 2 stale C-vs-Rust explanation(s)");
        assert_eq!(j.exit(), crate::util::Exit::Mismatch);
    }

    #[test]
    fn a_broken_kernel_reports_but_decides_nothing() {
        let mut p = paired("        {}\n");
        p.expect.get_mut("pagemap_ioctl").unwrap().broken = Some("test data".into());
        p.expect
            .get_mut("pagemap_ioctl")
            .unwrap()
            .fail
            .insert("b".into(), "must fail".into());
        let r = [("a", true), ("b", false), ("c", true)];
        let (c, j) = compared(&p, &run(&r, BOTH));
        assert_eq!(c.verdicts.len(), 1);
        assert!(c.problems.is_empty() && c.informational);
        assert_eq!(j.exit(), crate::util::Exit::Ok, "{}", j.headline());
    }

    #[test]
    fn a_suite_skipped_as_a_whole_on_one_side_only_fails() {
        let mut p = paired("        {}\n");
        p.expect.get_mut("pagemap_ioctl.c").unwrap().skip_suite = Some("x".into());
        let text = run(BOTH, BOTH).replace(
            "  1..3\n  ok 1 a\n  ok 2 b\n  ok 3 c\nok 2 pagemap_ioctl.c",
            "  1..0 # SKIP no uffd\nok 2 pagemap_ioctl.c # SKIP",
        );
        let (c, j) = compared(&p, &text);
        assert_eq!(j.mismatches(), 0, "{:?}", j.suites);
        assert!(c.not_compared.is_some());
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert!(c.problems[0]
            .contains("pagemap_ioctl.c skipped as a whole (no uffd), pagemap_ioctl ran"));
    }

    #[test]
    fn a_run_without_both_suites_compares_nothing() {
        let mut p = paired("        {}\n");
        p.suites.retain(|s| !s.ends_with(".c"));
        p.expect.retain(|s, _| !s.ends_with(".c"));
        let j = Judge::replay(&p, &run(BOTH, BOTH), "", None);
        assert!(j.c_vs_rust.is_empty(), "{:?}", j.c_vs_rust);
        assert_eq!(j.exit(), crate::util::Exit::Ok, "{}", j.headline());
    }

    #[test]
    fn markdown_lists_every_test_of_both_sides() {
        let p = paired("        only_rust: { c: 'lacks it' }\n");
        let c_side = [("a", true), ("b", false), ("x|y", true)];
        let j = Judge::replay(&p, &run(BOTH, &c_side), "", None);
        let md = markdown("t", &j.c_vs_rust, &j, &p.c_vs_rust);
        assert!(md.contains("## pagemap_ioctl vs pagemap_ioctl.c\n\npagemap_ioctl vs pagemap_ioctl.c: 3 tests, 1 only in pagemap_ioctl (explained), 1 only in pagemap_ioctl.c (1 UNEXPLAINED), same order, 1 verdict(s) differ (1 UNEXPLAINED)\n"), "{md}");
        assert!(
            md.contains("- only in pagemap_ioctl: c (PASS) -- explained: lacks it\n"),
            "{md}"
        );
        assert!(md.contains("| 2 | 2 | b | PASS | FAIL |\n"), "{md}");
        assert!(md.contains("| 3 | - | c | PASS | - |\n"), "{md}");
        assert!(md.contains("| - | 3 | x\\|y | - | PASS |\n"), "{md}");
    }

    #[test]
    fn repeated_names_match_in_turn() {
        let r = [("a", true), ("a", false)];
        let c = [("a", true), ("a", true)];
        let (c, _) = compared(
            &paired("        verdict: { 'a #2': 'known' }\n"),
            &run(&r, &c),
        );
        assert_eq!(c.verdicts.len(), 1);
        assert_eq!(c.verdicts[0].rust, "FAIL");
        assert_eq!(c.verdicts[0].explained.as_deref(), Some("known"));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn the_file_is_checked() {
        let e = Config::parse(
            "pairs:\n  - rust: pagemap_ioctl\n    c: pagemap_ioctl.c\n    explained:\n      t: { only_rus: {} }\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `only_rus`"), "{e}");
        let e = Config::parse(
            "pairs:\n  - rust: pagemap_ioctl\n    c: pagemap_ioctl.c\n    explained:\n      t: { only_c: { x: ' ' } }\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.yaml: pairs[0] (pagemap_ioctl vs pagemap_ioctl.c).explained.t.only_c: \"x\" needs a reason"), "{e}");
        let e = Config::parse("pairs:\n  - rust: a.c\n    c: pagemap_ioctl.c\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(".rust: \"a.c\" is not a Rust suite"), "{e}");
        let c = Config::parse(
            "pairs:\n  - rust: pagemap_ioctl\n    c: pagemap_ioctl.c\n    explained:\n      nope: {}\n",
            "f.yaml",
        )
        .unwrap();
        let m = crate::test_kernel::matrix_unchecked().unwrap();
        let e = c.validate(&m).unwrap_err().to_string();
        assert!(
            e.contains(".explained.nope: no such target in configs/targets.yaml"),
            "{e}"
        );
        let c = Config::parse(
            "pairs:\n  - rust: pagemap_ioctl\n    c: pagemap_ioctl.c\n    explained:\n      v6.1: {}\n",
            "f.yaml",
        )
        .unwrap();
        let e = c.validate(&m).unwrap_err().to_string();
        assert!(
            e.contains(".explained.v6.1: the target does not run pagemap_ioctl.c"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_file_is_valid_and_pairs_the_targets_runs() {
        let c = Config::builtin().unwrap();
        let m = crate::test_kernel::matrix_unchecked().unwrap();
        c.validate(&m).unwrap();
        let t = m.get("v6.12").unwrap();
        let p = RunPlan::resolve(t, &crate::plan::Overrides::default()).unwrap();
        assert_eq!(p.c_vs_rust.len(), 1);
        assert_eq!(p.c_vs_rust[0].explained.only_rust.len(), 3);
        assert!(p.base().c_vs_rust.is_empty());
        let v72 = RunPlan::resolve(m.get("v7.2").unwrap(), &Default::default()).unwrap();
        assert_eq!(v72.c_vs_rust[0].explained, Explained::default());
    }
}
