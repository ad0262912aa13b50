//! Reading a batch through borrowed slices.

use crate::layout::{Entry, HeaderEntry, Layout, Span};
use crate::{Result, err};

/// A batch whose every offset was checked, read as borrowed records.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    buf: &'a [u8],
    layout: Layout,
}

impl<'a> BatchView<'a> {
    /// Checks the whole batch (preamble, every entry, every header) once, so
    /// reading records afterwards cannot go out of bounds.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Result<Self> {
        let layout = Layout::read(buf)?;
        for i in 0..layout.entries as usize {
            let e = Entry::read(buf, layout.entry_at(i));
            let ctx = |what: &str, span: Span| {
                span.range(buf.len())
                    .map_err(|e| crate::BatchError(format!("entry {i}: {what}: {e}")))
            };
            ctx("key", e.key)?;
            ctx("value", e.value)?;
            ctx("aux", e.aux)?;
            if u64::from(e.header_start) + u64::from(e.header_count) > u64::from(layout.headers) {
                return err(format!(
                    "entry {i}: headers {}..{} lie outside the header table of {}",
                    e.header_start,
                    u64::from(e.header_start) + u64::from(e.header_count),
                    layout.headers
                ));
            }
        }
        for i in 0..layout.headers as usize {
            let h = HeaderEntry::read(buf, layout.header_at(i));
            match h.name.range(buf.len()) {
                Ok(Some(_)) => {}
                Ok(None) => return err(format!("header {i}: a header name cannot be none")),
                Err(e) => return err(format!("header {i}: name: {e}")),
            }
            h.value
                .range(buf.len())
                .map_err(|e| crate::BatchError(format!("header {i}: value: {e}")))?;
        }
        Ok(BatchView { buf, layout })
    }

    /// Opens a batch that [`BatchView::new`] (or this crate's writer)
    /// already checked, reading only the preamble: for handing a checked
    /// batch from one stage to the next without a second pass. A batch that
    /// was not checked can make record access panic, never read out of bounds.
    #[inline]
    pub fn already_checked(buf: &'a [u8]) -> Result<Self> {
        Ok(BatchView {
            buf,
            layout: Layout::read(buf)?,
        })
    }

    /// Where the tables are.
    #[inline]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The whole buffer.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.layout.entries as usize
    }

    /// Whether the batch holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw entry of record `i`.
    #[inline]
    pub fn entry(&self, i: usize) -> Entry {
        assert!(i < self.len(), "record {i} of a batch of {}", self.len());
        Entry::read(self.buf, self.layout.entry_at(i))
    }

    /// Record `i`.
    #[inline]
    pub fn get(&self, i: usize) -> RecordRef<'a> {
        let e = self.entry(i);
        RecordRef {
            index: e.index,
            key: slice(self.buf, e.key),
            value: slice(self.buf, e.value),
            aux: slice(self.buf, e.aux),
            tag: e.tag,
            timestamp: e.timestamp,
            headers: HeadersRef {
                buf: self.buf,
                at: self.layout.header_at(e.header_start as usize),
                count: e.header_count as usize,
            },
        }
    }

    /// All records in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Checks that every record's index points into an input of `input_len`
    /// records and that indices never go backwards, as output batches promise.
    pub fn check_output_indices(&self, input_len: usize) -> Result<()> {
        let mut last = 0u32;
        for i in 0..self.len() {
            let idx = self.entry(i).index;
            if idx as usize >= input_len {
                return err(format!(
                    "output {i} names input {idx}, but the input had {input_len} records"
                ));
            }
            if idx < last {
                return err(format!(
                    "output {i} names input {idx} after an output of input {last}; outputs must keep input order"
                ));
            }
            last = idx;
        }
        Ok(())
    }
}

/// A span as a slice of an already checked buffer.
#[inline]
fn slice(buf: &[u8], s: Span) -> Option<&[u8]> {
    if s.is_none() {
        None
    } else {
        let start = s.offset as usize;
        Some(&buf[start..start + s.len as usize])
    }
}

/// One record of a batch, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Position (input) or originating input (output).
    pub index: u32,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value; none is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The second value some interfaces carry.
    pub aux: Option<&'a [u8]>,
    /// Branch or add/subtract flag.
    pub tag: u32,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The headers, in order.
    pub headers: HeadersRef<'a>,
}

/// The headers of one record, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct HeadersRef<'a> {
    buf: &'a [u8],
    at: usize,
    count: usize,
}

impl<'a> HeadersRef<'a> {
    /// Number of headers.
    #[inline]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Header `i`: its name bytes (UTF-8 is not checked here) and value.
    #[inline]
    pub fn get(&self, i: usize) -> (&'a [u8], Option<&'a [u8]>) {
        assert!(i < self.count, "header {i} of {}", self.count);
        let h = HeaderEntry::read(self.buf, self.at + i * crate::HEADER_SIZE);
        (
            slice(self.buf, h.name).unwrap_or_default(),
            slice(self.buf, h.value),
        )
    }

    /// All headers in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + '_ {
        (0..self.count).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchWriter;

