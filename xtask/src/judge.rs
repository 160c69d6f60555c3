//! The verdict, computed once: the results port's lines go through the ktap crate's
//! streaming parser as they arrive ([`Judge::feed`]); each top-level suite is judged
//! against the plan's expectations when its result line comes in (the live view),
//! and [`Judge::finish`] judges the whole run, with the console scanned for kernel
//! trouble and the boot's facts (watchdog, KVM). A saved run is replayed through the
//! same path, line by line.
//!
//! Statuses are [`ktap::Status`] throughout; rendering lives in [`crate::report`],
//! comparison in [`crate::compare`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ktap::{Event, Status, Test};
use serde::{Serialize, Serializer};

use crate::plan::{BootFacts, RunPlan};
use crate::targets::Expect;
use crate::util::Exit;

/// The guest init's marker lines on the results port, read with the protocol
/// crate's parser (`guest_protocol::Marker`), the one owner of their shapes.
pub mod markers {
    use guest_protocol::Marker;

    /// Lines of the init's own boot report (`# init: ...`), kept for the summary.
    pub const INIT_PREFIX: &str = "init:";

    /// `# exit=N`: the init's last line; its absence means the run was cut short.
    pub fn guest_exit(root_diagnostics: &[String]) -> Option<i32> {
        root_diagnostics
            .iter()
            .find_map(|d| match Marker::parse_diagnostic(d) {
                Some(Marker::Exit(n)) => Some(n),
                _ => None,
            })
    }

    /// The clocksource of the init's boot line (`# init: kernel ... clocksource=X ...`).
    pub fn clocksource(diagnostic: &str) -> Option<String> {
        match Marker::parse_diagnostic(diagnostic) {
            Some(Marker::Boot { clocksource, .. }) => Some(clocksource),
            _ => None,
        }
    }

    /// A suite's end (`# <suite>: <ms> ms <how>`, unindented): (suite, guest ms).
    pub fn suite_end_line(line: &str) -> Option<(String, u64)> {
        match Marker::parse(line) {
            Some(Marker::SuiteEnd(e)) => Some((e.name, e.ms)),
            _ => None,
        }
    }

    /// The same, from a diagnostic's text (without `# `).
    pub fn suite_end(diagnostic: &str) -> Option<(String, u64)> {
        match Marker::parse_diagnostic(diagnostic) {
            Some(Marker::SuiteEnd(e)) => Some((e.name, e.ms)),
            _ => None,
        }
    }
}

fn status_str<S: Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// One test as judged against expectations.
#[derive(Clone, Debug, Serialize)]
pub struct TestVerdict {
    pub suite: String,
    pub name: String,
    #[serde(serialize_with = "status_str")]
    pub status: Status,
    /// The directive reason or first diagnostic (why it skipped/failed).
    pub reason: String,
    /// Expected by the target (pass, expected fail, expected skip).
    pub as_expected: bool,
    /// What the target says about this test, if anything.
    pub expectation: Option<String>,
    /// With `--repeat`: the verdict differed between the repetitions
    /// (`17/20 passed`). A flaky test is never as expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky: Option<String>,
    /// The suite's mismatch line this test produced (to tell a test's mismatches
    /// from its suite's when repetitions are merged).
    #[serde(skip)]
    mismatch: Option<String>,
}

/// One suite as judged.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteVerdict {
    pub name: String,
    /// The suite's own result; `CRASHED` when it never reported.
    #[serde(serialize_with = "status_str")]
    pub status: Status,
    pub pass: u32,
    pub fail: u32,
    pub skip: u32,
    pub xfail: u32,
    pub crashed: u32,
    pub expected_failures: u32,
    /// How many times the suite ran in this boot (`--repeat`); the counts above are
    /// summed over them.
    pub repetitions: u32,
    /// Tests whose verdict differed between the repetitions.
    pub flaky: u32,
    /// Whole-suite skip reason (`1..0 # SKIP reason`).
    pub skipped_suite: Option<String>,
    /// Guest time the suite took, from the init's diagnostic.
    pub guest_ms: Option<u64>,
    pub mismatches: Vec<String>,
}

impl SuiteVerdict {
    fn new(name: &str, status: Status) -> SuiteVerdict {
        SuiteVerdict {
            name: name.to_string(),
            status,
            pass: 0,
            fail: 0,
            skip: 0,
            xfail: 0,
            crashed: 0,
            expected_failures: 0,
            repetitions: 1,
            flaky: 0,
            skipped_suite: None,
            guest_ms: None,
            mismatches: Vec::new(),
        }
    }

    /// The table's verdict column.
    pub fn verdict(&self) -> String {
        let times = if self.repetitions > 1 {
            format!(", {} repetitions", self.repetitions)
        } else {
            String::new()
        };
        self.verdict_once() + &times
    }

    fn verdict_once(&self) -> String {
        if self.flaky > 0 {
            format!(
                "{} unexpected ({} flaky)",
                self.mismatches.len(),
                self.flaky
            )
        } else if !self.mismatches.is_empty() {
            format!("{} unexpected", self.mismatches.len())
        } else if let Some(why) = &self.skipped_suite {
            format!("skipped as expected: {why}")
        } else if self.expected_failures > 0 {
            format!("as expected ({} expected failures)", self.expected_failures)
        } else {
            "as expected".into()
        }
    }
}

