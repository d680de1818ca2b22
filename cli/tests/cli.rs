//! The `overlaysnap` binary end to end: every subcommand on a fresh root under /var/tmp,
//! its `--json` output parsed back, and the exit code and one stderr line of each kind of
//! failure. Needs root (mounts) and an overlay-capable /var/tmp, as the library's tests do.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh root directory (not yet created) inside a temporary directory under /var/tmp.
struct Root {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("overlaysnap-cli-")
            .tempdir_in("/var/tmp")
            .expect("temporary directory under /var/tmp");
        let path = dir.path().join("root");
        Root { _dir: dir, path }
    }

    /// A path beside the root, for mount points.
    fn beside(&self, name: &str) -> PathBuf {
        let p = self.path.parent().unwrap().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Runs the binary on this root.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_overlaysnap"))
            .env_remove("OVERLAYSNAP_ROOT")
            .arg("--root")
            .arg(&self.path)
            .args(args)
            .output()
            .expect("run overlaysnap")
    }

    /// Runs the binary and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "overlaysnap {args:?} failed: {:?}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs the binary with `--json`, expects success, and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }

    /// Runs the binary, expects exit code `code`, and returns the one line on stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
        assert_eq!(
            out.status.code(),
            Some(code),
            "overlaysnap {args:?}: stderr {stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
        assert!(stderr.starts_with("overlaysnap: "), "{stderr:?}");
        stderr
    }

    /// Prepares `key` (above `parent`), returns the directory of its snapshot, taken from
    /// its mounts.
    fn prepare(&self, key: &str, parent: Option<&str>) -> PathBuf {
        let mut args = vec!["prepare", key];
        args.extend(parent);
        let mounts = self.json(&args);
        let mount = &mounts[0];
        let fs = match mount["type"].as_str() {
            Some("bind") => PathBuf::from(mount["source"].as_str().unwrap()),
            _ => PathBuf::from(option(mount, "upperdir=").unwrap()),
        };
        fs.parent().unwrap().to_path_buf()
    }
}

/// The value of the mount option starting with `prefix`.
fn option<'a>(mount: &'a Value, prefix: &str) -> Option<&'a str> {
    mount["options"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|o| o.strip_prefix(prefix))
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = |i: usize, c: u8| b.get(i) == Some(&c);
    let fraction = &s[19.min(s.len())..s.len().saturating_sub(1)];
    s.len() >= 20
        && shape(4, b'-')
        && shape(7, b'-')
        && shape(10, b'T')
        && shape(13, b':')
        && shape(16, b':')
        && s.ends_with('Z')
        && (fraction.is_empty()
            || ([4, 7, 10].contains(&fraction.len())
                && fraction.starts_with('.')
                && fraction[1..].bytes().all(|c| c.is_ascii_digit())))
}

/// Detaches a mount point when a test ends, however it ends.
struct MountGuard<'a>(&'a Path);

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        let _ = overlaysnap::fs::unmount(self.0, overlaysnap::fs::Unmount::Detach);
    }
}

#[test]
fn prepare_commit_view_and_stat_round_trip_through_json() {
    let root = Root::new();
    let mounts = root.json(&["prepare", "extract", "--label", "stage=unpack"]);
    assert_eq!(mounts[0]["type"], "bind");
    assert_eq!(option(&mounts[0], "rw"), Some(""));

    let committed = root.json(&["commit", "sha256:base", "extract", "--label", "l=v"]);
    assert_eq!(committed["name"], "sha256:base");
    assert_eq!(committed["kind"], "committed");
    assert_eq!(committed["parent"], Value::Null);
    assert_eq!(committed["labels"], serde_json::json!({"l": "v"}));

    let view = root.json(&["view", "v", "sha256:base"]);
    assert_eq!(view[0]["type"], "bind");
    assert_eq!(option(&view[0], "ro"), Some(""));

    let info = root.json(&["stat", "v"]);
    assert_eq!(info["name"], "v");
    assert_eq!(info["kind"], "view");
    assert_eq!(info["parent"], "sha256:base");
    for field in ["created", "updated"] {
        let t = info[field].as_str().unwrap();
        assert!(is_rfc3339(t), "{field} {t:?} is not RFC 3339");
    }

    let human = root.ok(&["stat", "sha256:base"]);
    assert!(human.contains("committed"), "{human}");
    assert!(human.contains("l=v"), "{human}");
}

