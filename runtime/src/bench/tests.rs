//! The whole tool against the in-process fake broker.

use clap::{Parser, Subcommand};

use super::fake_broker::{FakeBroker, Faults};
use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    Bench(BenchArgs),
}

fn args(broker: &FakeBroker, a: &str) -> BenchArgs {
    let mut v = vec!["strata".to_string(), "bench".to_string()];
    let mut words = a.split_whitespace().map(String::from);
    v.push(words.next().expect("a workload"));
    v.extend(["-b".into(), broker.bootstrap(), "--progress-secs".into(), "0".into(), "--request-timeout-ms".into(), "5000".into()]);
    v.extend(words);
    let Top::Bench(b) = Cli::try_parse_from(v).unwrap_or_else(|e| panic!("{e}")).cmd;
    b
}

async fn bench(broker: &FakeBroker, a: &str) -> Report {
    let report = run(args(broker, a)).await.unwrap_or_else(|e| panic!("{a}: {e}"));
    // Both forms render.
    let _ = report.to_string();
    let _ = report.render(true);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_consume_everything_cleanly() {
    let broker = FakeBroker::start(Faults::default()).await;
    let r = bench(&broker, "produce -t t1 --create-topic -p 4 -n 20000 -s 100 --linger-ms 1").await;
    assert!(r.is_clean(), "{r}");
    let p = r.produce.as_ref().unwrap();
    assert_eq!(p.throughput.records, 20_000);
    assert_eq!(p.throughput.payload_bytes, 2_000_000);
    assert!(p.request_latency.is_some());
    assert!(p.batches < 20_000 / 10, "records are batched: {} batches", p.batches);
    let ends: i64 = (0..4).map(|i| broker.log_end("t1", i)).sum();
    assert_eq!(ends, 20_000);
    // Sticky partitioning spreads the records over every partition.
    assert!((0..4).all(|i| broker.log_end("t1", i) > 0));

    let r = bench(&broker, "consume -t t1 --from earliest").await;
    assert!(r.is_clean(), "{r}");
    let c = r.consume.as_ref().unwrap();
    assert_eq!(c.throughput.records, 20_000);
    assert_eq!(c.throughput.payload_bytes, 2_000_000);

    // A bounded consume from a subset of partitions.
    let r = bench(&broker, "consume -t t1 --partition-ids 2 -n 10").await;
    assert!(r.is_clean(), "{r}");
    assert!(r.consume.unwrap().throughput.records >= 10);

    // Text and JSON say the same.
    let r = bench(&broker, "consume -t t1").await;
    let j = r.to_json();
    assert_eq!(j["consume"]["throughput"]["records"], 20_000);
    assert_eq!(j["clean"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_acks_setting_round_trips() {
    let broker = FakeBroker::start(Faults::default()).await;
    let mut total = 0;
    for (i, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let acks = ["0", "1", "all", "-1", "1"][i];
        let create = if i == 0 { "--create-topic -p 3" } else { "" };
        let r = bench(&broker, &format!("produce -t codecs {create} -n 3000 -s 200 --compression {codec} --acks {acks}")).await;
        assert!(r.is_clean(), "{codec}: {r}");
        assert_eq!(r.produce.as_ref().unwrap().throughput.records, 3000);
        if acks == "0" {
            assert!(r.produce.as_ref().unwrap().request_latency.is_none());
        } else {
            let p = r.produce.as_ref().unwrap();
            // Random letters: only the entropy coders shrink them.
            if *codec == "gzip" || *codec == "zstd" {
                assert!(p.throughput.wire_bytes < p.throughput.payload_bytes, "{codec} compresses: {r}");
            }
        }
        total += 3000;
        // With acks=0 nothing waits for the broker to have the records.
        for _ in 0..100 {
            if (0..3).map(|p| broker.log_end("codecs", p)).sum::<i64>() == total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let r = bench(&broker, "consume -t codecs").await;
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.consume.unwrap().throughput.records, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_measures_latency_and_sees_every_record() {
    let broker = FakeBroker::start(Faults::default()).await;
    let r = bench(&broker, "e2e -t e2e --create-topic -p 3 -n 5000 -s 64 --rate 20000 --compression lz4 --fetch-max-wait-ms 20").await;
    assert!(r.is_clean(), "{r}");
    let p = r.produce.as_ref().unwrap();
    let c = r.consume.as_ref().unwrap();
    assert_eq!(p.throughput.records, 5000);
    assert_eq!(c.throughput.records, 5000);
    let e2e = c.e2e_latency.expect("e2e latency");
    assert_eq!(e2e.count, 5000);
    assert!(e2e.max_us < 5_000_000, "{e2e:?}");
    // Paced at 20,000 records/s, 5,000 records take about 0.25 s.
    assert!(p.throughput.elapsed >= Duration::from_millis(200), "{:?}", p.throughput.elapsed);
    let j = r.to_json();
    assert!(j["consume"]["e2e_latency"]["p99_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_producers_and_consumers_split_the_work() {
    let broker = FakeBroker::start(Faults::default()).await;
    let r = bench(&broker, "produce -t many --create-topic -p 5 -n 10001 -s 30 --producers 3 --partitioner round-robin").await;
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.produce.unwrap().throughput.records, 10_001);
    let r = bench(&broker, "consume -t many --consumers 2").await;
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.consume.unwrap().throughput.records, 10_001);
    let r = bench(&broker, "e2e -t many -n 3000 -s 30 --producers 2 --consumers 3 --fetch-max-wait-ms 10").await;
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.consume.as_ref().unwrap().throughput.records, 3000);
    assert_eq!(r.consume.unwrap().e2e_latency.unwrap().count, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_numbers_its_batches() {
    // The fake broker refuses a batch whose sequence is not the next expected one.
    let broker = FakeBroker::start(Faults::default()).await;
    let r = bench(&broker, "e2e -t idem --create-topic -p 3 -n 20000 -s 40 --idempotence --producers 2 --fetch-max-wait-ms 10").await;
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.consume.unwrap().throughput.records, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_errors_are_retried_and_counted() {
    let broker = FakeBroker::start(Faults { not_leader_first: 3, ..Default::default() }).await;
    let r = bench(&broker, "e2e -t retry --create-topic -p 2 -n 3000 -s 40 --idempotence --retry-backoff-ms 5 --fetch-max-wait-ms 10").await;
    assert!(!r.is_clean() && !r.has_check_failures(), "{r}");
    assert!(r.errors.kafka.get(&("Produce".to_string(), 6)).is_some_and(|n| *n >= 3), "{r}");
    let p = r.produce.as_ref().unwrap();
    assert!(p.batches_retried >= 3, "{r}");
    assert_eq!(p.records_failed, 0);
    assert_eq!(r.consume.as_ref().unwrap().throughput.records, 3000, "{r}");
    // Without retries the records are lost, and said so.
    let broker = FakeBroker::start(Faults { not_leader_first: 1, ..Default::default() }).await;
    let r = bench(&broker, "produce -t retry --create-topic -n 10 -s 40 --retries 0").await;
    assert_eq!(r.produce.as_ref().unwrap().records_failed, 10, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_bounds_the_run() {
    let broker = FakeBroker::start(Faults::default()).await;
    let t = Instant::now();
    let r = bench(&broker, "produce -t dur --create-topic -d 300ms --rate 1000 -s 10").await;
    assert!(r.is_clean(), "{r}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let n = r.produce.unwrap().throughput.records;
    assert!((200..=400).contains(&n), "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_offsets_is_caught() {
    let broker = FakeBroker::start(Faults { gap_at: Some(500), ..Default::default() }).await;
    let r = bench(&broker, "produce -t gap --create-topic -n 2000 -s 50").await;
    // Base offsets jumping forward is allowed on produce (other producers)...
    assert!(r.is_clean(), "{r}");
    // ...but a consumer must see no hole.
    let r = bench(&broker, "consume -t gap").await;
    assert!(r.has_check_failures(), "{r}");
    assert_eq!(r.errors.checks.get("offset gaps"), Some(&1), "{r}");
    assert_eq!(r.errors.checks.get("missing offsets"), Some(&3), "{r}");
    assert!(r.to_string().contains("CHECKS FAILED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_produce_offsets_are_caught() {
    let broker = FakeBroker::start(Faults { overlap_at_produce: Some(3), ..Default::default() }).await;
    let r = bench(&broker, "produce -t ov --create-topic -n 2000 -s 50 --batch-size 1000 --max-in-flight 1").await;
    assert!(r.has_check_failures(), "{r}");
    assert_eq!(r.errors.checks.get("produce offsets overlap or go backwards"), Some(&1), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_an_error_unless_created() {
    let broker = FakeBroker::start(Faults::default()).await;
    let e = run(args(&broker, "produce -t nope -n 1")).await.unwrap_err();
    assert!(matches!(e, BenchError::NoTopic(_)), "{e}");
    let e = run(args(&broker, "e2e -t nope2 --create-topic -n 1 -s 4")).await.unwrap_err();
    assert!(matches!(e, BenchError::Args(_)), "{e}");
    let e = run(args(&broker, "consume -t nope3 --create-topic --from latest")).await.unwrap_err();
    assert!(matches!(e, BenchError::Args(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let Top::Bench(b) = Cli::try_parse_from(["strata", "bench", "produce", "-b", &addr.to_string(), "-n", "1"]).unwrap().cmd;
    let e = run(b).await.unwrap_err();
    assert!(matches!(e, BenchError::Client(ClientError::Connect { .. })), "{e}");
}

/// A rough ceiling of the tool itself (the fake broker is cheap):
/// `cargo test --release -p strata-runtime bench::tests::ceiling -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn ceiling() {
    let broker = FakeBroker::start(Faults::default()).await;
    for a in [
        "produce -t c1 --create-topic -p 8 -n 2000000 -s 100",
        "produce -t c2 --create-topic -p 8 -n 500000 -s 1024",
        "produce -t c3 --create-topic -p 8 -n 500000 -s 1024 --compression zstd",
        "consume -t c2",
        "e2e -t c4 --create-topic -p 8 -n 500000 -s 1024",
    ] {
        let r = bench(&broker, a).await;
        eprintln!("{a}\n{r}");
        assert!(r.is_clean());
    }
}
