//! The etcd sequencer against a real etcd (Debian's `etcd-server`, binary
//! `etcd`), started on free loopback ports with a temporary data directory and
//! stopped at the end of each test.
//!
//! Without etcd (in $ETCD_SERVER, or `etcd` on PATH) a test says so and passes,
//! unless STRATA_REQUIRE_ETCD=1 (ci/test sets it, after installing etcd), which
//! makes a missing etcd a failure.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_runtime::sequencer::{AppendError, EtcdSequencer, Member, MemberWatch, Sequencer, SequencerError, Watch};

/// An etcd child on fixed ports and a data directory; killed and reaped on drop.
struct Etcd {
    bin: PathBuf,
    dir: PathBuf,
    client: SocketAddr,
    peer: SocketAddr,
    child: Option<Child>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_etcd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("etcd")).find(|p| p.is_file())
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

impl Etcd {
    /// Starts etcd in `dir`, or returns None (after saying why) when there is none.
    fn start(dir: &Path) -> Option<Etcd> {
        let Some(bin) = find_etcd() else {
            let required = std::env::var("STRATA_REQUIRE_ETCD").is_ok_and(|v| v == "1");
            assert!(!required, "STRATA_REQUIRE_ETCD=1 but etcd is not installed: apt-get install etcd-server");
            eprintln!("SKIPPED: etcd is not installed (apt-get install etcd-server, or set ETCD_SERVER=/path/to/etcd)");
            return None;
        };
        let mut etcd = Etcd { bin, dir: dir.to_path_buf(), client: free_addr(), peer: free_addr(), child: None };
        etcd.restart();
        Some(etcd)
    }

    fn endpoint(&self) -> String {
        self.client.to_string()
    }

    /// Starts the process (again) on the same ports and data directory, and
    /// waits until it accepts connections.
    fn restart(&mut self) {
        let client = format!("http://{}", self.client);
        let peer = format!("http://{}", self.peer);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("etcd.log")).unwrap();
        let child = Command::new(&self.bin)
            .args(["--name", "strata-test", "--data-dir"])
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("strata-test={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        for _ in 0..400 {
            if TcpStream::connect(self.client).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("etcd exited with {status} before listening; see {}", self.dir.join("etcd.log").display());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("etcd did not listen on {}", self.client);
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Reads `n` records from `w` (bounded wait), failing on an error.
async fn take(w: &mut Watch, n: usize) -> Vec<(u64, Bytes)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
            Ok(Some(Ok(x))) => got.push(x),
            Ok(Some(Err(e))) => panic!("watch error after {} records: {e}", got.len()),
            Ok(None) => panic!("watch ended after {} records", got.len()),
            Err(_) => panic!("watch stalled after {} of {n} records", got.len()),
        }
    }
    got
}

fn assert_increasing(records: &[(u64, Bytes)]) {
    for w in records.windows(2) {
        assert!(w[0].0 < w[1].0, "revisions must increase: {} then {}", w[0].0, w[1].0);
    }
}

#[test]
fn append_and_watch_across_two_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    rt().block_on(async {
        let eps = [etcd.endpoint()];
        let a = EtcdSequencer::connect(&eps, "c1").await.unwrap();
        let b = EtcdSequencer::connect(&eps, "c1").await.unwrap();
        let other = EtcdSequencer::connect(&eps, "c2").await.unwrap();
        assert_eq!(a.current_revision().await.unwrap(), 0, "an empty log");

        let r1 = a.append(Bytes::from_static(b"one")).await.unwrap();
        let r2 = b.append(Bytes::from_static(b"two")).await.unwrap();
        // Another cluster's record moves etcd's revision, not ours.
        let r_other = other.append(Bytes::from_static(b"elsewhere")).await.unwrap();
        let r3 = a.append(Bytes::from_static(b"three")).await.unwrap();
        let r_other2 = other.append(Bytes::from_static(b"elsewhere too")).await.unwrap();
        assert!(r1 < r2 && r2 < r_other && r_other < r3 && r3 < r_other2, "{r1} {r2} {r_other} {r3} {r_other2}");
        assert_eq!(a.current_revision().await.unwrap(), r3, "the last record of this cluster, not etcd's revision");
        assert_eq!(b.current_revision().await.unwrap(), r3);

        let want = vec![(r1, Bytes::from_static(b"one")), (r2, Bytes::from_static(b"two")), (r3, Bytes::from_static(b"three"))];
        for s in [&a, &b] {
            let mut w = s.watch(0).await.unwrap();
            assert_eq!(take(&mut w, 3).await, want);
        }
        // From a middle revision, and from one between records.
        let mut w = b.watch(r2).await.unwrap();
        assert_eq!(take(&mut w, 2).await, want[1..]);
        let mut w = a.watch(r_other).await.unwrap();
        assert_eq!(take(&mut w, 1).await, want[2..]);

        // A watch from beyond the end waits for the next record.
        let mut w = a.watch(r_other2 + 1).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(300), w.next()).await.is_err(), "nothing yet");
        let r4 = b.append(Bytes::from_static(b"four")).await.unwrap();
        assert_eq!(take(&mut w, 1).await, vec![(r4, Bytes::from_static(b"four"))]);
        let mut w = other.watch(0).await.unwrap();
        let theirs = take(&mut w, 2).await;
        assert_eq!(theirs[0].1, Bytes::from_static(b"elsewhere"));
    });
}

