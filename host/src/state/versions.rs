//! Reading a versioned table's store (its layout: see
//! `ops::versioned`): a key's versions, and the row valid at a time.

use super::{StateError, TaskState, keys};

/// A version: its time, and its value or none for a delete.
pub type Version = (i64, Option<Vec<u8>>);

/// The versions of `key` with times before `to`, in time order, as
/// (time, value or none for a delete).
pub fn versions(
    state: &TaskState,
    store: usize,
    key: &[u8],
    to: i64,
) -> Result<Vec<Version>, StateError> {
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

/// The row of `key` as of time `at`: its version's time and value.
/// Versions are kept `history` behind the store's observed time: a lookup
/// older than that finds only the latest version, if not newer than `at`.
pub fn get(
    state: &TaskState,
    (store, history): (usize, i64),
    key: &[u8],
    at: i64,
) -> Result<Option<(i64, Vec<u8>)>, StateError> {
    if at < state.observed(store).saturating_sub(history) {
        // Past the history: only the latest version, if not newer.
        let latest = versions(state, store, key, i64::MAX)?.pop();
        return Ok(match latest {
            Some((ts, Some(v))) if ts <= at => Some((ts, v)),
            _ => None,
        });
    }
    let found = versions(state, store, key, at.saturating_add(1))?.pop();
    Ok(found.and_then(|(ts, v)| Some((ts, v?))))
}
