//! Differential test of our schema-generated codec against an independent one: the
//! `kafka-protocol` crate, generated from Kafka's own JSON message definitions. Our
//! `proto/schema/*.ks` files were translated from those same definitions by hand, so
//! any disagreement between the two codecs is a translation mistake on one side
//! (a version boundary, a missed field, a type, a nullable range, a tag) until shown
//! otherwise.
//!
//! For every api in `ApiKey::ALL`, every version both codecs support, request and
//! response (`DIFF_SEEDS` random values each, 500 by default):
//!
//! * forward: a random value from our sampler → our bytes → kafka-protocol decodes
//!   them (all of them, with no tagged field it doesn't know) → its bytes must be
//!   ours, byte for byte (one tolerated exception, see [`tolerated`]);
//! * reverse: kafka-protocol's bytes (of its `Default` value, and of every value it
//!   decoded above) → our decoder → our encoder → the same bytes;
//! * null injection: our bytes with an empty string / bytes / array turned into a
//!   null (see [`both_decoders_agree_on_null_markers`]): both decoders must accept
//!   or both reject, and where both accept they must re-encode to the same bytes.
//!   This finds nullable-range mistakes that the sampler alone can't (a field Kafka
//!   allows to be null but we don't is never null in our samples);
//! * defaults: a value read at one version and written at a later one, by both
//!   codecs (see [`values_carried_to_a_later_version_get_the_same_defaults`]).
//!
//! Not visible to any of these: the default of a tagged field (never written while
//! it has its default). `proto/schema` was checked against kafka-protocol's
//! `Default` impls for those by hand.
//!
//! Versions we support that kafka-protocol does not (Kafka 4 removed them, or it
//! doesn't have them yet) are untested here; `uncovered_versions_are_listed`
//! prints them (run with `--nocapture`).

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, Message as KpMessage};
use strata_proto::sample::SampleRng;
use strata_proto::{ApiKey, RequestBody, ResponseBody};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dir {
    Request,
    Response,
}

// ---------------------------------------------------------------------------------
// Our side, through the `RequestBody` / `ResponseBody` enums.

/// Our decoder then our encoder: the decoded value's `Debug` and the re-encoded bytes.
fn ours_round_trip(key: ApiKey, dir: Dir, bytes: &Bytes, v: i16) -> Read {
    let mut r = bytes.clone();
    let mut w = BytesMut::new();
    let dbg = match dir {
        Dir::Request => {
            let body = RequestBody::decode(key, &mut r, v).map_err(|e| format!("our decode: {e}"))?;
            body.encode(&mut w, v).map_err(|e| format!("our re-encode: {e}"))?;
            format!("{body:?}")
        }
        Dir::Response => {
            let body = ResponseBody::decode(key, &mut r, v).map_err(|e| format!("our decode: {e}"))?;
            body.encode(&mut w, v).map_err(|e| format!("our re-encode: {e}"))?;
            format!("{body:?}")
        }
    };
    if r.has_remaining() {
        return Err(format!("our decode left {} bytes unread", r.remaining()));
    }
    Ok((dbg, w.freeze()))
}

/// Our decoder at one version, then our encoder at another.
fn ours_upgrade(key: ApiKey, dir: Dir, bytes: &Bytes, from: i16, to: i16) -> Result<Bytes, String> {
    let mut w = BytesMut::new();
    match dir {
        Dir::Request => RequestBody::decode(key, &mut bytes.clone(), from)
            .map_err(|e| e.to_string())?
            .encode(&mut w, to)
            .map_err(|e| e.to_string())?,
        Dir::Response => ResponseBody::decode(key, &mut bytes.clone(), from)
            .map_err(|e| e.to_string())?
            .encode(&mut w, to)
            .map_err(|e| e.to_string())?,
    }
    Ok(w.freeze())
}

/// A random value from our sampler: its `Debug` and our bytes.
fn ours_sample(key: ApiKey, dir: Dir, seed: u64, v: i16) -> (String, Bytes) {
    let mut rng = SampleRng::new(seed);
    let mut w = BytesMut::new();
    let dbg = match dir {
        Dir::Request => {
            let body = RequestBody::sample(key, &mut rng, v);
            body.encode(&mut w, v).expect("our encode of our sample");
            format!("{body:?}")
        }
        Dir::Response => {
            let body = ResponseBody::sample(key, &mut rng, v);
            body.encode(&mut w, v).expect("our encode of our sample");
            format!("{body:?}")
        }
    };
    (dbg, w.freeze())
}

