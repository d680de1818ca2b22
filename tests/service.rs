//! The services over a snapshotter: the router's refusals (as containerd's snapshot
//! service words them), List in blocks of at most 100, Cleanup on a snapshotter that does
//! not offer it, and events published only after an operation succeeded.

use overlaysnap::core::{Info, Kind, Labels, Timestamp, Usage};
use overlaysnap::fs::Mount;
use overlaysnap::service::{Event, Hub, Published, Router, LIST_BLOCK};
use overlaysnap::{Error, ErrorKind, MemoryBackend, Options, Result, Snapshots, Snapshotter};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// A read-only snapshotter over a fixed list of Infos; it keeps `Snapshots`' default
/// Cleanup, as a containerd snapshotter that is no `snapshots.Cleaner`.
struct Fixed(Vec<Info>);

impl Fixed {
    fn with_names(n: usize) -> Fixed {
        Fixed(
            (0..n)
                .map(|i| Info {
                    kind: Kind::Committed,
                    name: format!("layer-{i:04}"),
                    parent: None,
                    labels: Labels::new(),
                    created: Timestamp::default(),
                    updated: Timestamp::default(),
                })
                .collect(),
        )
    }

    fn refuse(&self, key: &str) -> Error {
        Error::FailedPrecondition(format!(
            "snapshot {key:?}: the fixed snapshotter is read-only"
        ))
    }
}

impl Snapshots for Fixed {
    fn stat(&self, key: &str) -> Result<Info> {
        self.0
            .iter()
            .find(|i| i.name == key)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("snapshot {key:?} does not exist")))
    }
    fn update(&self, key: &str, _: Labels, _: &[String]) -> Result<Info> {
        Err(self.refuse(key))
    }
    fn usage(&self, key: &str) -> Result<Usage> {
        self.stat(key).map(|_| Usage::default())
    }
    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Err(self.refuse(key))
    }
    fn prepare(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
        Err(self.refuse(key))
    }
    fn view(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
        Err(self.refuse(key))
    }
    fn commit(&self, _: &str, key: &str, _: Option<&str>, _: Labels) -> Result<()> {
        Err(self.refuse(key))
    }
    fn remove(&self, key: &str) -> Result<()> {
        Err(self.refuse(key))
    }
    fn walk(&self, _: &[String], f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        self.0.iter().cloned().try_for_each(f)
    }
    fn close(&self) -> Result<()> {
        Ok(())
    }
}

fn router_with(name: &str, snapshotter: Arc<dyn Snapshots>) -> Router {
    let mut router = Router::new();
    router.register(name, snapshotter).unwrap();
    router
}

/// The sizes of the blocks List delivers, and the names in delivery order.
fn list_blocks(
    router: &Router,
    name: &str,
    filters: &[String],
) -> Result<(Vec<usize>, Vec<String>)> {
    let (mut sizes, mut names) = (Vec::new(), Vec::new());
    router.list(name, filters, &mut |block| {
        sizes.push(block.len());
        names.extend(block.into_iter().map(|i| i.name));
        Ok(())
    })?;
    Ok((sizes, names))
}

fn memory_snapshotter(root: &std::path::Path) -> Arc<Snapshotter> {
    let options = Options {
        journal: Arc::new(MemoryBackend),
        ..Options::default()
    };
    Arc::new(Snapshotter::open(root, options).unwrap())
}

#[test]
fn an_empty_snapshotter_name_is_an_invalid_argument() {
    let router = router_with("overlaysnap", Arc::new(Fixed::with_names(1)));
    let err = router.get("").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string().contains("snapshotter argument missing"),
        "{err}"
    );
    assert_eq!(
        router.cleanup("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn an_unknown_snapshotter_name_is_an_invalid_argument_naming_it() {
    let router = router_with("overlaysnap", Arc::new(Fixed::with_names(1)));
    let err = router.get("overlayfs").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("snapshotter not loaded: overlayfs"),
        "{err}"
    );
    let err = list_blocks(&router, "overlayfs", &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("snapshotter not loaded: overlayfs"),
        "{err}"
    );
}

