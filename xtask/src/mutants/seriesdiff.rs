//! What the series leaves in each file it touches, reconstructed from its diffs alone.
//!
//! Every hunk shows some lines of the file as they are after that patch (context and
//! added lines) at known line numbers. Carrying those lines through the later patches
//! (shifting them by each later hunk, dropping the ones a later hunk removes) gives, for
//! each touched file, a sparse view of the fully patched file: the text of every line
//! the series added, where it sits now, and the context around it. A later hunk whose
//! context or removed lines contradict what an earlier patch left is an error: such a
//! series only applies with offsets or fuzz, and the line numbers would be wrong.

use std::collections::BTreeMap;

use anyhow::Result;
use regex::Regex;

use crate::series::Series;
use crate::util::setup_error;

/// One line of a patched file that some hunk of the series showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub text: String,
    /// Added by the series (and not removed again by a later patch).
    pub added: bool,
    /// The function the line is in, as far as the hunk that last showed it tells.
    pub function: Option<String>,
}

/// The sparse view of one patched file: line number (1-based) -> line.
pub type FileView = BTreeMap<u32, Known>;

/// Every file the series touches, by path (`fs/proc/task_mmu.c`), in path order.
/// Deleted files are absent.
pub fn reconstruct(series: &Series) -> Result<BTreeMap<String, FileView>> {
    let mut files: BTreeMap<String, FileView> = BTreeMap::new();
    for patch in &series.patches {
        for fd in parse_patch(&patch.text)
            .map_err(|e| setup_error(format!("mutants: patch {}: {e}", patch.name)))?
        {
            match (&fd.old, &fd.new) {
                (_, None) => {
                    if let Some(old) = &fd.old {
                        files.remove(old);
                    }
                }
                (old, Some(new)) => {
                    let before = match old {
                        Some(o) => files.remove(o).unwrap_or_default(),
                        None => FileView::new(),
                    };
                    let after = apply_hunks(&before, &fd.hunks).map_err(|e| {
                        setup_error(format!("mutants: patch {}: {new}: {e}", patch.name))
                    })?;
                    files.insert(new.clone(), after);
                }
            }
        }
    }
    Ok(files)
}

#[derive(Debug)]
struct FileDiff {
    old: Option<String>,
    new: Option<String>,
    hunks: Vec<Hunk>,
}

#[derive(Debug)]
struct Hunk {
    old_start: u32,
    old_len: u32,
    new_start: u32,
    new_len: u32,
    function: Option<String>,
    /// (' ' | '-' | '+', text)
    lines: Vec<(char, String)>,
}

fn strip_path(raw: &str) -> Option<String> {
    let p = raw.split('\t').next().unwrap_or(raw).trim_end();
    if p == "/dev/null" {
        return None;
    }
    let p = p
        .strip_prefix("a/")
        .or_else(|| p.strip_prefix("b/"))
        .unwrap_or(p);
    Some(p.to_string())
}

/// The function named by a hunk header's context (`static int foo(int a,`).
pub fn function_in(text: &str) -> Option<String> {
    let re = Regex::new(r"([A-Za-z_]\w*)\s*\(").unwrap();
    let c = re.captures(text)?;
    let name = c[1].to_string();
    const NOT: &[&str] = &["if", "for", "while", "switch", "return", "sizeof"];
    (!NOT.contains(&name.as_str())).then_some(name)
}

/// A line that starts a function definition at column 0: `static int foo(...)` or
/// `foo(...)` after a return type on the line before; not a prototype (`;`).
pub fn definition_start(line: &str) -> Option<String> {
    let first = line.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let t = line.trim_end();
    if t.ends_with(';') || t.ends_with(',') && !t.contains('(') || t.starts_with("typedef") {
        return None;
    }
    if t.contains('=') && t.find('=') < t.find('(') {
        return None; // an initialiser: `static x = FOO(...)`
    }
    function_in(t)
}

