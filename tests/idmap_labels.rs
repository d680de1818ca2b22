//! User namespaces without chown (containerd 2.x's `remap-ids`): the ID-mapping labels
//! `containerd.io/snapshot/uidmapping` and `…/gidmapping`. A malformed one is refused with
//! InvalidArgument by Prepare, View, Commit and Update, in the core and in the model alike,
//! and changes nothing; a well-formed one shows in Stat and gives the mounts `uidmap=` and
//! `gidmap=` options written from the parsed ranges, in containerd 2.x's order.

mod layout_support;

use layout_support::{layout_with, plan};
use overlaysnap::core::labels::{
    parse_id_mapping, IdMap, IdRange, GID_MAPPING_LABEL, UID_MAPPING_LABEL,
};
use overlaysnap::core::{Command, Filter, Kind, Labels, State, Timestamp, Usage};
use overlaysnap::fs::OverlayFeatures;
use overlaysnap::ErrorKind;
use overlaysnap_model::{ErrKind, Model};

const NOW: Timestamp = Timestamp {
    seconds: 1_700_000_000,
    nanos: 0,
};

/// Malformed values: what containerd's mount code or the kernel would refuse later.
const BAD: &[&str] = &[
    "0:100000",                      // two fields
    "0:100000:65536:1",              // four fields
    "0:100000:0",                    // size 0
    "0:100000:-1",                   // a sign
    "+0:100000:65536",               // a sign
    " 0:100000:65536",               // a space
    "0:100000:65536,",               // an empty range
    "0::65536",                      // an empty field
    "0:0x10:65536",                  // not decimal
    "0:4294967296:1",                // above u32
    "0:4294967295:1",                // the invalid ID
    "4294967295:0:1",                // the invalid ID, container side
    "0:4294967290:10",               // runs past 4294967294 on the host
    "0:100000:65536,1:200000:1",     // overlap in the container
    "0:100000:65536,70000:100001:1", // overlap on the host
    "1:100000:2,2:200000:1",         // overlap in the container, from a nonzero start
];

/// Well-formed values, with the ranges they hold.
fn good() -> Vec<(&'static str, Vec<IdRange>)> {
    let r = |container, host, size| IdRange {
        container,
        host,
        size,
    };
    vec![
        ("0:100000:65536", vec![r(0, 100000, 65536)]),
        (
            "0:1000:1,1:100000:65535",
            vec![r(0, 1000, 1), r(1, 100000, 65535)],
        ),
        ("0:4294967294:1", vec![r(0, 4294967294, 1)]),
        ("007:0100:1", vec![r(7, 100, 1)]),
        ("0:0:4294967295", vec![r(0, 0, 4294967295)]),
    ]
}

fn mapping(key: &str, value: &str) -> Labels {
    [(key.to_owned(), value.to_owned())].into()
}

/// A state holding the committed `base` and the active `work` above it, and a model that
/// went the same way.
fn setup() -> (State, Model) {
    let mut state = State::new();
    let mut model = Model::new();
    let none = Labels::new();
    for cmd in [
        Command::Prepare {
            key: "extract".into(),
            parent: None,
            labels: none.clone(),
            now: NOW,
        },
        Command::Commit {
            name: "base".into(),
            key: "extract".into(),
            parent: None,
            labels: none.clone(),
            usage: Usage::default(),
            now: NOW,
        },
        Command::Prepare {
            key: "work".into(),
            parent: Some("base".into()),
            labels: none.clone(),
            now: NOW,
        },
    ] {
        let record = state.decide(&cmd).unwrap();
        state.apply(&record);
    }
    let t = (NOW.seconds, NOW.nanos);
    model.prepare("extract", None, &none, t).unwrap();
    model
        .commit("base", "extract", None, &none, (0, 0), t)
        .unwrap();
    model.prepare("work", Some("base"), &none, t).unwrap();
    (state, model)
}

