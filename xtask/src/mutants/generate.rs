//! Mutants of the lines a series adds: operators applied to C tokens, each mutant a
//! one-line patch on top of the patched tree with a stable id.
//!
//! Only lines the series added, inside a function body, outside comments, string
//! literals and preprocessor lines are mutated. Ids are `file:line:operator:index`
//! (line in the patched file, index counting that operator's mutants on that line), and
//! the order is file path, line, operator, index: the same series gives the same list.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::clex::{int_value, lex, Kind, Tok};
use super::seriesdiff::{definition_start, reconstruct, FileView};
use crate::series::Series;
use crate::util::setup_error;

/// The mutation operators, in the order their mutants of one line are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operator {
    /// `<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`.
    Relational,
    /// `&&` <-> `||`.
    Logical,
    /// `if (c)` -> `if (!(c))`.
    NegateIf,
    /// An integer constant +1 (even index) or -1 (odd index).
    Constant,
    /// `!x` -> `x`.
    DropNot,
    /// A call, `break`, `continue` or assignment statement -> `(void)0;`.
    DeleteStatement,
    /// A flag mask (`PM_SCAN_*`, `PAGE_IS_*`, `UFFD_*`, `VM_*`, `_PAGE_*`) in a `&`/`|`
    /// expression -> `0`.
    MaskZero,
    /// `c ? a : b` -> `c ? b : a`.
    SwapTernary,
}

impl Operator {
    pub const ALL: [Operator; 8] = [
        Operator::Relational,
        Operator::Logical,
        Operator::NegateIf,
        Operator::Constant,
        Operator::DropNot,
        Operator::DeleteStatement,
        Operator::MaskZero,
        Operator::SwapTernary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::Relational => "relational",
            Operator::Logical => "logical",
            Operator::NegateIf => "negate-if",
            Operator::Constant => "constant",
            Operator::DropNot => "drop-not",
            Operator::DeleteStatement => "delete-statement",
            Operator::MaskZero => "mask-zero",
            Operator::SwapTernary => "swap-ternary",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One mutant: a single line of a patched file replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutant {
    /// `file:line:operator:index`, stable for a given series.
    pub id: String,
    pub file: String,
    /// 1-based, in the patched file.
    pub line: u32,
    pub operator: Operator,
    pub index: u32,
    pub function: Option<String>,
    /// What changed, for people: "`<` -> `<=`".
    pub description: String,
    pub original: String,
    pub mutated: String,
    /// Unified diff; applies with `patch -p1 --fuzz=0` in the patched tree.
    pub patch: String,
}

impl Mutant {
    /// Applies the mutant to the patched tree `dir` (strictly: no fuzz).
    pub fn apply(&self, dir: &std::path::Path) -> Result<()> {
        crate::series::apply_one(dir, &self.as_patch())
    }

    /// Takes the mutant out of `dir` again (`patch -R`, no fuzz).
    pub fn revert(&self, dir: &std::path::Path) -> Result<()> {
        let out = duct::cmd!(
            "patch",
            "-p1",
            "-R",
            // Without --forward, --batch would take a mutant that is not applied
            // for a reversed patch and apply it.
            "--forward",
            "--batch",
            "--fuzz=0",
            "--no-backup-if-mismatch",
            "--reject-file=-",
            "-d",
            dir
        )
        .stdin_bytes(self.patch.as_bytes())
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()?;
        if !out.status.success() {
            return Err(setup_error(format!(
                "mutants: reverting {} in {}: {}",
                self.id,
                dir.display(),
                crate::series::failure_problems(&String::from_utf8_lossy(&out.stdout)).join("; ")
            )));
        }
        Ok(())
    }

    fn as_patch(&self) -> crate::series::Patch {
        crate::series::Patch {
            name: format!("mutant {}", self.id),
            text: self.patch.clone(),
        }
    }

    /// Identity of the mutant's content: a stored result for the same id but another
    /// fingerprint is stale (the series changed under it).
    pub fn fingerprint(&self) -> String {
        let mut k = crate::util::Key::new("mutant");
        k.str("patch", &self.patch);
        k.short()
    }
}

/// A line the series added, as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesLine {
    pub file: String,
    pub line: u32,
    pub text: String,
    pub function: Option<String>,
}

/// Everything generated from a series for a set of files.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Generation {
    /// Every added line of the chosen files, mutated or not, in file/line order.
    pub lines: Vec<SeriesLine>,
    /// Every mutant of those lines, in id order.
    pub mutants: Vec<Mutant>,
}

/// The files mutated by default: the series' C sources and headers, except `tools/`
/// (the selftests: mutating them changes no kernel object).
pub fn default_file(path: &str) -> bool {
    (path.ends_with(".c") || path.ends_with(".h")) && !path.starts_with("tools/")
}

