//! Routes each record to a branch by the size of its value: branch 0
//! ("small") below `threshold` bytes, branch 1 ("large") at or above it.
//! Tombstones go to both branches, so deletes reach every sink.
//!
//! Settings: `threshold` (bytes, required).

use eddy_sdk::{Error, Operator, Output, Processor, RecordMut, Settings};

/// The operator.
pub struct RouteBySize {
    threshold: usize,
}

impl Operator for RouteBySize {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&["threshold"])?;
        let threshold = settings.require("threshold")?;
        let threshold = threshold
            .parse()
            .map_err(|e| Error::settings(format!("threshold {threshold:?}: {e}")))?;
        Ok(RouteBySize { threshold })
    }
}

impl Processor for RouteBySize {
    #[inline]
    fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        match record.value() {
            None => {
                out.forward_to(0, record);
                out.forward_to(1, record);
            }
            Some(v) => out.forward_to(u32::from(v.len() >= self.threshold), record),
        }
        Ok(())
    }
}

eddy_sdk::export_processor!(RouteBySize);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testing::{TestRecord, run_processor};

    #[test]
    fn routes_by_threshold() {
        let mut op = RouteBySize::init(&Settings::from_pairs([("threshold", "4")])).unwrap();
        let input = [
            TestRecord::value("abc"),
            TestRecord::value("abcd"),
            TestRecord {
                key: Some(b"k".to_vec()),
                ..Default::default()
            },
        ];
        let out = run_processor(&mut op, &input).unwrap();
        assert_eq!(
            out.iter().map(|o| (o.input, o.branch)).collect::<Vec<_>>(),
            vec![(0, 0), (1, 1), (2, 0), (2, 1)]
        );
        assert!(RouteBySize::init(&Settings::default()).is_err());
    }
}
