use overlaysnap::core::{Command, Timestamp};
use overlaysnap::journal::{segment_file, Crash, Journal, LogJournal, SimBackend};
fn main() {
    let bytes = std::fs::read("regressions/records/log-created-id-u64-max").unwrap();
    let disk = SimBackend::new();
    disk.set_contents(&segment_file(0), &bytes);
    let (j, rec) = LogJournal::open(disk.clone()).unwrap();
    let mut st = rec.state;
    println!("opened: next_id {} ids {:?}", st.next_id(), st.id_map());
    let r = st.decide(&Command::Prepare { key: "x".into(), parent: None, labels: Default::default(), now: Timestamp::new(2, 0) }).unwrap();
    println!("decided {r:?}");
    j.append(std::slice::from_ref(&r)).unwrap();
    st.apply(&r);
    j.checkpoint(&st).unwrap();
    drop(j);
    println!("reopen: {:?}", LogJournal::open(disk.crash(Crash::PowerLoss)).map(|(_, r)| r.state.len()).map_err(|e| e.to_string()));
}
