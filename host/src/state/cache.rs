//! The write cache of one store: the newest pending value of each key, in
//! the order keys were last written (Kafka Streams' record cache, which
//! flushes least recently written first).
//!
//! Reads look here before the store. With a size of 0 the cache only holds
//! one batch's writes, which go to the store together at the end of the
//! batch; otherwise it holds them until a commit, or until the caches grow
//! past their size, when the store's whole cache is flushed (written and
//! sent downstream), as Kafka Streams does on eviction.

use std::collections::BTreeMap;
use std::ops::Bound;

/// A pending write: the stored bytes, or none for a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The stored form (see [`super::keys`]), or none to delete the key.
    pub value: Option<Vec<u8>>,
}

/// Bytes counted per entry beyond key and value (bookkeeping).
const OVERHEAD: usize = 64;

/// Pending writes of one store.
#[derive(Debug, Default)]
pub struct Cache {
    entries: BTreeMap<Vec<u8>, (u64, CacheEntry)>,
    order: BTreeMap<u64, Vec<u8>>,
    seq: u64,
    bytes: usize,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Cache::default()
    }

    /// The pending write for `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<&CacheEntry> {
        self.entries.get(key).map(|(_, e)| e)
    }

    /// Records a write; the key becomes the most recently written.
    pub fn put(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        self.seq += 1;
        let size = key.len() + value.as_ref().map_or(0, Vec::len) + OVERHEAD;
        match self.entries.get_mut(key) {
            Some((seq, e)) => {
                self.order.remove(seq);
                self.bytes -= key.len() + e.value.as_ref().map_or(0, Vec::len) + OVERHEAD;
                *seq = self.seq;
                e.value = value;
                self.order.insert(self.seq, key.to_vec());
            }
            None => {
                self.entries
                    .insert(key.to_vec(), (self.seq, CacheEntry { value }));
                self.order.insert(self.seq, key.to_vec());
            }
        }
        self.bytes += size;
    }

    /// Pending writes with `from <= key < to`, in key order.
    pub fn range<'a>(
        &'a self,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'a [u8], &'a CacheEntry)> + 'a {
        let upper = to.map_or(Bound::Unbounded, |t| Bound::Excluded(t.to_vec()));
        self.entries
            .range((Bound::Included(from.to_vec()), upper))
            .map(|(k, (_, e))| (k.as_slice(), e))
    }

    /// Bytes held (keys, values and bookkeeping).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes and returns the least recently written entry.
    pub fn pop_oldest(&mut self) -> Option<(Vec<u8>, CacheEntry)> {
        let (_, key) = self.order.pop_first()?;
        let (_, e) = self.entries.remove(&key).expect("ordered keys are present");
        self.bytes -= key.len() + e.value.as_ref().map_or(0, Vec::len) + OVERHEAD;
        Some((key, e))
    }

    /// Removes and returns every entry, least recently written first.
    pub fn drain(&mut self) -> Vec<(Vec<u8>, CacheEntry)> {
        let mut out = Vec::with_capacity(self.entries.len());
        while let Some(kv) = self.pop_oldest() {
            out.push(kv);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_value_wins_and_drain_is_least_recently_written_first() {
        let mut c = Cache::new();
        c.put(b"a", Some(b"1".to_vec()));
        c.put(b"b", Some(b"2".to_vec()));
        c.put(b"a", Some(b"3".to_vec()));
        c.put(b"c", None);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(b"a").unwrap().value.as_deref(), Some(&b"3"[..]));
        let keys: Vec<_> = c.drain().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn size_follows_what_is_held() {
        let mut c = Cache::new();
        c.put(b"k", Some(vec![0; 100]));
        let one = c.bytes();
        c.put(b"k", Some(vec![0; 10]));
        assert_eq!(c.bytes(), one - 90);
        c.pop_oldest();
        assert_eq!(c.bytes(), 0);
    }
}
