//! Stage 0: the test matrix, `configs/targets.yaml`.
//!
//! Every key is checked: unknown keys are errors (serde `deny_unknown_fields`), and
//! a validation step names the offending key (`targets[2].expect.pagemap_ioctl.fail`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use guest_protocol::cmdline as protocol;
use guest_protocol::Thp;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// The target `cargo xtask test-kernel` runs without `--target`.
    pub default: String,
    pub targets: Vec<Target>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub source: Source,
    /// A series directory under the workspace (`patches/<name>`) or an mbox file.
    #[serde(default)]
    pub series: Option<PathBuf>,
    /// Config fragments, relative to `configs/`, merged over tinyconfig in order.
    pub configs: Vec<PathBuf>,
    #[serde(default)]
    pub qemu: QemuSettings,
    /// Suites to run, in order, and what each is expected to do on this target.
    pub suites: BTreeMap<String, Expect>,
    /// The run order of `suites` (the map is sorted): defaults to the map order.
    #[serde(default)]
    pub order: Vec<String>,
    /// Kernel alarms this target allows, each with its reason
    /// (`{pattern, match, reason}`; configs/alarms.yaml names the patterns).
    #[serde(default)]
    pub alarms_allow: crate::alarms::Allowlist,
}

/// Where the kernel source comes from. At least one of these.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A Debian source package fetched with `apt-get download` (e.g. linux-source-6.12).
    #[serde(default)]
    pub debian: Option<String>,
    /// A tarball (or a .deb holding one) by URL, verified by sha256 before use.
    #[serde(default)]
    pub tarball: Option<Tarball>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tarball {
    pub url: String,
    pub sha256: String,
}

/// The VM and the guest init's settings. The guest settings (`suite_timeout_s`,
/// `hugepages`, `swap_mib`, `thp`) default to the one set of defaults in
/// `guest_protocol::cmdline`, which the init uses too.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSettings {
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Per-suite timeout inside the guest.
    #[serde(default = "default_suite_timeout")]
    pub suite_timeout_s: u64,
    /// Host watchdog over the whole boot.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Hugetlb pages the guest reserves (2 MiB each).
    #[serde(default = "default_hugepages")]
    pub hugepages: u64,
    /// Swap the guest sets up on a RAM disk (brd), in MiB: MADV_PAGEOUT tests need it.
    #[serde(default = "default_swap")]
    pub swap_mib: u64,
    /// THP mode the guest sets: always or madvise.
    #[serde(default = "default_thp", with = "thp_word")]
    pub thp: Thp,
    /// Extra kernel command line.
    #[serde(default)]
    pub append: String,
}

fn default_memory() -> u32 {
    2048
}
fn default_cpus() -> u32 {
    2
}
fn default_suite_timeout() -> u64 {
    protocol::DEFAULT_TIMEOUT_SECS
}
fn default_timeout() -> u64 {
    1800
}
fn default_hugepages() -> u64 {
    protocol::DEFAULT_HUGEPAGES
}
fn default_swap() -> u64 {
    protocol::DEFAULT_SWAP_MIB
}
fn default_thp() -> Thp {
    protocol::DEFAULT_THP
}