/// All mutants of the series' added lines in `files` (empty: [`default_file`]s).
pub fn generate(series: &Series, files: &[String]) -> Result<Generation> {
    let views = reconstruct(series)?;
    for f in files {
        if !views.contains_key(f) {
            let known: Vec<&str> = views.keys().map(String::as_str).collect();
            return Err(setup_error(format!(
                "mutants: --file {f}: the series {} does not change it (it changes: {})",
                series.origin.display(),
                known.join(", ")
            )));
        }
    }
    let mut g = Generation::default();
    for (path, view) in &views {
        let chosen = if files.is_empty() {
            default_file(path)
        } else {
            files.contains(path)
        };
        if chosen {
            generate_file(path, view, &mut g);
        }
    }
    Ok(g)
}

/// Checks the line numbers against a patched tree: every line the series' hunks show
/// must be that tree's line at that number (a series that applies with offsets would
/// put mutants on the wrong lines). Returns how many lines were checked.
pub fn verify_lines(series: &Series, tree: &std::path::Path) -> Result<usize> {
    let mut checked = 0;
    for (path, view) in reconstruct(series)? {
        let file = tree.join(&path);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| setup_error(format!("mutants: reading {}: {e}", file.display())))?;
        let lines: Vec<&str> = text.lines().collect();
        for (l, k) in &view {
            let found = lines.get(*l as usize - 1).copied();
            if found != Some(k.text.as_str()) {
                return Err(setup_error(format!(
                    "mutants: {}:{l}: the series puts {:?} there but the tree has {:?} \
                     (is it patched with this series, without offsets?)",
                    file.display(),
                    k.text,
                    found.unwrap_or("(end of file)")
                )));
            }
            checked += 1;
        }
    }
    Ok(checked)
}

/// Splits a view into runs of consecutive line numbers.
fn segments(view: &FileView) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    for &l in view.keys() {
        match out.last_mut() {
            Some(s) if *s.last().unwrap() + 1 == l => s.push(l),
            _ => out.push(vec![l]),
        }
    }
    out
}

/// Whether a run of lines starts inside a block comment: its first `*/` comes before
/// its first `/*`, or it opens with a ` * ...` continuation line.
fn starts_in_comment(view: &FileView, seg: &[u32]) -> bool {
    let first = view[&seg[0]].text.trim_start();
    if first.starts_with("* ") || first == "*" || first.starts_with("*/") {
        return true;
    }
    let text: String = seg
        .iter()
        .map(|l| view[l].text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    match (text.find("/*"), text.find("*/")) {
        (Some(o), Some(c)) => c < o,
        (None, Some(_)) => true,
        _ => false,
    }
}

struct LineCtx<'a> {
    toks: &'a [Tok],
    text: &'a str,
    /// The previous code line ended a statement or opened/closed a block, so this line
    /// starts a statement.
    statement_start: bool,
}

/// What the first pass learns about each line of a run of known lines.
struct Info {
    line: u32,
    toks: Vec<Tok>,
    /// Inside a function body, not a preprocessor or signature line, has tokens.
    code: bool,
    /// The previous code line ended a statement or opened/closed a block.
    statement_start: bool,
}

fn generate_file(path: &str, view: &FileView, g: &mut Generation) {
    for seg in segments(view) {
        let mut in_comment = starts_in_comment(view, &seg);
        let mut pp_continues = false;
        let mut in_signature = false;
        // The last token of the previous code line (None: unknown).
        let mut prev_end: Option<String> = None;
        let mut infos = Vec::new();
        for &l in &seg {
            let k = &view[&l];
            let was_comment = in_comment;
            let toks = lex(&k.text, &mut in_comment);
            let preprocessor = pp_continues || toks.first().is_some_and(|t| t.text == "#");
            pp_continues = preprocessor && k.text.trim_end().ends_with('\\');
            let definition = !was_comment && definition_start(&k.text).is_some();
            if definition {
                in_signature = true;
            }
            let signature = in_signature;
            if in_signature && toks.iter().any(|t| t.text == "{") {
                in_signature = false;
            }
            if k.added {
                g.lines.push(SeriesLine {
                    file: path.to_string(),
                    line: l,
                    text: k.text.clone(),
                    function: k.function.clone(),
                });
            }
            let statement_start = prev_end
                .as_deref()
                .is_some_and(|e| matches!(e, ";" | "{" | "}" | ")" | ":" | "else"));
            if preprocessor {
                prev_end = Some(";".into());
            } else if let Some(t) = toks.last() {
                prev_end = Some(t.text.clone());
            }
            infos.push(Info {
                line: l,
                code: k.function.is_some() && !preprocessor && !signature && !toks.is_empty(),
                toks,
                statement_start,
            });
        }
        for (i, info) in infos.iter().enumerate() {
            let k = &view[&info.line];
            if !(k.added && info.code) {
                continue;
            }
            let line_ctx = LineCtx {
                toks: &info.toks,
                text: &k.text,
                statement_start: info.statement_start,
            };
            let unit = statement_unit(view, &infos[i..]);
            // The same mutated text from two operators is one mutant (the first).
            let mut seen: Vec<String> = Vec::new();
            for op in Operator::ALL {
                let if_here = info.toks.iter().any(|t| t.text == "if");
                let (ctx, lines) = match (&unit, op) {
                    (Some((toks, text, n)), Operator::NegateIf) if if_here => (
                        LineCtx {
                            toks,
                            text,
                            statement_start: info.statement_start,
                        },
                        *n,
                    ),
                    (Some((toks, text, n)), Operator::DeleteStatement) => (
                        LineCtx {
                            toks,
                            text,
                            statement_start: info.statement_start,
                        },
                        *n,
                    ),
                    _ => (
                        LineCtx {
                            toks: line_ctx.toks,
                            text: line_ctx.text,
                            statement_start: line_ctx.statement_start,
                        },
                        1,
                    ),
                };
                let mut index = 0;
                for (mutated, description) in mutate(op, &ctx) {
                    if seen.contains(&mutated) || mutated == ctx.text {
                        continue;
                    }
                    seen.push(mutated.clone());
                    g.mutants.push(make_mutant(
                        path,
                        view,
                        info.line,
                        lines,
                        op,
                        index,
                        mutated,
                        description,
                    ));
                    index += 1;
                }
            }
        }
    }
}

