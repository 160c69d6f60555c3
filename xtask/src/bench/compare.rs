//! Two runs side by side: `--compare-base` (the same approaches on the base kernel
//! and on the series: times per cell, their ratio, and the cells that got slower by
//! more than the runs' own spread) and `--agree` (two runs of one kernel: do the
//! ratios between approaches agree within a tolerance, per cell). Pure functions from
//! two [`Bench`]es to markdown and JSON.

use super::report::{fmt_us, Bench, BASELINE};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One round or fault cell: `n` + `w_of_n` for a round, `threads` for a fault.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Cell {
    Round { n: u64, w_of_n: String },
    Fault { threads: u64 },
}

impl Cell {
    fn name(&self) -> String {
        match self {
            Cell::Round { n, w_of_n } => format!("round N={n} W={w_of_n}"),
            Cell::Fault { threads } => format!("first write, {threads} thread(s)"),
        }
    }

    fn spread(&self, b: &Bench, approach: &str) -> Option<super::report::Spread> {
        match self {
            Cell::Round { n, w_of_n } => b.round(approach, *n, w_of_n),
            Cell::Fault { threads } => b.fault(approach, *threads),
        }
    }
}

/// Every cell either run measured, rounds first.
fn cells(a: &Bench, b: &Bench) -> Vec<Cell> {
    let mut s = BTreeSet::new();
    for x in [a, b] {
        for k in x.w_kinds() {
            for &n in &x.sizes() {
                s.insert(Cell::Round {
                    n,
                    w_of_n: k.clone(),
                });
            }
        }
        for t in x.thread_counts() {
            s.insert(Cell::Fault { threads: t });
        }
    }
    s.into_iter().collect()
}

/// Approaches in the order the runs report them (the series' first).
fn approaches(a: &Bench, b: &Bench) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for x in [a, b] {
        for i in &x.approaches {
            if !v.iter().any(|(id, _)| id == &i.id) {
                v.push((i.id.clone(), i.label.clone()));
            }
        }
    }
    v
}

fn absent_reason<'a>(b: &'a Bench, id: &str) -> Option<&'a str> {
    b.approaches
        .iter()
        .find(|a| a.id == id)
        .and_then(|a| a.absent.as_deref())
}

/// One cell of the base-vs-series comparison.
#[derive(Debug, Clone, Serialize)]
pub struct BaseRow {
    pub approach: String,
    pub cell: Cell,
    pub base_median_ns: Option<f64>,
    pub series_median_ns: Option<f64>,
    /// series median / base median.
    pub ratio: Option<f64>,
    /// The series got slower by more than the runs' own spread: its median exceeds the
    /// base's by more than the wider of the two p90 - min.
    pub slower: bool,
    /// Why a side has no figure (absent with the reason, or an error).
    pub note: Option<String>,
}

/// The base-vs-series comparison, cell by cell.
pub fn base_rows(base: &Bench, series: &Bench) -> Vec<BaseRow> {
    let mut rows = Vec::new();
    for (id, _) in approaches(series, base) {
        for cell in cells(series, base) {
            let b = cell.spread(base, &id);
            let s = cell.spread(series, &id);
            let note = match (absent_reason(base, &id), absent_reason(series, &id)) {
                (Some(r), _) => Some(format!("absent on the base: {r}")),
                (_, Some(r)) => Some(format!("absent on the series: {r}")),
                _ if b.is_none() || s.is_none() => Some("no figure on one side (an error)".into()),
                _ => None,
            };
            let (ratio, slower) = match (b, s) {
                (Some(b), Some(s)) if b.median_ns > 0.0 => {
                    let spread = (b.p90_ns - b.min_ns).max(s.p90_ns - s.min_ns);
                    (
                        Some(s.median_ns / b.median_ns),
                        s.median_ns - b.median_ns > spread,
                    )
                }
                _ => (None, false),
            };
            rows.push(BaseRow {
                approach: id.clone(),
                cell,
                base_median_ns: b.map(|x| x.median_ns),
                series_median_ns: s.map(|x| x.median_ns),
                ratio,
                slower,
                note,
            });
        }
    }
    rows
}

fn us_or(x: Option<f64>, dash: &str) -> String {
    x.map_or(dash.to_string(), fmt_us)
}