fn parse_patch(text: &str) -> Result<Vec<FileDiff>, String> {
    let header = Regex::new(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<FileDiff> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let (Some(old), Some(new)) = (
            l.strip_prefix("--- "),
            lines.get(i + 1).and_then(|n| n.strip_prefix("+++ ")),
        ) {
            out.push(FileDiff {
                old: strip_path(old),
                new: strip_path(new),
                hunks: Vec::new(),
            });
            i += 2;
            continue;
        }
        if let Some(c) = header.captures(l) {
            let Some(fd) = out.last_mut() else {
                return Err(format!("line {}: a hunk before any file header", i + 1));
            };
            let num = |k: usize, dflt: u32| {
                c.get(k)
                    .map(|m| m.as_str().parse::<u32>().unwrap_or(u32::MAX))
                    .unwrap_or(dflt)
            };
            let mut h = Hunk {
                old_start: num(1, 0),
                old_len: num(2, 1),
                new_start: num(3, 0),
                new_len: num(4, 1),
                function: function_in(&c[5]),
                lines: Vec::new(),
            };
            let (mut o, mut n) = (0, 0);
            i += 1;
            while o < h.old_len || n < h.new_len {
                let Some(&hl) = lines.get(i) else {
                    return Err(format!("the hunk at line {} is cut short", i + 1));
                };
                i += 1;
                let (tag, rest) = match hl.chars().next() {
                    None => (' ', ""),
                    Some('\\') => continue, // \ No newline at end of file
                    Some(c @ (' ' | '-' | '+')) => (c, &hl[1..]),
                    Some(_) => return Err(format!("line {i}: not a diff line: {hl:?}")),
                };
                match tag {
                    ' ' => {
                        o += 1;
                        n += 1
                    }
                    '-' => o += 1,
                    _ => n += 1,
                }
                h.lines.push((tag, rest.to_string()));
            }
            if o != h.old_len || n != h.new_len {
                return Err(format!(
                    "line {i}: hunk line counts do not match its header"
                ));
            }
            fd.hunks.push(h);
            continue;
        }
        i += 1;
    }
    Ok(out)
}

