//! Streaming parser for TAP 13/14 and KTAP v1, including kselftest's output.
//!
//! Behaviour follows `Documentation/dev-tools/ktap.rst` and takes its ideas from
//! KUnit's `tools/testing/kunit/kunit_parser.py` (Linux 6.12): printk timestamps are
//! measured on the version line and stripped from the lines after it, bad input
//! becomes recorded errors and Crashed results, never a panic.
//!
//! # Nesting
//!
//! A subtest block starts with a version line one level deeper than its parent:
//! - indented (KTAP): `  KTAP version 1` / `  TAP version 13` (any indentation; KTAP
//!   uses two spaces per level, KUnit four), every line of the block carries that
//!   indentation, and the parent's result line for it follows, unindented;
//! - `# `-prefixed (kselftest's `runner.sh` wraps each program's output with
//!   `prefix.pl`): `# TAP version 13`, every line of the block starts with `# `.
//!
//! Layers combine (`  # TAP version 13` is a prefixed block inside an indented one).
//! A block whose version line is missing but whose indented plan or result line
//! shows up (TAP 14's `# Subtest:` style) is opened all the same, with an error
//! unless the document is TAP 14.
//!
//! # Attribution of diagnostics
//!
//! `# ` lines that precede a result line at the same level belong to that test;
//! those at the start of a block (before its plan) and at its end (after its last
//! result, e.g. kselftest's `# Totals:` line) belong to the test the block describes;
//! for the document itself they end up in the root's `diagnostics` (so the harness's
//! final `# exit=N` is `root.diagnostic_value("exit")`).
//!
//! # Missing results
//!
//! When a block ends (its parent's result line arrives, or input ends), every number
//! from 1 to its plan (or to its highest number, without a plan) that has no result
//! gets a [`Status::Crashed`] entry, and a block that never got its parent's result
//! line becomes a Crashed test itself. Numbering problems (duplicate, out of order,
//! skipped, beyond the plan), plan mismatches, missing plans and misplaced lines are
//! recorded as [`ParseError`]s with line numbers.

use crate::model::{ParseError, Plan, Status, Test, UnknownLine};