/// The markdown of the base-vs-series comparison.
pub fn base_markdown(base: &Bench, series: &Bench, rows: &[BaseRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Base against series: {} vs {}\n\nThe same approaches on the base kernel and on \
         the series, one boot each. Microseconds (median) per round or per first write; \
         ratio = series / base; **SLOWER** when the series' median exceeds the base's by \
         more than the runs' own spread (the wider of the two p90 - min). Under TCG the \
         absolute times are emulated; both sides ran on this machine the same way, but \
         treat a ratio near the spread with suspicion.\n",
        base.meta.kernel, series.meta.kernel
    );
    let names = approaches(series, base);
    let _ = writeln!(
        s,
        "| approach | cell | base (us) | series (us) | series / base | |\n|---|---|---|---|---|---|"
    );
    for r in rows {
        let label = names
            .iter()
            .find(|(id, _)| id == &r.approach)
            .map_or(r.approach.as_str(), |(_, l)| l.as_str());
        let flag = if r.slower {
            "**SLOWER**".to_string()
        } else {
            r.note.clone().unwrap_or_default()
        };
        let (bv, sv) = match &r.cell {
            // Fault cells are nanoseconds per write: show them as such.
            Cell::Fault { .. } => (
                r.base_median_ns
                    .map_or("-".into(), |x| format!("{:.3}", x / 1000.0)),
                r.series_median_ns
                    .map_or("-".into(), |x| format!("{:.3}", x / 1000.0)),
            ),
            Cell::Round { .. } => (us_or(r.base_median_ns, "-"), us_or(r.series_median_ns, "-")),
        };
        let _ = writeln!(
            s,
            "| {label} | {} | {bv} | {sv} | {} | {flag} |",
            r.cell.name(),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}"))
        );
    }
    let slower = rows.iter().filter(|r| r.slower).count();
    let _ = writeln!(
        s,
        "\n{slower} cell(s) got slower than the spread allows; {} compared.",
        rows.iter().filter(|r| r.ratio.is_some()).count()
    );
    s
}

/// One cell of the agreement check.
#[derive(Debug, Clone, Serialize)]
pub struct AgreeRow {
    pub approach: String,
    pub cell: Cell,
    /// The ratio to the baseline (`Bench::ratio`: the median of the per-repetition
    /// ratios when the approaches took turns, else median / median), in run 1 and run
    /// 2: the figure the check is on.
    pub ratio1: f64,
    pub ratio2: f64,
    /// |ratio2 / ratio1 - 1|.
    pub difference: f64,
    pub agrees: bool,
    /// min / min (`Bench::floor_ratio`) in run 1 and run 2, and whether it agrees:
    /// shown beside, not judged.
    pub floor1: f64,
    pub floor2: f64,
    pub floor_difference: f64,
    pub floor_agrees: bool,
}

/// Per round cell and present approach other than the baseline: its ratio to the
/// baseline in each run, and whether they agree within `tolerance` (0.10 = 10%).
pub fn agree_rows(r1: &Bench, r2: &Bench, tolerance: f64) -> Vec<AgreeRow> {
    let mut rows = Vec::new();
    for (id, _) in approaches(r1, r2) {
        if id == BASELINE {
            continue;
        }
        for cell in cells(r1, r2) {
            let Cell::Round { n, w_of_n } = &cell else {
                continue;
            };
            let (Some(f1), Some(f2)) = (
                r1.floor_ratio(&id, *n, w_of_n),
                r2.floor_ratio(&id, *n, w_of_n),
            ) else {
                continue;
            };
            let (Some(a), Some(b)) = (r1.ratio(&id, *n, w_of_n), r2.ratio(&id, *n, w_of_n)) else {
                continue;
            };
            let difference = (b / a - 1.0).abs();
            let floor_difference = (f2 / f1 - 1.0).abs();
            rows.push(AgreeRow {
                approach: id.clone(),
                cell,
                ratio1: a,
                ratio2: b,
                difference,
                agrees: difference <= tolerance,
                floor1: f1,
                floor2: f2,
                floor_difference,
                floor_agrees: floor_difference <= tolerance,
            });
        }
    }
    rows
}

