//! Reading a simulated disk's call trace: which calls of one kind an operation made.

use overlaysnap::fs::SimFs;

/// The numbers, counted from `start` (the disk's call count before the operation), of the
/// traced calls named `name` (`"rename"`, `"sync_dir"`…) on `disk`; at least one, or the
/// test fails naming the trace.
pub fn calls_named(disk: &SimFs, name: &str, start: u64) -> Vec<u64> {
    let numbers: Vec<u64> = disk
        .trace()
        .iter()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let n: u64 = words.next()?.parse().ok()?;
            (words.next()? == name).then_some(n - start)
        })
        .collect();
    assert!(!numbers.is_empty(), "no {name} in {:?}", disk.trace());
    numbers
}
