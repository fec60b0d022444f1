//! What a run measured: throughput, latency percentiles, errors by Kafka error
//! code, the results of the correctness checks and the parameters used; as
//! text (`Display`) or JSON (`to_json`).
//!
//! Units: 1 MB = 10^6 bytes; latencies are recorded in microseconds in an
//! HdrHistogram (3 significant digits) and shown in milliseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::errors::error_name;

/// Records latencies in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder (1 µs to 1 h auto-resizing, 3 significant digits).
    pub fn new() -> LatencyRecorder {
        let mut hist = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
        hist.auto(true);
        LatencyRecorder { hist }
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        self.record_micros(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Records one latency given in microseconds (values under 1 µs count as 1 µs).
    pub fn record_micros(&mut self, us: u64) {
        // With auto-resize on, recording cannot fail.
        let _ = self.hist.record(us.max(1));
    }

    /// Records `count` equal latencies.
    pub fn record_n(&mut self, us: u64, count: u64) {
        let _ = self.hist.record_n(us.max(1), count);
    }

    /// Adds another recorder's values.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        let _ = self.hist.add(&other.hist);
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The percentiles, or None when nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        let h = &self.hist;
        Some(LatencySummary {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        })
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Smallest.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl LatencySummary {
    fn to_json(self) -> Value {
        let ms = |us: u64| us as f64 / 1000.0;
        json!({
            "count": self.count,
            "min_ms": ms(self.min_us),
            "mean_ms": self.mean_us / 1000.0,
            "p50_ms": ms(self.p50_us),
            "p90_ms": ms(self.p90_us),
            "p99_ms": ms(self.p99_us),
            "p99_9_ms": ms(self.p999_us),
            "max_ms": ms(self.max_us),
        })
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {}, n={})",
            fmt_ms(self.p50_us as f64),
            fmt_ms(self.p90_us as f64),
            fmt_ms(self.p99_us as f64),
            fmt_ms(self.p999_us as f64),
            fmt_ms(self.max_us as f64),
            fmt_ms(self.mean_us),
            group(self.count),
        )
    }
}

/// Records and bytes moved over a time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    /// Records.
    pub records: u64,
    /// Record payload bytes (keys + values), as the application sees them.
    pub payload_bytes: u64,
    /// Record batch bytes on the wire (after compression, with batch and record headers).
    pub wire_bytes: u64,
    /// The time they took.
    pub elapsed: Duration,
}

impl Throughput {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    /// Records per second (0 when no time passed).
    pub fn records_per_sec(&self) -> f64 {
        if self.secs() > 0.0 {
            self.records as f64 / self.secs()
        } else {
            0.0
        }
    }

    /// Payload megabytes per second, 1 MB = 10^6 bytes.
    pub fn mb_per_sec(&self) -> f64 {
        if self.secs() > 0.0 {
            self.payload_bytes as f64 / 1e6 / self.secs()
        } else {
            0.0
        }
    }

    /// Wire (batch) megabytes per second, 1 MB = 10^6 bytes.
    pub fn wire_mb_per_sec(&self) -> f64 {
        if self.secs() > 0.0 {
            self.wire_bytes as f64 / 1e6 / self.secs()
        } else {
            0.0
        }
    }

    fn to_json(self) -> Value {
        json!({
            "records": self.records,
            "payload_bytes": self.payload_bytes,
            "wire_bytes": self.wire_bytes,
            "elapsed_s": self.secs(),
            "records_per_s": self.records_per_sec(),
            "mb_per_s": self.mb_per_sec(),
            "wire_mb_per_s": self.wire_mb_per_sec(),
        })
    }
}

impl fmt::Display for Throughput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records in {:.2} s = {} records/s, {:.2} MB/s payload, {:.2} MB/s on the wire",
            group(self.records),
            self.secs(),
            group(self.records_per_sec().round() as u64),
            self.mb_per_sec(),
            self.wire_mb_per_sec(),
        )
    }
}