/// Something the parser learnt from one line, in input order, for live reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A test block started (its version line, or its first line when the version
    /// line is missing). `depth` is the block's nesting level: 0 for the document,
    /// 1 for a subtest block of a top-level test, and so on.
    Start {
        /// 1-based input line number.
        line: usize,
        /// Nesting level of the new block.
        depth: usize,
        /// Name from a `# Subtest: name` line just before it, if any.
        name: Option<String>,
        /// `("KTAP", 1)`, `("TAP", 13)`...; `None` when the version line is missing.
        version: Option<(String, u32)>,
    },
    /// A plan line of the block at `depth`.
    Plan {
        /// 1-based input line number.
        line: usize,
        /// Nesting level of the block.
        depth: usize,
        /// The plan.
        plan: Plan,
    },
    /// A finished test: a result line was read (the test carries its subtests, if it
    /// had a block), or the parser concluded that a result is missing (status
    /// [`Status::Crashed`]).
    Result {
        /// 1-based input line number (of the line that completed or closed the test).
        line: usize,
        /// Nesting level of the block the result belongs to: 0 for top-level tests.
        depth: usize,
        /// Names of the enclosing tests, outermost first (`depth` entries), as far as
        /// known: from a `# Subtest:` line, or empty while the parent's result line has
        /// not arrived yet.
        parents: Vec<String>,
        /// The test (boxed: it carries its subtests).
        test: Box<Test>,
    },
    /// A diagnostic line `# text` (text without `# `).
    Diagnostic {
        /// 1-based input line number.
        line: usize,
        /// Nesting level of the block it appeared in.
        depth: usize,
        /// The text.
        text: String,
    },
    /// `Bail out! message`.
    BailOut {
        /// 1-based input line number.
        line: usize,
        /// Nesting level of the block it appeared in.
        depth: usize,
        /// The message.
        message: String,
    },
    /// A problem in the input (also recorded in the tree).
    Error {
        /// Nesting level of the block concerned.
        depth: usize,
        /// The problem, with its line number.
        error: ParseError,
    },
    /// A line that is neither TAP nor a diagnostic (also recorded in the tree).
    Unknown {
        /// 1-based input line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// Parse a complete log at once. Equivalent to feeding every line to a [`Parser`] and
/// calling [`Parser::finish`].
pub fn parse(text: &str) -> Test {
    let mut p = Parser::new();
    for l in text.lines() {
        p.feed(l);
    }
    p.finish()
}

/// At most this many Crashed entries are made up for one block (a plan of 1..4000000000
/// is malformed input, not four billion crashed tests).
const MAX_SYNTHESIZED: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layer {
    Indent(usize),
    Hash,
}

#[derive(Debug, Clone)]
enum Prefix {
    Nothing,
    Timestamp { groups: usize, spaces: usize },
    Literal(String),
}

#[derive(Debug)]
struct Frame {
    layers: Vec<Layer>,
    test: Test,
    pending: Vec<String>,
    /// How many of the parent's pending diagnostics existed when this block opened.
    parent_pending_at_open: usize,
    start_line: usize,
    last_number: u32,
    name: Option<String>,
}

impl Frame {
    fn new(layers: Vec<Layer>, start_line: usize, parent_pending_at_open: usize) -> Frame {
        Frame {
            layers,
            test: Test::empty(),
            pending: Vec::new(),
            parent_pending_at_open,
            start_line,
            last_number: 0,
            name: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResultLine {
    number: u32,
    name: String,
    status: Status,
    reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Version(String, u32),
    Plan(u32, Option<String>),
    Result(ResultLine),
    BailOut(String),
    Diag(String),
    Blank,
    Other,
}

/// Streaming TAP/KTAP parser: feed it lines as they arrive, print the [`Event`]s, and
/// take the final tree with [`finish`](Parser::finish).
///
/// ```
/// let mut p = ktap::Parser::new();
/// let mut events = Vec::new();
/// for l in ["KTAP version 1", "1..2", "ok 1 a", "not ok 2 b # TIMEOUT 30 seconds"] {
///     events.extend(p.feed(l));
/// }
/// assert!(events.iter().any(|e| matches!(e, ktap::Event::Result { .. })));
/// let root = p.finish();
/// assert_eq!(root.subtests[1].status, ktap::Status::Timeout);
/// assert_eq!(root.subtests[1].reason.as_deref(), Some("30 seconds"));
/// ```
#[derive(Debug)]
pub struct Parser {
    line_no: usize,
    started: bool,
    ended: bool,
    tap14: bool,
    prefix: Prefix,
    frames: Vec<Frame>,
    buf: Vec<u8>,
    events: Vec<Event>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser waiting for a version line.
    pub fn new() -> Parser {
        Parser {
            line_no: 0,
            started: false,
            ended: false,
            tap14: false,
            prefix: Prefix::Nothing,
            frames: vec![Frame::new(Vec::new(), 0, 0)],
            buf: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Number of lines read so far.
    pub fn lines_read(&self) -> usize {
        self.line_no
    }

    /// Current nesting depth (0 at the document level).
    pub fn depth(&self) -> usize {
        self.frames.len() - 1
    }

    /// Feed one line (a trailing `\n` or `\r\n` is ignored; a string with several lines
    /// is split). Returns what the line(s) completed. Lines fed after
    /// [`end`](Self::end) are ignored.
    pub fn feed(&mut self, line: &str) -> Vec<Event> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        for l in line.split('\n') {
            self.feed_one(l);
        }
        std::mem::take(&mut self.events)
    }

    /// Feed raw bytes as they come off a serial port or pipe: complete lines are
    /// parsed (invalid UTF-8 replaced), an incomplete last line is kept until more
    /// bytes or [`end`](Self::end) arrive.
    pub fn feed_bytes(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            self.feed_one(&line);
            start = end + 1;
        }
        self.buf.drain(..start);
        std::mem::take(&mut self.events)
    }

    /// Declare the end of input: parse a pending partial line, close every open block
    /// (missing results become Crashed) and return the resulting events. Idempotent.
    pub fn end(&mut self) -> Vec<Event> {
        if !self.ended {
            if !self.buf.is_empty() {
                let line = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                self.feed_one(&line);
            }
            self.ended = true;
            while self.frames.len() > 1 {
                self.close_without_result(0);
            }
            self.finalize_root();
        }
        std::mem::take(&mut self.events)
    }

    /// End the input (see [`end`](Self::end); its events are dropped) and return the
    /// root of the tree.
    pub fn finish(mut self) -> Test {
        self.end();
        self.frames
            .pop()
            .map(|f| f.test)
            .unwrap_or_else(Test::empty)
    }

    fn error(&mut self, frame: usize, line: usize, message: String) {
        let error = ParseError { line, message };
        self.frames[frame].test.errors.push(error.clone());
        self.events.push(Event::Error {
            depth: frame,
            error,
        });
    }

    fn parents(&self, depth: usize) -> Vec<String> {
        self.frames[1..=depth]
            .iter()
            .map(|f| f.name.clone().unwrap_or_default())
            .collect()
    }

    fn feed_one(&mut self, raw: &str) {
        if self.ended {
            return;
        }
        self.line_no += 1;
        let ln = self.line_no;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if !self.started {
            if let Some((pos, kind, num)) = find_version(raw) {
                self.started = true;
                self.prefix = measure_prefix(&raw[..pos]);
                self.check_version(0, ln, &kind, num);
                self.tap14 = kind == "TAP" && num == 14;
                let root = &mut self.frames[0];
                root.start_line = ln;
                root.test.version = Some((kind.clone(), num));
                self.events.push(Event::Start {
                    line: ln,
                    depth: 0,
                    name: None,
                    version: Some((kind, num)),
                });
                return;
            }
            match classify(raw) {
                Kind::Plan(..) | Kind::Result(_) => {
                    self.started = true;
                    self.frames[0].start_line = ln;
                    self.events.push(Event::Start {
                        line: ln,
                        depth: 0,
                        name: None,
                        version: None,
                    });
                    self.error(0, ln, "missing version line".to_string());
                }
                _ => {
                    if !raw.trim().is_empty() {
                        self.unknown(0, ln, raw);
                    }
                    return;
                }
            }
        }
        let text = strip_prefix(&self.prefix, raw).to_string();
        if text.trim().is_empty() {
            return;
        }
        for i in (0..self.frames.len()).rev() {
            if let Some(rem) = unwrap(&text, &self.frames[i].layers) {
                let rem = rem.to_string();
                self.handle(i, ln, &rem);
                return;
            }
        }
    }

    fn check_version(&mut self, frame: usize, ln: usize, kind: &str, num: u32) {
        let ok = match kind {
            "KTAP" => num == 1,
            _ => num == 13 || num == 14,
        };
        if !ok {
            self.error(
                frame,
                ln,
                format!("unsupported version: {kind} version {num}"),
            );
        }
    }

    fn unknown(&mut self, frame: usize, ln: usize, text: &str) {
        self.frames[frame].test.unknown.push(UnknownLine {
            line: ln,
            text: text.to_string(),
        });
        self.events.push(Event::Unknown {
            line: ln,
            text: text.to_string(),
        });
    }

    /// Open a block below frame `i` (closing any deeper blocks first).
    fn open(&mut self, i: usize, ln: usize, layer: Layer, version: Option<(String, u32)>) {
        while self.frames.len() > i + 1 {
            self.close_without_result(ln);
        }
        let parent = &self.frames[i];
        let name = parent
            .pending
            .last()
            .and_then(|d| d.strip_prefix("Subtest:"))
            .map(|n| n.trim().to_string());
        let mut layers = parent.layers.clone();
        layers.push(layer);
        let mut f = Frame::new(layers, ln, parent.pending.len());
        f.name = name.clone();
        f.test.version = version.clone();
        self.frames.push(f);
        let depth = self.frames.len() - 1;
        if let Some((k, n)) = &version {
            self.check_version(depth, ln, k, *n);
        }
        self.events.push(Event::Start {
            line: ln,
            depth,
            name,
            version,
        });
    }

    fn handle(&mut self, i: usize, ln: usize, rem: &str) {
        // A deeper block starting?
        if let Some(v) = rem.strip_prefix("# ").and_then(parse_version) {
            self.open(i, ln, Layer::Hash, Some(v));
            return;
        }
        let indent = rem.len() - rem.trim_start_matches(' ').len();
        if indent > 0 {
            let inner = &rem[indent..];
            if let Some(v) = parse_version(inner) {
                self.open(i, ln, Layer::Indent(indent), Some(v));
                return;
            }
            match classify(inner) {
                Kind::Plan(..) | Kind::Result(_) => {
                    self.open(i, ln, Layer::Indent(indent), None);
                    if !self.tap14 {
                        let d = self.frames.len() - 1;
                        self.error(d, ln, "subtest block without version line".to_string());
                    }
                    let d = self.frames.len() - 1;
                    self.handle(d, ln, inner);
                }
                Kind::Diag(t) => self.diagnostic(i, ln, t),
                _ => self.unknown(i, ln, rem),
            }
            return;
        }
        match classify(rem) {
            Kind::Version(kind, num) => {
                if i == 0 {
                    self.error(
                        0,
                        ln,
                        format!(
                            "unexpected version line '{kind} version {num}' inside the document"
                        ),
                    );
                } else {
                    // Frame i ended without its result line; a sibling block starts.
                    let layer = self.frames[i].layers.last().cloned().unwrap_or(Layer::Hash);
                    while self.frames.len() > i {
                        self.close_without_result(ln);
                    }
                    self.open(i - 1, ln, layer, Some((kind, num)));
                }
            }
            Kind::Plan(count, skip) => self.plan(i, ln, count, skip),
            Kind::Result(r) => self.result(i, ln, r),
            Kind::BailOut(msg) => {
                while self.frames.len() > i + 1 {
                    self.close_without_result(ln);
                }
                let f = &mut self.frames[i];
                if f.test.bail_out.is_none() {
                    f.test.bail_out = Some(msg.clone());
                }
                self.events.push(Event::BailOut {
                    line: ln,
                    depth: i,
                    message: msg,
                });
            }
            Kind::Diag(t) => self.diagnostic(i, ln, t),
            Kind::Blank => {}
            Kind::Other => self.unknown(i, ln, rem),
        }
    }

    fn diagnostic(&mut self, i: usize, ln: usize, text: String) {
        let f = &mut self.frames[i];
        if i > 0 && f.test.plan.is_none() && f.test.subtests.is_empty() {
            if let Some(n) = text.strip_prefix("Subtest:") {
                f.name = Some(n.trim().to_string());
            }
        }
        f.pending.push(text.clone());
        self.events.push(Event::Diagnostic {
            line: ln,
            depth: i,
            text,
        });
    }

    fn plan(&mut self, i: usize, ln: usize, count: u32, skip: Option<String>) {
        let plan = Plan {
            count,
            skip,
            line: ln,
        };
        if let Some(old) = &self.frames[i].test.plan {
            let msg = format!(
                "duplicate plan 1..{count} (first plan at line {})",
                old.line
            );
            self.error(i, ln, msg);
            return;
        }
        let f = &mut self.frames[i];
        if f.test.subtests.is_empty() {
            // Diagnostics before the plan describe the block itself.
            let header = std::mem::take(&mut f.pending);
            f.test.diagnostics.extend(header);
        }
        f.test.plan = Some(plan.clone());
        self.events.push(Event::Plan {
            line: ln,
            depth: i,
            plan,
        });
    }

    /// Check a result number against frame `i`'s sequence and plan.
    fn check_number(&mut self, i: usize, ln: usize, n: u32) {
        let f = &self.frames[i];
        let expected = f.last_number.saturating_add(1);
        let mut errs = Vec::new();
        if f.test.bail_out.is_some() {
            errs.push(format!("result {n} after Bail out!"));
        }
        if n != expected {
            if f.test.subtests.iter().any(|t| t.number == n) {
                errs.push(format!("duplicate test number {n} (expected {expected})"));
            } else if n < expected {
                errs.push(format!(
                    "test number {n} out of order (expected {expected})"
                ));
            } else {
                errs.push(format!(
                    "test number {n} skips ahead (expected {expected}): no result for {}",
                    range(expected, n - 1)
                ));
            }
        }
        if let Some(p) = &f.test.plan {
            if n > p.count || n == 0 {
                errs.push(format!("test number {n} outside plan 1..{}", p.count));
            }
        }
        self.frames[i].last_number = self.frames[i].last_number.max(n);
        for e in errs {
            self.error(i, ln, e);
        }
    }

    fn result(&mut self, i: usize, ln: usize, r: ResultLine) {
        self.check_number(i, ln, r.number);
        let test = if self.frames.len() > i + 1 {
            while self.frames.len() > i + 2 {
                self.close_without_result(ln);
            }
            let mut f = self.frames.pop().expect("frame i+1 exists");
            if !r.name.is_empty() {
                f.name = Some(r.name.clone());
            }
            self.frames.push(f);
            self.finalize_block(i + 1, ln);
            let f = self.frames.pop().expect("frame i+1 exists");
            let mut t = f.test;
            let parent = &mut self.frames[i];
            let mut diags =
                parent.pending[..f.parent_pending_at_open.min(parent.pending.len())].to_vec();
            diags.append(&mut t.diagnostics);
            diags.extend(
                parent.pending[f.parent_pending_at_open.min(parent.pending.len())..]
                    .iter()
                    .cloned(),
            );
            parent.pending.clear();
            t.diagnostics = diags;
            t.reason = r.reason.or_else(|| t.skip_all_reason().map(str::to_string));
            t.name = r.name;
            t.number = r.number;
            t.status = r.status;
            t.line = ln;
            t
        } else {
            let mut t = Test::empty();
            t.diagnostics = std::mem::take(&mut self.frames[i].pending);
            t.name = r.name;
            t.number = r.number;
            t.status = r.status;
            t.reason = r.reason;
            t.line = ln;
            t
        };
        self.push_result(i, ln, test);
    }

    fn push_result(&mut self, i: usize, ln: usize, test: Test) {
        self.frames[i].test.subtests.push(test.clone());
        let parents = self.parents(i);
        self.events.push(Event::Result {
            line: ln,
            depth: i,
            parents,
            test: Box::new(test),
        });
    }

    /// Close the deepest block, which has no result line, as a Crashed test of its
    /// parent. `ln` is the line that revealed it (0 at end of input).
    fn close_without_result(&mut self, ln: usize) {
        let depth = self.frames.len() - 1;
        self.finalize_block(depth, ln);
        let f = self.frames.pop().expect("a block to close");
        let mut t = f.test;
        let parent_idx = depth - 1;
        let number = self.frames[parent_idx].last_number.saturating_add(1);
        self.frames[parent_idx].last_number = number;
        let parent = &mut self.frames[parent_idx];
        let at = f.parent_pending_at_open.min(parent.pending.len());
        let mut diags = parent.pending[..at].to_vec();
        diags.append(&mut t.diagnostics);
        diags.extend(parent.pending[at..].iter().cloned());
        parent.pending.clear();
        t.diagnostics = diags;
        t.name = f.name.unwrap_or_default();
        t.number = number;
        t.status = Status::Crashed;
        t.reason = Some("no result line".to_string());
        t.line = 0;
        let where_ = if ln == 0 {
            "input ended".to_string()
        } else {
            format!("line {ln} closed it")
        };
        t.errors.push(ParseError {
            line: ln,
            message: format!(
                "subtest block started at line {} has no result line ({where_})",
                f.start_line
            ),
        });
        self.events.push(Event::Error {
            depth,
            error: t.errors.last().cloned().expect("just pushed"),
        });
        self.push_result(parent_idx, ln, t);
    }

    /// Check frame `i` against its plan, add Crashed entries for missing numbers,
    /// move trailing diagnostics to the block's own list and sort the results.
    fn finalize_block(&mut self, i: usize, ln: usize) {
        let trailing = std::mem::take(&mut self.frames[i].pending);
        self.frames[i].test.diagnostics.extend(trailing);
        let f = &self.frames[i];
        let results = f.test.subtests.len();
        let max_seen = f.test.subtests.iter().map(|t| t.number).max().unwrap_or(0);
        let mut errs: Vec<(usize, String)> = Vec::new();
        let upto = match &f.test.plan {
            Some(p) if p.skip.is_some() => {
                if results > 0 {
                    errs.push((
                        p.line,
                        format!("plan 1..{} # SKIP, but {results} results", p.count),
                    ));
                }
                0
            }
            Some(p) => p.count,
            None => {
                errs.push((f.start_line, "missing plan".to_string()));
                max_seen
            }
        };
        let mut seen: Vec<u32> = f.test.subtests.iter().map(|t| t.number).collect();
        seen.sort_unstable();
        seen.dedup();
        let present = seen.iter().filter(|&&n| n >= 1 && n <= upto).count() as u64;
        let n_missing = u64::from(upto) - present;
        // `present` <= number of results, so this walk is bounded by the input's size
        // plus MAX_SYNTHESIZED.
        let missing: Vec<u32> = if n_missing <= MAX_SYNTHESIZED {
            (1..=upto)
                .filter(|n| seen.binary_search(n).is_err())
                .collect()
        } else {
            Vec::new()
        };
        if let Some(p) = f.test.plan.as_ref().filter(|p| p.skip.is_none()) {
            if results as u64 != u64::from(p.count) || n_missing > 0 {
                let mut msg = format!("planned {} tests, got {results} results", p.count);
                if !missing.is_empty() {
                    msg.push_str(&format!("; no result for {}", ranges(&missing)));
                }
                errs.push((p.line, msg));
            }
        }
        if n_missing > MAX_SYNTHESIZED {
            errs.push((
                f.start_line,
                format!("{n_missing} results missing: too many to list as Crashed"),
            ));
        }
        let reason = match &f.test.bail_out {
            Some(m) => format!("not run: bailed out: {m}"),
            None => "no result".to_string(),
        };
        for (line, msg) in errs {
            self.error(i, line, msg);
        }
        for n in missing {
            let mut t = Test::empty();
            t.number = n;
            t.status = Status::Crashed;
            t.reason = Some(reason.clone());
            self.push_result(i, ln, t);
        }
        self.frames[i].test.subtests.sort_by_key(|t| t.number);
    }

    fn finalize_root(&mut self) {
        if !self.started {
            let root = &mut self.frames[0].test;
            root.errors.push(ParseError {
                line: 0,
                message: "no KTAP/TAP version line found".to_string(),
            });
            root.status = Status::Crashed;
            return;
        }
        self.finalize_block(0, 0);
        let root = &mut self.frames[0].test;
        let status = if root.skip_all_reason().is_some() {
            Status::Skip
        } else {
            match Status::aggregate(root.subtests.iter().map(|t| t.status)) {
                Some(s) => s,
                None if root.plan.as_ref().is_some_and(|p| p.count == 0) => Status::Skip,
                None => Status::Crashed,
            }
        };
        root.status = if root.bail_out.is_some() && status.is_ok() {
            Status::Fail
        } else {
            status
        };
        root.reason = root
            .skip_all_reason()
            .map(str::to_string)
            .or_else(|| root.bail_out.clone());
    }
}

/// `1..3, 5, 7..9` for a sorted list of numbers.
fn ranges(nums: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
            j += 1;
        }
        out.push(range(nums[i], nums[j]));
        i = j + 1;
    }
    out.join(", ")
}

/// `a` or `a..b`.
fn range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}..{b}")
    }
}