#[test]
fn concurrent_appends_are_delivered_once_in_one_order() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    const EACH: usize = 150;
    rt().block_on(async {
        let eps = [etcd.endpoint()];
        let a = Arc::new(EtcdSequencer::connect(&eps, "cc").await.unwrap());
        let b = Arc::new(EtcdSequencer::connect(&eps, "cc").await.unwrap());
        let mut wa = a.watch(1).await.unwrap();
        let mut wb = b.watch(1).await.unwrap();
        let run = |s: Arc<EtcdSequencer>, name: &'static str| {
            tokio::spawn(async move {
                // Started (first polled) in index order, as the runtime's
                // appender does, all in flight at once: their revisions must
                // follow that order.
                let mut appends: Vec<_> = (0..EACH)
                    .map(|i| Box::pin(futures_util::future::maybe_done(s.append(Bytes::from(format!("{name}-{i}"))))))
                    .collect();
                for a in &mut appends {
                    let _ = std::future::poll_fn(|cx| std::task::Poll::Ready(a.as_mut().poll(cx))).await;
                }
                let mut results = Vec::with_capacity(EACH);
                for mut a in appends {
                    a.as_mut().await;
                    results.push(a.as_mut().take_output().expect("done"));
                }
                results
            })
        };
        let (ra, rb) = tokio::join!(run(a.clone(), "a"), run(b.clone(), "b"));
        let mut acked = BTreeMap::new();
        for (name, results) in [("a", ra.unwrap()), ("b", rb.unwrap())] {
            let revs: Vec<u64> = results.into_iter().map(|r| r.expect("append")).collect();
            assert!(revs.windows(2).all(|w| w[0] < w[1]), "{name}'s appends keep the order they were started in: {revs:?}");
            for (i, rev) in revs.into_iter().enumerate() {
                acked.insert(rev, Bytes::from(format!("{name}-{i}")));
            }
        }
        let seen_a = take(&mut wa, 2 * EACH).await;
        let seen_b = take(&mut wb, 2 * EACH).await;
        assert_eq!(seen_a, seen_b, "both watchers see one order");
        assert_increasing(&seen_a);
        let seen: BTreeMap<u64, Bytes> = seen_a.into_iter().collect();
        assert_eq!(seen, acked, "every append exactly once, at the revision it was acknowledged with");
        // Nothing more.
        assert!(tokio::time::timeout(Duration::from_millis(300), wa.next()).await.is_err());
    });
}