fn apply_hunks(before: &FileView, hunks: &[Hunk]) -> Result<FileView, String> {
    // Effective first line of each side: a zero-length side names the line before.
    let eff = |start: u32, len: u32| if len == 0 { start + 1 } else { start };
    let mut after = FileView::new();
    // Lines outside every hunk shift by the size change of the hunks before them.
    for (&l, k) in before {
        let mut delta: i64 = 0;
        let mut inside = false;
        for h in hunks {
            let s = eff(h.old_start, h.old_len);
            if l < s {
                break;
            }
            if l < s + h.old_len {
                inside = true;
                break;
            }
            delta += h.new_len as i64 - h.old_len as i64;
        }
        if !inside {
            after.insert((l as i64 + delta) as u32, k.clone());
        }
    }
    for h in hunks {
        let (mut o, mut n) = (eff(h.old_start, h.old_len), eff(h.new_start, h.new_len));
        let mut function = h.function.clone();
        for (tag, text) in &h.lines {
            if *tag != '-' {
                if let Some(f) = definition_start(text) {
                    function = Some(f);
                }
            }
            let prev = before.get(&o);
            if *tag != '+' {
                if let Some(p) = prev {
                    if p.text != *text {
                        return Err(format!(
                            "line {o}: the hunk expects {text:?} but an earlier patch of the \
                             series left {:?} there (does the series need offsets or fuzz?)",
                            p.text
                        ));
                    }
                }
            }
            match tag {
                ' ' => {
                    after.insert(
                        n,
                        Known {
                            text: text.clone(),
                            added: prev.is_some_and(|p| p.added),
                            function: function.clone(),
                        },
                    );
                    o += 1;
                    n += 1;
                }
                '-' => o += 1,
                _ => {
                    after.insert(
                        n,
                        Known {
                            text: text.clone(),
                            added: true,
                            function: function.clone(),
                        },
                    );
                    n += 1;
                }
            }
            if *tag != '-' && text.starts_with('}') {
                function = None;
            }
        }
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Patch;

    fn series(patches: &[&str]) -> Series {
        Series {
            origin: "test".into(),
            patches: patches
                .iter()
                .enumerate()
                .map(|(i, t)| Patch {
                    name: format!("{i}"),
                    text: t.to_string(),
                })
                .collect(),
        }
    }

    const P1: &str = "\
--- /dev/null
+++ b/f.c
@@ -0,0 +1,6 @@
+int a;
+static int foo(int x)
+{
+\treturn x < 3;
+}
+int b;
";
    // Inserts two lines into foo and changes the comparison.
    const P2: &str = "\
diff --git a/f.c b/f.c
--- a/f.c
+++ b/f.c
@@ -3,3 +3,5 @@ static int foo(int x)
 {
-\treturn x < 3;
+\tif (x)
+\t\tx++;
+\treturn x <= 3;
 }
-- 
2.39.0
";

    #[test]
    fn later_patch_shifts_and_replaces() {
        let f = reconstruct(&series(&[P1, P2])).unwrap();
        let v = &f["f.c"];
        let texts: Vec<(u32, &str, bool)> = v
            .iter()
            .map(|(l, k)| (*l, k.text.as_str(), k.added))
            .collect();
        assert_eq!(
            texts,
            vec![
                (1, "int a;", true),
                (2, "static int foo(int x)", true),
                (3, "{", true),
                (4, "\tif (x)", true),
                (5, "\t\tx++;", true),
                (6, "\treturn x <= 3;", true),
                (7, "}", true),
                (8, "int b;", true),
            ]
        );
        assert_eq!(v[&5].function.as_deref(), Some("foo"));
        assert_eq!(v[&8].function, None);
        assert_eq!(v[&1].function, None);
    }

    #[test]
    fn context_lines_are_known_but_not_added() {
        let p = "--- a/g.c\n+++ b/g.c\n@@ -10,2 +10,3 @@ void bar(void)\n \tx = 1;\n+\ty = 2;\n \tz = 3;\n";
        let f = reconstruct(&series(&[p])).unwrap();
        let v = &f["g.c"];
        assert!(!v[&10].added && v[&11].added && !v[&12].added);
        assert_eq!(v[&11].function.as_deref(), Some("bar"));
    }

    #[test]
    fn pure_insertion_hunk_and_shift_after_it() {
        let p1 = "--- a/g.c\n+++ b/g.c\n@@ -20,2 +20,3 @@\n a\n+b\n c\n";
        // inserts one line after line 5: everything from line 6 moves down by one
        let p2 = "--- a/g.c\n+++ b/g.c\n@@ -5,0 +6 @@\n+new\n";
        let f = reconstruct(&series(&[p1, p2])).unwrap();
        let v = &f["g.c"];
        assert_eq!(v[&6].text, "new");
        assert_eq!(v[&22].text, "b");
        assert!(v[&22].added);
    }

    #[test]
    fn contradicting_context_is_an_error() {
        let p2 = "--- a/f.c\n+++ b/f.c\n@@ -4,1 +4,1 @@\n-\treturn x > 3;\n+\treturn 0;\n";
        let e = reconstruct(&series(&[P1, p2])).unwrap_err().to_string();
        assert!(e.contains("f.c") && e.contains("line 4"), "{e}");
    }

    #[test]
    fn deleted_file_disappears() {
        let p2 = "--- a/f.c\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-int a;\n";
        let f = reconstruct(&series(&[P1, p2])).unwrap();
        assert!(f.is_empty());
    }

    #[test]
    fn definitions() {
        assert_eq!(
            definition_start(
                "static long do_pagemap_scan(struct mm_struct *mm, unsigned long uarg)"
            ),
            Some("do_pagemap_scan".into())
        );
        assert_eq!(definition_start("int foo(void);"), None);
        assert_eq!(definition_start("\tfoo(x);"), None);
        assert_eq!(
            definition_start("static const struct mm_walk_ops ops = {"),
            None
        );
        assert_eq!(
            definition_start("SYSCALL_DEFINE1(userfaultfd, int, flags)"),
            Some("SYSCALL_DEFINE1".into())
        );
    }
}
