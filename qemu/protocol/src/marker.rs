//! Guest -> host: the init's own lines on the results port.
//!
//! The results port carries one KTAP v1 document. Around the suites' nested TAP, the
//! init writes these top-level diagnostic lines (never indented), in this order:
//!
//! ```text
//! KTAP version 1
//! # init: kernel <release> clocksource=<name> thp=<mode> nr_hugepages=<asked>/<got> (requested/got)   Boot
//! # init: <step>: <message>                                     StepError (0 or more)
//! # init: thp defrag=<mode>                                     ThpDefrag
//! # init: swap=<MiB> MiB on <device> (/proc/swaps lists <KiB> KiB)   Swap
//! 1..<number of suites>
//! # Subtest: <name>                                             SuiteStart
//!   <the suite's TAP, indented>
//! # <name>: <ms> ms exit=<code>                                 SuiteEnd (or signal=, timeout, error:)
//! ok 1 <name>                                                   SuiteEnd::result_line
//! # init: no suites to run                                      NoSuites (when the list is empty)
//! # exit=<0 if every suite was ok, else 1>                      Exit (last line)
//! ```
//!
//! The KTAP plan and result lines are read by the `ktap` crate; the `# ...` lines here
//! are read with [`Marker::parse`] (a whole line) or [`Marker::parse_diagnostic`] (a
//! diagnostic's text without `# `, as the ktap parser keeps it). A missing `# exit=`
//! line means the guest died before the end (crash, hang, truncated output).

use std::fmt;

/// Exit code of a kselftest program that skipped (`KSFT_SKIP`).
pub const KSFT_SKIP: i32 = 4;

/// One of the init's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// What the boot steps found: the first diagnostic of the document.
    Boot {
        /// `uname -r`, or `unknown`.
        kernel: String,
        /// `/sys/devices/system/clocksource/clocksource0/current_clocksource`.
        clocksource: String,
        /// The THP mode the kernel shows (or `unavailable` / `unknown`).
        thp: String,
        /// The `harness.hugepages` asked for.
        hugepages_requested: u64,
        /// What `vm.nr_hugepages` reads back (or `unavailable` / `unknown`).
        hugepages_got: String,
    },
    /// A boot step that failed; the boot went on.
    StepError { step: String, message: String },
    /// The THP defrag mode the kernel shows.
    ThpDefrag(String),
    /// The swap area set up for `harness.swap`, as /proc/swaps lists it.
    Swap {
        mib: u64,
        device: String,
        listed_kib: u64,
    },
    /// `harness.suites` was empty and the suites directory had nothing either.
    NoSuites,
    /// A suite's nested block starts (names it even if the suite never ends).
    SuiteStart(String),
    /// A suite ended: how, and its wall time in the guest.
    SuiteEnd(SuiteEnd),
    /// The last line: 0 if there was at least one suite and every one was ok, else 1.
    Exit(i32),
}

/// How one suite ended, with its guest wall time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteEnd {
    pub name: String,
    /// Guest wall time in milliseconds.
    pub ms: u64,
    pub ended: Ended,
}

/// How a suite process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this code (0 pass, [`KSFT_SKIP`] skip, anything else fail).
    Exited(i32),
    /// Killed by a signal. `name` is its `SIG...` name (or `unknown signal`).
    Signaled {
        signal: i32,
        name: String,
        core_dumped: bool,
    },
    /// Still running at the per-suite timeout; its process group was killed. `stuck`:
    /// the suite had not died after SIGKILL (left behind).
    TimedOut { timeout_ms: u64, stuck: bool },
    /// Could not be run at all (`not found`, `cannot execute: ...`).
    Error(String),
}

impl Ended {
    /// `ok` in KTAP terms: passed or skipped.
    pub fn is_ok(&self) -> bool {
        matches!(self, Ended::Exited(0) | Ended::Exited(KSFT_SKIP))
    }
}

