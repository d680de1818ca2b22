//! containerd's filter language (its `filters` package), for selecting snapshots in Walk.
//!
//! A filter string is a comma-separated list of selectors, all of which must match (AND);
//! several filter strings are ORed ([`Filter::parse_all`]). The grammar, as containerd's
//! scanner and parser really accept it:
//!
//! ```text
//! filter    := "" | selector ("," selector)*
//! selector  := fieldpath (operator value)?
//! fieldpath := field ("." field)*
//! field     := [A-Za-z0-9_]+ | "go-quoted"
//! operator  := "==" | "!=" | "~="
//! value     := "go-quoted" | unquoted
//!            | /go-quoted/ | |go-quoted|      (only after "~=")
//! unquoted  := first graphic*
//! ```
//!
//! - `field` may start with a digit or `_` (containerd's documentation says a letter, its
//!   scanner accepts any field character); `-`, `/` and other punctuation need quotes:
//!   `labels."containerd.io/gc.root"`.
//! - An unquoted `value` starts with any character other than whitespace, `,`, `.`, `=`,
//!   `!`, `~`, `"`, `/`, `|`, NUL and U+FFFD, and continues over every graphic character
//!   (Unicode categories L, M, N, P, S) except `,`: `name==sha256:a.b=c"d` is one value.
//! - Quoted strings use Go's string syntax with `"` (or, for a `~=` value, `/` or `|`) as
//!   the delimiter: `\a \b \f \n \r \t \v \\`, the delimiter itself escaped, `\NNN` (octal,
//!   at most `\377`), `\xHH`, `\uHHHH`, `\UHHHHHHHH`; any other escape (`\d`, or `\"`
//!   inside `/.../`) is an error, so a quoted regular expression writes `\\d`. A raw
//!   newline inside quotes is an error.
//! - Whitespace is skipped before a field, an operator and a value, and nowhere else: a
//!   selector must be followed directly by `,` or the end, so `name==a `, `name==a ,b` and
//!   `name ,b` are errors, exactly as in containerd.
//!
//! A selector without an operator tests presence; `==` needs the field present and equal;
//! `!=` is true when the value (`""` when absent) differs; `~=` searches the value (`""` when
//! absent) with a regular expression. Snapshot fields, as containerd's snapshot adaptor:
//! `kind` (`view`, `active`, `committed`), `name`, `parent` (`""` without a parent; both
//! always present), `labels.<key>` (the rest of the field path joined with `.`; absent when
//! the snapshot has no such label, and absent whenever it has no labels at all); only the
//! first element of the path is looked at for the others, and any other field is absent.
//!
//! Where overlaysnap does better than containerd: a regular expression that does not
//! compile (or a quoted one that is not UTF-8) is an [`Error::InvalidArgument`] at parse
//! time, where containerd logs it and silently never matches; and every error names the byte
//! position and what was expected, e.g. `filter "name==" at 6: expected value, found end of
//! input`.
//!
//! Regular expressions are Rust's `regex` crate, not Go's RE2. The syntax is near-identical;
//! the differences: `\d`, `\w`, `\s` and `\b` are Unicode-aware in Rust, ASCII-only in Go;
//! inside a class Rust gives meaning to `[` (nested classes) and to `&&`, `--`, `~~` (set
//! operations), which Go takes literally; Rust accepts some syntax Go refuses (`(?x)`,
//! `(?R)`, `\<`, `\>`, `\b{start}`) and lacks Go's `\Q...\E`; the two pick different size
//! limits and Unicode versions. Both search (unanchored) and both treat `(?i)` with simple
//! case folding.

use super::info::Info;
use crate::error::{Error, Result};
use regex::Regex;
use std::str::FromStr;

/// A parsed filter: an OR of alternatives, each an AND of selectors.
///
/// Cloning is cheap enough for per-request use (compiled regular expressions are shared).
#[derive(Debug, Clone)]
pub struct Filter {
    /// The alternatives (one per filter string); one with no selectors selects everything.
    any: Vec<Vec<Selector>>,
}

impl Filter {
    /// Parses several filter strings, ORed (containerd's `filters.ParseAll`).
    ///
    /// Zero strings select everything, and so does any empty string among them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for the first string that does not parse (see
    /// [`Filter::parse`]).
    pub fn parse_all<S: AsRef<str>>(filters: &[S]) -> Result<Filter> {
        if filters.is_empty() {
            return Ok(Filter {
                any: vec![Vec::new()],
            });
        }
        let any = filters
            .iter()
            .map(|f| parse_selectors(f.as_ref()))
            .collect::<Result<_>>()?;
        Ok(Filter { any })
    }

