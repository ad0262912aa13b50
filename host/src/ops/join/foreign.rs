//! Foreign-key joins of two tables (Kafka Streams' KIP-213,
//! docs/joins-semantics.md §6), in three parts, each in the sub-topology of
//! the table it reads:
//!
//! 1. [`subscribe`]: each change of a left row subscribes it to the right
//!    row its value names (and unsubscribes it from the one it named
//!    before), through a topic keyed by the foreign key;
//! 2. [`answer`]: the right table's task keeps the subscriptions, answers
//!    each with the right row, and answers every subscriber of a right row
//!    when the row changes; answers go to the left row's partition;
//! 3. [`result`]: an answer becomes a result only if the left row is still
//!    the one that asked (a hash of its value), so answers that crossed a
//!    later change of the row are dropped, never applied out of order.

use super::super::aggregate::state_err;
use super::super::group::field_key;
use super::super::{Dropped, Emitter, NodeError, Records};
use super::{LEFT, Outputs, Value};
use crate::state::{TaskState, keys};
use sha2::{Digest, Sha256};

/// What a subscription asks of the right table's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Instruction {
    /// Unsubscribe; no answer (the row subscribes elsewhere too).
    DeleteNoAnswer = 0,
    /// Unsubscribe and answer with no right row (the result is deleted).
    DeleteAndAnswer = 1,
    /// Subscribe; answer with the right row or with none.
    AnswerAlways = 2,
    /// Subscribe; answer only if the right row exists.
    AnswerIfFound = 3,
}

impl Instruction {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Instruction::DeleteNoAnswer,
            1 => Instruction::DeleteAndAnswer,
            2 => Instruction::AnswerAlways,
            3 => Instruction::AnswerIfFound,
            _ => return None,
        })
    }
}

/// Bytes of a left value's hash.
const HASH: usize = 16;

/// The hash answers carry to tell the left value they were made for.
pub fn hash(value: &[u8]) -> [u8; HASH] {
    let d = Sha256::digest(value);
    let mut h = [0; HASH];
    h.copy_from_slice(&d[..HASH]);
    h
}

/// A subscription's value: instruction, hash of the new left value (none
/// for a delete), the left row's partition, the left row's key.
fn encode_subscription(
    out: &mut Vec<u8>,
    i: Instruction,
    hash: Option<&[u8; HASH]>,
    partition: i32,
    pk: &[u8],
) {
    out.clear();
    out.push(i as u8);
    put_hash(out, hash);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(pk);
}

fn put_hash(out: &mut Vec<u8>, hash: Option<&[u8; HASH]>) {
    match hash {
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h);
        }
        None => out.push(0),
    }
}

/// Reads a hash written by `put_hash`; the rest.
fn take_hash(b: &[u8]) -> Option<(Option<[u8; HASH]>, &[u8])> {
    match b.first()? {
        0 => Some((None, &b[1..])),
        1 => {
            let h: [u8; HASH] = b.get(1..1 + HASH)?.try_into().ok()?;
            Some((Some(h), &b[1 + HASH..]))
        }
        _ => None,
    }
}

/// A decoded subscription: instruction, hash, partition, left key.
type Subscription<'a> = (Instruction, Option<[u8; HASH]>, i32, &'a [u8]);

fn decode_subscription(b: &[u8]) -> Option<Subscription<'_>> {
    let i = Instruction::from_byte(*b.first()?)?;
    let (h, rest) = take_hash(&b[1..])?;
    let p = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    Some((i, h, p, &rest[4..]))
}

/// An answer's value: the partition it goes to (first, so the producer
/// can read it), the hash it answers, and the right value if there is one.
fn encode_answer(
    out: &mut Vec<u8>,
    partition: i32,
    hash: Option<&[u8; HASH]>,
    right: Option<&[u8]>,
) {
    out.clear();
    out.extend_from_slice(&partition.to_be_bytes());
    put_hash(out, hash);
    if let Some(r) = right {
        out.push(1);
        out.extend_from_slice(r);
    } else {
        out.push(0);
    }
}

/// The partition an answer goes to.
pub fn answer_partition(value: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

/// A decoded answer: the hash it answers, the right value.
type Answer<'a> = (Option<[u8; HASH]>, Option<&'a [u8]>);

fn decode_answer(b: &[u8]) -> Option<Answer<'_>> {
    let (h, rest) = take_hash(b.get(4..)?)?;
    match rest.first()? {
        0 => Some((h, None)),
        1 => Some((h, Some(&rest[1..]))),
        _ => None,
    }
}

/// A subscription store key: the foreign key's length, the foreign key,
/// the left key, so one right row's subscribers are one key range.
fn subscription_key(fk: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut k = fk_prefix(fk);
    k.extend_from_slice(pk);
    k
}

