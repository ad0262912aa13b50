//! Splits sentences into words: the first half of word count. Each word
//! becomes a record keyed by the lower-cased word, valued by the word, with
//! the sentence's timestamp and headers.
//!
//! Settings: `min_length` (default 1): shorter words are skipped.

use eddy_sdk::{Error, Operator, Output, Processor, RecordMut, Settings};

/// The operator.
pub struct SplitWords {
    min_length: usize,
    word: String,
}

impl Operator for SplitWords {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&["min_length"])?;
        Ok(SplitWords {
            min_length: settings.parse_or("min_length", 1)?,
            word: String::new(),
        })
    }
}

impl Processor for SplitWords {
    #[inline]
    fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let Some(text) = record.value_str()? else {
            return Ok(());
        };
        for raw in text.split(|c: char| !c.is_alphanumeric() && c != '\'') {
            let raw = raw.trim_matches('\'');
            if raw.chars().count() < self.min_length || raw.is_empty() {
                continue;
            }
            self.word.clear();
            self.word.extend(raw.chars().flat_map(char::to_lowercase));
            out.emit(record)
                .key(Some(self.word.as_bytes()))
                .value(Some(self.word.as_bytes()))
                .send();
        }
        Ok(())
    }
}

eddy_sdk::export_processor!(SplitWords);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testing::{TestRecord, run_processor};

    #[test]
    fn splits_on_punctuation_and_lowercases() {
        let mut op = SplitWords::init(&Settings::from_pairs([("min_length", "2")])).unwrap();
        let out =
            run_processor(&mut op, &[TestRecord::value("The cat's hat, a HAT!").at(3)]).unwrap();
        let words: Vec<_> = out.iter().map(|o| o.value_str().to_string()).collect();
        assert_eq!(words, ["the", "cat's", "hat", "hat"]);
        assert!(out.iter().all(|o| o.timestamp == 3 && o.key == o.value));
    }
}