/// Remove the layers of a block from `line`; `None` if the line is not inside it.
fn unwrap<'a>(line: &'a str, layers: &[Layer]) -> Option<&'a str> {
    let mut s = line;
    for l in layers {
        match l {
            Layer::Indent(n) => {
                let b = s.as_bytes();
                if b.len() >= *n && b[..*n].iter().all(|&c| c == b' ') {
                    s = &s[*n..];
                } else {
                    return None;
                }
            }
            Layer::Hash => {
                if let Some(r) = s.strip_prefix("# ") {
                    s = r;
                } else if s.trim_end() == "#" {
                    s = "";
                } else {
                    return None;
                }
            }
        }
    }
    Some(s)
}

/// `KTAP version N` / `TAP version N`, exactly (trailing whitespace allowed).
fn parse_version(s: &str) -> Option<(String, u32)> {
    let s = s.trim_end();
    let (kind, rest) = if let Some(r) = s.strip_prefix("KTAP version ") {
        ("KTAP", r)
    } else if let Some(r) = s.strip_prefix("TAP version ") {
        ("TAP", r)
    } else {
        return None;
    };
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind.to_string(), rest.parse().ok()?))
}

/// A version line anywhere in `raw`: (byte offset, kind, number).
fn find_version(raw: &str) -> Option<(usize, String, u32)> {
    for pat in ["KTAP version ", "TAP version "] {
        if let Some(pos) = raw.find(pat) {
            if let Some((k, n)) = parse_version(&raw[pos..]) {
                return Some((pos, k, n));
            }
        }
    }
    None
}

