//! Kernel alarms: the reports a kernel prints on its console when something is wrong
//! (WARNING, BUG, Oops, lockdep, lockups, stalls, hung tasks, KASAN/KFENCE/UBSAN,
//! mm state checks, panics), found by the patterns of `configs/alarms.yaml`, each
//! quoted with its block and given a crash fingerprint.
//!
//! Pure: [`scan`] takes the console text, the patterns and the target's allowlist and
//! returns one [`Alarm`] per report. A report is named by the most specific pattern
//! among its trigger lines (the file's order), quoted from its first line to the end
//! of its block (`---[ end trace`, a closing `=====` line, or the end of its Call
//! Trace), and fingerprinted by the first frames of its trace reduced to function
//! names ([`Fingerprint`]), so the same bug gives the same id on every run.
//!
//! The allowlist (`alarms_allow:` of a target) is a YAML list of
//! `{pattern: NAME, match: REGEX, reason: TEXT}`: an alarm of that pattern whose
//! quoted lines or fingerprint match REGEX (any, when `match` is left out) is reported
//! with the reason and does not fail the run.

#![allow(
    dead_code,
    reason = "Patterns::load/parse and Allowlist::parse are for tests and stand-alone pattern files"
)]

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Frames in a fingerprint.
pub const FINGERPRINT_FRAMES: usize = 5;
/// Lines a report may print before its `Call Trace:` (lockdep's chains are long).
const HEADER_MAX: usize = 400;
/// Lines of one call trace (a soft lockup's trace holds an IRQ stack and registers).
const TRACE_MAX: usize = 250;
/// Lines after a trace in which the report's `---[ end trace` or closing `=====` may
/// still come (KASAN prints the allocation and free stacks after its trace).
const LOOKAHEAD: usize = 40;
/// A second trigger this close to the first is the same report (`refcount_t:` then
/// `WARNING:`, `BUG: kernel NULL pointer dereference` then `Oops:`); a later one
/// before any Call Trace starts a new report.
const MERGE_WINDOW: usize = 8;

/// The patterns file, as shipped (`cargo` rebuilds xtask when it changes).
const BUILTIN: &str = include_str!("../../configs/alarms.yaml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    ignore_frames: Vec<String>,
    patterns: Vec<RawPattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: String,
    regex: String,
    reason: String,
    source: String,
    #[serde(default = "yes")]
    trace: bool,
    #[serde(default)]
    fatal: bool,
}

fn yes() -> bool {
    true
}

/// One console pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub name: String,
    pub regex: Regex,
    pub reason: String,
    /// The printing function and format string (documentation, checked non-empty).
    pub source: String,
    /// false: a one-line report without a call trace.
    pub trace: bool,
    /// The kernel stops after this report.
    pub fatal: bool,
}

/// All patterns, most specific first, and the frames a fingerprint leaves out.
#[derive(Clone, Debug)]
pub struct Patterns {
    pub patterns: Vec<Pattern>,
    ignore_frames: Regex,
}

impl Patterns {
    /// `configs/alarms.yaml` as compiled in.
    pub fn builtin() -> Result<Patterns> {
        Patterns::parse(BUILTIN, "configs/alarms.yaml")
    }