fn fk_prefix(fk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + fk.len() + 16);
    k.extend_from_slice(&(fk.len() as u32).to_be_bytes());
    k.extend_from_slice(fk);
    k
}

/// The smallest key after every key starting with `prefix` (none: no end).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn corrupt(name: &str, what: &str) -> NodeError {
    NodeError::Internal {
        step: name.to_string(),
        message: format!(
            "a {what} record of this foreign-key join is not in eddy's format; its internal topics hold records of something else (reset the application: eddy reset)"
        ),
    }
}

/// Left table changes (new value, old value as aux) become subscriptions
/// keyed by foreign key, by Kafka Streams' rules for an inner or a left
/// join (`SubscriptionSendProcessorSupplier`).
pub fn subscribe(
    pointer: &str,
    left_join: bool,
    partition: i32,
    input: &Records,
    out: &mut Emitter,
    dropped: &mut Dropped,
) {
    let mut buf = Vec::new();
    for (i, r) in input.view().iter().enumerate() {
        let Some(pk) = r.key else { continue };
        let (new, old) = (r.value, r.aux);
        let old_fk = old.and_then(|v| field_key(Some(v), pointer));
        let new_fk = new.and_then(|v| field_key(Some(v), pointer));
        let hash = new.map(hash);
        let mut send = |fk: Option<&[u8]>, ins: Instruction| {
            encode_subscription(&mut buf, ins, hash.as_ref(), partition, pk);
            let h = r.headers.iter();
            out.emit(input.origins[i], fk, Some(&buf), None, r.timestamp, h);
        };
        if left_join {
            if new.is_none() && old.is_none() {
                continue;
            }
            if let Some(o) = &old_fk
                && new_fk.as_ref() != Some(o)
            {
                send(Some(o), Instruction::DeleteNoAnswer);
            }
            // A null foreign key still gets its answer (no right row).
            send(new_fk.as_deref(), Instruction::AnswerAlways);
            continue;
        }
        match (new, new_fk, old_fk) {
            (Some(_), None, old_fk) => {
                dropped.no_key += 1;
                if let Some(o) = old_fk {
                    send(Some(&o), Instruction::DeleteAndAnswer);
                }
            }
            (Some(_), Some(f), Some(o)) if f != o => {
                send(Some(&o), Instruction::DeleteNoAnswer);
                send(Some(&f), Instruction::AnswerAlways);
            }
            (Some(_), Some(f), _) => send(Some(&f), Instruction::AnswerIfFound),
            (None, _, Some(o)) => send(Some(&o), Instruction::DeleteAndAnswer),
            (None, _, None) => {}
        }
    }
}

