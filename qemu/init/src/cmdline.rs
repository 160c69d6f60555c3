//! Settings from the kernel command line (`/proc/cmdline`).
//!
//! The host passes the run's settings as `harness.*` parameters. Parsing is a pure
//! function: it never fails, it returns the settings with defaults filled in and a list
//! of diagnostics for everything it ignored (an unknown `harness.*` key, a value that
//! does not parse). Parameters outside the `harness.` namespace belong to the kernel and
//! are ignored silently.
//!
//! | key | value | default |
//! |---|---|---|
//! | `harness.suites` | comma-separated suite names, run in that order | every file in `/suites`, sorted |
//! | `harness.timeout` | per-suite timeout in whole seconds, > 0 | 300 |
//! | `harness.thp` | `always`, `madvise` or `never` | `always` |
//! | `harness.hugepages` | `vm.nr_hugepages` to request | 64 |
//! | `harness.swap` | MiB of swap on `/dev/ram0` (the kernel's `brd`), 0 = none | 0 |
//!
//! A key given twice takes the last value, as the kernel does for its own parameters.

use std::time::Duration;

/// Default per-suite timeout in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;
/// Default number of persistent huge pages to request.
pub const DEFAULT_HUGEPAGES: u64 = 64;
/// Default swap size in MiB: no swap.
pub const DEFAULT_SWAP_MIB: u64 = 0;

/// Transparent huge page mode, as written to `/sys/kernel/mm/transparent_hugepage/enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thp {
    Always,
    Madvise,
    Never,
}

impl Thp {
    /// The word the sysfs file takes and shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Thp::Always => "always",
            Thp::Madvise => "madvise",
            Thp::Never => "never",
        }
    }

    fn parse(s: &str) -> Option<Thp> {
        match s {
            "always" => Some(Thp::Always),
            "madvise" => Some(Thp::Madvise),
            "never" => Some(Thp::Never),
            _ => None,
        }
    }
}

/// The run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Suites to run in order; `None` means every file in the suites directory, sorted.
    pub suites: Option<Vec<String>>,
    /// Per-suite timeout.
    pub timeout: Duration,
    /// THP mode to set.
    pub thp: Thp,
    /// `vm.nr_hugepages` to request.
    pub hugepages: u64,
    /// MiB of swap to set up on the RAM disk; 0 = no swap.
    pub swap_mib: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            suites: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            thp: Thp::Always,
            hugepages: DEFAULT_HUGEPAGES,
            swap_mib: DEFAULT_SWAP_MIB,
        }
    }
}

/// Result of parsing: the settings and one diagnostic per ignored parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub settings: Settings,
    pub diagnostics: Vec<String>,
}

/// Splits a command line into parameters the way the kernel's `next_arg()` does:
/// whitespace separates parameters, double quotes protect whitespace and are removed.
pub fn split_params(cmdline: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut started = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    params.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        params.push(current);
    }
    params
}

