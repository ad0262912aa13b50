//! The write cache of one store: the newest pending value of each key, in
//! the order keys were last written (Kafka Streams' record cache, which
//! flushes least recently written first).
//!
//! Reads look here before the store. With a size of 0 the cache holds
//! writes that already went downstream and to the changelog until the
//! commit (a write-behind buffer with a fixed size); otherwise it holds them until a commit, or until the caches grow
//! past their size, when the store's whole cache is flushed (written and
//! sent downstream), as Kafka Streams does on eviction.

use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;
use std::ops::Bound;

/// A pending write: the stored bytes, or none for a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The stored form (see [`super::keys`]), or none to delete the key.
    pub value: Option<Vec<u8>>,
    /// The timestamp of the write (a delete's own, which its value cannot carry).
    pub timestamp: i64,
}

/// Bytes counted per entry beyond key and value (bookkeeping).
const OVERHEAD: usize = 64;

/// Pending writes of one store.
///
/// Point reads and writes go through a hash map; the write order is a
/// sequence number per entry, sorted only when the cache drains (once per
/// commit), so a write costs one hash lookup. Stores read in key ranges
/// also keep their keys sorted.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<Vec<u8>, (u64, CacheEntry)>,
    sorted: Option<BTreeSet<Vec<u8>>>,
    seq: u64,
    bytes: usize,
}

impl Cache {
    /// An empty cache; `ranges` when the store is read in key ranges.
    pub fn new(ranges: bool) -> Self {
        Cache {
            entries: HashMap::new(),
            sorted: ranges.then(BTreeSet::new),
            seq: 0,
            bytes: 0,
        }
    }

    /// The pending write for `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<&CacheEntry> {
        self.entries.get(key).map(|(_, e)| e)
    }

    /// Records a write; the key becomes the most recently written.
    pub fn put(&mut self, key: &[u8], value: Option<Vec<u8>>, timestamp: i64) {
        self.seq += 1;
        let size = key.len() + value.as_ref().map_or(0, Vec::len) + OVERHEAD;
        match self.entries.get_mut(key) {
            Some((seq, e)) => {
                self.bytes -= key.len() + e.value.as_ref().map_or(0, Vec::len) + OVERHEAD;
                *seq = self.seq;
                e.value = value;
                e.timestamp = timestamp;
            }
            None => {
                self.entries
                    .insert(key.to_vec(), (self.seq, CacheEntry { value, timestamp }));
                if let Some(sorted) = &mut self.sorted {
                    sorted.insert(key.to_vec());
                }
            }
        }
        self.bytes += size;
    }

    /// Pending writes with `from <= key < to`, in key order (a full pass
    /// over the entries when the cache was not made for ranges).
    pub fn range<'a>(&'a self, from: &[u8], to: Option<&[u8]>) -> Vec<(&'a [u8], &'a CacheEntry)> {
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        match &self.sorted {
            Some(sorted) => sorted
                .range::<[u8], _>((Bound::Included(from), upper))
                .map(|k| (k.as_slice(), &self.entries[k].1))
                .collect(),
            None => {
                let mut v: Vec<_> = self
                    .entries
                    .iter()
                    .filter(|(k, _)| k.as_slice() >= from && to.is_none_or(|t| k.as_slice() < t))
                    .map(|(k, (_, e))| (k.as_slice(), e))
                    .collect();
                v.sort_unstable_by_key(|(k, _)| *k);
                v
            }
        }
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

    /// Removes every entry, in no particular order.
    pub fn drain_unordered(&mut self) -> impl Iterator<Item = (Vec<u8>, CacheEntry)> + '_ {
        if let Some(sorted) = &mut self.sorted {
            sorted.clear();
        }
        self.bytes = 0;
        self.entries.drain().map(|(k, (_, e))| (k, e))
    }

    /// Removes and returns every entry, least recently written first.
    pub fn drain(&mut self) -> Vec<(Vec<u8>, CacheEntry)> {
        let mut out: Vec<_> = self.entries.drain().collect();
        out.sort_unstable_by_key(|(_, (seq, _))| *seq);
        if let Some(sorted) = &mut self.sorted {
            sorted.clear();
        }
        self.bytes = 0;
        out.into_iter().map(|(k, (_, e))| (k, e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_value_wins_and_drain_is_least_recently_written_first() {
        let mut c = Cache::new(true);
        c.put(b"a", Some(b"1".to_vec()), 0);
        c.put(b"b", Some(b"2".to_vec()), 0);
        c.put(b"a", Some(b"3".to_vec()), 0);
        c.put(b"c", None, 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(b"a").unwrap().value.as_deref(), Some(&b"3"[..]));
        let ranged: Vec<_> = c
            .range(b"a", Some(b"c"))
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        assert_eq!(ranged, vec![b"a".to_vec(), b"b".to_vec()]);
        let mut u = Cache::new(false);
        for k in [b"c", b"a", b"b", b"d"] {
            u.put(k, None, 0);
        }
        let unsorted: Vec<_> = u
            .range(b"b", Some(b"d"))
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        assert_eq!(unsorted, vec![b"b".to_vec(), b"c".to_vec()]);
        let keys: Vec<_> = c.drain().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn size_follows_what_is_held() {
        let mut c = Cache::new(false);
        c.put(b"k", Some(vec![0; 100]), 0);
        let one = c.bytes();
        c.put(b"k", Some(vec![0; 10]), 0);
        assert_eq!(c.bytes(), one - 90);
        c.put(b"j", None, 0);
        c.drain();
        assert_eq!(c.bytes(), 0);
        assert!(c.is_empty());
    }
}