    /// Parses one filter string (containerd's `filters.Parse`); `""` selects everything.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the string, the byte position and what was
    /// expected there, e.g. `filter "name==" at 6: expected value, found end of input`;
    /// also for a `~=` regular expression that does not compile.
    pub fn parse(filter: &str) -> Result<Filter> {
        Ok(Filter {
            any: vec![parse_selectors(filter)?],
        })
    }

    /// Whether the filter selects a snapshot with this `info`.
    pub fn matches(&self, info: &Info) -> bool {
        self.any
            .iter()
            .any(|all| all.iter().all(|s| s.matches(info)))
    }

    /// True when the filter selects everything (no strings, or an empty one among them), so
    /// callers can skip matching.
    pub fn is_always(&self) -> bool {
        self.any.iter().any(Vec::is_empty)
    }
}

impl FromStr for Filter {
    type Err = Error;

    /// Same as [`Filter::parse`].
    fn from_str(s: &str) -> Result<Filter> {
        Filter::parse(s)
    }
}

/// One `fieldpath [operator value]`.
#[derive(Debug, Clone)]
struct Selector {
    field: Field,
    op: Op,
}

/// The snapshot field a fieldpath names, resolved at parse time (containerd's adaptor).
#[derive(Debug, Clone)]
enum Field {
    Kind,
    Name,
    Parent,
    /// `labels.<key>`: the rest of the path joined with `.`.
    Label(String),
    /// Any other path, or a label key that is not UTF-8: never present.
    Absent,
}

/// The operator and its operand. Values are bytes: a Go-quoted `\xHH` or octal escape can
/// make a value that is not UTF-8, which then equals nothing (as in Go).
#[derive(Debug, Clone)]
enum Op {
    Present,
    Equal(Vec<u8>),
    NotEqual(Vec<u8>),
    Matches(Regex),
}

impl Field {
    fn resolve(path: &[Vec<u8>]) -> Field {
        match path.first().map(Vec::as_slice) {
            Some(b"kind") => Field::Kind,
            Some(b"name") => Field::Name,
            Some(b"parent") => Field::Parent,
            Some(b"labels") => match String::from_utf8(path[1..].join(&b'.')) {
                Ok(key) => Field::Label(key),
                Err(_) => Field::Absent,
            },
            _ => Field::Absent,
        }
    }

    /// The field's value, `None` when not present.
    fn lookup<'i>(&self, info: &'i Info) -> Option<&'i str> {
        match self {
            Field::Kind => Some(info.kind.as_str()),
            Field::Name => Some(&info.name),
            Field::Parent => Some(info.parent.as_deref().unwrap_or("")),
            // containerd's checkMap: an empty map has nothing present.
            Field::Label(key) => info.labels.get(key).map(String::as_str),
            Field::Absent => None,
        }
    }
}

impl Selector {
    fn matches(&self, info: &Info) -> bool {
        let value = self.field.lookup(info);
        match &self.op {
            Op::Present => value.is_some(),
            Op::Equal(v) => value.is_some_and(|x| x.as_bytes() == v.as_slice()),
            Op::NotEqual(v) => value.unwrap_or("").as_bytes() != v.as_slice(),
            Op::Matches(re) => re.is_match(value.unwrap_or("")),
        }
    }
}

/// Parses one filter string into its AND-list; `""` is the empty (always-true) list.
fn parse_selectors(input: &str) -> Result<Vec<Selector>> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let mut parser = Parser {
        scanner: Scanner::new(input),
    };
    parser
        .selectors()
        .map_err(|e| Error::InvalidArgument(format!("filter {input:?} at {}: {}", e.pos, e.msg)))
}

/// A parse error: byte position in the input and what went wrong there.
struct ParseError {
    pos: usize,
    msg: String,
}

type PResult<T> = std::result::Result<T, ParseError>;

/// containerd's recursive-descent parser over [`Scanner`]'s tokens.
struct Parser<'a> {
    scanner: Scanner<'a>,
}

const OPERATORS: &str = r#"("==", "!=" or "~=")"#;