#[test]
fn etcd_crash_and_restart_under_appends_and_a_watch() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut etcd) = Etcd::start(tmp.path()) else { return };
    let rt = rt();
    let seq = Arc::new(rt.block_on(EtcdSequencer::connect(&[etcd.endpoint()], "crash")).unwrap());

    // The watch, read all along by a task.
    let seen: Arc<Mutex<Vec<(u64, Bytes)>>> = Arc::default();
    let watcher = {
        let (seq, seen) = (seq.clone(), seen.clone());
        rt.spawn(async move {
            let mut w = seq.watch(0).await.unwrap();
            while let Some(item) = w.next().await {
                match item {
                    Ok(x) => seen.lock().unwrap().push(x),
                    Err(e) => panic!("watch ended with {e} (it should ride out the restart)"),
                }
            }
        })
    };

    // The appender: one append every few ms until told to stop.
    #[derive(Default)]
    struct Outcomes {
        ok: Vec<(u64, Bytes)>,
        unknown: Vec<Bytes>,
        failed: Vec<Bytes>,
    }
    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (seq, outcomes, stop) = (seq.clone(), outcomes.clone(), stop.clone());
        rt.spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let record = Bytes::from(format!("record-{i}"));
                i += 1;
                let result = seq.append(record.clone()).await;
                {
                    let mut o = outcomes.lock().unwrap();
                    match result {
                        Ok(rev) => o.ok.push((rev, record)),
                        Err(AppendError::Unknown(_)) => o.unknown.push(record),
                        Err(AppendError::Failed(_)) => o.failed.push(record),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let oks = || outcomes.lock().unwrap().ok.len();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("appends before the crash", &|| oks() >= 50);
    eprintln!("killing etcd after {} acknowledged appends", oks());
    etcd.kill();
    let at_crash = oks();
    std::thread::sleep(Duration::from_secs(3));
    let during = {
        let o = outcomes.lock().unwrap();
        o.failed.len() + o.unknown.len()
    };
    assert!(during > 0, "appends during the outage fail");
    assert!(oks() <= at_crash + 1, "no append succeeds while etcd is down");
    eprintln!("restarting etcd; {during} appends failed meanwhile");
    etcd.restart();
    wait_for("appends after the restart", &|| oks() >= at_crash + 50);
    eprintln!("{} acknowledged appends after the restart", oks() - at_crash);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(appender).unwrap();

    let o = std::mem::take(&mut *outcomes.lock().unwrap());
    let last = o.ok.last().unwrap().0;
    wait_for("the watch to reach the last acknowledged record", &|| {
        seen.lock().unwrap().last().is_some_and(|(r, _)| *r >= last)
    });
    watcher.abort();
    let seen = seen.lock().unwrap().clone();
    assert_increasing(&seen);
    let by_rev: BTreeMap<u64, Bytes> = seen.iter().cloned().collect();
    let payloads: Vec<&Bytes> = seen.iter().map(|(_, p)| p).collect();
    let unique: HashSet<&Bytes> = payloads.iter().copied().collect();
    assert_eq!(unique.len(), payloads.len(), "no record delivered twice");
    for (rev, record) in &o.ok {
        assert_eq!(by_rev.get(rev), Some(record), "acknowledged record at revision {rev}");
    }
    for record in &o.failed {
        assert!(!unique.contains(record), "{record:?} was reported Failed but is in the log");
    }
    let maybe = o.unknown.iter().filter(|r| unique.contains(r)).count();
    assert_eq!(seen.len(), o.ok.len() + maybe, "nothing but appended records");
    eprintln!(
        "outage: {} ok, {} failed, {} unknown ({} of them appended)",
        o.ok.len(),
        o.failed.len(),
        o.unknown.len(),
        maybe
    );
}

#[test]
fn a_watch_below_etcds_compaction_reads_the_records_still_kept() {
    // etcd's compaction is etcd-wide: an operator, or another cluster
    // truncating its own log, compacts this cluster's history too, while this
    // cluster's records stay as keys. Its watches (a new broker's, a re-watch
    // after a broken stream) must still deliver every record.
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    rt().block_on(async {
        let eps = [etcd.endpoint()];
        let seq = EtcdSequencer::connect(&eps, "comp").await.unwrap();
        let other = EtcdSequencer::connect(&eps, "other").await.unwrap();
        let empty = EtcdSequencer::connect(&eps, "empty").await.unwrap();
        let mut revs = Vec::new();
        for i in 0..5 {
            revs.push(seq.append(Bytes::from(format!("r{i}"))).await.unwrap());
        }
        // An operator compacts in the middle of the log.
        let mut admin = etcd_client::Client::connect([format!("http://{}", etcd.endpoint())], None).await.unwrap();
        admin.compact(revs[3] as i64, None).await.unwrap();
        let mut w = seq.watch(revs[1]).await.unwrap();
        let got = take(&mut w, 4).await;
        assert_eq!(got.iter().map(|(r, _)| *r).collect::<Vec<_>>(), revs[1..]);
        assert_eq!(got[0].1, Bytes::from_static(b"r1"));
        // Another cluster truncates its log behind a snapshot, compacting past all of ours.
        let mut theirs = 0;
        for i in 0..3 {
            theirs = other.append(Bytes::from(format!("o{i}"))).await.unwrap();
        }
        assert!(other.publish_snapshot(theirs).await.unwrap());
        other.truncate(theirs).await.unwrap();
        for from in [0, revs[2]] {
            let mut w = seq.watch(from).await.unwrap();
            let skip = revs.iter().filter(|&&r| r < from).count();
            let got = take(&mut w, revs.len() - skip).await;
            assert_eq!(got.iter().map(|(r, _)| *r).collect::<Vec<_>>(), revs[skip..], "watch from {from}");
            // And on after them, live.
            let next = seq.append(Bytes::from(format!("live from {from}"))).await.unwrap();
            assert_eq!(take(&mut w, 1).await[0], (next, Bytes::from(format!("live from {from}"))));
            revs.push(next);
        }
        // The watch that was open all along saw them too.
        assert_eq!(take(&mut w, 2).await.iter().map(|(r, _)| *r).collect::<Vec<_>>(), revs[5..]);
        // A cluster with an empty log (its first broker starting) watches from 1.
        let mut w = empty.watch(1).await.unwrap();
        let first = empty.append(Bytes::from_static(b"first")).await.unwrap();
        assert_eq!(take(&mut w, 1).await[0], (first, Bytes::from_static(b"first")));

        // This cluster's own truncation still cuts a watch it left behind.
        assert!(seq.publish_snapshot(revs[3]).await.unwrap());
        seq.truncate(revs[3]).await.unwrap();
        let mut w = seq.watch(revs[1]).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Err(SequencerError::Compacted { requested, .. }))) => assert_eq!(requested, revs[1]),
            other => panic!("expected Compacted, got {other:?}"),
        }
        assert!(w.next().await.is_none(), "the stream ends after its error");
        let mut w = seq.watch(revs[3] + 1).await.unwrap();
        assert_eq!(take(&mut w, 1).await[0].0, revs[4]);
    });
}

