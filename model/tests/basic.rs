//! The obvious cases of the reference model.

use overlaysnap_model::{filter, ErrKind, Kind, Labels, Model};

const T0: (i64, u32) = (1, 0);
const T1: (i64, u32) = (2, 5);

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn none() -> Labels {
    Labels::new()
}

/// base (committed) <- a (active), v (view); plus the committed c with labels.
fn sample() -> Model {
    let mut m = Model::new();
    m.prepare("k-base", None, &none(), T0).unwrap();
    m.commit("base", "k-base", None, &none(), (0, 0), T0)
        .unwrap();
    m.prepare("a", Some("base"), &labels(&[("l", "1")]), T0)
        .unwrap();
    m.view("v", Some("base"), &none(), T0).unwrap();
    m.prepare("k-c", Some("base"), &none(), T0).unwrap();
    let root = labels(&[("containerd.io/gc.root", "x")]);
    m.commit("sha256:c", "k-c", None, &root, (1, 1), T0)
        .unwrap();
    m
}

fn names(m: &Model, filters: &[&str]) -> Result<Vec<String>, ErrKind> {
    let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
    Ok(m.walk(&filters)?.into_iter().map(|s| s.name).collect())
}

#[test]
fn commit_renames_and_keeps_the_id() {
    let mut m = Model::new();
    let a = m
        .prepare("key", None, &labels(&[("old", "1")]), T0)
        .unwrap();
    assert_eq!((a.id, a.kind), (1, Kind::Active));
    let c = m
        .commit(
            "name",
            "key",
            None,
            &labels(&[("new", "2"), ("e", "")]),
            (7, 3),
            T1,
        )
        .unwrap();
    assert_eq!(
        (c.id, c.kind, c.name.as_str()),
        (1, Kind::Committed, "name")
    );
    assert_eq!(c.labels, labels(&[("new", "2")]));
    assert_eq!((c.created, c.updated, c.usage), (T1, T1, Some((7, 3))));
    assert_eq!(m.stat("key"), Err(ErrKind::NotFound));
    assert_eq!(m.stat("name").unwrap(), c);
    let err = m.commit("other", "name", None, &none(), (0, 0), T1);
    assert_eq!(err, Err(ErrKind::FailedPrecondition));
}

#[test]
fn commit_name_equal_to_key_exists() {
    let mut m = Model::new();
    m.prepare("k", None, &none(), T0).unwrap();
    assert_eq!(
        m.commit("k", "k", None, &none(), (0, 0), T0),
        Err(ErrKind::AlreadyExists)
    );
    assert_eq!(
        m.commit("n", "missing", None, &none(), (0, 0), T0),
        Err(ErrKind::NotFound)
    );
}

#[test]
fn remove_with_children_and_ids_never_reused() {
    let mut m = sample();
    assert_eq!(m.children("base"), vec!["a", "sha256:c", "v"]);
    assert_eq!(m.remove("base"), Err(ErrKind::FailedPrecondition));
    assert_eq!(m.remove("nope"), Err(ErrKind::NotFound));
    for k in ["a", "v", "sha256:c", "base"] {
        m.remove(k).unwrap();
    }
    assert!(m.snaps.is_empty());
    assert_eq!(m.prepare("again", None, &none(), T0).unwrap().id, 5);
}

#[test]
fn view_needs_a_committed_parent() {
    let mut m = sample();
    let v = m.view("v2", Some("base"), &none(), T1).unwrap();
    assert_eq!((v.kind, v.parent.as_deref()), (Kind::View, Some("base")));
    assert_eq!(m.mounts_plan("v2"), Ok((Kind::View, v.id, vec![1])));
    assert_eq!(
        m.view("v3", Some("a"), &none(), T1),
        Err(ErrKind::InvalidArgument)
    );
    assert_eq!(
        m.view("v3", Some("zz"), &none(), T1),
        Err(ErrKind::NotFound)
    );
    assert_eq!(
        m.view("a", Some("base"), &none(), T1),
        Err(ErrKind::AlreadyExists)
    );
    assert_eq!(m.view("", None, &none(), T1), Err(ErrKind::InvalidArgument));
    assert_eq!(m.mounts_plan("base"), Err(ErrKind::FailedPrecondition));
}