// ---------------------------------------------------------------------------------
// kafka-protocol's side, type-erased through function pointers.

/// What one codec makes of some bytes: the decoded value's `Debug`, and its re-encoding.
type Read = Result<(String, Bytes), String>;

#[derive(Clone, Copy)]
struct Kp {
    versions: (i16, i16),
    /// Decode (must consume everything), then encode: the value's `Debug` and its bytes.
    round_trip: fn(&Bytes, i16) -> Read,
    /// The bytes of `Default::default()` at a version.
    default_bytes: fn(i16) -> Result<Bytes, String>,
    /// Decode at one version, encode at another.
    upgrade: fn(&Bytes, i16, i16) -> Result<Bytes, String>,
}

impl Kp {
    fn of<K: Decodable + Encodable + KpMessage + Default + Debug>() -> Kp {
        Kp {
            versions: (K::VERSIONS.min, K::VERSIONS.max),
            round_trip: kp_round_trip::<K>,
            default_bytes: kp_default_bytes::<K>,
            upgrade: kp_upgrade::<K>,
        }
    }
}

fn kp_round_trip<K: Decodable + Encodable + Debug>(bytes: &Bytes, v: i16) -> Read {
    let mut r = bytes.clone();
    let value = K::decode(&mut r, v).map_err(|e| format!("kafka-protocol decode: {e:#}"))?;
    if r.has_remaining() {
        return Err(format!("kafka-protocol decode left {} bytes unread: {value:?}", r.remaining()));
    }
    let mut w = BytesMut::new();
    value.encode(&mut w, v).map_err(|e| format!("kafka-protocol re-encode: {e:#}"))?;
    Ok((format!("{value:?}"), w.freeze()))
}

fn kp_upgrade<K: Decodable + Encodable>(bytes: &Bytes, from: i16, to: i16) -> Result<Bytes, String> {
    let value = K::decode(&mut bytes.clone(), from).map_err(|e| format!("kafka-protocol decode: {e:#}"))?;
    let mut w = BytesMut::new();
    value.encode(&mut w, to).map_err(|e| format!("kafka-protocol encode: {e:#}"))?;
    Ok(w.freeze())
}

fn kp_default_bytes<K: Encodable + Default>(v: i16) -> Result<Bytes, String> {
    let mut w = BytesMut::new();
    K::default().encode(&mut w, v).map_err(|e| format!("kafka-protocol encode of Default: {e:#}"))?;
    Ok(w.freeze())
}

macro_rules! kp_table {
    ($(($key:ident, $req:ident, $resp:ident)),* $(,)?) => {
        /// kafka-protocol's message type for one of our apis and directions.
        fn kp_for(key: ApiKey, dir: Dir) -> Kp {
            match (key, dir) {
                $(
                    (ApiKey::$key, Dir::Request) => Kp::of::<kp::$req>(),
                    (ApiKey::$key, Dir::Response) => Kp::of::<kp::$resp>(),
                )*
                #[allow(unreachable_patterns)]
                _ => panic!("{key:?} is missing from kp_table!"),
            }
        }
    };
}

