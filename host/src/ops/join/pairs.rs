//! A join's results for one batch, gathered before the joiner runs: keys
//! and values are copied once into one buffer, and the pairs go to the
//! joiner together.

use super::super::{Emitter, NodeError};
use super::builtin;
use crate::topology::{ErrorPolicy, Joiner};
use crate::wasm::{CallError, Chain, ChainError};
use eddy_batch::{BatchView, BatchWriter};

/// Bytes in [`Outputs`]' buffer: start and length.
type Span = (u32, u32);

/// What a result's value is.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// What the joiner makes of these sides (none: no match on that side).
    Join(Option<Span>, Option<Span>),
    /// Null: a table join's tombstone.
    Null,
}

#[derive(Debug)]
struct Out {
    origin: u32,
    key: Option<Span>,
    timestamp: i64,
    /// The input record whose headers the result carries.
    headers: Option<usize>,
    new: Value,
    old: Option<Value>,
}

/// One batch's results, in order.
#[derive(Debug, Default)]
pub struct Outputs {
    bytes: Vec<u8>,
    outs: Vec<Out>,
}

/// What a joined value came to.
#[derive(Debug, Clone, Copy)]
enum Made {
    Value(Span),
    Null,
    Skip,
}

impl Outputs {
    /// Copies `b` in; its span.
    pub fn span(&mut self, b: Option<&[u8]>) -> Option<Span> {
        let b = b?;
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(b);
        Some((at, b.len() as u32))
    }

    /// Adds a result with the record `headers` (an input index) names.
    pub fn push(
        &mut self,
        origin: u32,
        key: Option<&[u8]>,
        timestamp: i64,
        headers: Option<usize>,
        new: Value,
        old: Option<Value>,
    ) {
        let key = self.span(key);
        self.outs.push(Out {
            origin,
            key,
            timestamp,
            headers,
            new,
            old,
        });
    }

    /// Number of results so far (for tests of the matching alone).
    #[cfg(test)]
    pub fn results(&self) -> usize {
        self.outs.len()
    }

    /// Adds a stream join's result: `left` and `right` joined.
    pub fn pair(
        &mut self,
        origin: u32,
        key: Option<&[u8]>,
        (left, right): (Option<&[u8]>, Option<&[u8]>),
        timestamp: i64,
        headers: Option<usize>,
    ) {
        let (l, r) = (self.span(left), self.span(right));
        self.push(origin, key, timestamp, headers, Value::Join(l, r), None);
    }

    fn get(&self, s: Option<Span>) -> Option<&[u8]> {
        s.map(|(at, len)| &self.bytes[at as usize..(at + len) as usize])
    }

    /// Runs the joiner over every pair and emits the results in order.
    pub fn finish(
        self,
        name: &str,
        step: usize,
        joiner: &Joiner,
        input: Option<&BatchView<'_>>,
        chain: &mut Chain,
        out: &mut Emitter,
    ) -> Result<(), NodeError> {
        if self.outs.is_empty() {
            return Ok(());
        }
        // Every value to make, new ones then old ones: (result, new?).
        let wanted: Vec<(usize, bool)> = (0..self.outs.len())
            .flat_map(|i| {
                let o = &self.outs[i];
                let new = matches!(o.new, Value::Join(..)).then_some((i, true));
                let old = matches!(o.old, Some(Value::Join(..))).then_some((i, false));
                new.into_iter().chain(old)
            })
            .collect();
        // The joined values, apart from the inputs they are made of.
        let mut made_bytes = Vec::new();
        let made = match joiner {
            Joiner::Component => self.call(name, step, &wanted, (chain, input), &mut made_bytes)?,
            builtin_joiner => {
                let mut scratch = Vec::new();
                let mut made = Vec::with_capacity(wanted.len());
                for &(i, new) in &wanted {
                    let (l, r) = self.sides(i, new);
                    if builtin::join(builtin_joiner, self.get(l), self.get(r), &mut scratch) {
                        made.push(Made::Value(keep(&mut made_bytes, &scratch)));
                    } else {
                        made.push(Made::Null);
                    }
                }
                made
            }
        };
        let made_get = |s: Span| &made_bytes[s.0 as usize..(s.0 + s.1) as usize];
        let mut new_made = vec![Made::Null; self.outs.len()];
        let mut old_made = vec![Made::Null; self.outs.len()];
        for (&(i, new), m) in wanted.iter().zip(made) {
            if new {
                new_made[i] = m;
            } else {
                old_made[i] = m;
            }
        }
        for (i, o) in self.outs.iter().enumerate() {
            let value = match new_made[i] {
                Made::Skip => continue,
                Made::Value(s) => Some(made_get(s)),
                Made::Null => None,
            };
            let old = match (o.old, old_made[i]) {
                (Some(Value::Join(..)), Made::Value(s)) => Some(made_get(s)),
                _ => None,
            };
            let headers = o.headers.zip(input).map(|(h, view)| view.get(h).headers);
            out.emit(
                o.origin,
                self.get(o.key),
                value,
                old,
                o.timestamp,
                headers.iter().flat_map(|h| h.iter()),
            );
        }
        Ok(())
    }