/// The four commands that take labels, each carrying `labels`.
fn commands(labels: &Labels) -> Vec<Command> {
    vec![
        Command::Prepare {
            key: "new".into(),
            parent: Some("base".into()),
            labels: labels.clone(),
            now: NOW,
        },
        Command::View {
            key: "new".into(),
            parent: Some("base".into()),
            labels: labels.clone(),
            now: NOW,
        },
        Command::Commit {
            name: "new".into(),
            key: "work".into(),
            parent: None,
            labels: labels.clone(),
            usage: Usage::default(),
            now: NOW,
        },
        Command::Update {
            key: "work".into(),
            labels: labels.clone(),
            fieldpaths: vec![],
            now: NOW,
        },
    ]
}

/// The model's answer to `cmd` (only whether it is refused, and how).
fn model_run(model: &mut Model, cmd: &Command) -> Result<(), ErrKind> {
    let t = (NOW.seconds, NOW.nanos);
    match cmd {
        Command::Prepare {
            key,
            parent,
            labels,
            ..
        } => model.prepare(key, parent.as_deref(), labels, t).map(drop),
        Command::View {
            key,
            parent,
            labels,
            ..
        } => model.view(key, parent.as_deref(), labels, t).map(drop),
        Command::Commit {
            name, key, labels, ..
        } => model.commit(name, key, None, labels, (0, 0), t).map(drop),
        Command::Update {
            key,
            labels,
            fieldpaths,
            ..
        } => model.update(key, labels, fieldpaths, t).map(drop),
        Command::Remove { key } => model.remove(key),
    }
}

#[test]
fn a_malformed_mapping_is_invalid_argument_everywhere_and_changes_nothing() {
    for key in [UID_MAPPING_LABEL, GID_MAPPING_LABEL] {
        for bad in BAD {
            let (state, mut model) = setup();
            let walk_before: Vec<_> = state
                .walk(&Filter::parse_all::<&str>(&[]).unwrap())
                .collect();
            let model_before = model.walk(&[]).unwrap();
            for cmd in commands(&mapping(key, bad)) {
                let err = state.decide(&cmd).unwrap_err();
                assert_eq!(
                    err.kind(),
                    ErrorKind::InvalidArgument,
                    "{key}={bad:?}: {cmd:?}"
                );
                assert!(err.to_string().contains(key), "{err}");
                assert_eq!(
                    model_run(&mut model, &cmd),
                    Err(ErrKind::InvalidArgument),
                    "model, {key}={bad:?}: {cmd:?}"
                );
            }
            // decide never mutates; the model must have refused without a change.
            let walk_after: Vec<_> = state
                .walk(&Filter::parse_all::<&str>(&[]).unwrap())
                .collect();
            assert_eq!(walk_before, walk_after);
            assert_eq!(model.walk(&[]).unwrap(), model_before, "{key}={bad:?}");
        }
    }
}

#[test]
fn well_formed_mappings_parse_into_numbers_and_pass_core_and_model() {
    for (value, ranges) in good() {
        assert_eq!(
            parse_id_mapping(UID_MAPPING_LABEL, value).unwrap(),
            ranges,
            "{value}"
        );
        for key in [UID_MAPPING_LABEL, GID_MAPPING_LABEL] {
            for cmd in commands(&mapping(key, value)) {
                let (state, mut model) = setup();
                state.decide(&cmd).unwrap();
                model_run(&mut model, &cmd).unwrap();
            }
        }
    }
    // An empty value is no label (empty values are never stored), so it is not checked.
    let (state, _) = setup();
    state
        .decide(&commands(&mapping(UID_MAPPING_LABEL, ""))[0])
        .unwrap();
}

#[test]
fn the_mapping_shows_in_stat_and_in_the_mount_plan() {
    let (mut state, _) = setup();
    let labels: Labels = [
        (UID_MAPPING_LABEL.to_owned(), "0:100000:65536".to_owned()),
        (
            GID_MAPPING_LABEL.to_owned(),
            "0:200000:1,1:300000:65535".to_owned(),
        ),
    ]
    .into();
    let cmd = commands(&labels).remove(0);
    let record = state.decide(&cmd).unwrap();
    let plan = state
        .plan_for_new(Kind::Active, record.id(), Some("base"), &labels)
        .unwrap();
    state.apply(&record);
    assert_eq!(state.stat("new").unwrap().labels, labels);
    let planned = state.mounts_plan("new").unwrap();
    assert_eq!(planned, plan);
    assert_eq!(
        planned.idmap,
        IdMap {
            uid: vec![IdRange {
                container: 0,
                host: 100000,
                size: 65536
            }],
            gid: vec![
                IdRange {
                    container: 0,
                    host: 200000,
                    size: 1
                },
                IdRange {
                    container: 1,
                    host: 300000,
                    size: 65535
                }
            ],
        }
    );
}

