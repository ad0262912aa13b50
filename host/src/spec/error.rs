//! Spec errors that point at a file, a line and a key.

use std::path::{Path, PathBuf};

/// One problem in a pipeline spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {}{}", file.display(), line, if key.is_empty() { String::new() } else { format!("`{key}`: ") }, message)]
pub struct SpecError {
    /// The spec file.
    pub file: PathBuf,
    /// 1-based line of the offending key (1 when unknown).
    pub line: usize,
    /// Dotted path of the key, e.g. `steps[1].component`.
    pub key: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// Every problem found in a spec, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct SpecErrors(pub Vec<SpecError>);

/// Turns byte offsets into 1-based line numbers.
#[derive(Debug)]
pub(crate) struct Lines<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Lines { file, text }
    }

    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> SpecError {
        SpecError {
            file: self.file.to_path_buf(),
            line: span.map_or(1, |s| self.line_of(s.start)),
            key: key.into(),
            message: message.into(),
        }
    }
}
