//! A byte-bounded LRU cache of object ranges, keyed by (object key, range).
//! Objects are immutable, so an entry never goes stale.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use bytes::Bytes;

type Key = (String, u64, u64);

/// Ranges read from the object store, least recently used evicted first, at
/// most `capacity` bytes of payload in all.
#[derive(Debug)]
pub struct BlockCache {
    capacity: usize,
    used: usize,
    tick: u64,
    entries: HashMap<Key, (Bytes, u64)>,
    by_age: BTreeMap<u64, Key>,
    hits: u64,
    misses: u64,
}

impl BlockCache {
    /// A cache holding at most `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        BlockCache { capacity, used: 0, tick: 0, entries: HashMap::new(), by_age: BTreeMap::new(), hits: 0, misses: 0 }
    }

    /// The cached bytes of `range` of `object`, marking them recently used.
    pub fn get(&mut self, object: &str, range: &Range<u64>) -> Option<Bytes> {
        let key = (object.to_owned(), range.start, range.end);
        let Some((bytes, age)) = self.entries.get_mut(&key) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.tick += 1;
        let key = self.by_age.remove(age).expect("every entry is in the age index");
        *age = self.tick;
        self.by_age.insert(self.tick, key);
        Some(bytes.clone())
    }

    /// Caches `bytes` as `range` of `object`, evicting the least recently used
    /// entries to make room. Ranges larger than the whole cache are not kept.
    pub fn insert(&mut self, object: &str, range: &Range<u64>, bytes: Bytes) {
        if bytes.len() > self.capacity {
            return;
        }
        let key = (object.to_owned(), range.start, range.end);
        if let Some((old, age)) = self.entries.remove(&key) {
            self.used -= old.len();
            self.by_age.remove(&age);
        }
        while self.used + bytes.len() > self.capacity {
            let Some((_, victim)) = self.by_age.pop_first() else { break };
            if let Some((old, _)) = self.entries.remove(&victim) {
                self.used -= old.len();
            }
        }
        self.tick += 1;
        self.used += bytes.len();
        self.by_age.insert(self.tick, key.clone());
        self.entries.insert(key, (bytes, self.tick));
    }

    /// Bytes held.
    pub fn used_bytes(&self) -> usize {
        self.used
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let mut c = BlockCache::new(10);
        c.insert("a", &(0..4), Bytes::from_static(b"aaaa"));
        c.insert("b", &(0..4), Bytes::from_static(b"bbbb"));
        assert!(c.get("a", &(0..4)).is_some()); // a is now newer than b
        c.insert("c", &(0..4), Bytes::from_static(b"cccc")); // evicts b
        assert!(c.get("b", &(0..4)).is_none());
        assert_eq!(&c.get("a", &(0..4)).unwrap()[..], b"aaaa");
        assert_eq!(&c.get("c", &(0..4)).unwrap()[..], b"cccc");
        assert_eq!(c.used_bytes(), 8);
        c.insert("big", &(0..11), Bytes::from(vec![0u8; 11]));
        assert!(c.get("big", &(0..11)).is_none(), "larger than the cache: not kept");
        assert!(c.get("a", &(1..4)).is_none(), "ranges are exact keys");
        c.insert("a", &(0..4), Bytes::from_static(b"AAAA"));
        assert_eq!(c.used_bytes(), 8);
        let mut z = BlockCache::new(0);
        z.insert("a", &(0..1), Bytes::from_static(b"a"));
        assert!(z.get("a", &(0..1)).is_none());
    }
}
