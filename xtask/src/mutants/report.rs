//! The mutants report: score, per-file and per-function scores, survivors, and a view
//! of the series' added lines coloured by what became of their mutants. Pure functions
//! of the generated mutants and the results; markdown, JSON and HTML renderings.
//!
//! Score = killed / (killed + survived), timeouts counted as killed (and listed),
//! build errors and mutants not run yet left out.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::generate::{Generation, Mutant, Operator};
use super::store::{Outcome, Results};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub mutants: usize,
    pub killed: usize,
    pub timeout: usize,
    pub survived: usize,
    pub build_error: usize,
    pub equivalent: usize,
    pub not_run: usize,
    /// (killed + timeout) / (killed + timeout + survived); None when nothing counted.
    pub score: Option<f64>,
}

impl Totals {
    fn add(&mut self, o: Option<&Outcome>) {
        self.mutants += 1;
        match o {
            None => self.not_run += 1,
            Some(Outcome::Killed { .. }) => self.killed += 1,
            Some(Outcome::Timeout { .. }) => self.timeout += 1,
            Some(Outcome::Survived) => self.survived += 1,
            Some(Outcome::BuildError { .. }) => self.build_error += 1,
            Some(Outcome::Equivalent { .. }) => self.equivalent += 1,
        }
        let counted = self.killed + self.timeout + self.survived;
        self.score = (counted > 0).then(|| (self.killed + self.timeout) as f64 / counted as f64);
    }

