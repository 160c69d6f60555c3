//! Timing and statistics: the clock (CLOCK_MONOTONIC when it is fine-grained, else the
//! TSC calibrated against it), nearest-rank percentiles, and the JSON text of a record.

use std::time::{Duration, Instant};

/// Which counter times a round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockKind {
    /// `clock_gettime(CLOCK_MONOTONIC)`.
    Monotonic,
    /// `rdtsc`, converted with a factor measured against CLOCK_MONOTONIC.
    Tsc,
}

/// The clock of the run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub kind: ClockKind,
    /// Nanoseconds per tick of [`Clock::now`].
    ns_per_tick: f64,
    /// The smallest step of CLOCK_MONOTONIC seen (ns).
    pub monotonic_step_ns: f64,
    /// The smallest step of this clock seen (ns): the finest time it can tell apart.
    pub resolution_ns: f64,
}

/// A CLOCK_MONOTONIC step coarser than this makes the TSC the clock (a TCG guest
/// without a usable clocksource falls back to jiffies: 4 ms steps).
const FINE_ENOUGH_NS: f64 = 1000.0;

fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data, filled by the call.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(target_arch = "x86_64")]
fn tsc() -> Option<u64> {
    // SAFETY: rdtsc has no preconditions on x86_64.
    Some(unsafe { core::arch::x86_64::_rdtsc() })
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc() -> Option<u64> {
    None
}

/// Waits for the next step of CLOCK_MONOTONIC; returns its new value.
fn next_step(from: u64) -> u64 {
    loop {
        let t = monotonic_ns();
        if t != from {
            return t;
        }
    }
}

impl Clock {
    /// Measures CLOCK_MONOTONIC's step (at most ~100 ms spent) and, when it is coarse
    /// (or `force` says so), calibrates the TSC against it over `calibrate` (the error
    /// is one step divided by `calibrate`: 4 ms / 400 ms = 1%).
    pub fn calibrate(calibrate: Duration, force: Option<ClockKind>) -> Clock {
        let started = Instant::now();
        let mut step = f64::INFINITY;
        let mut t = next_step(monotonic_ns());
        for _ in 0..50 {
            let u = next_step(t);
            step = step.min((u - t) as f64);
            t = u;
            if started.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
        let use_tsc = match force {
            Some(k) => k == ClockKind::Tsc,
            None => step > FINE_ENOUGH_NS,
        };
        if !use_tsc || tsc().is_none() {
            return Clock {
                kind: ClockKind::Monotonic,
                ns_per_tick: 1.0,
                monotonic_step_ns: step,
                resolution_ns: step,
            };
        }
        // Both ends on a step edge of CLOCK_MONOTONIC.
        let t0 = next_step(monotonic_ns());
        let c0 = tsc().unwrap_or(0);
        let want = t0 + calibrate.as_nanos() as u64;
        let mut t1 = t0;
        while t1 < want {
            t1 = next_step(t1);
        }
        let c1 = tsc().unwrap_or(0);
        let ns_per_tick = (t1 - t0) as f64 / (c1.wrapping_sub(c0)).max(1) as f64;
        // The TSC's own step: the smallest non-zero difference of two reads (an
        // emulated TSC may advance in larger steps than one tick).
        let mut tsc_step = u64::MAX;
        let mut prev = tsc().unwrap_or(0);
        for _ in 0..10_000 {
            let c = tsc().unwrap_or(0);
            if c > prev {
                tsc_step = tsc_step.min(c - prev);
            }
            prev = c;
        }
        Clock {
            kind: ClockKind::Tsc,
            ns_per_tick,
            monotonic_step_ns: step,
            resolution_ns: tsc_step as f64 * ns_per_tick,
        }
    }

    /// The current tick.
    #[inline]
    pub fn now(&self) -> u64 {
        match self.kind {
            ClockKind::Monotonic => monotonic_ns(),
            ClockKind::Tsc => tsc().unwrap_or(0),
        }
    }

    /// Ticks to nanoseconds.
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }

    /// What the report says about the clock.
    pub fn describe(&self) -> String {
        match self.kind {
            ClockKind::Monotonic => {
                format!("CLOCK_MONOTONIC (step {:.0} ns)", self.monotonic_step_ns)
            }
            ClockKind::Tsc => format!(
                "TSC at {:.3} ns/tick (step {:.1} ns), calibrated against CLOCK_MONOTONIC (step {:.0} ns)",
                self.ns_per_tick, self.resolution_ns, self.monotonic_step_ns
            ),
        }
    }
}

/// min / median / p90 of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub samples: usize,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The spread of `samples` (the median of an even count is the mean of the middle two).
pub fn spread(samples: &[f64]) -> Spread {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Spread {
        samples: n,
        min: s[0],
        median,
        p90: percentile(&s, 90.0),
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A JSON value of a record field.
pub enum Val {
    Str(String),
    Int(u64),
    Num(f64),
    /// A ratio: 4 decimals.
    Ratio(f64),
    Bool(bool),
}

/// A JSON object with the fields in this order (numbers with 1 decimal: nanoseconds).
pub fn json_object(fields: &[(&str, Val)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Val::Str(s) => json_str(s),
                Val::Int(i) => i.to_string(),
                Val::Num(x) if x.is_finite() => format!("{x:.1}"),
                Val::Ratio(x) if x.is_finite() => format!("{x:.4}"),
                Val::Num(_) | Val::Ratio(_) => "null".into(),
                Val::Bool(b) => b.to_string(),
            };
            format!("{}:{v}", json_str(k))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_nearest_rank() {
        let s: Vec<f64> = (1..=10).map(f64::from).collect();
        let sp = spread(&s);
        assert_eq!((sp.min, sp.median, sp.p90, sp.samples), (1.0, 5.5, 9.0, 10));
        let sp = spread(&[3.0, 1.0, 2.0]);
        assert_eq!((sp.min, sp.median, sp.p90), (1.0, 2.0, 3.0));
        assert_eq!(spread(&[7.0]).p90, 7.0);
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(
            json_object(&[
                ("kind", Val::Str("round".into())),
                ("n", Val::Int(10)),
                ("x", Val::Num(1.26)),
                ("ok", Val::Bool(true)),
                ("bad", Val::Num(f64::NAN)),
                ("r", Val::Ratio(0.123456)),
            ]),
            r#"{"kind":"round","n":10,"x":1.3,"ok":true,"bad":null,"r":0.1235}"#
        );
    }

    #[test]
    fn clock_advances() {
        let c = Clock::calibrate(Duration::from_millis(50), None);
        let a = c.now();
        std::thread::sleep(Duration::from_millis(5));
        let d = c.ns(c.now() - a);
        assert!(
            (4.0e6..1.0e9).contains(&d),
            "{d} ns for a 5 ms sleep ({c:?})"
        );
    }

    /// The TSC path (what a TCG guest on jiffies uses) agrees with CLOCK_MONOTONIC.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn calibrated_tsc_measures_a_sleep() {
        let c = Clock::calibrate(Duration::from_millis(100), Some(ClockKind::Tsc));
        assert_eq!(c.kind, ClockKind::Tsc);
        assert!(
            c.resolution_ns > 0.0 && c.resolution_ns < 1000.0,
            "TSC step {} ns",
            c.resolution_ns
        );
        let (a, t) = (c.now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (d, want) = (c.ns(c.now() - a), t.elapsed().as_nanos() as f64);
        assert!(
            (d - want).abs() < want * 0.05,
            "TSC {d} ns, CLOCK_MONOTONIC {want} ns"
        );
    }
}