/// Subscriptions (tag left) are kept in `subscriptions` and answered with
/// the row of `right`; changes of the right table (tag right) answer each
/// of the row's subscribers, in left key order. Answers are keyed by the
/// left key and name the left row's partition.
pub fn answer(
    name: &str,
    (subscriptions, right): (usize, usize),
    input: &Records,
    state: &mut TaskState,
    out: &mut Emitter,
    dropped: &mut Dropped,
) -> Result<(), NodeError> {
    let mut buf = Vec::new();
    for (i, r) in input.view().iter().enumerate() {
        let origin = input.origins[i];
        if r.tag == LEFT {
            let v = r.value.ok_or_else(|| corrupt(name, "subscription"))?;
            let (ins, h, partition, pk) =
                decode_subscription(v).ok_or_else(|| corrupt(name, "subscription"))?;
            let Some(fk) = r.key else {
                // Only a left join's null foreign key is answered (with no row).
                if ins == Instruction::AnswerAlways {
                    encode_answer(&mut buf, partition, h.as_ref(), None);
                    out.emit(
                        origin,
                        Some(pk),
                        Some(&buf),
                        None,
                        r.timestamp,
                        r.headers.iter(),
                    );
                } else {
                    dropped.no_key += 1;
                }
                continue;
            };
            let key = subscription_key(fk, pk);
            match ins {
                Instruction::DeleteNoAnswer | Instruction::DeleteAndAnswer => {
                    state.put(subscriptions, &key, None, r.timestamp);
                }
                Instruction::AnswerAlways | Instruction::AnswerIfFound => {
                    let mut kept = Vec::with_capacity(1 + HASH + 4);
                    put_hash(&mut kept, h.as_ref());
                    kept.extend_from_slice(&partition.to_be_bytes());
                    let kept = keys::encode_value(r.timestamp, &kept);
                    state.put(subscriptions, &key, Some(kept), r.timestamp);
                }
            }
            let found = super::tables::row(name, state, right, fk)?;
            let ts = found
                .as_ref()
                .map_or(r.timestamp, |(rts, _)| r.timestamp.max(*rts));
            let value = found.as_ref().map(|(_, v)| v.as_slice());
            let send = match ins {
                Instruction::DeleteNoAnswer => false,
                Instruction::DeleteAndAnswer => {
                    encode_answer(&mut buf, partition, h.as_ref(), None);
                    true
                }
                Instruction::AnswerAlways => {
                    encode_answer(&mut buf, partition, h.as_ref(), value);
                    true
                }
                Instruction::AnswerIfFound => {
                    encode_answer(&mut buf, partition, h.as_ref(), value);
                    value.is_some()
                }
            };
            if send {
                out.emit(origin, Some(pk), Some(&buf), None, ts, r.headers.iter());
            }
            continue;
        }
        let Some(fk) = r.key else {
            dropped.no_key += 1;
            continue;
        };
        // Subscriptions written earlier in this batch: to the backend
        // first, so the range read needs no merge.
        if state.pending(subscriptions) {
            state
                .write_through(subscriptions)
                .map_err(|e| state_err(name, e))?;
        }
        let prefix = fk_prefix(fk);
        let end = prefix_end(&prefix);
        let mut subscribers: Vec<(Vec<u8>, Option<[u8; HASH]>, i32)> = Vec::new();
        let mut bad = false;
        state
            .scan(subscriptions, false, &prefix, end.as_deref(), |k, v| {
                let kept = keys::decode_value(v).map(|(_, kept)| kept);
                match kept.and_then(take_hash) {
                    Some((h, rest)) if rest.len() == 4 => {
                        let p = i32::from_be_bytes(rest.try_into().expect("4 bytes"));
                        subscribers.push((k[prefix.len()..].to_vec(), h, p));
                    }
                    _ => bad = true,
                }
                !bad
            })
            .map_err(|e| state_err(name, e))?;
        if bad {
            return Err(corrupt(name, "subscription store"));
        }
        for (pk, h, partition) in subscribers {
            encode_answer(&mut buf, partition, h.as_ref(), r.value);
            out.emit(
                origin,
                Some(&pk),
                Some(&buf),
                None,
                r.timestamp,
                r.headers.iter(),
            );
        }
    }
    Ok(())
}

/// Answers whose hash still matches the left row in `left` become results
/// (`ResponseJoinProcessorSupplier`): the joined row, or a tombstone when
/// there is no right row (inner join) or no left row; stale answers are
/// dropped. Results carry no headers, as in Kafka Streams.
pub fn result(
    name: &str,
    left_join: bool,
    left: usize,
    input: &Records,
    state: &TaskState,
    outs: &mut Outputs,
) -> Result<(), NodeError> {
    for (i, r) in input.view().iter().enumerate() {
        let (Some(pk), Some(v)) = (r.key, r.value) else {
            return Err(corrupt(name, "response"));
        };
        let (h, right) = decode_answer(v).ok_or_else(|| corrupt(name, "response"))?;
        let current = super::tables::row(name, state, left, pk)?;
        let current_hash = current.as_ref().map(|(_, v)| hash(v));
        if h != current_hash {
            continue; // made for a value the row no longer has
        }
        let origin = input.origins[i];
        if right.is_none() && (!left_join || current.is_none()) {
            outs.push(origin, Some(pk), r.timestamp, None, Value::Null, None);
        } else {
            let l = current.as_ref().map(|(_, v)| v.as_slice());
            outs.pair(origin, Some(pk), (l, right), r.timestamp, None);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let mut b = Vec::new();
        let h = hash(b"{\"p\":\"a\"}");
        encode_subscription(&mut b, Instruction::AnswerIfFound, Some(&h), 3, b"pk");
        assert_eq!(
            decode_subscription(&b),
            Some((Instruction::AnswerIfFound, Some(h), 3, &b"pk"[..]))
        );
        encode_subscription(&mut b, Instruction::DeleteAndAnswer, None, 0, b"");
        assert_eq!(
            decode_subscription(&b),
            Some((Instruction::DeleteAndAnswer, None, 0, &b""[..]))
        );
        encode_answer(&mut b, 7, Some(&h), Some(b"r"));
        assert_eq!(answer_partition(&b), Some(7));
        assert_eq!(decode_answer(&b), Some((Some(h), Some(&b"r"[..]))));
        encode_answer(&mut b, 1, None, None);
        assert_eq!(decode_answer(&b), Some((None, None)));
        assert_eq!(decode_subscription(&[9]), None);
    }

    #[test]
    fn one_right_rows_subscribers_are_one_key_range() {
        let a = subscription_key(b"ab", b"x");
        let b = subscription_key(b"abc", b"");
        let p = fk_prefix(b"ab");
        assert!(a.starts_with(&p) && !b.starts_with(&p));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
