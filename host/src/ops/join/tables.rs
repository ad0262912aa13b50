//! Joins with tables: a stream looking rows up (Kafka Streams'
//! `KStreamKTableJoin`), and two tables (`KTableKTable*Join`).

use super::super::aggregate::state_err;
use super::super::group::field_key;
use super::super::{Dropped, NodeError, Records};
use super::{LEFT, Outputs, Value};
use crate::state::global::Rows;
use crate::state::{TaskState, keys, versions};
use crate::topology::JoinKind;

/// The row of `key` in `store`: its timestamp and value.
pub(super) fn row(
    name: &str,
    state: &TaskState,
    store: usize,
    key: &[u8],
) -> Result<Option<(i64, Vec<u8>)>, NodeError> {
    let stored = state.get(store, key).map_err(|e| state_err(name, e))?;
    // The read's own copy becomes the value: no second copy per lookup.
    Ok(stored.and_then(|mut v| {
        let (ts, _) = keys::decode_value(&v)?;
        v.drain(..8);
        Some((ts, v))
    }))
}

/// Stream records (left) look up the table in `table`; the table's own
/// changes (right) produce nothing. Output: the stream record's key,
/// timestamp and headers.
pub fn stream_table(
    name: &str,
    kind: JoinKind,
    (table, history): (usize, Option<i64>),
    input: &Records,
    state: &mut TaskState,
    outs: &mut Outputs,
    dropped: &mut Dropped,
) -> Result<(), NodeError> {
    let left = kind == JoinKind::Left;
    for (i, r) in input.view().iter().enumerate() {
        if r.tag != LEFT {
            continue;
        }
        let origin = input.origins[i];
        let (key, value) = match (r.key, r.value) {
            (Some(k), Some(v)) => (k, v),
            // KIP-962: a left join keeps a record without a key.
            (None, Some(v)) if left => {
                outs.pair(origin, None, (Some(v), None), r.timestamp, Some(i));
                continue;
            }
            _ => {
                dropped.no_key += 1;
                continue;
            }
        };
        let found = match history {
            Some(h) => versions::get(state, (table, h), key, r.timestamp)
                .map_err(|e| state_err(name, e))?,
            None => row(name, state, table, key)?,
        };
        if found.is_some() || left {
            let right = found.as_ref().map(|(_, v)| v.as_slice());
            outs.pair(
                origin,
                Some(key),
                (Some(value), right),
                r.timestamp,
                Some(i),
            );
        }
    }
    Ok(())
}

/// Each change of either table (new value, old value as aux) looks up the
/// other table and emits the joined row, a tombstone, or nothing, by
/// Kafka Streams' rules; old results too when `send_old`.
pub fn table_table(
    name: &str,
    kind: JoinKind,
    stores: [usize; 2],
    send_old: bool,
    input: &Records,
    state: &mut TaskState,
    outs: &mut Outputs,
) -> Result<(), NodeError> {
    for (i, r) in input.view().iter().enumerate() {
        let Some(key) = r.key else { continue };
        let this_left = r.tag == LEFT;
        let other_store = stores[usize::from(this_left)];
        let other = row(name, state, other_store, key)?;
        let (new, old) = (r.value, r.aux);
        let ts = other
            .as_ref()
            .map_or(r.timestamp, |(ots, _)| r.timestamp.max(*ots));
        let other_value = other.as_ref().map(|(_, v)| v.as_slice());
        // The pair with this side's value `v`, in left–right order.
        let pair = |outs: &mut Outputs, v: Option<&[u8]>, o: Option<&[u8]>| {
            let (a, b) = (outs.span(v), outs.span(o));
            if this_left {
                Value::Join(a, b)
            } else {
                Value::Join(b, a)
            }
        };
        let (new_value, old_value) = match (kind, this_left, other_value) {
            (JoinKind::Inner, _, None) => continue,
            (JoinKind::Inner | JoinKind::Left, true, Some(o))
            | (JoinKind::Inner, false, Some(o)) => (
                match new {
                    None => Value::Null,
                    Some(n) => pair(outs, Some(n), Some(o)),
                },
                old.map(|v| pair(outs, Some(v), Some(o))),
            ),
            // The right side of a left join: only rows the left has.
            (JoinKind::Left, false, None) => continue,
            (JoinKind::Left, false, Some(l)) => {
                (pair(outs, new, Some(l)), Some(pair(outs, old, Some(l))))
            }
            (JoinKind::Left, true, None) | (JoinKind::Outer, _, None) => {
                if new.is_none() && old.is_none() {
                    continue;
                }
                let new_value = match new {
                    None => Value::Null,
                    Some(n) => pair(outs, Some(n), None),
                };
                (new_value, old.map(|v| pair(outs, Some(v), None)))
            }
            (JoinKind::Outer, _, Some(o)) => (
                pair(outs, new, Some(o)),
                old.map(|v| pair(outs, Some(v), Some(o))),
            ),
        };
        let old_value = old_value.filter(|_| send_old);
        outs.push(
            input.origins[i],
            Some(key),
            ts,
            Some(i),
            new_value,
            old_value,
        );
    }
    Ok(())
}

/// Stream records (left) look up a global table by the key at `pointer`
/// in their value, or by their own key (Kafka Streams'
/// `KStream#join(GlobalKTable, keySelector, joiner)`). Output: the stream
/// record's key (which may be none), timestamp and headers.
pub fn stream_global_table(
    kind: JoinKind,
    rows: &Rows,
    pointer: Option<&str>,
    input: &Records,
    outs: &mut Outputs,
    dropped: &mut Dropped,
) {
    let left = kind == JoinKind::Left;
    for (i, r) in input.view().iter().enumerate() {
        if r.tag != LEFT {
            continue;
        }
        let Some(value) = r.value else {
            dropped.no_key += 1;
            continue;
        };
        let mapped = match pointer {
            Some(p) => field_key(Some(value), p),
            None => r.key.map(<[u8]>::to_vec),
        };
        let found = mapped.as_ref().and_then(|k| rows.get(k));
        match (mapped.is_some(), found) {
            (_, Some((_, row))) => {
                outs.pair(
                    input.origins[i],
                    r.key,
                    (Some(value), Some(row)),
                    r.timestamp,
                    Some(i),
                );
            }
            // KAFKA-19208 (4.1): a left join keeps a record whose lookup
            // key is none, as well as one that finds no row.
            _ if left => {
                outs.pair(
                    input.origins[i],
                    r.key,
                    (Some(value), None),
                    r.timestamp,
                    Some(i),
                );
            }
            (false, None) => dropped.no_key += 1,
            (true, None) => {}
        }
    }
}
