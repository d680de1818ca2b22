//! containerd's scanner, state for state: characters to tokens (fields, operators,
//! values, quoted strings, separators), keeping the first error it meets, as the parser
//! reports it.

use regex::Regex;

/// What the scanner's `next` yields: a character, the end, or an illegal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ch {
    Eof,
    /// NUL or U+FFFD (Go's decoding error rune); the scanner's error says which.
    Illegal,
    Rune(char),
}

/// Token kinds of containerd's scanner; `Other` is a character that starts no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
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
pub(super) struct Tok<'a> {
    pub(super) pos: usize,
    pub(super) kind: Token,
    pub(super) text: &'a str,
}

/// containerd's scanner, state for state: `pos` is the start of the last character read,
/// `ppos` its end, `value` is set after an operator (the next token is a value), and `err`
/// keeps the first error seen (also by a lookahead).
pub(super) struct Scanner<'a> {
    input: &'a str,
    pos: usize,
    pub(super) ppos: usize,
    value: bool,
    pub(super) err: Option<&'static str>,
    /// Unicode category `C` (control, format, private use, unassigned), compiled on the
    /// first non-ASCII value character.
    other: Option<Regex>,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(input: &'a str) -> Self {
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

    pub(super) fn peek(&mut self) -> Ch {
        let (pos, ppos) = (self.pos, self.ppos);
        let ch = self.next();
        (self.pos, self.ppos) = (pos, ppos);
        ch
    }

    pub(super) fn scan(&mut self) -> Tok<'a> {
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
