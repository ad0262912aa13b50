//! Sums a number field of JSON values per group: the total balance per
//! region of a table of accounts. When an account's balance changes, or it
//! moves to another region, eddy calls `subtract` with its old value (on its
//! old region) and `add` with its new one, so totals stay right.
//!
//! Settings: `field`, a JSON pointer to the number (default `/balance`).

use eddy_sdk::{Aggregator, Error, Operator, Settings, json};

/// The operator.
pub struct RegionBalance {
    field: String,
}

impl RegionBalance {
    fn amount(&self, value: Option<&[u8]>) -> Result<i64, Error> {
        let Some(v) = value else { return Ok(0) };
        let doc: json::Value = json::from_slice(v)?;
        doc.pointer(&self.field)
            .and_then(json::Value::as_i64)
            .ok_or_else(|| Error::new(format!("no whole number at {} in the value", self.field)))
    }
}

impl Operator for RegionBalance {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&["field"])?;
        let field = settings.get("field").unwrap_or("/balance").to_string();
        if !field.starts_with('/') {
            return Err(Error::settings(format!(
                "field {field:?} is not a JSON pointer; write e.g. \"/balance\""
            )));
        }
        Ok(RegionBalance { field })
    }
}

impl Aggregator for RegionBalance {
    fn initialize(&mut self, _key: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        Ok(b"0".to_vec())
    }

    fn add(
        &mut self,
        _: Option<&[u8]>,
        value: Option<&[u8]>,
        agg: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let total: i64 = json::from_slice(agg)?;
        json::to_vec_into(&(total + self.amount(value)?), agg)
    }

    fn subtract(
        &mut self,
        _: Option<&[u8]>,
        value: Option<&[u8]>,
        agg: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let total: i64 = json::from_slice(agg)?;
        json::to_vec_into(&(total - self.amount(value)?), agg)
    }

    fn merge(&mut self, _: Option<&[u8]>, other: &[u8], agg: &mut Vec<u8>) -> Result<(), Error> {
        let a: i64 = json::from_slice(agg)?;
        let b: i64 = json::from_slice(other)?;
        json::to_vec_into(&(a + b), agg)
    }
}

eddy_sdk::export_aggregator!(RegionBalance);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testing::run_aggregator;

    #[test]
    fn sums_per_region() {
        let mut op = RegionBalance::init(&Settings::from_pairs([])).unwrap();
        let out = run_aggregator(
            &mut op,
            &[
                (b"eu", br#"{"balance":100}"#),
                (b"us", br#"{"balance":5}"#),
                (b"eu", br#"{"balance":20}"#),
            ],
        )
        .unwrap();
        assert_eq!(out, vec![b"100".to_vec(), b"5".to_vec(), b"120".to_vec()]);
    }
}