/// Whole seconds as `5`, anything finer as `0.250`.
fn format_secs(ms: u64) -> String {
    let (secs, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{frac:03}")
    }
}

fn parse_secs(s: &str) -> Option<u64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) if f.len() == 3 && f.bytes().all(|b| b.is_ascii_digit()) => {
            (w, f.parse::<u64>().ok()?)
        }
        Some(_) => return None,
        None => (s, 0),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(frac)
}

const STUCK: &str = ", but the suite did not die (left behind)";
const GROUP_KILLED: &str = ", process group killed";

impl SuiteEnd {
    /// The KTAP result line the init writes after this marker, e.g. `ok 2 soft-dirty # SKIP`
    /// or `not ok 3 x # TIMEOUT 600 seconds`.
    pub fn result_line(&self, number: usize) -> String {
        let name = &self.name;
        match &self.ended {
            Ended::Exited(0) => format!("ok {number} {name}"),
            Ended::Exited(KSFT_SKIP) => format!("ok {number} {name} # SKIP"),
            Ended::Exited(_) | Ended::Signaled { .. } => format!("not ok {number} {name}"),
            Ended::TimedOut { timeout_ms, .. } => format!(
                "not ok {number} {name} # TIMEOUT {} seconds",
                format_secs(*timeout_ms)
            ),
            Ended::Error(why) => format!("not ok {number} {name} # ERROR {why}"),
        }
    }

    /// Parses the text after `# `: `<name>: <ms> ms <how>`.
    fn parse(text: &str) -> Option<SuiteEnd> {
        let (name, rest) = text.split_once(": ")?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        let (ms, how) = rest.split_once(" ms ")?;
        if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ms = ms.parse().ok()?;
        let ended = if let Some(code) = how.strip_prefix("exit=") {
            Ended::Exited(code.parse().ok()?)
        } else if let Some(sig) = how.strip_prefix("signal=") {
            let (num, rest) = sig.split_once(" (")?;
            let (signame, tail) = rest.split_once(')')?;
            let core_dumped = match tail {
                "" => false,
                " core dumped" => true,
                _ => return None,
            };
            Ended::Signaled {
                signal: num.parse().ok()?,
                name: signame.to_string(),
                core_dumped,
            }
        } else if let Some(t) = how.strip_prefix("timeout after ") {
            let (secs, tail) = t.split_once(" s")?;
            let tail = tail.strip_prefix(GROUP_KILLED)?;
            let stuck = match tail {
                "" => false,
                STUCK => true,
                _ => return None,
            };
            Ended::TimedOut {
                timeout_ms: parse_secs(secs)?,
                stuck,
            }
        } else if let Some(why) = how.strip_prefix("error: ") {
            Ended::Error(why.to_string())
        } else {
            return None;
        };
        Some(SuiteEnd {
            name: name.to_string(),
            ms,
            ended,
        })
    }
}

impl fmt::Display for SuiteEnd {
    /// Without the leading `# ` (the diagnostic's text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ms ", self.name, self.ms)?;
        match &self.ended {
            Ended::Exited(code) => write!(f, "exit={code}"),
            Ended::Signaled {
                signal,
                name,
                core_dumped,
            } => write!(
                f,
                "signal={signal} ({name}){}",
                if *core_dumped { " core dumped" } else { "" }
            ),
            Ended::TimedOut { timeout_ms, stuck } => write!(
                f,
                "timeout after {} s{GROUP_KILLED}{}",
                format_secs(*timeout_ms),
                if *stuck { STUCK } else { "" }
            ),
            Ended::Error(why) => write!(f, "error: {why}"),
        }
    }
}

impl Marker {
    /// A whole results-port line: `# ...` at the top level. Indented lines (a suite's
    /// own output) and anything else give `None`.
    pub fn parse(line: &str) -> Option<Marker> {
        Marker::parse_diagnostic(line.trim_end_matches(['\r', '\n']).strip_prefix("# ")?)
    }

