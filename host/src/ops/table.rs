//! A stream read as a table (a table source, or `to_table`): each record
//! upserts its key, a tombstone deletes it. The table's changes go
//! downstream with their old values (Kafka Streams' `KTableSource` with a
//! store): at once when caching is off, newest per key at a flush otherwise.
//! Records without a key are skipped; updates with older timestamps are
//! applied anyway (a non-versioned table).

use super::aggregate::state_err;
use super::{Dropped, Emitter, NodeError, Records};
use crate::state::{TaskState, keys};

/// A materialized table.
#[derive(Debug, Clone)]
pub struct TableNode {
    /// Step (or source) name.
    pub name: String,
    /// Index of its store.
    pub store: usize,
}

impl TableNode {
    /// Applies a batch of upserts and emits the changes.
    pub fn process(
        &self,
        input: &Records,
        state: &mut TaskState,
        out: &mut Emitter,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError> {
        let view = input.view();
        for (i, r) in view.iter().enumerate() {
            let Some(key) = r.key else {
                dropped.no_key += 1;
                continue;
            };
            let old = state
                .get(self.store, key)
                .map_err(|e| state_err(&self.name, e))?;
            let old_value = old.as_deref().and_then(keys::decode_value).map(|(_, v)| v);
            state.put(
                self.store,
                key,
                r.value.map(|v| keys::encode_value(r.timestamp, v)),
                r.timestamp,
            );
            if !state.caching() {
                out.emit(
                    input.origins[i],
                    Some(key),
                    r.value,
                    old_value,
                    r.timestamp,
                    r.headers.iter(),
                );
            }
        }
        if !state.caching() {
            if state.writes_due() {
                state
                    .flush_store(self.store)
                    .map_err(|e| state_err(&self.name, e))?;
            }
        } else if state.over_budget() {
            self.flush(state, out)?;
        }
        Ok(())
    }

    /// Writes pending rows and, when caching, sends each changed key's
    /// newest value with the value it had at the previous flush.
    pub fn flush(&self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError> {
        let caching = state.caching();
        let flushed = state
            .flush_store_with_old(self.store, caching)
            .map_err(|e| state_err(&self.name, e))?;
        if !caching {
            return Ok(());
        }
        for (key, e, old) in flushed {
            let new = e.value.as_deref().and_then(keys::decode_value);
            let old = old.as_deref().and_then(keys::decode_value);
            if new.is_none() && old.is_none() {
                continue; // a row added and deleted between flushes
            }
            // A delete's time is its own, not the deleted row's.
            let ts = e.timestamp;
            out.emit(
                0,
                Some(&key),
                new.map(|(_, v)| v),
                old.map(|(_, v)| v),
                ts,
                [],
            );
        }
        Ok(())
    }
}
