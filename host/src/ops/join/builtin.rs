//! The built-in joiners: what a plain enrichment needs, without Wasm.
//!
//! They never fail. Values are read as JSON; a value that is not JSON is
//! taken as a JSON string of its text (as `eddy test` prints it). `merge`
//! puts a side that is not a JSON object under its side's name, so nothing
//! is lost silently.

use crate::topology::Joiner;
use serde_json::{Map, Value};

/// A side's bytes as JSON: the parsed value, or the text as a string.
fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Joins `left` and `right` (none: the side found no match) into `out`;
/// returns false for a null result.
pub fn join(joiner: &Joiner, left: Option<&[u8]>, right: Option<&[u8]>, out: &mut Vec<u8>) -> bool {
    out.clear();
    let side = |v: Option<&[u8]>| v.map_or(Value::Null, json);
    let value = match joiner {
        Joiner::Left => return keep(left, out),
        Joiner::Right => return keep(right, out),
        Joiner::Component => unreachable!("a component joiner runs in Wasm"),
        Joiner::Pair => {
            let mut m = Map::new();
            m.insert("left".into(), side(left));
            m.insert("right".into(), side(right));
            Value::Object(m)
        }
        Joiner::Merge { into: Some(field) } => {
            let mut m = match left.map(json) {
                Some(Value::Object(m)) => m,
                None => Map::new(),
                Some(other) => Map::from_iter([("left".to_string(), other)]),
            };
            m.insert(field.clone(), side(right));
            Value::Object(m)
        }
        Joiner::Merge { into: None } => {
            let mut m = Map::new();
            for (name, v) in [("left", left), ("right", right)] {
                match v.map(json) {
                    None => {}
                    Some(Value::Object(fields)) => {
                        for (k, v) in fields {
                            // The left's fields win: the enriched record keeps its own.
                            m.entry(k).or_insert(v);
                        }
                    }
                    Some(other) => {
                        m.entry(name.to_string()).or_insert(other);
                    }
                }
            }
            Value::Object(m)
        }
    };
    serde_json::to_writer(&mut *out, &value).expect("writing JSON to memory");
    true
}

fn keep(v: Option<&[u8]>, out: &mut Vec<u8>) -> bool {
    match v {
        Some(v) => {
            out.extend_from_slice(v);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(j: &Joiner, l: Option<&str>, r: Option<&str>) -> Option<String> {
        let mut out = Vec::new();
        join(j, l.map(str::as_bytes), r.map(str::as_bytes), &mut out)
            .then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn pair_renders_each_side_as_json_or_text() {
        assert_eq!(
            run(&Joiner::Pair, Some("a"), Some("{\"x\": 1}")).unwrap(),
            r#"{"left":"a","right":{"x":1}}"#
        );
        assert_eq!(
            run(&Joiner::Pair, Some("2"), None).unwrap(),
            r#"{"left":2,"right":null}"#
        );
    }

    #[test]
    fn merge_flattens_with_the_left_fields_winning() {
        let m = Joiner::Merge { into: None };
        assert_eq!(
            run(
                &m,
                Some(r#"{"id":1,"q":2}"#),
                Some(r#"{"id":9,"name":"n"}"#)
            )
            .unwrap(),
            r#"{"id":1,"name":"n","q":2}"#
        );
        assert_eq!(run(&m, Some(r#"{"id":1}"#), None).unwrap(), r#"{"id":1}"#);
        assert_eq!(
            run(&m, Some("text"), Some(r#"{"a":1}"#)).unwrap(),
            r#"{"a":1,"left":"text"}"#
        );
    }

    #[test]
    fn merge_as_puts_the_right_value_under_a_field() {
        let m = Joiner::Merge {
            into: Some("customer".into()),
        };
        assert_eq!(
            run(&m, Some(r#"{"id":1}"#), Some(r#"{"name":"n"}"#)).unwrap(),
            r#"{"customer":{"name":"n"},"id":1}"#
        );
        assert_eq!(
            run(&m, Some(r#"{"id":1}"#), None).unwrap(),
            r#"{"customer":null,"id":1}"#
        );
        assert_eq!(run(&m, None, Some("7")).unwrap(), r#"{"customer":7}"#);
    }

    #[test]
    fn left_and_right_keep_one_side_as_it_is() {
        assert_eq!(run(&Joiner::Left, Some("a b"), Some("c")).unwrap(), "a b");
        assert_eq!(run(&Joiner::Right, Some("a"), None), None);
    }
}
