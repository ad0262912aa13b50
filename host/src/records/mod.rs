//! Records as files: the JSON-lines format of `eddy test`.

pub mod jsonl;

pub use jsonl::{JsonlError, OwnedRecord, read_records, write_record};
