//! The batch encoding that carries records across the eddy operator boundary.
//!
//! A batch is one byte buffer: a 24-byte preamble, byte ranges for keys,
//! values and headers, a table of 48-byte entries and a table of 16-byte
//! headers. `wit/operator.wit` specifies it byte by byte; this crate is the one
//! implementation of it, shared by the host and the guest SDK so both sides
//! check every offset the same way.
//!
//! - [`BatchWriter`] builds a batch (the host encodes polled records with it;
//!   the SDK appends new outputs with it).
//! - [`BatchView`] validates a batch once and then hands out borrowed records.
#![deny(missing_docs)]

mod layout;
mod view;
mod writer;

pub use layout::{
    ENTRY_SIZE, Entry, HEADER_SIZE, HeaderEntry, Layout, MAGIC, NONE, PREAMBLE_SIZE, Span,
};
pub use view::{BatchView, HeadersRef, RecordRef};
pub use writer::BatchWriter;

/// A rule of the encoding that a buffer breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError(pub String);

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BatchError {}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, BatchError>;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(BatchError(msg.into()))
}
