//! Every request and response, at every supported version: encode → decode gives
//! the same value, and re-encoding gives the same bytes. Also through whole
//! frames with their headers.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use strata_proto::codec::header::{
    decode_response_frame, encode_response_frame, encode_response_frame_deferred, Request, RequestHeader,
};
use strata_proto::sample::SampleRng;
use strata_proto::{ApiKey, FrameDecoder, RequestBody, ResponseBody};

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (lo, hi) = key.versions();
    lo..=hi
}

/// `buf` with each of `records` inserted at its position, as the broker sends them.
fn splice(buf: &[u8], records: &[(usize, Bytes)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut at = 0;
    for (pos, b) in records {
        out.extend_from_slice(&buf[at..*pos]);
        out.extend_from_slice(b);
        at = *pos;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

/// Equal, or with identical `Debug` output: the sampler makes NaN floats
/// (AlterClientQuotas, DescribeClientQuotas), and NaN != NaN. Each caller also
/// compares encodings, which catches any change in a float's bits.
fn same<T: PartialEq + std::fmt::Debug>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_request_round_trips_at_every_version(seed in any::<u64>()) {
        for &key in ApiKey::ALL {
            for v in versions(key) {
                let mut rng = SampleRng::new(seed ^ ((key as u64) << 32) ^ v as u64);
                let body = RequestBody::sample(key, &mut rng, v);
                let mut first = BytesMut::new();
                body.encode(&mut first, v).map_err(|e| TestCaseError::fail(format!("{key:?} v{v}: {e}")))?;
                let first = first.freeze();
                let decoded = RequestBody::decode(key, &mut first.clone(), v)
                    .map_err(|e| TestCaseError::fail(format!("{key:?} v{v}: {e}")))?;
                prop_assert!(same(&decoded, &body), "{:?} v{}: decoded {:?}\nsent {:?}", key, v, decoded, body);
                let mut second = BytesMut::new();
                decoded.encode(&mut second, v).unwrap();
                prop_assert_eq!(&first[..], &second[..], "{:?} v{}", key, v);
            }
        }
    }

    #[test]
    fn every_response_round_trips_at_every_version(seed in any::<u64>()) {
        for &key in ApiKey::ALL {
            for v in versions(key) {
                let mut rng = SampleRng::new(seed ^ ((key as u64) << 32) ^ v as u64);
                let body = ResponseBody::sample(key, &mut rng, v);
                let mut first = BytesMut::new();
                body.encode(&mut first, v).map_err(|e| TestCaseError::fail(format!("{key:?} v{v}: {e}")))?;
                let first = first.freeze();
                let decoded = ResponseBody::decode(key, &mut first.clone(), v)
                    .map_err(|e| TestCaseError::fail(format!("{key:?} v{v}: {e}")))?;
                prop_assert!(same(&decoded, &body), "{:?} v{}: decoded {:?}\nsent {:?}", key, v, decoded, body);
                let mut second = BytesMut::new();
                decoded.encode(&mut second, v).unwrap();
                prop_assert_eq!(&first[..], &second[..], "{:?} v{}", key, v);
            }
        }
    }

    #[test]
    fn whole_frames_round_trip_with_headers(seed in any::<u64>(), correlation_id in any::<i32>()) {
        let frames = FrameDecoder::new(1 << 20);
        for &key in ApiKey::ALL {
            for v in versions(key) {
                let mut rng = SampleRng::new(seed ^ ((key as u64) << 32) ^ v as u64);
                let client_id = if rng.bool() { Some(rng.string()) } else { None };
                let request = Request {
                    header: RequestHeader { api_key: key as i16, api_version: v, correlation_id, client_id },
                    body: RequestBody::sample(key, &mut rng, v),
                };
                let mut w = BytesMut::new();
                request.encode_frame(&mut w).unwrap();
                let sent = w.clone().freeze();
                let frame = frames.decode(&mut w).unwrap().expect("a whole frame");
                prop_assert!(w.is_empty());
                let decoded = Request::decode(frame).unwrap();
                prop_assert!(same(&decoded, &request), "{:?} v{}: decoded {:?}\nsent {:?}", key, v, decoded, request);
                let mut again = BytesMut::new();
                decoded.encode_frame(&mut again).unwrap();
                prop_assert_eq!(&again[..], &sent[..], "{:?} v{}", key, v);

                let response = ResponseBody::sample(key, &mut rng, v);
                let mut w = BytesMut::new();
                encode_response_frame(&mut w, correlation_id, v, &response).unwrap();
                let sent = w.clone().freeze();
                let frame: Bytes = frames.decode(&mut w).unwrap().expect("a whole frame");
                let (header, body) = decode_response_frame(frame, key, v).unwrap();
                prop_assert_eq!(header.correlation_id, correlation_id);
                prop_assert!(same(&body, &response), "{:?} v{}: decoded {:?}\nsent {:?}", key, v, body, response);
                let mut again = BytesMut::new();
                encode_response_frame(&mut again, correlation_id, v, &body).unwrap();
                prop_assert_eq!(&again[..], &sent[..], "{:?} v{}", key, v);
                // The broker's encoder (large records left out of the buffer)
                // spliced back together is the same frame.
                let mut deferred = BytesMut::new();
                let records = encode_response_frame_deferred(&mut deferred, correlation_id, v, &body).unwrap();
                prop_assert_eq!(&splice(&deferred, &records)[..], &sent[..], "{:?} v{}", key, v);
            }
        }
    }
}
