//! Checkpoints: [`State::checkpoint`] gives the state's content, ordered by name;
//! [`State::from_checkpoint`] rebuilds a state from one, checking every invariant, since a
//! checkpoint is read back from storage.

use super::{add_child, check_stored, refuse, Checkpoint, Snapshot, State};
use crate::core::kind::Kind;
use crate::core::labels::validate_key;
use crate::error::Result;
use std::collections::BTreeSet;

impl State {
    /// The state's content, for a checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut snapshots: Vec<(String, Snapshot)> = self
            .snapshots
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        snapshots.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Checkpoint {
            next_id: self.next_id,
            snapshots,
        }
    }

    /// Rebuilds a state from a checkpoint, checking every invariant (unique keys and ids,
    /// ids below `next_id`, parents existing and Committed, acyclic, usage exactly on
    /// Committed). The error says which snapshot breaks which rule.
    pub fn from_checkpoint(cp: Checkpoint) -> Result<State> {
        if cp.next_id == 0 {
            return refuse("next id 0: ids start at 1".into());
        }
        let mut state = State::empty(cp.next_id);
        let mut ids = BTreeSet::new();
        for (key, s) in cp.snapshots {
            validate_key("key", &key)?;
            check_stored(&s.labels)?;
            if s.id == 0 || s.id >= cp.next_id || !ids.insert(s.id) {
                return refuse(format!("{key:?} has id {} (next id {})", s.id, cp.next_id));
            }
            if s.usage.is_some() != (s.kind == Kind::Committed) {
                return refuse(format!("{key:?} is {} with usage {:?}", s.kind, s.usage));
            }
            if let Some(p) = &s.parent {
                add_child(&mut state.children, p);
            }
            if state.snapshots.insert(key.clone(), s).is_some() {
                return refuse(format!("{key:?} appears twice"));
            }
        }
        for (p, count) in &state.children {
            match state.snapshots.get(p) {
                Some(ps) if ps.kind == Kind::Committed => {}
                _ => {
                    return refuse(format!(
                        "parent {p:?} of {count} snapshots is missing or not committed"
                    ))
                }
            }
        }
        // A chain longer than the number of snapshots has a cycle.
        for key in state.snapshots.keys() {
            let mut cur = key;
            for _ in 0..=state.snapshots.len() {
                match &state.snapshots[cur].parent {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            if state.snapshots[cur].parent.is_some() {
                return refuse(format!("the parents of {key:?} form a cycle"));
            }
        }
        Ok(state)
    }
}