/// Leading bracket groups of a printk prefix (`[    1.234567]`, `[    T1]`), then the
/// rest.
fn strip_bracket_group(s: &str) -> Option<&str> {
    let r = s.strip_prefix('[')?;
    let end = r.find(']')?;
    let inner = &r[..end];
    if inner.trim().is_empty() || inner.len() > 32 || inner.contains('[') {
        return None;
    }
    Some(&r[end + 1..])
}

fn measure_prefix(prefix: &str) -> Prefix {
    if prefix.is_empty() {
        return Prefix::Nothing;
    }
    let mut s = prefix;
    let mut groups = 0;
    while let Some(r) = strip_bracket_group(s) {
        s = r;
        groups += 1;
    }
    if groups > 0 && s.bytes().all(|b| b == b' ') {
        Prefix::Timestamp {
            groups,
            spaces: s.len(),
        }
    } else {
        Prefix::Literal(prefix.to_string())
    }
}

fn strip_prefix<'a>(prefix: &Prefix, line: &'a str) -> &'a str {
    match prefix {
        Prefix::Nothing => line,
        Prefix::Literal(p) => line.strip_prefix(p.as_str()).unwrap_or(line),
        Prefix::Timestamp { groups, spaces } => {
            let mut s = line;
            for _ in 0..*groups {
                match strip_bracket_group(s) {
                    Some(r) => s = r,
                    None => return line,
                }
            }
            let have = s.len() - s.trim_start_matches(' ').len();
            &s[have.min(*spaces)..]
        }
    }
}