/// A statement or `if (...)` head that goes on past its first line: the tokens of its
/// lines (offsets into their text joined with newlines), that text, and its line count.
/// None when it ends on its first line, or is not complete within 8 code lines.
fn statement_unit(view: &FileView, infos: &[Info]) -> Option<(Vec<Tok>, String, u32)> {
    let mut depth = 0i32;
    let mut toks = Vec::new();
    let mut text = String::new();
    for (n, info) in infos.iter().take(8).enumerate() {
        if !info.code || (n > 0 && info.line != infos[n - 1].line + 1) {
            return None;
        }
        if n > 0 {
            text.push('\n');
        }
        let base = text.len();
        text += &view[&info.line].text;
        for t in &info.toks {
            match t.text.as_str() {
                "(" | "[" => depth += 1,
                ")" | "]" => depth -= 1,
                _ => {}
            }
            toks.push(Tok {
                start: t.start + base,
                end: t.end + base,
                ..t.clone()
            });
        }
        let last = info.toks.last().map(|t| t.text.as_str());
        if depth <= 0 && matches!(last, Some(";" | "{" | "}" | ")" | ":")) {
            return (n > 0).then_some((toks, text, n as u32 + 1));
        }
    }
    None
}

/// Replaces `count` lines from `line` with `mutated` (one or more lines).
#[allow(clippy::too_many_arguments)]
fn make_mutant(
    path: &str,
    view: &FileView,
    line: u32,
    count: u32,
    operator: Operator,
    index: u32,
    mutated: String,
    description: String,
) -> Mutant {
    let last = line + count - 1;
    // Symmetric context (GNU patch anchors a hunk with uneven context at the file's
    // start or end), as much of the usual 3 lines as the series showed.
    let known = |from: u32, dir: i64| {
        (1..=3)
            .take_while(|d| {
                let n = from as i64 + dir * d;
                n >= 1 && view.contains_key(&(n as u32))
            })
            .count() as u32
    };
    let c = known(line, -1).min(known(last, 1));
    let original: Vec<&str> = (line..=last).map(|l| view[&l].text.as_str()).collect();
    let new_count = mutated.split('\n').count() as u32;
    let mut patch = format!(
        "--- a/{path}\n+++ b/{path}\n@@ -{s},{o} +{s},{n} @@\n",
        s = line - c,
        o = 2 * c + count,
        n = 2 * c + new_count
    );
    for l in line - c..line {
        patch += &format!(" {}\n", view[&l].text);
    }
    for o in &original {
        patch += &format!("-{o}\n");
    }
    for m in mutated.split('\n') {
        patch += &format!("+{m}\n");
    }
    for l in last + 1..=last + c {
        patch += &format!(" {}\n", view[&l].text);
    }
    Mutant {
        id: format!("{path}:{line}:{operator}:{index}"),
        file: path.to_string(),
        line,
        operator,
        index,
        function: view[&line].function.clone(),
        description,
        original: original.join("\n"),
        mutated,
        patch,
    }
}

/// `text` with the byte range `start..end` replaced.
fn splice(text: &str, start: usize, end: usize, with: &str) -> String {
    format!("{}{with}{}", &text[..start], &text[end..])
}

