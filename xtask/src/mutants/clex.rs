//! A small C lexer, one line at a time: enough to find operators, constants and
//! identifiers outside comments and literals. Block comments carry over between lines.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ident,
    /// An integer constant (decimal, octal or hex, with its suffix).
    Int,
    /// Any other number (floating point).
    Number,
    Str,
    Char,
    Punct,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tok {
    pub kind: Kind,
    /// Byte range in the line.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

const PUNCTS: &[&str] = &[
    "<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=",
    "-=", "*=", "/=", "%=", "&=", "|=", "^=", "##",
];

/// The tokens of `line`; `in_comment` says whether the line starts inside a block
/// comment and is updated for the next line. Comments produce no tokens.
pub fn lex(line: &str, in_comment: &mut bool) -> Vec<Tok> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if *in_comment {
            match line[i..].find("*/") {
                Some(p) => {
                    i += p + 2;
                    *in_comment = false;
                    continue;
                }
                None => return out,
            }
        }
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if line[i..].starts_with("/*") {
            *in_comment = true;
            i += 2;
            continue;
        }
        if line[i..].starts_with("//") {
            return out;
        }
        let start = i;
        let kind = if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            // L"..." and friends are string literals with a prefix.
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') && i - start <= 2 {
                i = skip_literal(b, i);
                if b[start..].iter().position(|&x| x == b'"') == Some(i - start - 1) {
                    Kind::Str
                } else {
                    Kind::Char
                }
            } else {
                Kind::Ident
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let mut prev = 0u8;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || b[i] == b'.'
                    || ((b[i] == b'+' || b[i] == b'-')
                        && matches!(prev, b'e' | b'E' | b'p' | b'P')))
            {
                prev = b[i];
                i += 1;
            }
            let t = &line[start..i];
            let hex = t.starts_with("0x") || t.starts_with("0X");
            if t.contains('.')
                || (!hex && (t.contains('e') || t.contains('E')))
                || (hex && t.contains(['p', 'P']))
            {
                Kind::Number
            } else {
                Kind::Int
            }
        } else if c == b'"' {
            i = skip_literal(b, i);
            Kind::Str
        } else if c == b'\'' {
            i = skip_literal(b, i);
            Kind::Char
        } else {
            let p = PUNCTS.iter().find(|p| line[i..].starts_with(**p));
            i += p.map_or_else(
                || line[i..].chars().next().map_or(1, char::len_utf8),
                |p| p.len(),
            );
            Kind::Punct
        };
        out.push(Tok {
            kind,
            start,
            end: i,
            text: line[start..i].to_string(),
        });
    }
    out
}

/// From the opening quote at `i`, the index after the closing one (or the line's end).
fn skip_literal(b: &[u8], mut i: usize) -> usize {
    let q = b[i];
    i += 1;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The value of an integer constant and how to write another value the same way.
pub fn int_value(text: &str) -> Option<(u64, IntStyle)> {
    let digits_end = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| matches!(c, 'u' | 'U' | 'l' | 'L'))
        .last()
        .map_or(text.len(), |(i, _)| i);
    let (body, suffix) = text.split_at(digits_end);
    let (radix, digits, prefix) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, h, &body[..2])
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], "0")
        } else {
            (10, body, "")
        };
    let v = u64::from_str_radix(digits, radix).ok()?;
    Some((
        v,
        IntStyle {
            radix,
            prefix: prefix.to_string(),
            upper: digits.chars().any(|c| c.is_ascii_uppercase()),
            suffix: suffix.to_string(),
        },
    ))
}

pub struct IntStyle {
    radix: u32,
    prefix: String,
    upper: bool,
    suffix: String,
}

impl IntStyle {
    pub fn write(&self, v: u64) -> String {
        let digits = match self.radix {
            16 if self.upper => format!("{v:X}"),
            16 => format!("{v:x}"),
            8 => format!("{v:o}"),
            _ => v.to_string(),
        };
        format!("{}{digits}{}", self.prefix, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str, c: &mut bool) -> Vec<String> {
        lex(line, c).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn operators_longest_first() {
        let mut c = false;
        assert_eq!(
            texts("if (a->b <= 3 && c >>= 1 || !d != e)", &mut c),
            [
                "if", "(", "a", "->", "b", "<=", "3", "&&", "c", ">>=", "1", "||", "!", "d", "!=",
                "e", ")"
            ]
        );
    }

    #[test]
    fn comments_and_literals_hide_their_content() {
        let mut c = false;
        assert_eq!(texts("x = 1; /* a < b", &mut c), ["x", "=", "1", ";"]);
        assert!(c);
        assert_eq!(texts(" * still < comment", &mut c), Vec::<String>::new());
        assert_eq!(texts(" */ y < 2; // z > 3", &mut c), ["y", "<", "2", ";"]);
        assert!(!c);
        let t = lex(r#"pr_err("a < b \" c", 'x', '\'');"#, &mut c);
        let kinds: Vec<Kind> = t.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Ident,
                Kind::Punct,
                Kind::Str,
                Kind::Punct,
                Kind::Char,
                Kind::Punct,
                Kind::Char,
                Kind::Punct,
                Kind::Punct
            ]
        );
    }

    #[test]
    fn numbers() {
        let mut c = false;
        let t = lex("a = 0x1fULL + 1.5 + 010 + 1e3 + 7;", &mut c);
        let ints: Vec<&str> = t
            .iter()
            .filter(|t| t.kind == Kind::Int)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(ints, ["0x1fULL", "010", "7"]);
        let (v, s) = int_value("0x1fULL").unwrap();
        assert_eq!((v, s.write(v + 1)), (31, "0x20ULL".to_string()));
        let (v, s) = int_value("010").unwrap();
        assert_eq!((v, s.write(v - 1)), (8, "07".to_string()));
        let (v, s) = int_value("0XFF").unwrap();
        assert_eq!(s.write(v + 1), "0X100");
        assert_eq!(int_value("0").unwrap().0, 0);
    }
}