    /// Reads a patterns file.
    pub fn load(path: &Path) -> Result<Patterns> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("alarms: reading {}", path.display()))?;
        Patterns::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a patterns file; errors name the file and the pattern.
    pub fn parse(text: &str, origin: &str) -> Result<Patterns> {
        let raw: RawFile =
            serde_yaml::from_str(text).with_context(|| format!("alarms: {origin}"))?;
        if raw.patterns.is_empty() {
            bail!("alarms: {origin}: no patterns");
        }
        let mut patterns: Vec<Pattern> = Vec::new();
        for (i, p) in raw.patterns.into_iter().enumerate() {
            let at = format!("alarms: {origin}: patterns[{i}] ({:?})", p.name);
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                bail!("{at}: name must be non-empty lowercase letters, digits and '-'");
            }
            if patterns.iter().any(|q| q.name == p.name) {
                bail!("{at}: duplicate name");
            }
            if p.reason.trim().is_empty() || p.source.trim().is_empty() {
                bail!("{at}: reason and source must not be empty");
            }
            let regex = Regex::new(&p.regex).with_context(|| format!("{at}: regex"))?;
            patterns.push(Pattern {
                name: p.name,
                regex,
                reason: p.reason,
                source: p.source,
                trace: p.trace,
                fatal: p.fatal,
            });
        }
        for (i, r) in raw.ignore_frames.iter().enumerate() {
            Regex::new(r).with_context(|| format!("alarms: {origin}: ignore_frames[{i}] {r:?}"))?;
        }
        let ignore = format!("^(?:{})$", raw.ignore_frames.join("|"));
        Ok(Patterns {
            patterns,
            ignore_frames: Regex::new(&ignore)?,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Pattern> {
        self.patterns.iter().find(|p| p.name == name)
    }

    /// The index of the first pattern matching a console message.
    fn trigger(&self, msg: &str) -> Option<usize> {
        self.patterns.iter().position(|p| p.regex.is_match(msg))
    }
}

/// A regex in an allowlist entry, compiled when the YAML is read.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowRegex(pub Regex);

impl Serialize for AllowRegex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl TryFrom<String> for AllowRegex {
    type Error = regex::Error;
    fn try_from(s: String) -> Result<Self, regex::Error> {
        Regex::new(&s).map(AllowRegex)
    }
}

/// One allowlist entry: `{pattern: NAME, match: REGEX, reason: TEXT}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    pub pattern: String,
    /// Searched in every quoted line and in the fingerprint id; absent = any.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<AllowRegex>,
    pub reason: String,
}

/// A target's allowed alarms (`alarms_allow:` in targets.yaml), each with its reason.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Allowlist {
    pub entries: Vec<AllowEntry>,
}

impl Allowlist {
    /// Parses a YAML list of entries (tests, and a stand-alone allowlist file).
    pub fn parse(text: &str, origin: &str) -> Result<Allowlist> {
        serde_yaml::from_str(text).with_context(|| format!("alarms_allow: {origin}"))
    }

    /// Every entry names a known pattern and gives a reason; `key` is where the list
    /// sits (e.g. `targets[3].alarms_allow`), for the error message.
    pub fn validate(&self, patterns: &Patterns, key: &str) -> Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            if patterns.get(&e.pattern).is_none() {
                let known: Vec<&str> = patterns.patterns.iter().map(|p| p.name.as_str()).collect();
                bail!(
                    "{key}[{i}].pattern: unknown alarm pattern {:?} (known: {})",
                    e.pattern,
                    known.join(", ")
                );
            }
            if e.reason.trim().is_empty() {
                bail!("{key}[{i}].reason: an allowed alarm needs a reason");
            }
        }
        Ok(())
    }

    /// The reason of the first entry that allows this report.
    fn allows(&self, pattern: &str, lines: &[String], fingerprint: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|e| {
                e.pattern == pattern
                    && match &e.matches {
                        None => true,
                        Some(AllowRegex(re)) => {
                            re.is_match(fingerprint) || lines.iter().any(|l| re.is_match(l))
                        }
                    }
            })
            .map(|e| e.reason.clone())
    }
}

/// A crash fingerprint: the first frames of the report's trace as function names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// `pattern:func1<func2<...` (innermost first), or `pattern:title` for a report
    /// without a usable trace (numbers and addresses in the title replaced).
    pub id: String,
    /// The first 8 hex digits of the id's SHA-256: short enough for a table.
    pub hash: String,
    pub frames: Vec<String>,
}

impl Fingerprint {
    fn new(pattern: &str, frames: Vec<String>, title: &str) -> Fingerprint {
        let id = if frames.is_empty() {
            format!("{pattern}:{}", normalise_title(title))
        } else {
            format!("{pattern}:{}", frames.join("<"))
        };
        let digest = Sha256::digest(id.as_bytes());
        let hash = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Fingerprint { id, hash, frames }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.id, self.hash)
    }
}

