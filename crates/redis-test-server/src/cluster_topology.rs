//! One node's view of the cluster, parsed from `CLUSTER NODES`.
//!
//! The cluster harness decides that a topology change is finished when every running node holds
//! the same view (same slot owners, same roles, no slot mid-migration, nobody suspected of
//! failure). Gossip spreads changes node by node, so comparing the nodes' own views is the only
//! honest way to know that a client asking any of them will get the same answer.

use std::collections::BTreeMap;

use crate::hash_slot::SLOT_COUNT;

/// One line of `CLUSTER NODES`: a node as the answering node sees it.
#[derive(Clone, Debug)]
pub(crate) struct NodeView {
    pub(crate) id: String,
    pub(crate) port: u16,
    flags: Vec<String>,
    /// The primary this node replicates, `None` for a primary.
    pub(crate) primary_id: Option<String>,
    slot_ranges: Vec<(u16, u16)>,
    /// `[slot->-id]` / `[slot-<-id]` entries: a slot is being migrated from or imported to this
    /// node (only the node itself lists them).
    migrating_or_importing: bool,
}

impl NodeView {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub(crate) fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }

    pub(crate) fn is_primary(&self) -> bool {
        self.has_flag("master")
    }

    /// Flagged `fail` or `fail?` (suspected), or not yet a full member.
    pub(crate) fn is_failing_or_joining(&self) -> bool {
        ["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|f| self.has_flag(f))
    }

    pub(crate) fn owns_slots(&self) -> bool {
        !self.slot_ranges.is_empty()
    }
}

/// The whole `CLUSTER NODES` reply of one node.
#[derive(Clone, Debug)]
pub(crate) struct Topology {
    pub(crate) nodes: Vec<NodeView>,
}

impl Topology {
    /// Parses a `CLUSTER NODES` reply; `Err` names the line that does not fit the documented
    /// format.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let nodes = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(parse_line)
            .collect::<Result<_, _>>()?;
        Ok(Self { nodes })
    }

    pub(crate) fn myself(&self) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.is_myself())
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The id of the primary serving each slot, indexed by slot.
    pub(crate) fn slot_owners(&self) -> Vec<Option<&str>> {
        let mut owners = vec![None; usize::from(SLOT_COUNT)];
        for node in &self.nodes {
            for &(first, last) in &node.slot_ranges {
                for owner in &mut owners[usize::from(first)..=usize::from(last)] {
                    *owner = Some(node.id.as_str());
                }
            }
        }
        owners
    }

    /// Node id -> id of its primary (`None` for a primary), for every node this view lists.
    pub(crate) fn roles(&self) -> BTreeMap<&str, Option<&str>> {
        self.nodes
            .iter()
            .map(|n| (n.id.as_str(), n.primary_id.as_deref()))
            .collect()
    }

    pub(crate) fn has_slot_in_migration(&self) -> bool {
        self.nodes.iter().any(|n| n.migrating_or_importing)
    }
}

fn parse_line(line: &str) -> Result<NodeView, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let malformed = || format!("unexpected CLUSTER NODES line: {line:?}");
    if fields.len() < 8 {
        return Err(malformed());
    }
    // `ip:port@cport[,hostname]`
    let port = fields[1]
        .split('@')
        .next()
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .ok_or_else(malformed)?;
    let mut slot_ranges = Vec::new();
    let mut migrating_or_importing = false;
    for slot in &fields[8..] {
        if slot.starts_with('[') {
            migrating_or_importing = true;
            continue;
        }
        let (first, last) = slot.split_once('-').unwrap_or((slot, slot));
        let first = first.parse().map_err(|_| malformed())?;
        let last = last.parse().map_err(|_| malformed())?;
        slot_ranges.push((first, last));
    }
    Ok(NodeView {
        id: fields[0].to_owned(),
        port,
        flags: fields[2].split(',').map(str::to_owned).collect(),
        primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
        slot_ranges,
        migrating_or_importing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5459 5460 [5460->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 slave,fail? 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected
";

    #[test]
    fn parses_roles_slots_flags_and_migration_markers() {
        let topology = Topology::parse(SAMPLE).unwrap();
        let me = topology.myself().unwrap();
        assert_eq!(me.port, 30001);
        assert!(me.is_primary() && me.owns_slots());
        assert!(topology.has_slot_in_migration());
        let owners = topology.slot_owners();
        assert_eq!(owners[5460], Some(me.id.as_str()));
        assert_eq!(
            owners[5461],
            Some("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1")
        );
        assert!(owners.iter().all(Option::is_some));
        let replica = topology.nodes.iter().find(|n| n.port == 30005).unwrap();
        assert!(replica.is_failing_or_joining());
        assert_eq!(
            topology.roles()[replica.id.as_str()],
            Some("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1")
        );
    }

    #[test]
    fn rejects_a_line_that_is_not_a_node() {
        assert!(Topology::parse("ERR something\n").is_err());
    }
}
