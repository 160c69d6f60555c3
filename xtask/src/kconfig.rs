//! Stage 3: the kernel configuration, as a value.
//!
//! tinyconfig, then the target's fragments merged in order (a later fragment wins; a
//! conflict between fragments is reported), then `olddefconfig`. Every option a
//! fragment asks for must survive; the ones Kconfig dropped are listed with the
//! `depends on` lines that explain why.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::util::setup_error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    NotSet,
    Set(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::NotSet => f.write_str("is not set"),
            Value::Set(v) => write!(f, "={v}"),
        }
    }
}

/// One requested option and where it was asked for.
#[derive(Clone, Debug)]
pub struct Request {
    pub value: Value,
    pub origin: String,
}

/// A parsed .config or fragment: option name (without CONFIG_) to value.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub options: BTreeMap<String, Value>,
}

/// Parses `.config` syntax. Malformed lines are errors naming file and line.
pub fn parse(text: &str, origin: &str) -> Result<BTreeMap<String, (Value, usize)>> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# CONFIG_") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                out.insert(name.to_string(), (Value::NotSet, i + 1));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(setup_error(format!(
                "kconfig: {origin}:{}: not an option: {raw:?}",
                i + 1
            )));
        };
        let Some(name) = k.strip_prefix("CONFIG_") else {
            return Err(setup_error(format!(
                "kconfig: {origin}:{}: option without CONFIG_ prefix: {raw:?}",
                i + 1
            )));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(setup_error(format!(
                "kconfig: {origin}:{}: bad option name {k:?}",
                i + 1
            )));
        }
        let v = if v == "n" {
            Value::NotSet
        } else {
            Value::Set(v.to_string())
        };
        out.insert(name.to_string(), (v, i + 1));
    }
    Ok(out)
}

impl Config {
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        Ok(Config {
            options: parse(text, origin)?
                .into_iter()
                .map(|(k, (v, _))| (k, v))
                .collect(),
        })
    }

    pub fn get(&self, name: &str) -> Value {
        self.options.get(name).cloned().unwrap_or(Value::NotSet)
    }

    pub fn apply(&mut self, requests: &BTreeMap<String, Request>) {
        for (k, r) in requests {
            self.options.insert(k.clone(), r.value.clone());
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.options {
            match v {
                Value::NotSet => s.push_str(&format!("# CONFIG_{k} is not set\n")),
                Value::Set(v) => s.push_str(&format!("CONFIG_{k}={v}\n")),
            }
        }
        s
    }
}

/// Merges fragments in order. Returns the requests and the conflicts (later wins).
pub fn merge(fragments: &[(String, String)]) -> Result<(BTreeMap<String, Request>, Vec<String>)> {
    let mut req: BTreeMap<String, Request> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (origin, text) in fragments {
        for (k, (v, line)) in parse(text, origin)? {
            let here = format!("{origin}:{line}");
            if let Some(prev) = req.get(&k) {
                if prev.value != v {
                    conflicts.push(format!(
                        "CONFIG_{k}: {} {} overrides {} {}",
                        here, v, prev.origin, prev.value
                    ));
                }
            }
            req.insert(
                k,
                Request {
                    value: v,
                    origin: here,
                },
            );
        }
    }
    Ok((req, conflicts))
}

/// Requested options that the final config does not have as asked.
pub fn dropped(req: &BTreeMap<String, Request>, got: &Config) -> Vec<(String, Request, Value)> {
    req.iter()
        .filter(|(k, r)| got.get(k) != r.value)
        .map(|(k, r)| (k.clone(), r.clone(), got.get(k)))
        .collect()
}

