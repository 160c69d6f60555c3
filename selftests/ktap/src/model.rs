//! The result tree the parser builds: [`Test`], [`Status`], [`Plan`], [`StatusCounts`].

use std::fmt;

/// Final status of one test, as read from its result line (or inferred when the line is
/// missing).
///
/// Directives map as follows (case-insensitive): `SKIP` -> [`Status::Skip`], `TODO` ->
/// [`Status::Todo`], `XFAIL` -> [`Status::Xfail`], `XPASS` -> [`Status::Xpass`],
/// `TIMEOUT` -> [`Status::Timeout`], `ERROR` -> [`Status::Error`]; without a directive
/// `ok` is [`Status::Pass`] and `not ok` is [`Status::Fail`]. [`Status::Crashed`] is
/// never printed by a test: the parser assigns it to a result that the plan promised
/// but that never arrived, and to a subtest block that never got its result line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// `ok` without a directive.
    Pass,
    /// `not ok` without a directive.
    Fail,
    /// `# SKIP`.
    Skip,
    /// `# XFAIL`: failed, as expected.
    Xfail,
    /// `# XPASS`: passed although expected to fail (a failure of expectations).
    Xpass,
    /// `# TODO` (TAP; discouraged in KTAP).
    Todo,
    /// `# TIMEOUT`: killed by a runner's timeout.
    Timeout,
    /// `# ERROR` (kselftest prints `# error`).
    Error,
    /// No result where one was expected: the output was cut short (panic, hang,
    /// killed program) or a number was skipped.
    Crashed,
}

impl Status {
    /// All variants, in declaration order.
    pub const ALL: [Status; 9] = [
        Status::Pass,
        Status::Fail,
        Status::Skip,
        Status::Xfail,
        Status::Xpass,
        Status::Todo,
        Status::Timeout,
        Status::Error,
        Status::Crashed,
    ];

    /// Upper-case name: `PASS`, `FAIL`, `SKIP`, `XFAIL`, `XPASS`, `TODO`, `TIMEOUT`,
    /// `ERROR`, `CRASHED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
            Status::Xfail => "XFAIL",
            Status::Xpass => "XPASS",
            Status::Todo => "TODO",
            Status::Timeout => "TIMEOUT",
            Status::Error => "ERROR",
            Status::Crashed => "CRASHED",
        }
    }

    /// True for the statuses that do not make a run fail: Pass, Skip, Xfail, Todo.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Status::Pass | Status::Skip | Status::Xfail | Status::Todo
        )
    }

    /// True for Fail, Xpass, Timeout, Error and Crashed (the negation of [`is_ok`](Self::is_ok)).
    pub fn is_failure(self) -> bool {
        !self.is_ok()
    }

    /// The status of a test made of `statuses`, bubbled up the way KTAP describes: any
    /// Crashed -> Crashed; else any failure (Fail, Xpass, Timeout, Error) -> Fail; else
    /// anything that ran (Pass, Xfail, Todo) -> Pass; else (only skips) -> Skip. `None`
    /// when `statuses` is empty.
    pub fn aggregate<I: IntoIterator<Item = Status>>(statuses: I) -> Option<Status> {
        let mut any = false;
        let (mut crashed, mut failed, mut ran) = (false, false, false);
        for s in statuses {
            any = true;
            match s {
                Status::Crashed => crashed = true,
                Status::Fail | Status::Xpass | Status::Timeout | Status::Error => failed = true,
                Status::Pass | Status::Xfail | Status::Todo => ran = true,
                Status::Skip => {}
            }
        }
        if !any {
            None
        } else if crashed {
            Some(Status::Crashed)
        } else if failed {
            Some(Status::Fail)
        } else if ran {
            Some(Status::Pass)
        } else {
            Some(Status::Skip)
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plan line: `1..N`, or the suite-level skip `1..0 # SKIP reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// N in `1..N`.
    pub count: u32,
    /// `Some(reason)` when the plan carries a SKIP directive (`1..0 # SKIP reason`); the
    /// reason is empty when none was given.
    pub skip: Option<String>,
    /// 1-based input line number of the plan line.
    pub line: usize,
}

/// A problem found in the input: numbering, plan mismatch, missing lines, misplaced
/// lines. Never fatal: parsing goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based input line number the problem was found at (0 when it concerns the end
    /// of input).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "end of input: {}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// A line the parser did not understand, kept for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLine {
    /// 1-based input line number.
    pub line: usize,
    /// The line as received (timestamp prefix removed, no line terminator).
    pub text: String,
}

