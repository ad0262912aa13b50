//! A memory copy of one side's recent records in a stream–stream join.
//!
//! Read in timestamp order, a record's matches are mostly records that
//! came in the last window or two; kept by key in a hash map, they are
//! found with one probe instead of a RocksDB seek through the memtables and
//! files. The copy holds exactly the store's entries at or after a time
//! `low`: a lookup whose range starts there needs no store read.

use foldhash::{HashMap, HashMapExt};
use std::collections::VecDeque;
use std::rc::Rc;

/// How many bytes of records a side keeps in memory per task.
pub const BUDGET: usize = 4 << 20;

/// Bytes counted per entry beyond its key and value (maps, vectors).
const OVERHEAD: usize = 48;

/// One key's entries: (time, stored bytes), in time order.
type Entries = Vec<(i64, Vec<u8>)>;

/// Every store entry of one side at or after `low`: (key, time) → stored
/// bytes (and maybe older ones, never returned).
#[derive(Debug)]
pub struct Recent {
    low: i64,
    by_key: HashMap<Rc<[u8]>, Entries>,
    /// (time, key) of each entry in the order they came (about time
    /// order), to drop old entries.
    order: VecDeque<(i64, Rc<[u8]>)>,
    bytes: usize,
}

impl Recent {
    /// A copy that holds the entries at or after `low` (all of them: the
    /// store has none there yet).
    pub fn new(low: i64) -> Self {
        Recent {
            low,
            by_key: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Whether every entry at or after `from` is here.
    pub fn covers(&self, from: i64) -> bool {
        from >= self.low
    }

    /// The stored bytes of (key, ts), if `ts` is covered and there is one.
    pub fn get(&self, key: &[u8], ts: i64) -> Option<&[u8]> {
        let list = self.by_key.get(key)?;
        list.iter()
            .find(|(t, _)| *t == ts && ts >= self.low)
            .map(|(_, v)| v.as_slice())
    }

    /// Calls `f(ts, stored)` on `key`'s entries with `from <= ts <= to`
    /// (`from` covered), in time order.
    pub fn range(&self, key: &[u8], from: i64, to: i64, mut f: impl FnMut(i64, &[u8])) {
        if let Some(list) = self.by_key.get(key) {
            for (t, v) in list {
                if (from..=to).contains(t) {
                    f(*t, v);
                }
            }
        }
    }

    /// Records that the store's entry (key, ts) is now `stored`, if `ts`
    /// is covered.
    pub fn put(&mut self, key: &[u8], ts: i64, stored: &[u8]) {
        if ts < self.low {
            return;
        }
        let shared = match self.by_key.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Rc::from(key),
        };
        let list = self.by_key.entry(shared.clone()).or_default();
        // Kept in time order: records mostly come in it.
        let at = list.partition_point(|(t, _)| *t <= ts);
        if at > 0 && list[at - 1].0 == ts {
            let old = std::mem::replace(&mut list[at - 1].1, stored.to_vec());
            self.bytes = self.bytes + stored.len() - old.len();
            return;
        }
        list.insert(at, (ts, stored.to_vec()));
        self.bytes += key.len() + stored.len() + OVERHEAD;
        self.order.push_back((ts, shared));
    }

    /// Raises `low` to at least `to`, dropping what falls below it, and
    /// further while more than [`BUDGET`] bytes are held.
    pub fn shrink(&mut self, to: i64) {
        self.low = self.low.max(to);
        while let Some((ts, _)) = self.order.front() {
            if *ts >= self.low && self.bytes <= BUDGET {
                break;
            }
            let (ts, key) = self.order.pop_front().expect("a front");
            // Over the budget: nothing this old is kept any more.
            self.low = self.low.max(ts.saturating_add(1));
            let Some(list) = self.by_key.get_mut(&key) else {
                continue;
            };
            let gone = list.partition_point(|(t, _)| *t < self.low);
            for (_, v) in list.drain(..gone) {
                self.bytes -= key.len() + v.len() + OVERHEAD;
            }
            if list.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: &Recent, key: &[u8]) -> Vec<(i64, Vec<u8>)> {
        let mut got = Vec::new();
        r.range(key, i64::MIN, i64::MAX, |t, v| got.push((t, v.to_vec())));
        got
    }

    #[test]
    fn entries_are_found_by_key_and_time_range_in_time_order() {
        let mut r = Recent::new(0);
        r.put(b"a", 20, b"x");
        r.put(b"a", 10, b"y");
        r.put(b"b", 15, b"z");
        r.put(b"a", 20, b"x2");
        r.put(b"a", -5, b"below low: not kept");
        assert_eq!(
            all(&r, b"a"),
            vec![(10, b"y".to_vec()), (20, b"x2".to_vec())]
        );
        let mut got = Vec::new();
        r.range(b"a", 11, 20, |t, _| got.push(t));
        assert_eq!(got, vec![20]);
        assert_eq!(r.get(b"b", 15), Some(&b"z"[..]));
        assert_eq!(r.get(b"b", 16), None);
        assert!(r.covers(0) && !r.covers(-1));
    }

    #[test]
    fn shrinking_drops_older_entries_and_stops_covering_them() {
        let mut r = Recent::new(0);
        for t in 0..10 {
            r.put(b"k", t, b"v");
            r.put(b"j", t, b"w");
        }
        r.shrink(5);
        assert!(!r.covers(4) && r.covers(5));
        assert_eq!(all(&r, b"k").len(), 5);
        let held = r.bytes;
        r.shrink(10);
        assert!(all(&r, b"k").is_empty() && r.by_key.is_empty() && r.order.is_empty());
        assert!(held > 0 && r.bytes == 0);
    }

    #[test]
    fn more_than_the_budget_drops_the_oldest_times() {
        let mut r = Recent::new(0);
        let value = vec![0u8; 1 << 10];
        for t in 0..(2 * BUDGET / value.len()) as i64 {
            r.put(&t.to_be_bytes(), t, &value);
        }
        r.shrink(0);
        assert!(r.bytes <= BUDGET);
        let last = (2 * BUDGET / value.len()) as i64 - 1;
        assert!(r.covers(last) && !r.covers(0));
        assert_eq!(
            r.get(&last.to_be_bytes(), last).map(<[u8]>::len),
            Some(1 << 10)
        );
    }
}
