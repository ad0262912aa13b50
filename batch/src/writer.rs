//! Building a batch.

use crate::layout::{ENTRY_SIZE, Entry, HEADER_SIZE, HeaderEntry, Layout, PREAMBLE_SIZE, Span};

/// Builds a batch: bytes first, then the entry and header tables.
///
/// The tables go last so records can be added one by one without knowing the
/// count in advance; [`BatchWriter::finish`] appends them and fills in the
/// preamble. A writer is reused across batches ([`BatchWriter::clear`]) so a
/// steady stream of batches allocates nothing.
#[derive(Debug)]
pub struct BatchWriter {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    headers: Vec<HeaderEntry>,
    /// Where the pending tables start once `finish` ran; new bytes go before it.
    finished_at: Option<usize>,
}

impl Default for BatchWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchWriter {
    /// An empty batch.
    pub fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// An empty batch with room for `bytes` of data and `records` entries.
    pub fn with_capacity(bytes: usize, records: usize) -> Self {
        let mut buf = Vec::with_capacity(PREAMBLE_SIZE + bytes + records * ENTRY_SIZE);
        buf.resize(PREAMBLE_SIZE, 0);
        BatchWriter {
            buf,
            entries: Vec::with_capacity(records),
            headers: Vec::new(),
            finished_at: None,
        }
    }

    /// Continues after the bytes of an existing buffer (typically a batch that
    /// came in): its byte ranges stay valid and new bytes are appended after it.
    #[inline]
    pub fn append_to(buf: Vec<u8>) -> Self {
        let mut buf = buf;
        if buf.len() < PREAMBLE_SIZE {
            buf.resize(PREAMBLE_SIZE, 0);
        }
        BatchWriter {
            buf,
            entries: Vec::new(),
            headers: Vec::new(),
            finished_at: None,
        }
    }

    /// Empties the batch, keeping its memory.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.resize(PREAMBLE_SIZE, 0);
        self.entries.clear();
        self.headers.clear();
        self.finished_at = None;
    }

    /// Number of entries so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of data written so far (preamble included).
    #[inline]
    pub fn data_len(&self) -> usize {
        self.finished_at.unwrap_or(self.buf.len())
    }

    fn unfinish(&mut self) {
        if let Some(at) = self.finished_at.take() {
            self.buf.truncate(at);
        }
    }

    /// Appends bytes and returns where they are.
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) -> Span {
        self.unfinish();
        let offset = self.buf.len() as u32;
        self.buf.extend_from_slice(b);
        Span::new(offset, b.len() as u32)
    }

    /// Appends optional bytes; none gives [`Span::NONE`].
    #[inline]
    pub fn opt_bytes(&mut self, b: Option<&[u8]>) -> Span {
        match b {
            Some(b) => self.bytes(b),
            None => Span::NONE,
        }
    }

    /// Appends whatever `write` puts into the buffer and returns where it is.
    /// `write` must only append.
    #[inline]
    pub fn write_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Span, E> {
        self.unfinish();
        let start = self.buf.len();
        let res = write(&mut self.buf);
        if self.buf.len() < start || res.is_err() {
            self.buf.truncate(start);
            res?;
        }
        Ok(Span::new(start as u32, (self.buf.len() - start) as u32))
    }

    /// Adds a header to the header table and returns its index.
    #[inline]
    pub fn header(&mut self, name: &[u8], value: Option<&[u8]>) -> u32 {
        let name = self.bytes(name);
        let value = self.opt_bytes(value);
        self.header_spans(name, value)
    }

    /// Adds a header whose bytes are already in the buffer; returns its index.
    #[inline]
    pub fn header_spans(&mut self, name: Span, value: Span) -> u32 {
        self.headers.push(HeaderEntry { name, value });
        (self.headers.len() - 1) as u32
    }

    /// Number of headers in the header table so far.
    #[inline]
    pub fn header_count(&self) -> u32 {
        self.headers.len() as u32
    }

    /// Adds an entry whose spans are already in the buffer.
    #[inline]
    pub fn entry(&mut self, e: Entry) {
        self.unfinish();
        self.entries.push(e);
    }

    /// Adds a whole record: its bytes, its headers and its entry.
    #[inline]
    pub fn record<'h>(
        &mut self,
        index: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        self.record_full(index, key, value, None, 0, timestamp, headers);
    }

    /// Adds a whole record with an aux value and a tag.
    #[inline]
    #[allow(clippy::too_many_arguments)] // one argument per entry field
    pub fn record_full<'h>(
        &mut self,
        index: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        aux: Option<&[u8]>,
        tag: u32,
        timestamp: i64,
        headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        let key = self.opt_bytes(key);
        let value = self.opt_bytes(value);
        let aux = self.opt_bytes(aux);
        let header_start = self.header_count();
        for (name, v) in headers {
            self.header(name, v);
        }
        let header_count = self.header_count() - header_start;
        self.entry(Entry {
            index,
            key,
            value,
            aux,
            header_start,
            header_count,
            tag,
            timestamp,
        });
    }

    /// Appends the tables, fills in the preamble and returns the whole batch.
    /// More records may still be added afterwards; `finish` again then.
    pub fn finish(&mut self) -> &[u8] {
        self.unfinish();
        let data_end = self.buf.len();
        self.buf
            .reserve(self.entries.len() * ENTRY_SIZE + self.headers.len() * HEADER_SIZE);
        for e in &self.entries {
            self.buf.extend_from_slice(&e.to_bytes());
        }
        let headers_offset = self.buf.len();
        for h in &self.headers {
            self.buf.extend_from_slice(&h.to_bytes());
        }
        Layout {
            entries: self.entries.len() as u32,
            entries_offset: data_end as u32,
            headers: self.headers.len() as u32,
            headers_offset: headers_offset as u32,
        }
        .write(&mut self.buf);
        self.finished_at = Some(data_end);
        &self.buf
    }

    /// Finishes the batch and hands over its buffer.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.finish();
        self.buf
    }
}
