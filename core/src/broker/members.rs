//! The live brokers (DESIGN.md, "Groups"; issue 6): the runtime feeds the set
//! it watches in the sequencer ([`Input::Members`](crate::io::Input::Members)),
//! and everything that names a broker derives from it by rendezvous hashing,
//! so every broker given the same set names the same one: a partition's
//! leader (where a client's traffic goes; any broker serves any partition),
//! a group's or transactional id's coordinator, the broker that sweeps a
//! partition's retention. A broker leaving moves only what it was named for.

use strata_proto::messages::metadata_response::MetadataResponseBroker;
use strata_proto::Uuid;

use super::{Broker, BrokerConfig, Peer};
use crate::error_code as ec;
use crate::io::Output;

/// The live set, sorted by node id, one entry per node, this broker in it
/// (with its own advertised address, whatever the set said) unless it is
/// draining and others are live.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    live: Vec<Peer>,
}

impl Members {
    /// A set of this broker alone, until the runtime says otherwise.
    pub fn only(me: Peer) -> Members {
        Members { live: vec![me] }
    }

    /// `peers` with `me` in place of any entry of its node id, sorted, deduplicated
    /// (the first entry of a node id wins). A draining broker leaves itself
    /// out, so that nothing is named for it, unless no other broker is live
    /// (the set is never empty).
    pub fn new(me: Peer, peers: Vec<Peer>, draining: bool) -> Members {
        let mut live: Vec<Peer> = peers.into_iter().filter(|p| p.node_id != me.node_id).collect();
        if !draining || live.is_empty() {
            live.push(me);
        }
        live.sort_by_key(|p| p.node_id);
        live.dedup_by_key(|p| p.node_id);
        Members { live }
    }

    /// The live brokers, by node id.
    pub fn live(&self) -> &[Peer] {
        &self.live
    }

    /// The live broker with the highest rendezvous score for `key`.
    pub fn owner(&self, key: &[u8]) -> &Peer {
        // `live` always holds this broker: never empty.
        let best = self.live.iter().max_by_key(|p| (rendezvous(key, p.node_id), p.node_id));
        best.unwrap_or(&self.live[0])
    }
}

impl Peer {
    /// As Metadata lists it.
    pub(crate) fn metadata_entry(&self) -> MetadataResponseBroker {
        MetadataResponseBroker { node_id: self.node_id, host: self.host.clone(), port: self.port, rack: self.rack.clone() }
    }
}

impl Peer {
    /// The broker `cfg` describes, as the live set lists it.
    pub(crate) fn of(cfg: &BrokerConfig) -> Peer {
        Peer { node_id: cfg.node_id, host: cfg.advertised_host.clone(), port: cfg.advertised_port, rack: cfg.rack.clone() }
    }
}

impl Broker {

    /// The live set changed: groups this broker holds but no longer
    /// coordinates are dropped (their waiting requests get NOT_COORDINATOR and
    /// the clients find the new coordinator, whose claim fences this broker).
    pub(crate) fn on_members(&mut self, peers: Vec<Peer>, out: &mut Vec<Output>) {
        self.members = Members::new(Peer::of(&self.cfg), peers, self.draining);
        let moved: Vec<String> = self.groups.groups.keys().filter(|g| !self.coordinates(g)).cloned().collect();
        for g in moved {
            self.unload_group(&g, ec::NOT_COORDINATOR, out);
        }
    }

    /// Drains this broker (the runtime's admin Drain): from now on produce is
    /// answered NOT_LEADER_OR_FOLLOWER (retriable: clients refresh Metadata
    /// and move), this broker leaves itself out of the live set it names
    /// leaders, coordinators and the snapshotter from (its groups are dropped
    /// as on any move), and the open object is written now. Fetches are still
    /// served. There is no way back short of a restart.
    pub fn drain(&mut self, out: &mut Vec<Output>) {
        self.draining = true;
        let peers = self.members.live().to_vec();
        self.on_members(peers, out);
        self.flush_now(out);
    }

    /// Whether [`Broker::drain`] was called.
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// The live brokers this broker names leaders and coordinators from.
    pub fn live_members(&self) -> &[Peer] {
        self.members.live()
    }

    /// The brokers Metadata and DescribeCluster list.
    pub(crate) fn live_brokers(&self) -> Vec<MetadataResponseBroker> {
        self.members.live().iter().map(Peer::metadata_entry).collect()
    }

    /// The controller clients are told about: the lowest live node id, so all
    /// brokers name the same one (any broker handles what a controller would).
    pub(crate) fn controller_id(&self) -> i32 {
        self.members.live().first().map_or(self.cfg.node_id, |p| p.node_id)
    }

    /// The coordinator of a group or transactional id.
    pub(crate) fn coordinator_for(&self, key: &str) -> &Peer {
        self.members.owner(key.as_bytes())
    }

    /// Whether this broker takes the cluster's snapshots: the controller (the
    /// lowest live node id), so one live broker does (two at once would be
    /// safe: the state at a revision is the same everywhere).
    pub fn takes_snapshots(&self) -> bool {
        self.controller_id() == self.cfg.node_id
    }

    /// The broker named leader of a partition (and its only replica).
    pub(crate) fn leader_of(&self, topic_id: Uuid, partition: i32) -> i32 {
        self.members.owner(&partition_key(topic_id, partition)).node_id
    }
}

/// The rendezvous key of a partition: its topic id (a topic re-created under
/// the same name is another topic) and index.
fn partition_key(topic_id: Uuid, partition: i32) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..16].copy_from_slice(&topic_id.0);
    key[16..].copy_from_slice(&partition.to_be_bytes());
    key
}

/// A deterministic 64-bit score of (key, node): FNV-1a then a mix, so close
/// node ids do not give close scores.
fn rendezvous(key: &[u8], node: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.iter().chain(node.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(node_id: i32) -> Peer {
        Peer { node_id, host: format!("b{node_id}"), port: 9092, rack: None }
    }

    #[test]
    fn removing_a_broker_moves_only_its_keys() {
        let all = Members::new(peer(1), vec![peer(2), peer(3), peer(4)], false);
        let without_3 = Members::new(peer(1), vec![peer(2), peer(4)], false);
        let mut moved = 0;
        for i in 0..1000 {
            let key = format!("group-{i}");
            let before = all.owner(key.as_bytes()).node_id;
            let after = without_3.owner(key.as_bytes()).node_id;
            if before != 3 {
                assert_eq!(before, after, "{key} moved though its broker stayed");
            } else {
                moved += 1;
            }
        }
        // Roughly a quarter of the keys lived on broker 3.
        assert!((150..350).contains(&moved), "{moved}");
    }

    #[test]
    fn the_set_always_holds_this_broker_with_its_own_address() {
        let mut stale = peer(1);
        stale.host = "old-address".into();
        let m = Members::new(peer(1), vec![peer(3), stale.clone(), peer(2), peer(3)], false);
        let ids: Vec<i32> = m.live().iter().map(|p| p.node_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(m.live()[0].host, "b1");
        assert_eq!(Members::new(peer(5), Vec::new(), false).live().len(), 1);
        // Draining: out of the set while another broker is live, never an empty set.
        let m = Members::new(peer(1), vec![peer(3), stale, peer(2)], true);
        assert_eq!(m.live().iter().map(|p| p.node_id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(Members::new(peer(5), vec![peer(5)], true).live().iter().map(|p| p.node_id).collect::<Vec<_>>(), [5]);
    }
}
