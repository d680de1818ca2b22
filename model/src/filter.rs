//! A naive parser and matcher for containerd's filter language (`pkg/filters`).
//!
//! ```text
//! selectors := selector ("," selector)*        comma = AND; "" matches everything
//! selector  := fieldpath (operator value)?
//! fieldpath := field ("." field)*
//! field     := "quoted" | [A-Za-z0-9_]+
//! operator  := "==" | "!=" | "~="
//! value     := "quoted" | /quoted/ | |quoted| | first-char value-char*
//! ```
//!
//! This follows containerd's scanner and parser char by char, including its quirks:
//! - a field may start with a digit or `_`; `-` is no field character;
//! - whitespace may come before a field, an operator or a value, nowhere else;
//! - `/…/` and `|…|` quote only the value of `~=`; fields and other values take `"…"` only;
//! - inside quotes only Go's escapes are legal (`\a \b \f \n \r \t \v \\`, the delimiter
//!   itself, octal `\ooo` up to 255, `\xhh`, `\uhhhh`, `\Uhhhhhhhh` up to U+10FFFF); a raw
//!   newline is illegal; `\x` yields a raw byte, so unquoted strings are bytes;
//! - a bare value starts with any character other than a quote, `,`, `.`, `=`, `!`, `~` or
//!   whitespace, and goes on over letters, marks, numbers, punctuation and symbols, except `,`;
//! - a NUL or U+FFFD anywhere makes the whole string illegal.
//!
//! One deliberate difference: an invalid regular expression fails to parse (containerd
//! only logs it and matches nothing).

use crate::{ErrKind, Snap};
use regex::Regex;
use std::sync::OnceLock;

/// What a selector tests.
#[derive(Debug, Clone)]
pub enum Op {
    /// The field is present.
    Present,
    /// The field is present and equal to the value.
    Equal(Vec<u8>),
    /// The field (`""` when absent) differs from the value.
    NotEqual(Vec<u8>),
    /// The regular expression finds a match in the field (`""` when absent).
    Matches(Regex),
}

/// One `fieldpath [op value]` test.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The fieldpath, one byte string per field.
    pub path: Vec<Vec<u8>>,
    /// The test applied to the field's value.
    pub op: Op,
}

/// A parsed filter string: every selector must match (no selectors: matches everything).
#[derive(Debug, Clone)]
pub struct Filter {
    /// The selectors, ANDed.
    pub selectors: Vec<Selector>,
}

impl Filter {
    /// Whether `snap` passes every selector.
    pub fn matches(&self, snap: &Snap) -> bool {
        self.selectors.iter().all(|sel| {
            let value = field(snap, &sel.path);
            match &sel.op {
                Op::Present => value.is_some(),
                Op::Equal(v) => value.is_some_and(|x| x.as_bytes() == v.as_slice()),
                Op::NotEqual(v) => value.unwrap_or("").as_bytes() != v.as_slice(),
                Op::Matches(re) => re.is_match(value.unwrap_or("")),
            }
        })
    }
}

/// The value of a fieldpath on a snapshot, as containerd's snapshot adaptor gives it.
///
/// `kind`, `name` and `parent` ignore any further fields; `labels.<k…>` looks up the label
/// whose key is the rest joined by `.`, and nothing is present when there are no labels.
pub fn field<'a>(snap: &'a Snap, path: &[Vec<u8>]) -> Option<&'a str> {
    match path[0].as_slice() {
        b"kind" => Some(snap.kind.as_str()),
        b"name" => Some(&snap.name),
        b"parent" => Some(snap.parent.as_deref().unwrap_or("")),
        b"labels" => {
            let key = path[1..].join(&b'.');
            snap.labels
                .iter()
                .find(|(k, _)| k.as_bytes() == key.as_slice())
                .map(|(_, v)| v.as_str())
        }
        _ => None,
    }
}