/// Index of the token closing the bracket opened at `open`, on this line.
fn matching(toks: &[Tok], open: usize) -> Option<usize> {
    let (o, c) = match toks[open].text.as_str() {
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        _ => return None,
    };
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.text == o {
            depth += 1;
        } else if t.text == c {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

const FLAG_PREFIXES: &[&str] = &["PM_SCAN_", "PAGE_IS_", "UFFD_", "VM_", "_PAGE_"];
const KEYWORDS: &[&str] = &[
    "return", "if", "else", "for", "while", "do", "switch", "case", "default", "goto", "sizeof",
    "break", "continue",
];

fn mutate(op: Operator, ctx: &LineCtx) -> Vec<(String, String)> {
    let toks = ctx.toks;
    let text = ctx.text;
    let mut out = Vec::new();
    let mut replace = |t: &Tok, with: &str| {
        out.push((
            splice(text, t.start, t.end, with),
            format!("`{}` -> `{with}`", t.text),
        ))
    };
    match op {
        Operator::Relational => {
            for t in toks.iter().filter(|t| t.kind == Kind::Punct) {
                let to = match t.text.as_str() {
                    "<" => "<=",
                    "<=" => "<",
                    ">" => ">=",
                    ">=" => ">",
                    "==" => "!=",
                    "!=" => "==",
                    _ => continue,
                };
                replace(t, to);
            }
        }
        Operator::Logical => {
            for t in toks.iter().filter(|t| t.kind == Kind::Punct) {
                match t.text.as_str() {
                    "&&" => replace(t, "||"),
                    "||" => replace(t, "&&"),
                    _ => {}
                }
            }
        }
        Operator::NegateIf => {
            for (i, t) in toks.iter().enumerate() {
                if t.kind == Kind::Ident
                    && t.text == "if"
                    && toks.get(i + 1).is_some_and(|p| p.text == "(")
                {
                    if let Some(close) = matching(toks, i + 1) {
                        if negation_of_primary(&toks[i + 2..close]) {
                            continue; // `if (!f(x))`: the same as drop-not's mutant
                        }
                        let (a, b) = (toks[i + 1].end, toks[close].start);
                        let cond = &text[a..b];
                        let short = cond.split_whitespace().collect::<Vec<_>>().join(" ");
                        out.push((
                            format!("{}!({cond}){}", &text[..a], &text[b..]),
                            format!("`if ({short})` -> `if (!({short}))`"),
                        ));
                    }
                }
            }
        }
        Operator::Constant => {
            if toks.first().is_some_and(|t| t.text == "case") {
                return out; // a duplicate case label does not build
            }
            for t in toks.iter().filter(|t| t.kind == Kind::Int) {
                if let Some((v, style)) = int_value(&t.text) {
                    if let Some(up) = v.checked_add(1) {
                        replace(t, &style.write(up));
                    }
                    let down = match v.checked_sub(1) {
                        Some(d) => style.write(d),
                        None => format!("-{}", style.write(1)),
                    };
                    replace(t, &down);
                }
            }
        }
        Operator::DropNot => {
            for t in toks
                .iter()
                .filter(|t| t.kind == Kind::Punct && t.text == "!")
            {
                out.push((
                    splice(text, t.start, t.end, ""),
                    format!("drop `!` at column {}", t.start + 1),
                ));
            }
        }
        Operator::DeleteStatement => {
            if let Some(kind) = deletable(ctx) {
                let indent = &text[..text.len() - text.trim_start().len()];
                out.push((format!("{indent}(void)0;"), format!("delete the {kind}")));
            }
        }
        Operator::MaskZero => {
            for (i, t) in toks.iter().enumerate() {
                if t.kind != Kind::Ident
                    || !FLAG_PREFIXES.iter().any(|p| t.text.starts_with(p))
                    || t.text.chars().any(|c| c.is_ascii_lowercase())
                    || toks.get(i + 1).is_some_and(|n| n.text == "(")
                {
                    continue;
                }
                let bitwise = |o: Option<&Tok>| {
                    o.is_some_and(|o| matches!(o.text.as_str(), "&" | "|" | "&=" | "|=" | "~"))
                };
                let before = if i > 0 { toks.get(i - 1) } else { None };
                let after = toks.get(i + 1).filter(|a| a.text != "~");
                // `x |= FLAG;` and `x &= ~FLAG;` with 0 are no-ops: delete-statement's.
                let whole_rhs = toks.get(i + 1).is_some_and(|a| a.text == ";")
                    && (before.is_some_and(|b| b.text == "|=")
                        || (before.is_some_and(|b| b.text == "~")
                            && i >= 2
                            && toks[i - 2].text == "&="));
                if !whole_rhs && (bitwise(before) || bitwise(after)) {
                    replace(t, "0");
                }
            }
        }
        Operator::SwapTernary => {
            for (q, t) in toks.iter().enumerate() {
                if t.text != "?" {
                    continue;
                }
                if let Some((colon, end)) = ternary_arms(toks, q) {
                    let a = text[toks[q].end..toks[colon].start].trim();
                    let b = text[toks[colon].end..end].trim();
                    if a.is_empty() || b.is_empty() || a.contains('?') {
                        continue;
                    }
                    let mutated = format!("{} {b} : {a}{}", &text[..toks[q].end], &text[end..]);
                    out.push((mutated, format!("swap `{a}` and `{b}`")));
                }
            }
        }
    }
    out
}

/// `! primary` (`!x`, `!f(a, b)`, `!p->q[i]`): a `!` before an operand with no binary
/// operator outside brackets.
fn negation_of_primary(cond: &[Tok]) -> bool {
    if cond.first().is_none_or(|t| t.text != "!") || cond.len() < 2 {
        return false;
    }
    let mut depth = 0;
    for t in &cond[1..] {
        match t.text.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            "->" | "." => {}
            _ if depth > 0 || t.kind == Kind::Ident => {}
            _ => return false,
        }
    }
    true
}

/// For the `?` at `q`: the index of its `:` and the byte offset where the third
/// operand ends, if all of it is on this line.
fn ternary_arms(toks: &[Tok], q: usize) -> Option<(usize, usize)> {
    let mut depth = 0i32;
    let mut nested = 0;
    let mut colon = None;
    for (i, t) in toks.iter().enumerate().skip(q + 1) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => return colon.map(|c| (c, t.start)),
            ")" | "]" | "}" => depth -= 1,
            "?" if depth == 0 => nested += 1,
            ":" if depth == 0 && colon.is_none() => {
                if nested == 0 {
                    colon = Some(i);
                } else {
                    nested -= 1;
                }
            }
            "," | ";" if depth == 0 => return colon.map(|c| (c, t.start)),
            _ => {}
        }
    }
    None // the third operand goes on past this line
}

