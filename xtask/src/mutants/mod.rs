//! `cargo xtask mutants`: mutation testing of a patch series (issue 16).
//!
//! [`generate`] makes mutants of the lines the series adds (from its diffs alone),
//! [`select`] narrows them (`--file`, `--function`, `--sample`/`--seed`, `--shard`),
//! [`store`] keeps the outcome of each mutant run (resumable JSONL), and [`report`]
//! turns mutants and outcomes into a score, survivors and a coloured view of the
//! series. The driver (apply, build, boot, judge, revert) sits on top of these.

pub mod clex;
mod driver;
pub mod equivalents;
pub mod generate;
pub mod report;
pub mod seriesdiff;
pub mod store;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;

pub use generate::{generate, Mutant};

use crate::series::Series;
use crate::util::{project_root, setup_error, Exit};

/// Which of the generated mutants to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// A glob (`*`, `?`) over the function a mutant is in.
    pub function: Option<String>,
    /// `(n, seed)`: a deterministic random subset of n mutants, kept in id order.
    pub sample: Option<(usize, u64)>,
    pub shard: Option<Shard>,
}

/// `K/N`: the K-th (1-based) of N deterministic parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Filter (function), then sample, then shard: the shards of one sample are disjoint
/// and together are that sample, in the same order.
pub fn select(mutants: &[Mutant], sel: &Selection) -> Vec<Mutant> {
    let mut v: Vec<Mutant> = mutants
        .iter()
        .filter(|m| match &sel.function {
            Some(g) => m.function.as_deref().is_some_and(|f| glob(g, f)),
            None => true,
        })
        .cloned()
        .collect();
    if let Some((n, seed)) = sel.sample {
        let mut keep = sample_indices(v.len(), n, seed);
        keep.sort_unstable();
        v = keep.into_iter().map(|i| v[i].clone()).collect();
    }
    if let Some(s) = sel.shard {
        v = v
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % s.n == s.k - 1)
            .map(|(_, m)| m)
            .collect();
    }
    v
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, seeded, the same on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (rejection sampling, no modulo bias).
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// `n` distinct indices of `0..len` (all of them when n >= len): a partial
/// Fisher-Yates shuffle driven by `seed`.
fn sample_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    let mut rng = SplitMix64(seed);
    let n = n.min(len);
    for i in 0..n {
        let j = i + rng.below((len - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(n);
    idx
}

/// Shell-style glob with `*` and `?` (no classes), whole-string match.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `cargo xtask mutants` options: --list, --run, or --merge.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Print the selected mutants (id, function, change) and counts; build nothing.
    #[arg(long, conflicts_with = "run")]
    pub list: bool,
    /// Run the selected mutants: apply, build, boot, judge, revert, each; resumable
    /// (target/mutants/<target>/results.jsonl); then the report.
    #[arg(long)]
    pub run: bool,
    /// Merge these results files (one per shard of a distributed run) and write the
    /// report of the selection over them to target/mutants/<target>/.
    #[arg(long, num_args = 1.., conflicts_with_all = ["list", "run"])]
    pub merge: Vec<PathBuf>,
    /// With --merge: write the report here instead of target/mutants/<target>/.
    #[arg(long, requires = "merge")]
    pub out: Option<PathBuf>,
    /// With --run: only these suites of the target (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub suites: Vec<String>,
    /// The target whose series is mutated (default: the matrix's default target).
    #[arg(long)]
    pub target: Option<String>,
    /// Mutate this series (directory or mbox) instead of the target's.
    #[arg(long)]
    pub series: Option<PathBuf>,
    /// Only this file of the series (repeatable; default: its .c/.h files outside tools/).
    #[arg(long = "file")]
    pub files: Vec<String>,
    /// Only mutants in functions matching this glob (`pagemap_scan_*`).
    #[arg(long)]
    pub function: Option<String>,
    /// A deterministic random subset of this many mutants (see --seed).
    #[arg(long)]
    pub sample: Option<usize>,
    /// The seed of --sample.
    #[arg(long, default_value_t = 0, requires = "sample")]
    pub seed: u64,
    /// K/N: only the K-th of N deterministic parts (after --sample).
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Check the mutants' line numbers against this patched tree first.
    #[arg(long)]
    pub tree: Option<PathBuf>,
    /// With --list: one JSON object per mutant (with its patch) instead of text.
    #[arg(long, requires = "list")]
    pub json: bool,
}

impl Options {
    pub fn selection(&self) -> Selection {
        Selection {
            function: self.function.clone(),
            sample: self.sample.map(|n| (n, self.seed)),
            shard: self.shard,
        }
    }

    /// The series to mutate: --series, or the target's.
    pub fn load_series(&self) -> Result<Series> {
        let path = match &self.series {
            Some(p) => p.clone(),
            None => {
                let m = crate::test_kernel::matrix()?;
                let name = self.target.clone().unwrap_or_else(|| m.default.clone());
                let t = m.get(&name)?;
                let s = t.series.clone().ok_or_else(|| {
                    setup_error(format!("mutants: target {name} has no series to mutate"))
                })?;
                project_root().join(s)
            }
        };
        Series::load(&path)
    }
}

fn merge(o: &Options) -> Result<Exit> {
    let mut parts = Vec::new();
    for f in &o.merge {
        let text = std::fs::read_to_string(f)
            .map_err(|e| setup_error(format!("mutants --merge: {}: {e}", f.display())))?;
        let (r, _) = store::Results::parse(&text, &f.display().to_string())?;
        parts.push(r);
    }
    let results = store::Results::merge(parts);
    let series = o.load_series()?;
    let g = generate(&series, &o.files)?;
    let chosen = select(
        &g.mutants,
        &Selection {
            shard: None,
            ..o.selection()
        },
    );
    let dir = match &o.out {
        Some(d) => d.clone(),
        None => {
            let m = crate::test_kernel::matrix()?;
            driver::results_dir(&o.target.clone().unwrap_or_else(|| m.default.clone()))
        }
    };
    finish(&series, &g, &chosen, &results, &dir)
}

/// Applies the reviewed equivalents, writes the reports into `dir`, prints the
/// markdown, and judges: any survivor or a listing a test contradicts is exit 1.
fn finish(
    series: &Series,
    g: &generate::Generation,
    chosen: &[Mutant],
    results: &store::Results,
    dir: &std::path::Path,
) -> Result<Exit> {
    let reviewed = equivalents::load(&series.origin)?;
    reviewed.check_ids(g)?;
    let (results, contradicted) = reviewed.apply(results);
    std::fs::create_dir_all(dir)?;
    let mut r = report::build(&series.origin.display().to_string(), g, chosen, &results);
    r.contradicted = contradicted
        .iter()
        .map(|c| {
            format!(
                "`{}`: listed as \"{}\", killed by {}",
                c.id, c.reason, c.killed_by
            )
        })
        .collect();
    let md = report::markdown(&r);
    std::fs::write(dir.join("report.md"), &md)?;
    std::fs::write(dir.join("report.json"), report::json(&r))?;
    std::fs::write(dir.join("report.html"), report::html(&r))?;
    println!("{md}");
    println!("reports in {}", dir.display());
    if r.survivors.is_empty() && r.contradicted.is_empty() {
        return Ok(Exit::Ok);
    }
    for l in &r.survivors {
        eprintln!(
            "mutants: survived: {} ({}): {} (not in {})",
            l.id,
            l.function.as_deref().unwrap_or("no function"),
            l.description,
            equivalents::FILE
        );
    }
    for c in &r.contradicted {
        eprintln!("mutants: {c}");
    }
    Ok(Exit::Mismatch)
}

fn run(o: &Options) -> Result<Exit> {
    let m = crate::test_kernel::matrix()?;
    let name = o.target.clone().unwrap_or_else(|| m.default.clone());
    let t = m.get(&name).map_err(|e| setup_error(format!("{e:#}")))?;
    let plan = crate::plan::RunPlan::resolve(
        t,
        &crate::plan::Overrides {
            series: o.series.clone(),
            suites: o.suites.clone(),
            ..Default::default()
        },
    )?;
    let series = o.load_series()?;
    let g = generate(&series, &o.files)?;
    // A stale listing is found before hours of runs, not after.
    equivalents::load(&series.origin)?.check_ids(&g)?;
    let chosen = select(&g.mutants, &o.selection());
    let dir = driver::results_dir(&name);
    std::fs::create_dir_all(&dir)?;
    let mut store = store::Store::open(&driver::store_path(&dir))?;
    driver::run(&plan, &chosen, &mut store, &dir)?;
    finish(&series, &g, &chosen, store.results(), &dir)
}

pub fn main(o: Options) -> Result<Exit> {
    if !o.merge.is_empty() {
        return merge(&o);
    }
    if !o.list && !o.run {
        return Err(setup_error(
            "mutants: say --list (print them), --run (run them) or --merge FILES (shards' results)",
        ));
    }
    if o.run {
        return run(&o);
    }
    let series = o.load_series()?;
    if let Some(t) = &o.tree {
        let n = generate::verify_lines(&series, t)?;
        eprintln!("{n} lines of the series match {}", t.display());
    }
    let g = generate(&series, &o.files)?;
    let chosen = select(&g.mutants, &o.selection());
    if let Some(f) = &o.function {
        if !g
            .mutants
            .iter()
            .any(|m| m.function.as_deref().is_some_and(|x| glob(f, x)))
        {
            return Err(setup_error(format!(
                "mutants: --function {f:?} matches no function with mutants in {}",
                series.origin.display()
            )));
        }
    }
    if o.json {
        for m in &chosen {
            println!("{}", serde_json::to_string(m)?);
        }
    } else {
        for m in &chosen {
            println!(
                "{}\t{}\t{}",
                m.id,
                m.function.as_deref().unwrap_or("-"),
                m.description
            );
        }
    }
    eprintln!(
        "{} of {} mutant(s) of {} added line(s) in {}",
        chosen.len(),
        g.mutants.len(),
        g.lines.len(),
        series.origin.display()
    );
    for (file, ops) in generate::counts(&chosen) {
        let per: Vec<String> = ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
        eprintln!("    {file}: {}", per.join(", "));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::generate::Operator;

    fn m(id: usize, function: &str) -> Mutant {
        Mutant {
            id: format!("f.c:{id}:constant:0"),
            file: "f.c".into(),
            line: id as u32,
            operator: Operator::Constant,
            index: 0,
            function: Some(function.into()),
            description: String::new(),
            original: String::new(),
            mutated: String::new(),
            patch: String::new(),
        }
    }

    fn ids(v: &[Mutant]) -> Vec<u32> {
        v.iter().map(|m| m.line).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("pagemap_scan_*", "pagemap_scan_pmd_entry"));
        assert!(!glob("pagemap_scan_*", "do_pagemap_scan"));
        assert!(glob("*scan*", "do_pagemap_scan"));
        assert!(glob("a?c", "abc") && !glob("a?c", "abbc"));
        assert!(glob("*", "") && glob("a*b*c", "aXbYbc") && !glob("a*b", "aXc"));
    }

    #[test]
    fn shard_parsing() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { k: 2, n: 4 }));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains(bad));
        }
    }

    #[test]
    fn sample_is_deterministic_ordered_and_seed_dependent() {
        let all: Vec<Mutant> = (1..=100).map(|i| m(i, "f")).collect();
        let s = |seed| {
            select(
                &all,
                &Selection {
                    sample: Some((10, seed)),
                    ..Default::default()
                },
            )
        };
        let a = ids(&s(1));
        assert_eq!(a.len(), 10);
        assert_eq!(a, ids(&s(1)));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(a, ids(&s(2)));
        // more than there are: all of them
        let big = select(
            &all,
            &Selection {
                sample: Some((1000, 3)),
                ..Default::default()
            },
        );
        assert_eq!(big.len(), 100);
        // spread, not a prefix
        assert!(a.iter().any(|&l| l > 50), "{a:?}");
    }

    #[test]
    fn shards_partition_the_sample() {
        let all: Vec<Mutant> = (1..=37)
            .map(|i| {
                m(
                    i,
                    if i % 3 == 0 {
                        "pagemap_scan_x"
                    } else {
                        "other"
                    },
                )
            })
            .collect();
        let base = Selection {
            sample: Some((20, 7)),
            ..Default::default()
        };
        let whole = ids(&select(&all, &base));
        let mut joined: Vec<u32> = (1..=3)
            .flat_map(|k| {
                ids(&select(
                    &all,
                    &Selection {
                        shard: Some(Shard { k, n: 3 }),
                        ..base.clone()
                    },
                ))
            })
            .collect();
        joined.sort_unstable();
        assert_eq!(joined, whole);
        let sizes: Vec<usize> = (1..=3)
            .map(|k| {
                select(
                    &all,
                    &Selection {
                        shard: Some(Shard { k, n: 3 }),
                        ..base.clone()
                    },
                )
                .len()
            })
            .collect();
        assert_eq!(sizes, [7, 7, 6]);
        let f = select(
            &all,
            &Selection {
                function: Some("pagemap_scan_*".into()),
                ..Default::default()
            },
        );
        assert_eq!(ids(&f), [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36]);
    }

    /// The shipped series (no kernel tree needed): unique ids in a stable order, the
    /// filters narrow as documented.
    #[test]
    fn real_series_ids_filters_and_shards() {
        let s = Series::load(&project_root().join("patches/pagemap-scan-6.1")).unwrap();
        let g = generate(&s, &[]).unwrap();
        let mut ids: Vec<&str> = g.mutants.iter().map(|m| m.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), g.mutants.len(), "ids are unique");
        let key = |m: &Mutant| (m.file.clone(), m.line, m.operator, m.index);
        assert!(
            g.mutants.windows(2).all(|w| key(&w[0]) < key(&w[1])),
            "id order"
        );
        assert!(g.mutants.iter().all(|m| !m.file.starts_with("tools/")));
        assert_eq!(generate(&s, &[]).unwrap().mutants, g.mutants);

        let only = generate(&s, &["fs/proc/task_mmu.c".into()]).unwrap();
        assert!(
            !only.mutants.is_empty() && only.mutants.iter().all(|m| m.file == "fs/proc/task_mmu.c")
        );
        let sel = Selection {
            function: Some("pagemap_scan_*".into()),
            ..Default::default()
        };
        let f = select(&only.mutants, &sel);
        assert!(!f.is_empty() && f.len() < only.mutants.len());
        assert!(f
            .iter()
            .all(|m| m.function.as_deref().unwrap().starts_with("pagemap_scan_")));

        let sample = Selection {
            sample: Some((10, 1)),
            ..Default::default()
        };
        let whole = select(&g.mutants, &sample);
        assert_eq!(whole.len(), 10);
        let mut joined: Vec<Mutant> = (1..=2)
            .flat_map(|k| {
                select(
                    &g.mutants,
                    &Selection {
                        shard: Some(Shard { k, n: 2 }),
                        ..sample.clone()
                    },
                )
            })
            .collect();
        joined.sort_by_key(key);
        assert_eq!(joined, whole);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 of the reference C implementation
        // (splitmix64.c, Vigna): 6457827717110365317, 3203168211198807973.
        let mut r = SplitMix64(1234567);
        assert_eq!(r.next(), 6457827717110365317);
        assert_eq!(r.next(), 3203168211198807973);
    }
}
