//! The reviewed list of equivalent mutants (`configs/equivalent-mutants.yaml`):
//! mutants that no test can tell from the original, each with a one-line reason,
//! keyed by the series they belong to. The score leaves them out.
//!
//! A listing is checked, not trusted: an id that the series no longer generates is a
//! set-up error (the series moved; review the list again), and a listed mutant that a
//! test killed is a contradiction the report shows and the run fails on.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::generate::Generation;
use super::store::{Outcome, Results};
use crate::util::{project_root, setup_error};

/// The file, relative to the project root.
pub const FILE: &str = "configs/equivalent-mutants.yaml";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reviewed {
    /// Mutant id -> reason, for the series in question.
    pub entries: BTreeMap<String, String>,
    /// Where they were read from, for messages.
    pub origin: String,
}

/// A listed mutant that some test killed: the listing is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Contradiction {
    pub id: String,
    pub reason: String,
    pub killed_by: String,
}

/// The series key used in the file: the series path relative to the project root
/// (`patches/pagemap-scan-6.1`), or as given when it is elsewhere.
pub fn series_key(series: &Path) -> String {
    let root = project_root();
    series
        .strip_prefix(&root)
        .unwrap_or(series)
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string()
}

/// Reads the listing of `series` from the project's file (absent file or series: none).
pub fn load(series: &Path) -> Result<Reviewed> {
    let path = project_root().join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(setup_error(format!("{FILE}: {e}"))),
    };
    parse(&text, &series_key(series), &path)
}

/// Parses the file's text and returns the entries of `key`.
pub fn parse(text: &str, key: &str, path: &Path) -> Result<Reviewed> {
    let origin = format!("{}: {key}", path.display());
    if text.trim().is_empty() {
        return Ok(Reviewed {
            entries: BTreeMap::new(),
            origin,
        });
    }
    let all: BTreeMap<String, Option<BTreeMap<String, String>>> = serde_yaml::from_str(text)
        .map_err(|e| {
            setup_error(format!(
                "{}: expected `series path: {{mutant id: reason}}`: {e}",
                path.display()
            ))
        })?;
    let entries = all.get(key).cloned().flatten().unwrap_or_default();
    for (id, reason) in &entries {
        if reason.trim().is_empty() {
            return Err(setup_error(format!(
                "{origin}: {id}: an equivalent mutant needs its reason"
            )));
        }
    }
    Ok(Reviewed { entries, origin })
}

impl Reviewed {
    /// Every listed id of a file this generation covers (`--file` narrows it) must be
    /// a mutant the series generates now.
    pub fn check_ids(&self, g: &Generation) -> Result<()> {
        let covered = |id: &str| {
            let file = id.split(':').next().unwrap_or("");
            g.lines.iter().any(|l| l.file == file)
        };
        let stale: Vec<&String> = self
            .entries
            .keys()
            .filter(|id| covered(id) && !g.mutants.iter().any(|m| &m.id == *id))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        Err(setup_error(format!(
            "{}: {} listed mutant(s) that the series no longer generates (its lines moved or \
             changed; review the listing again): {}",
            self.origin,
            stale.len(),
            stale
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// The results with every listed survivor turned into an equivalent (reason
    /// prefixed `reviewed:`), and the listed mutants that were killed.
    pub fn apply(&self, results: &Results) -> (Results, Vec<Contradiction>) {
        let mut out = results.clone();
        let mut contradictions = Vec::new();
        for (id, reason) in &self.entries {
            let Some(rec) = out.records.get_mut(id) else {
                continue;
            };
            match &rec.outcome {
                Outcome::Survived => {
                    rec.outcome = Outcome::Equivalent {
                        reason: format!("reviewed: {reason}"),
                    }
                }
                Outcome::Killed { by } => contradictions.push(Contradiction {
                    id: id.clone(),
                    reason: reason.clone(),
                    killed_by: by
                        .iter()
                        .map(|k| k.describe())
                        .collect::<Vec<_>>()
                        .join("; "),
                }),
                Outcome::Timeout { phase, .. } => contradictions.push(Contradiction {
                    id: id.clone(),
                    reason: reason.clone(),
                    killed_by: format!("timeout in {phase}"),
                }),
                Outcome::BuildError { .. } | Outcome::Equivalent { .. } => {}
            }
        }
        (out, contradictions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::store::{Kill, Record};

    fn rec(id: &str, outcome: Outcome) -> Record {
        Record {
            id: id.into(),
            fingerprint: "f".into(),
            outcome,
            suites: vec![],
            build_secs: 0.0,
            run_secs: 0.0,
        }
    }

    const TEXT: &str = "patches/s:\n  \"a.c:1:constant:0\": dead store\n  \"a.c:2:relational:0\": same bound\nother: {}\n";

    #[test]
    fn parses_the_series_entries_only() {
        let r = parse(TEXT, "patches/s", Path::new("x.yaml")).unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries["a.c:1:constant:0"], "dead store");
        assert!(parse(TEXT, "other", Path::new("x.yaml"))
            .unwrap()
            .entries
            .is_empty());
        assert!(parse("", "patches/s", Path::new("x.yaml"))
            .unwrap()
            .entries
            .is_empty());
    }

    #[test]
    fn a_listing_without_reason_or_of_the_wrong_shape_is_an_error() {
        let e = parse(
            "patches/s:\n  \"a.c:1:constant:0\": \"\"\n",
            "patches/s",
            Path::new("x.yaml"),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("a.c:1:constant:0"), "{e:#}");
        let e = parse("patches/s: [a]\n", "patches/s", Path::new("x.yaml")).unwrap_err();
        assert!(format!("{e:#}").contains("x.yaml"), "{e:#}");
    }

    #[test]
    fn survivors_become_equivalent_and_kills_contradict() {
        let r = parse(TEXT, "patches/s", Path::new("x.yaml")).unwrap();
        let mut res = Results::default();
        res.records.insert(
            "a.c:1:constant:0".into(),
            rec("a.c:1:constant:0", Outcome::Survived),
        );
        res.records.insert(
            "a.c:2:relational:0".into(),
            rec(
                "a.c:2:relational:0",
                Outcome::Killed {
                    by: vec![Kill::Test {
                        suite: "s".into(),
                        test: "t".into(),
                    }],
                },
            ),
        );
        res.records.insert(
            "a.c:3:constant:0".into(),
            rec("a.c:3:constant:0", Outcome::Survived),
        );
        let (out, c) = r.apply(&res);
        assert_eq!(
            out.records["a.c:1:constant:0"].outcome,
            Outcome::Equivalent {
                reason: "reviewed: dead store".into()
            }
        );
        assert_eq!(out.records["a.c:3:constant:0"].outcome, Outcome::Survived);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id, "a.c:2:relational:0");
        assert_eq!(c[0].killed_by, "s: t");
    }

    #[test]
    fn stale_ids_are_errors_only_for_the_files_generated() {
        use crate::mutants::generate::SeriesLine;
        let r = parse(TEXT, "patches/s", Path::new("x.yaml")).unwrap();
        let g = |file: &str| Generation {
            lines: vec![SeriesLine {
                file: file.into(),
                line: 1,
                text: String::new(),
                function: None,
            }],
            mutants: vec![],
        };
        let e = r.check_ids(&g("a.c")).unwrap_err();
        assert!(
            format!("{e:#}").contains("a.c:1:constant:0, a.c:2:relational:0"),
            "{e:#}"
        );
        // --file b.c: the listing of a.c is not this run's business.
        r.check_ids(&g("b.c")).unwrap();
    }
}