/// What kind of deletable statement the line is, if it is one entirely.
fn deletable(ctx: &LineCtx) -> Option<&'static str> {
    let toks = ctx.toks;
    if !ctx.statement_start || toks.last()?.text != ";" {
        return None;
    }
    let first = &toks[0];
    match first.text.as_str() {
        "break" if toks.len() == 2 => return Some("break"),
        "continue" if toks.len() == 2 => return Some("continue"),
        _ => {}
    }
    if first.kind == Kind::Ident && KEYWORDS.contains(&first.text.as_str()) {
        return None;
    }
    if toks.get(1).is_some_and(|t| t.text == ":") {
        return None; // a label
    }
    // Declarations (`int x = 1;`, `struct page *p = f();`, `u64 a, b;`): deleting them
    // does not build.
    let ident = |i: usize| {
        toks.get(i)
            .is_some_and(|t| t.kind == Kind::Ident && !KEYWORDS.contains(&t.text.as_str()))
    };
    if ident(0) && ident(1) {
        return None;
    }
    if ident(0)
        && toks.get(1).is_some_and(|t| t.text == "*")
        && ident(2)
        && toks
            .get(3)
            .is_some_and(|t| matches!(t.text.as_str(), "=" | ";" | "," | "["))
    {
        return None;
    }
    // Balanced on this line.
    let mut depth = 0i32;
    let mut assignment = false;
    for t in toks {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            "=" | "+=" | "-=" | "*=" | "/=" | "%=" | "&=" | "|=" | "^=" | "<<=" | ">>="
                if depth == 0 =>
            {
                assignment = true
            }
            "++" | "--" if depth == 0 => assignment = true,
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    if depth != 0 {
        return None;
    }
    if assignment {
        return Some("assignment");
    }
    if first.kind == Kind::Ident && toks.iter().any(|t| t.text == "(") {
        return Some("call");
    }
    None
}