/// A whole run, judged.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Judgement {
    pub suites: Vec<SuiteVerdict>,
    pub tests: Vec<TestVerdict>,
    /// Kernel alarms that fail the run, rendered: pattern, fingerprint, quoted lines.
    pub console_problems: Vec<String>,
    /// Every kernel alarm on the console (configs/alarms.yaml), with its fingerprint;
    /// allowed ones carry the allowlist's reason.
    pub alarms: Vec<crate::alarms::Alarm>,
    pub panicked: bool,
    /// The results ended without the init's `# exit=` line.
    pub cut_short: bool,
    pub guest_exit: Option<i32>,
    pub init_info: Vec<String>,
    pub parse_errors: Vec<String>,
    /// The host watchdog killed QEMU.
    pub watchdog_fired: bool,
    /// `--require-kvm` and the guest did not run under KVM: why.
    pub kvm_required: Option<String>,
    /// Guest time of each suite run, in run order (repeated suites included).
    pub suite_times: Vec<(String, u64)>,
    /// Upstream's C programs against their Rust ports, test by test.
    pub c_vs_rust: Vec<crate::crosscheck::Comparison>,
}

impl Judgement {
    pub fn mismatches(&self) -> usize {
        self.suites.iter().map(|s| s.mismatches.len()).sum()
    }

    /// Unexplained C-vs-Rust differences and stale explanations.
    pub fn c_vs_rust_problems(&self) -> usize {
        self.c_vs_rust.iter().map(|c| c.problems.len()).sum()
    }

    /// Takes an unexpected SKIP of `suite`'s test `name` as expected, with `why`: for a
    /// caller that knows more than the target's list (`bench` accepts an approach that
    /// its probe found absent). Returns whether there was such a skip.
    pub fn accept_skip(&mut self, suite: &str, name: &str, why: &str) -> bool {
        let Some(t) = self.tests.iter_mut().find(|t| {
            t.suite == suite && t.name == name && t.status == Status::Skip && !t.as_expected
        }) else {
            return false;
        };
        t.as_expected = true;
        t.expectation = Some(why.to_string());
        if let Some(m) = t.mismatch.take() {
            if let Some(s) = self.suites.iter_mut().find(|s| s.name == suite) {
                if let Some(i) = s.mismatches.iter().position(|x| *x == m) {
                    s.mismatches.remove(i);
                }
            }
        }
        true
    }

    /// Tests whose verdict differed between repetitions (each is also a mismatch).
    pub fn flaky(&self) -> usize {
        self.suites.iter().map(|s| s.flaky as usize).sum()
    }

    /// The exit code the run's results earn.
    pub fn exit(&self) -> Exit {
        if self.kvm_required.is_some() {
            Exit::Setup
        } else if self.panicked || self.cut_short || self.watchdog_fired {
            Exit::Crash
        } else if self.mismatches() > 0
            || self.c_vs_rust_problems() > 0
            || !self.console_problems.is_empty()
            || !self.parse_errors.is_empty()
        {
            Exit::Mismatch
        } else {
            Exit::Ok
        }
    }

    /// One line saying why the exit code is what it is.
    pub fn headline(&self) -> String {
        if let Some(why) = &self.kvm_required {
            return format!("set-up error: {why}");
        }
        let mut crash = Vec::new();
        if self.panicked {
            crash.push("the kernel panicked");
        }
        if self.watchdog_fired {
            crash.push("the watchdog killed QEMU");
        }
        if self.cut_short {
            crash.push("the results were cut short");
        }
        if !crash.is_empty() {
            return format!("crash: {}", crash.join(", "));
        }
        let mut bad = Vec::new();
        if self.flaky() > 0 {
            bad.push(format!(
                "{} unexpected result(s), {} of them flaky",
                self.mismatches(),
                self.flaky()
            ));
        } else if self.mismatches() > 0 {
            bad.push(format!("{} unexpected result(s)", self.mismatches()));
        }
        if self.c_vs_rust_problems() > 0 {
            bad.push(crate::crosscheck::headline(&self.c_vs_rust));
        }
        if !self.console_problems.is_empty() {
            bad.push(format!(
                "{} kernel console problem(s)",
                self.console_problems.len()
            ));
        }
        if !self.parse_errors.is_empty() {
            bad.push(format!("{} results error(s)", self.parse_errors.len()));
        }
        if bad.is_empty() {
            "ok: every result as the target expects".into()
        } else {
            format!("mismatch: {}", bad.join(", "))
        }
    }

    /// The clocksource the guest init reported (`# init: ... clocksource=<name> ...`).
    pub fn guest_clocksource(&self) -> Option<String> {
        self.init_info.iter().find_map(|l| markers::clocksource(l))
    }
}

/// Something to show while the results arrive.
pub enum Progress {
    /// A raw results line (as received).
    Line(String),
    /// A top-level suite finished, judged.
    Suite(SuiteVerdict),
}

/// The streaming judge of one run.
pub struct Judge<'p> {
    plan: &'p RunPlan,
    parser: ktap::Parser,
    suite_times: Vec<(String, u64)>,
}

