//! FindCoordinator: which broker coordinates a group or transactional id.
//! Rendezvous hashing over the live brokers: every broker computes the same
//! answer from the same broker list, and a broker leaving moves only its own
//! keys.

use strata_proto::messages::find_coordinator_response::Coordinator;
use strata_proto::messages::metadata_response::MetadataResponseBroker;
use strata_proto::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

use crate::broker::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

/// Kafka's coordinator key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

impl Broker {
    /// The brokers a coordinator is chosen from: this one and its configured
    /// peers (leased, live membership comes with the distributed mode).
    fn live_brokers(&self) -> Vec<MetadataResponseBroker> {
        let peers = self.cfg.peers.iter().filter(|p| p.node_id != self.cfg.node_id).map(|p| MetadataResponseBroker {
            node_id: p.node_id,
            host: p.host.clone(),
            port: p.port,
            rack: None,
        });
        std::iter::once(self.broker_entry()).chain(peers).collect()
    }

    /// The coordinator of `key`: the live broker with the highest hash of (key, node id).
    pub(crate) fn coordinator_for(&self, key: &str) -> MetadataResponseBroker {
        let mut brokers = self.live_brokers();
        brokers.sort_by_key(|b| std::cmp::Reverse((rendezvous(key, b.node_id), b.node_id)));
        brokers.swap_remove(0)
    }

    pub(crate) fn on_find_coordinator(&mut self, info: ReqInfo, request: FindCoordinatorRequest, out: &mut Vec<Output>) {
        let v = info.api_version;
        let known_type = matches!(request.key_type, KEY_GROUP | KEY_TRANSACTION);
        if v >= 4 {
            let coordinators = request
                .coordinator_keys
                .iter()
                .map(|key| {
                    if !known_type {
                        return Coordinator {
                            key: key.clone(),
                            node_id: -1,
                            host: String::new(),
                            port: -1,
                            error_code: ec::INVALID_REQUEST,
                            error_message: Some(format!("Unsupported key type {}", request.key_type)),
                        };
                    }
                    let b = self.coordinator_for(key);
                    Coordinator { key: key.clone(), node_id: b.node_id, host: b.host, port: b.port, error_code: ec::NONE, error_message: None }
                })
                .collect();
            return respond(out, &info, FindCoordinatorResponse { coordinators, ..Default::default() });
        }
        let response = if known_type {
            let b = self.coordinator_for(&request.key);
            FindCoordinatorResponse { error_code: ec::NONE, error_message: None, node_id: b.node_id, host: b.host, port: b.port, ..Default::default() }
        } else {
            FindCoordinatorResponse {
                error_code: ec::INVALID_REQUEST,
                error_message: Some(format!("Unsupported key type {}", request.key_type)),
                node_id: -1,
                host: String::new(),
                port: -1,
                ..Default::default()
            }
        };
        respond(out, &info, response);
    }
}

/// A deterministic 64-bit score of (key, node): FNV-1a then a mix, so close
/// node ids do not give close scores.
fn rendezvous(key: &str, node: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes().iter().chain(node.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::rendezvous;

    #[test]
    fn removing_a_broker_moves_only_its_keys() {
        let owner = |key: &str, nodes: &[i32]| *nodes.iter().max_by_key(|n| (rendezvous(key, **n), **n)).unwrap();
        let all = [1, 2, 3, 4];
        let without_3 = [1, 2, 4];
        let mut moved = 0;
        for i in 0..1000 {
            let key = format!("group-{i}");
            let before = owner(&key, &all);
            let after = owner(&key, &without_3);
            if before != 3 {
                assert_eq!(before, after, "{key} moved though its broker stayed");
            } else {
                moved += 1;
            }
        }
        // Roughly a quarter of the keys lived on broker 3.
        assert!((150..350).contains(&moved), "{moved}");
    }
}
