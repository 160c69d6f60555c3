//! The benchmark's records (the `# bench-json:` lines or the `--json` array of
//! `selftests/mm/src/bin/pagemap_bench.rs`) and the report drawn from them: pure
//! functions from text to [`Bench`] to markdown and JSON.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The marker of a record line in the program's output (anywhere on the line: the
/// guest init indents a suite's output).
pub const MARKER: &str = "# bench-json: ";

/// The record format this reader understands (`format` of the meta record).
pub const FORMAT: u64 = 1;

/// The approach every ratio is taken against (the kernel's way).
pub const BASELINE: &str = "pagemap_scan_wp_async";

/// A cell whose median interval is shorter than this many clock steps is not resolved
/// (one step is more than 10% of it). The step is the smallest change of the clock seen
/// between two reads: on a fine clock that is the cost of a read (65 ns on this host:
/// a bound, not a quantum); on refined-jiffies it is 4 ms, and a 1 us round reads as
/// 0 or 4 ms.
pub const MIN_STEPS: f64 = 10.0;

/// The run's environment record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub program: String,
    pub format: u64,
    pub kernel: String,
    pub page_size: u64,
    pub cpus: u64,
    pub pinned_cpu: Option<u64>,
    pub mode: String,
    pub clock: String,
    pub clock_kind: String,
    pub monotonic_step_ns: Option<f64>,
    /// The smallest step of the clock the rounds were timed with (older records: none).
    #[serde(default)]
    pub clock_resolution_ns: Option<f64>,
    #[serde(default)]
    pub clocksource: String,
    pub hypervisor: bool,
    pub thp: String,
    pub fault_pages: u64,
}

/// min / median / p90 in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub samples: u64,
    pub min_ns: f64,
    pub median_ns: f64,
    pub p90_ns: f64,
}

/// One record of the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Meta(Meta),
    Approach {
        approach: String,
        label: String,
    },
    Absent {
        approach: String,
        label: String,
        reason: String,
    },
    Round {
        approach: String,
        n: u64,
        w: u64,
        w_of_n: String,
        #[serde(flatten)]
        spread: Spread,
        /// How many approaches took turns within each repetition (1: timed alone).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interleaved: Option<u64>,
        /// Over the repetitions: this approach's time / the baseline's time in the same
        /// repetition (when both took turns in one group).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ratio_min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ratio_median: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ratio_p90: Option<f64>,
    },
    Fault {
        approach: String,
        threads: u64,
        pages: u64,
        #[serde(flatten)]
        spread: Spread,
    },
    Error {
        approach: String,
        what: String,
        message: String,
        #[serde(default)]
        n: Option<u64>,
        #[serde(default)]
        w_of_n: Option<String>,
        #[serde(default)]
        threads: Option<u64>,
    },
    /// A cell whose answer was right but whose PAGEMAP_SCAN calls returned regions
    /// past their own walk_end (the program's `scan_pages`): the kernel bug the named
    /// regressions test fails on. The cell's figure stands.
    KernelBug {
        approach: String,
        n: u64,
        w: u64,
        w_of_n: String,
        calls: u64,
        test: String,
        message: String,
    },
    End {
        seconds: f64,
    },
}

/// An approach as the program reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproachInfo {
    pub id: String,
    pub label: String,
    /// `Some(reason)` when the kernel lacks it.
    pub absent: Option<String>,
}

/// One run of the program, gathered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bench {
    pub meta: Meta,
    pub approaches: Vec<ApproachInfo>,
    pub records: Vec<Record>,
    /// The `end` record was seen: the output was not cut short.
    pub complete: bool,
}

/// Where the figures were measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Directly on the machine running xtask.
    Host,
    /// A KVM guest.
    Kvm,
    /// An emulated (QEMU TCG) guest.
    Tcg,
}

