//! FindCoordinator: which broker coordinates a group or transactional id.
//! Rendezvous hashing over the live brokers (see `broker/members.rs`): every
//! broker computes the same answer from the same live set.

use strata_proto::messages::find_coordinator_response::Coordinator;
use strata_proto::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

use crate::broker::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

/// Kafka's coordinator key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

impl Broker {
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
                    Coordinator { key: key.clone(), node_id: b.node_id, host: b.host.clone(), port: b.port, error_code: ec::NONE, error_message: None }
                })
                .collect();
            return respond(out, &info, FindCoordinatorResponse { coordinators, ..Default::default() });
        }
        let response = if known_type {
            let b = self.coordinator_for(&request.key);
            FindCoordinatorResponse { error_code: ec::NONE, error_message: None, node_id: b.node_id, host: b.host.clone(), port: b.port, ..Default::default() }
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