#[test]
fn mounts_carry_uidmap_and_gidmap_first_as_containerd_2_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout_with(
        dir.path(),
        &["volatile"],
        OverlayFeatures {
            index: true,
            userxattr: false,
        },
    );
    let snapshots = layout
        .fs_path(1)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let s = snapshots.to_string_lossy();
    let with = |mut p: overlaysnap::core::MountPlan, uid: &str, gid: &str| {
        p.idmap = IdMap {
            uid: parse_id_mapping(UID_MAPPING_LABEL, uid).unwrap(),
            gid: parse_id_mapping(GID_MAPPING_LABEL, gid).unwrap(),
        };
        p
    };
    // Leading zeros in the label do not reach the option: it is written from the numbers.
    let overlay = &layout
        .mounts(&with(
            plan(5, Kind::Active, &[4, 2]),
            "0:0100000:65536",
            "0:100000:65536",
        ))
        .unwrap()[0];
    assert_eq!(overlay.kind, "overlay");
    assert_eq!(
        overlay.options,
        [
            "uidmap=0:100000:65536".to_owned(),
            "gidmap=0:100000:65536".to_owned(),
            "index=off".to_owned(),
            "volatile".to_owned(),
            format!("workdir={s}/5/work"),
            format!("upperdir={s}/5/fs"),
            format!("lowerdir={s}/4/fs:{s}/2/fs"),
        ]
    );
    let bind = &layout
        .mounts(&with(plan(1, Kind::Active, &[]), "0:1:2,2:10:5", "0:7:1"))
        .unwrap()[0];
    assert_eq!(bind.kind, "bind");
    assert_eq!(
        bind.options,
        ["uidmap=0:1:2,2:10:5", "gidmap=0:7:1", "rw", "rbind"]
    );
    let view = &layout
        .mounts(&with(plan(9, Kind::View, &[4]), "0:1:2", "0:3:4"))
        .unwrap()[0];
    assert_eq!(view.source, format!("{s}/4/fs"));
    assert_eq!(
        view.options,
        ["uidmap=0:1:2", "gidmap=0:3:4", "ro", "rbind"]
    );
    // Without mappings: no option (the plain mounts of the other suites).
    let plain = &layout.mounts(&plan(9, Kind::View, &[4])).unwrap()[0];
    assert_eq!(plain.options, ["ro", "rbind"]);
}

#[test]
fn the_container_root_of_a_mapping_is_the_host_owner_of_its_fs() {
    let map = |uid: &str, gid: &str| {
        let mut labels = Labels::new();
        for (k, v) in [(UID_MAPPING_LABEL, uid), (GID_MAPPING_LABEL, gid)] {
            if !v.is_empty() {
                labels.insert(k.to_owned(), v.to_owned());
            }
        }
        IdMap::from_labels(&labels).unwrap().root()
    };
    assert_eq!(
        map("0:100000:65536", "0:200000:65536"),
        Some((100000, 200000))
    );
    assert_eq!(map("1:5:10,0:70:1", "0:9:1"), Some((70, 9)));
    assert_eq!(map("0:100000:65536", ""), Some((100000, 0)));
    assert_eq!(map("1:100000:65536", "0:1:1"), None);
    assert_eq!(map("", ""), None);
}