impl Environment {
    pub fn parse(s: &str) -> Result<Environment> {
        Ok(match s {
            "host" => Environment::Host,
            "kvm" => Environment::Kvm,
            "tcg" => Environment::Tcg,
            _ => bail!("unknown environment {s:?} (host, kvm or tcg)"),
        })
    }

    /// What the figures mean here.
    pub fn note(self, meta: &Meta) -> String {
        match self {
            Environment::Tcg => {
                "**Emulated (QEMU TCG).** Absolute times are meaningless: only the \
                ratios between approaches in this run mean anything."
                    .into()
            }
            Environment::Kvm => "**KVM guest.** Times include virtualisation costs (faults and \
                page-table changes are dearer than on bare metal): compare the ratios between \
                approaches in this run, and absolute times only with KVM runs on the same machine."
                .into(),
            Environment::Host if meta.hypervisor => "**Host kernel**, run directly; this host is \
                itself a virtual machine (cpuinfo has the `hypervisor` flag), so its fault and \
                page-table costs include its hypervisor's. Ratios between approaches in this run \
                are the robust figure."
                .into(),
            Environment::Host => "**Host kernel**, run directly on bare metal.".into(),
        }
    }
}

/// Parses the program's output: a JSON array (its `--json` file) or any text with
/// `# bench-json: ` lines (its stdout, or a results.ktap that forwarded it).
pub fn parse(text: &str) -> Result<Bench> {
    let records: Vec<Record> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).context("parsing the benchmark's JSON array")?
    } else {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(pos) = line.find(MARKER) {
                let json = &line[pos + MARKER.len()..];
                v.push(
                    serde_json::from_str(json)
                        .with_context(|| format!("line {}: bad bench-json record {json}", i + 1))?,
                );
            }
        }
        v
    };
    gather(records)
}

/// Checks the records' order and gathers them.
pub fn gather(records: Vec<Record>) -> Result<Bench> {
    let meta = match records.first() {
        Some(Record::Meta(m)) => m.clone(),
        Some(_) => bail!("the first benchmark record is not the meta record"),
        None => bail!("no benchmark records (no `{}` line)", MARKER.trim()),
    };
    if meta.format != FORMAT {
        bail!(
            "benchmark record format {} (this reader knows {FORMAT})",
            meta.format
        );
    }
    let mut approaches: Vec<ApproachInfo> = Vec::new();
    let mut complete = false;
    for r in &records[1..] {
        match r {
            Record::Meta(_) => bail!("a second meta record"),
            Record::Approach { approach, label } => approaches.push(ApproachInfo {
                id: approach.clone(),
                label: label.clone(),
                absent: None,
            }),
            Record::Absent {
                approach,
                label,
                reason,
            } => approaches.push(ApproachInfo {
                id: approach.clone(),
                label: label.clone(),
                absent: Some(reason.clone()),
            }),
            Record::Round { approach, .. }
            | Record::Fault { approach, .. }
            | Record::KernelBug { approach, .. }
            | Record::Error { approach, .. } => {
                // An error may come from a probe, before any approach record.
                if !matches!(r, Record::Error { .. })
                    && !approaches.iter().any(|a| &a.id == approach)
                {
                    bail!("a measurement of {approach:?} before its approach record");
                }
            }
            Record::End { .. } => complete = true,
        }
    }
    Ok(Bench {
        meta,
        approaches,
        records,
        complete,
    })
}

impl Bench {
    /// The round cell of `approach` at `n` pages with `w_of_n` written.
    pub fn round(&self, approach: &str, n: u64, w_of_n: &str) -> Option<Spread> {
        self.records.iter().find_map(|r| match r {
            Record::Round {
                approach: a,
                n: rn,
                w_of_n: k,
                spread,
                ..
            } if a == approach && *rn == n && k == w_of_n => Some(*spread),
            _ => None,
        })
    }

    /// The fault cell of `approach` with `threads` writers.
    pub fn fault(&self, approach: &str, threads: u64) -> Option<Spread> {
        self.records.iter().find_map(|r| match r {
            Record::Fault {
                approach: a,
                threads: t,
                spread,
                ..
            } if a == approach && *t == threads => Some(*spread),
            _ => None,
        })
    }