impl Parser<'_> {
    fn selectors(&mut self) -> PResult<Vec<Selector>> {
        let mut all = vec![self.selector()?];
        loop {
            match self.scanner.peek() {
                Ch::Rune(',') => {
                    self.scanner.scan(); // the separator
                    all.push(self.selector()?);
                }
                Ch::Eof => return Ok(all),
                Ch::Illegal => return Err(self.scanner_error(self.scanner.ppos)),
                Ch::Rune(c) => {
                    return Err(ParseError {
                        pos: self.scanner.ppos,
                        msg: format!(r#"expected "," or end of input, found {:?}"#, c.to_string()),
                    })
                }
            }
        }
    }

    fn selector(&mut self) -> PResult<Selector> {
        let path = self.fieldpath()?;
        let field = Field::resolve(&path);
        if matches!(self.scanner.peek(), Ch::Rune(',') | Ch::Eof) {
            return Ok(Selector {
                field,
                op: Op::Present,
            });
        }
        let op = self.operator()?;
        let (pos, value) = self.value(op == OpKind::Matches)?;
        let op = match op {
            OpKind::Equal => Op::Equal(value),
            OpKind::NotEqual => Op::NotEqual(value),
            OpKind::Matches => Op::Matches(compile(pos, value)?),
        };
        Ok(Selector { field, op })
    }

    fn fieldpath(&mut self) -> PResult<Vec<Vec<u8>>> {
        let mut path = vec![self.field()?];
        while self.scanner.peek() == Ch::Rune('.') {
            self.scanner.scan(); // the separator
            path.push(self.field()?);
        }
        Ok(path)
    }

    fn field(&mut self) -> PResult<Vec<u8>> {
        let tok = self.scanner.scan();
        match tok.kind {
            Token::Field => Ok(tok.text.as_bytes().to_vec()),
            Token::Quoted => unquote_token(&tok, false),
            Token::Illegal => Err(self.scanner_error(tok.pos)),
            _ => Err(expected("field", &tok)),
        }
    }

    fn operator(&mut self) -> PResult<OpKind> {
        let tok = self.scanner.scan();
        match tok.kind {
            Token::Operator => match tok.text {
                "==" => Ok(OpKind::Equal),
                "!=" => Ok(OpKind::NotEqual),
                "~=" => Ok(OpKind::Matches),
                other => Err(ParseError {
                    pos: tok.pos,
                    msg: format!("unsupported operator {other:?}, expected one of {OPERATORS}"),
                }),
            },
            Token::Illegal => Err(self.scanner_error(tok.pos)),
            _ => Err(expected(&format!("operator {OPERATORS}"), &tok)),
        }
    }

    /// The value and where it starts.
    fn value(&mut self, allow_alt_quotes: bool) -> PResult<(usize, Vec<u8>)> {
        let tok = self.scanner.scan();
        let value = match tok.kind {
            Token::Value | Token::Field => tok.text.as_bytes().to_vec(),
            Token::Quoted => unquote_token(&tok, allow_alt_quotes)?,
            Token::Illegal => return Err(self.scanner_error(tok.pos)),
            _ => return Err(expected("value", &tok)),
        };
        Ok((tok.pos, value))
    }

    /// The scanner's first error, reported at `pos`.
    fn scanner_error(&self, pos: usize) -> ParseError {
        ParseError {
            pos,
            msg: self.scanner.err.unwrap_or("illegal input").to_owned(),
        }
    }
}

/// An operator before its value is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Equal,
    NotEqual,
    Matches,
}

/// "expected `what`, found `tok`".
fn expected(what: &str, tok: &Tok<'_>) -> ParseError {
    let found = match tok.kind {
        Token::Eof => "end of input".to_owned(),
        _ => format!("{:?}", tok.text),
    };
    ParseError {
        pos: tok.pos,
        msg: format!("expected {what}, found {found}"),
    }
}

/// Compiles a `~=` value; containerd would log the error and never match.
fn compile(pos: usize, value: Vec<u8>) -> PResult<Regex> {
    let pattern = String::from_utf8(value).map_err(|_| ParseError {
        pos,
        msg: "regular expression is not valid UTF-8".to_owned(),
    })?;
    Regex::new(&pattern).map_err(|e| ParseError {
        pos,
        msg: format!(
            "invalid regular expression {pattern:?}: {}",
            regex_reason(&e)
        ),
    })
}

