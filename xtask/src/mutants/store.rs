//! The results file of a mutants run: JSON lines, one per finished mutant, keyed by
//! mutant id.
//!
//! A line is appended (one `write`, then `fsync`) only once the mutant's outcome is
//! known, so an interrupted run leaves every finished mutant recorded and the one in
//! flight not: reopening the file tells what is left to do. A torn last line (the
//! process died inside the write) is dropped when the file is opened. A later line for
//! the same id replaces an earlier one; a record whose fingerprint differs from the
//! mutant's (the series changed since) does not count as done.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::generate::Mutant;
use crate::util::setup_error;

/// Why a mutant counts as killed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kill {
    /// A test whose result differed from the target's expectation.
    Test { suite: String, test: String },
    /// The kernel panicked or oopsed (the console line).
    Crash { detail: String },
    /// The guest stopped making progress (watchdog, suite timeout).
    Hang { detail: String },
    /// A `WARNING:` or `BUG:` on the console.
    Warn { detail: String },
}

impl Kill {
    pub fn describe(&self) -> String {
        match self {
            Kill::Test { suite, test } => format!("{suite}: {test}"),
            Kill::Crash { detail } => format!("crash: {detail}"),
            Kill::Hang { detail } => format!("hang: {detail}"),
            Kill::Warn { detail } => format!("warning: {detail}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Some test (or the console) noticed: at least one reason.
    Killed { by: Vec<Kill> },
    /// Every suite gave the good kernel's results.
    Survived,
    /// The mutant did not build: not counted in the score.
    BuildError { log_tail: String },
    /// The run exceeded its time limit: counted as killed, listed separately.
    Timeout { phase: String, secs: f64 },
    /// No test can tell it from the original, e.g. it compiled to the same object code
    /// (code the config leaves out, a call to a stub): not counted, listed.
    Equivalent { reason: String },
}

/// One finished mutant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// [`Mutant::fingerprint`] of the mutant that ran.
    pub fingerprint: String,
    pub outcome: Outcome,
    /// The suites that ran against the mutant, in order.
    #[serde(default)]
    pub suites: Vec<String>,
    /// Seconds spent in make and in boot + tests.
    #[serde(default)]
    pub build_secs: f64,
    #[serde(default)]
    pub run_secs: f64,
}

/// Records by mutant id (the last line for an id wins).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    pub records: BTreeMap<String, Record>,
}

impl Results {
    /// Parses JSON lines. A last line without its newline is torn (returned as `true`,
    /// not parsed); any other line that does not parse is an error naming `origin:line`.
    pub fn parse(text: &str, origin: &str) -> Result<(Results, bool)> {
        let mut r = Results::default();
        let torn = !text.is_empty() && !text.ends_with('\n');
        let complete = if torn {
            &text[..text.rfind('\n').map_or(0, |i| i + 1)]
        } else {
            text
        };
        for (i, line) in complete.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let rec: Record = serde_json::from_str(line).map_err(|e| {
                setup_error(format!(
                    "mutants: {origin}:{}: not a result record: {e}",
                    i + 1
                ))
            })?;
            r.records.insert(rec.id.clone(), rec);
        }
        Ok((r, torn))
    }

    /// The record of this mutant, if it ran as it is now.
    pub fn of(&self, m: &Mutant) -> Option<&Record> {
        self.records
            .get(&m.id)
            .filter(|r| r.fingerprint == m.fingerprint())
    }

    pub fn is_done(&self, m: &Mutant) -> bool {
        self.of(m).is_some()
    }

    /// Joins the results of several runs (shards): a mutant in more than one keeps the
    /// record of the last.
    pub fn merge(parts: impl IntoIterator<Item = Results>) -> Results {
        let mut r = Results::default();
        for p in parts {
            r.records.extend(p.records);
        }
        r
    }
}

/// A results file open for a run.
pub struct Store {
    path: PathBuf,
    results: Results,
}

