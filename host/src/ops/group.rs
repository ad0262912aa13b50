//! `group_by` on a field: the grouping key read from the value at a JSON
//! pointer. A string field's key is its text; any other JSON value's key is
//! its JSON text. A record whose value lacks the field (or is not JSON) has
//! no grouping key and is dropped, as Kafka Streams drops null keys before
//! an aggregation.
//!
//! On a table (Kafka Streams' `KTable#groupBy`), a change whose old and new
//! values map to the same key stays one record (subtract old, add new); when
//! the key moves, the old value leaves its group first, then the new value
//! joins its group: two records.

use super::{Dropped, Emitter, Records};

/// The grouping key of a JSON value, if it has the field.
pub fn field_key(value: Option<&[u8]>, pointer: &str) -> Option<Vec<u8>> {
    let json: serde_json::Value = serde_json::from_slice(value?).ok()?;
    match json.pointer(pointer)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone().into_bytes()),
        other => Some(other.to_string().into_bytes()),
    }
}

/// Re-keys `input` by the field at `pointer`.
pub fn group_by_field(
    input: &Records,
    pointer: &str,
    table: bool,
    dropped: &mut Dropped,
) -> Records {
    let view = input.view();
    let mut out = Emitter::new();
    for (i, r) in view.iter().enumerate() {
        let origin = input.origins[i];
        let headers = r.headers.iter();
        if !table {
            match field_key(r.value, pointer) {
                Some(k) => out.emit(origin, Some(&k), r.value, None, r.timestamp, headers),
                None => dropped.no_key += 1,
            }
            continue;
        }
        let new_key = r.value.and_then(|v| field_key(Some(v), pointer));
        let old_key = r.aux.and_then(|v| field_key(Some(v), pointer));
        match (old_key, new_key) {
            (Some(o), Some(n)) if o == n => {
                out.emit(origin, Some(&n), r.value, r.aux, r.timestamp, headers);
            }
            (o, n) => {
                if o.is_none() && n.is_none() {
                    dropped.no_key += 1;
                }
                if let Some(o) = o {
                    out.emit(origin, Some(&o), None, r.aux, r.timestamp, r.headers.iter());
                }
                if let Some(n) = n {
                    out.emit(
                        origin,
                        Some(&n),
                        r.value,
                        None,
                        r.timestamp,
                        r.headers.iter(),
                    );
                }
            }
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_batch::BatchWriter;

    #[test]
    fn keys_from_fields() {
        assert_eq!(
            field_key(Some(br#"{"r":"eu"}"#), "/r"),
            Some(b"eu".to_vec())
        );
        assert_eq!(field_key(Some(br#"{"r":7}"#), "/r"), Some(b"7".to_vec()));
        assert_eq!(field_key(Some(br#"{"r":null}"#), "/r"), None);
        assert_eq!(field_key(Some(b"not json"), "/r"), None);
        assert_eq!(field_key(None, "/r"), None);
    }

    #[test]
    fn a_row_moving_group_leaves_the_old_group_first() {
        let mut w = BatchWriter::new();
        // acc1 moves from eu to us; acc2 stays in eu; acc3 is deleted.
        w.record_full(
            0,
            Some(b"acc1"),
            Some(br#"{"r":"us","b":5}"#),
            Some(br#"{"r":"eu","b":5}"#),
            0,
            10,
            [],
        );
        w.record_full(
            1,
            Some(b"acc2"),
            Some(br#"{"r":"eu","b":3}"#),
            Some(br#"{"r":"eu","b":1}"#),
            0,
            11,
            [],
        );
        w.record_full(
            2,
            Some(b"acc3"),
            None,
            Some(br#"{"r":"us","b":2}"#),
            0,
            12,
            [],
        );
        let input = Records::new(w.into_vec(), vec![7, 8, 9]);
        let mut dropped = Dropped::default();
        let out = group_by_field(&input, "/r", true, &mut dropped);
        let got: Vec<_> = out
            .view()
            .iter()
            .map(|r| {
                (
                    r.key.unwrap().to_vec(),
                    r.value.is_some(),
                    r.aux.is_some(),
                    r.timestamp,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (b"eu".to_vec(), false, true, 10),
                (b"us".to_vec(), true, false, 10),
                (b"eu".to_vec(), true, true, 11),
                (b"us".to_vec(), false, true, 12),
            ]
        );
        assert_eq!(out.origins, vec![7, 7, 8, 9]);
    }
}