/// The markdown of the agreement check.
pub fn agree_markdown(r1: &Bench, r2: &Bench, rows: &[AgreeRow], tolerance: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Agreement of two runs ({} / {}, mode {} / {})\n\nPer cell: each approach's \
         ratio to PAGEMAP_SCAN (the median of the per-repetition ratios where the \
         approaches took turns within each repetition, else median / median), in run 1 \
         and run 2; they agree when they differ by at most {:.0}%. Beside it, not judged: \
         the floor ratio (fastest round / PAGEMAP_SCAN's fastest round).\n",
        r1.meta.kernel,
        r2.meta.kernel,
        r1.meta.mode,
        r2.meta.mode,
        tolerance * 100.0
    );
    let names = approaches(r1, r2);
    let _ = writeln!(
        s,
        "| approach | cell | run 1 | run 2 | difference | | floor, run 1 | run 2 | difference |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let label = names
            .iter()
            .find(|(id, _)| id == &r.approach)
            .map_or(r.approach.as_str(), |(_, l)| l.as_str());
        let _ = writeln!(
            s,
            "| {label} | {} | {:.2}x | {:.2}x | {:.1}% | {} | {:.2}x | {:.2}x | {:.1}% |",
            r.cell.name(),
            r.ratio1,
            r.ratio2,
            r.difference * 100.0,
            if r.agrees { "agrees" } else { "**DISAGREES**" },
            r.floor1,
            r.floor2,
            r.floor_difference * 100.0,
        );
    }
    let bad = rows.iter().filter(|r| !r.agrees).count();
    let _ = writeln!(
        s,
        "\n{} of {} cells agree within {:.0}%; on the floor ratio: {} of {}.",
        rows.len() - bad,
        rows.len(),
        tolerance * 100.0,
        rows.iter().filter(|r| r.floor_agrees).count(),
        rows.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::super::report::{parse, tests::SAMPLE};
    use super::*;

    fn scaled(factor_mprotect: f64) -> Bench {
        let mut b = parse(SAMPLE).unwrap();
        for r in &mut b.records {
            if let super::super::report::Record::Round {
                approach, spread, ..
            } = r
            {
                if approach == "mprotect_sigsegv" {
                    spread.median_ns *= factor_mprotect;
                    spread.min_ns *= factor_mprotect;
                    spread.p90_ns *= factor_mprotect;
                }
            }
        }
        b
    }

    #[test]
    fn slower_beyond_the_spread_is_flagged() {
        let base = scaled(1.0);
        // The sample's mprotect N=1 cell: 1302 ns median, spread 1277-1319 (42 ns).
        let same = base_rows(&base, &scaled(1.02));
        let r = same
            .iter()
            .find(|r| r.approach == "mprotect_sigsegv" && r.ratio.is_some())
            .unwrap();
        assert!(!r.slower, "2% slower is within a 3% spread: {r:?}");
        let slow = base_rows(&base, &scaled(1.5));
        let r = slow
            .iter()
            .find(|r| r.approach == "mprotect_sigsegv" && r.ratio.is_some())
            .unwrap();
        assert!(r.slower && (r.ratio.unwrap() - 1.5).abs() < 1e-9, "{r:?}");
        let md = base_markdown(&base, &scaled(1.5), &slow);
        assert!(md.contains("**SLOWER**"), "{md}");
        // Absent on a side: the reason, no ratio.
        let soft = slow
            .iter()
            .find(|r| r.approach == "soft_dirty_pagemap")
            .unwrap();
        assert!(soft.ratio.is_none());
        assert!(
            soft.note.as_deref().unwrap().contains("no 'sd' in VmFlags"),
            "{soft:?}"
        );
    }

    #[test]
    fn agreement_is_per_cell_within_the_tolerance() {
        let a = scaled(1.0);
        let rows = agree_rows(&a, &scaled(1.05), 0.10);
        assert!(
            !rows.is_empty() && rows.iter().all(|r| r.agrees),
            "{rows:?}"
        );
        let rows = agree_rows(&a, &scaled(1.2), 0.10);
        assert!(rows.iter().all(|r| !r.agrees), "{rows:?}");
        // The judged figure is the median ratio; the floor (min / min) is beside it.
        let mut med_only = scaled(1.0);
        for r in &mut med_only.records {
            if let super::super::report::Record::Round {
                approach, spread, ..
            } = r
            {
                if approach == "mprotect_sigsegv" {
                    spread.median_ns *= 1.2;
                }
            }
        }
        let m = agree_rows(&a, &med_only, 0.10);
        assert!(m.iter().all(|r| !r.agrees && r.floor_agrees), "{m:?}");
        let md = agree_markdown(&a, &scaled(1.2), &rows, 0.10);
        assert!(
            md.contains("**DISAGREES**") && md.contains("0 of 1 cells agree"),
            "{md}"
        );
    }
}
