//! `s3://bucket/prefix`: AWS S3 or an S3-compatible store (MinIO, R2, moto),
//! through `object_store`'s `AmazonS3`. Create-only puts are conditional
//! writes (`If-None-Match: *`), reads are ranged GETs. Settings not given as
//! flags come from the standard AWS environment variables.
//!
//! Opening checks the settings, then reads one key that does not exist: a
//! missing bucket, refused credentials, a wrong region or an unreachable
//! endpoint is reported at start-up, in words that say what to change, rather
//! than on the first produce.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, RetryConfig};

use super::{ObjectStoreBackend, OpenStoreError, S3Options};

/// The key the start-up check reads (never written).
const CHECK_KEY: &str = "objects/.strata-start-up-check";

/// Bound on the start-up check, past the store's own retries.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

fn config(what: String) -> OpenStoreError {
    OpenStoreError::S3Config(what)
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
}

/// Whether credentials other than keys and the instance metadata service's are configured.
fn has_role(builder: &AmazonS3Builder) -> bool {
    let set = |k: AmazonS3ConfigKey| builder.get_config_value(&k).is_some_and(|v| !v.is_empty());
    set(AmazonS3ConfigKey::WebIdentityTokenFile)
        || set(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
        || set(AmazonS3ConfigKey::ContainerCredentialsFullUri)
        // An unsigned (public) bucket needs no credentials at all.
        || builder.get_config_value(&AmazonS3ConfigKey::SkipSignature).is_some_and(|v| truthy(&v))
}

/// Splits `s3://bucket/prefix` into the bucket and the (possibly empty) prefix.
fn split_url(url: &str) -> Result<(String, String), OpenStoreError> {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(config(format!(
            "objects URL {url:?} names no bucket; use s3://BUCKET or s3://BUCKET/PREFIX"
        )));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() && ObjectPath::parse(prefix).map(|p| p.as_ref() != prefix).unwrap_or(true) {
        return Err(config(format!(
            "objects URL {url:?}: the prefix {prefix:?} is not a plain object path (no empty, '.' or '..' parts); \
             use s3://BUCKET/some/prefix"
        )));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// Opens and checks an `s3://` store.
pub(super) async fn open(url: &str, opts: &S3Options) -> Result<ObjectStoreBackend, OpenStoreError> {
    let (bucket, prefix) = split_url(url)?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        // Create-only puts send If-None-Match: * (S3 since 2024, MinIO, R2, moto).
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        // The broker answers a failed write or read with a retriable error and
        // clients retry; a few quick retries here absorb S3's occasional 503s
        // without holding a produce for minutes.
        .with_retry(RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(15), ..RetryConfig::default() });
    if let Some(endpoint) = &opts.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &opts.region {
        builder = builder.with_region(region);
    }
    if opts.allow_http {
        builder = builder.with_allow_http(true);
    }
    if let Some(id) = &opts.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &opts.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }

    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    if let Some(e) = &endpoint {
        if !(e.starts_with("https://") || e.starts_with("http://")) {
            return Err(config(format!(
                "S3 endpoint {e:?} is not a URL; pass --s3-endpoint like https://s3.example.com or \
                 http://127.0.0.1:9000"
            )));
        }
        let allow_http =
            builder.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)).is_some_and(|v| truthy(&v));
        if e.starts_with("http://") && !allow_http {
            return Err(config(format!(
                "S3 endpoint {e} is plain HTTP; pass --s3-allow-http (STRATA_S3_ALLOW_HTTP=true) for a local \
                 test store such as MinIO or moto, or use an https:// endpoint"
            )));
        }
    }
    let key_id = builder.get_config_value(&AmazonS3ConfigKey::AccessKeyId);
    let secret = builder.get_config_value(&AmazonS3ConfigKey::SecretAccessKey);
    match (&key_id, &secret) {
        (Some(_), None) => {
            return Err(config(
                "an S3 access key id is set but no secret access key; set AWS_SECRET_ACCESS_KEY \
                 (or --s3-secret-access-key) too"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(config(
                "an S3 secret access key is set but no access key id; set AWS_ACCESS_KEY_ID \
                 (or --s3-access-key-id) too"
                    .into(),
            ))
        }
        // Without keys the client falls back to AWS's role credentials (web
        // identity, container, instance metadata), which only AWS has: for any
        // other endpoint the keys are required.
        (None, None) if endpoint.as_deref().is_some_and(|e| !e.contains(".amazonaws.com")) && !has_role(&builder) => {
            return Err(config(format!(
                "no credentials for the S3 endpoint {}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or --s3-access-key-id and --s3-secret-access-key)",
                endpoint.as_deref().unwrap_or_default()
            )))
        }
        _ => {}
    }
    let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());

    let s3 = builder.build().map_err(|source| OpenStoreError::Store { url: url.into(), source })?;
    let store: Arc<dyn ObjectStore> =
        if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix.as_str())) };
    let at = endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default();
    let described = format!("s3://{bucket}{}{prefix}{at}", if prefix.is_empty() { "" } else { "/" });
    check(store.as_ref(), &bucket, &region, &described).await?;
    Ok(ObjectStoreBackend::new(store, described))
}