/// `depends on` / `select`-free hints: where the symbol is defined and what it needs.
pub fn hints(tree: &Path, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![tree.to_path_buf()];
    let header = format!("config {name}");
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let fname = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                if !fname.starts_with('.') && fname != "Documentation" && fname != "tools" {
                    stack.push(p);
                }
            } else if fname.starts_with("Kconfig") {
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                let mut lines = text.lines().enumerate().peekable();
                while let Some((i, l)) = lines.next() {
                    if l.trim() != header && l.trim() != format!("menuconfig {name}") {
                        continue;
                    }
                    let rel = p.strip_prefix(tree).unwrap_or(&p).display().to_string();
                    let mut deps = Vec::new();
                    while let Some((_, n)) = lines.peek() {
                        let t = n.trim();
                        if t.starts_with("config ")
                            || t.starts_with("menuconfig ")
                            || t.starts_with("endmenu")
                            || t.starts_with("choice")
                            || t.starts_with("if ")
                            || t.starts_with("menu ")
                        {
                            break;
                        }
                        if t.starts_with("depends on") {
                            deps.push(t.to_string());
                        }
                        lines.next();
                    }
                    out.push(format!(
                        "{rel}:{}: {}",
                        i + 1,
                        if deps.is_empty() {
                            "no depends on".into()
                        } else {
                            deps.join("; ")
                        }
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// The error for dropped options, with hints from the tree.
pub fn dropped_error(tree: &Path, dropped: &[(String, Request, Value)]) -> anyhow::Error {
    let mut msg = format!(
        "kconfig: {} requested option(s) did not survive olddefconfig:",
        dropped.len()
    );
    for (k, r, got) in dropped {
        msg.push_str(&format!(
            "\n    CONFIG_{k} (asked {} at {}): got {}",
            r.value, r.origin, got
        ));
        let h = hints(tree, k);
        if h.is_empty() {
            msg.push_str("\n        no such symbol in this tree's Kconfig files");
        }
        for line in h {
            msg.push_str(&format!("\n        {line}"));
        }
    }
    setup_error(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        let c = Config::parse(
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n# comment\nCONFIG_D=n\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.get("A"), Value::Set("y".into()));
        assert_eq!(c.get("B"), Value::NotSet);
        assert_eq!(c.get("C"), Value::Set("\"x y\"".into()));
        assert_eq!(c.get("D"), Value::NotSet);
        assert_eq!(c.get("E"), Value::NotSet);
        assert_eq!(Config::parse(&c.render(), "r").unwrap().options.len(), 4);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let e = Config::parse("CONFIG_A=y\nFOO\n", "frag.config")
            .unwrap_err()
            .to_string();
        assert!(e.contains("frag.config:2"), "{e}");
        let e = Config::parse("A=y\n", "f").unwrap_err().to_string();
        assert!(e.contains("CONFIG_ prefix"), "{e}");
    }

    #[test]
    fn merge_reports_conflicts_and_later_wins() {
        let (req, conflicts) = merge(&[
            ("a.config".into(), "CONFIG_X=y\nCONFIG_Y=y\n".into()),
            ("b.config".into(), "# CONFIG_X is not set\n".into()),
        ])
        .unwrap();
        assert_eq!(req["X"].value, Value::NotSet);
        assert_eq!(req["X"].origin, "b.config:1");
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].contains("a.config:1"));
    }

    #[test]
    fn dropped_lists_what_did_not_survive() {
        let (req, _) = merge(&[(
            "f".into(),
            "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n".into(),
        )])
        .unwrap();
        let got = Config::parse("CONFIG_A=y\nCONFIG_C=y\n", "got").unwrap();
        let d = dropped(&req, &got);
        let names: Vec<_> = d.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["B", "C"]);
    }

    #[test]
    fn hints_find_depends_on() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("mm")).unwrap();
        std::fs::write(
            t.path().join("mm/Kconfig"),
            "config MEM_SOFT_DIRTY\n\tbool \"x\"\n\tdepends on CHECKPOINT_RESTORE && HAVE_ARCH_SOFT_DIRTY\n\nconfig OTHER\n\tdepends on FOO\n",
        )
        .unwrap();
        let h = hints(t.path(), "MEM_SOFT_DIRTY");
        assert_eq!(
            h,
            ["mm/Kconfig:1: depends on CHECKPOINT_RESTORE && HAVE_ARCH_SOFT_DIRTY"]
        );
        let e = dropped_error(
            t.path(),
            &dropped(
                &merge(&[("f".into(), "CONFIG_MEM_SOFT_DIRTY=y\n".into())])
                    .unwrap()
                    .0,
                &Config::default(),
            ),
        )
        .to_string();
        assert!(
            e.contains("CONFIG_MEM_SOFT_DIRTY (asked =y at f:1): got is not set"),
            "{e}"
        );
        assert!(e.contains("CHECKPOINT_RESTORE"), "{e}");
    }
}