/// One test: a leaf result, a test with nested subtests, or the root of a document.
///
/// The root (returned by [`Parser::finish`](crate::Parser::finish) and
/// [`parse`](crate::parse)) has `number == 0`, an empty name, and as status the
/// aggregate of its subtests (see [`Status::aggregate`]); Skip for a document whose
/// plan is `1..0 # SKIP`, Crashed when no TAP was found at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    /// Description from the result line (`ok 1 name`), without a leading `- `. For the
    /// kselftest form `ok 3 # SKIP text`, where the description is empty and the text
    /// follows the directive, `name` is that text (and so is `reason`). For a subtest
    /// block that never got a result line, the name of a `# Subtest: name` header, if
    /// any.
    pub name: String,
    /// Number from the result line; for synthesized Crashed entries the missing number.
    pub number: u32,
    /// Final status.
    pub status: Status,
    /// Text after the directive (`# SKIP reason` -> `reason`), or after `#` when there
    /// is no directive (`ok 5 x # rcode=0` -> `rcode=0`); for a test whose result line
    /// has none but whose subtest plan is `1..0 # SKIP reason`, that reason.
    pub reason: Option<String>,
    /// Diagnostic lines (`# text`, stored without `# `) that belong to this test: those
    /// just before its result line at its parent's level, and for a test with a
    /// subtest block, those inside the block that precede its plan or follow its last
    /// result (e.g. kselftest's `Totals:` line).
    pub diagnostics: Vec<String>,
    /// Nested results, in number order.
    pub subtests: Vec<Test>,
    /// Plan of the nested block, if any.
    pub plan: Option<Plan>,
    /// Problems found in this test's block (or on its result line).
    pub errors: Vec<ParseError>,
    /// `Some(message)` when the nested block contained `Bail out! message`.
    pub bail_out: Option<String>,
    /// Version line of the nested block: `("KTAP", 1)`, `("TAP", 13)`...
    pub version: Option<(String, u32)>,
    /// Lines inside this test's block that were neither TAP nor diagnostics.
    pub unknown: Vec<UnknownLine>,
    /// 1-based input line number of the result line (0 when there was none).
    pub line: usize,
}

impl Test {
    pub(crate) fn empty() -> Test {
        Test {
            name: String::new(),
            number: 0,
            status: Status::Crashed,
            reason: None,
            diagnostics: Vec::new(),
            subtests: Vec::new(),
            plan: None,
            errors: Vec::new(),
            bail_out: None,
            version: None,
            unknown: Vec::new(),
            line: 0,
        }
    }

    /// True when the test has no subtests.
    pub fn is_leaf(&self) -> bool {
        self.subtests.is_empty()
    }

    /// The reason of a suite-level skip: `Some(reason)` when this test's block has the
    /// plan `1..0 # SKIP reason` (reason may be empty).
    pub fn skip_all_reason(&self) -> Option<&str> {
        self.plan.as_ref().and_then(|p| p.skip.as_deref())
    }

    /// Counts of the statuses of all leaves below this test, recursively (a test with
    /// subtests is not counted itself; a leaf test, including a suite skipped as a
    /// whole or timed out before its first result, is). A leaf called on itself counts
    /// itself.
    pub fn counts(&self) -> StatusCounts {
        let mut c = StatusCounts::default();
        if self.is_leaf() {
            c.add(self.status);
        } else {
            for t in &self.subtests {
                c.merge(&t.counts());
            }
        }
        c
    }

    /// Counts of the statuses of the direct subtests only.
    pub fn direct_counts(&self) -> StatusCounts {
        let mut c = StatusCounts::default();
        for t in &self.subtests {
            c.add(t.status);
        }
        c
    }

    /// The first direct subtest named `name`.
    pub fn subtest(&self, name: &str) -> Option<&Test> {
        self.subtests.iter().find(|t| t.name == name)
    }

