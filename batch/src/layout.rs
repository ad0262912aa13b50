//! Fixed sizes, the preamble and the raw entry and header tables.

use crate::{Result, err};

/// The first four bytes of every batch; the trailing `1` is the layout version.
pub const MAGIC: [u8; 4] = *b"EDB1";
/// Bytes before anything else in a batch.
pub const PREAMBLE_SIZE: usize = 24;
/// Bytes of one entry in the entry table.
pub const ENTRY_SIZE: usize = 48;
/// Bytes of one header in the header table.
pub const HEADER_SIZE: usize = 16;
/// The length that means "none" (no key, a tombstone, a null header value).
pub const NONE: u32 = u32::MAX;

/// A byte range of the buffer, or none (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Absolute offset in the buffer.
    pub offset: u32,
    /// Length in bytes, or [`NONE`].
    pub len: u32,
}

impl Default for Span {
    fn default() -> Self {
        Span::NONE
    }
}

impl Span {
    /// The span that stands for "none".
    pub const NONE: Span = Span {
        offset: 0,
        len: NONE,
    };

    /// A present span.
    #[inline]
    pub fn new(offset: u32, len: u32) -> Self {
        Span { offset, len }
    }

    /// Whether this span stands for "none".
    #[inline]
    pub fn is_none(self) -> bool {
        self.len == NONE
    }

    /// The byte range, if present and inside a buffer of `buf_len` bytes.
    #[inline]
    pub fn range(self, buf_len: usize) -> Result<Option<std::ops::Range<usize>>> {
        if self.is_none() {
            return Ok(None);
        }
        // u64 so the sum cannot wrap on 32-bit targets (wasm32).
        let start = u64::from(self.offset);
        let end = start + u64::from(self.len);
        if start < PREAMBLE_SIZE as u64 && self.len > 0 || end > buf_len as u64 {
            return err(format!(
                "byte range {}..{} lies outside the buffer's {} data bytes",
                start, end, buf_len
            ));
        }
        Ok(Some(start as usize..end as usize))
    }
}

/// Where the tables of a batch are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of entries.
    pub entries: u32,
    /// Offset of the entry table.
    pub entries_offset: u32,
    /// Number of headers.
    pub headers: u32,
    /// Offset of the header table.
    pub headers_offset: u32,
}

impl Layout {
    /// Reads and checks the preamble of `buf`.
    #[inline]
    pub fn read(buf: &[u8]) -> Result<Layout> {
        if buf.len() < PREAMBLE_SIZE {
            return err(format!(
                "batch is {} bytes, shorter than its {PREAMBLE_SIZE}-byte preamble",
                buf.len()
            ));
        }
        if buf[0..4] != MAGIC {
            return err(format!(
                "batch starts with {:02x?}, not the magic \"EDB1\" (wrong encoding version?)",
                &buf[0..4]
            ));
        }
        let l = Layout {
            entries: rd32(buf, 4),
            entries_offset: rd32(buf, 8),
            headers: rd32(buf, 12),
            headers_offset: rd32(buf, 16),
        };
        let table = |what: &str, off: u32, count: u32, size: usize| {
            let end = u64::from(off) + u64::from(count) * size as u64;
            if (off as usize) < PREAMBLE_SIZE && count > 0 || end > buf.len() as u64 {
                return err(format!(
                    "{what} table {off}..{end} lies outside the {}-byte batch",
                    buf.len()
                ));
            }
            Ok(())
        };
        table("entry", l.entries_offset, l.entries, ENTRY_SIZE)?;
        table("header", l.headers_offset, l.headers, HEADER_SIZE)?;
        // Apart, so that rewriting entries in place (the host renumbers an
        // output's indices) cannot change a checked header.
        let (eo, ho) = (u64::from(l.entries_offset), u64::from(l.headers_offset));
        let ee = eo + u64::from(l.entries) * ENTRY_SIZE as u64;
        let he = ho + u64::from(l.headers) * HEADER_SIZE as u64;
        if l.entries > 0 && l.headers > 0 && eo < he && ho < ee {
            return err(format!(
                "entry table {eo}..{ee} and header table {ho}..{he} overlap"
            ));
        }
        Ok(l)
    }

    /// Writes this layout into the preamble of `buf`.
    #[inline]
    pub fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&MAGIC);
        wr32(buf, 4, self.entries);
        wr32(buf, 8, self.entries_offset);
        wr32(buf, 12, self.headers);
        wr32(buf, 16, self.headers_offset);
        wr32(buf, 20, 0);
    }

    /// Offset of entry `i` in the buffer.
    #[inline]
    pub fn entry_at(&self, i: usize) -> usize {
        self.entries_offset as usize + i * ENTRY_SIZE
    }

    /// The first byte after the entry table.
    #[inline]
    pub fn entries_end(&self) -> usize {
        self.entry_at(self.entries as usize)
    }

    /// Offset of header `i` in the buffer.
    #[inline]
    pub fn header_at(&self, i: usize) -> usize {
        self.headers_offset as usize + i * HEADER_SIZE
    }

    /// The first byte after the header table.
    #[inline]
    pub fn headers_end(&self) -> usize {
        self.header_at(self.headers as usize)
    }
}

