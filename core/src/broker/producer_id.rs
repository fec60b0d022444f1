//! InitProducerId for idempotent producers: every call allocates a fresh
//! producer id by commit, as Kafka does when there is no transactional id.

use strata_proto::messages::{InitProducerIdRequest, InitProducerIdResponse};

use super::{respond, Broker, Proposal, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;
use crate::log::commit::CommitBody;

impl Broker {
    pub(crate) fn on_init_producer_id(&mut self, info: ReqInfo, request: InitProducerIdRequest, out: &mut Vec<Output>) {
        if request.transactional_id.is_some() {
            // Transactions are not served yet: refuse clearly rather than hang.
            return fail(&info, ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED, out);
        }
        self.propose(CommitBody::AllocateProducerId, Proposal::ProducerId(info), out);
    }
}

/// Answers with the allocated id at epoch 0.
pub(crate) fn answer(info: &ReqInfo, producer_id: i64, out: &mut Vec<Output>) {
    let body = InitProducerIdResponse { error_code: ec::NONE, producer_id, producer_epoch: 0, ..Default::default() };
    respond(out, info, body);
}

/// Answers with an error.
pub(crate) fn fail(info: &ReqInfo, error: i16, out: &mut Vec<Output>) {
    let body = InitProducerIdResponse { error_code: error, producer_id: -1, producer_epoch: -1, ..Default::default() };
    respond(out, info, body);
}