impl Store {
    /// Opens (or starts) the results file. A torn last line is cut off the file, so
    /// the next append starts on a line of its own.
    pub fn open(path: &Path) -> Result<Store> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(setup_error(format!(
                    "mutants: reading {}: {e}",
                    path.display()
                )))
            }
        };
        let (results, torn) = Results::parse(&text, &path.display().to_string())?;
        if torn {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            eprintln!(
                "    {}: dropping an unfinished last record ({} bytes)",
                path.display(),
                text.len() - keep
            );
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            f.set_len(keep as u64)?;
            f.sync_all()?;
        }
        Ok(Store {
            path: path.to_path_buf(),
            results,
        })
    }

    pub fn results(&self) -> &Results {
        &self.results
    }

    pub fn is_done(&self, m: &Mutant) -> bool {
        self.results.is_done(m)
    }

    /// The mutants of `list` not done yet, in order.
    pub fn pending<'a>(&self, list: &'a [Mutant]) -> Vec<&'a Mutant> {
        list.iter().filter(|m| !self.is_done(m)).collect()
    }

    /// Appends a finished mutant's record and syncs it to disk.
    pub fn record(&mut self, r: Record) -> Result<()> {
        let mut line = serde_json::to_string(&r)?;
        line.push('\n');
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.results.records.insert(r.id.clone(), r);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::generate::Operator;

    pub fn mutant(line: u32, patch: &str) -> Mutant {
        Mutant {
            id: format!("f.c:{line}:relational:0"),
            file: "f.c".into(),
            line,
            operator: Operator::Relational,
            index: 0,
            function: Some("f".into()),
            description: String::new(),
            original: String::new(),
            mutated: String::new(),
            patch: patch.into(),
        }
    }

    fn rec(m: &Mutant, outcome: Outcome) -> Record {
        Record {
            id: m.id.clone(),
            fingerprint: m.fingerprint(),
            outcome,
            suites: vec!["soft-dirty".into()],
            build_secs: 1.0,
            run_secs: 2.0,
        }
    }

    #[test]
    fn resumes_and_a_torn_line_is_not_done() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/results.jsonl");
        let (a, b, c) = (mutant(1, "a"), mutant(2, "b"), mutant(3, "c"));
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.pending(&[a.clone(), b.clone()]).len(), 2);
        s.record(rec(&a, Outcome::Survived)).unwrap();
        let killed = Outcome::Killed {
            by: vec![Kill::Test {
                suite: "pagemap_ioctl".into(),
                test: "sanity_tests".into(),
            }],
        };
        s.record(rec(&b, killed.clone())).unwrap();
        // A run killed while writing c's record: half a line.
        let full = serde_json::to_string(&rec(&c, Outcome::Survived)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let mut s = Store::open(&path).unwrap();
        assert!(s.is_done(&a) && s.is_done(&b) && !s.is_done(&c));
        assert_eq!(s.results().of(&b).unwrap().outcome, killed);
        assert_eq!(s.pending(&[a.clone(), b.clone(), c.clone()]), vec![&c]);
        // The torn tail is gone from the file: the next record starts a line of its own.
        s.record(rec(
            &c,
            Outcome::Timeout {
                phase: "boot".into(),
                secs: 300.0,
            },
        ))
        .unwrap();
        let s = Store::open(&path).unwrap();
        assert!(s.is_done(&c));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn changed_mutant_is_not_done_and_last_record_wins() {
        let a = mutant(1, "old patch");
        let a2 = mutant(1, "new patch");
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&rec(&a, Outcome::Survived)).unwrap(),
            serde_json::to_string(&rec(
                &a,
                Outcome::BuildError {
                    log_tail: "x".into()
                }
            ))
            .unwrap()
        );
        let (r, torn) = Results::parse(&text, "r.jsonl").unwrap();
        assert!(!torn);
        assert!(matches!(
            r.of(&a).unwrap().outcome,
            Outcome::BuildError { .. }
        ));
        assert!(!r.is_done(&a2));
    }

    #[test]
    fn bad_line_is_named() {
        let e = Results::parse("{}\n", "dir/r.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dir/r.jsonl:1"), "{e}");
        assert_eq!(
            crate::util::exit_code_of(&Results::parse("nope\n", "r").unwrap_err()),
            crate::util::Exit::Setup
        );
    }

    #[test]
    fn merge_of_shards() {
        let (a, b) = (mutant(1, "a"), mutant(2, "b"));
        let mut x = Results::default();
        x.records.insert(a.id.clone(), rec(&a, Outcome::Survived));
        let mut y = Results::default();
        y.records.insert(b.id.clone(), rec(&b, Outcome::Survived));
        let m = Results::merge([x, y]);
        assert!(m.is_done(&a) && m.is_done(&b));
    }
}
