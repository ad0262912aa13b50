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
