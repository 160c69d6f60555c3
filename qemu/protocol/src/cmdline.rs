//! Host -> guest: the run's settings as `harness.*` kernel parameters.
//!
//! The host builds a [`Settings`] and appends [`Settings::encode`] to the kernel
//! command line; the init reads `/proc/cmdline` with [`parse`]. Parsing is a pure
//! function that never fails: it returns the settings with defaults filled in and one
//! diagnostic for everything it ignored (an unknown `harness.*` key, a value that does
//! not parse). Parameters outside the `harness.` namespace belong to the kernel and are
//! ignored silently.
//!
//! The defaults below are the only ones: `configs/targets.yaml` falls back to them for
//! a target that sets no `qemu:` value, and the init uses them when the command line
//! lacks a key (a boot by hand). They are what the README promises: THP always, 128
//! hugetlb pages, 256 MiB of swap, 600 s per suite.
//!
//! | key | value | default |
//! |---|---|---|
//! | `harness.suites` | comma-separated suite names, run in that order | every file in `/suites`, sorted |
//! | `harness.timeout` | per-suite timeout in whole seconds, > 0 | [`DEFAULT_TIMEOUT_SECS`] = 600 |
//! | `harness.thp` | `always`, `madvise` or `never` | [`DEFAULT_THP`] = `always` |
//! | `harness.hugepages` | `vm.nr_hugepages` to request | [`DEFAULT_HUGEPAGES`] = 128 |
//! | `harness.swap` | MiB of swap on `/dev/ram0` (the kernel's `brd`), 0 = none | [`DEFAULT_SWAP_MIB`] = 256 |
//! | `harness.repeat` | run the whole suite list this many times in one boot, > 0 | [`DEFAULT_REPEAT`] = 1 |
//!
//! With swap, [`Settings::encode`] also writes `brd.rd_size=<KiB>` ([`BRD_RD_SIZE`]): the
//! RAM disk must be as large as the swap area the init writes on it. A key given twice
//! takes the last value, as the kernel does for its own parameters.

use std::fmt;
use std::time::Duration;

/// `harness.suites`.
pub const KEY_SUITES: &str = "harness.suites";
/// `harness.timeout`.
pub const KEY_TIMEOUT: &str = "harness.timeout";
/// `harness.thp`.
pub const KEY_THP: &str = "harness.thp";
/// `harness.hugepages`.
pub const KEY_HUGEPAGES: &str = "harness.hugepages";
/// `harness.swap`.
pub const KEY_SWAP: &str = "harness.swap";
/// `harness.repeat`.
pub const KEY_REPEAT: &str = "harness.repeat";
/// The kernel's RAM disk size in KiB (`drivers/block/brd.c`), written with the swap.
pub const BRD_RD_SIZE: &str = "brd.rd_size";

/// Default per-suite timeout in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;
/// Default THP mode.
pub const DEFAULT_THP: Thp = Thp::Always;
/// Default number of persistent (hugetlb) huge pages to request, 2 MiB each on x86-64.
pub const DEFAULT_HUGEPAGES: u64 = 128;
/// Default swap size in MiB, on the `brd` RAM disk, so that `MADV_PAGEOUT` swaps.
pub const DEFAULT_SWAP_MIB: u64 = 256;

/// Default number of repetitions of the suite list (`--repeat`, flake hunting).
pub const DEFAULT_REPEAT: u32 = 1;

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

    /// The mode named by its sysfs word; `None` for anything else.
    pub fn from_word(s: &str) -> Option<Thp> {
        match s {
            "always" => Some(Thp::Always),
            "madvise" => Some(Thp::Madvise),
            "never" => Some(Thp::Never),
            _ => None,
        }
    }
}

impl fmt::Display for Thp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Suites to run in order; `None` means every file in the suites directory, sorted.
    pub suites: Option<Vec<String>>,
    /// Per-suite timeout in whole seconds, > 0.
    pub timeout_s: u64,
    /// THP mode to set.
    pub thp: Thp,
    /// `vm.nr_hugepages` to request.
    pub hugepages: u64,
    /// MiB of swap to set up on the RAM disk; 0 = no swap.
    pub swap_mib: u64,
    /// How many times the init runs the whole suite list, > 0.
    pub repeat: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            suites: None,
            timeout_s: DEFAULT_TIMEOUT_SECS,
            thp: DEFAULT_THP,
            hugepages: DEFAULT_HUGEPAGES,
            swap_mib: DEFAULT_SWAP_MIB,
            repeat: DEFAULT_REPEAT,
        }
    }
}