impl<'p> Judge<'p> {
    pub fn new(plan: &'p RunPlan) -> Judge<'p> {
        Judge {
            plan,
            parser: ktap::Parser::new(),
            suite_times: Vec::new(),
        }
    }

    /// Feeds one results line; returns what to show for it.
    pub fn feed(&mut self, line: &str) -> Vec<Progress> {
        let mut out = vec![Progress::Line(line.to_string())];
        // The init's timing lines are unindented: a suite's own `# x: N ms` is not one.
        if let Some(t) = markers::suite_end_line(line) {
            self.suite_times.push(t);
        }
        for ev in self.parser.feed(line) {
            if let Event::Result { depth: 0, test, .. } = ev {
                if let Some(e) = self.plan.expect.get(&test.name) {
                    let (v, _) = judge_suite(&test.name, Some(&test), e, &[]);
                    out.push(Progress::Suite(v));
                }
            }
        }
        out
    }

    /// Judges the whole run: the parsed results, the console and the boot's facts.
    pub fn finish(self, console: &str, boot: Option<&BootFacts>) -> Judgement {
        let root = self.parser.finish();
        let mut a = Judgement {
            suite_times: self.suite_times,
            ..Default::default()
        };
        a.alarms = scan_alarms(console, &self.plan.alarms_allow);
        let failing: Vec<crate::alarms::Alarm> =
            a.alarms.iter().filter(|x| x.fails()).cloned().collect();
        a.console_problems = group_rendered(&failing);
        a.panicked = a.alarms.iter().any(|x| x.fatal);
        a.guest_exit = markers::guest_exit(&root.diagnostics);
        a.cut_short = a.guest_exit.is_none();
        a.init_info = root
            .diagnostics
            .iter()
            .filter(|d| d.starts_with(markers::INIT_PREFIX))
            .cloned()
            .collect();
        // Errors inside a suite's block are that suite's (judge_suite); these are the
        // results document's own.
        a.parse_errors = root
            .errors
            .iter()
            .map(|e| format!("results line {}: {}", e.line, e.message))
            .collect();
        for name in self.plan.unique_suites() {
            let expect = self.plan.expect.get(&name).cloned().unwrap_or_default();
            // Every run of the suite in this boot (`--repeat`, or a list naming it
            // twice): each judged alone, then merged; one run is judged as it is.
            let runs: Vec<&Test> = root.subtests.iter().filter(|t| t.name == name).collect();
            let (mut summary, tests) = if runs.len() > 1 {
                let each = runs
                    .iter()
                    .map(|t| judge_suite(&name, Some(t), &expect, &root.diagnostics))
                    .collect();
                merge_repetitions(&name, each)
            } else {
                judge_suite(&name, runs.first().copied(), &expect, &root.diagnostics)
            };
            if runs.len() > 1 {
                let ms = a.suite_times.iter().filter(|(n, _)| *n == name);
                summary.guest_ms = Some(ms.map(|(_, ms)| ms).sum());
            }
            a.suites.push(summary);
            a.tests.extend(tests);
        }
        let broken = |s: &str| self.plan.expect.get(s).is_some_and(|e| e.broken.is_some());
        a.c_vs_rust =
            crate::crosscheck::compare_all(&self.plan.target, &self.plan.c_vs_rust, &a, &broken);
        a.watchdog_fired = boot.is_some_and(|b| b.watchdog_fired);
        if self.plan.require_kvm {
            let cs = a.guest_clocksource();
            a.kvm_required = if !boot.is_some_and(|b| b.kvm) {
                Some("--require-kvm: the guest did not run under KVM".into())
            } else if cs.as_deref() != Some("kvm-clock") {
                // The guest's own word: its clocksource is kvm-clock only under KVM.
                Some(format!(
                    "--require-kvm: the guest reports clocksource {}, not kvm-clock",
                    cs.as_deref().unwrap_or("(none)")
                ))
            } else {
                None
            };
        }
        a
    }

    /// Replays saved results: every line through [`Judge::feed`], then finish.
    pub fn replay(
        plan: &RunPlan,
        results: &str,
        console: &str,
        boot: Option<&BootFacts>,
    ) -> Judgement {
        let mut j = Judge::new(plan);
        for l in results.lines() {
            j.feed(l);
        }
        j.finish(console, boot)
    }
}

/// The kernel's alarms on the console (configs/alarms.yaml), judged against the
/// target's allowlist.
pub fn scan_alarms(console: &str, allow: &crate::alarms::Allowlist) -> Vec<crate::alarms::Alarm> {
    let patterns =
        crate::alarms::Patterns::builtin().expect("configs/alarms.yaml is compiled in and tested");
    crate::alarms::scan(console, &patterns, allow)
}

/// One entry per fingerprint: the rendered lines of that alarm joined.
fn group_rendered(alarms: &[crate::alarms::Alarm]) -> Vec<String> {
    let lines = crate::alarms::render(alarms, 6);
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        if l.starts_with("kernel alarm ") || out.is_empty() {
            out.push(l);
        } else if let Some(last) = out.last_mut() {
            last.push('\n');
            last.push_str(&l);
        }
    }
    out
}

fn reason_of(t: &Test) -> String {
    t.reason
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| t.diagnostics.last().cloned())
        .unwrap_or_default()
}

/// The init's `# <suite>: <ms> ms exit=<n>` diagnostic, wherever the parser kept it.
fn guest_ms(t: &Test, root_diagnostics: &[String], name: &str) -> Option<u64> {
    t.diagnostics
        .iter()
        .chain(root_diagnostics.iter())
        .filter_map(|d| markers::suite_end(d))
        .find_map(|(n, ms)| (n == name).then_some(ms))
}