    fn sides(&self, i: usize, new: bool) -> (Option<Span>, Option<Span>) {
        let o = &self.outs[i];
        match if new { Some(o.new) } else { o.old } {
            Some(Value::Join(l, r)) => (l, r),
            _ => (None, None),
        }
    }

    /// Calls the component joiner once for all `wanted` values; under
    /// `skip` or `dead-letter` a pair it fails on is taken out (counted,
    /// or written to the dead-letter topic) and the rest joined again.
    fn call(
        &self,
        name: &str,
        step: usize,
        wanted: &[(usize, bool)],
        (chain, input): (&mut Chain, Option<&BatchView<'_>>),
        made_bytes: &mut Vec<u8>,
    ) -> Result<Vec<Made>, NodeError> {
        let mut excluded = vec![false; wanted.len()];
        loop {
            let mut w = BatchWriter::new();
            let mut entry_of = Vec::new();
            for (j, &(i, new)) in wanted.iter().enumerate() {
                if excluded[j] {
                    continue;
                }
                let (l, r) = self.sides(i, new);
                let o = &self.outs[i];
                w.record_full(
                    entry_of.len() as u32,
                    self.get(o.key),
                    self.get(l),
                    self.get(r),
                    0,
                    o.timestamp,
                    std::iter::empty(),
                );
                entry_of.push(j);
            }
            if entry_of.is_empty() {
                return Ok(vec![Made::Skip; wanted.len()]);
            }
            let tolerant = *chain.policy(step) != ErrorPolicy::Fail;
            let fail = |error: CallError, at: Option<u32>| {
                NodeError::Operator(ChainError {
                    step: name.to_string(),
                    error,
                    input_index: at
                        .and_then(|e| entry_of.get(e as usize))
                        .map(|&j| self.outs[wanted[j].0].origin),
                })
            };
            let buf = w.finish().to_vec();
            match chain.call(step, &buf) {
                Ok(result) => {
                    let view = BatchView::new(&result)
                        .map_err(|e| fail(CallError::BadBatch(e.0), None))?;
                    let mut made = vec![Made::Skip; wanted.len()];
                    for r in view.iter() {
                        let Some(&j) = entry_of.get(r.index as usize) else {
                            return Err(fail(
                                CallError::BadBatch(format!(
                                    "returned an entry with index {} for a batch of {} pairs",
                                    r.index,
                                    entry_of.len()
                                )),
                                None,
                            ));
                        };
                        made[j] = match r.value {
                            Some(v) => Made::Value(keep(made_bytes, v)),
                            None => Made::Null,
                        };
                    }
                    return Ok(made);
                }
                Err((error, Some(e))) if tolerant && (e as usize) < entry_of.len() => {
                    let j = entry_of[e as usize];
                    let (i, new) = wanted[j];
                    let (l, r) = self.sides(i, new);
                    let o = &self.outs[i];
                    // The dead letter: the left value, the record's headers,
                    // and the right value in a header of its own.
                    let own = o.headers.zip(input).map(|(h, view)| view.get(h).headers);
                    let right = self.get(r).map(|r| (&b"eddy.join.right"[..], Some(r)));
                    let headers = own.iter().flat_map(|h| h.iter()).chain(right);
                    let mut one = BatchWriter::new();
                    one.record_full(
                        0,
                        self.get(o.key),
                        self.get(l),
                        None,
                        0,
                        o.timestamp,
                        headers,
                    );
                    chain.reject(step, error, Some(o.origin), one.finish().to_vec());
                    excluded[j] = true;
                }
                Err((error, at)) => return Err(fail(error, at)),
            }
        }
    }
}

/// Appends `b` to `buf`; its span there.
fn keep(buf: &mut Vec<u8>, b: &[u8]) -> Span {
    let at = buf.len() as u32;
    buf.extend_from_slice(b);
    (at, b.len() as u32)
}
