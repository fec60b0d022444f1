//! Object keys. A key names its writer (node, incarnation, flush id) and the
//! revision the writer had applied when it created the object. That revision
//! is what the object GC fences on: once `FenceObjects { below: R }` is
//! applied, a commit naming an object created before R is refused, so an
//! object created before R that nothing references then is garbage for good.

/// The folder every object is written under (nothing else is collected).
pub const OBJECTS_PREFIX: &str = "objects/";

/// The key of flush `id` of this writer, created at applied `revision`,
/// spread over 256 prefixes.
pub fn object_key(node: i32, incarnation: u64, id: u64, revision: u64) -> String {
    let h = (incarnation ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 56;
    format!("{OBJECTS_PREFIX}{h:02x}/{node}-{incarnation:016x}-{id:010}-r{revision}")
}

/// The revision an object was created at, from its key; 0 for a key without
/// one (written before keys carried it: fenced by any fence).
pub fn created_at(key: &str) -> u64 {
    key.rsplit_once("-r").and_then(|(_, r)| r.parse().ok()).unwrap_or(0)
}

/// The node id of the broker that wrote an object, from its key; `None` for a
/// key that is not one of [`object_key`]'s.
pub fn writer_node(key: &str) -> Option<i32> {
    let name = key.strip_prefix(OBJECTS_PREFIX)?.rsplit('/').next()?;
    // {node}-{incarnation}-{id}-r{revision}; a negative node id has a '-' of its own.
    let mut parts = name.rsplitn(4, '-');
    let (_revision, _id, _incarnation) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_creation_revision() {
        let k = object_key(3, 0xdead_beef, 42, 1234);
        assert!(k.starts_with(OBJECTS_PREFIX), "{k}");
        assert_eq!(created_at(&k), 1234);
        assert_eq!(created_at(&object_key(1, u64::MAX, u64::MAX, u64::MAX)), u64::MAX);
        assert_eq!(created_at("objects/ab/1-00000000000000aa-0000000001"), 0, "an older key");
        assert_eq!(created_at("objects/ab/1-x-r"), 0);
        assert_eq!(created_at(""), 0);
    }

    #[test]
    fn keys_name_their_writer() {
        assert_eq!(writer_node(&object_key(3, 0xdead_beef, 42, 1234)), Some(3));
        assert_eq!(writer_node(&object_key(-7, 1, 2, 3)), Some(-7));
        assert_eq!(writer_node(&object_key(i32::MAX, u64::MAX, u64::MAX, u64::MAX)), Some(i32::MAX));
        for bad in ["", "objects/", "objects/ab/", "objects/ab/x-1-2-r3", "snapshots/1", "objects/ab/1-2-r3", "1-2-3-r4"] {
            assert_eq!(writer_node(bad), None, "{bad}");
        }
    }
}
