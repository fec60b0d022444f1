//! The S3 backend against a real S3 server: moto's (`pip install
//! 'moto[server]'`), started on a free loopback port and stopped at the end.
//!
//! Without `moto_server` on PATH (or in $MOTO_SERVER) the test says so and
//! passes, unless STRATA_REQUIRE_MOTO=1 (ci/test sets it, after installing
//! moto), which makes a missing moto a failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use strata_runtime::store::{ObjectStoreBackend, S3Options, StoreError, StoreOptions};

/// A moto_server child, killed and reaped on drop.
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_moto() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("moto_server")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_moto() -> Option<Moto> {
    let Some(bin) = find_moto() else {
        let required = std::env::var("STRATA_REQUIRE_MOTO").is_ok_and(|v| v == "1");
        assert!(!required, "STRATA_REQUIRE_MOTO=1 but moto_server is not installed: pip install 'moto[server]'");
        eprintln!("SKIPPED: moto_server is not installed (pip install 'moto[server]', or set MOTO_SERVER=/path/to/moto_server)");
        return None;
    };
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut moto = Moto { child, addr };
    // Wait (a bounded number of tries) until it accepts connections.
    for _ in 0..600 {
        if TcpStream::connect(addr).is_ok() {
            return Some(moto);
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto_server exited with {status} before listening");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server did not listen on {addr}");
}

/// Creates a bucket (moto does not check signatures, so a bare PUT will do).
/// A moto_server that has just started listening may drop the first
/// connection, so a bounded number of tries.
fn create_bucket(addr: SocketAddr, bucket: &str) {
    let put = || -> std::io::Result<String> {
        let mut s = TcpStream::connect(addr)?;
        write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let mut last = None;
    for _ in 0..50 {
        match put() {
            Ok(answer) if answer.starts_with("HTTP/1.1 200") => return,
            other => last = Some(other),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("creating bucket {bucket}: {last:?}");
}

fn options(addr: SocketAddr) -> StoreOptions {
    StoreOptions {
        s3: S3Options {
            endpoint: Some(format!("http://{addr}")),
            region: Some("us-east-1".into()),
            allow_http: true,
            access_key_id: Some("strata-test".into()),
            secret_access_key: Some("strata-test-secret".parse().unwrap()),
        },
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn s3_backend_against_moto() {
    let Some(moto) = start_moto() else { return };
    create_bucket(moto.addr, "strata-test");
    let opts = options(moto.addr);

    let store = ObjectStoreBackend::open_with("s3://strata-test/cluster-1", &opts).await.unwrap();
    assert!(store.describe().starts_with("s3://strata-test/cluster-1 at http://127.0.0.1:"), "{}", store.describe());

    // Create-only: the second write of a key fails and leaves the first.
    let body = Bytes::from((0..=255u8).cycle().take(100_000).collect::<Vec<u8>>());
    store.put_create("objects/ab/o-1", body.clone()).await.unwrap();
    assert_eq!(
        store.put_create("objects/ab/o-1", Bytes::from_static(b"second")).await,
        Err(StoreError::AlreadyExists("objects/ab/o-1".into()))
    );

    // Ranged reads, exact.
    assert_eq!(store.get_range("objects/ab/o-1", 0..100_000).await.unwrap(), body);
    assert_eq!(store.get_range("objects/ab/o-1", 777..70_001).await.unwrap(), body.slice(777..70_001));
    assert!(matches!(store.get_range("objects/ab/o-1", 99_990..100_010).await, Err(StoreError::Short { got: 10, .. })));
    assert!(matches!(store.get_range("objects/ab/none", 0..1).await, Err(StoreError::NotFound(_))));

    // The prefix is where the objects land; listing and deleting work through it.
    let raw = ObjectStoreBackend::open_with("s3://strata-test", &opts).await.unwrap();
    assert_eq!(raw.get_range("cluster-1/objects/ab/o-1", 0..4).await.unwrap(), body.slice(0..4));
    let listed: Vec<String> =
        store.store().list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    assert_eq!(listed, vec!["objects/ab/o-1".to_string()]);
    store.store().delete(&ObjectPath::from("objects/ab/o-1")).await.unwrap();
    assert!(matches!(store.get_range("objects/ab/o-1", 0..1).await, Err(StoreError::NotFound(_))));
    store.put_create("objects/ab/o-1", Bytes::from_static(b"again")).await.unwrap();
}

#[tokio::test]
async fn s3_misconfiguration_is_reported_in_plain_words() {
    let Some(moto) = start_moto() else { return };
    let opts = options(moto.addr);

    let err = ObjectStoreBackend::open_with("s3://no-such-bucket/x", &opts).await.unwrap_err().to_string();
    assert!(err.contains("bucket no-such-bucket does not exist") && err.contains("create it"), "{err}");

    // Nothing listens on this port.
    let nobody = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let err = ObjectStoreBackend::open_with("s3://strata-test", &options(nobody)).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach") && err.contains("--s3-endpoint"), "{err}");
}