/// Parses one filter string; any syntax error or bad regular expression is InvalidArgument.
pub fn parse(input: &str) -> Result<Filter, ErrKind> {
    if input.is_empty() {
        return Ok(Filter { selectors: vec![] });
    }
    // containerd's scanner makes these an illegal token wherever they are met, and every
    // such token ends the parse with an error.
    if input.contains(['\0', '\u{FFFD}']) {
        return Err(ErrKind::InvalidArgument);
    }
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    let mut selectors = vec![p.selector()?];
    loop {
        match p.bump() {
            None => return Ok(Filter { selectors }),
            Some(',') => selectors.push(p.selector()?),
            Some(_) => return Err(ErrKind::InvalidArgument),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

const BAD: ErrKind = ErrKind::InvalidArgument;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn selector(&mut self) -> Result<Selector, ErrKind> {
        let mut path = vec![self.field()?];
        while self.peek() == Some('.') {
            self.pos += 1;
            path.push(self.field()?);
        }
        if matches!(self.peek(), None | Some(',')) {
            return Ok(Selector {
                path,
                op: Op::Present,
            });
        }
        self.skip_spaces();
        let mut op = String::new();
        while let Some(c @ ('=' | '!' | '~')) = self.peek() {
            op.push(c);
            self.pos += 1;
        }
        let op = match op.as_str() {
            "==" => Op::Equal(self.value(false)?),
            "!=" => Op::NotEqual(self.value(false)?),
            "~=" => {
                let pattern = String::from_utf8(self.value(true)?).map_err(|_| BAD)?;
                Op::Matches(Regex::new(&pattern).map_err(|_| BAD)?)
            }
            _ => return Err(BAD),
        };
        Ok(Selector { path, op })
    }

    fn field(&mut self) -> Result<Vec<u8>, ErrKind> {
        self.skip_spaces();
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c) if is_field_char(c) => {
                let mut f = Vec::new();
                while let Some(c) = self.peek().filter(|&c| is_field_char(c)) {
                    f.push(c as u8);
                    self.pos += 1;
                }
                Ok(f)
            }
            _ => Err(BAD),
        }
    }

    fn value(&mut self, alt_quotes: bool) -> Result<Vec<u8>, ErrKind> {
        self.skip_spaces();
        match self.peek() {
            None | Some(',' | '.' | '=' | '!' | '~') => Err(BAD),
            Some('"') => self.quoted(),
            Some('/' | '|') if alt_quotes => self.quoted(),
            Some('/' | '|') => Err(BAD),
            Some(first) => {
                let mut v = first.to_string();
                self.pos += 1;
                while let Some(c) = self.peek().filter(|&c| is_value_char(c)) {
                    v.push(c);
                    self.pos += 1;
                }
                Ok(v.into_bytes())
            }
        }
    }

    /// A quoted string at the cursor, delimited by the character under it.
    fn quoted(&mut self) -> Result<Vec<u8>, ErrKind> {
        let quote = self.bump().ok_or(BAD)?;
        let mut out = Vec::new();
        loop {
            let c = self.bump().ok_or(BAD)?;
            if c == quote {
                return Ok(out);
            }
            if c == '\n' {
                return Err(BAD);
            }
            if c != '\\' {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            let e = self.bump().ok_or(BAD)?;
            let byte = match e {
                'a' => 7,
                'b' => 8,
                'f' => 12,
                'n' => b'\n',
                'r' => b'\r',
                't' => b'\t',
                'v' => 11,
                '\\' => b'\\',
                _ if e == quote => quote as u8,
                '0'..='7' => {
                    let v = self.digits(2, 8)? + (e as u32 - '0' as u32) * 64;
                    u8::try_from(v).map_err(|_| BAD)?
                }
                'x' => self.digits(2, 16)? as u8,
                'u' | 'U' => {
                    let v = self.digits(if e == 'u' { 4 } else { 8 }, 16)?;
                    if v > 0x10FFFF {
                        return Err(BAD);
                    }
                    // Go encodes a surrogate as U+FFFD.
                    let c = char::from_u32(v).unwrap_or('\u{FFFD}');
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                _ => return Err(BAD),
            };
            out.push(byte);
        }
    }

    /// Exactly `n` digits of `base`, as a number.
    fn digits(&mut self, n: usize, base: u32) -> Result<u32, ErrKind> {
        let mut v = 0;
        for _ in 0..n {
            let d = self.bump().and_then(|c| c.to_digit(base)).ok_or(BAD)?;
            v = v * base + d;
        }
        Ok(v)
    }
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Go's `isValueRune`: not `,`, not whitespace, and a letter, mark, number, punctuation or
/// symbol (`unicode.IsGraphic` minus spaces).
fn is_value_char(c: char) -> bool {
    static GRAPHIC: OnceLock<Regex> = OnceLock::new();
    let graphic =
        GRAPHIC.get_or_init(|| Regex::new(r"^[\pL\pM\pN\pP\pS]$").expect("a valid class"));
    c != ',' && !c.is_whitespace() && graphic.is_match(c.encode_utf8(&mut [0; 4]))
}