/// Errors seen during a run, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorCounts {
    /// Kafka error codes in responses, by (api, code).
    pub kafka: BTreeMap<(String, i16), u64>,
    /// Client-side failures (connection lost, timeouts, undecodable responses), by kind.
    pub client: BTreeMap<String, u64>,
    /// Failed correctness checks (gaps, duplicates, offsets going backwards, bad CRCs...), by check.
    pub checks: BTreeMap<String, u64>,
    /// The first few failed checks and client errors in words.
    pub examples: Vec<String>,
}

/// How many examples an [`ErrorCounts`] keeps.
const MAX_EXAMPLES: usize = 20;

impl ErrorCounts {
    /// Counts a Kafka error code returned to `api`.
    pub fn kafka(&mut self, api: &str, code: i16) {
        *self.kafka.entry((api.to_string(), code)).or_default() += 1;
    }

    /// Counts a client-side failure.
    pub fn client(&mut self, kind: &str, detail: impl FnOnce() -> String) {
        *self.client.entry(kind.to_string()).or_default() += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(detail());
        }
    }

    /// Counts `n` failures of the check `check`.
    pub fn check(&mut self, check: &str, n: u64, detail: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        *self.checks.entry(check.to_string()).or_default() += n;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(detail());
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: ErrorCounts) {
        for (k, v) in other.kafka {
            *self.kafka.entry(k).or_default() += v;
        }
        for (k, v) in other.client {
            *self.client.entry(k).or_default() += v;
        }
        for (k, v) in other.checks {
            *self.checks.entry(k).or_default() += v;
        }
        for e in other.examples {
            if self.examples.len() < MAX_EXAMPLES {
                self.examples.push(e);
            }
        }
    }

    /// True when nothing at all went wrong.
    pub fn is_empty(&self) -> bool {
        self.kafka.is_empty() && self.client.is_empty() && self.checks.is_empty()
    }

    fn to_json(&self) -> Value {
        let kafka: Vec<Value> = self
            .kafka
            .iter()
            .map(|((api, code), n)| json!({"api": api, "code": code, "name": error_name(*code), "count": n}))
            .collect();
        json!({
            "kafka": kafka,
            "client": self.client,
            "checks": self.checks,
            "examples": self.examples,
        })
    }
}

/// The producer's results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProduceReport {
    /// Records acknowledged (or, with acks=0, written to the socket), from the
    /// first record to the last acknowledgement.
    pub throughput: Throughput,
    /// Produce requests sent (retries included).
    pub requests: u64,
    /// Record batches sent (retries included).
    pub batches: u64,
    /// Records whose batch failed for good (error after the last retry).
    pub records_failed: u64,
    /// Batches sent again after a retriable error.
    pub batches_retried: u64,
    /// Sum of throttle_time_ms the brokers asked for.
    pub throttle_ms: u64,
    /// Produce request latency, send → ack (None with acks=0).
    pub request_latency: Option<LatencySummary>,
}

/// The consumer's results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeReport {
    /// Records delivered, from the first fetch to the last record.
    pub throughput: Throughput,
    /// Fetch requests sent.
    pub fetches: u64,
    /// Fetch responses that carried no record.
    pub empty_fetches: u64,
    /// End-to-end latency (consume time − produce time in the record), for e2e runs.
    pub e2e_latency: Option<LatencySummary>,
}

/// Everything a run found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// produce, consume or e2e.
    pub workload: String,
    /// The parameters used, in order, as name/value pairs.
    pub parameters: Vec<(String, String)>,
    /// The api versions negotiated with the brokers (first broker's).
    pub api_versions: Vec<(String, i16)>,
    /// Producer results.
    pub produce: Option<ProduceReport>,
    /// Consumer results.
    pub consume: Option<ConsumeReport>,
    /// Errors and failed checks.
    pub errors: ErrorCounts,
    /// Remarks (e.g. the topic already existed with another partition count).
    pub notes: Vec<String>,
}