/// One kernel report found on the console.
#[derive(Clone, Debug, Serialize)]
pub struct Alarm {
    /// The pattern that names it (the most specific among its trigger lines).
    pub pattern: String,
    pub reason: String,
    /// 1-based console line of the first quoted line.
    pub line: usize,
    /// The report's lines, printk timestamps removed.
    pub lines: Vec<String>,
    pub fingerprint: Fingerprint,
    /// The kernel stops after this report (a panic).
    pub fatal: bool,
    /// Set when the target's allowlist allows it: the entry's reason.
    pub allowed: Option<String>,
}

impl Alarm {
    /// An alarm that fails the run: not allowed.
    pub fn fails(&self) -> bool {
        self.allowed.is_none()
    }
}

/// Removes the printk timestamp (`[   12.345678] `) and caller id (`[    T1] `).
pub fn strip_timestamp(line: &str) -> &str {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut rest = line;
    for _ in 0..2 {
        let Some(inner) = rest.strip_prefix('[') else {
            break;
        };
        let Some(close) = inner.find(']') else {
            break;
        };
        let body = inner[..close].trim_start();
        let is_time = !body.is_empty()
            && body.contains('.')
            && body.chars().all(|c| c.is_ascii_digit() || c == '.');
        let is_caller = body.len() > 1
            && (body.starts_with('T') || body.starts_with('C'))
            && body[1..].chars().all(|c| c.is_ascii_digit());
        if !(is_time || is_caller) {
            break;
        }
        rest = &inner[close + 1..];
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    rest
}

static SYNTAX: LazyLock<Syntax> = LazyLock::new(Syntax::new);

struct Syntax {
    frame: Regex,
    rip: Regex,
    suffix: Regex,
    hex: Regex,
    num: Regex,
}

impl Syntax {
    fn new() -> Syntax {
        let sym = r"([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+";
        Syntax {
            // ` func+0x12/0x34 [mod]`, ` ? func+0x12/0x34`, `[<ffffffff81000000>] func+...`
            frame: Regex::new(&format!(
                r"^\s*(?:\[<[0-9a-f]+>\]\s*)?(\? )?{sym}(?:\s+\[[^\]]*\])?\s*$"
            ))
            .unwrap(),
            // `RIP: 0010:func+0x12/0x34` (a user RIP `0033:0x7f...` has no symbol)
            rip: Regex::new(&format!(
                r"^RIP: [0-9a-f]{{4}}:(?:\[<[0-9a-f]+>\]\s*)*{sym}"
            ))
            .unwrap(),
            // gcc/clang clones: .isra.0 .constprop.0 .part.0 .cold .lto_priv.0 .llvm.123
            suffix: Regex::new(
                r"(\.(isra|constprop|part|cold|lto_priv|llvm|specialized)(\.\d+)?)+$",
            )
            .unwrap(),
            hex: Regex::new(r"0x[0-9a-fA-F]+|\b[0-9a-f]{8,16}\b").unwrap(),
            // Numbers, except a source line (`mm/memory.c:123`), which tells two
            // WARN_ON()s of one file apart when there are no symbols.
            num: Regex::new(r"(\.[ch]:\d+)|\d+").unwrap(),
        }
    }

    fn func(&self, name: &str) -> String {
        self.suffix.replace(name, "").into_owned()
    }
}

fn normalise_title(title: &str) -> String {
    let s = &*SYNTAX;
    let t = s.hex.replace_all(title.trim(), "X");
    s.num
        .replace_all(&t, |c: &regex::Captures| match c.get(1) {
            Some(line) => line.as_str().to_string(),
            None => "N".to_string(),
        })
        .into_owned()
}

fn is_end_marker(msg: &str) -> bool {
    let t = msg.trim();
    t.starts_with("---[ end trace") || t.starts_with("---[ end Kernel panic")
}

/// A closing `=====` line (KASAN, KFENCE, UBSAN on 6.1, lockdep's held-locks list).
fn is_separator(msg: &str) -> bool {
    let t = msg.trim();
    t.len() >= 20 && t.chars().all(|c| c == '=')
}

const CUT_HERE: &str = "------------[ cut here ]------------";

/// Stack markers of the x86 unwinder: `<TASK>`, `<IRQ>`, `<NMI>`, `<SOFTIRQ>`, `<#DF>`...
/// Returns Some(true) for an opening marker, Some(false) for a closing one.
fn marker(msg: &str) -> Option<bool> {
    let t = msg.trim();
    let inner = t.strip_prefix('<')?.strip_suffix('>')?;
    let (close, name) = match inner.strip_prefix('/') {
        Some(n) => (true, n),
        None => (false, inner),
    };
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '#' || c == '_');
    ok.then_some(!close)
}

