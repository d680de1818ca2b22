//! Arbitrary strings into the filter parser and matcher: an error or a filter, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlaysnap::core::{Filter, Info, Kind, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse_all(&text.split('\n').collect::<Vec<_>>()) else {
        return;
    };
    let info = Info {
        kind: Kind::Active,
        name: "sha256:abc".into(),
        parent: Some("p".into()),
        labels: [("containerd.io/gc.root".to_string(), "x".to_string())].into(),
        created: Timestamp::default(),
        updated: Timestamp::default(),
    };
    let _ = filter.matches(&info);
});
