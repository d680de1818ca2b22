//! Selectors and their matching: the snapshot field a field path names (resolved once, at
//! parse time, as containerd's snapshot adaptor does) and what each operator tests.

use crate::core::info::Info;
use regex::Regex;

/// One `fieldpath [operator value]`.
#[derive(Debug, Clone)]
pub(super) struct Selector {
    pub(super) field: Field,
    pub(super) op: Op,
}

/// The snapshot field a fieldpath names, resolved at parse time (containerd's adaptor).
#[derive(Debug, Clone)]
pub(super) enum Field {
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
pub(super) enum Op {
    Present,
    Equal(Vec<u8>),
    NotEqual(Vec<u8>),
    Matches(Regex),
}

impl Field {
    pub(super) fn resolve(path: &[Vec<u8>]) -> Field {
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
    pub(super) fn matches(&self, info: &Info) -> bool {
        let value = self.field.lookup(info);
        match &self.op {
            Op::Present => value.is_some(),
            Op::Equal(v) => value.is_some_and(|x| x.as_bytes() == v.as_slice()),
            Op::NotEqual(v) => value.unwrap_or("").as_bytes() != v.as_slice(),
            Op::Matches(re) => re.is_match(value.unwrap_or("")),
        }
    }
}
