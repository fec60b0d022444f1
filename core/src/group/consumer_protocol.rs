//! The consumer protocol's subscription (the member metadata of protocol
//! type "consumer"): read only far enough to learn the subscribed topics
//! (OffsetDelete refuses to delete offsets of a topic a member consumes).
//! Untrusted bytes: any input gives topics or None.

use bytes::Bytes;
use strata_proto::codec::wire;

/// Topics of a ConsumerProtocolSubscription (any version: the topic list
/// comes first in all of them), or None when the bytes do not parse.
pub(crate) fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut r = metadata.clone();
    let _version = wire::i16(&mut r).ok()?;
    let n = wire::i32(&mut r).ok()?;
    let n = usize::try_from(n).ok()?;
    // Each topic takes at least its 2-byte length.
    if n.saturating_mul(2) > r.len() {
        return None;
    }
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(wire::string(&mut r, false).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topics_and_refuses_garbage() {
        // version 1, ["a", "bc"], then user data and owned partitions we ignore.
        let bytes = Bytes::from_static(&[0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(subscribed_topics(&bytes), Some(vec!["a".to_string(), "bc".to_string()]));
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0, 1, 0x7f, 0xff, 0xff, 0xff])), None);
        for cut in 0..13 {
            assert_eq!(subscribed_topics(&bytes.slice(..cut)), None, "cut {cut}");
        }
    }
}