    /// A top-level diagnostic's text, without the `# ` (as `ktap::Test::diagnostics`
    /// keeps it).
    pub fn parse_diagnostic(text: &str) -> Option<Marker> {
        if let Some(code) = text.strip_prefix("exit=") {
            return code.parse().ok().map(Marker::Exit);
        }
        if let Some(name) = text.strip_prefix("Subtest: ") {
            return Some(Marker::SuiteStart(name.to_string()));
        }
        // Before `init: <step>: ...`: a suite may be called anything (even `init`).
        if let Some(end) = SuiteEnd::parse(text) {
            return Some(Marker::SuiteEnd(end));
        }
        let init = text.strip_prefix("init: ")?;
        if init == "no suites to run" {
            return Some(Marker::NoSuites);
        }
        if let Some(mode) = init.strip_prefix("thp defrag=") {
            return Some(Marker::ThpDefrag(mode.to_string()));
        }
        if let Some(b) = parse_boot(init) {
            return Some(b);
        }
        if let Some(s) = parse_swap(init) {
            return Some(s);
        }
        let (step, message) = init.split_once(": ")?;
        if step.is_empty() || !step.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        Some(Marker::StepError {
            step: step.to_string(),
            message: message.to_string(),
        })
    }
}

fn parse_boot(init: &str) -> Option<Marker> {
    let rest = init.strip_prefix("kernel ")?;
    let rest = rest.strip_suffix(" (requested/got)")?;
    let mut words = rest.split(' ');
    let kernel = words.next()?;
    let clocksource = words.next()?.strip_prefix("clocksource=")?;
    let thp = words.next()?.strip_prefix("thp=")?;
    let (asked, got) = words
        .next()?
        .strip_prefix("nr_hugepages=")?
        .split_once('/')?;
    if words.next().is_some() {
        return None;
    }
    Some(Marker::Boot {
        kernel: kernel.to_string(),
        clocksource: clocksource.to_string(),
        thp: thp.to_string(),
        hugepages_requested: asked.parse().ok()?,
        hugepages_got: got.to_string(),
    })
}

fn parse_swap(init: &str) -> Option<Marker> {
    let rest = init.strip_prefix("swap=")?;
    let (mib, rest) = rest.split_once(" MiB on ")?;
    let (device, rest) = rest.split_once(" (/proc/swaps lists ")?;
    let kib = rest.strip_suffix(" KiB)")?;
    Some(Marker::Swap {
        mib: mib.parse().ok()?,
        device: device.to_string(),
        listed_kib: kib.parse().ok()?,
    })
}

