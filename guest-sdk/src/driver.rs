//! Runs an operator over one encoded batch and encodes what it outputs.
//!
//! The input buffer is rewritten in place where it can be: when a batch only
//! keeps, drops or edits records in place, outputs are compacted into the
//! input entry table and the same buffer goes back. New bytes and records go
//! at the end of the buffer, with new tables after them.

use crate::record::Headers;
use crate::{Aggregator, Error, Joined, Joiner, Output, Processor, RecordMut};
use eddy_batch::{
    BatchView, BatchWriter, ENTRY_SIZE, Entry, HEADER_SIZE, HeaderEntry, Layout, Span,
};

/// Reads the preamble and returns the layout and the end of the data region
/// (everything before the tables, which must come last and not overlap).
fn open(buf: &[u8]) -> Result<(Layout, usize), Error> {
    let layout = Layout::read(buf)?; // tables inside the buffer
    let (eo, ee) = (layout.entries_offset as usize, layout.entries_end());
    let (ho, he) = (layout.headers_offset as usize, layout.headers_end());
    let data_end = if layout.headers == 0 { eo } else { eo.min(ho) };
    if layout.headers > 0 && ee > ho && he > eo {
        return Err(Error::BadBatch("entry and header tables overlap".into()));
    }
    Ok((layout, data_end))
}

/// Checks one entry before its record is handed out: every span inside the
/// data region, key and value disjoint, headers inside the header table and
/// clear of the key and value (they are handed out as mutable slices).
#[inline]
fn check_entry(
    i: usize,
    e: &Entry,
    layout: &Layout,
    data_end: usize,
    header_table: &[u8],
) -> Result<(), Error> {
    let inside = |s: Span| {
        s.is_none()
            || u64::from(s.offset) + u64::from(s.len) <= data_end as u64
                && (s.offset as usize >= eddy_batch::PREAMBLE_SIZE || s.len == 0)
    };
    let overlap = |a: Span, b: Span| {
        !a.is_none()
            && !b.is_none()
            && a.len > 0
            && b.len > 0
            && a.offset < b.offset + b.len
            && b.offset < a.offset + a.len
    };
    if !inside(e.key) || !inside(e.value) {
        return Err(Error::BadBatch(format!(
            "entry {i}: key or value lies outside the data region"
        )));
    }
    if overlap(e.key, e.value) {
        return Err(Error::BadBatch(format!("entry {i}: key and value overlap")));
    }
    if u64::from(e.header_start) + u64::from(e.header_count) > u64::from(layout.headers) {
        return Err(Error::BadBatch(format!(
            "entry {i}: headers lie outside the header table"
        )));
    }
    for h in e.header_start..e.header_start + e.header_count {
        let h = HeaderEntry::read(header_table, h as usize * HEADER_SIZE);
        if h.name.is_none() {
            return Err(Error::BadBatch(format!(
                "entry {i}: a header name cannot be none"
            )));
        }
        for s in [h.name, h.value] {
            if !inside(s) || overlap(s, e.key) || overlap(s, e.value) {
                return Err(Error::BadBatch(format!(
                    "entry {i}: a header lies outside the data region or overlaps the key or value"
                )));
            }
        }
    }
    Ok(())
}

/// Carves a mutable slice for a checked span out of the data region.
///
/// SAFETY: `span` lies inside the region starting at `data` (checked by
/// `open`) and does not overlap any other slice handed out for the same record.
unsafe fn span_mut<'a>(data: *mut u8, span: Span) -> Option<&'a mut [u8]> {
    (!span.is_none()).then(|| unsafe {
        std::slice::from_raw_parts_mut(data.add(span.offset as usize), span.len as usize)
    })
}

/// Where a processor's output entries go: over the input entries already
/// read (a map or filter then hands the same buffer back with no copy), or,
/// once outputs get ahead of the inputs read (flat-map), into a list.
pub(crate) struct Sink {
    /// The input entry table. A raw pointer, not a slice, so `Output` keeps
    /// its single lifetime; valid while `process_batch` runs its loop.
    table: *mut u8,
    len: usize,
    written: usize,
    spilled: Option<Vec<Entry>>,
}