#[test]
fn ls_orders_by_name_and_filters() {
    let root = Root::new();
    root.prepare("b-base", None);
    root.ok(&["commit", "z-layer", "b-base"]);
    root.prepare("a-work", Some("z-layer"));
    root.ok(&["view", "c-view", "z-layer"]);

    assert_eq!(names(&root.json(&["ls"])), ["a-work", "c-view", "z-layer"]);
    assert_eq!(
        names(&root.json(&["ls", "--filter", "kind==committed"])),
        ["z-layer"]
    );
    // Several filters are ORed.
    assert_eq!(
        names(&root.json(&["ls", "--filter", "name==a-work", "--filter", "kind==view"])),
        ["a-work", "c-view"]
    );

    let table = root.ok(&["ls"]);
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "KIND", "PARENT", "CREATED"]);
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(first[..3], ["a-work", "active", "z-layer"]);
    assert_eq!(lines.len(), 4);
}

#[test]
fn commit_with_parent_rebases_a_parentless_layer() {
    let root = Root::new();
    root.prepare("b", None);
    root.ok(&["commit", "base", "b"]);
    root.prepare("layer", None);
    root.prepare("child", Some("base"));
    // Another parent than its own: invalid argument (7); a missing one: not found (4).
    root.fails(&["commit", "x", "child", "--parent", "layer"], 7);
    root.fails(&["commit", "x", "layer", "--parent", "nope"], 4);
    // A parent that is not committed: failed precondition (6).
    root.fails(&["commit", "x", "layer", "--parent", "child"], 6);
    let info = root.json(&["commit", "sha256:l", "layer", "--parent", "base"]);
    assert_eq!(info["parent"], "base");
    assert_eq!(info["kind"], "committed");
}

#[test]
fn a_bad_filter_is_an_invalid_argument() {
    let root = Root::new();
    root.prepare("k", None);
    let line = root.fails(&["ls", "--filter", "name=="], 7);
    assert!(line.contains("filter"), "{line}");
}

#[test]
fn an_unknown_key_is_not_found() {
    let root = Root::new();
    root.prepare("k", None);
    for args in [
        &["stat", "nope"][..],
        &["mounts", "nope"],
        &["usage", "nope"],
        &["rm", "nope"],
        &["commit", "n", "nope"],
        &["label", "nope", "a=b"],
        &["prepare", "child", "no-parent"],
    ] {
        let line = root.fails(args, 4);
        assert!(
            line.contains("nope") || line.contains("no-parent"),
            "{line}"
        );
    }
}

