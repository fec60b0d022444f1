//! Codec throughput on a 1 MiB Produce request (4 partitions x 256 KiB of 1 KiB
//! records, uncompressed, as an acks=all producer with linger sends them):
//! frame decode, decode + CRC check of every batch (what a broker does on the
//! way in), and encode.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_proto::codec::header::{Request, RequestHeader};
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::ProduceRequest;
use strata_proto::records::{batches, BatchBuilder, Compression, TailMode};
use strata_proto::{FrameDecoder, RequestBody};

fn produce_request(version: i16) -> Bytes {
    let value = vec![0x5a; 1024];
    let mut partitions = Vec::new();
    for p in 0..4 {
        let mut b = BatchBuilder::new(Compression::None).producer(1000, 0, 0);
        for i in 0..255 {
            let key = format!("key-{i}");
            b.push(1_700_000_000_000 + i, Some(key.as_bytes()), Some(&value), &[]).unwrap();
        }
        partitions.push(PartitionProduceData { index: p, records: Some(b.build().unwrap()), ..Default::default() });
    }
    let body = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData { name: "bench".into(), partition_data: partitions, ..Default::default() }],
        ..Default::default()
    };
    let request = Request {
        header: RequestHeader { api_key: 0, api_version: version, correlation_id: 1, client_id: Some("bench".into()) },
        body: RequestBody::Produce(body),
    };
    let mut w = BytesMut::new();
    request.encode_frame(&mut w).unwrap();
    w.freeze()
}

fn bench(c: &mut Criterion) {
    for version in [3i16, 9] {
        let frame = produce_request(version);
        let mut g = c.benchmark_group(format!("produce_1mib_v{version}"));
        g.throughput(Throughput::Bytes(frame.len() as u64));
        let frames = FrameDecoder::new(100 << 20);
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&frame[..]);
                let f = frames.decode(&mut buf).unwrap().unwrap();
                Request::decode(f).unwrap()
            })
        });
        let body = frame.slice(4..);
        g.bench_function("decode_and_crc_check", |b| {
            b.iter(|| {
                let r = Request::decode(body.clone()).unwrap();
                let RequestBody::Produce(p) = r.body else { unreachable!() };
                let mut n = 0;
                for t in &p.topic_data {
                    for part in &t.partition_data {
                        for batch in batches(part.records.clone().unwrap(), TailMode::Strict) {
                            batch.unwrap().verify_crc().unwrap();
                            n += 1;
                        }
                    }
                }
                n
            })
        });
        let decoded = Request::decode(body.clone()).unwrap();
        g.bench_function("encode", |b| {
            b.iter(|| {
                let mut w = BytesMut::with_capacity(frame.len());
                decoded.encode_frame(&mut w).unwrap();
                w
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