/// Why a [`Settings`] cannot be put on a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A suite name that is empty or holds a comma, a quote, whitespace or `=`.
    SuiteName(String),
    /// `timeout_s` is 0 (the init would ignore it and use its default).
    ZeroTimeout,
    /// `swap_mib * 1024` does not fit in 64 bits.
    SwapTooLarge(u64),
    /// `repeat` is 0 (the init would ignore it and run once).
    ZeroRepeat,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::SuiteName(n) => write!(
                f,
                "suite name {n:?} cannot go into {KEY_SUITES}: it must be non-empty, \
                 without commas, quotes, '=' or whitespace"
            ),
            EncodeError::ZeroTimeout => write!(f, "{KEY_TIMEOUT}: the timeout must be > 0 s"),
            EncodeError::SwapTooLarge(m) => write!(f, "{KEY_SWAP}: {m} MiB is too large"),
            EncodeError::ZeroRepeat => write!(f, "{KEY_REPEAT}: the repetitions must be > 0"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Whether `name` can be listed in `harness.suites` (and so be a suite at all).
pub fn check_suite_name(name: &str) -> Result<(), EncodeError> {
    let bad = name.is_empty()
        || name
            .chars()
            .any(|c| c == ',' || c == '"' || c == '=' || c.is_whitespace());
    if bad {
        Err(EncodeError::SuiteName(name.to_string()))
    } else {
        Ok(())
    }
}

impl Settings {
    /// Per-suite timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_s)
    }

    /// The kernel parameters that carry these settings, space separated, every key
    /// written (defaults too; `harness.repeat` only when not 1), plus `brd.rd_size` when there is swap. [`parse`] of the
    /// result gives back `self` with no diagnostics.
    pub fn encode(&self) -> Result<String, EncodeError> {
        let mut params = Vec::new();
        if let Some(suites) = &self.suites {
            for s in suites {
                check_suite_name(s)?;
            }
            params.push(format!("{KEY_SUITES}={}", suites.join(",")));
        }
        if self.timeout_s == 0 {
            return Err(EncodeError::ZeroTimeout);
        }
        params.push(format!("{KEY_TIMEOUT}={}", self.timeout_s));
        params.push(format!("{KEY_THP}={}", self.thp));
        params.push(format!("{KEY_HUGEPAGES}={}", self.hugepages));
        params.push(format!("{KEY_SWAP}={}", self.swap_mib));
        if self.repeat == 0 {
            return Err(EncodeError::ZeroRepeat);
        }
        // Written only when it is not 1: a run without --repeat keeps its old line.
        if self.repeat != DEFAULT_REPEAT {
            params.push(format!("{KEY_REPEAT}={}", self.repeat));
        }
        if self.swap_mib > 0 {
            let kib = self
                .swap_mib
                .checked_mul(1024)
                .ok_or(EncodeError::SwapTooLarge(self.swap_mib))?;
            params.push(format!("{BRD_RD_SIZE}={kib}"));
        }
        Ok(params.join(" "))
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
        if !param.starts_with("harness.") {
            continue;
        }
        let Some((key, value)) = param.split_once('=') else {
            diagnostics.push(format!("ignored kernel parameter {param}: no value"));
            continue;
        };
        match key {
            KEY_SUITES => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                settings.suites = Some(list);
            }
            KEY_TIMEOUT => match value.parse::<u64>() {
                Ok(secs) if secs > 0 => settings.timeout_s = secs,
                _ => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected whole seconds > 0, \
                     using {} s",
                    settings.timeout_s
                )),
            },
            KEY_THP => match Thp::from_word(value) {
                Some(thp) => settings.thp = thp,
                None => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected always, madvise or never, \
                     using {}",
                    settings.thp
                )),
            },
            KEY_HUGEPAGES => match value.parse::<u64>() {
                Ok(n) => settings.hugepages = n,
                Err(_) => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected a page count, using {}",
                    settings.hugepages
                )),
            },
            KEY_SWAP => match value.parse::<u64>() {
                Ok(n) => settings.swap_mib = n,
                Err(_) => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected a size in MiB, using {}",
                    settings.swap_mib
                )),
            },
            KEY_REPEAT => match value.parse::<u32>() {
                Ok(n) if n > 0 => settings.repeat = n,
                _ => diagnostics.push(format!(
                    "ignored kernel parameter {param}: expected a count > 0, using {}",
                    settings.repeat
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_no_harness_parameters() {
        let p = parse("console=ttyS0 panic=-1 root=/dev/ram0 quiet\n");
        assert_eq!(p.settings, Settings::default());
        assert_eq!(p.settings.timeout(), Duration::from_secs(600));
        assert_eq!(p.settings.thp, Thp::Always);
        assert_eq!(p.settings.hugepages, 128);
        assert_eq!(p.settings.suites, None);
        assert_eq!(p.settings.swap_mib, 256);
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn all_keys() {
        let p = parse(
            "console=ttyS0 harness.suites=soft-dirty,pagemap_ioctl,pagemap_scan_regressions \
             harness.timeout=42 harness.thp=madvise harness.hugepages=16 panic=-1 \
             harness.swap=64 brd.rd_size=65536 harness.repeat=20",
        );
        assert_eq!(
            p.settings.suites,
            Some(vec![
                "soft-dirty".to_string(),
                "pagemap_ioctl".to_string(),
                "pagemap_scan_regressions".to_string()
            ])
        );
        assert_eq!(p.settings.timeout(), Duration::from_secs(42));
        assert_eq!(p.settings.thp, Thp::Madvise);
        assert_eq!(p.settings.hugepages, 16);
        assert_eq!(p.settings.swap_mib, 64);
        assert_eq!(p.settings.repeat, 20);
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    }

    #[test]
    fn thp_never_zero_hugepages_no_swap() {
        let p = parse("harness.thp=never harness.hugepages=0 harness.swap=0");
        assert_eq!(p.settings.thp, Thp::Never);
        assert_eq!(p.settings.hugepages, 0);
        assert_eq!(p.settings.swap_mib, 0);
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
        assert_eq!(p.settings.timeout_s, 7);
    }

    #[test]
    fn bad_values_keep_defaults_with_diagnostics() {
        let p = parse(
            "harness.timeout=0 harness.timeout=abc harness.thp=sometimes \
             harness.hugepages=-1 harness.suites harness.swap=1G harness.repeat=0",
        );
        assert_eq!(p.settings, Settings::default());
        assert_eq!(p.diagnostics.len(), 7, "{:?}", p.diagnostics);
        assert!(p.diagnostics[0].contains("harness.timeout=0"));
        assert!(p.diagnostics[0].contains("using 600 s"));
        assert!(p.diagnostics[1].contains("harness.timeout=abc"));
        assert!(p.diagnostics[2].contains("harness.thp=sometimes"));
        assert!(p.diagnostics[3].contains("harness.hugepages=-1"));
        assert!(p.diagnostics[4].contains("harness.suites"));
        assert!(p.diagnostics[5].contains("harness.swap=1G"));
        assert!(p.diagnostics[6].contains("harness.repeat=0"));
    }

    #[test]
    fn unknown_harness_key_is_a_diagnostic_not_an_error() {
        let p = parse("harness.colour=blue harness.timeout=9 harnessx=1 other.key=2");
        assert_eq!(p.settings.timeout_s, 9);
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

    #[test]
    fn encode_writes_every_key_and_the_ram_disk_size() {
        let s = Settings {
            suites: Some(vec!["soft-dirty".into(), "pagemap_ioctl".into()]),
            ..Settings::default()
        };
        assert_eq!(
            s.encode().unwrap(),
            "harness.suites=soft-dirty,pagemap_ioctl harness.timeout=600 harness.thp=always \
             harness.hugepages=128 harness.swap=256 brd.rd_size=262144"
        );
        let none = Settings {
            swap_mib: 0,
            suites: None,
            ..Settings::default()
        };
        let line = none.encode().unwrap();
        assert!(line.ends_with("harness.swap=0"), "{line}");
        let twenty = Settings {
            repeat: 20,
            ..none.clone()
        };
        assert!(twenty
            .encode()
            .unwrap()
            .ends_with("harness.swap=0 harness.repeat=20"));
        assert!(
            !line.contains(BRD_RD_SIZE) && !line.contains(KEY_SUITES),
            "{line}"
        );
    }

    #[test]
    fn encode_refuses_what_parse_would_not_give_back() {
        for bad in ["", "a,b", "a b", "a\"b", "a=b", "a\tb"] {
            let s = Settings {
                suites: Some(vec!["ok".into(), bad.into()]),
                ..Settings::default()
            };
            assert_eq!(
                s.encode(),
                Err(EncodeError::SuiteName(bad.into())),
                "{bad:?}"
            );
        }
        let zero = Settings {
            timeout_s: 0,
            ..Settings::default()
        };
        assert_eq!(zero.encode(), Err(EncodeError::ZeroTimeout));
        let huge = Settings {
            swap_mib: u64::MAX,
            ..Settings::default()
        };
        assert!(matches!(huge.encode(), Err(EncodeError::SwapTooLarge(_))));
        let never = Settings {
            repeat: 0,
            ..Settings::default()
        };
        assert_eq!(never.encode(), Err(EncodeError::ZeroRepeat));
    }

    #[test]
    fn round_trip_settings_cmdline_settings() {
        let cases = [
            Settings::default(),
            Settings {
                suites: Some(vec!["soft-dirty".into()]),
                timeout_s: 1,
                thp: Thp::Madvise,
                hugepages: 0,
                swap_mib: 0,
                repeat: 20,
            },
            Settings {
                suites: Some(vec![]),
                timeout_s: u64::MAX,
                thp: Thp::Never,
                hugepages: 4096,
                swap_mib: 1,
                repeat: u32::MAX,
            },
            Settings {
                suites: Some(vec!["b".into(), "a.c".into(), "b".into()]),
                ..Settings::default()
            },
        ];
        for s in cases {
            let line = format!("console=ttyS0 panic=-1 {} quiet", s.encode().unwrap());
            let p = parse(&line);
            assert_eq!(p.settings, s, "{line}");
            assert!(p.diagnostics.is_empty(), "{line}: {:?}", p.diagnostics);
        }
    }
}