fn classify(s: &str) -> Kind {
    if s.trim().is_empty() {
        return Kind::Blank;
    }
    if let Some((k, n)) = parse_version(s) {
        return Kind::Version(k, n);
    }
    if let Some((count, skip)) = parse_plan(s) {
        return Kind::Plan(count, skip);
    }
    if let Some(r) = parse_result(s) {
        return Kind::Result(r);
    }
    if let Some(m) = s.strip_prefix("Bail out!") {
        return Kind::BailOut(m.trim().to_string());
    }
    if let Some(d) = s.strip_prefix('#') {
        let d = d.strip_prefix(' ').unwrap_or(d);
        return Kind::Diag(d.trim_end().to_string());
    }
    Kind::Other
}

/// `1..N`, optionally followed by `# SKIP reason` or another comment.
fn parse_plan(s: &str) -> Option<(u32, Option<String>)> {
    let rest = s.strip_prefix("1..")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let count: u32 = rest[..digits].parse().ok()?;
    let tail = &rest[digits..];
    if tail.trim().is_empty() {
        return Some((count, None));
    }
    let comment = tail.trim_start().strip_prefix('#')?.trim();
    let (word, reason) = split_word(comment);
    if word.trim_end_matches(':').eq_ignore_ascii_case("SKIP") {
        Some((count, Some(reason.to_string())))
    } else {
        Some((count, None))
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(p) => (&s[..p], s[p..].trim()),
        None => (s, ""),
    }
}

