//! A record of the batch being processed, borrowed in place.

use crate::Error;
use eddy_batch::{HEADER_SIZE, HeaderEntry, Span};

/// One input record, borrowed from the batch buffer: reading it copies
/// nothing, and `key_mut`/`value_mut` edit the bytes in place.
pub struct RecordMut<'a> {
    pub(crate) index: u32,
    pub(crate) key: Option<&'a mut [u8]>,
    pub(crate) value: Option<&'a mut [u8]>,
    pub(crate) key_span: Span,
    pub(crate) value_span: Span,
    pub(crate) timestamp: i64,
    pub(crate) headers: Headers<'a>,
    pub(crate) header_start: u32,
}

impl<'a> RecordMut<'a> {
    /// Position of this record in its batch.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The key, if any.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The key, editable in place (same length).
    pub fn key_mut(&mut self) -> Option<&mut [u8]> {
        self.key.as_deref_mut()
    }

    /// The value; none is a tombstone.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// The value, editable in place (same length).
    #[inline]
    pub fn value_mut(&mut self) -> Option<&mut [u8]> {
        self.value.as_deref_mut()
    }

    /// The value as UTF-8 text.
    pub fn value_str(&self) -> Result<Option<&str>, Error> {
        self.value()
            .map(|v| {
                std::str::from_utf8(v).map_err(|e| Error::new(format!("value is not UTF-8: {e}")))
            })
            .transpose()
    }

    /// The value parsed as JSON; a tombstone is an error.
    pub fn value_json<'de, T: serde::Deserialize<'de>>(&'de self) -> Result<T, Error> {
        let v = self
            .value()
            .ok_or_else(|| Error::new("expected a JSON value, got a tombstone"))?;
        serde_json::from_slice(v)
            .map_err(|e| Error::new(format!("value is not the expected JSON: {e}")))
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Changes the timestamp the record is forwarded with.
    pub fn set_timestamp(&mut self, ts: i64) {
        self.timestamp = ts;
    }

    /// The headers, in order.
    pub fn headers(&self) -> Headers<'_> {
        self.headers
    }
}

/// The headers of a record, borrowed.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    /// Start of the data region; header bytes never overlap key or value
    /// bytes (checked when the batch was opened), so reading them while
    /// the key or value is borrowed mutably is sound.
    pub(crate) data: *const u8,
    pub(crate) table: &'a [u8],
    pub(crate) count: usize,
}

impl<'a> Headers<'a> {
    /// Number of headers.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Header `i` as (name, value); a name that is not UTF-8 reads as "".
    pub fn get(&self, i: usize) -> (&'a str, Option<&'a [u8]>) {
        assert!(i < self.count, "header {i} of {}", self.count);
        let h = HeaderEntry::read(self.table, i * HEADER_SIZE);
        // SAFETY: spans were checked to lie inside the data region and not to
        // overlap this record's key and value (see `driver::open`).
        let bytes = |s: Span| unsafe {
            (!s.is_none()).then(|| {
                std::slice::from_raw_parts(self.data.add(s.offset as usize), s.len as usize)
            })
        };
        let name = bytes(h.name)
            .map(std::str::from_utf8)
            .and_then(Result::ok)
            .unwrap_or("");
        (name, bytes(h.value))
    }

    /// The value of the first header called `name`.
    pub fn find(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + '_ {
        (0..self.count).map(|i| self.get(i))
    }
}