/// Parses the kernel command line. Never fails: bad values keep their default and
/// produce a diagnostic naming the parameter.
pub fn parse(cmdline: &str) -> Parsed {
    let mut settings = Settings::default();
    let mut diagnostics = Vec::new();
    for param in split_params(cmdline) {
        let Some(key) = param.strip_prefix("harness.") else {
            continue;
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (key, None),
        };
        let Some(value) = value else {
            diagnostics.push(format!("ignored kernel parameter {param}: no value"));
            continue;
        };
        match key {
            "suites" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                settings.suites = Some(list);
            }
            "timeout" => match value.parse::<u64>() {
                Ok(secs) if secs > 0 => settings.timeout = Duration::from_secs(secs),
                _ => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected whole seconds > 0, \
                     using {} s",
                    settings.timeout.as_secs()
                )),
            },
            "thp" => match Thp::parse(value) {
                Some(thp) => settings.thp = thp,
                None => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected always, madvise or never, \
                     using {}",
                    settings.thp.as_str()
                )),
            },
            "hugepages" => match value.parse::<u64>() {
                Ok(n) => settings.hugepages = n,
                Err(_) => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected a page count, using {}",
                    settings.hugepages
                )),
            },
            "swap" => match value.parse::<u64>() {
                Ok(n) => settings.swap_mib = n,
                Err(_) => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected a size in MiB, using {}",
                    settings.swap_mib
                )),
            },
            _ => diagnostics.push(format!("ignored unknown kernel parameter {param}")),
        }
    }
    Parsed {
        settings,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_no_harness_parameters() {
        let p = parse("console=ttyS0 panic=-1 root=/dev/ram0 quiet\n");
        assert_eq!(p.settings, Settings::default());
        assert_eq!(p.settings.timeout, Duration::from_secs(300));
        assert_eq!(p.settings.thp, Thp::Always);
        assert_eq!(p.settings.hugepages, 64);
        assert_eq!(p.settings.suites, None);
        assert_eq!(p.settings.swap_mib, 0);
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn all_keys() {
        let p = parse(
            "console=ttyS0 harness.suites=soft-dirty,pagemap_ioctl,pagemap_scan_regressions \
             harness.timeout=42 harness.thp=madvise harness.hugepages=16 panic=-1 \
             harness.swap=256 brd.rd_size=262144",
        );
        assert_eq!(
            p.settings.suites,
            Some(vec![
                "soft-dirty".to_string(),
                "pagemap_ioctl".to_string(),
                "pagemap_scan_regressions".to_string()
            ])
        );
        assert_eq!(p.settings.timeout, Duration::from_secs(42));
        assert_eq!(p.settings.thp, Thp::Madvise);
        assert_eq!(p.settings.hugepages, 16);
        assert_eq!(p.settings.swap_mib, 256);
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    }

    #[test]
    fn thp_never_and_zero_hugepages() {
        let p = parse("harness.thp=never harness.hugepages=0");
        assert_eq!(p.settings.thp, Thp::Never);
        assert_eq!(p.settings.hugepages, 0);
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn suites_list_drops_empty_entries_and_keeps_order() {
        let p = parse("harness.suites=b,,a,c,");
        assert_eq!(
            p.settings.suites,
            Some(vec!["b".to_string(), "a".to_string(), "c".to_string()])
        );
        let p = parse("harness.suites=");
        assert_eq!(p.settings.suites, Some(vec![]));
    }

    #[test]
    fn last_value_wins() {
        let p = parse("harness.timeout=5 harness.timeout=7");
        assert_eq!(p.settings.timeout, Duration::from_secs(7));
    }

    #[test]
    fn bad_values_keep_defaults_with_diagnostics() {
        let p = parse(
            "harness.timeout=0 harness.timeout=abc harness.thp=sometimes \
             harness.hugepages=-1 harness.suites harness.swap=1G",
        );
        assert_eq!(p.settings, Settings::default());
        assert_eq!(p.diagnostics.len(), 6, "{:?}", p.diagnostics);
        assert!(p.diagnostics[0].contains("harness.timeout=0"));
        assert!(p.diagnostics[1].contains("harness.timeout=abc"));
        assert!(p.diagnostics[2].contains("harness.thp=sometimes"));
        assert!(p.diagnostics[3].contains("harness.hugepages=-1"));
        assert!(p.diagnostics[4].contains("harness.suites"));
        assert!(p.diagnostics[5].contains("harness.swap=1G"));
    }

    #[test]
    fn unknown_harness_key_is_a_diagnostic_not_an_error() {
        let p = parse("harness.colour=blue harness.timeout=9 harnessx=1 other.key=2");
        assert_eq!(p.settings.timeout, Duration::from_secs(9));
        assert_eq!(
            p.diagnostics,
            vec!["ignored unknown kernel parameter harness.colour=blue".to_string()]
        );
    }

    #[test]
    fn quotes_like_the_kernel() {
        assert_eq!(
            split_params("a=1  \"b=x y\" c=\"p q\"\n d"),
            vec!["a=1", "b=x y", "c=p q", "d"]
        );
        assert_eq!(split_params("  \n"), Vec::<String>::new());
        let p = parse("harness.suites=\"x, y\"");
        assert_eq!(
            p.settings.suites,
            Some(vec!["x".to_string(), "y".to_string()])
        );
    }
}
