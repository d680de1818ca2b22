//! The parent/child forest of snapshots, for `overlaysnap tree`.

use overlaysnap::core::{Info, Kind};
use std::collections::BTreeMap;

/// One snapshot and the snapshots above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Key or name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The snapshots whose parent it is, ordered by name.
    pub children: Vec<Node>,
}

/// The forest of `infos`: the snapshots without a parent (or, should the listing be
/// inconsistent, whose parent is not listed) at the roots, everything ordered by name.
pub fn forest(infos: &[Info]) -> Vec<Node> {
    let listed: BTreeMap<&str, &Info> = infos.iter().map(|i| (i.name.as_str(), i)).collect();
    let mut children: BTreeMap<&str, Vec<&Info>> = BTreeMap::new();
    let mut roots = Vec::new();
    for info in listed.values() {
        match info.parent.as_deref().filter(|p| listed.contains_key(p)) {
            Some(parent) => children.entry(parent).or_default().push(info),
            None => roots.push(*info),
        }
    }
    roots.into_iter().map(|i| node(i, &children)).collect()
}

fn node(info: &Info, children: &BTreeMap<&str, Vec<&Info>>) -> Node {
    Node {
        name: info.name.clone(),
        kind: info.kind,
        children: children
            .get(info.name.as_str())
            .into_iter()
            .flatten()
            .map(|c| node(c, children))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, kind: Kind, parent: Option<&str>) -> Info {
        Info {
            kind,
            name: name.into(),
            parent: parent.map(Into::into),
            labels: Default::default(),
            created: Default::default(),
            updated: Default::default(),
        }
    }

    #[test]
    fn children_hang_under_their_parents_in_name_order() {
        let infos = [
            info("z-base", Kind::Committed, None),
            info("b", Kind::Active, Some("z-base")),
            info("a", Kind::View, Some("z-base")),
            info("lonely", Kind::Active, None),
        ];
        let forest = forest(&infos);
        let names: Vec<_> = forest.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["lonely", "z-base"]);
        let kids: Vec<_> = forest[1].children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(kids, ["a", "b"]);
    }
}
