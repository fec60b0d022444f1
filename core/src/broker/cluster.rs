//! DescribeCluster: the live brokers and the controller, as Metadata reports
//! them. Strata serves the broker endpoint type only.

use strata_proto::messages::describe_cluster_response::DescribeClusterBroker;
use strata_proto::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::metadata::CLUSTER_OPS;
use super::{respond, Broker, ReqInfo};
use crate::error_code as ec;
use crate::io::Output;

/// Kafka's "operations not requested" marker.
const OPS_NOT_REQUESTED: i32 = i32::MIN;

/// Kafka's `EndpointType` ids.
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

impl Broker {
    pub(crate) fn on_describe_cluster(&mut self, info: ReqInfo, request: DescribeClusterRequest, out: &mut Vec<Output>) {
        let v0 = info.api_version == 0;
        // v0 has no endpoint type on the wire: it reads as the default, BROKER.
        let wanted = request.endpoint_type;
        if wanted != ENDPOINT_BROKER {
            let response = if wanted == ENDPOINT_CONTROLLER {
                DescribeClusterResponse {
                    error_code: if v0 { ec::INVALID_REQUEST } else { ec::MISMATCHED_ENDPOINT_TYPE },
                    error_message: Some("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".into()),
                    ..Default::default()
                }
            } else {
                DescribeClusterResponse {
                    error_code: if v0 { ec::INVALID_REQUEST } else { ec::UNSUPPORTED_ENDPOINT_TYPE },
                    error_message: Some(format!("Unsupported endpoint type {wanted}")),
                    ..Default::default()
                }
            };
            return respond(out, &info, response);
        }
        let response = DescribeClusterResponse {
            throttle_time_ms: 0,
            error_code: ec::NONE,
            error_message: None,
            endpoint_type: ENDPOINT_BROKER,
            cluster_id: self.cfg.cluster_id.clone(),
            controller_id: self.controller_id(),
            brokers: self
                .members
                .live()
                .iter()
                .map(|b| DescribeClusterBroker { broker_id: b.node_id, host: b.host.clone(), port: b.port, rack: b.rack.clone(), is_fenced: false })
                .collect(),
            cluster_authorized_operations: if request.include_cluster_authorized_operations { CLUSTER_OPS } else { OPS_NOT_REQUESTED },
        };
        respond(out, &info, response);
    }
}