/// What was read of one report.
struct Block {
    end: usize,
    best: usize,
    /// A fatal pattern (a panic) was among its trigger lines.
    fatal: bool,
    rip: Option<String>,
    frames: Vec<(bool, String)>,
}

/// Reads a traced report starting at `start` (its trigger line, pattern `first`).
fn read_block(msgs: &[&str], start: usize, first: usize, pats: &Patterns, syn: &Syntax) -> Block {
    let mut b = Block {
        end: start + 1,
        best: first,
        fatal: pats.patterns[first].fatal,
        rip: None,
        frames: Vec::new(),
    };
    let n = msgs.len();
    let mut j = start + 1;
    // Header: up to the Call Trace.
    loop {
        if j >= n {
            // The console ends inside the report (the kernel died): keep what came.
            b.end = n;
            return b;
        }
        if j - start > HEADER_MAX {
            // No trace and no end: the trigger line alone (later lines are scanned again).
            b.end = start + 1;
            b.best = first;
            b.fatal = pats.patterns[first].fatal;
            b.rip = None;
            return b;
        }
        let m = msgs[j];
        if is_end_marker(m) || is_separator(m) {
            b.end = j + 1;
            return b;
        }
        if m.trim() == "Call Trace:" {
            break;
        }
        if let Some(q) = pats.trigger(m) {
            if !pats.patterns[q].trace || j - start > MERGE_WINDOW {
                // Another report: this one had no trace and ends here.
                b.end = j;
                b.rip = None;
                return b;
            }
            b.best = b.best.min(q);
            b.fatal |= pats.patterns[q].fatal;
        } else if b.rip.is_none() {
            if let Some(c) = syn.rip.captures(m) {
                b.rip = Some(syn.func(&c[1]));
            }
        }
        j += 1;
    }
    // The trace.
    let trace_start = j;
    j += 1;
    let mut markers = false;
    let mut seen_frame = false;
    let trace_end = loop {
        if j >= n || j - trace_start > TRACE_MAX {
            break j.min(n);
        }
        let m = msgs[j];
        if is_end_marker(m) || is_separator(m) {
            b.end = j + 1;
            return b;
        }
        if pats.trigger(m).is_some() {
            // Another report starts: this one ends here.
            b.end = j;
            return b;
        }
        if let Some(open) = marker(m) {
            markers = true;
            if !open && m.trim() == "</TASK>" {
                break j + 1;
            }
        } else if let Some(c) = syn.frame.captures(m) {
            seen_frame = true;
            b.frames.push((c.get(1).is_none(), syn.func(&c[2])));
        } else if let Some(c) = syn.rip.captures(m) {
            if b.rip.is_none() {
                b.rip = Some(syn.func(&c[1]));
            }
        } else if !markers && seen_frame {
            // An old-style trace without markers ends at its first non-frame line.
            break j;
        }
        j += 1;
    };
    b.end = trace_end;
    // Lines after the trace up to the report's end marker, if it comes soon.
    for (t, m) in msgs
        .iter()
        .enumerate()
        .take(n.min(trace_end + LOOKAHEAD))
        .skip(trace_end)
    {
        if is_end_marker(m) || is_separator(m) {
            b.end = t + 1;
            break;
        }
        if pats.trigger(m).is_some() || m.trim() == "Call Trace:" {
            break;
        }
    }
    b
}