/// Reads a key that does not exist and turns anything but "not found" into
/// an error that says what to change.
async fn check(store: &dyn ObjectStore, bucket: &str, region: &str, described: &str) -> Result<(), OpenStoreError> {
    let path = ObjectPath::from(CHECK_KEY);
    let source = match tokio::time::timeout(CHECK_TIMEOUT, store.get_range(&path, 0..1)).await {
        Err(_) => {
            return Err(config(format!(
                "no answer from {described} within {} s; check --s3-endpoint (STRATA_S3_ENDPOINT) and the network",
                CHECK_TIMEOUT.as_secs()
            )))
        }
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
    };
    let text = source.to_string();
    let what = match &source {
        object_store::Error::NotFound { .. } if text.contains("NoSuchBucket") => format!(
            "bucket {bucket} does not exist ({described}); create it (for example `aws s3 mb s3://{bucket}`), \
             or fix the bucket in --objects"
        ),
        object_store::Error::NotFound { .. } => return Ok(()),
        _ if text.contains("PermanentRedirect")
            || text.contains("AuthorizationHeaderMalformed")
            || text.contains("incorrectly configured region") =>
        {
            format!(
                "bucket {bucket} is not in region {region}; pass --s3-region (STRATA_S3_REGION or AWS_REGION) \
                 with the bucket's region"
            )
        }
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => format!(
            "{described} refused the credentials; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or --s3-access-key-id / --s3-secret-access-key), and that they may s3:GetObject, s3:PutObject \
             and s3:ListBucket on bucket {bucket}"
        ),
        _ if text.contains("169.254.169.254") || text.to_ascii_lowercase().contains("credential") => format!(
            "no S3 credentials found for {described}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or --s3-access-key-id / --s3-secret-access-key), or run where an AWS role provides them"
        ),
        _ => format!(
            "cannot reach {described}; check --s3-endpoint (STRATA_S3_ENDPOINT), --s3-region and the network"
        ),
    };
    Err(OpenStoreError::S3Check { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Secret;

    #[test]
    fn urls() {
        assert_eq!(split_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(split_url("s3://b/").unwrap(), ("b".into(), "".into()));
        assert_eq!(split_url("s3://b/p/q/").unwrap(), ("b".into(), "p/q".into()));
        assert!(split_url("s3://").unwrap_err().to_string().contains("names no bucket"));
        assert!(split_url("s3:///p").unwrap_err().to_string().contains("names no bucket"));
        assert!(split_url("s3://b/a//c").unwrap_err().to_string().contains("not a plain object path"));
    }

    // Each of these fails before any request is sent.
    #[tokio::test]
    async fn misconfiguration_is_reported_before_any_request() {
        let http = S3Options {
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".parse::<Secret>().unwrap()),
            ..S3Options::default()
        };
        let err = open("s3://bucket", &http).await.unwrap_err().to_string();
        assert!(err.contains("--s3-allow-http"), "{err}");

        let no_scheme = S3Options { endpoint: Some("127.0.0.1:9000".into()), allow_http: true, ..http.clone() };
        let err = open("s3://bucket", &no_scheme).await.unwrap_err().to_string();
        assert!(err.contains("is not a URL"), "{err}");

        let half = S3Options { allow_http: true, secret_access_key: None, ..http.clone() };
        let err = open("s3://bucket", &half).await.unwrap_err().to_string();
        assert!(err.contains("no secret access key"), "{err}");
    }
}