#[test]
fn a_name_is_registered_once_and_never_empty() {
    let mut router = router_with("a", Arc::new(Fixed::with_names(1)));
    let again = router.register("a", Arc::new(Fixed::with_names(2)));
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
    let empty = router.register("", Arc::new(Fixed::with_names(2)));
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidArgument);
    router
        .register("b", Arc::new(Fixed::with_names(3)))
        .unwrap();
    assert_eq!(router.names().collect::<Vec<_>>(), ["a", "b"]);
    // The first registration under "a" still serves it.
    assert_eq!(list_blocks(&router, "a", &[]).unwrap().1, ["layer-0000"]);
}

#[test]
fn list_of_250_snapshots_arrives_in_blocks_of_100_100_50_in_name_order() {
    let root = tempfile::tempdir().unwrap();
    let snapshotter = memory_snapshotter(root.path());
    for i in 0..250 {
        snapshotter
            .prepare(&format!("k{i:03}"), None, Labels::new())
            .unwrap();
    }
    let router = router_with("overlaysnap", snapshotter);
    let (sizes, names) = list_blocks(&router, "overlaysnap", &[]).unwrap();
    assert_eq!(sizes, [LIST_BLOCK, LIST_BLOCK, 50]);
    let expected: Vec<String> = (0..250).map(|i| format!("k{i:03}")).collect();
    assert_eq!(names, expected);
}

#[test]
fn list_sends_no_empty_block() {
    for (n, expected) in [
        (0, vec![]),
        (100, vec![100]),
        (200, vec![100, 100]),
        (101, vec![100, 1]),
    ] {
        let router = router_with("fixed", Arc::new(Fixed::with_names(n)));
        assert_eq!(
            list_blocks(&router, "fixed", &[]).unwrap().0,
            expected,
            "{n} snapshots"
        );
    }
}

#[test]
fn list_applies_the_filters() {
    let root = tempfile::tempdir().unwrap();
    let snapshotter = memory_snapshotter(root.path());
    snapshotter.prepare("a", None, Labels::new()).unwrap();
    snapshotter.commit("base", "a", Labels::new()).unwrap();
    snapshotter
        .prepare("b", Some("base"), Labels::new())
        .unwrap();
    let router = router_with("overlaysnap", snapshotter);
    let filters = ["kind==committed".to_owned()];
    assert_eq!(
        list_blocks(&router, "overlaysnap", &filters).unwrap().1,
        ["base"]
    );
}

