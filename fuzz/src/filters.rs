//! The `filters` target: arbitrary text into the core's filter parser and matcher, checked
//! against the reference model's own parser (`overlaysnap_model::filter::parse`).
//!
//! The input (non-UTF-8 bytes become U+FFFD, which the language refuses) is tried as one
//! filter string, and split at `\n` into several strings that are ORed, as containerd's
//! `ParseAll` takes them. For each string, and for the list:
//! - the core and the model accept or refuse alike; a refusal is InvalidArgument whose
//!   message names the string and a byte position inside it, on a character boundary;
//! - when both accept, they select the same of [`infos`], a fixed set of snapshots whose
//!   names, parents and labels hold the language's awkward characters;
//! - a list selects a snapshot when any of its strings does, and selects everything when
//!   one string is empty ([`Filter::is_always`]).

use overlaysnap::core::{Filter, Info, Kind, Labels, Timestamp};
use overlaysnap::model_terms::info_as_model;
use overlaysnap::Error;
use overlaysnap_model::filter as model;
use std::sync::OnceLock;

/// The body of the `filters` target.
pub fn filters(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let strings: Vec<&str> = text.split('\n').collect();
    let mut parsed = Vec::new();
    if strings.len() > 1 {
        check_one(&text);
    }
    for s in &strings {
        parsed.push(check_one(s));
    }
    let all = Filter::parse_all(&strings);
    let infos = infos();
    match (&all, parsed.iter().all(Option::is_some)) {
        (Ok(filter), true) => {
            assert_eq!(
                filter.is_always(),
                strings.iter().any(|s| s.is_empty()),
                "is_always of {strings:?}"
            );
            for info in infos {
                let any = parsed.iter().flatten().any(|f| f.matches(info));
                assert_eq!(
                    filter.matches(info),
                    any,
                    "parse_all({strings:?}) matches {info:?}: the OR of its strings"
                );
                assert!(!filter.is_always() || any, "an always filter selects all");
            }
        }
        (Err(e), false) => check_error(strings.iter().find(|s| Filter::parse(s).is_err()), e),
        (all, _) => panic!(
            "parse_all({strings:?}) is {:?}, but the strings one by one parse as {:?}",
            all.as_ref().map(|_| ()),
            parsed.iter().map(Option::is_some).collect::<Vec<_>>()
        ),
    }
}

/// Parses `s` with the core and the model and checks they agree; the core's filter if
/// both accept.
fn check_one(s: &str) -> Option<Filter> {
    let core = Filter::parse(s);
    let expected = model::parse(s);
    match (core, expected) {
        (Ok(filter), Ok(reference)) => {
            for info in infos() {
                assert_eq!(
                    filter.matches(info),
                    reference.matches(&info_as_model(info)),
                    "core and model disagree on whether {s:?} matches {info:?}"
                );
            }
            Some(filter)
        }
        (Err(e), Err(_)) => {
            check_error(Some(&s), &e);
            None
        }
        (core, expected) => panic!(
            "core and model disagree on filter {s:?}: core {:?}, model {:?}",
            core.map(|_| "accepts").map_err(|e| e.to_string()),
            expected.map(|_| "accepts")
        ),
    }
}

/// A parse error is InvalidArgument naming the first refused string and a position in it.
fn check_error(refused: Option<&&str>, e: &Error) {
    let Some(s) = refused else {
        panic!("an error without a refused string: {e}");
    };
    let Error::InvalidArgument(msg) = e else {
        panic!(
            "filter {s:?} refused with {:?}, not InvalidArgument: {e}",
            e.kind()
        );
    };
    let prefix = format!("filter {s:?} at ");
    let rest = msg
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("the error for {s:?} does not name it and a position: {msg}"));
    let pos: usize = rest
        .split(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the error for {s:?} has no position: {msg}"));
    assert!(
        pos <= s.len() && s.is_char_boundary(pos),
        "the error for {s:?} names position {pos}, not a character boundary in it: {msg}"
    );
}

/// The snapshots every filter is matched against.
pub fn infos() -> &'static [Info] {
    static INFOS: OnceLock<Vec<Info>> = OnceLock::new();
    INFOS.get_or_init(|| {
        let info = |kind, name: &str, parent: Option<&str>, labels: &[(&str, &str)]| Info {
            kind,
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Labels>(),
            created: Timestamp::new(1_700_000_000, 0),
            updated: Timestamp::new(1_700_000_001, 5),
        };
        vec![
            info(Kind::Active, "a", None, &[]),
            info(
                Kind::Committed,
                "sha256:abc",
                None,
                &[("containerd.io/gc.root", "x"), ("l", "y")],
            ),
            info(
                Kind::View,
                "v.1",
                Some("sha256:abc"),
                &[("a.b", "c"), ("label with space", "é"), ("foo", "true")],
            ),
            info(
                Kind::Active,
                "名前 ,x",
                Some("p"),
                &[("l", "x,y"), ("m", "a=b"), ("ü", "ß")],
            ),
            info(Kind::Committed, "", Some(""), &[("", "")]),
            info(
                Kind::View,
                "x\"y/z|w\\",
                Some("a"),
                &[("k", "\\d"), ("q\"", "\u{7}\n")],
            ),
            info(Kind::Committed, "UPPER_1", Some("a b"), &[("L", "X")]),
        ]
    })
}