    /// The error of a round cell, if it failed.
    pub fn round_error(&self, approach: &str, n: u64, w_of_n: &str) -> Option<&str> {
        self.errors().find_map(|(a, _, msg, rn, k, _)| {
            (a == approach && rn == Some(n) && k == Some(w_of_n)).then_some(msg)
        })
    }

    fn errors(
        &self,
    ) -> impl Iterator<Item = (&str, &str, &str, Option<u64>, Option<&str>, Option<u64>)> {
        self.records.iter().filter_map(|r| match r {
            Record::Error {
                approach,
                what,
                message,
                n,
                w_of_n,
                threads,
            } => Some((
                approach.as_str(),
                what.as_str(),
                message.as_str(),
                *n,
                w_of_n.as_deref(),
                *threads,
            )),
            _ => None,
        })
    }

    /// The kernel-bug records: (approach, n, w, calls, regressions test, message).
    pub fn kernel_bugs(&self) -> Vec<(&str, u64, u64, u64, &str, &str)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::KernelBug {
                    approach,
                    n,
                    w,
                    calls,
                    test,
                    message,
                    ..
                } => Some((
                    approach.as_str(),
                    *n,
                    *w,
                    *calls,
                    test.as_str(),
                    message.as_str(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Number of error records (wrong answers and failures).
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    /// The page counts measured, ascending.
    pub fn sizes(&self) -> Vec<u64> {
        let s: BTreeSet<u64> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Round { n, .. } | Record::Error { n: Some(n), .. } => Some(*n),
                _ => None,
            })
            .collect();
        s.into_iter().collect()
    }

    /// The `w_of_n` kinds measured, in the report's order (N/10 first: the seeds').
    pub fn w_kinds(&self) -> Vec<String> {
        let have: BTreeSet<&str> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Round { w_of_n, .. } => Some(w_of_n.as_str()),
                _ => None,
            })
            .collect();
        ["n/10", "n", "1"]
            .into_iter()
            .filter(|k| have.contains(k))
            .map(String::from)
            .collect()
    }

    /// The thread counts of the fault cells, ascending.
    pub fn thread_counts(&self) -> Vec<u64> {
        let s: BTreeSet<u64> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Fault { threads, .. } => Some(*threads),
                _ => None,
            })
            .collect();
        s.into_iter().collect()
    }

    /// The approach's time over the baseline's at `n` pages, `w_of_n` written: the
    /// median of the per-repetition ratios when the two took turns (robust to drift of
    /// the machine's speed), else median / median.
    pub fn ratio(&self, approach: &str, n: u64, w_of_n: &str) -> Option<f64> {
        if let Some(r) = self.paired_ratio(approach, n, w_of_n) {
            return Some(r);
        }
        let a = self.round(approach, n, w_of_n)?;
        let b = self.round(BASELINE, n, w_of_n)?;
        (b.median_ns > 0.0).then(|| a.median_ns / b.median_ns)
    }

    /// min(approach) / min(baseline): the ratio of the two floors. Load on the machine
    /// only ever adds time to a round, so each approach's fastest round is its cost with
    /// the least interference; on a shared machine this ratio is the stable one (the
    /// median mixes in how much of the run the other CPU users overlapped).
    pub fn floor_ratio(&self, approach: &str, n: u64, w_of_n: &str) -> Option<f64> {
        let a = self.round(approach, n, w_of_n)?;
        let b = self.round(BASELINE, n, w_of_n)?;
        (b.min_ns > 0.0).then(|| a.min_ns / b.min_ns)
    }

    /// The median of the per-repetition ratios to the baseline, when measured.
    pub fn paired_ratio(&self, approach: &str, n: u64, w_of_n: &str) -> Option<f64> {
        self.records.iter().find_map(|r| match r {
            Record::Round {
                approach: a,
                n: rn,
                w_of_n: k,
                ratio_median,
                ..
            } if a == approach && *rn == n && k == w_of_n => *ratio_median,
            _ => None,
        })
    }

    /// The cells the clock cannot resolve: the median timed interval (a round; a
    /// fault writer's share of the pages) is under [`MIN_STEPS`] steps of the clock.
    /// Each: (approach, cell, median interval ns).
    pub fn unresolved(&self) -> Vec<(String, String, f64)> {
        let Some(step) = self.meta.clock_resolution_ns.filter(|s| *s > 0.0) else {
            return Vec::new();
        };
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Round {
                    approach,
                    n,
                    w_of_n,
                    spread,
                    ..
                } => Some((
                    approach.clone(),
                    format!("round N={n} W={w_of_n}"),
                    spread.median_ns,
                )),
                Record::Fault {
                    approach,
                    threads,
                    pages,
                    spread,
                } => Some((
                    approach.clone(),
                    format!("first write, {threads} thread(s)"),
                    spread.median_ns * *pages as f64 / (*threads).max(1) as f64,
                )),
                _ => None,
            })
            .filter(|(_, _, t)| *t < MIN_STEPS * step)
            .collect()
    }
}