fn directive(word: &str) -> Option<Status> {
    let w = word.trim_end_matches(':');
    [
        ("SKIP", Status::Skip),
        ("TODO", Status::Todo),
        ("XFAIL", Status::Xfail),
        ("XPASS", Status::Xpass),
        ("TIMEOUT", Status::Timeout),
        ("ERROR", Status::Error),
    ]
    .into_iter()
    .find(|(k, _)| w.eq_ignore_ascii_case(k))
    .map(|(_, s)| s)
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `ok|not ok N [- ][description][ # [DIRECTIVE] [text]]`.
fn parse_result(s: &str) -> Option<ResultLine> {
    let (ok, rest) = if let Some(r) = s.strip_prefix("not ok") {
        (false, r)
    } else {
        (true, s.strip_prefix("ok")?)
    };
    let after_ws = rest.trim_start_matches([' ', '\t']);
    if after_ws.len() == rest.len() {
        return None;
    }
    let digits = after_ws.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number: u32 = after_ws[..digits].parse().ok()?;
    let tail = &after_ws[digits..];
    if !(tail.is_empty() || tail.starts_with([' ', '\t', '#'])) {
        return None;
    }
    let tail = tail.trim_start();
    let tail = if let Some(t) = tail.strip_prefix("- ") {
        t
    } else if tail == "-" {
        ""
    } else {
        tail
    };
    // The comment starts at the first '#' at the start or after whitespace.
    let hash = tail.char_indices().find(|&(i, c)| {
        c == '#'
            && (i == 0
                || tail[..i]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_whitespace))
    });
    let base = if ok { Status::Pass } else { Status::Fail };
    let (desc, comment) = match hash {
        Some((i, _)) => (tail[..i].trim(), Some(tail[i + 1..].trim())),
        None => (tail.trim(), None),
    };
    let (name, status, reason) = match comment {
        None => (desc.to_string(), base, None),
        Some(c) => {
            let (word, text) = split_word(c);
            match directive(word) {
                Some(st) if desc.is_empty() => (text.to_string(), st, non_empty(text)),
                Some(st) => (desc.to_string(), st, non_empty(text)),
                None => (desc.to_string(), base, non_empty(c)),
            }
        }
    };
    Some(ResultLine {
        number,
        name,
        status,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ResultLine {
        parse_result(s).unwrap_or_else(|| panic!("not a result line: {s}"))
    }

    #[test]
    fn result_line_forms() {
        let x = r("ok 1 test_simple");
        assert_eq!(
            (x.number, x.name.as_str(), x.status),
            (1, "test_simple", Status::Pass)
        );
        assert_eq!(x.reason, None);

        let x = r("not ok 12 - dash name");
        assert_eq!(
            (x.number, x.name.as_str(), x.status),
            (12, "dash name", Status::Fail)
        );

        // kselftest: directive before the name.
        let x = r("ok 3 # SKIP Huge page not supported");
        assert_eq!(x.status, Status::Skip);
        assert_eq!(x.name, "Huge page not supported");
        assert_eq!(x.reason.as_deref(), Some("Huge page not supported"));

        // KTAP: directive after the name.
        let x = r("ok 3 name # SKIP dependency missing");
        assert_eq!((x.name.as_str(), x.status), ("name", Status::Skip));
        assert_eq!(x.reason.as_deref(), Some("dependency missing"));

        let x = r("not ok 6 # error setup");
        assert_eq!((x.name.as_str(), x.status), ("setup", Status::Error));

        let x = r("not ok 3 suite # TIMEOUT 300 seconds");
        assert_eq!(x.status, Status::Timeout);
        assert_eq!(x.reason.as_deref(), Some("300 seconds"));

        let x = r("ok 4 # xfail known");
        assert_eq!(x.status, Status::Xfail);
        let x = r("not ok 5 # XPASS odd");
        assert_eq!(x.status, Status::Xpass);
        let x = r("not ok 5 t # todo later");
        assert_eq!(x.status, Status::Todo);

        // Not a directive: plain comment, status from ok/not ok.
        let x = r("ok 5 check return code # rcode=0");
        assert_eq!(
            (x.name.as_str(), x.status),
            ("check return code", Status::Pass)
        );
        assert_eq!(x.reason.as_deref(), Some("rcode=0"));
        let x = r("not ok 2 selftests: mm: x # exit=1");
        assert_eq!(
            (x.name.as_str(), x.status),
            ("selftests: mm: x", Status::Fail)
        );
        assert_eq!(x.reason.as_deref(), Some("exit=1"));

        // '#' inside a word does not start a comment.
        let x = r("ok 1 test#1");
        assert_eq!(x.name, "test#1");

        let x = r("ok 2 # SKIP");
        assert_eq!(
            (x.name.as_str(), x.status, x.reason),
            ("", Status::Skip, None)
        );

        assert!(parse_result("ok").is_none());
        assert!(parse_result("okay 1").is_none());
        assert!(parse_result("ok x").is_none());
        assert!(parse_result("ok 1x").is_none());
        assert!(parse_result("not ok").is_none());
    }

    #[test]
    fn plan_forms() {
        assert_eq!(parse_plan("1..19"), Some((19, None)));
        assert_eq!(
            parse_plan("1..0 # SKIP PAGEMAP_SCAN not supported"),
            Some((0, Some("PAGEMAP_SCAN not supported".to_string())))
        );
        assert_eq!(parse_plan("1..0 # skip"), Some((0, Some(String::new()))));
        assert_eq!(parse_plan("1..3 # comment"), Some((3, None)));
        assert_eq!(parse_plan("1..x"), None);
        assert_eq!(parse_plan("1..3abc"), None);
        assert_eq!(parse_plan("2..3"), None);
    }

    #[test]
    fn prefixes() {
        let p = measure_prefix("[    1.234567] ");
        assert!(matches!(
            p,
            Prefix::Timestamp {
                groups: 1,
                spaces: 1
            }
        ));
        assert_eq!(strip_prefix(&p, "[   12.000001]   ok 1 x"), "  ok 1 x");
        assert_eq!(strip_prefix(&p, "no stamp"), "no stamp");
        let p = measure_prefix("[    1.234567][    T1] ");
        assert!(matches!(
            p,
            Prefix::Timestamp {
                groups: 2,
                spaces: 1
            }
        ));
        assert_eq!(strip_prefix(&p, "[    1.3][    T1] ok 1 x"), "ok 1 x");
        let p = measure_prefix("guest: ");
        assert_eq!(strip_prefix(&p, "guest: ok 1 x"), "ok 1 x");
    }

    #[test]
    fn unwrap_layers() {
        let l = vec![Layer::Indent(2), Layer::Hash];
        assert_eq!(unwrap("  # ok 1 a", &l), Some("ok 1 a"));
        assert_eq!(unwrap("  #", &l), Some(""));
        assert_eq!(unwrap("  ok 1 a", &l), None);
        assert_eq!(unwrap(" # ok", &l), None);
    }
}