/// `thp: always` in YAML <-> [`Thp`] (the protocol crate has no serde).
mod thp_word {
    use guest_protocol::Thp;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(thp: &Thp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(thp.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Thp, D::Error> {
        let word = String::deserialize(d)?;
        Thp::from_word(&word)
            .ok_or_else(|| D::Error::custom(format!("thp: {word:?} (always, madvise or never)")))
    }
}

impl Default for QemuSettings {
    fn default() -> Self {
        QemuSettings {
            memory_mib: default_memory(),
            cpus: default_cpus(),
            suite_timeout_s: default_suite_timeout(),
            timeout_s: default_timeout(),
            hugepages: default_hugepages(),
            swap_mib: default_swap(),
            thp: default_thp(),
            append: String::new(),
        }
    }
}

/// What a suite is expected to do on a target. Empty means: every test passes.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The suite skips as a whole (`1..0 # SKIP`); the value is the reason.
    #[serde(default)]
    pub skip_suite: Option<String>,
    /// Tests expected to fail, by exact name, each with the reason.
    #[serde(default)]
    pub fail: BTreeMap<String, String>,
    /// Tests expected to skip, by exact name, each with the reason (the kernel
    /// feature the target lacks).
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
    /// The kernel is broken on purpose (test data): any failure, crash, bail-out or
    /// timeout is expected, the tests under `fail` must fail, and a suite that
    /// reports no failure at all is a mismatch (it did not catch the breakage).
    #[serde(default)]
    pub broken: Option<String>,
}

pub const SUITES: &[&str] = &[
    "soft-dirty",
    "pagemap_ioctl",
    "pagemap_scan_regressions",
    // The benchmark, run as a guest workload by `cargo xtask bench --target`.
    "pagemap_bench",
];

impl Target {
    /// Suites in run order.
    pub fn suite_order(&self) -> Vec<String> {
        if self.order.is_empty() {
            self.suites.keys().cloned().collect()
        } else {
            self.order.clone()
        }
    }
}

impl Matrix {
    pub fn load(path: &Path) -> Result<Matrix> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Matrix::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Matrix> {
        let m: Matrix = serde_yaml::from_str(text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!("line {} column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            anyhow::anyhow!("{loc}{e}")
        })?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("targets[{i}] ({})", t.name);
            t.alarms_allow.validate(
                &crate::alarms::Patterns::builtin()?,
                &format!("{at}.alarms_allow"),
            )?;
            if t.name.is_empty() || t.name.contains('/') || t.name.contains(char::is_whitespace) {
                bail!("{at}.name: {:?} is not a usable target name", t.name);
            }
            if !seen.insert(&t.name) {
                bail!("{at}.name: target {:?} is defined twice", t.name);
            }
            if t.source.debian.is_none() && t.source.tarball.is_none() {
                bail!("{at}.source: needs `debian` or `tarball`");
            }
            if let Some(tb) = &t.source.tarball {
                if tb.sha256.len() != 64 || !tb.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    bail!(
                        "{at}.source.tarball.sha256: {:?} is not 64 hex digits",
                        tb.sha256
                    );
                }
            }
            if t.configs.is_empty() {
                bail!("{at}.configs: at least one fragment is needed");
            }
            if t.suites.is_empty() {
                bail!("{at}.suites: no suite to run");
            }
            for (s, e) in &t.suites {
                // The name travels in harness.suites: no commas, quotes or blanks.
                if let Err(e) = protocol::check_suite_name(s) {
                    bail!("{at}.suites: {e}");
                }
                if !SUITES.contains(&s.as_str()) && !s.ends_with(".c") {
                    bail!(
                        "{at}.suites.{s}: unknown suite (known: {})",
                        SUITES.join(", ")
                    );
                }
                if e.skip_suite.is_some() && e.broken.is_some() {
                    bail!("{at}.suites.{s}: skip_suite and broken exclude each other");
                }
                if e.skip_suite.is_some() && (!e.fail.is_empty() || !e.skip.is_empty()) {
                    bail!("{at}.suites.{s}: skip_suite excludes per-test fail/skip entries");
                }
                for (name, why) in e.fail.iter().chain(e.skip.iter()) {
                    if why.trim().is_empty() {
                        bail!("{at}.suites.{s}: {name:?} needs a reason");
                    }
                }
            }
            for s in &t.order {
                if !t.suites.contains_key(s) {
                    bail!("{at}.order: {s:?} is not in suites");
                }
            }
            // The suites need THP; `never` would turn their THP tests into skips.
            if t.qemu.thp == Thp::Never {
                bail!("{at}.qemu.thp: never (always or madvise)");
            }
            if t.qemu.suite_timeout_s == 0 {
                bail!("{at}.qemu.suite_timeout_s: must be > 0");
            }
            for (key, v) in [
                ("memory_mib", u64::from(t.qemu.memory_mib)),
                ("cpus", u64::from(t.qemu.cpus)),
                ("timeout_s", t.qemu.timeout_s),
            ] {
                if v == 0 {
                    bail!("{at}.qemu.{key}: must be > 0");
                }
            }
            // The hugetlb pages (2 MiB each) and the swap RAM disk come out of the
            // guest's memory; the suites and the kernel need room besides.
            let reserved = t
                .qemu
                .hugepages
                .saturating_mul(2)
                .saturating_add(t.qemu.swap_mib);
            if reserved.saturating_add(256) > u64::from(t.qemu.memory_mib) {
                bail!(
                    "{at}.qemu.memory_mib: {} MiB cannot hold hugepages ({} x 2 MiB) + \
                     swap_mib ({} MiB) + 256 MiB for the kernel and the suites",
                    t.qemu.memory_mib,
                    t.qemu.hugepages,
                    t.qemu.swap_mib
                );
            }
        }
        if !seen.contains(&self.default) {
            bail!("default: {:?} is not a target", self.default);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Target> {
        self.targets.iter().find(|t| t.name == name).ok_or_else(|| {
            let names: Vec<_> = self.targets.iter().map(|t| t.name.as_str()).collect();
            anyhow::anyhow!(
                "no target {name:?} in configs/targets.yaml (have: {})",
                names.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
default: a
targets:
  - name: a
    source: { debian: linux-source-6.12 }
    configs: [boot.config]
    suites:
      soft-dirty: {}
";

    #[test]
    fn minimal_parses_with_defaults() {
        let m = Matrix::parse(MINIMAL).unwrap();
        let t = m.get("a").unwrap();
        assert_eq!(t.qemu.cpus, 2);
        // The guest settings default to the protocol's one set of defaults.
        let g = guest_protocol::Settings::default();
        assert_eq!(t.qemu.suite_timeout_s, g.timeout_s);
        assert_eq!(
            (t.qemu.thp, t.qemu.hugepages, t.qemu.swap_mib),
            (g.thp, g.hugepages, g.swap_mib)
        );
        assert_eq!(t.suite_order(), vec!["soft-dirty"]);
        assert!(m.get("b").unwrap_err().to_string().contains("have: a"));
    }

    #[test]
    fn unknown_key_is_named() {
        let bad = MINIMAL.replace("configs:", "cofnigs: []\n    configs:");
        let e = format!("{:#}", Matrix::parse(&bad).unwrap_err());
        assert!(e.contains("cofnigs"), "{e}");
        let bad = MINIMAL.replace("soft-dirty: {}", "soft-dirty: { fial: {} }");
        let e = format!("{:#}", Matrix::parse(&bad).unwrap_err());
        assert!(e.contains("fial"), "{e}");
    }

    #[test]
    fn validation_names_the_key() {
        let bad = MINIMAL.replace("soft-dirty: {}", "soft-dirt: {}");
        let e = format!("{:#}", Matrix::parse(&bad).unwrap_err());
        assert!(e.contains("targets[0] (a).suites.soft-dirt"), "{e}");
        let bad = MINIMAL.replace("default: a", "default: z");
        assert!(format!("{:#}", Matrix::parse(&bad).unwrap_err()).contains("default"));
        let bad = MINIMAL.replace(
            "{ debian: linux-source-6.12 }",
            "{ tarball: { url: 'http://x', sha256: abc } }",
        );
        assert!(format!("{:#}", Matrix::parse(&bad).unwrap_err()).contains("sha256"));
        let with = |q: &str| MINIMAL.replace("configs:", &format!("qemu: {{ {q} }}\n    configs:"));
        let e = format!("{:#}", Matrix::parse(&with("thp: sometimes")).unwrap_err());
        assert!(e.contains("sometimes") && e.contains("madvise"), "{e}");
        let e = format!("{:#}", Matrix::parse(&with("thp: never")).unwrap_err());
        assert!(e.contains("targets[0] (a).qemu.thp"), "{e}");
        let e = format!(
            "{:#}",
            Matrix::parse(&with("suite_timeout_s: 0")).unwrap_err()
        );
        assert!(e.contains("suite_timeout_s"), "{e}");
        let m = Matrix::parse(&with("thp: madvise, swap_mib: 0")).unwrap();
        assert_eq!(m.get("a").unwrap().qemu.thp, Thp::Madvise);
        let bad = MINIMAL.replace("soft-dirty: {}", "\"a,b.c\": {}");
        let e = format!("{:#}", Matrix::parse(&bad).unwrap_err());
        assert!(e.contains("harness.suites"), "{e}");
    }

    #[test]
    fn shipped_matrix_is_valid() {
        let path = crate::util::project_root().join("configs/targets.yaml");
        let m = Matrix::load(&path).unwrap();
        for t in &m.targets {
            for c in &t.configs {
                let p = crate::util::project_root().join("configs").join(c);
                assert!(p.exists(), "{}: fragment {} missing", t.name, p.display());
            }
            if let Some(s) = &t.series {
                assert!(
                    crate::util::project_root().join(s).exists(),
                    "{}: series missing",
                    t.name
                );
            }
        }
    }
}