kp_table! {
    (Produce, ProduceRequest, ProduceResponse),
    (Fetch, FetchRequest, FetchResponse),
    (ListOffsets, ListOffsetsRequest, ListOffsetsResponse),
    (Metadata, MetadataRequest, MetadataResponse),
    (OffsetCommit, OffsetCommitRequest, OffsetCommitResponse),
    (OffsetFetch, OffsetFetchRequest, OffsetFetchResponse),
    (FindCoordinator, FindCoordinatorRequest, FindCoordinatorResponse),
    (JoinGroup, JoinGroupRequest, JoinGroupResponse),
    (Heartbeat, HeartbeatRequest, HeartbeatResponse),
    (LeaveGroup, LeaveGroupRequest, LeaveGroupResponse),
    (SyncGroup, SyncGroupRequest, SyncGroupResponse),
    (DescribeGroups, DescribeGroupsRequest, DescribeGroupsResponse),
    (ListGroups, ListGroupsRequest, ListGroupsResponse),
    (SaslHandshake, SaslHandshakeRequest, SaslHandshakeResponse),
    (ApiVersions, ApiVersionsRequest, ApiVersionsResponse),
    (CreateTopics, CreateTopicsRequest, CreateTopicsResponse),
    (DeleteTopics, DeleteTopicsRequest, DeleteTopicsResponse),
    (DeleteRecords, DeleteRecordsRequest, DeleteRecordsResponse),
    (InitProducerId, InitProducerIdRequest, InitProducerIdResponse),
    (OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse),
    (AddPartitionsToTxn, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse),
    (AddOffsetsToTxn, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse),
    (EndTxn, EndTxnRequest, EndTxnResponse),
    (TxnOffsetCommit, TxnOffsetCommitRequest, TxnOffsetCommitResponse),
    (DescribeAcls, DescribeAclsRequest, DescribeAclsResponse),
    (CreateAcls, CreateAclsRequest, CreateAclsResponse),
    (DeleteAcls, DeleteAclsRequest, DeleteAclsResponse),
    (DescribeConfigs, DescribeConfigsRequest, DescribeConfigsResponse),
    (AlterConfigs, AlterConfigsRequest, AlterConfigsResponse),
    (DescribeLogDirs, DescribeLogDirsRequest, DescribeLogDirsResponse),
    (SaslAuthenticate, SaslAuthenticateRequest, SaslAuthenticateResponse),
    (CreatePartitions, CreatePartitionsRequest, CreatePartitionsResponse),
    (DeleteGroups, DeleteGroupsRequest, DeleteGroupsResponse),
    (IncrementalAlterConfigs, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse),
    (OffsetDelete, OffsetDeleteRequest, OffsetDeleteResponse),
    (DescribeClientQuotas, DescribeClientQuotasRequest, DescribeClientQuotasResponse),
    (AlterClientQuotas, AlterClientQuotasRequest, AlterClientQuotasResponse),
    (DescribeUserScramCredentials, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse),
    (AlterUserScramCredentials, AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse),
    (DescribeCluster, DescribeClusterRequest, DescribeClusterResponse),
    (DescribeProducers, DescribeProducersRequest, DescribeProducersResponse),
    (DescribeTransactions, DescribeTransactionsRequest, DescribeTransactionsResponse),
    (ListTransactions, ListTransactionsRequest, ListTransactionsResponse),
    (ConsumerGroupHeartbeat, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse),
    (ConsumerGroupDescribe, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse),
    (DescribeTopicPartitions, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse),
}

/// (api, direction, version) pairs that both codecs support but where
/// kafka-protocol is the one that disagrees with Kafka's JSON; each with why.
const EXCLUDED: &[(ApiKey, Dir, i16, &str)] = &[];

fn excluded(key: ApiKey, dir: Dir, v: i16) -> bool {
    EXCLUDED.iter().any(|&(k, d, ev, _)| k == key && d == dir && ev == v)
}

/// The versions of ours that kafka-protocol also has (minus [`EXCLUDED`]).
fn common_versions(key: ApiKey, dir: Dir) -> impl Iterator<Item = i16> {
    let (lo, hi) = key.versions();
    let kp = kp_for(key, dir);
    (lo.max(kp.versions.0)..=hi.min(kp.versions.1)).filter(move |&v| !excluded(key, dir, v))
}

fn all_cases() -> Vec<(ApiKey, Dir, i16)> {
    let mut cases = Vec::new();
    for &key in ApiKey::ALL {
        for dir in [Dir::Request, Dir::Response] {
            cases.extend(common_versions(key, dir).map(|v| (key, dir, v)));
        }
    }
    cases
}