/// Counts per file and operator, for `--list` and the report.
pub fn counts(mutants: &[Mutant]) -> BTreeMap<String, BTreeMap<Operator, usize>> {
    let mut m: BTreeMap<String, BTreeMap<Operator, usize>> = BTreeMap::new();
    for x in mutants {
        *m.entry(x.file.clone())
            .or_default()
            .entry(x.operator)
            .or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Patch;

    fn one_line(text: &str, statement_start: bool, op: Operator) -> Vec<String> {
        let mut c = false;
        let toks = lex(text, &mut c);
        mutate(
            op,
            &LineCtx {
                toks: &toks,
                text,
                statement_start,
            },
        )
        .into_iter()
        .map(|(m, _)| m)
        .collect()
    }

    #[test]
    fn relational_and_logical() {
        assert_eq!(
            one_line("\tif (a < b && c >= d)", true, Operator::Relational),
            ["\tif (a <= b && c >= d)", "\tif (a < b && c > d)"]
        );
        assert_eq!(
            one_line("\tif (a < b && c >= d)", true, Operator::Logical),
            ["\tif (a < b || c >= d)"]
        );
        assert_eq!(
            one_line("\tx = a->b << 2;", true, Operator::Relational),
            Vec::<String>::new()
        );
        assert_eq!(
            one_line("\tif (x == y) /* a < b */", true, Operator::Relational),
            ["\tif (x != y) /* a < b */"]
        );
    }

    #[test]
    fn negate_if_needs_the_whole_condition() {
        assert_eq!(
            one_line("\t} else if (f(x) && y) {", true, Operator::NegateIf),
            ["\t} else if (!(f(x) && y)) {"]
        );
        assert!(one_line("\tif (a &&", true, Operator::NegateIf).is_empty());
        // drop-not makes that one
        assert!(one_line("\tif (!p->f(a, b[1]))", true, Operator::NegateIf).is_empty());
        assert_eq!(
            one_line("\tif (!a && b)", true, Operator::NegateIf),
            ["\tif (!(!a && b))"]
        );
        assert_eq!(
            one_line("\tif (!(a & b) == c)", true, Operator::NegateIf),
            ["\tif (!(!(a & b) == c))"]
        );
    }

    #[test]
    fn constants() {
        assert_eq!(
            one_line("\tn = 0x10;", true, Operator::Constant),
            ["\tn = 0x11;", "\tn = 0xf;"]
        );
        assert_eq!(
            one_line("\treturn 0;", true, Operator::Constant),
            ["\treturn 1;", "\treturn -1;"]
        );
        assert!(one_line("\tcase 3:", true, Operator::Constant).is_empty());
        assert!(one_line("\tpr_err(\"1 2\");", true, Operator::Constant).is_empty());
    }

    #[test]
    fn drop_not_and_masks() {
        assert_eq!(
            one_line("\tif (!x && a != b)", true, Operator::DropNot),
            ["\tif (x && a != b)"]
        );
        assert_eq!(
            one_line(
                "\tif (p->flags & PM_SCAN_WP_MATCHING)",
                true,
                Operator::MaskZero
            ),
            ["\tif (p->flags & 0)"]
        );
        assert!(one_line("\tcat |= PAGE_IS_WRITTEN;", true, Operator::MaskZero).is_empty());
        assert!(one_line("\tf &= ~VM_UFFD_WP;", true, Operator::MaskZero).is_empty());
        assert_eq!(
            one_line(
                "\tcat |= PAGE_IS_WRITTEN | PAGE_IS_FILE;",
                true,
                Operator::MaskZero
            ),
            [
                "\tcat |= 0 | PAGE_IS_FILE;",
                "\tcat |= PAGE_IS_WRITTEN | 0;"
            ]
        );
        // not in a bitwise expression, a function-like macro, or lower case
        assert!(one_line("\treturn PAGE_IS_FILE;", true, Operator::MaskZero).is_empty());
        assert!(one_line("\tVM_WARN_ON(x | y);", true, Operator::MaskZero).is_empty());
        assert_eq!(
            one_line("\tif (f & ~VM_UFFD_WP)", true, Operator::MaskZero),
            ["\tif (f & ~0)"]
        );
    }

    #[test]
    fn deletions() {
        let del = |t: &str, s: bool| one_line(t, s, Operator::DeleteStatement);
        assert_eq!(del("\t\tspin_unlock(ptl);", true), ["\t\t(void)0;"]);
        assert_eq!(del("\t\tp->found = true;", true), ["\t\t(void)0;"]);
        assert_eq!(del("\t\tbreak;", true), ["\t\t(void)0;"]);
        assert_eq!(del("\tcontinue;", true), ["\t(void)0;"]);
        assert_eq!(del("\ti++;", true), ["\t(void)0;"]);
        assert!(del("\tunsigned long x = 1;", true).is_empty());
        assert!(del("\tstruct page *p = f();", true).is_empty());
        assert!(del("\treturn f(x);", true).is_empty());
        assert!(del("\tgoto out;", true).is_empty());
        assert!(
            del("\t\t   y);", true).is_empty(),
            "end of a multi-line call"
        );
        assert!(
            del("\tf(x);", false).is_empty(),
            "continuation of a statement"
        );
        assert!(del("out: f(x);", true).is_empty());
    }

    const MULTI: &str = "\
--- /dev/null
+++ b/m.c
@@ -0,0 +1,17 @@
+static int f(int a, int b)
+{
+\tint r;
+
+\tif (a &&
+\t    b) {
+\t\tr = g(a,
+\t\t      b);
+\t\th(r,
+\t\t  a)->x = 1;
+out:
+\t\tif (r)
+\t\t\tr--;
+\t}
+\treturn r;
+}
+int x;
";

    #[test]
    fn statements_over_several_lines() {
        let s = Series {
            origin: "t".into(),
            patches: vec![Patch {
                name: "m".into(),
                text: MULTI.into(),
            }],
        };
        let g = generate(&s, &[]).unwrap();
        let by_op = |op| -> Vec<(u32, String)> {
            g.mutants
                .iter()
                .filter(|m| m.operator == op)
                .map(|m| (m.line, m.mutated.clone()))
                .collect()
        };
        assert_eq!(
            by_op(Operator::NegateIf),
            [
                (5, "\tif (!(a &&\n\t    b)) {".to_string()),
                (12, "\t\tif (!(r))".to_string())
            ]
        );
        assert_eq!(
            by_op(Operator::DeleteStatement),
            [
                (7, "\t\t(void)0;".to_string()),
                (9, "\t\t(void)0;".to_string()),
                (13, "\t\t\t(void)0;".to_string())
            ]
        );
        let m = g
            .mutants
            .iter()
            .find(|m| m.operator == Operator::DeleteStatement)
            .unwrap();
        assert_eq!(m.original, "\t\tr = g(a,\n\t\t      b);");
        assert!(m.patch.contains("@@ -4,8 +4,7 @@\n"), "{}", m.patch);
        let d = tempfile::tempdir().unwrap();
        crate::series::apply_one(d.path(), &s.patches[0]).unwrap();
        for m in &g.mutants {
            let p = Patch {
                name: m.id.clone(),
                text: m.patch.clone(),
            };
            crate::series::apply_one(d.path(), &p).unwrap();
            m.revert(d.path()).unwrap();
        }
    }

    #[test]
    fn ternary() {
        assert_eq!(
            one_line(
                "\tn = wp ? PAGE_IS_WRITTEN : 0;",
                true,
                Operator::SwapTernary
            ),
            ["\tn = wp ? 0 : PAGE_IS_WRITTEN;"]
        );
        assert_eq!(
            one_line("\tf(a ? b : c, d);", true, Operator::SwapTernary),
            ["\tf(a ? c : b, d);"]
        );
        assert!(one_line("\tn = a ? b :", true, Operator::SwapTernary).is_empty());
    }

    const NEW_FILE: &str = "\
--- /dev/null
+++ b/k/a.c
@@ -0,0 +1,18 @@
+#include <linux/x.h>
+#define LIMIT(x) ((x) < 3)
+/*
+ * if (a < b) in a comment
+ */
+static int scan(int a, int b,
+\t\tint c)
+{
+\tint n = 0;
+
+\tif (a < b)
+\t\tn++;
+\t/* b > c */
+\treturn n;
+}
+static int table[2] = { 1, 2 };
+const char *s = \"a < b\";
+int later(void);
";
    const CHANGE: &str = "\
--- a/k/a.c
+++ b/k/a.c
@@ -11,3 +11,3 @@ static int scan(int a, int b,
 \tif (a < b)
-\t\tn++;
+\t\tn += 2;
 \t/* b > c */
";

    fn series() -> Series {
        Series {
            origin: "t".into(),
            patches: vec![
                Patch {
                    name: "1".into(),
                    text: NEW_FILE.into(),
                },
                Patch {
                    name: "2".into(),
                    text: CHANGE.into(),
                },
                Patch {
                    name: "3".into(),
                    text: NEW_FILE.replace("k/a.c", "tools/t.c"),
                },
            ],
        }
    }

    #[test]
    fn only_function_bodies_outside_comments_and_preprocessor() {
        let g = generate(&series(), &[]).unwrap();
        let ids: Vec<&str> = g.mutants.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "k/a.c:9:constant:0",
                "k/a.c:9:constant:1",
                "k/a.c:11:relational:0",
                "k/a.c:11:negate-if:0",
                "k/a.c:12:constant:0",
                "k/a.c:12:constant:1",
                "k/a.c:12:delete-statement:0",
            ]
        );
        assert!(g
            .mutants
            .iter()
            .all(|m| m.function.as_deref() == Some("scan")));
        assert_eq!(g.lines.len(), 18, "tools/ is not a default file");
        let m = &g.mutants[2];
        assert_eq!(m.mutated, "\tif (a <= b)");
        assert_eq!(
            m.patch,
            "--- a/k/a.c\n+++ b/k/a.c\n@@ -8,7 +8,7 @@\n {\n \tint n = 0;\n \n-\tif (a < b)\n+\tif (a <= b)\n \t\tn += 2;\n \t/* b > c */\n \treturn n;\n"
        );
        let again = generate(&series(), &[]).unwrap();
        assert_eq!(g.mutants, again.mutants);
        assert_ne!(g.mutants[0].fingerprint(), g.mutants[1].fingerprint());
    }

    #[test]
    fn mutant_patches_apply_and_revert() {
        let d = tempfile::tempdir().unwrap();
        let s = series();
        for p in &s.patches {
            crate::series::apply_one(d.path(), p).unwrap();
        }
        let before = std::fs::read_to_string(d.path().join("k/a.c")).unwrap();
        for m in generate(&s, &[]).unwrap().mutants {
            let p = Patch {
                name: m.id.clone(),
                text: m.patch.clone(),
            };
            crate::series::apply_one(d.path(), &p).unwrap();
            let now = std::fs::read_to_string(d.path().join("k/a.c")).unwrap();
            assert_eq!(
                now.lines().nth(m.line as usize - 1),
                Some(m.mutated.as_str()),
                "{}",
                m.id
            );
            m.revert(d.path()).unwrap();
            assert_eq!(
                std::fs::read_to_string(d.path().join("k/a.c")).unwrap(),
                before
            );
        }
    }

    /// The patched 6.1 tree of the shared kernel cache (`cargo xtask test-kernel
    /// --target v6.1-pagemap-scan` makes it).
    fn patched_6_1() -> std::path::PathBuf {
        std::env::var_os("MUTANTS_TREE")
            .map(Into::into)
            .unwrap_or_else(|| {
                crate::util::project_root().join("target/kernel/trees/linux-6.1.192/tree")
            })
    }

    /// Every line the series' diffs show is the patched tree's line at that number, and
    /// every mutant of the real series applies to (a copy of) the patched files with
    /// `patch -p1 --fuzz=0`, changes exactly its line, and reverts cleanly.
    #[test]
    #[ignore = "needs the patched 6.1 tree (target/kernel/trees/linux-6.1.192/tree patched with pagemap-scan-6.1, or MUTANTS_TREE)"]
    fn real_series_mutants_apply_to_the_patched_tree() {
        let tree = patched_6_1();
        let series =
            Series::load(&crate::util::project_root().join("patches/pagemap-scan-6.1")).unwrap();
        let views = reconstruct(&series).unwrap();
        let checked = verify_lines(&series, &tree).unwrap();
        let copy = tempfile::tempdir().unwrap();
        for path in views.keys() {
            let text = std::fs::read_to_string(tree.join(path)).unwrap();
            let dst = copy.path().join(path);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::write(&dst, &text).unwrap();
        }
        let g = generate(&series, &[]).unwrap();
        for m in &g.mutants {
            let file = copy.path().join(&m.file);
            let before = std::fs::read_to_string(&file).unwrap();
            m.apply(copy.path()).unwrap();
            let after = std::fs::read_to_string(&file).unwrap();
            // Exactly the mutant's lines changed, into its mutated text.
            let mut want: Vec<&str> = before.lines().collect();
            let first = m.line as usize - 1;
            let n = m.original.split('\n').count();
            assert_eq!(want[first..first + n].join("\n"), m.original, "{}", m.id);
            want.splice(first..first + n, m.mutated.split('\n'));
            assert_eq!(after.lines().collect::<Vec<_>>(), want, "{}", m.id);
            m.revert(copy.path()).unwrap();
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                before,
                "{} reverts",
                m.id
            );
        }
        eprintln!(
            "{checked} known lines of {} files match the tree; {} mutants of {} added lines apply",
            views.len(),
            g.mutants.len(),
            g.lines.len()
        );
        for (file, ops) in counts(&g.mutants) {
            let per: Vec<String> = ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
            eprintln!(
                "    {file}: {} ({})",
                ops.values().sum::<usize>(),
                per.join(", ")
            );
        }
        assert!(g.mutants.len() > 100);
    }

    #[test]
    fn revert_of_a_mutant_not_applied_names_it() {
        let d = tempfile::tempdir().unwrap();
        let s = series();
        for p in &s.patches {
            crate::series::apply_one(d.path(), p).unwrap();
        }
        let m = &generate(&s, &[]).unwrap().mutants[0];
        let before = std::fs::read_to_string(d.path().join("k/a.c")).unwrap();
        let e = m.revert(d.path()).unwrap_err().to_string();
        assert!(e.contains(&m.id) && e.contains("k/a.c"), "{e}");
        let now = std::fs::read_to_string(d.path().join("k/a.c")).unwrap();
        assert_eq!(now, before, "a failed revert changes nothing");
        m.apply(d.path()).unwrap();
        let e = m.apply(d.path()).unwrap_err().to_string();
        assert!(e.contains("already applied"), "{e}");
        m.revert(d.path()).unwrap();
    }

    #[test]
    fn verify_lines_against_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let s = series();
        for p in &s.patches {
            crate::series::apply_one(d.path(), p).unwrap();
        }
        assert_eq!(verify_lines(&s, d.path()).unwrap(), 36);
        // One line inserted at the top: everything is off by one.
        let f = d.path().join("k/a.c");
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, format!("// new\n{text}")).unwrap();
        let e = verify_lines(&s, d.path()).unwrap_err().to_string();
        assert!(
            e.contains("k/a.c:1:") && e.contains("#include <linux/x.h>"),
            "{e}"
        );
    }

    #[test]
    fn unknown_file_is_named() {
        let e = generate(&series(), &["fs/nope.c".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("fs/nope.c") && e.contains("k/a.c"), "{e}");
        let g = generate(&series(), &["tools/t.c".into()]).unwrap();
        assert!(g.mutants.iter().all(|m| m.file == "tools/t.c") && !g.mutants.is_empty());
    }
}