#[test]
fn list_with_a_malformed_filter_is_an_invalid_argument_and_sends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let snapshotter = memory_snapshotter(root.path());
    snapshotter.prepare("a", None, Labels::new()).unwrap();
    let router = router_with("overlaysnap", snapshotter);
    let mut sent = 0;
    let err = router
        .list(
            "overlaysnap",
            &["name==".to_owned(), "kind==\"".to_owned()],
            &mut |_| {
                sent += 1;
                Ok(())
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(sent, 0);
}

#[test]
fn a_failing_send_stops_the_walk_with_its_error() {
    let router = router_with("fixed", Arc::new(Fixed::with_names(250)));
    let mut calls = 0;
    let err = router
        .list("fixed", &[], &mut |_| {
            calls += 1;
            Err(Error::FailedPrecondition("the client went away".into()))
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert!(err.to_string().contains("the client went away"), "{err}");
}

#[test]
fn cleanup_of_a_snapshotter_without_it_is_not_implemented() {
    let router = router_with("fixed", Arc::new(Fixed::with_names(1)));
    assert_eq!(
        router.cleanup("fixed").unwrap_err().kind(),
        ErrorKind::NotImplemented
    );
    // The internal service forwards Cleanup, so wrapping changes nothing.
    let published = Published::new(Arc::new(Fixed::with_names(1)), Arc::new(Hub::new()));
    let router = router_with("published", Arc::new(published));
    assert_eq!(
        router.cleanup("published").unwrap_err().kind(),
        ErrorKind::NotImplemented
    );
}

#[test]
fn cleanup_of_overlaysnap_runs() {
    let root = tempfile::tempdir().unwrap();
    let snapshotter = memory_snapshotter(root.path());
    snapshotter.prepare("a", None, Labels::new()).unwrap();
    snapshotter.remove("a").unwrap();
    let router = router_with("overlaysnap", snapshotter.clone());
    router.cleanup("overlaysnap").unwrap();
    assert_eq!(
        snapshotter.cleanup().unwrap(),
        0,
        "the router's Cleanup left garbage"
    );
}

fn drain(events: &Receiver<Event>) -> Vec<Event> {
    events.try_iter().collect()
}

#[test]
fn events_are_published_only_after_success() {
    let root = tempfile::tempdir().unwrap();
    let hub = Arc::new(Hub::new());
    let events = hub.subscribe();
    let published = Published::new(memory_snapshotter(root.path()), hub.clone());
    let none = Labels::new;

    published.prepare("k1", None, none()).unwrap();
    assert_eq!(
        drain(&events),
        [Event::Prepare {
            key: "k1".into(),
            parent: None
        }]
    );
    assert_eq!(
        published.prepare("k1", None, none()).unwrap_err().kind(),
        ErrorKind::AlreadyExists,
        "the key exists"
    );
    assert_eq!(
        published
            .prepare("k2", Some("missing"), none())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "no such parent"
    );
    assert_eq!(drain(&events), []);

    published.commit("base", "k1", None, none()).unwrap();
    assert_eq!(
        drain(&events),
        [Event::Commit {
            key: "k1".into(),
            name: "base".into()
        }]
    );
    assert_eq!(
        published
            .commit("base2", "k1", None, none())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "k1 is gone"
    );
    assert_eq!(drain(&events), []);

    published.prepare("k2", Some("base"), none()).unwrap();
    assert_eq!(
        drain(&events),
        [Event::Prepare {
            key: "k2".into(),
            parent: Some("base".into())
        }]
    );
    // View, Update and Usage are no events.
    published.view("v", Some("base"), none()).unwrap();
    published.update("k2", none(), &[]).unwrap();
    published.usage("k2").unwrap();
    assert_eq!(drain(&events), []);

    assert_eq!(
        published.remove("base").unwrap_err().kind(),
        ErrorKind::FailedPrecondition,
        "base has children"
    );
    assert_eq!(
        published.remove("nothing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(drain(&events), []);
    published.remove("k2").unwrap();
    assert_eq!(drain(&events), [Event::Remove { key: "k2".into() }]);
}

#[test]
fn event_topics_are_containerds() {
    let topics = [
        Event::Prepare {
            key: "k".into(),
            parent: None,
        }
        .topic(),
        Event::Commit {
            key: "k".into(),
            name: "n".into(),
        }
        .topic(),
        Event::Remove { key: "k".into() }.topic(),
    ];
    assert_eq!(
        topics,
        ["/snapshot/prepare", "/snapshot/commit", "/snapshot/remove"]
    );
}

#[test]
fn every_subscriber_gets_every_event_and_a_dropped_one_is_forgotten() {
    let root = tempfile::tempdir().unwrap();
    let hub = Arc::new(Hub::new());
    let (first, second) = (hub.subscribe(), hub.subscribe());
    let published = Published::new(memory_snapshotter(root.path()), hub.clone());
    published.prepare("a", None, Labels::new()).unwrap();
    drop(second);
    published.remove("a").unwrap();
    let late = hub.subscribe();
    published.prepare("b", None, Labels::new()).unwrap();
    let prepare = |k: &str| Event::Prepare {
        key: k.into(),
        parent: None,
    };
    assert_eq!(
        drain(&first),
        [
            prepare("a"),
            Event::Remove { key: "a".into() },
            prepare("b")
        ]
    );
    assert_eq!(drain(&late), [prepare("b")]);
}

#[test]
fn a_subscriber_that_stops_reading_is_dropped_without_slowing_the_writer() {
    let root = tempfile::tempdir().unwrap();
    let hub = Arc::new(Hub::with_buffer(4));
    let (slow, reader) = (hub.subscribe(), hub.subscribe());
    let published = Published::new(memory_snapshotter(root.path()), hub.clone());
    let mut read = Vec::new();
    for i in 0..10 {
        published
            .prepare(&format!("k{i}"), None, Labels::new())
            .unwrap();
        read.extend(drain(&reader));
    }
    assert_eq!(read.len(), 10, "the reading subscriber got every event");
    assert_eq!(hub.subscribers(), 1, "the slow subscriber was dropped");
    let kept: Vec<Event> = slow.iter().collect();
    assert_eq!(
        kept,
        read[..4],
        "the slow one keeps its buffer, then its channel ends"
    );
}