fn w_title(k: &str) -> &'static str {
    match k {
        "n/10" => "W = N/10 pages written between rounds (the seeds' layout; at least 1)",
        "n" => "W = N: every page written between rounds",
        _ => "W = 1 page written between rounds",
    }
}

/// `1.39` / `37.5` / `1331`: three significant digits or so.
pub fn fmt_us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.1}x")
    }
}

fn header(first: &str, cols: &[String]) -> String {
    let mut s = format!("| {first} |");
    for c in cols {
        let _ = write!(s, " {c} |");
    }
    s.push('\n');
    s.push_str("|---|");
    for _ in cols {
        s.push_str("---|");
    }
    s.push('\n');
    s
}

/// The round table for one `w_of_n`: rows approaches, columns N; a cell is
/// `median (min-p90)` in microseconds, `absent`, `ERROR` or `-` (not measured).
pub fn round_table(b: &Bench, w_of_n: &str) -> String {
    let sizes = b.sizes();
    let cols: Vec<String> = sizes.iter().map(u64::to_string).collect();
    let mut s = header("pages", &cols);
    for a in &b.approaches {
        let _ = write!(s, "| {} |", a.label);
        for &n in &sizes {
            let cell = if a.absent.is_some() {
                "absent".to_string()
            } else if let Some(sp) = b.round(&a.id, n, w_of_n) {
                format!(
                    "{} ({}-{})",
                    fmt_us(sp.median_ns),
                    fmt_us(sp.min_ns),
                    fmt_us(sp.p90_ns)
                )
            } else if b.round_error(&a.id, n, w_of_n).is_some() {
                "ERROR".into()
            } else {
                "-".into()
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// Each present approach's median over the baseline's, per N.
pub fn ratio_table(b: &Bench, w_of_n: &str) -> String {
    let sizes = b.sizes();
    let cols: Vec<String> = sizes.iter().map(u64::to_string).collect();
    let mut s = header("pages", &cols);
    for a in b.approaches.iter().filter(|a| a.absent.is_none()) {
        let _ = write!(s, "| {} |", a.label);
        for &n in &sizes {
            let cell = b.ratio(&a.id, n, w_of_n).map_or("-".into(), fmt_ratio);
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// The fault table: rows approaches, columns thread counts; ns per first write.
pub fn fault_table(b: &Bench) -> String {
    let threads = b.thread_counts();
    let cols: Vec<String> = threads
        .iter()
        .map(|t| format!("{t} thread{}", if *t == 1 { "" } else { "s" }))
        .collect();
    let mut s = header("first write to a watched page", &cols);
    for a in &b.approaches {
        let _ = write!(s, "| {} |", a.label);
        for &t in &threads {
            let cell = if a.absent.is_some() {
                "absent".to_string()
            } else if let Some(sp) = b.fault(&a.id, t) {
                format!("{:.0} ({:.0}-{:.0})", sp.median_ns, sp.min_ns, sp.p90_ns)
            } else {
                "ERROR".into()
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// With more writer threads than CPUs, a writer's time includes waiting for a CPU:
/// the report says so under the fault table.
pub fn oversubscribed_note(b: &Bench) -> Option<String> {
    let over: Vec<String> = b
        .thread_counts()
        .into_iter()
        .filter(|&t| t > b.meta.cpus)
        .map(|t| t.to_string())
        .collect();
    (!over.is_empty()).then(|| {
        format!(
            "With {} writer threads on {} CPU(s), each writer's time includes waiting for a \
             CPU: those columns mix the fault cost with scheduling.",
            over.join(" and "),
            b.meta.cpus
        )
    })
}

/// The whole markdown report.
pub fn markdown(b: &Bench, env: Environment) -> String {
    let m = &b.meta;
    let mut s = String::new();
    let _ = writeln!(s, "# pagemap_bench on {} ({:?})\n", m.kernel, env);
    let _ = writeln!(s, "{}\n", env.note(m));
    let _ = writeln!(
        s,
        "Mode {}; {} CPU(s){}; clock: {}; clocksource {}; THP {}; page size {}.{}\n",
        m.mode,
        m.cpus,
        m.pinned_cpu.map_or(String::new(), |c| format!(
            ", main thread pinned to CPU {c}"
        )),
        m.clock,
        if m.clocksource.is_empty() {
            "unknown"
        } else {
            &m.clocksource
        },
        m.thp,
        m.page_size,
        if b.complete {
            ""
        } else {
            " **The output was cut short (no end record): the tables are partial.**"
        }
    );
    let unresolved = b.unresolved();
    if !unresolved.is_empty() {
        let _ = writeln!(
            s,
            "## **THE CLOCK CANNOT RESOLVE THESE TIMES**\n\nThe rounds were timed with a \
             clock that steps by {:.0} ns (clocksource {}): {} cell(s) took under {} \
             steps (median), so their figures are quantised and their ratios meaningless. \
             `cargo xtask bench` exits 2 on such a run. Cells: {}.\n",
            m.clock_resolution_ns.unwrap_or(f64::NAN),
            m.clocksource,
            unresolved.len(),
            MIN_STEPS,
            unresolved
                .iter()
                .map(|(a, c, _)| format!("{a} {c}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if matches!(m.clocksource.as_str(), "jiffies" | "refined-jiffies") {
        let _ = writeln!(
            s,
            "The kernel's clocksource is {}: CLOCK_MONOTONIC steps by ticks (step {:.0} ns); \
             the rounds were timed with {}.\n",
            m.clocksource,
            m.monotonic_step_ns.unwrap_or(f64::NAN),
            m.clock
        );
    }
    let _ = writeln!(
        s,
        "## One round: find the pages written, then reset\n\nMicroseconds per round: \
         median (min-p90). Every figure comes from rounds whose answer was checked (the \
         pages found are exactly the pages written); a cell that failed the check is \
         `ERROR`, listed under Errors.\n"
    );
    for k in b.w_kinds() {
        let _ = writeln!(s, "### {}\n\n{}", w_title(&k), round_table(b, &k));
    }
    if b.approaches
        .iter()
        .any(|a| a.id == BASELINE && a.absent.is_none())
    {
        for k in b.w_kinds() {
            let _ = writeln!(
                s,
                "### Ratio to PAGEMAP_SCAN, {}\n\nThe median over the repetitions of \
                 (this approach's round / PAGEMAP_SCAN's round in the same repetition) where \
                 the approaches took turns within each repetition; median / median for an \
                 approach timed alone (the soft-dirty ones: clear_refs touches every \
                 mapping of the process).\n\n{}",
                w_title(&k),
                ratio_table(b, &k)
            );
        }
    }
    if !b.thread_counts().is_empty() {
        let _ = writeln!(
            s,
            "## The fault path: first write to a watched page\n\nNanoseconds per write \
             (the writers' summed time / pages written, {} pages): median (min-p90).\n\n{}",
            m.fault_pages,
            fault_table(b)
        );
        if let Some(note) = oversubscribed_note(b) {
            let _ = writeln!(s, "{note}\n");
        }
    }
    let absent: Vec<&ApproachInfo> = b.approaches.iter().filter(|a| a.absent.is_some()).collect();
    if !absent.is_empty() {
        let _ = writeln!(s, "## Absent approaches\n");
        for a in absent {
            let _ = writeln!(s, "- {}: {}", a.label, a.absent.as_deref().unwrap_or(""));
        }
        s.push('\n');
    }
    let bugs = b.kernel_bugs();
    if !bugs.is_empty() {
        let _ = writeln!(
            s,
            "## Kernel bugs seen (the answers were right: these figures stand)\n"
        );
        for (a, n, w, calls, test, msg) in bugs {
            let _ = writeln!(
                s,
                "- {a}, N={n} W={w}: {calls} PAGEMAP_SCAN call(s) returned regions past their \
                 own walk_end (the benchmark takes a call that did not fill its vec as \
                 complete); regressions test `{test}`. First: {msg}"
            );
        }
        s.push('\n');
    }
    if b.error_count() > 0 {
        let _ = writeln!(s, "## Errors (no figure is reported for these cells)\n");
        for (a, what, msg, ..) in b.errors() {
            let _ = writeln!(s, "- {a}, {what}: {msg}");
        }
        s.push('\n');
    }
    s
}

/// The report's JSON: the environment, what it means, and every record.
pub fn json(b: &Bench, env: Environment) -> Result<String> {
    #[derive(Serialize)]
    struct Out<'a> {
        environment: Environment,
        note: String,
        complete: bool,
        errors: usize,
        kernel_bugs: usize,
        meta: &'a Meta,
        approaches: &'a [ApproachInfo],
        records: &'a [Record],
    }
    Ok(serde_json::to_string_pretty(&Out {
        environment: env,
        note: env.note(&b.meta),
        complete: b.complete,
        errors: b.error_count(),
        kernel_bugs: b.kernel_bugs().len(),
        meta: &b.meta,
        approaches: &b.approaches,
        records: &b.records,
    })?)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Program output as the guest init forwards it (indented), trimmed to a few cells.
    pub const SAMPLE: &str = r#"TAP version 13
1..3
  # bench-json: {"kind":"meta","program":"pagemap_bench","format":1,"kernel":"6.18.0","page_size":4096,"cpus":2,"pinned_cpu":0,"mode":"quick","clock":"CLOCK_MONOTONIC (step 52 ns)","clock_kind":"monotonic","monotonic_step_ns":52.0,"clocksource":"tsc","hypervisor":true,"thp":"madvise","fault_pages":256}
  # bench-json: {"kind":"approach","approach":"pagemap_scan_wp_async","label":"PAGEMAP_SCAN WP_MATCHING over uffd WP-async"}
  # bench-json: {"kind":"round","approach":"pagemap_scan_wp_async","n":1,"w":1,"w_of_n":"n/10","samples":51,"min_ns":1357.0,"median_ns":1391.0,"p90_ns":1418.0}
  # bench-json: {"kind":"round","approach":"pagemap_scan_wp_async","n":10000,"w":1000,"w_of_n":"n/10","samples":20,"min_ns":36052.0,"median_ns":37542.0,"p90_ns":55533.0}
  # bench-json: {"kind":"kernel_bug","approach":"pagemap_scan_wp_async","n":10000,"w":1000,"w_of_n":"n/10","calls":25,"test":"pagemap_scan_regressions walk_end_after_bounce_buffer_refill","message":"walk_end stale"}
  # bench-json: {"kind":"fault","approach":"pagemap_scan_wp_async","threads":1,"pages":256,"samples":5,"min_ns":596.7,"median_ns":610.2,"p90_ns":748.2}
  ok 1 pagemap_scan_wp_async
  # bench-json: {"kind":"absent","approach":"soft_dirty_pagemap","label":"soft-dirty: clear_refs 4 + pagemap read","reason":"no 'sd' in VmFlags"}
  # bench-json: {"kind":"approach","approach":"mprotect_sigsegv","label":"mprotect + SIGSEGV"}
  # bench-json: {"kind":"round","approach":"mprotect_sigsegv","n":1,"w":1,"w_of_n":"n/10","samples":51,"min_ns":1277.0,"median_ns":1302.0,"p90_ns":1319.0}
  # bench-json: {"kind":"error","approach":"mprotect_sigsegv","what":"round n=10000 w=1000","n":10000,"w_of_n":"n/10","message":"wrong answer: found 999 pages, 1000 written"}
  # bench-json: {"kind":"fault","approach":"mprotect_sigsegv","threads":1,"pages":256,"samples":5,"min_ns":4078.3,"median_ns":4280.7,"p90_ns":4528.6}
  # bench-json: {"kind":"end","seconds":0.3}
"#;

    /// A paired ratio (per repetition) wins over median / median; a clock too coarse
    /// for the times measured is named.
    #[test]
    fn paired_ratio_and_unresolved_cells() {
        let b = parse(SAMPLE).unwrap();
        let plain = b.ratio("mprotect_sigsegv", 1, "n/10").unwrap();
        assert!((plain - 1302.0 / 1391.0).abs() < 1e-9, "{plain}");
        assert!(b.unresolved().is_empty());
        let paired = SAMPLE.replace(
            r#""median_ns":1302.0,"p90_ns":1319.0}"#,
            r#""median_ns":1302.0,"p90_ns":1319.0,"interleaved":2,"ratio_min":0.9,"ratio_median":0.95,"ratio_p90":1.0}"#,
        );
        let p = parse(&paired).unwrap();
        assert_eq!(p.ratio("mprotect_sigsegv", 1, "n/10"), Some(0.95));
        // A 4 ms clock: every cell of the sample is shorter than 10 steps.
        let coarse = SAMPLE.replace(
            r#""monotonic_step_ns":52.0,"#,
            r#""monotonic_step_ns":4000000.0,"clock_resolution_ns":4000000.0,"#,
        );
        let c = parse(&coarse).unwrap();
        let u = c.unresolved();
        assert!(
            u.iter()
                .any(|(a, cell, _)| a == "mprotect_sigsegv" && cell == "round N=1 W=n/10"),
            "{u:?}"
        );
        let md = markdown(&c, Environment::Tcg);
        assert!(md.contains("THE CLOCK CANNOT RESOLVE"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        let mut ok = c.clone();
        ok.records.retain(|r| !matches!(r, Record::Error { .. }));
        assert_eq!(
            super::super::write_report(&ok, Environment::Tcg, dir.path()).unwrap(),
            crate::util::Exit::Setup
        );
    }

    #[test]
    fn parses_forwarded_lines() {
        let b = parse(SAMPLE).unwrap();
        assert!(b.complete);
        assert_eq!(b.meta.kernel, "6.18.0");
        assert_eq!(b.approaches.len(), 3);
        assert_eq!(
            b.approaches[1].absent.as_deref(),
            Some("no 'sd' in VmFlags")
        );
        assert_eq!(b.sizes(), vec![1, 10000]);
        assert_eq!(b.w_kinds(), vec!["n/10"]);
        assert_eq!(b.thread_counts(), vec![1]);
        assert_eq!(b.round(BASELINE, 10000, "n/10").unwrap().median_ns, 37542.0);
        assert_eq!(b.error_count(), 1);
        let r = b.ratio("mprotect_sigsegv", 1, "n/10").unwrap();
        assert!((r - 1302.0 / 1391.0).abs() < 1e-9);
        assert_eq!(b.ratio("mprotect_sigsegv", 10000, "n/10"), None);
    }

    #[test]
    fn json_array_round_trips() {
        let b = parse(SAMPLE).unwrap();
        let arr = serde_json::to_string(&b.records).unwrap();
        assert_eq!(parse(&arr).unwrap(), b);
    }

    #[test]
    fn table_is_laid_out_like_the_seeds() {
        let b = parse(SAMPLE).unwrap();
        let t = round_table(&b, "n/10");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| pages | 1 | 10000 |");
        assert_eq!(lines[1], "|---|---|---|");
        assert_eq!(
            lines[2],
            "| PAGEMAP_SCAN WP_MATCHING over uffd WP-async | 1.39 (1.36-1.42) | 37.5 (36.1-55.5) |"
        );
        assert_eq!(
            lines[3],
            "| soft-dirty: clear_refs 4 + pagemap read | absent | absent |"
        );
        assert_eq!(
            lines[4],
            "| mprotect + SIGSEGV | 1.30 (1.28-1.32) | ERROR |"
        );
        let r = ratio_table(&b, "n/10");
        assert!(r.contains("| mprotect + SIGSEGV | 0.9x | - |"), "{r}");
        let f = fault_table(&b);
        assert!(
            f.contains("| mprotect + SIGSEGV | 4281 (4078-4529) |"),
            "{f}"
        );
    }

    #[test]
    fn report_names_environment_absences_and_errors() {
        let b = parse(SAMPLE).unwrap();
        let md = markdown(&b, Environment::Tcg);
        assert!(md.contains("Emulated (QEMU TCG)"), "{md}");
        assert!(md.contains("only the ratios between approaches in this run"));
        assert!(md.contains("- soft-dirty: clear_refs 4 + pagemap read: no 'sd' in VmFlags"));
        assert!(md.contains("- mprotect_sigsegv, round n=10000 w=1000: wrong answer"));
        assert!(
            md.contains("- pagemap_scan_wp_async, N=10000 W=1000: 25 PAGEMAP_SCAN call(s)"),
            "{md}"
        );
        let host = markdown(&b, Environment::Host);
        assert!(host.contains("itself a virtual machine"), "{host}");
        assert!(markdown(&b, Environment::Kvm).contains("KVM guest"));
        assert_eq!(oversubscribed_note(&b), None, "1 thread on 2 CPUs");
        let mut four = b.clone();
        four.records.push(Record::Fault {
            approach: BASELINE.into(),
            threads: 4,
            pages: 256,
            spread: Spread {
                samples: 5,
                min_ns: 1.0,
                median_ns: 2.0,
                p90_ns: 3.0,
            },
        });
        assert!(markdown(&four, Environment::Host).contains("With 4 writer threads on 2 CPU(s)"));
        let j: serde_json::Value =
            serde_json::from_str(&json(&b, Environment::Kvm).unwrap()).unwrap();
        assert_eq!(j["environment"], "kvm");
        assert_eq!(j["errors"], 1);
        assert_eq!(j["records"].as_array().unwrap().len(), b.records.len());
    }

    #[test]
    fn truncated_and_bad_input() {
        let cut: String = SAMPLE
            .lines()
            .filter(|l| !l.contains("\"end\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let b = parse(&cut).unwrap();
        assert!(!b.complete);
        assert!(markdown(&b, Environment::Host).contains("cut short"));
        let e = parse("ok 1 x\n").unwrap_err().to_string();
        assert!(e.contains("no benchmark records"), "{e}");
        let e = parse("# bench-json: {\"kind\":\"end\",\"seconds\":1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the meta record"), "{e}");
        let e = format!("{:#}", parse("x\n# bench-json: {oops\n").unwrap_err());
        assert!(e.contains("line 2"), "{e}");
        let bad = SAMPLE.replace("\"format\":1", "\"format\":2");
        assert!(parse(&bad).unwrap_err().to_string().contains("format 2"));
    }
}
