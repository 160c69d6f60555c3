//! Comparing two judged runs (`--compare-base`: the base kernel, then with the
//! series): which tests changed their status, and which of those are regressions.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use ktap::Status;

use crate::judge::Judgement;

/// A test's status in one run, or why it has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    Ran(Status),
    /// Its suite ran and this test was not among its results.
    Missing,
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Ran(s) => f.write_str(s.as_str()),
            Seen::Missing => f.write_str("MISSING"),
        }
    }
}

impl Seen {
    fn passed(self) -> bool {
        matches!(self, Seen::Ran(Status::Pass | Status::Xfail))
    }
}

/// One test whose verdict differs between two runs (base -> with the series).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub suite: String,
    pub name: String,
    pub before: Seen,
    pub after: Seen,
}

impl Change {
    /// Ran and passed before, does not pass now.
    pub fn is_regression(&self) -> bool {
        self.before.passed() && !self.after.passed()
    }
}

/// Per-test statuses of a run. Upstream repeats some test names; the n-th repeat
/// is keyed `name [n]`.
fn statuses(a: &Judgement) -> BTreeMap<(String, String), Status> {
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
            ((t.suite.clone(), name), t.status)
        })
        .collect()
}

/// A test absent from a run: a suite skipped as a whole counts its tests as SKIP,
/// a suite that never reported as CRASHED.
fn absent(a: &Judgement, suite: &str) -> Seen {
    match a.suites.iter().find(|s| s.name == suite) {
        Some(s) if s.skipped_suite.is_some() => Seen::Ran(Status::Skip),
        Some(s) if s.status == Status::Crashed => Seen::Ran(Status::Crashed),
        Some(_) | None => Seen::Missing,
    }
}

/// The tests whose status differs, restricted to the suites both runs ran.
pub fn compare(base: &Judgement, with: &Judgement) -> Vec<Change> {
    let both = |s: &str| {
        base.suites.iter().any(|x| x.name == s) && with.suites.iter().any(|x| x.name == s)
    };
    let (b, w) = (statuses(base), statuses(with));
    let mut keys: Vec<&(String, String)> =
        b.keys().chain(w.keys()).filter(|k| both(&k.0)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let before = b
                .get(k)
                .map(|s| Seen::Ran(*s))
                .unwrap_or_else(|| absent(base, &k.0));
            let after = w
                .get(k)
                .map(|s| Seen::Ran(*s))
                .unwrap_or_else(|| absent(with, &k.0));
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
pub fn table(changes: &[Change]) -> String {
    let mut o = String::from("verdicts changed by the series (base -> with series):\n");
    if changes.is_empty() {
        o.push_str("  none\n");
        return o;
    }
    let mut groups: BTreeMap<(String, Seen, Seen), Vec<&Change>> = BTreeMap::new();
    for c in changes {
        groups
            .entry((c.suite.clone(), c.before, c.after))
            .or_default()
            .push(c);
    }
    for ((suite, before, after), list) in &groups {
        let regression = list[0].is_regression();
        let flag = if regression { "  REGRESSION" } else { "" };
        let _ = writeln!(
            o,
            "  {suite}: {} test(s) {before} -> {after}{flag}",
            list.len()
        );
        for c in list.iter().take(if regression { usize::MAX } else { 5 }) {
            let _ = writeln!(o, "      {}", c.name);
        }
        if list.len() > 5 && !regression {
            let _ = writeln!(o, "      ... and {} more", list.len() - 5);
        }
    }
    let regressions = changes.iter().filter(|c| c.is_regression()).count();
    let _ = writeln!(o, "  regressions (pass -> not pass): {regressions}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::tests::{judge, plan, RUN};

    #[test]
    fn compare_counts_suite_skips_and_flags_regressions() {
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        let base = judge(&p, RUN, "");
        let with_text = RUN
            .replace(
                "  1..0 # SKIP PAGEMAP_SCAN not supported\n",
                "  1..1\n  ok 1 sanity\n",
            )
            .replace("ok 2 pagemap_ioctl # SKIP", "ok 2 pagemap_ioctl")
            .replace("  ok 1 Test test_simple", "  not ok 1 Test test_simple");
        let with = judge(&p, &with_text, "");
        let ch = compare(&base, &with);
        assert!(
            ch.contains(&Change {
                suite: "pagemap_ioctl".into(),
                name: "sanity".into(),
                before: Seen::Ran(Status::Skip),
                after: Seen::Ran(Status::Pass),
            }),
            "{ch:?}"
        );
        let reg: Vec<_> = ch.iter().filter(|c| c.is_regression()).collect();
        assert_eq!(reg.len(), 1);
        assert_eq!(reg[0].name, "Test test_simple");
        let t = table(&ch);
        assert!(t.contains("pagemap_ioctl: 1 test(s) SKIP -> PASS"), "{t}");
        assert!(t.contains("regressions (pass -> not pass): 1"), "{t}");
    }

    #[test]
    fn suites_only_one_run_ran_are_not_compared() {
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        let with = judge(&p, RUN, "");
        let mut only_sd = p.clone();
        only_sd.suites = vec!["soft-dirty".into()];
        let base = judge(&only_sd, RUN, "");
        assert!(compare(&base, &with).is_empty());
    }
}