/// The fingerprint frames: the RIP function, then the reliable frames of the trace,
/// without the reporting machinery, consecutive repeats collapsed.
fn fingerprint_frames(b: &Block, pats: &Patterns) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let reliable = b.frames.iter().filter(|(r, _)| *r).map(|(_, f)| f);
    for f in b.rip.iter().chain(reliable) {
        if pats.ignore_frames.is_match(f) || out.last() == Some(f) {
            continue;
        }
        out.push(f.clone());
        if out.len() == FINGERPRINT_FRAMES {
            break;
        }
    }
    out
}

/// Every kernel report on the console, in console order.
pub fn scan(console: &str, patterns: &Patterns, allow: &Allowlist) -> Vec<Alarm> {
    let syn = &*SYNTAX;
    let msgs: Vec<&str> = console.lines().map(strip_timestamp).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < msgs.len() {
        let Some(first) = patterns.trigger(msgs[i]) else {
            i += 1;
            continue;
        };
        let p = &patterns.patterns[first];
        let block = if p.trace {
            read_block(&msgs, i, first, patterns, syn)
        } else {
            // A one-line report; repeats of it (one per counter type) are the same report.
            let mut end = i + 1;
            while end < msgs.len() && p.regex.is_match(msgs[end]) {
                end += 1;
            }
            Block {
                end,
                best: first,
                fatal: p.fatal,
                rip: None,
                frames: Vec::new(),
            }
        };
        let best = &patterns.patterns[block.best];
        // A WARN()'s message comes after the `cut here` line and before `WARNING:`.
        let mut from = i;
        for back in 1..=3 {
            if i < back {
                break;
            }
            let m = msgs[i - back];
            if m.trim() == CUT_HERE {
                from = i - back + 1;
                break;
            }
            if patterns.trigger(m).is_some() || m.trim().is_empty() {
                break;
            }
        }
        if out
            .last()
            .is_some_and(|a: &Alarm| a.line + a.lines.len() > from + 1)
        {
            from = i;
        }
        let lines: Vec<String> = msgs[from..block.end]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let frames = if best.trace {
            fingerprint_frames(&block, patterns)
        } else {
            Vec::new()
        };
        let fingerprint = Fingerprint::new(&best.name, frames, msgs[i]);
        let allowed = allow.allows(&best.name, &lines, &fingerprint.id);
        out.push(Alarm {
            pattern: best.name.clone(),
            reason: best.reason.clone(),
            line: from + 1,
            lines,
            fingerprint,
            fatal: block.fatal,
            allowed,
        });
        i = block.end.max(i + 1);
    }
    out
}

/// The lines a report prints for the alarms: one group per fingerprint, with its
/// pattern, reason, count, console lines, verdict and the first `quote` lines.
pub fn render(alarms: &[Alarm], quote: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for a in alarms {
        if seen.contains(&a.fingerprint.id.as_str()) {
            continue;
        }
        seen.push(&a.fingerprint.id);
        let same: Vec<&Alarm> = alarms
            .iter()
            .filter(|b| b.fingerprint.id == a.fingerprint.id)
            .collect();
        let verdict = match &a.allowed {
            Some(r) => format!("allowed: {r}"),
            None if a.fatal => "FATAL".to_string(),
            None => "FAIL".to_string(),
        };
        let at: Vec<String> = same.iter().map(|b| b.line.to_string()).collect();
        let times = if same.len() > 1 {
            format!(", {} times", same.len())
        } else {
            String::new()
        };
        out.push(format!(
            "kernel alarm {} ({}): {verdict}",
            a.pattern, a.reason
        ));
        out.push(format!("    fingerprint {}", a.fingerprint));
        out.push(format!("    console line {}{times}:", at.join(", ")));
        for l in a.lines.iter().take(quote) {
            out.push(format!("    | {l}"));
        }
        if a.lines.len() > quote {
            out.push(format!("    | ... ({} more lines)", a.lines.len() - quote));
        }
    }
    out
}

#[cfg(test)]
mod tests;
