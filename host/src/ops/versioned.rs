//! A versioned table (Kafka Streams' versioned key-value store, KIP-914):
//! every row keeps its versions, each valid from its timestamp until the
//! next one, so a stream record can join the row as it was at the record's
//! time — the same answer however late or reordered the input.
//!
//! A version's store key is the row key's prefix and the version's time
//! (`keys::window_key_from`), so a key's versions are one range in time
//! order; its value is the timestamp, then 1 and the value, or 0 for a
//! delete. Versions are kept `history` behind the table's observed time
//! (the largest timestamp put): an older put is skipped, and a lookup
//! older than that finds only the latest version, and only if it is not
//! newer than the lookup (the latest version of a key never expires).

use super::aggregate::state_err;
use super::{Dropped, NodeError, Records};
use crate::state::versions::versions;
use crate::state::{TaskState, keys};

/// A versioned table kept from a table source's records.
#[derive(Debug, Clone)]
pub struct VersionedTable {
    /// Store name (for errors).
    pub name: String,
    /// Its store.
    pub store: usize,
    /// How far back versions are kept, ms.
    pub history: i64,
}

impl VersionedTable {
    /// Puts a batch of rows as new versions; emits nothing (only lookups
    /// read a versioned table).
    pub fn process(
        &self,
        input: &Records,
        state: &mut TaskState,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError> {
        for r in input.view().iter() {
            let Some(key) = r.key else {
                dropped.no_key += 1;
                continue;
            };
            let ts = r.timestamp;
            if ts < state.observed(self.store).saturating_sub(self.history) {
                dropped.late += 1; // Kafka Streams: "Skipping record for expired put."
                continue;
            }
            state.observe(self.store, ts);
            let mut stored = Vec::with_capacity(9 + r.value.map_or(0, <[u8]>::len));
            stored.extend_from_slice(&ts.to_be_bytes());
            match r.value {
                Some(v) => {
                    stored.push(1);
                    stored.extend_from_slice(v);
                }
                None => stored.push(0),
            }
            state.put(
                self.store,
                &keys::window_key_from(key, ts),
                Some(stored),
                ts,
            );
            self.expire(state, key)?;
        }
        if state.writes_due() {
            state
                .flush_store(self.store)
                .map_err(|e| state_err(&self.name, e))?;
        }
        Ok(())
    }

    /// Deletes `key`'s versions that no lookup can return any more: those
    /// followed by a version at or before the table's time − history.
    fn expire(&self, state: &mut TaskState, key: &[u8]) -> Result<(), NodeError> {
        let cutoff = state.observed(self.store).saturating_sub(self.history);
        let all = versions(state, self.store, key, cutoff.saturating_add(1))
            .map_err(|e| state_err(&self.name, e))?;
        // All but the last of the versions up to the cutoff are shadowed.
        for (ts, _) in all.iter().rev().skip(1) {
            state.put(self.store, &keys::window_key_from(key, *ts), None, *ts);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Emitter;
    use crate::state::StoreSpec;
    use crate::topology::StoreKind;

    fn rows(rows: &[(&str, Option<&str>, i64)]) -> Records {
        let mut em = Emitter::new();
        for (k, v, ts) in rows {
            em.emit(0, Some(k.as_bytes()), v.map(str::as_bytes), None, *ts, []);
        }
        em.finish()
    }

    #[test]
    fn lookups_find_the_version_valid_then_and_past_the_history_only_the_latest() {
        let spec = StoreSpec {
            name: "t".into(),
            windowed: false,
            scanned: true,
            buffer: false,
        };
        let mut state = TaskState::open(StoreKind::Memory, None, &[spec], 0).unwrap();
        let table = VersionedTable {
            name: "t".into(),
            store: 0,
            history: 10,
        };
        let mut dropped = Dropped::default();
        let input = rows(&[
            ("b", Some("b1"), 5),
            ("a", Some("a1"), 10),
            ("a", Some("a2"), 20),
            ("a", None, 30),
            ("b", Some("b2"), 50),
            // Behind 50 - 10: not stored.
            ("a", Some("old"), 39),
        ]);
        table.process(&input, &mut state, &mut dropped).unwrap();
        assert_eq!(dropped.late, 1);
        let get = |k: &str, at: i64| {
            crate::state::versions::get(&state, (0, 10), k.as_bytes(), at)
                .unwrap()
                .map(|(ts, v)| (ts, String::from_utf8(v).unwrap()))
        };
        assert_eq!(get("a", 45), None, "deleted at 30");
        assert_eq!(get("b", 45), Some((5, "b1".into())));
        assert_eq!(get("b", 50), Some((50, "b2".into())));
        // Past the history (before 40) only a latest version not newer than
        // the lookup counts: `a` was deleted, `b`'s latest is at 50 — and
        // never another key's row.
        assert_eq!(get("a", 25), None);
        assert_eq!(get("b", 39), None);
        assert_eq!(get("c", 45), None);
    }
}
