//! Checks orders and routes them: branch 0 ("valid") gets each order as
//! `{"id","region","amount"}` keyed by its id, with the region
//! lower-cased; branch 1 ("invalid") gets every other record unchanged,
//! with an `invalid` header saying what is wrong.
//!
//! An order is a JSON object with a string `id`, a non-empty string
//! `region` and a number `amount` of at least 0.

use eddy_sdk::json::Value;
use eddy_sdk::{Error, Operator, Output, Processor, RecordMut, Settings};

/// The operator.
pub struct ValidateOrders;

impl Operator for ValidateOrders {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&[])?;
        Ok(ValidateOrders)
    }
}

/// A valid order (id, region, amount as written), or why the value is not one.
pub fn check(value: Option<&[u8]>) -> Result<(String, String, Value), &'static str> {
    let value = value.ok_or("no value")?;
    let v: Value = serde_json::from_slice(value).map_err(|_| "not JSON")?;
    let id = v.get("id").and_then(Value::as_str).ok_or("no string id")?;
    let region = v
        .get("region")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .ok_or("no region")?;
    let amount = v
        .get("amount")
        .filter(|a| a.is_number())
        .ok_or("no numeric amount")?;
    if amount.as_f64().is_some_and(|a| a < 0.0) {
        return Err("negative amount");
    }
    Ok((id.to_string(), region.trim().to_lowercase(), amount.clone()))
}

impl Processor for ValidateOrders {
    #[inline]
    fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        match check(record.value()) {
            Ok((id, region, amount)) => {
                let order = serde_json::json!({ "id": id, "region": region, "amount": amount });
                out.emit(record)
                    .key(Some(id.as_bytes()))
                    .value_json(&order)?
                    .branch(0)
                    .send();
            }
            Err(why) => {
                out.emit(record)
                    .header("invalid", Some(why.as_bytes()))
                    .branch(1)
                    .send();
            }
        }
        Ok(())
    }
}

eddy_sdk::export_processor!(ValidateOrders);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testing::{TestRecord, run_processor};

    #[test]
    fn valid_orders_go_on_and_the_rest_is_routed_aside() {
        let mut op = ValidateOrders::init(&Settings::default()).unwrap();
        let input = [
            TestRecord::value(r#"{"id":"o1","region":" EU ","amount":12.5}"#),
            TestRecord::value("not json"),
            TestRecord::value(r#"{"id":"o2","region":"us","amount":-1}"#),
        ];
        let out = run_processor(&mut op, &input).unwrap();
        let routes: Vec<(u32, u32)> = out.iter().map(|o| (o.input, o.branch)).collect();
        assert_eq!(routes, [(0, 0), (1, 1), (2, 1)]);
        assert_eq!(out[0].key.as_deref(), Some(&b"o1"[..]));
        assert_eq!(
            out[0].value.as_deref(),
            Some(&br#"{"amount":12.5,"id":"o1","region":"eu"}"#[..])
        );
        assert_eq!(check(Some(b"{\"id\":\"x\"}")), Err("no region"));
    }
}