/// Judges one suite's results (`None`: it never reported) against its expectation;
/// `root_diagnostics` are the document's own (where the init's timing line may be).
pub fn judge_suite(
    name: &str,
    t: Option<&Test>,
    e: &Expect,
    root_diagnostics: &[String],
) -> (SuiteVerdict, Vec<TestVerdict>) {
    let mut judged = Vec::new();
    let Some(t) = t else {
        let mut s = SuiteVerdict::new(name, Status::Crashed);
        s.crashed = 1;
        s.mismatches.push(format!(
            "{name}: no result (the run ended before this suite reported)"
        ));
        return (s, judged);
    };
    let mut s = SuiteVerdict::new(name, t.status);
    s.guest_ms = guest_ms(t, root_diagnostics, name);
    if let Some(why) = t.skip_all_reason() {
        s.skipped_suite = Some(why.to_string());
        if e.skip_suite.is_none() {
            s.mismatches.push(format!(
                "{name}: skipped as a whole ({why}), expected to run"
            ));
        }
        return (s, judged);
    }
    if let Some(expected_why) = &e.skip_suite {
        s.mismatches.push(format!(
            "{name}: ran ({}), expected to skip as a whole: {expected_why}",
            t.status
        ));
    }
    // On a deliberately broken kernel (`broken: reason`) every failure, crash,
    // bail-out and timeout is what the target expects; the suite must catch it.
    let broken = e.broken.as_deref();
    if matches!(t.status, Status::Timeout | Status::Crashed) && broken.is_none() {
        s.mismatches
            .push(format!("{name}: {} {}", t.status, reason_of(t)));
    }
    if broken.is_none() {
        for err in t.all_errors() {
            s.mismatches.push(format!(
                "{name}: results line {}: {}",
                err.line, err.message
            ));
        }
    }
    // Upstream repeats some names (pagemap_ioctl's file-memory tests run twice). An
    // expectation names one test: a repeated name is keyed `name #k` (k-th of that
    // name, from 1), so two tests never share one verdict, and a bare repeated name
    // in the target is ambiguous.
    let leaves: Vec<&Test> = t
        .leaves()
        .into_iter()
        .filter(|l| !std::ptr::eq(*l, t))
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &leaves {
        *count.entry(l.name.as_str()).or_default() += 1;
    }
    let ambiguous: BTreeSet<&str> = e
        .fail
        .keys()
        .chain(e.skip.keys())
        .map(String::as_str)
        .filter(|k| count.get(k).is_some_and(|&n| n > 1))
        .collect();
    for k in &ambiguous {
        s.mismatches.push(format!(
            "{name}: expectation for {k:?} is ambiguous: {} tests have that name; key it as \"{k} #1\" .. \"{k} #{}\"",
            count[k], count[k]
        ));
    }
    let mut nth: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for leaf in leaves {
        let k = nth.entry(leaf.name.as_str()).or_default();
        *k += 1;
        let key = if count[leaf.name.as_str()] > 1 {
            format!("{} #{k}", leaf.name)
        } else {
            leaf.name.clone()
        };
        seen.insert(key.clone());
        if leaf.status.is_failure() {
            failed.insert(key.clone());
        }
        let (fail_why, skip_why) = (e.fail.get(&key), e.skip.get(&key));
        let (ok, note) = match leaf.status {
            // On a broken kernel a listed test must fail (checked below).
            Status::Pass if broken.is_some() && fail_why.is_some() => (true, None),
            Status::Pass => match (fail_why, skip_why) {
                (Some(w), _) => (false, Some(format!("expected to fail ({w}) but passed"))),
                (_, Some(w)) => (false, Some(format!("expected to skip ({w}) but passed"))),
                _ => (true, None),
            },
            Status::Xfail | Status::Todo => (true, None),
            Status::Skip => match skip_why {
                Some(w) => (true, Some(w.clone())),
                None => (
                    false,
                    Some("skipped, and the target does not expect it".into()),
                ),
            },
            Status::Fail | Status::Error | Status::Xpass | Status::Timeout | Status::Crashed => {
                match (fail_why, broken) {
                    (Some(w), _) => (true, Some(w.clone())),
                    (None, Some(b)) => (true, Some(format!("broken kernel: {b}"))),
                    (None, None) => (false, None),
                }
            }
        };
        match leaf.status {
            Status::Pass => s.pass += 1,
            Status::Skip => s.skip += 1,
            Status::Xfail => s.xfail += 1,
            Status::Crashed => s.crashed += 1,
            _ => s.fail += 1,
        }
        if ok && leaf.status.is_failure() {
            s.expected_failures += 1;
        }
        if !ok {
            let why = note.clone().unwrap_or_else(|| reason_of(leaf));
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" -- {why}")
            };
            s.mismatches
                .push(format!("{name}: {} {}{why}", leaf.status, leaf.name));
        }
        judged.push(TestVerdict {
            suite: name.to_string(),
            name: leaf.name.clone(),
            status: leaf.status,
            reason: reason_of(leaf),
            as_expected: ok,
            expectation: note.filter(|_| ok),
            flaky: None,
            mismatch: (!ok).then(|| s.mismatches.last().cloned()).flatten(),
        });
    }
    for missing in e
        .fail
        .keys()
        .chain(e.skip.keys())
        .filter(|k| !seen.contains(*k) && !ambiguous.contains(k.as_str()))
    {
        s.mismatches.push(format!(
            "{name}: expectation for {missing:?}, but no such test ran"
        ));
    }
    if let Some(b) = broken {
        for (must, why) in &e.fail {
            if seen.contains(must) && !failed.contains(must) {
                s.mismatches.push(format!(
                    "{name}: {must} passed on a kernel broken on purpose, must fail: {why}"
                ));
            }
        }
        if s.fail + s.crashed == 0 && !t.status.is_failure() {
            s.mismatches.push(format!(
                "{name}: every test passed on a kernel broken on purpose ({b}): the suite does not catch it"
            ));
        }
        return (s, judged);
    }
    // A suite that exits non-zero with no failing test (plan mismatch, bail out) is a
    // mismatch too; with expected failures, a non-zero exit is what kselftest does.
    if t.status.is_failure()
        && s.fail == 0
        && s.crashed == 0
        && !matches!(t.status, Status::Timeout | Status::Crashed)
    {
        s.mismatches.push(format!(
            "{name}: suite result {} although no test failed: {}",
            t.status,
            reason_of(t)
        ));
    }
    (s, judged)
}