#[test]
fn refusals_have_their_own_codes() {
    let root = Root::new();
    root.prepare("base", None);
    root.fails(&["prepare", "base"], 5);
    root.ok(&["commit", "layer", "base"]);
    root.prepare("work", Some("layer"));
    // A parent must be committed.
    root.fails(&["prepare", "child", "work"], 7);
    // Committed snapshots have no mounts; a parent cannot be removed.
    root.fails(&["mounts", "layer"], 6);
    let line = root.fails(&["rm", "layer"], 6);
    assert!(line.contains("layer"), "{line}");
    // Malformed command lines are clap's.
    let out = root.run(&["label", "work", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tree_shows_the_forest() {
    let root = Root::new();
    root.prepare("x", None);
    root.ok(&["commit", "base", "x"]);
    root.prepare("y", Some("base"));
    root.ok(&["commit", "mid", "y"]);
    root.prepare("top", Some("mid"));
    root.ok(&["view", "peek", "base"]);
    root.prepare("alone", None);

    let human = root.ok(&["tree"]);
    assert_eq!(
        human, " alone\n base\n  \\_ mid\n    \\_ top\n  \\_ peek\n",
        "{human}"
    );

    let forest = root.json(&["tree"]);
    assert_eq!(names(&forest), ["alone", "base"]);
    let base = &forest[1];
    assert_eq!(base["kind"], "committed");
    assert_eq!(names(&base["children"]), ["mid", "peek"]);
    assert_eq!(names(&base["children"][0]["children"]), ["top"]);
}

#[test]
fn mounts_prints_shell_mount_commands_for_a_target() {
    let root = Root::new();
    root.prepare("x", None);
    root.ok(&["commit", "base", "x"]);
    let dir = root.prepare("work", Some("base"));

    let mounts = root.json(&["mounts", "work"]);
    assert_eq!(mounts[0]["type"], "overlay");
    assert_eq!(
        option(&mounts[0], "upperdir="),
        Some(dir.join("fs").to_str().unwrap())
    );

    let line = root.ok(&["mounts", "work", "/mnt/target"]);
    assert!(
        line.starts_with("mount -t overlay overlay /mnt/target -o "),
        "{line}"
    );
    assert!(line.contains("upperdir="), "{line}");
    assert_eq!(line.lines().count(), 1);

    let table = root.ok(&["mounts", "work"]);
    assert!(table.starts_with("TYPE"), "{table}");
}

#[test]
fn mount_then_umount_leaves_the_written_file_in_the_upper_dir() {
    let root = Root::new();
    let base_dir = root.prepare("x", None);
    std::fs::write(base_dir.join("fs/lower.txt"), "from below").unwrap();
    root.ok(&["commit", "base", "x"]);
    let dir = root.prepare("work", Some("base"));
    let target = root.beside("mnt");
    let guard = MountGuard(&target);

    assert_eq!(root.ok(&["mount", "work", target.to_str().unwrap()]), "");
    assert_eq!(
        std::fs::read_to_string(target.join("lower.txt")).unwrap(),
        "from below"
    );
    std::fs::write(target.join("written.txt"), "hello").unwrap();
    let unmounted = root.json(&["umount", target.to_str().unwrap()]);
    assert_eq!(unmounted["target"], target.to_str().unwrap());
    drop(guard);

    assert!(!target.join("written.txt").exists(), "still mounted");
    assert_eq!(
        std::fs::read_to_string(dir.join("fs/written.txt")).unwrap(),
        "hello"
    );
    // Unmounting what is not mounted is not an error.
    root.ok(&["umount", target.to_str().unwrap()]);
}

#[test]
fn mount_of_a_view_is_read_only() {
    let root = Root::new();
    root.prepare("x", None);
    root.ok(&["commit", "base", "x"]);
    root.ok(&["view", "v", "base"]);
    let target = root.beside("ro");
    let _guard = MountGuard(&target);
    let mounted = root.json(&["mount", "v", target.to_str().unwrap()]);
    assert_eq!(mounted["key"], "v");
    assert_eq!(mounted["mounts"][0]["type"], "bind");
    assert!(std::fs::write(target.join("f"), "x").is_err());
    root.ok(&["umount", target.to_str().unwrap()]);
}

#[test]
fn usage_reports_bytes_and_inodes() {
    let root = Root::new();
    let dir = root.prepare("x", None);
    std::fs::write(dir.join("fs/data"), vec![7u8; 64 * 1024]).unwrap();
    root.ok(&["commit", "base", "x"]);
    root.ok(&["view", "v", "base"]);

    let one = root.json(&["usage", "base"]);
    assert_eq!(one["name"], "base");
    assert!(one["size"].as_i64().unwrap() >= 64 * 1024, "{one}");
    assert_eq!(one["inodes"], 2);

    let all = root.json(&["usage"]);
    assert_eq!(names(&all), ["base", "v"]);
    assert_eq!(all[1]["size"], 0);

    let table = root.ok(&["usage"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "INODES"]);
    assert!(table.contains("KiB"), "{table}");
}

#[test]
fn label_sets_and_deletes() {
    let root = Root::new();
    root.prepare("k", None);
    root.ok(&["label", "k", "a=1", "b=2"]);
    let labels = root.json(&["label", "k", "a=", "c=3"]);
    assert_eq!(labels, serde_json::json!({"b": "2", "c": "3"}));
    assert_eq!(root.ok(&["label", "k"]), "b=2\nc=3\n");
    let info = root.json(&["stat", "k"]);
    assert_eq!(info["labels"], labels);
}

#[test]
fn rm_then_cleanup_deletes_the_directory() {
    let root = Root::new();
    let dir = root.prepare("k", None);
    root.prepare("j", None);
    let removed = root.json(&["rm", "k", "j"]);
    assert_eq!(removed["removed"], serde_json::json!(["k", "j"]));
    root.fails(&["stat", "k"], 4);
    assert!(dir.exists(), "async remove leaves the directory to cleanup");

    let cleaned = root.json(&["cleanup"]);
    assert_eq!(cleaned["removed"], 2);
    assert!(!dir.exists());
    assert_eq!(root.ok(&["cleanup"]), "removed 0 entries\n");

    // rm stops at the first key it cannot remove, and says which went before it.
    root.prepare("gone", None);
    let line = root.fails(&["rm", "gone", "missing", "never"], 4);
    assert!(line.contains(r#"already removed: "gone""#), "{line}");
    root.fails(&["stat", "gone"], 4);

    let dir = root.prepare("s", None);
    root.ok(&["rm", "--sync-remove", "s"]);
    assert!(!dir.exists(), "sync remove deletes at once");
}

#[test]
fn check_reports_a_healthy_root() {
    let root = Root::new();
    root.prepare("x", None);
    root.ok(&["commit", "base", "x"]);
    let report = root.json(&["check"]);
    assert_eq!(report["ok"], true);
    assert_eq!(report["snapshots"], 1);
    assert_eq!(report["damaged"], serde_json::json!([]));
    assert_eq!(report["torn_tail"], Value::Null);
    let human = root.ok(&["check"]);
    assert!(human.contains("damaged"), "{human}");
}

#[test]
fn check_finds_a_committed_snapshot_whose_directory_was_deleted() {
    let root = Root::new();
    let dir = root.prepare("x", None);
    root.ok(&["commit", "sha256:lost", "x"]);
    std::fs::remove_dir_all(&dir).unwrap();

    let line = root.fails(&["check"], 3);
    assert!(line.contains("sha256:lost"), "{line}");

    // JSON still prints the report, and still exits with the damage code.
    let out = root.run(&["--json", "check"]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["damaged"][0]["name"], "sha256:lost");
}

/// `check` changes nothing: it reports the torn tail, the missing directory of an active
/// snapshot and the directory of an unissued id that the next open repairs, and leaves
/// all three on disk; the next open repairs them and `check` then finds nothing.
#[test]
fn check_reports_what_the_next_open_repairs_and_changes_nothing() {
    let root = Root::new();
    let active = root.prepare("active", None);
    let id: u64 = active
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    std::fs::remove_dir_all(&active).unwrap();
    let unissued = root.path.join("snapshots").join((id + 100).to_string());
    std::fs::create_dir_all(unissued.join("fs")).unwrap();
    let log = root.path.join("journal/log-00000000000000000000");
    let mut tail = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut tail, &[0x40, 0, 0]).unwrap();
    let log_len = std::fs::metadata(&log).unwrap().len();

    for _ in 0..2 {
        let report = root.json(&["check"]);
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["recreated"], serde_json::json!([id]), "{report}");
        assert_eq!(
            report["unissued"],
            serde_json::json!([id + 100]),
            "{report}"
        );
        assert_eq!(report["torn_tail"]["bytes_dropped"], 3, "{report}");
    }
    assert!(!active.exists());
    assert!(unissued.exists());
    assert_eq!(std::fs::metadata(&log).unwrap().len(), log_len);
    let human = root.ok(&["check"]);
    assert!(human.contains("next open"), "{human}");

    root.ok(&["ls"]);
    assert!(active.exists());
    assert!(!unissued.exists());
    let report = root.json(&["check"]);
    assert_eq!(report["recreated"], serde_json::json!([]), "{report}");
    assert_eq!(report["unissued"], serde_json::json!([]), "{report}");
    assert_eq!(report["torn_tail"], Value::Null, "{report}");
}

#[test]
fn compact_writes_a_checkpoint() {
    let root = Root::new();
    root.prepare("x", None);
    root.ok(&["label", "x", "a=b"]);
    assert!(root.json(&["check"])["records_replayed"].as_u64().unwrap() > 0);
    let compacted = root.json(&["compact"]);
    assert_eq!(compacted["checkpoint"], true);
    assert_eq!(compacted["snapshots"], 1);
    assert_eq!(root.json(&["check"])["records_replayed"], 0);
}

#[test]
fn a_missing_root_is_not_created_by_read_only_commands() {
    let root = Root::new();
    for args in [
        &["stat", "k"][..],
        &["ls"],
        &["tree"],
        &["usage"],
        &["check"],
        &["cleanup"],
        &["compact"],
    ] {
        let line = root.fails(args, 4);
        assert!(line.contains("does not exist"), "{line}");
        assert!(!root.path.exists(), "{args:?} created the root");
    }
    root.prepare("k", None);
    assert!(root.path.exists());
}

#[test]
fn a_root_held_by_another_process_names_its_pid() {
    let root = Root::new();
    root.prepare("k", None);
    let held = overlaysnap::Snapshotter::open(&root.path, overlaysnap::Options::default())
        .expect("open the root in the test process");
    let line = root.fails(&["ls"], 10);
    assert!(
        line.contains(&format!("process {}", std::process::id())),
        "{line}"
    );
    drop(held);
    root.ok(&["ls"]);
}

#[test]
fn the_root_comes_from_the_environment() {
    let root = Root::new();
    root.prepare("from-flag", None);
    let out = Command::new(env!("CARGO_BIN_EXE_overlaysnap"))
        .env("OVERLAYSNAP_ROOT", &root.path)
        .args(["--json", "ls"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&list), ["from-flag"]);
}

#[test]
fn help_lists_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_overlaysnap"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(help.contains("10  root held by another process"), "{help}");
}

/// `--config` opens the root with the daemon's options: with `rebase = true` a parentless
/// Active snapshot mounts as overlay above `ROOT/empty`, as overlaysnapd returns it, and
/// `sync_remove` deletes at once. A config that does not parse is a usage error that
/// changes nothing.
#[test]
fn the_daemons_config_file_sets_the_options() {
    let root = Root::new();
    let config = root.beside("conf").join("overlaysnapd.toml");
    std::fs::write(&config, "rebase = true\nsync_remove = true\n").unwrap();
    let config = config.to_str().unwrap();
    let plain = root.json(&["prepare", "plain"]);
    assert_eq!(plain[0]["type"], "bind", "{plain}");
    let layer = root.json(&["--config", config, "prepare", "layer"]);
    assert_eq!(layer[0]["type"], "overlay", "{layer}");
    let options: Vec<&str> = layer[0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    let empty = format!("lowerdir={}", root.path.join("empty").display());
    assert!(options.contains(&empty.as_str()), "{options:?}");
    // The same snapshot, mounted without the config, is the bind mount of the defaults.
    assert_eq!(root.json(&["mounts", "layer"])[0]["type"], "bind");
    let count = || {
        std::fs::read_dir(root.path.join("snapshots"))
            .unwrap()
            .count()
    };
    let before = count();
    root.ok(&["--config", config, "rm", "plain"]);
    assert_eq!(
        count(),
        before - 1,
        "sync_remove from the config deletes at once"
    );

    let bad = root.beside("conf").join("bad.toml");
    std::fs::write(&bad, "rebase = \"maybe\"\n").unwrap();
    let stderr = root.fails(&["--config", bad.to_str().unwrap(), "prepare", "x"], 2);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("rebase"),
        "{stderr}"
    );
    assert_eq!(root.json(&["ls"]).as_array().unwrap().len(), 1);
}