fn seeds() -> u64 {
    std::env::var("DIFF_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(500)
}

// ---------------------------------------------------------------------------------
// Comparison.

/// Every `unknown_tagged_fields` map in kafka-protocol's `Debug` output is empty:
/// it knew every tagged field we wrote. (It would otherwise keep and re-write
/// the unknown ones, and a tag in a version it doesn't have would go unnoticed.)
fn kp_knows_every_tag(kp_debug: &str) -> bool {
    let needle = "unknown_tagged_fields: ";
    kp_debug.match_indices(needle).all(|(i, _)| kp_debug[i + needle.len()..].starts_with("{}"))
}

/// Our `Debug` with every present-but-empty nullable value written as absent.
fn empty_as_none(our_debug: &str) -> String {
    our_debug.replace("Some(\"\")", "None").replace("Some([])", "None").replace("Some(b\"\")", "None")
}

/// The one legitimate difference between the two codecs. A nullable tagged field
/// defaults to `None` on our side but, where Kafka's JSON gives no `"default"`, to
/// an empty string / array / bytes on kafka-protocol's (as in Kafka's Java). A
/// tagged field is written only when it differs from its default, so a sampled
/// `Some("")` is written by us and dropped by kafka-protocol: different bytes, for
/// values both sides consider the same. We accept a byte difference only when it
/// is exactly that: kafka-protocol decodes both byte strings to the same value, our
/// codec reads kafka-protocol's bytes back and re-writes them unchanged, and what
/// we read back equals our original value once present-but-empty nullables are
/// taken as absent. (Today the only nullable tagged field, FetchRequest's
/// `cluster_id`, has Kafka default null, so this never fires; it is here for the
/// next such field, e.g. a tagged nullable string without a "default".)
fn tolerated(key: ApiKey, dir: Dir, v: i16, kp: Kp, ours_debug: &str, kp_debug: &str, kp_bytes: &Bytes) -> bool {
    let Ok((kp_debug2, _)) = (kp.round_trip)(kp_bytes, v) else { return false };
    let Ok((ours_debug2, ours_bytes2)) = ours_round_trip(key, dir, kp_bytes, v) else { return false };
    kp_debug2 == kp_debug && ours_bytes2 == kp_bytes && empty_as_none(&ours_debug2) == empty_as_none(ours_debug)
}

/// First failure per (api, direction, version, check), with the number of seeds that failed.
#[derive(Default)]
struct Failures(BTreeMap<(i16, Dir, i16, String), (u64, String)>);

impl Failures {
    fn add(&mut self, key: ApiKey, dir: Dir, v: i16, check: impl Into<String>, detail: impl FnOnce() -> String) {
        let e = self.0.entry((key as i16, dir, v, check.into())).or_insert_with(|| (0, detail()));
        e.0 += 1;
    }

    fn assert_none(self, what: &str) {
        if self.0.is_empty() {
            return;
        }
        let mut report = format!("{} disagreement(s) with kafka-protocol ({what}):\n", self.0.len());
        for ((key, dir, v, check), (n, detail)) in &self.0 {
            let key = ApiKey::from_i16(*key).unwrap();
            report.push_str(&format!("\n== {key:?} {dir:?} v{v} [{check}] x{n}\n{detail}\n"));
        }
        panic!("{report}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------
// Tests.

#[test]
fn our_samples_are_read_and_rewritten_identically_by_kafka_protocol() {
    let cases = all_cases();
    let mut failures = Failures::default();
    for seed in 0..seeds() {
        for &(key, dir, v) in &cases {
            let kp = kp_for(key, dir);
            let seed = seed.wrapping_mul(0x9e37_79b9) ^ ((key as u64) << 40) ^ ((v as u64) << 20) ^ dir as u64;
            let (ours_debug, ours_bytes) = ours_sample(key, dir, seed, v);
            let (kp_debug, kp_bytes) = match (kp.round_trip)(&ours_bytes, v) {
                Ok(x) => x,
                Err(e) => {
                    failures.add(key, dir, v, "kafka-protocol can't read ours", || {
                        format!("seed {seed}: {e}\nours: {ours_debug}\nbytes: {}", hex(&ours_bytes))
                    });
                    continue;
                }
            };
            if !kp_knows_every_tag(&kp_debug) {
                failures.add(key, dir, v, "tag unknown to kafka-protocol", || {
                    format!("seed {seed}\nours: {ours_debug}\nkafka-protocol: {kp_debug}")
                });
            }
            if kp_bytes != ours_bytes && !tolerated(key, dir, v, kp, &ours_debug, &kp_debug, &kp_bytes) {
                failures.add(key, dir, v, "different bytes", || {
                    format!(
                        "seed {seed}\nours: {ours_debug}\nkafka-protocol: {kp_debug}\nour bytes: {}\nits bytes: {}",
                        hex(&ours_bytes),
                        hex(&kp_bytes)
                    )
                });
            }
            // Reverse: kafka-protocol's bytes of the value it decoded, through us.
            match ours_round_trip(key, dir, &kp_bytes, v) {
                Ok((_, again)) if again == kp_bytes => {}
                Ok((ours2, again)) => {
                    failures.add(key, dir, v, "we rewrite kafka-protocol's bytes differently", || {
                        format!(
                            "seed {seed}\nkafka-protocol: {kp_debug}\nours: {ours2}\nits bytes: {}\nour bytes: {}",
                            hex(&kp_bytes),
                            hex(&again)
                        )
                    })
                }
                Err(e) => failures.add(key, dir, v, "we can't read kafka-protocol's bytes", || {
                    format!("seed {seed}: {e}\nkafka-protocol: {kp_debug}\nits bytes: {}", hex(&kp_bytes))
                }),
            }
        }
    }
    failures.assert_none("forward, random samples");
}

#[test]
fn kafka_protocol_defaults_are_read_and_rewritten_identically_by_us() {
    let mut failures = Failures::default();
    for (key, dir, v) in all_cases() {
        let kp = kp_for(key, dir);
        let bytes = match (kp.default_bytes)(v) {
            Ok(b) => b,
            Err(e) => {
                failures.add(key, dir, v, "kafka-protocol can't encode its default", || e);
                continue;
            }
        };
        match ours_round_trip(key, dir, &bytes, v) {
            Ok((_, again)) if again == bytes => {}
            Ok((ours, again)) => failures.add(key, dir, v, "different bytes", || {
                format!("ours: {ours}\nits bytes: {}\nour bytes: {}", hex(&bytes), hex(&again))
            }),
            Err(e) => {
                failures.add(key, dir, v, "we can't read its default", || format!("{e}\nits bytes: {}", hex(&bytes)))
            }
        }
    }
    failures.assert_none("reverse, kafka-protocol defaults");
}

/// Defaults: a value read at one version and written at a later one carries every
/// field the older version lacks at its default, so both codecs must write the
/// same bytes, or a field's default differs (Kafka's "default", e.g. -1 for a
/// leader epoch). Pairs where either side refuses the later version (a field
/// set that it no longer has) are skipped. The one tolerated difference is again
/// a nullable field's default, `None` for us and empty for Kafka where its JSON
/// has no "default", compared on our decoded values (see [`empty_as_none`]).
/// Tagged fields are only written when they differ from the default, so their
/// defaults are not visible here (or anywhere on the wire).
#[test]
fn values_carried_to_a_later_version_get_the_same_defaults() {
    let mut failures = Failures::default();
    let cases = all_cases();
    for seed in 0..seeds() / 10 {
        for &(key, dir, from) in &cases {
            let kp = kp_for(key, dir);
            let (_, bytes) =
                ours_sample(key, dir, seed ^ ((key as u64) << 40) ^ ((from as u64) << 20) ^ dir as u64, from);
            for to in common_versions(key, dir).filter(|&to| to > from) {
                let (Ok(ours), Ok(theirs)) = (ours_upgrade(key, dir, &bytes, from, to), (kp.upgrade)(&bytes, from, to))
                else {
                    continue;
                };
                if ours == theirs {
                    continue;
                }
                let a = ours_round_trip(key, dir, &ours, to);
                let b = ours_round_trip(key, dir, &theirs, to);
                let same = matches!((&a, &b), (Ok((a, _)), Ok((b, _))) if empty_as_none(a) == empty_as_none(b));
                if !same {
                    failures.add(key, dir, to, format!("from v{from}"), || {
                        format!("seed {seed}\nours: {a:?}\nkafka-protocol's, read by us: {b:?}\nour bytes: {}\nits bytes: {}", hex(&ours), hex(&theirs))
                    });
                }
            }
        }
    }
    failures.assert_none("defaults across versions");
}

/// The field path in one of our decode errors ("decode X v1 at a.b: ..." → "a.b").
fn error_path(e: &str) -> &str {
    e.split_once(" at ").and_then(|(_, rest)| rest.split_once(':')).map_or("?", |(p, _)| p)
}

/// Null written over an empty value of our bytes; see the module comment. Only an
/// empty string / bytes / array turned null keeps the rest of the bytes aligned,
/// so the marker replaces an encoding of "empty" of the same width: compact `01`
/// → `00`, `0000` → `ffff` (int16 string length), `00000000` → `ffffffff` (int32
/// bytes length or array count). Most such spots are not lengths at all (an int
/// that happens to be zero); those both sides read as the same plain number.
#[test]
fn both_decoders_agree_on_null_markers() {
    let mut failures = Failures::default();
    let cases = all_cases();
    const MARKERS: [(&[u8], &[u8]); 3] =
        [(&[0x01], &[0x00]), (&[0, 0], &[0xff, 0xff]), (&[0, 0, 0, 0], &[0xff, 0xff, 0xff, 0xff])];
    for seed in 0..seeds() / 5 {
        for &(key, dir, v) in &cases {
            let kp = kp_for(key, dir);
            let seed = seed.wrapping_mul(0x51_7cc1_b727) ^ ((key as u64) << 40) ^ ((v as u64) << 20) ^ dir as u64;
            let (original, bytes) = ours_sample(key, dir, seed, v);
            for (empty, null) in MARKERS {
                for at in 0..bytes.len().saturating_sub(empty.len() - 1) {
                    if &bytes[at..at + empty.len()] != empty {
                        continue;
                    }
                    let with = |marker: &[u8]| {
                        let mut m = bytes.to_vec();
                        m[at..at + marker.len()].copy_from_slice(marker);
                        Bytes::from(m)
                    };
                    let m = with(null);
                    let ours = ours_round_trip(key, dir, &m, v);
                    // kafka-protocol pre-allocates whatever count it reads, so garbage
                    // can make it abort on allocation. Hand it only bytes that we read
                    // whole, or that we read up to a null in a non-nullable field: the
                    // marker hit a real length or count, and all before it is well formed.
                    // (A four-byte marker over a two-byte string length and the next two
                    // zero bytes also reads as null, but leaves garbage after it: skip.)
                    let null_at = |r: &Read| matches!(r, Err(e) if e.contains("not nullable"));
                    if ours.is_err() && !null_at(&ours) {
                        continue;
                    }
                    if null.len() == 4 && null_at(&ours) && null_at(&ours_round_trip(key, dir, &with(&[0xff, 0xff]), v))
                    {
                        continue;
                    }
                    let theirs = (kp.round_trip)(&m, v);
                    let verdict = match (&ours, &theirs) {
                        (Err(_), Err(_)) => None,
                        // We read a null where Kafka's JSON allows none at this version.
                        (Ok((o, _)), Ok(_))
                            if null_path(&original, o).is_some_and(|p| !kafka_allows_null(key, dir, v, &p)) =>
                        {
                            let path = null_path(&original, o).unwrap();
                            Some((
                                format!(
                                    "we accept null {path}, Kafka only from v{}",
                                    late_nullable_from(key, dir, &path).unwrap()
                                ),
                                format!("ours: {o}"),
                            ))
                        }
                        (Ok((_, a)), Ok((d, b))) if a == b || !kp_knows_every_tag(d) => None,
                        (Ok((o, a)), Ok((d, b))) => {
                            if tolerated(key, dir, v, kp, o, d, b) {
                                None
                            } else {
                                Some((
                                    "different re-encodings".to_string(),
                                    format!(
                                        "ours: {o}\nkafka-protocol: {d}\nour bytes: {}\nits bytes: {}",
                                        hex(a),
                                        hex(b)
                                    ),
                                ))
                            }
                        }
                        (Err(e), Ok((d, _))) => {
                            let path = error_path(e);
                            if !kafka_allows_null(key, dir, v, path) {
                                None
                            } else {
                                Some((
                                    format!("only kafka-protocol accepts null {path}"),
                                    format!("{e}\nkafka-protocol: {d}"),
                                ))
                            }
                        }
                        // kafka-protocol refused a null where its type has no `Option`
                        // (its message for that is "... length is negative (-1)"): Kafka's
                        // JSON has no nullableVersions for that field, and we accepted a null.
                        // Its other refusals of bytes we accept are about malformed input
                        // (it takes a nullable-struct marker 0 as null where Kafka's Java and
                        // we take any non-negative marker as present; it reads a repeated tag
                        // differently), not about the schema.
                        (Ok((o, _)), Err(e)) if e.contains("negative (-1)") => {
                            Some(("only we accept a null".to_string(), format!("{e}\nours: {o}")))
                        }
                        (Ok(_), Err(_)) => None,
                    };
                    if let Some((check, detail)) = verdict {
                        failures.add(key, dir, v, check, || {
                            format!("seed {seed}, {} at {at}: {detail}\nbytes: {}", hex(null), hex(&m))
                        });
                    }
                }
            }
        }
    }
    failures.assert_none("null markers");
}

/// kafka-protocol's decoders accept a null in any version for a field that Kafka's
/// JSON makes nullable in *some* versions (its Rust type is an `Option` for all of
/// them; it never checks `nullableVersions`), so it can't tell us where a null
/// starts being allowed. These are the fields whose `nullableVersions` start later
/// than their `versions` in Kafka's JSON, each as (api, direction, our field path,
/// first nullable version), checked against apache/kafka's message definitions:
/// MetadataRequest.json (Topics 1+, Topics.Name 10+), MetadataResponse.json
/// (Topics.Name 12+), OffsetFetchRequest.json (Topics 2-7), JoinGroupResponse.json
/// (ProtocolName 7+), DeleteTopicsResponse.json (Responses.Name 6+). Every other
/// field kafka-protocol has as an `Option` is nullable in all its versions (where
/// the JSON says e.g. versions 1+, nullableVersions 0+, as CreateTopicsResponse's
/// ErrorMessage, that is all of them too).
const LATE_NULLABLE: &[(ApiKey, Dir, &str, i16)] = &[
    (ApiKey::Metadata, Dir::Request, "topics", 1),
    (ApiKey::Metadata, Dir::Request, "topics.name", 10),
    (ApiKey::Metadata, Dir::Response, "topics.name", 12),
    (ApiKey::OffsetFetch, Dir::Request, "topics", 2),
    (ApiKey::JoinGroup, Dir::Response, "protocol_name", 7),
    (ApiKey::DeleteTopics, Dir::Response, "responses.name", 6),
];

fn late_nullable_from(key: ApiKey, dir: Dir, path: &str) -> Option<i16> {
    LATE_NULLABLE.iter().find(|&&(k, d, p, _)| k == key && d == dir && p == path).map(|e| e.3)
}

/// Whether Kafka allows a null at `path` in version `v`, for a field that
/// kafka-protocol has as an `Option` (so nullable in some version).
fn kafka_allows_null(key: ApiKey, dir: Dir, v: i16, path: &str) -> bool {
    late_nullable_from(key, dir, path).is_none_or(|from| v >= from)
}

/// The field path (as in our decode errors: "topics.name") of the value that is
/// `Some(..)` in `before` and `None` in `after`, two of our `Debug` outputs that
/// differ only there; `None` when they differ otherwise (a plain number changed).
fn null_path(before: &str, after: &str) -> Option<String> {
    let at = before.bytes().zip(after.bytes()).position(|(a, b)| a != b)?;
    if !(before.as_bytes()[at..].starts_with(b"Some(") && after.as_bytes()[at..].starts_with(b"None")) {
        return None;
    }
    // Walk `before` up to the difference, keeping the field names of the open
    // structs: (nesting depth, field name).
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut depth = 0usize;
    let b = before.as_bytes();
    let mut i = 0;
    let mut ident_start = None;
    while i < at {
        match b[i] {
            b'"' => {
                // Skip a string or byte-string literal, with its escapes.
                i += 1;
                while i < at && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                ident_start = None;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                ident_start = None;
            }
            b'}' | b']' | b')' => {
                depth -= 1;
                stack.retain(|&(d, _)| d <= depth);
                ident_start = None;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                ident_start.get_or_insert(i);
            }
            b':' if b.get(i + 1) == Some(&b' ') => {
                if let Some(s) = ident_start.take() {
                    stack.retain(|&(d, _)| d < depth);
                    stack.push((depth, &before[s..i]));
                }
            }
            _ => ident_start = None,
        }
        i += 1;
    }
    Some(stack.iter().map(|&(_, n)| n).collect::<Vec<_>>().join("."))
}

/// Prints the versions we support that kafka-protocol doesn't (so this test doesn't
/// cover), and checks that it covers at least one version of every api we have.
#[test]
fn uncovered_versions_are_listed() {
    for &key in ApiKey::ALL {
        for dir in [Dir::Request, Dir::Response] {
            let (lo, hi) = key.versions();
            let kp = kp_for(key, dir);
            let missing: Vec<i16> = (lo..=hi).filter(|v| *v < kp.versions.0 || *v > kp.versions.1).collect();
            if !missing.is_empty() {
                eprintln!(
                    "not covered: {key:?} {dir:?} v{missing:?} (kafka-protocol has v{}-{})",
                    kp.versions.0, kp.versions.1
                );
            }
            assert!(common_versions(key, dir).next().is_some(), "{key:?} {dir:?}: no version in common");
        }
    }
    for (key, dir, v, why) in EXCLUDED {
        eprintln!("excluded: {key:?} {dir:?} v{v}: {why}");
    }
}