/// Merges the verdicts of one suite's repetitions (each from [`judge_suite`], in run
/// order). A test is keyed by its name and how many same-named tests came before it
/// in its repetition (upstream repeats names). A test with the same status in every
/// repetition that ran it is judged as one run would judge it; one whose status
/// differs is flaky: a mismatch `<test>: flaky: P/N passed` naming the repetitions that did
/// not pass, and its verdict says the same. The suite's own mismatches (a timeout,
/// a crash, a results error) are kept from every repetition, each once; the counts
/// are summed.
pub fn merge_repetitions(
    name: &str,
    mut reps: Vec<(SuiteVerdict, Vec<TestVerdict>)>,
) -> (SuiteVerdict, Vec<TestVerdict>) {
    if reps.len() <= 1 {
        return reps
            .pop()
            .unwrap_or_else(|| judge_suite(name, None, &Expect::default(), &[]));
    }
    let n = reps.len();
    let mut order: Vec<(String, usize)> = Vec::new();
    let mut runs: HashMap<(String, usize), Vec<Option<&TestVerdict>>> = HashMap::new();
    for (r, (_, tests)) in reps.iter().enumerate() {
        let mut nth: HashMap<&str, usize> = HashMap::new();
        for t in tests {
            let i = nth.entry(t.name.as_str()).or_default();
            let key = (t.name.clone(), *i);
            *i += 1;
            let slots = runs.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                vec![None; n]
            });
            slots[r] = Some(t);
        }
    }
    let first = &reps[0].0;
    let mut s = SuiteVerdict::new(name, first.status);
    s.repetitions = n as u32;
    s.skipped_suite = first.skipped_suite.clone();
    let mut suite_level: Vec<String> = Vec::new();
    for (v, tests) in &reps {
        s.pass += v.pass;
        s.fail += v.fail;
        s.skip += v.skip;
        s.xfail += v.xfail;
        s.crashed += v.crashed;
        s.expected_failures += v.expected_failures;
        if v.status.is_failure() && !s.status.is_failure() {
            s.status = v.status;
        }
        // This repetition's mismatches that no test of it produced.
        let mut own: Vec<&String> = tests.iter().filter_map(|t| t.mismatch.as_ref()).collect();
        for m in &v.mismatches {
            if let Some(i) = own.iter().position(|o| *o == m) {
                own.swap_remove(i);
            } else if !suite_level.contains(m) {
                suite_level.push(m.clone());
            }
        }
    }
    let mut test_level = Vec::new();
    let mut merged = Vec::new();
    for key in &order {
        let ran: Vec<(usize, &TestVerdict)> = runs[key]
            .iter()
            .enumerate()
            .filter_map(|(r, t)| t.map(|t| (r, t)))
            .collect();
        let (_, t0) = ran[0];
        if ran.iter().all(|(_, t)| t.status == t0.status) {
            if let Some(m) = &t0.mismatch {
                test_level.push(m.clone());
            }
            merged.push(t0.clone());
            continue;
        }
        let passed = ran.iter().filter(|(_, t)| t.status == Status::Pass).count();
        let others: Vec<String> = ran
            .iter()
            .filter(|(_, t)| t.status != Status::Pass)
            .map(|(r, t)| format!("{} in repetition {}", t.status, r + 1))
            .collect();
        let count = format!("{passed}/{} passed", ran.len());
        let m = format!("{name}: {}: flaky: {count} ({})", key.0, others.join(", "));
        s.flaky += 1;
        test_level.push(m.clone());
        let worst = ran
            .iter()
            .map(|(_, t)| *t)
            .find(|t| t.status != Status::Pass)
            .unwrap_or(t0);
        merged.push(TestVerdict {
            reason: format!("flaky: {count}: {}", worst.reason)
                .trim_end_matches(": ")
                .to_string(),
            as_expected: false,
            expectation: None,
            flaky: Some(count),
            mismatch: Some(m),
            ..worst.clone()
        });
    }
    s.mismatches = suite_level;
    s.mismatches.extend(test_level);
    (s, merged)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{Overrides, RunPlan};
    use crate::targets::Matrix;

    pub fn plan(expect: &str) -> RunPlan {
        let m = Matrix::parse(&format!(
            "default: t\ntargets:\n  - name: t\n    source: {{ debian: x }}\n    configs: [a]\n    order: [soft-dirty, pagemap_ioctl]\n    suites:\n{expect}"
        ))
        .unwrap();
        RunPlan::resolve(&m.targets[0], &Overrides::default()).unwrap()
    }

    pub const RUN: &str = "KTAP version 1
# init: kernel 6.12.117 clocksource=tsc thp=always nr_hugepages=128/128 (requested/got)
1..2
  TAP version 13
  1..3
  ok 1 Test test_simple
  not ok 2 Test test_vma_reuse reused memory location
  ok 3 # SKIP Test test_hugepage huge page allocation
  # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
# soft-dirty: 812 ms exit=1
not ok 1 soft-dirty
  TAP version 13
  1..0 # SKIP PAGEMAP_SCAN not supported