#[test]
fn unreachable_etcd_is_reported_at_connect() {
    let addr = free_addr(); // nothing listens there
    let rt = rt();
    let started = Instant::now();
    let err = rt.block_on(EtcdSequencer::connect(&[addr.to_string()], "x")).unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "reported promptly");
}

// Membership

fn member(node_id: i32) -> Member {
    Member { node_id, host: "127.0.0.1".into(), port: 9000 + node_id as u16, rack: None, internal: None }
}

/// Reads sets from `w` until one has exactly `want`'s node ids, within `within`.
async fn until_members(w: &mut MemberWatch, want: &[i32], within: Duration) -> Duration {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Ok(Some(Ok(set))) => {
                let ids: Vec<i32> = set.iter().map(|m| m.node_id).collect();
                if ids == want {
                    return started.elapsed();
                }
            }
            other => panic!("waiting for members {want:?}: got {other:?}"),
        }
    }
}

#[test]
fn members_register_watch_and_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    rt().block_on(async {
        let eps = [etcd.endpoint()];
        let a = EtcdSequencer::connect(&eps, "m").await.unwrap();
        let b = EtcdSequencer::connect(&eps, "m").await.unwrap();
        let other = EtcdSequencer::connect(&eps, "elsewhere").await.unwrap();
        let _foreign = other.register(member(9), Duration::from_secs(2)).await.unwrap();
        let mut w = a.watch_members().await.unwrap();
        until_members(&mut w, &[], Duration::from_secs(5)).await;
        let r2 = b.register(member(2), Duration::from_millis(1500)).await.unwrap();
        let _r1 = a.register(member(1), Duration::from_secs(2)).await.unwrap();
        until_members(&mut w, &[1, 2], Duration::from_secs(5)).await;
        // A fresh watch sees the same set at once, with the members' values.
        let mut w2 = b.watch_members().await.unwrap();
        match w2.next().await {
            Some(Ok(set)) => assert_eq!(set, vec![member(1), member(2)]),
            other => panic!("{other:?}"),
        }
        // Keep-alives hold the registrations well past their TTLs.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut w3 = b.watch_members().await.unwrap();
        until_members(&mut w3, &[1, 2], Duration::from_secs(1)).await;
        // Dropping a registration revokes its lease: it leaves at once, not after its TTL.
        drop(r2);
        let took = until_members(&mut w, &[1], Duration::from_secs(5)).await;
        eprintln!("a dropped registration left the set after {took:?}");
        // A restarted broker replaces its node id's entry.
        let r1b = b.register(Member { port: 1, ..member(1) }, Duration::from_secs(2)).await.unwrap();
        let mut w4 = b.watch_members().await.unwrap();
        match w4.next().await {
            Some(Ok(set)) => assert_eq!(set, vec![Member { port: 1, ..member(1) }]),
            other => panic!("{other:?}"),
        }
        drop(r1b);
        until_members(&mut w, &[], Duration::from_secs(5)).await;
    });
}