#[test]
fn update_fieldpaths() {
    let mut m = Model::new();
    m.prepare("k", None, &labels(&[("a", "1"), ("b", "2")]), T0)
        .unwrap();
    let given = labels(&[("a", "9"), ("c", "3")]);
    let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let s = m.update("k", &given, &paths(&["labels.a", "labels.b"]), T1);
    assert_eq!(s.unwrap().labels, labels(&[("a", "9")]));
    assert_eq!(m.stat("k").unwrap().updated, T1);

    let bad = m.update("k", &given, &paths(&["labels.c", "parent"]), T0);
    assert_eq!(bad, Err(ErrKind::InvalidArgument));
    let bad = m.update("k", &given, &paths(&["labels."]), T0);
    assert_eq!(bad, Err(ErrKind::InvalidArgument));
    assert_eq!(m.stat("k").unwrap().labels, labels(&[("a", "9")]));

    let s = m.update("k", &given, &[], T1).unwrap();
    assert_eq!((s.labels, s.created), (given.clone(), T0));
    let s = m.update("k", &none(), &paths(&["labels"]), T1).unwrap();
    assert!(s.labels.is_empty());
    let long = labels(&[("k", &"x".repeat(4096))]);
    assert_eq!(m.update("k", &long, &[], T1), Err(ErrKind::InvalidArgument));
}

#[test]
fn filter_examples() {
    let m = sample();
    let all = vec!["a", "base", "sha256:c", "v"];
    assert_eq!(names(&m, &[]).unwrap(), all);
    assert_eq!(names(&m, &[""]).unwrap(), all);
    assert_eq!(
        names(&m, &[r#"labels."containerd.io/gc.root"==x"#]).unwrap(),
        vec!["sha256:c"]
    );
    assert_eq!(
        names(&m, &[r#"parent!="""#]).unwrap(),
        vec!["a", "sha256:c", "v"]
    );
    assert_eq!(names(&m, &["name==a,labels.l"]).unwrap(), vec!["a"]);
    assert_eq!(
        names(&m, &["name==v,labels.l"]).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(names(&m, &["name~=^sha256:"]).unwrap(), vec!["sha256:c"]);
    assert_eq!(
        names(&m, &["kind==view", "name~=/^b/"]).unwrap(),
        vec!["base", "v"]
    );
    assert_eq!(
        names(&m, &["labels.l!=1"]).unwrap(),
        vec!["base", "sha256:c", "v"]
    );
}

#[test]
fn filter_syntax() {
    let ok = [
        "name",
        " name== a",
        "labels.\"a\\\"b\".c",
        "name~=|a/b|",
        "name==x.y=z",
        "_1.2",
        r#"name=="\x41\101\u00e9""#,
    ];
    for s in ok {
        assert!(filter::parse(s).is_ok(), "{s:?} should parse");
    }
    let bad = [
        " ",
        "name ",
        "name==a ",
        "name ,kind",
        "name==",
        "name=x",
        "name===x",
        "labels.",
        "labels.a-b",
        "labels./a/",
        "name==/a/",
        "name~=/a\\d/",
        r#"name=="\'""#,
        "name~=(",
        "a,",
        "name==\"a\nb\"",
        "name\0",
        r#"name=="\400""#,
    ];
    for s in bad {
        assert_eq!(
            filter::parse(s).err(),
            Some(ErrKind::InvalidArgument),
            "{s:?}"
        );
    }
}

#[test]
fn the_size_label_must_be_a_size_and_agrees_with_the_core() {
    const KEY: &str = "containerd.io/snapshot/max-size";
    for (value, good) in [
        ("0", true),
        ("8388608", true),
        ("10GiB", true),
        ("512M", true),
        ("3KB", true),
        ("9223372036854775807", true),
        ("9223372036854775808", false),
        ("8388608TiB", false),
        ("-1", false),
        ("1.5G", false),
        ("", true),
        ("8 MiB", false),
        ("ten", false),
    ] {
        let mut m = Model::new();
        let got = m.prepare("k", None, &labels(&[(KEY, value)]), T0);
        assert_eq!(got.is_ok(), good, "{value:?}: {got:?}");
        if !good {
            assert_eq!(got, Err(ErrKind::InvalidArgument));
        }
    }
}