impl Sink {
    fn table(&mut self) -> &mut [u8] {
        // SAFETY: `table..table + len` is the entry table, borrowed mutably
        // for the whole of `process_batch`'s loop and by nothing else.
        unsafe { std::slice::from_raw_parts_mut(self.table, self.len) }
    }

    /// Adds an output of input `index` (every input up to it has been read).
    #[inline]
    pub(crate) fn push(&mut self, e: Entry, index: u32) {
        let written = self.written;
        if self.spilled.is_none() && written <= index as usize {
            e.write(self.table(), written * ENTRY_SIZE);
            self.written += 1;
            return;
        }
        self.spill(e);
    }

    /// Adds an output once outputs outnumber the inputs read: the entries
    /// move to a list of their own (off the hot path).
    #[cold]
    #[inline(never)]
    fn spill(&mut self, e: Entry) {
        if self.spilled.is_none() {
            let written = self.written;
            let table = self.table();
            let mut list = Vec::with_capacity(table.len() / ENTRY_SIZE * 2 + 8);
            list.extend((0..written).map(|j| Entry::read(table, j * ENTRY_SIZE)));
            self.spilled = Some(list);
        }
        if let Some(list) = &mut self.spilled {
            list.push(e);
        }
    }
}

/// Splits the tables region (everything after the data) into the entry
/// table, mutable, and the header table.
fn split_tables<'b>(
    tables: &'b mut [u8],
    layout: &Layout,
    data_end: usize,
) -> (&'b mut [u8], &'b [u8]) {
    let n = layout.entries as usize * ENTRY_SIZE;
    let h = layout.headers as usize * HEADER_SIZE;
    let eo = layout.entries_offset as usize - data_end;
    if h == 0 {
        return (&mut tables[eo..eo + n], &[]);
    }
    let ho = layout.headers_offset as usize - data_end;
    if eo < ho {
        let (a, b) = tables.split_at_mut(ho);
        (&mut a[eo..eo + n], &b[..h])
    } else {
        let (a, b) = tables.split_at_mut(eo);
        (&mut b[..n], &a[ho..ho + h])
    }
}

/// Runs a processor over an encoded batch and returns the encoded output.
pub fn process_batch<P: Processor>(op: &mut P, mut buf: Vec<u8>) -> Result<Vec<u8>, Error> {
    let (layout, data_end) = open(&buf)?;
    let n = layout.entries as usize;
    let base = buf.len() as u32;
    let mut extra: Vec<u8> = Vec::new();
    let mut new_headers: Vec<HeaderEntry> = Vec::new();
    let (written, spilled) = {
        let (data, tables) = buf.split_at_mut(data_end);
        let data = data.as_mut_ptr();
        let (entry_table, header_table) = split_tables(tables, &layout, data_end);
        let mut sink = Sink {
            table: entry_table.as_mut_ptr(),
            len: entry_table.len(),
            written: 0,
            spilled: None,
        };
        for i in 0..n {
            let e = Entry::read(sink.table(), i * ENTRY_SIZE);
            check_entry(i, &e, &layout, data_end, header_table)?;
            let hs = e.header_start as usize * HEADER_SIZE;
            let mut record = RecordMut {
                index: i as u32,
                // SAFETY: checked by `open`: inside the data region, disjoint.
                key: unsafe { span_mut(data, e.key) },
                value: unsafe { span_mut(data, e.value) },
                key_span: e.key,
                value_span: e.value,
                timestamp: e.timestamp,
                headers: Headers {
                    data,
                    table: &header_table[hs.min(header_table.len())..],
                    count: e.header_count as usize,
                },
                header_start: e.header_start,
            };
            let mut out = Output {
                index: i as u32,
                sink: &mut sink,
                extra: &mut extra,
                base,
                new_headers: &mut new_headers,
                input_header_table: header_table,
                input_headers: layout.headers,
            };
            op.process(&mut record, &mut out)
                .map_err(|e| e.at(i as u32))?;
        }
        (sink.written, sink.spilled)
    };
    Ok(finish(buf, layout, written, spilled, &extra, &new_headers))
}