impl Report {
    /// True when no check failed and no error was returned: the broker
    /// behaved. (A script can exit non-zero otherwise.)
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// True when a correctness check failed (gaps, duplicates, offsets going
    /// backwards, corrupt batches, lost records): a broker bug, not a hiccup.
    pub fn has_check_failures(&self) -> bool {
        !self.errors.checks.is_empty()
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let params: serde_json::Map<String, Value> =
            self.parameters.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let versions: serde_json::Map<String, Value> =
            self.api_versions.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        json!({
            "workload": self.workload,
            "units": {"mb": "10^6 bytes", "latency": "milliseconds"},
            "parameters": params,
            "api_versions": versions,
            "produce": self.produce.as_ref().map(|p| json!({
                "throughput": p.throughput.to_json(),
                "requests": p.requests,
                "batches": p.batches,
                "records_per_request": ratio(p.throughput.records, p.requests),
                "records_failed": p.records_failed,
                "batches_retried": p.batches_retried,
                "throttle_ms": p.throttle_ms,
                "request_latency": p.request_latency.map(LatencySummary::to_json),
            })),
            "consume": self.consume.as_ref().map(|c| json!({
                "throughput": c.throughput.to_json(),
                "fetches": c.fetches,
                "empty_fetches": c.empty_fetches,
                "e2e_latency": c.e2e_latency.map(LatencySummary::to_json),
            })),
            "errors": self.errors.to_json(),
            "clean": self.is_clean(),
            "check_failures": self.has_check_failures(),
            "notes": self.notes,
        })
    }

