//! Records as files: the JSON-lines format of `eddy test`.

pub mod expect;
pub mod jsonl;

pub use jsonl::{
    InputLine, JsonlError, OwnedRecord, read_input, read_records, read_records_numbered,
    write_record,
};
