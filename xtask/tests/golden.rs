//! Golden runs: each directory under `tests/golden/` is a recorded run (run.json,
//! results.ktap, console.log; see the README there). `cargo xtask parse <dir>` must
//! reproduce its exit code and the lines of its `expected` file, in order.
//!
//! `expected` holds `exit N` and then lines the replay must print, each exactly, in
//! that order: the suite rows, the unexpected results, the failed stage, the
//! verdict. `GOLDEN_BLESS=1 cargo test -p xtask --test golden` rewrites them from
//! the current output (review the diff: a blessed regression is still a regression).

use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("run.json").exists())
        .collect();
    v.sort();
    v
}

/// Replays a run directory: (exit code, stdout).
fn replay(dir: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("parse")
        .arg(dir)
        .output()
        .expect("running xtask parse");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.code().is_some(),
        "xtask parse {} died: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), stdout)
}

/// Checks a replay against an expected summary; `Err` says what differs.
fn check(expected: &str, code: i32, stdout: &str) -> Result<(), String> {
    let mut lines = expected.lines();
    let want = lines
        .next()
        .and_then(|l| l.strip_prefix("exit "))
        .and_then(|n| n.trim().parse::<i32>().ok())
        .ok_or("the first line of `expected` must be `exit N`")?;
    if want != code {
        return Err(format!("exit {code}, expected exit {want}"));
    }
    let out: Vec<&str> = stdout.lines().collect();
    let mut at = 0;
    for l in lines {
        match out[at..].iter().position(|o| *o == l) {
            Some(i) => at += i + 1,
            None => return Err(format!("missing (or out of order): {l:?}")),
        }
    }
    Ok(())
}

/// The lines an expected summary keeps from a replay's output.
fn summary_lines(code: i32, stdout: &str) -> String {
    let mut o = format!("exit {code}\n");
    let mut section = "";
    let mut last = "";
    for l in stdout.lines() {
        if l.is_empty() {
            section = "";
            continue;
        }
        let mut keep = matches!(section, "suites" | "unexpected" | "stopped");
        if l.starts_with("suite ") {
            section = "suites";
        } else if l.starts_with("unexpected results") {
            section = "unexpected";
        } else if l.starts_with("stopped at stage") {
            section = "stopped";
        } else if l.starts_with("C programs vs Rust ports") {
            section = "c-vs-rust";
        } else if l.starts_with("kernel console trouble") {
            section = "console";
        } else if section == "console" {
            // The first line of the first quote.
            keep = true;
            section = "";
        } else if l.ends_with(':') && !l.starts_with(' ') {
            section = "";
        }
        keep |= matches!(
            section,
            "suites" | "unexpected" | "stopped" | "console" | "c-vs-rust"
        ) || l.starts_with("verdict: ")
            || l.starts_with("watchdog: ")
            || l.starts_with("patch: ")
            || l.starts_with("  hunk: ");
        // Repeated lines (one per missing test) say nothing more the second time.
        if keep && l != last {
            o.push_str(l);
            o.push('\n');
            last = l;
        }
    }
    o
}

#[test]
fn golden_runs_replay_as_recorded() {
    let bless = std::env::var_os("GOLDEN_BLESS").is_some();
    let cases = cases();
    assert!(cases.len() >= 12, "only {} golden runs", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let (code, stdout) = replay(dir);
        let exp = dir.join("expected");
        if bless {
            std::fs::write(&exp, summary_lines(code, &stdout)).unwrap();
            continue;
        }
        let expected =
            std::fs::read_to_string(&exp).unwrap_or_else(|e| panic!("{}: {e}", exp.display()));
        if let Err(e) = check(&expected, code, &stdout) {
            failures.push(format!(
                "{}: {e}\n--- output\n{stdout}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Each golden test fails when its expected summary is edited: the exit code, or
/// any one line, changed.
#[test]
fn an_edited_expected_summary_fails() {
    for dir in cases() {
        let (code, stdout) = replay(&dir);
        let expected = std::fs::read_to_string(dir.join("expected")).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        assert!(check(&expected, code, &stdout).is_ok(), "{name}");
        let lines: Vec<&str> = expected.lines().collect();
        assert!(lines.len() >= 2, "{name}: expected has no verdict lines");
        for i in 0..lines.len() {
            let mut edited = lines.clone();
            let changed = if i == 0 {
                format!("exit {}", (code + 1) % 4)
            } else {
                format!("{}x", lines[i])
            };
            edited[i] = &changed;
            assert!(
                check(&edited.join("\n"), code, &stdout).is_err(),
                "{name}: editing line {} of expected went unnoticed",
                i + 1
            );
        }
        // Lines swapped out of order are noticed too.
        if lines.len() >= 3 && lines[1] != lines[2] {
            let mut swapped = lines.clone();
            swapped.swap(1, 2);
            assert!(
                check(&swapped.join("\n"), code, &stdout).is_err(),
                "{name}: reordering went unnoticed"
            );
        }
    }
}