    /// The text or the JSON form.
    pub fn render(&self, json: bool) -> String {
        if json {
            self.to_json().to_string()
        } else {
            self.to_string()
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "strata bench {}  (1 MB = 10^6 bytes; latencies in ms)", self.workload)?;
        writeln!(f, "parameters:")?;
        for (k, v) in &self.parameters {
            writeln!(f, "  {k:<38} {v}")?;
        }
        if !self.api_versions.is_empty() {
            let v: Vec<String> = self.api_versions.iter().map(|(k, v)| format!("{k} v{v}")).collect();
            writeln!(f, "  {:<38} {}", "api versions", v.join(", "))?;
        }
        if let Some(p) = &self.produce {
            writeln!(f, "produce:")?;
            writeln!(f, "  {}", p.throughput)?;
            writeln!(
                f,
                "  {} requests, {} batches, {:.1} records/request, {:.1} records/batch",
                group(p.requests),
                group(p.batches),
                ratio(p.throughput.records, p.requests),
                ratio(p.throughput.records, p.batches),
            )?;
            if p.records_failed > 0 || p.batches_retried > 0 {
                writeln!(f, "  {} records failed, {} batches retried", group(p.records_failed), group(p.batches_retried))?;
            }
            if p.throttle_ms > 0 {
                writeln!(f, "  throttled by the brokers for {} ms in all", group(p.throttle_ms))?;
            }
            match &p.request_latency {
                Some(l) => writeln!(f, "  request latency (send → ack): {l}")?,
                None => writeln!(f, "  request latency: none measured (acks=0 gets no answer)")?,
            }
        }
        if let Some(c) = &self.consume {
            writeln!(f, "consume:")?;
            writeln!(f, "  {}", c.throughput)?;
            writeln!(f, "  {} fetches ({} empty)", group(c.fetches), group(c.empty_fetches))?;
            if let Some(l) = &c.e2e_latency {
                writeln!(f, "  end-to-end latency (produce → consume): {l}")?;
            }
        }
        if self.errors.is_empty() {
            writeln!(f, "errors: none; checks: all passed")?;
        } else {
            writeln!(f, "errors:")?;
            for ((api, code), n) in &self.errors.kafka {
                writeln!(f, "  {api}: {} ({code}) × {}", error_name(*code), group(*n))?;
            }
            for (kind, n) in &self.errors.client {
                writeln!(f, "  client: {kind} × {}", group(*n))?;
            }
            if self.errors.checks.is_empty() {
                writeln!(f, "checks: all passed")?;
            } else {
                writeln!(f, "CHECKS FAILED:")?;
                for (check, n) in &self.errors.checks {
                    writeln!(f, "  {check}: {}", group(*n))?;
                }
            }
            for e in &self.errors.examples {
                writeln!(f, "  - {e}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// Microseconds as milliseconds with sensible precision.
fn fmt_ms(us: f64) -> String {
    let ms = us / 1000.0;
    if ms < 10.0 {
        format!("{ms:.3}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_math_uses_decimal_megabytes() {
        let t = Throughput {
            records: 1_000_000,
            payload_bytes: 1_000_000_000,
            wire_bytes: 500_000_000,
            elapsed: Duration::from_secs(10),
        };
        assert_eq!(t.records_per_sec(), 100_000.0);
        assert_eq!(t.mb_per_sec(), 100.0);
        assert_eq!(t.wire_mb_per_sec(), 50.0);
        assert_eq!(Throughput::default().records_per_sec(), 0.0);
        assert_eq!(Throughput::default().mb_per_sec(), 0.0);
        let s = t.to_string();
        assert!(s.contains("100,000 records/s") && s.contains("100.00 MB/s payload"), "{s}");
    }

    #[test]
    fn percentiles_from_the_histogram() {
        let mut r = LatencyRecorder::new();
        assert!(r.summary().is_none());
        for us in 1..=1000u64 {
            r.record(Duration::from_micros(us));
        }
        let s = r.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_us, 1);
        assert_eq!(s.max_us, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p90_us, 900);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
        assert!((s.mean_us - 500.5).abs() < 0.5);

        let mut other = LatencyRecorder::new();
        other.record_n(1_000_000, 1000); // 1 s
        r.merge(&other);
        let s = r.summary().unwrap();
        assert_eq!(s.count, 2000);
        assert_eq!(s.p50_us, 1000);
        // 3 significant digits: 1 s is within 0.1%.
        assert!((999_000..=1_001_000).contains(&s.p90_us), "{}", s.p90_us);
    }

    #[test]
    fn grouping_and_ms() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(fmt_ms(1234.0), "1.234");
        assert_eq!(fmt_ms(12_345.0), "12.3");
        assert_eq!(fmt_ms(1_234_567.0), "1235");
    }

    #[test]
    fn report_text_and_json() {
        let mut errors = ErrorCounts::default();
        errors.kafka("Produce", 6);
        errors.kafka("Produce", 6);
        errors.check("offset gaps", 1, || "partition 0: offsets 5..7 missing".into());
        let mut lat = LatencyRecorder::new();
        lat.record(Duration::from_millis(2));
        let report = Report {
            workload: "produce".into(),
            parameters: vec![("acks".into(), "all".into())],
            api_versions: vec![("Produce".into(), 9)],
            produce: Some(ProduceReport {
                throughput: Throughput {
                    records: 10,
                    payload_bytes: 10_000,
                    wire_bytes: 5_000,
                    elapsed: Duration::from_secs(1),
                },
                requests: 2,
                batches: 2,
                request_latency: lat.summary(),
                ..Default::default()
            }),
            consume: None,
            errors,
            notes: vec![],
        };
        assert!(!report.is_clean());
        assert!(report.has_check_failures());
        let text = report.to_string();
        assert!(text.contains("NOT_LEADER_OR_FOLLOWER (6) × 2"), "{text}");
        assert!(text.contains("CHECKS FAILED"), "{text}");
        assert!(text.contains("p50 2.000"), "{text}");
        let j: Value = serde_json::from_str(&report.render(true)).unwrap();
        assert_eq!(j["produce"]["throughput"]["records_per_s"], 10.0);
        assert_eq!(j["produce"]["throughput"]["mb_per_s"], 0.01);
        assert_eq!(j["produce"]["request_latency"]["p50_ms"], 2.0);
        assert_eq!(j["errors"]["kafka"][0]["name"], "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(j["errors"]["checks"]["offset gaps"], 1);
        assert_eq!(j["parameters"]["acks"], "all");
        assert_eq!(j["clean"], false);
    }
}
