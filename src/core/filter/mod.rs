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
//!
//! The implementation, by purpose: `scan` is containerd's scanner (characters to tokens),
//! `unquote` Go's string unquoting, `parse` containerd's parser (tokens to selectors, the
//! regular expressions compiled), and `select` the selectors and how they match a
//! snapshot's [`Info`]; this file holds [`Filter`], an OR of AND-lists of selectors.

mod parse;
mod scan;
mod select;
mod unquote;

use super::info::Info;
use crate::error::{Error, Result};
use parse::parse_selectors;
use select::Selector;
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
