//! The error an operator returns.

/// Why an operator call failed; the host reports it with the operator's name
/// and the topic, partition and offset of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The settings were rejected (from [`crate::Operator::init`]).
    InvalidSettings(String),
    /// Processing failed, on the record at `input_index` when known.
    Failed {
        /// What went wrong.
        message: String,
        /// The input record it happened on; filled in by the SDK when unset.
        input_index: Option<u32>,
    },
    /// A batch broke the encoding rules (a host or SDK bug, not yours).
    BadBatch(String),
}

impl Error {
    /// A processing failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
            input_index: None,
        }
    }

    /// A settings error with this message.
    pub fn settings(message: impl Into<String>) -> Self {
        Error::InvalidSettings(message.into())
    }

    /// Pins a processing failure to input record `index` unless it is pinned already.
    pub(crate) fn at(self, index: u32) -> Self {
        match self {
            Error::Failed {
                message,
                input_index: None,
            } => Error::Failed {
                message,
                input_index: Some(index),
            },
            other => other,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidSettings(m) => write!(f, "invalid settings: {m}"),
            Error::Failed {
                message,
                input_index: Some(i),
            } => write!(f, "{message} (input record {i})"),
            Error::Failed { message, .. } => f.write_str(message),
            Error::BadBatch(m) => write!(f, "bad batch: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<eddy_batch::BatchError> for Error {
    fn from(e: eddy_batch::BatchError) -> Self {
        Error::BadBatch(e.0)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(format!("JSON: {e}"))
    }
}
