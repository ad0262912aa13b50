//! JSON helpers for values.
//!
//! Read a value with [`crate::RecordMut::value_json`], write one with
//! [`crate::RecordBuilder::value_json`]; both go straight between the batch
//! bytes and your types. This module has the pieces for other byte slices.

use crate::Error;

pub use serde_json::{Map, Value, json};

/// Parses JSON bytes (a key, an aggregate, a joined side) into `T`.
pub fn from_slice<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::new(format!("not the expected JSON: {e}")))
}

/// Serializes `value` as JSON into `out` (cleared first), reusing its memory.
pub fn to_vec_into<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.clear();
    serde_json::to_writer(out, value).map_err(|e| Error::new(format!("serializing JSON: {e}")))
}

/// The key of a windowed aggregation's result, as eddy sends it:
/// `{"key":"alice","start":1700000040000,"end":1700000100000}`. For time
/// windows `end` is exclusive; for sliding and session windows inclusive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct WindowedKey {
    /// The record key, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The record key in base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// Window start, ms since the Unix epoch.
    pub start: i64,
    /// Window end, ms since the Unix epoch.
    pub end: i64,
}

impl WindowedKey {
    /// Reads a windowed result's key.
    pub fn parse(key: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(key).map_err(|e| {
            Error::new(format!(
                "not a windowed key ({e}): expected {{\"key\":…,\"start\":…,\"end\":…}}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_keys() {
        let k = WindowedKey::parse(br#"{"key":"alice","start":0,"end":60000}"#).unwrap();
        assert_eq!(k.key.as_deref(), Some("alice"));
        assert_eq!((k.start, k.end), (0, 60_000));
        assert!(WindowedKey::parse(b"alice").is_err());
    }
}
