//! Unit-testing operators on the host target, through the same batch
//! encoding and drivers the component uses.

use crate::{Aggregator, Error, Processor};
use eddy_batch::{BatchView, BatchWriter};

/// An input record for a test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRecord {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value; none is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl TestRecord {
    /// A record with only a value.
    pub fn value(value: impl AsRef<[u8]>) -> Self {
        TestRecord {
            value: Some(value.as_ref().to_vec()),
            ..Default::default()
        }
    }

    /// A record with a key and a value.
    pub fn key_value(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        TestRecord {
            key: Some(key.as_ref().to_vec()),
            ..TestRecord::value(value)
        }
    }

    /// The same record with a timestamp.
    pub fn at(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The same record with one more header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_string(), Some(value.as_ref().to_vec())));
        self
    }
}

/// An output record in a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutput {
    /// Index of the input record it came from.
    pub input: u32,
    /// The branch it goes to (0 = main output).
    pub branch: u32,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value; none is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl TestOutput {
    /// The value as text (panics if it is not UTF-8 or is a tombstone).
    pub fn value_str(&self) -> &str {
        std::str::from_utf8(self.value.as_deref().expect("a value")).expect("UTF-8")
    }
}

fn encode(records: &[TestRecord]) -> Vec<u8> {
    let mut w = BatchWriter::new();
    for (i, r) in records.iter().enumerate() {
        w.record(
            i as u32,
            r.key.as_deref(),
            r.value.as_deref(),
            r.timestamp,
            r.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())),
        );
    }
    w.into_vec()
}

fn decode(buf: &[u8], inputs: usize) -> Result<Vec<TestOutput>, Error> {
    let view = BatchView::new(buf)?;
    view.check_output_indices(inputs)?;
    Ok(view
        .iter()
        .map(|r| TestOutput {
            input: r.index,
            branch: r.tag,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            timestamp: r.timestamp,
            headers: r
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        v.map(<[u8]>::to_vec),
                    )
                })
                .collect(),
        })
        .collect())
}

/// Runs `op` over `records` as one batch and decodes its output.
pub fn run_processor<P: Processor>(
    op: &mut P,
    records: &[TestRecord],
) -> Result<Vec<TestOutput>, Error> {
    let out = crate::process_batch(op, encode(records))?;
    decode(&out, records.len())
}

/// Folds `values` (key, value) one after another into fresh groups and
/// returns the aggregate after each update, as the host would see them.
pub fn run_aggregator<A: Aggregator>(
    op: &mut A,
    updates: &[(&[u8], &[u8])],
) -> Result<Vec<Vec<u8>>, Error> {
    // Sort stably by key so each group's updates are adjacent, as the host does.
    let mut order: Vec<usize> = (0..updates.len()).collect();
    order.sort_by_key(|&i| updates[i].0);
    let mut w = BatchWriter::new();
    let mut prev: Option<&[u8]> = None;
    for &i in &order {
        let (k, v) = updates[i];
        let key = w.bytes(k);
        let value = w.bytes(v);
        let tag = if prev == Some(k) { 2 } else { 0 };
        prev = Some(k);
        w.entry(eddy_batch::Entry {
            index: i as u32,
            key,
            value,
            tag,
            ..Default::default()
        });
    }
    let out = crate::aggregate_batch(op, w.into_vec())?;
    let view = BatchView::new(&out)?;
    let mut result = vec![Vec::new(); updates.len()];
    for (pos, r) in view.iter().enumerate() {
        result[order[pos]] = r.value.unwrap_or_default().to_vec();
    }
    Ok(result)
}
