//! Byte layouts of what stores keep (also the key and value format of
//! their changelog records):
//!
//! - a stored value is the timestamp of its last update (8 bytes, big
//!   endian) followed by the value bytes (Kafka Streams' timestamped stores);
//! - a key-value store's key is the record key as it is;
//! - a window store's key is `len(key)` (4 bytes, big endian), the key, then
//!   the window start and end (8 bytes each, big endian with the sign bit
//!   flipped, so negative times sort first): all windows of one key are one
//!   range, in start order;
//! - a window store's time index key is end, start, key: windows in the
//!   order they close, then by start, then by key bytes (Kafka Streams'
//!   order for final results).

/// Prepends the update's timestamp to a value.
pub fn encode_value(timestamp: i64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&timestamp.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// Splits a stored value into its timestamp and bytes.
pub fn decode_value(stored: &[u8]) -> Option<(i64, &[u8])> {
    let (ts, v) = stored.split_at_checked(8)?;
    Some((i64::from_be_bytes(ts.try_into().ok()?), v))
}

fn time(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn untime(b: &[u8]) -> i64 {
    (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

/// The prefix every window of `key` starts with.
pub fn key_prefix(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len() + 16);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The store key of window `[start, end]` of `key`.
pub fn window_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut k = key_prefix(key);
    k.extend_from_slice(&time(start));
    k.extend_from_slice(&time(end));
    k
}

/// The smallest store key of `key`'s windows starting at or after `start`.
pub fn window_key_from(key: &[u8], start: i64) -> Vec<u8> {
    let mut k = key_prefix(key);
    k.extend_from_slice(&time(start));
    k
}

/// Splits a window store key into key, start and end.
pub fn split_window_key(k: &[u8]) -> Option<(&[u8], i64, i64)> {
    let len = u32::from_be_bytes(k.get(..4)?.try_into().ok()?) as usize;
    if k.len() != 4 + len + 16 {
        return None;
    }
    let key = &k[4..4 + len];
    Some((key, untime(&k[4 + len..12 + len]), untime(&k[12 + len..])))
}

/// The time index key of window `[start, end]` of `key`.
pub fn time_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + key.len());
    k.extend_from_slice(&time(end));
    k.extend_from_slice(&time(start));
    k.extend_from_slice(key);
    k
}

/// The first time index key of windows ending at or after `end`.
pub fn time_key_from(end: i64) -> Vec<u8> {
    time(end).to_vec()
}

/// Splits a time index key into key, start and end.
pub fn split_time_key(k: &[u8]) -> Option<(&[u8], i64, i64)> {
    if k.len() < 16 {
        return None;
    }
    Some((&k[16..], untime(&k[8..16]), untime(&k[..8])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn window_keys_round_trip_and_sort_by_key_then_start(
            a in proptest::collection::vec(any::<u8>(), 0..8),
            b in proptest::collection::vec(any::<u8>(), 0..8),
            s1 in any::<i64>(), s2 in any::<i64>(), e in any::<i64>(),
        ) {
            let k1 = window_key(&a, s1, e);
            prop_assert_eq!(split_window_key(&k1), Some((&a[..], s1, e)));
            let t1 = time_key(&a, s1, e);
            prop_assert_eq!(split_time_key(&t1), Some((&a[..], s1, e)));
            // Same key: windows sort by start; all inside the key's range.
            let k2 = window_key(&a, s2, e);
            prop_assert_eq!(k1.cmp(&k2), s1.cmp(&s2));
            prop_assert!(k1.starts_with(&key_prefix(&a)));
            prop_assert!(k1 >= window_key_from(&a, s1));
            // Another key never falls inside this key's range.
            if a != b {
                let other = window_key(&b, s2, e);
                prop_assert!(!other.starts_with(&key_prefix(&a)));
            }
        }

        #[test]
        fn time_keys_sort_by_end(s in any::<i64>(), e1 in any::<i64>(), e2 in any::<i64>()) {
            prop_assert_eq!(time_key(b"k", s, e1).cmp(&time_key(b"k", s, e2)), e1.cmp(&e2));
            prop_assert!(time_key(b"k", s, e1) >= time_key_from(e1));
        }
    }

    #[test]
    fn values_carry_their_timestamp() {
        let v = encode_value(-5, b"agg");
        assert_eq!(decode_value(&v), Some((-5, &b"agg"[..])));
        assert_eq!(decode_value(b"short"), None);
    }
}
