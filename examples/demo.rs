//! Prepares, commits and lists snapshots with the pure core, in memory.

use overlaysnap::core::{Command, Filter, Labels, State, Timestamp, Usage};

fn main() -> overlaysnap::Result<()> {
    let mut state = State::new();
    let now = Timestamp::new(1_700_000_000, 0);
    let commands = [
        Command::Prepare {
            key: "extract-base".into(),
            parent: None,
            labels: Labels::new(),
            now,
        },
        Command::Commit {
            name: "sha256:base".into(),
            key: "extract-base".into(),
            parent: None,
            labels: [("containerd.io/gc.root".to_string(), "yes".to_string())].into(),
            usage: Usage::default(),
            now,
        },
        Command::Prepare {
            key: "container-rootfs".into(),
            parent: Some("sha256:base".into()),
            labels: Labels::new(),
            now,
        },
    ];
    for cmd in &commands {
        let record = state.decide(cmd)?;
        println!("record: {record:?}");
        state.apply(&record);
    }
    let all = Filter::parse("")?;
    println!("{:<20} {:<10} PARENT", "NAME", "KIND");
    for info in state.walk(&all) {
        let parent = info.parent.as_deref().unwrap_or("");
        println!("{:<20} {:<10} {parent}", info.name, info.kind);
    }
    Ok(())
}