impl fmt::Display for Marker {
    /// The whole line, with its `# `, without a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::Boot {
                kernel,
                clocksource,
                thp,
                hugepages_requested,
                hugepages_got,
            } => write!(
                f,
                "# init: kernel {kernel} clocksource={clocksource} thp={thp} \
                 nr_hugepages={hugepages_requested}/{hugepages_got} (requested/got)"
            ),
            Marker::StepError { step, message } => write!(f, "# init: {step}: {message}"),
            Marker::ThpDefrag(mode) => write!(f, "# init: thp defrag={mode}"),
            Marker::Swap {
                mib,
                device,
                listed_kib,
            } => write!(
                f,
                "# init: swap={mib} MiB on {device} (/proc/swaps lists {listed_kib} KiB)"
            ),
            Marker::NoSuites => write!(f, "# init: no suites to run"),
            Marker::SuiteStart(name) => write!(f, "# Subtest: {name}"),
            Marker::SuiteEnd(end) => write!(f, "# {end}"),
            Marker::Exit(code) => write!(f, "# exit={code}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn end(name: &str, ms: u64, ended: Ended) -> Marker {
        Marker::SuiteEnd(SuiteEnd {
            name: name.into(),
            ms,
            ended,
        })
    }

    fn every_kind() -> Vec<Marker> {
        vec![
            Marker::Boot {
                kernel: "6.1.0-harness".into(),
                clocksource: "tsc".into(),
                thp: "always".into(),
                hugepages_requested: 128,
                hugepages_got: "128".into(),
            },
            Marker::Boot {
                kernel: "unknown".into(),
                clocksource: "unknown".into(),
                thp: "unavailable".into(),
                hugepages_requested: 0,
                hugepages_got: "unavailable".into(),
            },
            Marker::StepError {
                step: "set_hugepages".into(),
                message: "asked for 128 huge pages, the kernel gave 3 (memory: low)".into(),
            },
            Marker::StepError {
                step: "read_cmdline".into(),
                message: "ignored unknown kernel parameter harness.x=1".into(),
            },
            Marker::ThpDefrag("madvise".into()),
            Marker::Swap {
                mib: 256,
                device: "/dev/ram0".into(),
                listed_kib: 262140,
            },
            Marker::NoSuites,
            Marker::SuiteStart("soft-dirty".into()),
            end("soft-dirty", 812, Ended::Exited(0)),
            end("init", 0, Ended::Exited(-1)),
            end("pagemap_ioctl", 3, Ended::Exited(KSFT_SKIP)),
            end(
                "x",
                9,
                Ended::Signaled {
                    signal: 11,
                    name: "SIGSEGV".into(),
                    core_dumped: false,
                },
            ),
            end(
                "x",
                9,
                Ended::Signaled {
                    signal: 6,
                    name: "unknown signal".into(),
                    core_dumped: true,
                },
            ),
            end(
                "hang",
                600_004,
                Ended::TimedOut {
                    timeout_ms: 600_000,
                    stuck: false,
                },
            ),
            end(
                "hang",
                1_250,
                Ended::TimedOut {
                    timeout_ms: 1_250,
                    stuck: true,
                },
            ),
            end("missing", 0, Ended::Error("not found".into())),
            end(
                "plain",
                1,
                Ended::Error("cannot execute: Permission denied (os error 13)".into()),
            ),
            Marker::Exit(0),
            Marker::Exit(1),
        ]
    }

    #[test]
    fn round_trip_marker_line_marker() {
        for m in every_kind() {
            let line = m.to_string();
            assert!(line.starts_with("# ") && !line.contains('\n'), "{line:?}");
            assert_eq!(Marker::parse(&line), Some(m.clone()), "{line}");
            assert_eq!(Marker::parse(&format!("{line}\r\n")), Some(m.clone()));
            assert_eq!(Marker::parse_diagnostic(&line[2..]), Some(m), "{line}");
        }
    }

    #[test]
    fn the_exact_lines_the_host_has_always_read() {
        let cases = [
            ("# exit=1", Marker::Exit(1)),
            (
                "# soft-dirty: 812 ms exit=1",
                end("soft-dirty", 812, Ended::Exited(1)),
            ),
            (
                "# crash: 5 ms signal=11 (SIGSEGV)",
                end(
                    "crash",
                    5,
                    Ended::Signaled {
                        signal: 11,
                        name: "SIGSEGV".into(),
                        core_dumped: false,
                    },
                ),
            ),
            (
                "# hang: 1003 ms timeout after 1 s, process group killed",
                end(
                    "hang",
                    1003,
                    Ended::TimedOut {
                        timeout_ms: 1000,
                        stuck: false,
                    },
                ),
            ),
            (
                "# missing: 0 ms error: not found",
                end("missing", 0, Ended::Error("not found".into())),
            ),
            ("# init: no suites to run", Marker::NoSuites),
            (
                "# init: thp defrag=always",
                Marker::ThpDefrag("always".into()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(Marker::parse(line), Some(want), "{line}");
        }
    }

    /// The top-level lines of a real results port: `cargo xtask test-kernel --target
    /// v6.1-pagemap-scan --suites soft-dirty`, 2026-12-03 (suite output elided).
    #[test]
    fn a_recorded_results_port() {
        let doc = "\
KTAP version 1
# init: kernel 6.1.192 clocksource=refined-jiffies thp=always nr_hugepages=128/128 (requested/got)
# init: thp defrag=always
# init: swap=256 MiB on /dev/ram0 (/proc/swaps lists 262140 KiB)
1..1
# Subtest: soft-dirty
  TAP version 13
  # soft-dirty read from pagemap bit 55, cross-checked with PAGEMAP_SCAN PAGE_IS_SOFT_DIRTY
  not ok 19 Test test_merge-anon soft-dirty after mprotect merge 2nd pg
  # Totals: pass:15 fail:4 xfail:0 xpass:0 skip:0 error:0
# soft-dirty: 20201 ms exit=1
not ok 1 soft-dirty
# exit=1
";
        let markers: Vec<Marker> = doc.lines().filter_map(Marker::parse).collect();
        assert_eq!(
            markers,
            vec![
                Marker::Boot {
                    kernel: "6.1.192".into(),
                    clocksource: "refined-jiffies".into(),
                    thp: "always".into(),
                    hugepages_requested: 128,
                    hugepages_got: "128".into(),
                },
                Marker::ThpDefrag("always".into()),
                Marker::Swap {
                    mib: 256,
                    device: "/dev/ram0".into(),
                    listed_kib: 262140,
                },
                Marker::SuiteStart("soft-dirty".into()),
                end("soft-dirty", 20201, Ended::Exited(1)),
                Marker::Exit(1),
            ]
        );
        let SuiteEnd { ended, .. } = match &markers[4] {
            Marker::SuiteEnd(e) => e.clone(),
            m => panic!("{m:?}"),
        };
        assert_eq!(
            SuiteEnd {
                name: "soft-dirty".into(),
                ms: 0,
                ended
            }
            .result_line(1),
            "not ok 1 soft-dirty"
        );
    }

    #[test]
    fn not_markers() {
        for line in [
            "  # soft-dirty: 812 ms exit=1",
            "#exit=1",
            "# exit=",
            "# exit=x",
            "ok 1 soft-dirty",
            "KTAP version 1",
            "1..3",
            "# a b: 5 ms exit=0",
            "# a: 5ms exit=0",
            "# a: x ms exit=0",
            "# a: 5 ms exit=zero",
            "# a: 5 ms signal=11 SIGSEGV",
            "# a: 5 ms timeout after 1.5 s, process group killed",
            "# a: 5 ms timeout after 1 s",
            "# a: 5 ms finished",
            "# init: Kernel says hi",
            "# init: ",
            "# some diagnostic from a suite",
            "",
        ] {
            assert_eq!(Marker::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn result_lines() {
        let r = |ended| {
            SuiteEnd {
                name: "s".into(),
                ms: 1,
                ended,
            }
            .result_line(3)
        };
        assert_eq!(r(Ended::Exited(0)), "ok 3 s");
        assert_eq!(r(Ended::Exited(4)), "ok 3 s # SKIP");
        assert_eq!(r(Ended::Exited(1)), "not ok 3 s");
        assert_eq!(
            r(Ended::Signaled {
                signal: 9,
                name: "SIGKILL".into(),
                core_dumped: false
            }),
            "not ok 3 s"
        );
        assert_eq!(
            r(Ended::TimedOut {
                timeout_ms: 600_000,
                stuck: false
            }),
            "not ok 3 s # TIMEOUT 600 seconds"
        );
        assert_eq!(
            r(Ended::TimedOut {
                timeout_ms: 1_500,
                stuck: true
            }),
            "not ok 3 s # TIMEOUT 1.500 seconds"
        );
        assert_eq!(
            r(Ended::Error("not found".into())),
            "not ok 3 s # ERROR not found"
        );
        assert!(Ended::Exited(0).is_ok() && Ended::Exited(4).is_ok());
        assert!(!Ended::Exited(2).is_ok() && !Ended::Error(String::new()).is_ok());
    }
}
