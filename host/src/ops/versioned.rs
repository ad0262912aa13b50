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

/// A version: its time, and its value or none for a delete.
type Version = (i64, Option<Vec<u8>>);

/// The versions of `key` with times before `to`, in time order, as
/// (time, value or none for a delete).
fn versions(
    state: &TaskState,
    store: usize,
    key: &[u8],
    to: i64,
) -> Result<Vec<Version>, crate::state::StateError> {
    let mut out = Vec::new();
    let end = if to < i64::MAX {
        keys::window_key_from(key, to)
    } else {
        // Past the key's last possible version, before the next key.
        let mut end = keys::window_key_from(key, i64::MAX);
        end.push(0);
        end
    };
    state.scan(store, false, &keys::key_prefix(key), Some(&end), |_, v| {
        if let Some((ts, tagged)) = keys::decode_value(v) {
            let value = match tagged.split_first() {
                Some((1, rest)) => Some(rest.to_vec()),
                _ => None,
            };
            out.push((ts, value));
        }
        true
    })?;
    Ok(out)
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

    /// The row of `key` as of time `at`: its version's time and value.
    pub fn get(
        name: &str,
        state: &TaskState,
        (store, history): (usize, i64),
        key: &[u8],
        at: i64,
    ) -> Result<Option<(i64, Vec<u8>)>, NodeError> {
        let err = |e| state_err(name, e);
        if at < state.observed(store).saturating_sub(history) {
            // Past the history: only the latest version, if not newer.
            let latest = versions(state, store, key, i64::MAX).map_err(err)?.pop();
            return Ok(match latest {
                Some((ts, Some(v))) if ts <= at => Some((ts, v)),
                _ => None,
            });
        }
        let found = versions(state, store, key, at.saturating_add(1))
            .map_err(err)?
            .pop();
        Ok(found.and_then(|(ts, v)| Some((ts, v?))))
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
            VersionedTable::get("t", &state, (0, 10), k.as_bytes(), at)
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