#[test]
fn lapsed_registrations_leave_and_are_granted_again() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    let eps = [etcd.endpoint()];
    // A broker killed without deregistering: its runtime (and keep-alive) dies with it.
    let killed = rt();
    let reg = killed.block_on(async {
        let s = EtcdSequencer::connect(&eps, "lapse").await.unwrap();
        s.register(member(4), Duration::from_secs(2)).await.unwrap()
    });
    // The task stops without revoking. (`reg` outlives its runtime: dropping it
    // now would only find its task gone.)
    drop(killed);
    let killed_at = Instant::now();
    rt().block_on(async {
        let seq = EtcdSequencer::connect(&eps, "lapse").await.unwrap();
        let mut w = seq.watch_members().await.unwrap();
        until_members(&mut w, &[], Duration::from_secs(10)).await;
        eprintln!("a killed broker left the set after {:?} (TTL 2 s)", killed_at.elapsed());
        drop(reg);

        // A lease that lapses under a live registration (etcd revoked it, as after a
        // long partition) is granted again and the key put again, within the TTL.
        let _r5 = seq.register(member(5), Duration::from_secs(2)).await.unwrap();
        until_members(&mut w, &[5], Duration::from_secs(5)).await;
        let mut admin = etcd_client::Client::connect([format!("http://{}", etcd.endpoint())], None).await.unwrap();
        for lease in admin.leases().await.unwrap().leases() {
            admin.lease_revoke(lease.id()).await.unwrap();
        }
        until_members(&mut w, &[], Duration::from_secs(5)).await;
        let took = until_members(&mut w, &[5], Duration::from_secs(5)).await;
        eprintln!("a revoked lease was re-granted and the member back after {took:?}");
        assert!(took < Duration::from_secs(2), "back within the TTL: {took:?}");
    });
}

// Snapshots

async fn log_keys(client: &mut etcd_client::Client, cluster: &str) -> i64 {
    let opts = etcd_client::GetOptions::new().with_prefix().with_count_only();
    client.get(format!("/{cluster}/log/"), Some(opts)).await.unwrap().count()
}

