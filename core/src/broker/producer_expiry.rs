//! Producer-id expiration (Kafka's `producer.id.expiration.ms`): a
//! producer's idempotence state in a partition is forgotten once its last
//! batch there is older than the expiration, judged by the batch's largest
//! timestamp as Kafka does. Every librdkafka or Java producer start takes a
//! new producer id, so without this the state grows with every restart. The
//! retention sweep proposes it; the apply decides from the commit alone.

use super::Broker;
use crate::log::commit::CommitBody;

impl Broker {
    /// The expirations due now in the partitions this broker sweeps (the ones
    /// it leads), as a commit, if any is due.
    pub(crate) fn producer_expiries(&self) -> Option<CommitBody> {
        let settings = self.static_settings();
        let expiration = self.config_view(&settings).producer_id_expiration_ms();
        let before = (self.now_ms as i64).saturating_sub(expiration);
        let mut list = Vec::new();
        for t in self.log.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if p.producers.values().any(|s| s.last_timestamp < before) && self.leader_of(t.id, i as i32) == self.cfg.node_id {
                    list.push((t.id, i as i32, before));
                }
            }
        }
        (!list.is_empty()).then_some(CommitBody::ExpireProducers(list))
    }
}
