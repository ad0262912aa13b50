//! Reading a store from outside the topology (interactive queries): the
//! value of a key, or the windows of a key in a range of start times, as
//! the task sees them (pending cache entries included).

use super::{StateError, TaskState, keys, versions};
use crate::topology::StoreRole;

/// What to read from a store: a key, and for window stores the range of
/// window start times (all windows of the key when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The record key.
    pub key: Vec<u8>,
    /// Earliest and latest window start, inclusive (Kafka Streams'
    /// `WindowStore#fetch(key, from, to)`).
    pub range: Option<(i64, i64)>,
    /// For a versioned table: the row as of this time (none: the latest).
    pub at: Option<i64>,
}

/// A stored value: the bytes and the timestamp of their last update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Timestamp of the last update.
    pub timestamp: i64,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// One window of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    /// Window start (inclusive).
    pub start: i64,
    /// Window end (exclusive for time windows, inclusive for sliding and
    /// session windows, as in Kafka Streams).
    pub end: i64,
    /// The aggregate.
    pub stored: Stored,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// The key's value, if it has one.
    Value(Option<Stored>),
    /// The key's windows in the range, by start time.
    Windows(Vec<WindowRow>),
}

/// Why a lookup could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A time range asked of a key-value store.
    #[error("store {0} is a key-value store; ask for the key alone, without `from` and `to`")]
    NotWindowed(String),
    /// `at` asked of a store that keeps no versions.
    #[error(
        "store {0} keeps no versions; ask without `at` (a table source with `history` keeps them)"
    )]
    NotVersioned(String),
    /// A store no query may read.
    #[error(
        "store {0} holds a join's internal records (a stream–stream join's buffers or a foreign-key join's subscriptions; Kafka Streams serves no join store either); query the tables the join reads or writes"
    )]
    Internal(String),
    /// The store could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

fn stored(store: &str, bytes: &[u8]) -> Result<Stored, StateError> {
    let (timestamp, value) = keys::decode_value(bytes).ok_or_else(|| StateError::Corrupt {
        store: store.to_string(),
        reason: "a stored value is shorter than its timestamp".into(),
    })?;
    Ok(Stored {
        timestamp,
        value: value.to_vec(),
    })
}