/// One decoded entry of the entry table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Position in an input batch; index of the originating input in an output batch.
    pub index: u32,
    /// The key.
    pub key: Span,
    /// The value (none is a tombstone).
    pub value: Span,
    /// The second value some interfaces carry.
    pub aux: Span,
    /// First header of this record in the header table.
    pub header_start: u32,
    /// Number of headers of this record.
    pub header_count: u32,
    /// Branch (processor output) or add/subtract flag (aggregator input).
    pub tag: u32,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl Entry {
    /// Decodes the 48 bytes at `at`.
    #[inline]
    pub fn read(buf: &[u8], at: usize) -> Entry {
        let b = &buf[at..at + ENTRY_SIZE];
        Entry {
            index: rd32(b, 0),
            key: Span::new(rd32(b, 4), rd32(b, 8)),
            value: Span::new(rd32(b, 12), rd32(b, 16)),
            aux: Span::new(rd32(b, 20), rd32(b, 24)),
            header_start: rd32(b, 28),
            header_count: rd32(b, 32),
            tag: rd32(b, 36),
            timestamp: i64::from_le_bytes(b[40..48].try_into().expect("8 bytes")),
        }
    }

    /// Encodes into 48 bytes.
    #[inline]
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        self.write(&mut b, 0);
        b
    }

    /// Encodes into the 48 bytes at `at` (no intermediate copy).
    #[inline]
    pub fn write(&self, buf: &mut [u8], at: usize) {
        let b = &mut buf[at..at + ENTRY_SIZE];
        wr32(b, 0, self.index);
        wr32(b, 4, self.key.offset);
        wr32(b, 8, self.key.len);
        wr32(b, 12, self.value.offset);
        wr32(b, 16, self.value.len);
        wr32(b, 20, self.aux.offset);
        wr32(b, 24, self.aux.len);
        wr32(b, 28, self.header_start);
        wr32(b, 32, self.header_count);
        wr32(b, 36, self.tag);
        b[40..48].copy_from_slice(&self.timestamp.to_le_bytes());
    }
}

/// One decoded header of the header table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderEntry {
    /// The UTF-8 name.
    pub name: Span,
    /// The value (none is a null value).
    pub value: Span,
}

impl HeaderEntry {
    /// Decodes the 16 bytes at `at`.
    #[inline]
    pub fn read(buf: &[u8], at: usize) -> HeaderEntry {
        let b = &buf[at..at + HEADER_SIZE];
        HeaderEntry {
            name: Span::new(rd32(b, 0), rd32(b, 4)),
            value: Span::new(rd32(b, 8), rd32(b, 12)),
        }
    }

    /// Encodes into 16 bytes.
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        wr32(&mut b, 0, self.name.offset);
        wr32(&mut b, 4, self.name.len);
        wr32(&mut b, 8, self.value.offset);
        wr32(&mut b, 12, self.value.len);
        b
    }
}

#[inline]
pub(crate) fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[inline]
pub(crate) fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips_through_bytes() {
        let e = Entry {
            index: 7,
            key: Span::new(24, 3),
            value: Span::NONE,
            aux: Span::NONE,
            header_start: 2,
            header_count: 1,
            tag: 5,
            timestamp: -42,
        };
        let mut buf = vec![0u8; 10];
        buf.extend_from_slice(&e.to_bytes());
        assert_eq!(Entry::read(&buf, 10), e);
    }

    #[test]
    fn preamble_rejects_bad_magic_and_short_buffers() {
        assert!(Layout::read(&[0u8; 10]).unwrap_err().0.contains("shorter"));
        let mut buf = vec![0u8; PREAMBLE_SIZE];
        buf[0..4].copy_from_slice(b"EDB2");
        assert!(Layout::read(&buf).unwrap_err().0.contains("magic"));
    }

    #[test]
    fn preamble_rejects_tables_past_the_end() {
        let mut buf = vec![0u8; PREAMBLE_SIZE + ENTRY_SIZE];
        let l = Layout {
            entries: 2,
            entries_offset: PREAMBLE_SIZE as u32,
            headers: 0,
            headers_offset: 0,
        };
        l.write(&mut buf);
        assert!(Layout::read(&buf).unwrap_err().0.contains("entry table"));
    }

    #[test]
    fn spans_are_checked_against_the_buffer() {
        assert_eq!(Span::NONE.range(30), Ok(None));
        assert_eq!(Span::new(24, 6).range(30), Ok(Some(24..30)));
        assert!(Span::new(25, 6).range(30).is_err());
        assert!(
            Span::new(0, 4).range(30).is_err(),
            "the preamble is not data"
        );
        assert!(Span::new(u32::MAX - 1, 10).range(30).is_err());
    }
}