#[test]
fn snapshots_publish_by_compare_and_swap_and_truncate_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    rt().block_on(async {
        let eps = [etcd.endpoint()];
        let seq = EtcdSequencer::connect(&eps, "snap").await.unwrap();
        let other = EtcdSequencer::connect(&eps, "snap").await.unwrap();
        let mut admin = etcd_client::Client::connect([format!("http://{}", etcd.endpoint())], None).await.unwrap();
        let mut revs = Vec::new();
        for i in 0..10 {
            revs.push(seq.append(Bytes::from(format!("r{i}"))).await.unwrap());
        }
        let last = *revs.last().unwrap();
        assert_eq!(seq.snapshot_revision().await.unwrap(), None);
        assert!(matches!(seq.truncate(revs[2]).await, Err(SequencerError::BeyondSnapshot { snapshot: None, .. })));
        assert!(!seq.publish_snapshot(last + 1).await.unwrap(), "beyond the log");
        assert!(seq.publish_snapshot(revs[5]).await.unwrap());
        assert!(!other.publish_snapshot(revs[5]).await.unwrap(), "not newer");
        assert!(!other.publish_snapshot(revs[4]).await.unwrap(), "older");
        assert_eq!(other.snapshot_revision().await.unwrap(), Some(revs[5]));
        // Stored so that etcd's bytewise compare is numeric.
        let raw = admin.get("/snap/snapshot", None).await.unwrap().kvs()[0].value().to_vec();
        assert_eq!(raw, format!("{:020}", revs[5]).into_bytes());
        // Racing publishers: exactly the newest wins.
        let (x, y) = tokio::join!(seq.publish_snapshot(revs[7]), other.publish_snapshot(revs[6]));
        assert!(x.unwrap(), "the newest is published");
        let _ = y.unwrap();
        assert_eq!(seq.snapshot_revision().await.unwrap(), Some(revs[7]));

        match seq.truncate(revs[8]).await {
            Err(SequencerError::BeyondSnapshot { through, snapshot }) => assert_eq!((through, snapshot), (revs[8], Some(revs[7]))),
            other => panic!("expected BeyondSnapshot, got {other:?}"),
        }
        assert_eq!(log_keys(&mut admin, "snap").await, 10);
        let mut lagging = seq.watch(revs[1]).await.unwrap();
        assert_eq!(take(&mut lagging, 1).await[0].0, revs[1]);
        seq.truncate(revs[7]).await.unwrap();
        assert_eq!(log_keys(&mut admin, "snap").await, 2);
        assert_eq!(seq.current_revision().await.unwrap(), last, "truncation keeps the current revision");
        for from in [0, revs[1], revs[7]] {
            let mut w = seq.watch(from).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
                Ok(Some(Err(SequencerError::Compacted { first_available, .. }))) => assert_eq!(first_available, revs[7] + 1),
                other => panic!("watch from {from}: expected Compacted, got {other:?}"),
            }
        }
        let mut w = seq.watch(revs[7] + 1).await.unwrap();
        let got = take(&mut w, 2).await;
        assert_eq!(got.iter().map(|(r, _)| *r).collect::<Vec<_>>(), revs[8..]);
        assert_eq!(got[0].1, Bytes::from_static(b"r8"));
        // Truncating everything: the current revision still stays.
        assert!(seq.publish_snapshot(last).await.unwrap());
        seq.truncate(last).await.unwrap();
        seq.truncate(last).await.unwrap(); // again: nothing to do, already compacted
        assert_eq!(log_keys(&mut admin, "snap").await, 0);
        assert_eq!(seq.current_revision().await.unwrap(), last);
        let next = seq.append(Bytes::from_static(b"after")).await.unwrap();
        assert!(next > last);
        let mut w = seq.watch(last + 1).await.unwrap();
        assert_eq!(take(&mut w, 1).await[0], (next, Bytes::from_static(b"after")));
    });
}

#[test]
fn sustained_appends_with_snapshots_keep_etcd_small() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(tmp.path()) else { return };
    const N: usize = 2000;
    const EVERY: usize = 200;
    rt().block_on(async {
        let eps = [etcd.endpoint()];
        let seq = EtcdSequencer::connect(&eps, "load").await.unwrap();
        let mut admin = etcd_client::Client::connect([format!("http://{}", etcd.endpoint())], None).await.unwrap();
        let record = Bytes::from(vec![7u8; 1024]);
        let figures = |label: &str, keys: i64, status: &etcd_client::StatusResponse| {
            eprintln!(
                "{label}: {keys} log keys, etcd db {} KiB, in use {} KiB",
                status.db_size() / 1024,
                status.raft_used_db_size() / 1024
            );
        };
        let status = admin.status().await.unwrap();
        figures("before", log_keys(&mut admin, "load").await, &status);
        let started = Instant::now();
        let mut max_keys = 0;
        for i in 1..=N {
            let rev = seq.append(record.clone()).await.unwrap();
            if i % EVERY == 0 {
                max_keys = max_keys.max(log_keys(&mut admin, "load").await);
                assert!(seq.publish_snapshot(rev).await.unwrap());
                seq.truncate(rev).await.unwrap();
            }
        }
        let status = admin.status().await.unwrap();
        let keys = log_keys(&mut admin, "load").await;
        figures(&format!("after {N} appends of 1 KiB, snapshot + truncate every {EVERY}, {:?}", started.elapsed()), keys, &status);
        eprintln!("at most {max_keys} log keys at a time");
        assert_eq!(keys, 0);
        assert!(max_keys <= EVERY as i64);

        // For comparison: the same load on another cluster, never truncated.
        let plain = EtcdSequencer::connect(&eps, "plain").await.unwrap();
        for _ in 0..N {
            plain.append(record.clone()).await.unwrap();
        }
        let status = admin.status().await.unwrap();
        figures(&format!("then {N} more appends never truncated"), log_keys(&mut admin, "plain").await, &status);
    });
}
