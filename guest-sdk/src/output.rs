//! What a processor sends on.

use crate::driver::Sink;
use crate::{Error, RecordMut};
use eddy_batch::{Entry, HEADER_SIZE, HeaderEntry, Span};

/// Collects a processor's output records for the current batch.
pub struct Output<'a> {
    pub(crate) index: u32,
    pub(crate) sink: &'a mut Sink,
    /// Bytes of new keys, values and headers; they land at `base` onward.
    pub(crate) extra: &'a mut Vec<u8>,
    pub(crate) base: u32,
    pub(crate) new_headers: &'a mut Vec<HeaderEntry>,
    pub(crate) input_header_table: &'a [u8],
    pub(crate) input_headers: u32,
}

impl<'a> Output<'a> {
    /// Passes `record` on as it is now (in-place edits and timestamp included)
    /// to the step's main output.
    #[inline]
    pub fn forward(&mut self, record: &RecordMut<'_>) {
        self.forward_to(0, record);
    }

    /// Passes `record` on to branch `branch` (0 is the main output; the
    /// pipeline spec names the others).
    #[inline]
    pub fn forward_to(&mut self, branch: u32, record: &RecordMut<'_>) {
        let entry = Entry {
            index: self.index,
            key: record.key_span,
            value: record.value_span,
            aux: Span::NONE,
            header_start: record.header_start,
            header_count: record.headers.count as u32,
            tag: branch,
            timestamp: record.timestamp,
        };
        self.sink.push(entry, self.index);
    }

    /// Starts a new output record that inherits everything from `record`;
    /// change what differs, then [`RecordBuilder::send`] it. Call it several
    /// times for one input to fan out (flat-map).
    #[must_use = "a record is only output once `send` is called"]
    pub fn emit<'o>(&'o mut self, record: &RecordMut<'_>) -> RecordBuilder<'o, 'a> {
        let entry = Entry {
            index: self.index,
            key: record.key_span,
            value: record.value_span,
            aux: Span::NONE,
            header_start: record.header_start,
            header_count: record.headers.count as u32,
            tag: 0,
            timestamp: record.timestamp,
        };
        RecordBuilder {
            out: self,
            entry,
            headers_copied: false,
        }
    }

    fn bytes(&mut self, b: &[u8]) -> Span {
        let offset = self.base + self.extra.len() as u32;
        self.extra.extend_from_slice(b);
        Span::new(offset, b.len() as u32)
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) -> Span {
        b.map_or(Span::NONE, |b| self.bytes(b))
    }
}

/// A new output record being put together.
#[must_use = "a record is only output once `send` is called"]
pub struct RecordBuilder<'o, 'a> {
    out: &'o mut Output<'a>,
    entry: Entry,
    headers_copied: bool,
}

impl RecordBuilder<'_, '_> {
    /// Sets the key (none for no key).
    pub fn key(mut self, key: Option<&[u8]>) -> Self {
        self.entry.key = self.out.opt_bytes(key);
        self
    }

    /// Sets the value (none for a tombstone).
    pub fn value(mut self, value: Option<&[u8]>) -> Self {
        self.entry.value = self.out.opt_bytes(value);
        self
    }

    /// Sets the value to `value` serialized as JSON, written straight into
    /// the batch (no intermediate allocation).
    pub fn value_json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<Self, Error> {
        let start = self.out.extra.len();
        if let Err(e) = serde_json::to_writer(&mut *self.out.extra, value) {
            self.out.extra.truncate(start);
            return Err(Error::new(format!("serializing JSON value: {e}")));
        }
        let len = (self.out.extra.len() - start) as u32;
        self.entry.value = Span::new(self.out.base + start as u32, len);
        Ok(self)
    }

    /// Sets the timestamp (milliseconds since the Unix epoch).
    pub fn timestamp(mut self, ts: i64) -> Self {
        self.entry.timestamp = ts;
        self
    }

    /// Sends the record to branch `branch` instead of the main output.
    pub fn branch(mut self, branch: u32) -> Self {
        self.entry.tag = branch;
        self
    }

    /// Drops the inherited headers.
    pub fn clear_headers(mut self) -> Self {
        self.headers_copied = true;
        self.entry.header_start = self.out.input_headers + self.out.new_headers.len() as u32;
        self.entry.header_count = 0;
        self
    }

    /// Adds a header after the inherited ones.
    pub fn header(mut self, name: &str, value: Option<&[u8]>) -> Self {
        if !self.headers_copied {
            // Headers of one record must be contiguous: copy the inherited
            // ones (their spans, not their bytes) to the new header table.
            let (start, count) = (self.entry.header_start, self.entry.header_count);
            self.entry.header_start = self.out.input_headers + self.out.new_headers.len() as u32;
            if start < self.out.input_headers {
                for i in start..start + count {
                    let h =
                        HeaderEntry::read(self.out.input_header_table, i as usize * HEADER_SIZE);
                    self.out.new_headers.push(h);
                }
            } else {
                let first = (start - self.out.input_headers) as usize;
                for i in first..first + count as usize {
                    let h = self.out.new_headers[i];
                    self.out.new_headers.push(h);
                }
            }
            self.headers_copied = true;
        }
        let name = self.out.bytes(name.as_bytes());
        let value = self.out.opt_bytes(value);
        self.out.new_headers.push(HeaderEntry { name, value });
        self.entry.header_count += 1;
        self
    }

    /// Adds the record to the output.
    pub fn send(self) {
        self.out.sink.push(self.entry, self.out.index);
    }
}