    /// The direct subtest with number `number` (the first one if numbers repeat).
    pub fn subtest_by_number(&self, number: u32) -> Option<&Test> {
        self.subtests.iter().find(|t| t.number == number)
    }

    /// All tests below this one, depth first, parents before their subtests.
    pub fn descendants(&self) -> Vec<&Test> {
        let mut out = Vec::new();
        fn walk<'a>(t: &'a Test, out: &mut Vec<&'a Test>) {
            for s in &t.subtests {
                out.push(s);
                walk(s, out);
            }
        }
        walk(self, &mut out);
        out
    }

    /// All leaves below this one (this test itself if it is a leaf).
    pub fn leaves(&self) -> Vec<&Test> {
        if self.is_leaf() {
            return vec![self];
        }
        self.descendants()
            .into_iter()
            .filter(|t| t.is_leaf())
            .collect()
    }

    /// Every parse error of this test and of all tests below it.
    pub fn all_errors(&self) -> Vec<&ParseError> {
        let mut out: Vec<&ParseError> = self.errors.iter().collect();
        for s in &self.subtests {
            out.extend(s.all_errors());
        }
        out
    }

    /// The value of the last diagnostic of the form `key=value` (e.g. `# exit=1` ->
    /// `diagnostic_value("exit") == Some("1")`).
    pub fn diagnostic_value(&self, key: &str) -> Option<&str> {
        self.diagnostics.iter().rev().find_map(|d| {
            d.strip_prefix(key)
                .and_then(|r| r.strip_prefix('='))
                .map(str::trim)
        })
    }

    /// kselftest's `# Totals: pass:P fail:F xfail:X xpass:Y skip:S error:E` line, if
    /// one is among this test's diagnostics (the last one wins).
    pub fn ksft_totals(&self) -> Option<crate::KsftCounts> {
        self.diagnostics
            .iter()
            .rev()
            .find_map(|d| crate::KsftCounts::parse_totals(d))
    }
}

/// Number of tests per [`Status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// [`Status::Pass`].
    pub pass: u32,
    /// [`Status::Fail`].
    pub fail: u32,
    /// [`Status::Skip`].
    pub skip: u32,
    /// [`Status::Xfail`].
    pub xfail: u32,
    /// [`Status::Xpass`].
    pub xpass: u32,
    /// [`Status::Todo`].
    pub todo: u32,
    /// [`Status::Timeout`].
    pub timeout: u32,
    /// [`Status::Error`].
    pub error: u32,
    /// [`Status::Crashed`].
    pub crashed: u32,
}

impl StatusCounts {
    fn slot(&mut self, s: Status) -> &mut u32 {
        match s {
            Status::Pass => &mut self.pass,
            Status::Fail => &mut self.fail,
            Status::Skip => &mut self.skip,
            Status::Xfail => &mut self.xfail,
            Status::Xpass => &mut self.xpass,
            Status::Todo => &mut self.todo,
            Status::Timeout => &mut self.timeout,
            Status::Error => &mut self.error,
            Status::Crashed => &mut self.crashed,
        }
    }

    /// Count one more `s`.
    pub fn add(&mut self, s: Status) {
        *self.slot(s) += 1;
    }

    /// The count for `s`.
    pub fn get(&self, s: Status) -> u32 {
        let mut c = *self;
        *c.slot(s)
    }

    /// Add every count of `other`.
    pub fn merge(&mut self, other: &StatusCounts) {
        for s in Status::ALL {
            *self.slot(s) += other.get(s);
        }
    }

    /// Sum of all counts.
    pub fn total(&self) -> u32 {
        Status::ALL.iter().map(|&s| self.get(s)).sum()
    }

    /// Sum of the counts of failing statuses (see [`Status::is_failure`]).
    pub fn failures(&self) -> u32 {
        Status::ALL
            .iter()
            .filter(|s| s.is_failure())
            .map(|&s| self.get(s))
            .sum()
    }
}

impl fmt::Display for StatusCounts {
    /// `pass:P fail:F skip:S ...`, listing only the non-zero counts (`none` if all are 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in Status::ALL {
            let n = self.get(s);
            if n > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{}:{}", s.as_str().to_ascii_lowercase(), n)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}