/// Through the whole snapshotter with `remap_ids` on, on real directories (root only:
/// chown): Prepare with the mapping labels returns the mounts with `uidmap=`/`gidmap=` and
/// gives the new `fs` to the container's root; Mounts answers the same; without labels the
/// parent's owner stays.
#[test]
fn prepare_with_a_mapping_chowns_only_the_new_fs_and_mounts_with_the_maps() {
    if !layout_support::root_or_skip("prepare_with_a_mapping") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let options = overlaysnap::Options {
        remap_ids: true,
        ..Default::default()
    };
    let sn = overlaysnap::Snapshotter::open(dir.path().join("root"), options).unwrap();
    sn.prepare("extract", None, Labels::new()).unwrap();
    sn.commit("base", "extract", Labels::new()).unwrap();
    let labels: Labels = [
        (UID_MAPPING_LABEL.to_owned(), "0:100000:65536".to_owned()),
        (GID_MAPPING_LABEL.to_owned(), "0:200000:65536".to_owned()),
    ]
    .into();
    use std::os::unix::fs::MetadataExt;
    let owner = |path: &str| {
        let md = std::fs::metadata(path).unwrap();
        (md.uid(), md.gid())
    };
    let option = |mounts: &[overlaysnap::fs::Mount], name: &str| {
        let prefix = format!("{name}=");
        let found = mounts[0].options.iter().find(|o| o.starts_with(&prefix));
        found.unwrap().strip_prefix(&prefix).unwrap().to_owned()
    };
    // No parent: a bind mount of the new fs.
    let bind = sn.prepare("ctr-1", None, labels.clone()).unwrap();
    assert_eq!(bind, sn.mounts("ctr-1").unwrap());
    assert_eq!(
        bind[0].options,
        [
            "uidmap=0:100000:65536",
            "gidmap=0:200000:65536",
            "rw",
            "rbind"
        ]
    );
    assert_eq!(owner(&bind[0].source), (100000, 200000));
    // Above base: an overlay; its upper dir is the container root's, base stays root's.
    let overlay = sn.prepare("ctr-2", Some("base"), labels.clone()).unwrap();
    assert_eq!(overlay, sn.mounts("ctr-2").unwrap());
    assert_eq!(
        overlay[0].options[..2],
        ["uidmap=0:100000:65536", "gidmap=0:200000:65536"]
    );
    assert_eq!(owner(&option(&overlay, "upperdir")), (100000, 200000));
    assert_eq!(owner(&option(&overlay, "lowerdir")), (0, 0));
    assert_eq!(sn.stat("ctr-2").unwrap().labels, labels);
    // Without the labels: no option, the parent's owner.
    let plain = sn.prepare("plain", Some("base"), Labels::new()).unwrap();
    assert!(!plain[0].options.iter().any(|o| o.contains("map=")));
    assert_eq!(owner(&option(&plain, "upperdir")), (0, 0));
    // A malformed mapping is refused before any directory is made.
    let bad: Labels = [(UID_MAPPING_LABEL.to_owned(), "0:100000".to_owned())].into();
    let err = sn.prepare("bad", Some("base"), bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(sn.stat("bad").unwrap_err().kind(), ErrorKind::NotFound);
}

/// With `remap_ids` off (the default, as containerd's overlay snapshotter without the
/// `remap-ids` capability), the mapping labels are validated and stored but mount nothing
/// and chown nothing: containerd then makes a chowned copy itself, which must not be
/// mapped a second time.
#[test]
fn without_remap_ids_the_labels_mount_nothing() {
    if !layout_support::root_or_skip("without_remap_ids") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sn = overlaysnap::Snapshotter::open(dir.path().join("root"), Default::default()).unwrap();
    sn.prepare("extract", None, Labels::new()).unwrap();
    sn.commit("base", "extract", Labels::new()).unwrap();
    let labels: Labels = [
        (UID_MAPPING_LABEL.to_owned(), "0:100000:65536".to_owned()),
        (GID_MAPPING_LABEL.to_owned(), "0:200000:65536".to_owned()),
    ]
    .into();
    let mounts = sn.prepare("ctr", Some("base"), labels.clone()).unwrap();
    assert_eq!(mounts, sn.mounts("ctr").unwrap());
    assert!(
        !mounts[0].options.iter().any(|o| o.contains("map=")),
        "{:?}",
        mounts[0].options
    );
    let upper = mounts[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(upper).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(sn.stat("ctr").unwrap().labels, labels);
    let bad: Labels = [(UID_MAPPING_LABEL.to_owned(), "0:100000".to_owned())].into();
    assert_eq!(
        sn.prepare("bad", Some("base"), bad).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}