    fn score_text(&self) -> String {
        match self.score {
            Some(s) => format!("{:.1}%", s * 100.0),
            None => "-".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// A file, or `file: function`.
    pub name: String,
    pub totals: Totals,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    pub id: String,
    pub file: String,
    pub line: u32,
    pub function: Option<String>,
    pub operator: Operator,
    pub description: String,
    pub original: String,
    pub mutated: String,
    /// Killed: why; timeout: phase and seconds; build error: the log's tail.
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Every mutant that ran was killed (or timed out), at least one ran.
    Killed,
    /// At least one mutant survived.
    Survived,
    /// Its mutants that ran were equivalent (or build errors).
    Equivalent,
    /// Its mutants were all build errors.
    BuildError,
    /// Selected mutants have not run yet.
    Pending,
    /// Has mutants, none of them in this run's selection.
    NotSelected,
    /// No operator applies (a comment, a declaration, a preprocessor line, ...).
    NotMutated,
}

impl LineStatus {
    fn class(self) -> &'static str {
        match self {
            LineStatus::Killed => "killed",
            LineStatus::Survived => "survived",
            LineStatus::Equivalent => "equivalent",
            LineStatus::BuildError => "build-error",
            LineStatus::Pending => "pending",
            LineStatus::NotSelected => "not-selected",
            LineStatus::NotMutated => "not-mutated",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub file: String,
    pub line: u32,
    pub text: String,
    pub function: Option<String>,
    pub status: LineStatus,
    /// `id: outcome` of each selected mutant of the line.
    pub mutants: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The series the mutants came from.
    pub series: String,
    /// The suites that ran, in the order first seen.
    pub suites: Vec<String>,
    pub total: Totals,
    pub per_file: Vec<Group>,
    pub per_function: Vec<Group>,
    pub per_operator: Vec<Group>,
    pub survivors: Vec<Listed>,
    pub timeouts: Vec<Listed>,
    pub build_errors: Vec<Listed>,
    pub equivalents: Vec<Listed>,
    /// Mutants the reviewed equivalents list names but a test killed: the listing is
    /// wrong (`id: reason -> killed by ...`). Filled by the caller.
    #[serde(default)]
    pub contradicted: Vec<String>,
    pub lines: Vec<Line>,
    /// Mean seconds per mutant that ran (make; boot + tests), when any did.
    pub mean_build_secs: Option<f64>,
    pub mean_run_secs: Option<f64>,
}

fn outcome_text(o: Option<&Outcome>) -> String {
    match o {
        None => "not run".into(),
        Some(Outcome::Killed { by }) => format!(
            "killed by {}",
            by.iter()
                .map(|k| k.describe())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Some(Outcome::Survived) => "survived".into(),
        Some(Outcome::BuildError { .. }) => "build error".into(),
        Some(Outcome::Equivalent { reason }) => format!("equivalent: {reason}"),
        Some(Outcome::Timeout { phase, secs }) => format!("timeout in {phase} after {secs:.0} s"),
    }
}

fn listed(m: &Mutant, detail: String) -> Listed {
    Listed {
        id: m.id.clone(),
        file: m.file.clone(),
        line: m.line,
        function: m.function.clone(),
        operator: m.operator,
        description: m.description.clone(),
        original: m.original.clone(),
        mutated: m.mutated.clone(),
        detail,
    }
}

/// A selected mutant and its outcome, if it ran.
type Ran<'a> = (&'a Mutant, Option<&'a Outcome>);

/// The report of a run over `selected` (a subset of `g.mutants`, e.g. a sample).
pub fn build(series: &str, g: &Generation, selected: &[Mutant], results: &Results) -> Report {
    let mut total = Totals::default();
    let mut per_file: BTreeMap<String, Totals> = BTreeMap::new();
    let mut per_function: BTreeMap<String, Totals> = BTreeMap::new();
    let mut per_operator: BTreeMap<Operator, Totals> = BTreeMap::new();
    let (mut survivors, mut timeouts) = (Vec::new(), Vec::new());
    let (mut build_errors, mut equivalents) = (Vec::new(), Vec::new());
    let mut suites: Vec<String> = Vec::new();
    let (mut build_secs, mut run_secs, mut ran) = (0.0, 0.0, 0usize);
    let mut by_line: BTreeMap<(&str, u32), Vec<Ran>> = BTreeMap::new();
    for m in selected {
        let rec = results.of(m);
        let o = rec.map(|r| &r.outcome);
        total.add(o);
        per_file.entry(m.file.clone()).or_default().add(o);
        let f = format!("{}: {}", m.file, m.function.as_deref().unwrap_or("(none)"));
        per_function.entry(f).or_default().add(o);
        per_operator.entry(m.operator).or_default().add(o);
        if let Some(r) = rec {
            for s in &r.suites {
                if !suites.contains(s) {
                    suites.push(s.clone());
                }
            }
            build_secs += r.build_secs;
            run_secs += r.run_secs;
            ran += 1;
        }
        match o {
            Some(Outcome::Survived) => survivors.push(listed(m, String::new())),
            Some(Outcome::Timeout { .. }) => timeouts.push(listed(m, outcome_text(o))),
            Some(Outcome::BuildError { log_tail }) => {
                build_errors.push(listed(m, log_tail.clone()))
            }
            Some(Outcome::Equivalent { reason }) => equivalents.push(listed(m, reason.clone())),
            _ => {}
        }
        by_line
            .entry((m.file.as_str(), m.line))
            .or_default()
            .push((m, o));
    }
    let mut generated: BTreeMap<(&str, u32), usize> = BTreeMap::new();
    for m in &g.mutants {
        *generated.entry((m.file.as_str(), m.line)).or_default() += 1;
    }
    let lines = g
        .lines
        .iter()
        .map(|l| {
            let key = (l.file.as_str(), l.line);
            let ms = by_line.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            let any = |f: fn(&Outcome) -> bool| ms.iter().any(|(_, o)| o.is_some_and(f));
            let status = if any(|o| matches!(o, Outcome::Survived)) {
                LineStatus::Survived
            } else if any(|o| matches!(o, Outcome::Killed { .. } | Outcome::Timeout { .. })) {
                LineStatus::Killed
            } else if ms.iter().any(|(_, o)| o.is_none()) {
                LineStatus::Pending
            } else if any(|o| matches!(o, Outcome::Equivalent { .. })) {
                LineStatus::Equivalent
            } else if !ms.is_empty() {
                LineStatus::BuildError
            } else if generated.contains_key(&key) {
                LineStatus::NotSelected
            } else {
                LineStatus::NotMutated
            };
            Line {
                file: l.file.clone(),
                line: l.line,
                text: l.text.clone(),
                function: l.function.clone(),
                status,
                mutants: ms
                    .iter()
                    .map(|(m, o)| format!("{}: {} ({})", m.id, outcome_text(*o), m.description))
                    .collect(),
            }
        })
        .collect();
    let group = |m: BTreeMap<String, Totals>| {
        m.into_iter()
            .map(|(name, totals)| Group { name, totals })
            .collect::<Vec<_>>()
    };
    Report {
        series: series.to_string(),
        suites,
        total,
        per_file: group(per_file),
        per_function: group(per_function),
        per_operator: group(
            per_operator
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ),
        survivors,
        timeouts,
        build_errors,
        equivalents,
        contradicted: Vec::new(),
        lines,
        mean_build_secs: (ran > 0).then(|| build_secs / ran as f64),
        mean_run_secs: (ran > 0).then(|| run_secs / ran as f64),
    }
}

fn totals_table(out: &mut String, title: &str, groups: &[Group]) {
    let _ = writeln!(out, "\n## {title}\n");
    out.push_str(
        "| | score | killed | timeout | survived | build error | equivalent | not run |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for g in groups {
        let t = &g.totals;
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            g.name,
            t.score_text(),
            t.killed,
            t.timeout,
            t.survived,
            t.build_error,
            t.equivalent,
            t.not_run
        );
    }
}

fn listed_md(out: &mut String, l: &Listed) {
    let diff = |sign: char, text: &str| {
        text.split('\n')
            .map(|t| format!("  {sign}{t}\n"))
            .collect::<String>()
    };
    let _ = write!(
        out,
        "- `{}` ({}, {}): {}\n\n  ```diff\n{}{}  ```\n",
        l.id,
        l.function.as_deref().unwrap_or("no function"),
        l.operator,
        l.description,
        diff('-', &l.original),
        diff('+', &l.mutated)
    );
    if !l.detail.is_empty() {
        let _ = writeln!(out, "  {}", l.detail.lines().last().unwrap_or(""));
    }
}

pub fn markdown(r: &Report) -> String {
    let t = &r.total;
    let mut out = format!("# Mutants of {}\n\n", r.series);
    let _ = writeln!(
        out,
        "Mutation score: **{}** ({} killed + {} timeouts of {} counted; {} build errors \
         and {} equivalent not counted; {} of {} mutants not run).\n",
        t.score_text(),
        t.killed,
        t.timeout,
        t.killed + t.timeout + t.survived,
        t.build_error,
        t.equivalent,
        t.not_run,
        t.mutants
    );
    let _ = writeln!(
        out,
        "Suites run: {}.",
        if r.suites.is_empty() {
            "none yet".to_string()
        } else {
            r.suites.join(", ")
        }
    );
    if let (Some(b), Some(x)) = (r.mean_build_secs, r.mean_run_secs) {
        let _ = writeln!(
            out,
            "\nPer mutant: make {b:.0} s, boot + tests {x:.0} s (mean)."
        );
    }
    totals_table(&mut out, "Per file", &r.per_file);
    totals_table(&mut out, "Per function", &r.per_function);
    totals_table(&mut out, "Per operator", &r.per_operator);
    let _ = writeln!(out, "\n## Survivors ({})\n", r.survivors.len());
    for l in &r.survivors {
        listed_md(&mut out, l);
    }
    if !r.timeouts.is_empty() {
        let _ = writeln!(
            out,
            "\n## Timeouts, counted as killed ({})\n",
            r.timeouts.len()
        );
        for l in &r.timeouts {
            listed_md(&mut out, l);
        }
    }
    if !r.build_errors.is_empty() {
        let _ = writeln!(
            out,
            "\n## Build errors, not counted ({})\n",
            r.build_errors.len()
        );
        for l in &r.build_errors {
            listed_md(&mut out, l);
        }
    }
    if !r.contradicted.is_empty() {
        let _ = writeln!(
            out,
            "\n## Listed as equivalent but killed: fix the listing ({})\n",
            r.contradicted.len()
        );
        for c in &r.contradicted {
            let _ = writeln!(out, "- {c}");
        }
    }
    if !r.equivalents.is_empty() {
        let _ = writeln!(
            out,
            "\n## Equivalent, not counted ({})\n",
            r.equivalents.len()
        );
        for l in &r.equivalents {
            listed_md(&mut out, l);
        }
    }
    out
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("a report serialises")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page: the series' added lines per file, coloured by status, each
/// line's mutants and outcomes in its tooltip.
pub fn html(r: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Mutants of {s}</title>\n\
         <style>\nbody{{font-family:sans-serif}} table{{border-collapse:collapse}}\n\
         td.n{{color:#888;text-align:right;padding-right:1em}} td.c{{font-family:monospace;white-space:pre}}\n\
         .killed{{background:#c8f0c8}} .survived{{background:#f7b5b5}} .build-error{{background:#f5e6a3}} .equivalent{{background:#ddd}}\n\
         .pending,.not-selected{{background:#e8eefc}} .not-mutated{{background:#f2f2f2;color:#777}}\n\
         tr.gap td{{color:#aaa}}\n</style></head><body>\n<h1>Mutants of {s}</h1>\n\
         <p>Mutation score <b>{score}</b>: {k} killed, {to} timeouts, {sv} survived, {be} build errors, {nr} not run. \
         Suites: {suites}.</p>\n<p><span class=\"killed\">killed</span> <span class=\"survived\">survived</span> \
         <span class=\"build-error\">build error</span> <span class=\"pending\">not run</span> \
         <span class=\"not-mutated\">not mutated</span></p>\n",
        s = esc(&r.series),
        score = r.total.score_text(),
        k = r.total.killed,
        to = r.total.timeout,
        sv = r.total.survived,
        be = r.total.build_error,
        nr = r.total.not_run,
        suites = esc(&r.suites.join(", ")),
    );
    let mut file: Option<&str> = None;
    let mut prev = 0;
    for l in &r.lines {
        if file != Some(l.file.as_str()) {
            if file.is_some() {
                out.push_str("</table>\n");
            }
            let _ = write!(out, "<h2>{}</h2>\n<table>\n", esc(&l.file));
            file = Some(&l.file);
        } else if l.line != prev + 1 {
            out.push_str("<tr class=\"gap\"><td class=\"n\">…</td><td></td></tr>\n");
        }
        prev = l.line;
        let _ = writeln!(
            out,
            "<tr class=\"{cls}\" title=\"{tip}\"><td class=\"n\">{n}</td><td class=\"c\">{code}</td></tr>",
            cls = l.status.class(),
            tip = esc(&l.mutants.join("\n")),
            n = l.line,
            code = esc(&l.text.replace('\t', "        ")),
        );
    }
    if file.is_some() {
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::generate::SeriesLine;
    use crate::mutants::store::{Kill, Record};

    fn m(line: u32, op: Operator, function: &str) -> Mutant {
        Mutant {
            id: format!("f.c:{line}:{op}:0"),
            file: "f.c".into(),
            line,
            operator: op,
            index: 0,
            function: Some(function.into()),
            description: format!("change {line}"),
            original: format!("\tif (a < {line})"),
            mutated: format!("\tif (a <= {line})"),
            patch: format!("patch {line}"),
        }
    }

    /// Lines 1-7 and 9 of f.c added; mutants on 2 (killed), 3 (survived), 4 (timeout),
    /// 5 (build error), 6 (not run), 7 (equivalent), 9 (not selected); line 1 has none.
    fn fixture() -> (Generation, Vec<Mutant>, Results) {
        let lines = [1, 2, 3, 4, 5, 6, 7, 9]
            .iter()
            .map(|&l| SeriesLine {
                file: "f.c".into(),
                line: l,
                text: format!("line <{l}>"),
                function: Some(if l < 4 { "alpha" } else { "beta" }.into()),
            })
            .collect();
        let all = vec![
            m(2, Operator::Relational, "alpha"),
            m(3, Operator::Relational, "alpha"),
            m(4, Operator::Constant, "beta"),
            m(5, Operator::Constant, "beta"),
            m(6, Operator::Constant, "beta"),
            m(7, Operator::Constant, "beta"),
            m(9, Operator::Constant, "beta"),
        ];
        let selected = all[..6].to_vec();
        let mut r = Results::default();
        let mut put = |mu: &Mutant, outcome: Outcome, suites: &[&str]| {
            r.records.insert(
                mu.id.clone(),
                Record {
                    id: mu.id.clone(),
                    fingerprint: mu.fingerprint(),
                    outcome,
                    suites: suites.iter().map(|s| s.to_string()).collect(),
                    build_secs: 10.0,
                    run_secs: 30.0,
                },
            );
        };
        put(
            &all[0],
            Outcome::Killed {
                by: vec![Kill::Test {
                    suite: "pagemap_ioctl".into(),
                    test: "sanity_tests_sd".into(),
                }],
            },
            &["soft-dirty", "pagemap_ioctl"],
        );
        put(&all[1], Outcome::Survived, &["soft-dirty", "pagemap_ioctl"]);
        put(
            &all[2],
            Outcome::Timeout {
                phase: "pagemap_ioctl".into(),
                secs: 600.0,
            },
            &["soft-dirty", "pagemap_ioctl", "pagemap_scan_regressions"],
        );
        put(
            &all[3],
            Outcome::BuildError {
                log_tail: "f.c:5: error: expected ';'".into(),
            },
            &[],
        );
        put(
            &all[5],
            Outcome::Equivalent {
                reason: "same object code".into(),
            },
            &[],
        );
        // A stale record of line 6 (another patch text): not run.
        let mut stale = all[4].clone();
        stale.patch = "older".into();
        put(&stale, Outcome::Survived, &["x"]);
        (
            Generation {
                lines,
                mutants: all,
            },
            selected,
            r,
        )
    }

    #[test]
    fn score_and_groups() {
        let (g, sel, r) = fixture();
        let rep = build("patches/x", &g, &sel, &r);
        let t = &rep.total;
        assert_eq!(
            (
                t.mutants,
                t.killed,
                t.timeout,
                t.survived,
                t.build_error,
                t.equivalent,
                t.not_run
            ),
            (6, 1, 1, 1, 1, 1, 1)
        );
        assert_eq!(t.score, Some(2.0 / 3.0));
        let f: Vec<(&str, Option<f64>)> = rep
            .per_function
            .iter()
            .map(|g| (g.name.as_str(), g.totals.score))
            .collect();
        assert_eq!(f, [("f.c: alpha", Some(0.5)), ("f.c: beta", Some(1.0))]);
        assert_eq!(rep.per_operator.len(), 2);
        assert_eq!(
            rep.suites,
            ["soft-dirty", "pagemap_ioctl", "pagemap_scan_regressions"]
        );
        assert_eq!(rep.survivors.len(), 1);
        assert_eq!(rep.survivors[0].line, 3);
        assert_eq!(rep.survivors[0].original, "\tif (a < 3)");
        assert_eq!(rep.timeouts[0].line, 4);
        assert_eq!(rep.build_errors[0].line, 5);
        assert_eq!(rep.equivalents[0].line, 7);
        assert_eq!(rep.equivalents[0].detail, "same object code");
        let statuses: Vec<(u32, LineStatus)> =
            rep.lines.iter().map(|l| (l.line, l.status)).collect();
        assert_eq!(
            statuses,
            [
                (1, LineStatus::NotMutated),
                (2, LineStatus::Killed),
                (3, LineStatus::Survived),
                (4, LineStatus::Killed),
                (5, LineStatus::BuildError),
                (6, LineStatus::Pending),
                (7, LineStatus::Equivalent),
                (9, LineStatus::NotSelected),
            ]
        );
        assert!(rep.lines[1].mutants[0].contains("pagemap_ioctl: sanity_tests_sd"));
        assert_eq!(rep.mean_build_secs, Some(10.0));
    }

    #[test]
    fn nothing_counted_has_no_score() {
        let (g, sel, _) = fixture();
        let rep = build("s", &g, &sel, &Results::default());
        assert_eq!(rep.total.score, None);
        assert_eq!(rep.total.not_run, 6);
        assert!(markdown(&rep).contains("Mutation score: **-**"));
        assert!(markdown(&rep).contains("Suites run: none yet."));
    }

    #[test]
    fn renderings() {
        let (g, sel, r) = fixture();
        let rep = build("patches/x", &g, &sel, &r);
        let md = markdown(&rep);
        assert!(
            md.contains(
                "Mutation score: **66.7%** (1 killed + 1 timeouts of 3 counted; 1 build errors"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `f.c: alpha` | 50.0% | 1 | 0 | 1 | 0 | 0 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("## Survivors (1)\n\n- `f.c:3:relational:0` (alpha, relational)"),
            "{md}"
        );
        assert!(md.contains("  -\tif (a < 3)\n  +\tif (a <= 3)"), "{md}");
        assert!(
            md.contains("1 build errors and 1 equivalent not counted; 1 of 6 mutants not run"),
            "{md}"
        );
        assert!(md.contains("## Equivalent, not counted (1)"), "{md}");
        assert!(md.contains("Suites run: soft-dirty, pagemap_ioctl, pagemap_scan_regressions."));
        let back: Report = serde_json::from_str(&json(&rep)).unwrap();
        assert_eq!(back, rep);
        let h = html(&rep);
        assert!(h.contains("<tr class=\"survived\" title=\"f.c:3:relational:0: survived (change 3)\"><td class=\"n\">3</td><td class=\"c\">line &lt;3&gt;</td></tr>"), "{h}");
        assert!(h.contains("<tr class=\"not-mutated\""));
        assert!(
            h.contains("<tr class=\"gap\">"),
            "a gap between lines 6 and 9"
        );
        assert_eq!(h.matches("<table>").count(), 1);
    }
}