/// The one-line reason of a `regex` error (its syntax errors span several lines).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    match text.lines().rev().find_map(|l| l.strip_prefix("error: ")) {
        Some(reason) => reason.to_owned(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// containerd's `parser.unquote`: `/` and `|` quote only `~=` values.
fn unquote_token(tok: &Tok<'_>, allow_alt_quotes: bool) -> PResult<Vec<u8>> {
    if !allow_alt_quotes && !tok.text.starts_with('"') {
        return Err(ParseError {
            pos: tok.pos,
            msg: r#"invalid quote encountered: "/" and "|" may quote only the value of "~=""#
                .to_owned(),
        });
    }
    unquote(tok.text).map_err(|reason| ParseError {
        pos: tok.pos,
        msg: format!("unquoting failed: {reason}"),
    })
}

/// containerd's `unquote` (Go's `strconv.Unquote` with `/` and `|` as further double
/// quotes), on a token the scanner has checked: delimited, no raw newline.
///
/// The result is bytes because `\xHH` and octal escapes produce raw bytes; `\u` and `\U`
/// of a surrogate produce U+FFFD, as Go's `utf8.EncodeRune` does.
fn unquote(token: &str) -> std::result::Result<Vec<u8>, String> {
    let syntax = || "quote syntax error".to_owned();
    let mut chars = token.chars();
    let quote = chars.next().ok_or_else(syntax)?;
    if chars.next_back() != Some(quote) {
        return Err(syntax());
    }
    let mut out = Vec::with_capacity(token.len());
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c == quote {
            return Err(syntax());
        }
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().ok_or_else(syntax)?;
        match e {
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(0x0b),
            '\\' => out.push(b'\\'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(16))
                        .ok_or_else(syntax)?;
                    v = v << 4 | d;
                }
                if e == 'x' {
                    // Two hex digits: a raw byte, possibly not UTF-8.
                    out.push(u8::try_from(v).map_err(|_| syntax())?);
                } else if v > 0x10_FFFF {
                    return Err(format!("escape \\U{v:08X} is beyond U+10FFFF"));
                } else {
                    let r = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
                    out.extend_from_slice(r.encode_utf8(&mut buf).as_bytes());
                }
            }
            '0'..='7' => {
                let mut v = e as u32 - '0' as u32;
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or_else(syntax)?;
                    v = v << 3 | d;
                }
                let byte =
                    u8::try_from(v).map_err(|_| format!("octal escape \\{v:o} is above \\377"))?;
                out.push(byte);
            }
            '\'' | '"' | '|' | '/' if e == quote => out.push(e as u8),
            _ => return Err(syntax()),
        }
    }
    Ok(out)
}

/// What the scanner's `next` yields: a character, the end, or an illegal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ch {
    Eof,
    /// NUL or U+FFFD (Go's decoding error rune); the scanner's error says which.
    Illegal,
    Rune(char),
}

/// Token kinds of containerd's scanner; `Other` is a character that starts no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Eof,
    Illegal,
    Quoted,
    Value,
    Field,
    Separator,
    Operator,
    Other,
}

/// A token: where it starts, its kind, and its text (the character itself for `Other`).
#[derive(Debug)]
struct Tok<'a> {
    pos: usize,
    kind: Token,
    text: &'a str,
}

/// containerd's scanner, state for state: `pos` is the start of the last character read,
/// `ppos` its end, `value` is set after an operator (the next token is a value), and `err`
/// keeps the first error seen (also by a lookahead).
struct Scanner<'a> {
    input: &'a str,
    pos: usize,
    ppos: usize,
    value: bool,
    err: Option<&'static str>,
    /// Unicode category `C` (control, format, private use, unassigned), compiled on the
    /// first non-ASCII value character.
    other: Option<Regex>,
}

impl<'a> Scanner<'a> {
    fn new(input: &'a str) -> Self {
        Scanner {
            input,
            pos: 0,
            ppos: 0,
            value: false,
            err: None,
            other: None,
        }
    }

    fn next(&mut self) -> Ch {
        self.pos = self.ppos;
        let Some(c) = self.input[self.ppos..].chars().next() else {
            return Ch::Eof;
        };
        self.ppos += c.len_utf8();
        match c {
            // Go cannot tell a real U+FFFD from a decoding error: both are refused.
            char::REPLACEMENT_CHARACTER => {
                self.error("rune error (U+FFFD)");
                Ch::Illegal
            }
            '\0' => {
                self.error("unexpected null");
                Ch::Illegal
            }
            c => Ch::Rune(c),
        }
    }

    fn peek(&mut self) -> Ch {
        let (pos, ppos) = (self.pos, self.ppos);
        let ch = self.next();
        (self.pos, self.ppos) = (pos, ppos);
        ch
    }

