//! Windowed aggregations, one kind per file, and what they share: the key
//! a window result is sent with, and closing windows.
//!
//! A windowed result's key is JSON text carrying the record key and the
//! window: `{"key":"alice","start":1700000040000,"end":1700000100000}`
//! (`"key_base64"` instead of `"key"` when the key is not UTF-8). For time
//! windows `end` is exclusive; for sliding and session windows inclusive,
//! as in Kafka Streams.

pub mod session;
pub mod sliding;
pub mod time;

use super::{Dropped, Emitter, NodeError, Records};
use crate::state::{TaskState, keys};
use crate::wasm::Chain;
use base64::Engine;
use eddy_batch::HeadersRef;

/// What every windowed aggregation does, whatever its kind of window.
pub trait WindowStep: std::fmt::Debug + Send {
    /// Folds a batch into its windows, sends results (and late records to
    /// `late`), closes windows.
    fn process(
        &mut self,
        input: &Records,
        state: &mut TaskState,
        chain: &mut Chain,
        out: &mut Emitter,
        late: &mut Emitter,
        dropped: &mut Dropped,
    ) -> Result<(), NodeError>;

    /// Moves stream time to at least `ts` and closes what that closes.
    fn advance(
        &mut self,
        ts: i64,
        state: &mut TaskState,
        out: &mut Emitter,
    ) -> Result<(), NodeError>;

    /// At a commit: sends cached updates, deletes what is past use, writes
    /// everything to the store.
    fn flush(&mut self, state: &mut TaskState, out: &mut Emitter) -> Result<(), NodeError>;
}

/// Writes a store's pending windows without sending anything.
pub(crate) fn write(name: &str, state: &mut TaskState, store: usize) -> Result<(), NodeError> {
    state
        .flush_store(store)
        .map(drop)
        .map_err(|e| super::aggregate::state_err(name, e))
}

/// Sends a store's cached windows downstream (their newest values, least
/// recently updated first); a session's timestamp is its end.
pub(crate) fn flush_cached(
    name: &str,
    state: &mut TaskState,
    store: usize,
    out: &mut Emitter,
    sessions: bool,
) -> Result<(), NodeError> {
    let flushed = state
        .flush_store_with_old(store, sessions)
        .map_err(|e| super::aggregate::state_err(name, e))?;
    for (k, e, old) in flushed {
        let Some((key, start, end)) = keys::split_window_key(&k) else {
            continue;
        };
        match e.value.as_deref().and_then(keys::decode_value) {
            Some((ts, agg)) => {
                let ts = if sessions { end } else { ts };
                out.emit(
                    0,
                    Some(&windowed_key(key, start, end)),
                    Some(agg),
                    None,
                    ts,
                    [],
                );
            }
            // A session merged away since the last flush, that had been sent.
            None if old.is_some() => {
                out.emit(0, Some(&windowed_key(key, start, end)), None, None, end, []);
            }
            None => {}
        }
    }
    Ok(())
}

/// The key a window result is sent with.
pub fn windowed_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 48);
    match std::str::from_utf8(key) {
        Ok(k) => {
            out.extend_from_slice(b"{\"key\":");
            serde_json::to_writer(&mut out, k).expect("writing to a Vec");
        }
        Err(_) => {
            out.extend_from_slice(b"{\"key_base64\":\"");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(key)
                    .as_bytes(),
            );
            out.push(b'"');
        }
    }
    out.extend_from_slice(format!(",\"start\":{start},\"end\":{end}}}").as_bytes());
    out
}

/// The headers a final result goes out with: those of the record whose
/// stream time closed its window.
pub struct Closer<'a> {
    /// (close time after the record, its headers), close time ascending.
    pub steps: Vec<(i64, HeadersRef<'a>)>,
}

/// Windows of store `store` with `after < end <= through`, in end, start,
/// key order.
fn windows_ending(
    name: &str,
    state: &TaskState,
    store: usize,
    after: i64,
    through: i64,
) -> Result<Vec<(Vec<u8>, i64, i64)>, NodeError> {
    let mut found = Vec::new();
    if through <= after {
        return Ok(found);
    }
    let from = keys::time_key_from(after.saturating_add(1));
    let upper = keys::time_key_from(through.saturating_add(1));
    let to = (through < i64::MAX).then_some(upper.as_slice());
    state
        .scan(store, true, &from, to, |k, _| {
            if let Some((key, start, end)) = keys::split_time_key(k) {
                found.push((key.to_vec(), start, end));
            }
            true
        })
        .map_err(|e| super::aggregate::state_err(name, e))?;
    Ok(found)
}

/// Sends every window with `after < end <= through` downstream, each with
/// the headers of the record that closed it; returns how many.
pub fn emit_windows(
    name: &str,
    state: &TaskState,
    store: usize,
    after: i64,
    through: i64,
    out: &mut Emitter,
    closer: &Closer<'_>,
) -> Result<usize, NodeError> {
    let found = windows_ending(name, state, store, after, through)?;
    let mut step = 0;
    for (key, start, end) in &found {
        while step + 1 < closer.steps.len() && closer.steps[step].0 < *end {
            step += 1;
        }
        let stored = state
            .get(store, &keys::window_key(key, *start, *end))
            .map_err(|e| super::aggregate::state_err(name, e))?;
        if let Some((ts, agg)) = stored.as_deref().and_then(keys::decode_value) {
            let headers = closer.steps.get(step).map(|(_, h)| *h);
            out.emit(
                0,
                Some(&windowed_key(key, *start, *end)),
                Some(agg),
                None,
                ts,
                headers.iter().flat_map(|h| h.iter()),
            );
        }
    }
    Ok(found.len())
}

/// Deletes every window with `end <= through` (it can no longer change).
pub fn delete_windows(
    name: &str,
    state: &mut TaskState,
    store: usize,
    through: i64,
) -> Result<usize, NodeError> {
    // Scanning from the last delete on skips the index's deleted entries
    // (in RocksDB, tombstones a scan from the start would wade through).
    let after = state.windows_deleted_through(store);
    let found = windows_ending(name, state, store, after, through)?;
    for (key, start, end) in &found {
        state.put_window(store, key, *start, *end, None, *end);
    }
    state.set_windows_deleted_through(store, through);
    Ok(found.len())
}

/// Sends (when `emit`) and deletes every window with `end <= close`.
pub fn close_windows(
    name: &str,
    state: &mut TaskState,
    store: usize,
    close: i64,
    emit: Option<(&mut Emitter, &Closer<'_>)>,
) -> Result<usize, NodeError> {
    if let Some((out, closer)) = emit {
        let after = state.windows_deleted_through(store);
        emit_windows(name, state, store, after, close, out, closer)?;
    }
    delete_windows(name, state, store, close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_keys_are_json() {
        let k = windowed_key(b"al\"ice", 0, 60_000);
        let v: serde_json::Value = serde_json::from_slice(&k).unwrap();
        assert_eq!(v["key"], "al\"ice");
        assert_eq!(v["start"], 0);
        assert_eq!(v["end"], 60_000);
        let b = windowed_key(&[0xff, 0], 5, 6);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["key_base64"], "/wA=");
    }
}