/// Completes the output: the preamble alone when the entries were written in
/// place and nothing new was added; otherwise new bytes and tables appended.
fn finish(
    mut buf: Vec<u8>,
    layout: Layout,
    written: usize,
    spilled: Option<Vec<Entry>>,
    extra: &[u8],
    new_headers: &[HeaderEntry],
) -> Vec<u8> {
    if spilled.is_none() && extra.is_empty() && new_headers.is_empty() {
        Layout {
            entries: written as u32,
            ..layout
        }
        .write(&mut buf);
        return buf;
    }
    // New bytes, then the entry table, then the header table (old headers
    // copied, new ones after): tables stay last, so the next reader's data
    // region is everything before them.
    let headers = layout.headers as usize + new_headers.len();
    let entries = spilled.as_ref().map_or(written, Vec::len);
    buf.reserve(extra.len() + entries * ENTRY_SIZE + headers * HEADER_SIZE);
    buf.extend_from_slice(extra);
    let entries_offset = buf.len();
    match spilled {
        Some(list) => {
            buf.resize(entries_offset + entries * ENTRY_SIZE, 0);
            for (j, e) in list.iter().enumerate() {
                e.write(&mut buf, entries_offset + j * ENTRY_SIZE);
            }
        }
        None => {
            let eo = layout.entries_offset as usize;
            buf.extend_from_within(eo..eo + written * ENTRY_SIZE);
        }
    }
    let headers_offset = buf.len() as u32;
    buf.extend_from_within(layout.headers_offset as usize..layout.headers_end());
    for h in new_headers {
        buf.extend_from_slice(&h.to_bytes());
    }
    Layout {
        entries: entries as u32,
        entries_offset: entries_offset as u32,
        headers: headers as u32,
        headers_offset,
    }
    .write(&mut buf);
    buf
}

/// Runs an aggregator over an encoded batch of updates (see the `aggregator`
/// interface in the WIT) and returns one aggregate per update.
// Takes the buffer by value like `process_batch`: the export macro calls all three the same way.
#[allow(clippy::needless_pass_by_value)]
pub fn aggregate_batch<A: Aggregator>(op: &mut A, buf: Vec<u8>) -> Result<Vec<u8>, Error> {
    let view = BatchView::new(&buf)?;
    let mut w = BatchWriter::with_capacity(buf.len(), view.len());
    let mut agg: Vec<u8> = Vec::new();
    for (i, r) in view.iter().enumerate() {
        let at = |e: Error| e.at(i as u32);
        if r.tag & 2 == 0 {
            agg.clear();
            match r.aux {
                Some(a) => agg.extend_from_slice(a),
                None => agg = op.initialize(r.key).map_err(at)?,
            }
        } else if i == 0 {
            return Err(Error::BadBatch(
                "the first update cannot continue a previous group".into(),
            ));
        }
        if r.tag & 4 != 0 {
            op.merge(r.key, r.value.unwrap_or_default(), &mut agg)
                .map_err(at)?;
        } else if r.tag & 1 == 0 {
            op.add(r.key, r.value, &mut agg).map_err(at)?;
        } else {
            op.subtract(r.key, r.value, &mut agg).map_err(at)?;
        }
        w.record(i as u32, r.key, Some(&agg), r.timestamp, []);
    }
    Ok(w.into_vec())
}

/// Runs a joiner over an encoded batch of pairs and returns the joined values.
// Takes the buffer by value like `process_batch`: the export macro calls all three the same way.
#[allow(clippy::needless_pass_by_value)]
pub fn join_batch<J: Joiner>(op: &mut J, buf: Vec<u8>) -> Result<Vec<u8>, Error> {
    let view = BatchView::new(&buf)?;
    let mut w = BatchWriter::with_capacity(buf.len(), view.len());
    let mut joined = Vec::new();
    for (i, r) in view.iter().enumerate() {
        joined.clear();
        let value = match op
            .join(r.key, r.value, r.aux, &mut joined)
            .map_err(|e| e.at(i as u32))?
        {
            Joined::Value => Some(&joined[..]),
            Joined::Null => None,
            Joined::Skip => continue,
        };
        w.record(i as u32, r.key, value, r.timestamp, r.headers.iter());
    }
    Ok(w.into_vec())
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