    fn scan(&mut self) -> Tok<'a> {
        let mut ch = self.next();
        let mut pos = self.pos;
        let kind = loop {
            break match ch {
                Ch::Eof => Token::Eof,
                Ch::Illegal => Token::Illegal,
                Ch::Rune(c) if is_quote_rune(c) => {
                    if self.scan_quoted(c) {
                        Token::Quoted
                    } else {
                        Token::Illegal
                    }
                }
                Ch::Rune(',' | '.') => {
                    self.value = false;
                    Token::Separator
                }
                Ch::Rune(c) if is_operator_rune(c) => {
                    self.scan_operator();
                    self.value = true;
                    Token::Operator
                }
                Ch::Rune(c) if c.is_whitespace() => {
                    ch = self.next();
                    pos = self.pos;
                    continue;
                }
                Ch::Rune(_) if self.value => {
                    self.scan_value();
                    self.value = false;
                    Token::Value
                }
                Ch::Rune(c) if is_field_rune(c) => {
                    self.scan_field();
                    Token::Field
                }
                Ch::Rune(_) => Token::Other,
            };
        };
        Tok {
            pos,
            kind,
            text: &self.input[pos..self.ppos],
        }
    }

    fn scan_field(&mut self) {
        while matches!(self.peek(), Ch::Rune(c) if is_field_rune(c)) {
            self.next();
        }
    }

    fn scan_operator(&mut self) {
        while matches!(self.peek(), Ch::Rune(c) if is_operator_rune(c)) {
            self.next();
        }
    }

    fn scan_value(&mut self) {
        while let Ch::Rune(c) = self.peek() {
            if !self.is_value_rune(c) {
                break;
            }
            self.next();
        }
    }

    /// Scans to the closing `quote`; false (with the error recorded) when the literal is
    /// unterminated or holds a bad escape.
    fn scan_quoted(&mut self, quote: char) -> bool {
        let mut legal = true;
        let mut ch = self.next();
        while ch != Ch::Rune(quote) {
            match ch {
                Ch::Rune('\n') | Ch::Eof | Ch::Illegal => {
                    self.error("quoted literal not terminated");
                    return false;
                }
                Ch::Rune('\\') => {
                    let (after, ok) = self.scan_escape(quote);
                    ch = after;
                    legal &= ok;
                }
                Ch::Rune(_) => ch = self.next(),
            }
        }
        legal
    }

    /// Scans an escape after `\`; returns the character after it and whether it was legal.
    fn scan_escape(&mut self, quote: char) -> (Ch, bool) {
        let ch = self.next();
        match ch {
            Ch::Rune('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => (self.next(), true),
            Ch::Rune(c) if c == quote => (self.next(), true),
            Ch::Rune('0'..='7') => self.scan_digits(ch, 8, 3),
            Ch::Rune('x') => {
                let first = self.next();
                self.scan_digits(first, 16, 2)
            }
            Ch::Rune('u') => {
                let first = self.next();
                self.scan_digits(first, 16, 4)
            }
            Ch::Rune('U') => {
                let first = self.next();
                self.scan_digits(first, 16, 8)
            }
            _ => {
                self.error("illegal escape sequence");
                (ch, false)
            }
        }
    }

    fn scan_digits(&mut self, mut ch: Ch, base: u32, mut n: usize) -> (Ch, bool) {
        while n > 0 && digit_val(ch) < base {
            ch = self.next();
            n -= 1;
        }
        if n > 0 {
            self.error("illegal numeric escape sequence");
            return (ch, false);
        }
        (ch, true)
    }

    fn error(&mut self, msg: &'static str) {
        self.err.get_or_insert(msg);
    }

    /// Go's `isValueRune`: not `,`, not whitespace, and graphic (letter, mark, number,
    /// punctuation or symbol; graphic spaces are whitespace).
    fn is_value_rune(&mut self, c: char) -> bool {
        if c == ',' || c.is_whitespace() {
            return false;
        }
        if c.is_ascii() {
            return c.is_ascii_graphic();
        }
        let other = self
            .other
            .get_or_insert_with(|| Regex::new(r"\A\p{C}\z").expect("constant pattern"));
        !other.is_match(c.encode_utf8(&mut [0u8; 4]))
    }
}

fn digit_val(ch: Ch) -> u32 {
    match ch {
        Ch::Rune(c) => c.to_digit(16).unwrap_or(16),
        _ => 16,
    }
}

fn is_field_rune(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

fn is_operator_rune(c: char) -> bool {
    matches!(c, '=' | '!' | '~')
}

fn is_quote_rune(c: char) -> bool {
    matches!(c, '/' | '|' | '"')
}