    fn sample() -> Vec<u8> {
        let mut w = BatchWriter::new();
        w.record(
            0,
            Some(b"k1"),
            Some(b"hello"),
            10,
            [(&b"h"[..], Some(&b"v"[..]))],
        );
        w.record(1, None, None, 11, []);
        w.record(
            2,
            Some(b""),
            Some(b"x"),
            12,
            [(&b"a"[..], None), (&b"b"[..], Some(&b""[..]))],
        );
        w.into_vec()
    }

    #[test]
    fn writer_output_reads_back_record_for_record() {
        let buf = sample();
        let v = BatchView::new(&buf).unwrap();
        assert_eq!(v.len(), 3);
        let r0 = v.get(0);
        assert_eq!(
            (r0.key, r0.value, r0.timestamp),
            (Some(&b"k1"[..]), Some(&b"hello"[..]), 10)
        );
        assert_eq!(
            r0.headers.iter().collect::<Vec<_>>(),
            vec![(&b"h"[..], Some(&b"v"[..]))]
        );
        let r1 = v.get(1);
        assert_eq!((r1.key, r1.value, r1.headers.len()), (None, None, 0));
        let r2 = v.get(2);
        assert_eq!(r2.key, Some(&b""[..]));
        assert_eq!(
            r2.headers.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], None), (&b"b"[..], Some(&b""[..]))]
        );
        v.check_output_indices(3).unwrap();
        assert!(v.check_output_indices(2).is_err());
    }

    #[test]
    fn a_corrupted_offset_is_rejected_not_read() {
        let mut buf = sample();
        let l = Layout::read(&buf).unwrap();
        // Point entry 0's value past the end.
        let at = l.entry_at(0) + 12;
        let past_end = buf.len() as u32;
        buf[at..at + 4].copy_from_slice(&past_end.to_le_bytes());
        let e = BatchView::new(&buf).unwrap_err();
        assert!(e.0.contains("entry 0: value"), "{e}");
    }

    #[test]
    fn a_header_range_past_the_table_is_rejected() {
        let mut buf = sample();
        let l = Layout::read(&buf).unwrap();
        let at = l.entry_at(2) + 32;
        buf[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        assert!(BatchView::new(&buf).unwrap_err().0.contains("header table"));
    }

    /// Found by fuzzing (fuzz target `batch`): a header table overlapping
    /// the entry table passed the check, and renumbering the entries in
    /// place (as the host does to an output) then moved a header's value
    /// past the end of the buffer, where reading it panicked.
    #[test]
    fn a_header_table_overlapping_the_entry_table_is_rejected() {
        let mut w = BatchWriter::new();
        w.record(0, Some(b"k"), None, 0, []);
        w.record(0, None, None, 0, []);
        let mut buf = w.into_vec();
        let mut l = Layout::read(&buf).unwrap();
        let (at0, at1) = (l.entry_at(0), l.entry_at(1));
        // Header 0 is the last 12 bytes of entry 0 (tag, timestamp) and the
        // index of entry 1: name 24..25, value buf.len()..+index.
        let mut e0 = Entry::read(&buf, at0);
        e0.tag = 24;
        e0.timestamp = ((buf.len() as i64) << 32) | 1;
        e0.write(&mut buf, at0);
        let mut e1 = Entry::read(&buf, at1);
        (e1.header_start, e1.header_count) = (0, 1);
        e1.write(&mut buf, at1);
        (l.headers, l.headers_offset) = (1, (at1 - 12) as u32);
        l.write(&mut buf);
        let refused = BatchView::new(&buf).unwrap_err();
        assert!(refused.0.contains("overlap"), "{refused}");
        // What renumbering did to such a batch: entry 1's index is the
        // header's value length.
        buf[at1..at1 + 4].copy_from_slice(&1u32.to_le_bytes());
        let header = HeaderEntry::read(&buf, l.header_at(0));
        assert!(header.value.range(buf.len()).is_err());
    }

    #[test]
    fn outputs_going_backwards_are_rejected() {
        let mut w = BatchWriter::new();
        w.record(1, None, Some(b"a"), 0, []);
        w.record(0, None, Some(b"b"), 0, []);
        let buf = w.into_vec();
        let v = BatchView::new(&buf).unwrap();
        assert!(
            v.check_output_indices(2)
                .unwrap_err()
                .0
                .contains("input order")
        );
    }

    #[test]
    fn a_reused_writer_starts_clean() {
        let mut w = BatchWriter::new();
        w.record(0, None, Some(b"first"), 0, []);
        w.finish();
        w.clear();
        w.record(0, None, Some(b"second"), 0, []);
        let buf = w.finish().to_vec();
        let v = BatchView::new(&buf).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v.get(0).value, Some(&b"second"[..]));
    }

    #[test]
    fn appending_after_finish_keeps_earlier_records() {
        let mut w = BatchWriter::new();
        w.record(0, None, Some(b"a"), 0, []);
        w.finish();
        w.record(1, None, Some(b"b"), 0, []);
        let buf = w.finish().to_vec();
        let v = BatchView::new(&buf).unwrap();
        assert_eq!(
            v.iter().map(|r| r.value.unwrap()).collect::<Vec<_>>(),
            vec![b"a", b"b"]
        );
    }
}