/// Reads `lookup` from store `store` of `state`.
pub fn read(state: &TaskState, store: usize, lookup: &Lookup) -> Result<Rows, QueryError> {
    let name = state.store_name(store);
    let key = &lookup.key;
    match state.role(store) {
        StoreRole::JoinBuffer => return Err(QueryError::Internal(name.to_string())),
        StoreRole::Versioned { history } => {
            if lookup.range.is_some() {
                return Err(QueryError::NotWindowed(name.to_string()));
            }
            let at = lookup.at.unwrap_or(i64::MAX);
            let row = versions::get(state, (store, history), key, at)?;
            return Ok(Rows::Value(
                row.map(|(timestamp, value)| Stored { timestamp, value }),
            ));
        }
        StoreRole::Plain if lookup.at.is_some() => {
            return Err(QueryError::NotVersioned(name.to_string()));
        }
        StoreRole::Plain => {}
    }
    if !state.windowed(store) {
        if lookup.range.is_some() {
            return Err(QueryError::NotWindowed(name.to_string()));
        }
        let found = state.get(store, key)?;
        return Ok(Rows::Value(found.map(|b| stored(name, &b)).transpose()?));
    }
    let (from, to) = lookup.range.unwrap_or((i64::MIN, i64::MAX));
    if from > to {
        return Ok(Rows::Windows(Vec::new()));
    }
    let lo = keys::window_key_from(key, from);
    // Past the last start asked for; the key's prefix bounds the open end.
    let hi = (to < i64::MAX).then(|| keys::window_key_from(key, to + 1));
    let prefix = keys::key_prefix(key);
    let mut rows = Vec::new();
    let mut bad = None;
    state.scan(store, false, &lo, hi.as_deref(), |k, v| {
        if !k.starts_with(&prefix) {
            return false;
        }
        let Some((_, start, end)) = keys::split_window_key(k) else {
            return true;
        };
        match stored(name, v) {
            Ok(stored) => {
                rows.push(WindowRow { start, end, stored });
                true
            }
            Err(e) => {
                bad = Some(e);
                false
            }
        }
    })?;
    match bad {
        Some(e) => Err(e.into()),
        None => Ok(Rows::Windows(rows)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreSpec;
    use crate::topology::StoreKind;

    fn state() -> TaskState {
        let spec = |name: &str, windowed| StoreSpec {
            name: name.into(),
            windowed,
            scanned: false,
            buffer: false,
        };
        TaskState::open(
            StoreKind::Memory,
            None,
            &[spec("counts", false), spec("per-minute", true)],
            1 << 20,
        )
        .unwrap()
    }

    fn look(key: &str, range: Option<(i64, i64)>) -> Lookup {
        Lookup {
            key: key.as_bytes().to_vec(),
            range,
            at: None,
        }
    }

    #[test]
    fn a_key_reads_its_value_through_the_cache_and_after_a_flush() {
        let mut s = state();
        s.put(0, b"a", Some(keys::encode_value(7, b"3")), 7);
        let want = Rows::Value(Some(Stored {
            timestamp: 7,
            value: b"3".to_vec(),
        }));
        assert_eq!(read(&s, 0, &look("a", None)).unwrap(), want);
        s.flush_store(0).unwrap();
        assert_eq!(read(&s, 0, &look("a", None)).unwrap(), want);
        assert_eq!(read(&s, 0, &look("b", None)).unwrap(), Rows::Value(None));
        assert_eq!(
            read(&s, 0, &look("a", Some((0, 5)))),
            Err(QueryError::NotWindowed("counts".into()))
        );
    }

    #[test]
    fn windows_of_a_key_in_a_start_range_and_no_other_key() {
        let mut s = state();
        for (key, start) in [
            ("a", -60),
            ("a", 0),
            ("a", 60),
            ("a", 120),
            ("ab", 0),
            ("b", 60),
        ] {
            let v = format!("{key}{start}");
            s.put_window(
                1,
                key.as_bytes(),
                start,
                start + 60,
                Some(keys::encode_value(start, v.as_bytes())),
                start,
            );
        }
        // Half in the backend, half pending in the cache.
        s.flush_store(1).unwrap();
        s.put_window(
            1,
            b"a",
            180,
            240,
            Some(keys::encode_value(180, b"a180")),
            180,
        );
        let starts = |rows: Rows| match rows {
            Rows::Windows(w) => w
                .iter()
                .map(|r| (r.start, String::from_utf8(r.stored.value.clone()).unwrap()))
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            starts(read(&s, 1, &look("a", Some((0, 120)))).unwrap()),
            [(0, "a0".into()), (60, "a60".into()), (120, "a120".into())]
        );
        assert_eq!(starts(read(&s, 1, &look("a", None)).unwrap()).len(), 5);
        assert_eq!(
            starts(read(&s, 1, &look("a", Some((i64::MIN, i64::MAX)))).unwrap()).len(),
            5
        );
        assert_eq!(
            starts(read(&s, 1, &look("b", Some((61, 1000)))).unwrap()),
            []
        );
        assert_eq!(starts(read(&s, 1, &look("c", None)).unwrap()), []);
        // An empty range, not a crash.
        assert_eq!(starts(read(&s, 1, &look("a", Some((120, 0)))).unwrap()), []);
    }

    #[test]
    fn versioned_tables_answer_as_of_a_time_and_join_buffers_refuse() {
        let spec = |name: &str| StoreSpec {
            name: name.into(),
            windowed: false,
            scanned: true,
            buffer: false,
        };
        let mut s =
            TaskState::open(StoreKind::Memory, None, &[spec("rates"), spec("j-left")], 0).unwrap();
        s.set_role(0, StoreRole::Versioned { history: 100 });
        s.set_role(1, StoreRole::JoinBuffer);
        for (ts, v) in [(10i64, "1.1"), (20, "1.2")] {
            let mut stored = ts.to_be_bytes().to_vec();
            stored.push(1);
            stored.extend_from_slice(v.as_bytes());
            s.put(0, &keys::window_key_from(b"eur", ts), Some(stored), ts);
            s.observe(0, ts);
        }
        let at = |at: Option<i64>| Lookup {
            key: b"eur".to_vec(),
            range: None,
            at,
        };
        let value = |r: Rows| match r {
            Rows::Value(v) => v.map(|s| (s.timestamp, String::from_utf8(s.value).unwrap())),
            Rows::Windows(_) => panic!("a value"),
        };
        assert_eq!(
            value(read(&s, 0, &at(None)).unwrap()),
            Some((20, "1.2".into()))
        );
        assert_eq!(
            value(read(&s, 0, &at(Some(15))).unwrap()),
            Some((10, "1.1".into()))
        );
        assert_eq!(value(read(&s, 0, &at(Some(5))).unwrap()), None);
        assert!(matches!(
            read(&s, 1, &at(None)),
            Err(QueryError::Internal(_))
        ));
        assert!(matches!(
            read(&state(), 0, &at(Some(5))),
            Err(QueryError::NotVersioned(_))
        ));
    }
}
