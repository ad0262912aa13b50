//! The stored form of a stream–stream join's entries: the values of one
//! (key, time) in arrival order in one value, and the unmatched store's
//! keys.

use crate::state::keys;

/// The values of one (key, time) entry, in arrival order.
pub fn values(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = list;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_at_checked(4)?;
        let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
        let (v, tail) = tail.split_at_checked(len)?;
        rest = tail;
        Some(v)
    })
}

/// `stored` (a list, or none) with `value` appended, as stored bytes.
pub fn appended(stored: Option<&[u8]>, ts: i64, value: &[u8]) -> Vec<u8> {
    let list = stored
        .and_then(keys::decode_value)
        .map_or(&[][..], |(_, l)| l);
    let mut out = Vec::with_capacity(8 + list.len() + 4 + value.len());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(list);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The unmatched store's key: time, side (right sorts first), key.
pub fn unmatched_key(ts: i64, left: bool, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
    k.push(u8::from(left));
    k.extend_from_slice(key);
    k
}

/// Splits an unmatched store key into time, side (true: left) and key.
pub fn split_unmatched_key(k: &[u8]) -> Option<(i64, bool, &[u8])> {
    let ts = (u64::from_be_bytes(k.get(..8)?.try_into().ok()?) ^ (1 << 63)) as i64;
    Some((ts, *k.get(8)? == 1, &k[9..]))
}
