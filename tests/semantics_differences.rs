//! The places where overlaysnap answers differently from containerd's own overlay
//! snapshotter on purpose, pinned through the public library API. The table of
//! `docs/semantics.md#differences` lists them with the reasons; each test names its row.
//!
//! Every refusal here is checked three ways: the exact [`ErrorKind`]; the snapshots (every
//! field of every Info, through Walk) unchanged, then and after a reopen; and the disk under
//! the root unchanged (every entry's type, mode, owner, size, inode and times, the journal's
//! files included). A refusal that moved a byte would be a write the caller was told did
//! not happen.
//!
//! Rows 4 (the gRPC code of a malformed List filter) and 6 (the snapshotter name of a
//! request) are about overlaysnapd and are pinned in `daemon/tests/differences.rs`. Row 5
//! (the layer is made durable before the Commit record) needs a disk that forgets unsynced
//! data; it is pinned by the crash-point explorer in `tests/crash_points.rs`. Row 7 (control
//! characters in keys) was found by reading the code rather than by trying containerd.

mod snapshotter_support;

use overlaysnap::core::Info;
use overlaysnap::{ErrorKind, Options, Snapshotter};
use snapshotter_support::{labels, listing};
use std::path::Path;

/// A fresh root with the durable log journal.
fn open(root: &Path) -> Snapshotter {
    snapshotter_support::open(root, Options::default())
}

/// A committed `base` (labelled `l=1`) and an Active `a` above it (labelled `l=2`).
fn populate(sn: &Snapshotter) {
    sn.prepare("extract", None, labels(&[("l", "0")])).unwrap();
    sn.commit("base", "extract", labels(&[("l", "1")])).unwrap();
    sn.prepare("a", Some("base"), labels(&[("l", "2")]))
        .unwrap();
}

/// Every Info, in Walk order.
fn infos(sn: &Snapshotter) -> Vec<Info> {
    let mut out = Vec::new();
    sn.walk(&[], |info| {
        out.push(info);
        Ok(())
    })
    .expect("walk without filters");
    out
}

/// Runs `refused` on a populated root and checks that it fails with `want`, and that
/// neither the snapshots nor the disk changed, before and after a reopen.
#[track_caller]
fn assert_refused_untouched(
    what: &str,
    want: ErrorKind,
    refused: impl FnOnce(&Snapshotter) -> overlaysnap::Result<()>,
) {
    let dir = tempfile::tempdir().expect("temporary root");
    let root = dir.path().join("root");
    let sn = open(&root);
    populate(&sn);
    let state = infos(&sn);
    let disk = listing(&root);
    match refused(&sn) {
        Ok(()) => panic!("{what}: succeeded, expected {want:?}"),
        Err(e) => assert_eq!(e.kind(), want, "{what}: {e}"),
    }
    assert_eq!(infos(&sn), state, "{what}: the snapshots changed");
    assert_eq!(listing(&root), disk, "{what}: the disk changed");
    drop(sn);
    let sn = open(&root);
    assert_eq!(
        infos(&sn),
        state,
        "{what}: the snapshots changed after a reopen"
    );
}

/// Row 1: Commit with an empty key is InvalidArgument (containerd 1.6.20 answers NotFound,
/// having looked the empty key up). The empty key is refused before any lookup, as Prepare
/// and View refuse it in both.
#[test]
fn commit_with_an_empty_key_is_invalid_argument() {
    assert_refused_untouched("commit of an empty key", ErrorKind::InvalidArgument, |sn| {
        sn.commit("n", "", labels(&[]))
    });
    // Also when the name is taken: the form of the arguments is checked before existence.
    assert_refused_untouched(
        "commit of an empty key to a taken name",
        ErrorKind::InvalidArgument,
        |sn| sn.commit("base", "", labels(&[])),
    );
}

/// Row 2: a `~=` filter whose regular expression does not compile is InvalidArgument
/// (containerd logs it and the selector matches nothing, so Walk returns an empty list).
/// The callback is never called: the filter is refused before any snapshot is visited.
#[test]
fn a_regular_expression_that_does_not_compile_is_invalid_argument() {
    for filter in [
        "name~=(",
        "name~=/[a-/",
        "labels.l~=|*|",
        "kind==active,name~=)",
    ] {
        assert_refused_untouched(
            &format!("walk with {filter:?}"),
            ErrorKind::InvalidArgument,
            |sn| {
                let mut visited = 0;
                let result = sn.walk(&[filter.to_string()], |_| {
                    visited += 1;
                    Ok(())
                });
                assert_eq!(visited, 0, "{filter:?}: the callback ran");
                result
            },
        );
    }
    // ORed with a filter that is fine, the whole call is still refused.
    assert_refused_untouched(
        "walk with a good and a bad filter",
        ErrorKind::InvalidArgument,
        |sn| {
            sn.walk(&["name==base".to_string(), "name~=(".to_string()], |_| {
                Ok(())
            })
        },
    );
}

/// Row 3: Update with the field path `labels.` (no label key after the dot) is
/// InvalidArgument (containerd 1.6.20 accepts the call). A path naming no label is a
/// caller's mistake; the labels and the `updated` time stay as they were.
#[test]
fn update_with_the_field_path_labels_dot_is_invalid_argument() {
    for key in ["a", "base"] {
        assert_refused_untouched(
            &format!("update of {key} with [\"labels.\"]"),
            ErrorKind::InvalidArgument,
            |sn| {
                sn.update(key, labels(&[("l", "x")]), &["labels.".to_string()])
                    .map(drop)
            },
        );
    }
    // Next to a valid path the whole Update is refused: no partial label change.
    assert_refused_untouched(
        "update with [\"labels.l\", \"labels.\"]",
        ErrorKind::InvalidArgument,
        |sn| {
            sn.update(
                "a",
                labels(&[("l", "x")]),
                &["labels.l".to_string(), "labels.".to_string()],
            )
            .map(drop)
        },
    );
}

/// Row 4's library side: a malformed filter is InvalidArgument from Walk itself (the gRPC
/// code containerd answers, Unknown, is pinned in `daemon/tests/differences.rs`).
#[test]
fn a_malformed_filter_is_invalid_argument() {
    for filter in ["name==", "name==a ", "labels.\"x", "==x"] {
        assert_refused_untouched(
            &format!("walk with {filter:?}"),
            ErrorKind::InvalidArgument,
            |sn| sn.walk(&[filter.to_string()], |_| Ok(())),
        );
    }
}

/// Row 7: a key, name or parent holding a control character (NUL, newline, DEL, U+0085 …)
/// is InvalidArgument (containerd stores any bytes). Such a key would break a log line, a
/// `ctr` table or a mount option, and no image tool makes one.
#[test]
fn a_key_with_a_control_character_is_invalid_argument() {
    for bad in ["a\nb", "nul\0", "del\u{7f}", "next\u{85}line"] {
        assert_refused_untouched(
            &format!("prepare of {bad:?}"),
            ErrorKind::InvalidArgument,
            |sn| sn.prepare(bad, None, labels(&[])).map(drop),
        );
        assert_refused_untouched(
            &format!("commit of a as {bad:?}"),
            ErrorKind::InvalidArgument,
            |sn| sn.commit(bad, "a", labels(&[])),
        );
        assert_refused_untouched(
            &format!("view above {bad:?}"),
            ErrorKind::InvalidArgument,
            |sn| sn.view("v", Some(bad), labels(&[])).map(drop),
        );
    }
}
