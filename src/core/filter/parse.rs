//! containerd's recursive-descent parser: tokens from the scanner to selectors, with the
//! byte position and what was expected in every error, and `~=` values compiled as
//! regular expressions at parse time.

use super::scan::{Ch, Scanner, Tok, Token};
use super::select::{Field, Op, Selector};
use super::unquote::unquote;
use crate::error::{Error, Result};
use regex::Regex;

/// Parses one filter string into its AND-list; `""` is the empty (always-true) list.
pub(super) fn parse_selectors(input: &str) -> Result<Vec<Selector>> {
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