# pagemap_ioctl: 3 ms exit=4
ok 2 pagemap_ioctl # SKIP
# exit=1
";

    pub fn judge(p: &RunPlan, results: &str, console: &str) -> Judgement {
        Judge::replay(p, results, console, None)
    }

    #[test]
    fn unexpected_fail_and_skip_are_mismatches() {
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n");
        let a = judge(&p, RUN, "");
        assert_eq!(a.guest_exit, Some(1));
        assert_eq!(a.guest_clocksource().as_deref(), Some("tsc"));
        assert!(!a.cut_short);
        assert_eq!(
            a.suites[0].mismatches.len(),
            2,
            "{:?}",
            a.suites[0].mismatches
        );
        assert_eq!(a.suites[0].guest_ms, Some(812));
        assert!(a.suites[1].mismatches.is_empty());
        assert_eq!(a.exit(), Exit::Mismatch);
        assert_eq!(
            a.suite_times,
            [("soft-dirty".into(), 812), ("pagemap_ioctl".into(), 3)]
        );
    }

    #[test]
    fn an_accepted_skip_is_no_mismatch() {
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n");
        let run = RUN.replace(
            "ok 3 # SKIP Test test_hugepage huge page allocation",
            "ok 3 test_hugepage # SKIP no huge pages",
        );
        let mut a = judge(&p, &run, "");
        assert_eq!(
            a.suites[0].mismatches.len(),
            2,
            "{:?}",
            a.suites[0].mismatches
        );
        // Only a skip is accepted, and only the named one.
        assert!(!a.accept_skip("soft-dirty", "test_vma_reuse reused memory location", "x"));
        assert!(!a.accept_skip("soft-dirty", "test_nope", "x"));
        assert!(a.accept_skip("soft-dirty", "test_hugepage", "absent: probed"));
        assert!(!a.accept_skip("soft-dirty", "test_hugepage", "twice"));
        assert_eq!(
            a.suites[0].mismatches.len(),
            1,
            "{:?}",
            a.suites[0].mismatches
        );
        let t = a.tests.iter().find(|t| t.name == "test_hugepage").unwrap();
        assert!(t.as_expected && t.expectation.as_deref() == Some("absent: probed"));
        // The failure is still there.
        assert_eq!(a.exit(), Exit::Mismatch);
    }

    #[test]
    fn live_verdicts_arrive_per_suite() {
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n");
        let mut j = Judge::new(&p);
        let mut done = Vec::new();
        for l in RUN.lines() {
            for ev in j.feed(l) {
                if let Progress::Suite(s) = ev {
                    done.push((l.to_string(), s.name, s.mismatches.len()));
                }
            }
        }
        assert_eq!(
            done,
            [
                ("not ok 1 soft-dirty".into(), "soft-dirty".into(), 2),
                (
                    "ok 2 pagemap_ioctl # SKIP".into(),
                    "pagemap_ioctl".into(),
                    0
                )
            ]
        );
    }

    #[test]
    fn expectations_make_it_pass() {
        let p = plan(
            "      soft-dirty:\n        fail: { 'Test test_vma_reuse reused memory location': 'a known bug' }\n        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n",
        );
        let a = judge(&p, RUN, "");
        assert_eq!(a.mismatches(), 0, "{:?}", a.suites);
        assert_eq!(a.exit(), Exit::Ok);
        assert_eq!(a.suites[0].verdict(), "as expected (1 expected failures)");
    }

    #[test]
    fn broken_kernel_must_be_caught() {
        let caught = plan(
            "      soft-dirty:\n        broken: 'test data'\n        fail: { 'Test test_vma_reuse reused memory location': 'must fail' }\n        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: x }\n",
        );
        let a = judge(&caught, RUN, "");
        assert_eq!(a.mismatches(), 0, "{:?}", a.suites);
        // The same expectation on a kernel where everything passes is a mismatch.
        let clean = RUN
            .replace(
                "  not ok 2 Test test_vma_reuse",
                "  ok 2 Test test_vma_reuse",
            )
            .replace("not ok 1 soft-dirty", "ok 1 soft-dirty");
        let a = judge(&caught, &clean, "");
        let all = a.suites[0].mismatches.join("\n");
        assert!(
            all.contains("reused memory location passed on a kernel broken on purpose, must fail"),
            "{all}"
        );
        assert!(all.contains("does not catch it"), "{all}");
    }

    #[test]
    fn repeated_names_are_keyed_by_occurrence() {
        // Two tests named "Test twin": the second fails.
        let run = RUN
            .replace("  1..3\n", "  1..4\n")
            .replace("  ok 1 Test test_simple\n", "  ok 1 Test twin\n")
            .replace(
                "  ok 3 # SKIP Test test_hugepage huge page allocation\n",
                "  ok 3 # SKIP Test test_hugepage huge page allocation\n  not ok 4 Test twin\n",
            )
            .replace("pass:1 fail:1", "pass:1 fail:2");
        let mism = |expect: &str| {
            let a = judge(&plan(expect), &run, "");
            a.suites[0].mismatches.join("\n")
        };
        let common = "        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: x }\n";
        // The failing twin, named by occurrence: as expected.
        let ok = mism(&format!(
            "      soft-dirty:\n        fail: {{ 'Test test_vma_reuse reused memory location': a, 'Test twin #2': b }}\n{common}"
        ));
        assert!(ok.is_empty(), "{ok}");
        // The passing twin named instead: its sibling's failure is not covered.
        let wrong = mism(&format!(
            "      soft-dirty:\n        fail: {{ 'Test test_vma_reuse reused memory location': a, 'Test twin #1': b }}\n{common}"
        ));
        assert!(wrong.contains("expected to fail (b) but passed"), "{wrong}");
        // A bare repeated name is ambiguous, not silently shared.
        let bare = mism(&format!(
            "      soft-dirty:\n        fail: {{ 'Test test_vma_reuse reused memory location': a, 'Test twin': b }}\n{common}"
        ));
        assert!(
            bare.contains("\"Test twin\" is ambiguous: 2 tests"),
            "{bare}"
        );
        assert!(!bare.contains("no such test ran"), "{bare}");
    }

    #[test]
    fn stale_expectation_is_a_mismatch() {
        let p = plan(
            "      soft-dirty:\n        fail: { 'Test gone': 'x' }\n      pagemap_ioctl: {}\n",
        );
        let a = judge(&p, RUN, "");
        let all = a
            .suites
            .iter()
            .flat_map(|s| s.mismatches.clone())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("\"Test gone\", but no such test ran"), "{all}");
        assert!(
            all.contains("pagemap_ioctl: skipped as a whole (PAGEMAP_SCAN not supported)"),
            "{all}"
        );
    }

    #[test]
    fn panic_cuts_short_and_is_quoted() {
        let cut = RUN.split("# soft-dirty").next().unwrap();
        let console = "[    1.0] ok\n[    2.0] Kernel panic - not syncing: Attempted to kill init!\n[    2.1] CPU: 0\n";
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        let a = judge(&p, cut, console);
        assert!(a.panicked && a.cut_short);
        assert_eq!(a.exit(), Exit::Crash);
        assert!(a.console_problems[0].contains("Attempted to kill init"));
        assert_eq!(a.suites[1].status, Status::Crashed);
        assert!(a.headline().starts_with("crash: the kernel panicked"));
    }

    #[test]
    fn only_the_planned_suites_are_judged() {
        let mut p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        p.suites = vec!["soft-dirty".into()];
        p.expect.remove("pagemap_ioctl");
        let a = judge(&p, RUN, "");
        assert_eq!(a.suites.len(), 1);
    }

    #[test]
    fn require_kvm_checks_the_guest_clocksource() {
        let mut p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        p.require_kvm = true;
        let boot = BootFacts {
            kvm: true,
            ..Default::default()
        };
        let a = Judge::replay(&p, RUN, "", Some(&boot));
        assert_eq!(a.exit(), Exit::Setup);
        assert!(a.headline().contains("clocksource tsc, not kvm-clock"));
        let kvm = RUN.replace("clocksource=tsc", "clocksource=kvm-clock");
        let a = Judge::replay(&p, &kvm, "", Some(&boot));
        assert!(a.kvm_required.is_none());
    }

    #[test]
    fn warning_fails_a_clean_run_and_an_allowed_one_does_not() {
        let mut p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        p.suites = vec!["soft-dirty".into()];
        p.expect.retain(|s, _| s == "soft-dirty");
        let results =
            "KTAP version 1\n1..1\n# soft-dirty: 1 ms exit=0\nok 1 soft-dirty\n# exit=0\n";
        let con = "a\n[ 3.1] WARNING: CPU: 1 PID: 1 at mm/memory.c:123 x\nb\nc\nd\n";
        let a = judge(&p, results, con);
        assert_eq!(a.console_problems.len(), 1, "{:?}", a.console_problems);
        assert!(a.console_problems[0].contains("mm/memory.c:123"));
        assert!(!a.panicked);
        assert_eq!(a.exit(), Exit::Mismatch);
        assert_eq!(a.alarms.len(), 1);
        let mut allowed = p.clone();
        allowed.alarms_allow = crate::alarms::Allowlist::parse(
            "- {pattern: warning, match: 'mm/memory.c:123', reason: known}\n",
            "test",
        )
        .unwrap();
        let b = judge(&allowed, results, con);
        assert!(b.console_problems.is_empty());
        assert_eq!(b.alarms[0].allowed.as_deref(), Some("known"));
        assert_eq!(b.exit(), Exit::Ok);
        assert!(judge(
            &p,
            results,
            "Linux version 6.12\nRun /init as init process\n"
        )
        .console_problems
        .is_empty());
    }

    #[test]
    fn repeated_suites_are_timed_in_run_order_and_judged_once() {
        let mut p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        p.suites = vec![
            "soft-dirty".into(),
            "pagemap_ioctl".into(),
            "soft-dirty".into(),
        ];
        let t = "KTAP version 1\n1..3\n  # a: 1 ms nested, ignored\n# soft-dirty: 30 ms exit=0\nok 1 soft-dirty\n# pagemap_ioctl: 10 ms exit=0\nok 2 pagemap_ioctl\n# soft-dirty: 20 ms exit=0\nok 3 soft-dirty\n# exit=0\n";
        let a = judge(&p, t, "");
        assert_eq!(
            a.suite_times,
            [
                ("soft-dirty".into(), 30),
                ("pagemap_ioctl".into(), 10),
                ("soft-dirty".into(), 20)
            ]
        );
        assert_eq!(a.suites.len(), 2);
    }

    /// A `--repeat` document: soft-dirty `reps` times, its second test's line in
    /// repetition r given by `second(r)` (`None`: the suite timed out before it).
    fn repeated(reps: usize, second: impl Fn(usize) -> Option<&'static str>) -> String {
        let mut d = format!("KTAP version 1\n1..{reps}\n");
        let mut exit = 0;
        for r in 0..reps {
            d.push_str("  TAP version 13\n  1..3\n  ok 1 Test test_simple\n");
            match second(r) {
                Some(l) => {
                    let bad = l.starts_with("not ok");
                    d.push_str(&format!("  {l}\n  ok 3 Test test_mprotect\n"));
                    d.push_str(&format!("# soft-dirty: 10 ms exit={}\n", bad as i32));
                    d.push_str(&format!(
                        "{}ok {} soft-dirty\n",
                        if bad { "not " } else { "" },
                        r + 1
                    ));
                    exit |= bad as i32;
                }
                None => {
                    d.push_str("# soft-dirty: 2000 ms timeout after 2 s, process group killed\n");
                    d.push_str(&format!(
                        "not ok {} soft-dirty # TIMEOUT 2 seconds\n",
                        r + 1
                    ));
                    exit = 1;
                }
            }
        }
        d.push_str(&format!("# exit={exit}\n"));
        d
    }

    fn soft_dirty_only(expect: &str) -> RunPlan {
        let mut p = plan(&format!(
            "      soft-dirty: {expect}\n      pagemap_ioctl: {{}}\n"
        ));
        p.suites = vec!["soft-dirty".into()];
        p.expect.retain(|s, _| s == "soft-dirty");
        p
    }

    #[test]
    fn a_test_that_fails_in_some_repetitions_is_flaky_with_its_pass_count() {
        let p = soft_dirty_only("{}");
        let doc = repeated(20, |r| {
            Some(if [2, 8, 13].contains(&r) {
                "not ok 2 Test test_vma_reuse reused memory location"
            } else {
                "ok 2 Test test_vma_reuse reused memory location"
            })
        });
        let a = judge(&p, &doc, "");
        assert_eq!(a.exit(), Exit::Mismatch);
        assert_eq!(a.flaky(), 1);
        let s = &a.suites[0];
        assert_eq!((s.repetitions, s.flaky, s.pass, s.fail), (20, 1, 57, 3));
        assert_eq!(s.guest_ms, Some(200));
        assert_eq!(
            s.mismatches,
            [
                "soft-dirty: Test test_vma_reuse reused memory location: flaky: 17/20 passed \
              (FAIL in repetition 3, FAIL in repetition 9, FAIL in repetition 14)"
            ]
        );
        assert_eq!(s.verdict(), "1 unexpected (1 flaky), 20 repetitions");
        assert_eq!(a.tests.len(), 3, "one verdict per test, not per repetition");
        let t = &a.tests[1];
        assert_eq!(t.flaky.as_deref(), Some("17/20 passed"));
        assert!(!t.as_expected && t.status == Status::Fail);
        assert!(t.reason.starts_with("flaky: 17/20 passed"), "{}", t.reason);
        assert!(a.headline().contains("1 of them flaky"), "{}", a.headline());
        // Every report says so: the table, summary.json, JUnit, the step summary.
        let dir = tempfile::tempdir().unwrap();
        let mut r = crate::plan::RunRecord::new(p.clone());
        r.plan.repeat = 20;
        crate::report::write(dir.path(), &r, crate::report::Ending::Judged(&a)).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(read("summary.json").contains("\"flaky\": \"17/20 passed\""));
        assert!(read("junit.xml").contains("flaky: 17/20 passed"));
        assert!(read("step-summary.md").contains("flaky: 17/20 passed"));
        assert!(crate::report::text(&r, crate::report::Ending::Judged(&a))
            .contains("test_vma_reuse reused memory location: flaky: 17/20 passed"));
        // Flaky even where the failure is the expected result: the expectation does
        // not hold in every repetition.
        let p =
            soft_dirty_only("{ fail: { 'Test test_vma_reuse reused memory location': 'known' } }");
        let a = judge(&p, &doc, "");
        assert_eq!(a.flaky(), 1);
        assert_eq!(a.exit(), Exit::Mismatch);
    }

    #[test]
    fn consistent_repetitions_judge_as_one_run_does() {
        let pass = |_| Some("ok 2 Test test_vma_reuse reused memory location");
        let fail = |_| Some("not ok 2 Test test_vma_reuse reused memory location");
        let p = soft_dirty_only("{}");
        let a = judge(&p, &repeated(5, pass), "");
        assert_eq!(a.exit(), Exit::Ok, "{:?}", a.suites);
        assert_eq!((a.suites[0].pass, a.flaky()), (15, 0));
        assert_eq!(a.suites[0].verdict(), "as expected, 5 repetitions");
        // The same unexpected failure every time: one mismatch, as a single run has.
        let once = judge(&p, &repeated(1, fail), "");
        let five = judge(&p, &repeated(5, fail), "");
        assert_eq!(five.suites[0].mismatches, once.suites[0].mismatches);
        assert_eq!((five.flaky(), five.exit()), (0, Exit::Mismatch));
        // An expected failure every time is as expected.
        let p =
            soft_dirty_only("{ fail: { 'Test test_vma_reuse reused memory location': 'known' } }");
        let a = judge(&p, &repeated(5, fail), "");
        assert_eq!(a.exit(), Exit::Ok, "{:?}", a.suites);
        assert_eq!(a.suites[0].expected_failures, 5);
        assert_eq!(a.tests[1].expectation.as_deref(), Some("known"));
    }

    #[test]
    fn a_repetition_that_timed_out_keeps_its_suite_mismatch() {
        let p = soft_dirty_only("{}");
        let doc = repeated(3, |r| {
            (r != 1).then_some("ok 2 Test test_vma_reuse reused memory location")
        });
        let a = judge(&p, &doc, "");
        let m = &a.suites[0].mismatches;
        assert_eq!(m[0], "soft-dirty: TIMEOUT 2 seconds", "{m:?}");
        assert!(m[1].contains("no result for 2..3"), "{m:?}");
        assert_eq!(a.exit(), Exit::Mismatch);
        // Tests that did not run in the timed-out repetition are not called flaky:
        // test_simple passed wherever it ran; the timeout is the finding.
        assert_eq!(a.flaky(), 0);
        assert_eq!(a.suites[0].status, Status::Timeout);
    }

    #[test]
    fn suite_end_marker() {
        assert_eq!(
            markers::suite_end("a: 30 ms exit=0"),
            Some(("a".into(), 30))
        );
        assert_eq!(
            markers::suite_end_line("# a: 2001 ms timeout after 2 s, process group killed"),
            Some(("a".into(), 2001))
        );
        assert_eq!(markers::suite_end_line("  # a: 30 ms exit=0"), None);
        assert_eq!(markers::suite_end("init: kernel 6.1 x"), None);
        assert_eq!(markers::suite_end("Totals: pass:1 fail:0"), None);
    }
}
