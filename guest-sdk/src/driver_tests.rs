//! Unit tests of the guest's batch driver.

use crate::testing::{TestRecord, run_aggregator, run_processor};
use crate::{Aggregator, Error, Operator, Output, Processor, RecordMut, Settings};

struct Upper;
impl Operator for Upper {
    fn init(_: &Settings) -> Result<Self, Error> {
        Ok(Upper)
    }
}
impl Processor for Upper {
    fn process(&mut self, r: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        if r.value() == Some(b"drop") {
            return Ok(());
        }
        if let Some(v) = r.value_mut() {
            v.make_ascii_uppercase();
        }
        r.set_timestamp(r.timestamp() + 1);
        out.forward(r);
        Ok(())
    }
}

struct Split;
impl Operator for Split {
    fn init(_: &Settings) -> Result<Self, Error> {
        Ok(Split)
    }
}
impl Processor for Split {
    fn process(&mut self, r: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let Some(text) = r.value_str()? else {
            return Ok(());
        };
        for (n, word) in text.split_whitespace().enumerate() {
            out.emit(r)
                .key(Some(word.as_bytes()))
                .value(Some(b"1"))
                .branch(n as u32 % 2)
                .header("n", Some(n.to_string().as_bytes()))
                .send();
        }
        if text.contains("fail") {
            return Err(Error::new("asked to fail"));
        }
        Ok(())
    }
}

/// Forwards each record as many times as its value says: "0" drops it.
struct Repeat;
impl Operator for Repeat {
    fn init(_: &Settings) -> Result<Self, Error> {
        Ok(Repeat)
    }
}
impl Processor for Repeat {
    fn process(&mut self, r: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let times: u32 = r.value_str()?.unwrap_or("0").parse().unwrap_or(0);
        for b in 0..times {
            out.forward_to(b, r);
        }
        Ok(())
    }
}

#[test]
fn outputs_that_outgrow_the_inputs_read_move_out_of_place_in_order() {
    // Dropped, then kept in place, then three outputs for input 2 (more
    // than the inputs read so far), then in place again.
    for counts in [
        &["0", "1", "3", "1", "2"][..],
        &["1", "1", "1"],
        &["4"],
        &["0", "0"],
    ] {
        let input: Vec<_> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| TestRecord::key_value(format!("k{i}"), c).at(i as i64))
            .collect();
        let out = run_processor(&mut Repeat, &input).unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|o| (o.input, o.branch, o.key.clone().unwrap(), o.timestamp))
            .collect();
        let want: Vec<_> = counts
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                (0..c.parse::<u32>().unwrap())
                    .map(move |b| (i as u32, b, format!("k{i}").into_bytes(), i as i64))
            })
            .collect();
        assert_eq!(got, want, "counts {counts:?}");
    }
}

#[test]
fn in_place_map_and_filter_keep_order_keys_headers() {
    let input = [
        TestRecord::key_value("k0", "abc").at(5).header("h", "x"),
        TestRecord::key_value("k1", "drop"),
        TestRecord {
            key: None,
            value: None,
            timestamp: 7,
            headers: vec![],
        },
        TestRecord::value("zz"),
    ];
    let out = run_processor(&mut Upper, &input).unwrap();
    assert_eq!(
        out.iter().map(|o| o.input).collect::<Vec<_>>(),
        vec![0, 2, 3]
    );
    assert_eq!(out[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(out[0].value_str(), "ABC");
    assert_eq!(out[0].timestamp, 6);
    assert_eq!(out[0].headers, vec![("h".to_string(), Some(b"x".to_vec()))]);
    assert_eq!(
        (out[1].key.as_ref(), out[1].value.as_ref(), out[1].timestamp),
        (None, None, 8)
    );
    assert_eq!(out[2].value_str(), "ZZ");
}

#[test]
fn flat_map_grows_the_batch_and_keeps_inherited_headers_first() {
    let input = [
        TestRecord::key_value("s", "a bb").at(9).header("src", "t"),
        TestRecord::value("ccc"),
    ];
    let out = run_processor(&mut Split, &input).unwrap();
    let words: Vec<_> = out
        .iter()
        .map(|o| (o.input, o.branch, o.key.clone().unwrap(), o.timestamp))
        .collect();
    assert_eq!(
        words,
        vec![
            (0, 0, b"a".to_vec(), 9),
            (0, 1, b"bb".to_vec(), 9),
            (1, 0, b"ccc".to_vec(), 0)
        ]
    );
    assert_eq!(
        out[1].headers,
        vec![
            ("src".to_string(), Some(b"t".to_vec())),
            ("n".to_string(), Some(b"1".to_vec()))
        ]
    );
    assert_eq!(out[2].headers, vec![("n".to_string(), Some(b"0".to_vec()))]);
}

#[test]
fn an_output_batch_is_valid_input_for_the_next_step() {
    let input = [
        TestRecord::key_value("s", "a bb").header("src", "t"),
        TestRecord::value("ccc"),
    ];
    let mut w = eddy_batch::BatchWriter::new();
    for (i, r) in input.iter().enumerate() {
        w.record(
            i as u32,
            r.key.as_deref(),
            r.value.as_deref(),
            0,
            r.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())),
        );
    }
    let once = super::process_batch(&mut Split, w.into_vec()).unwrap();
    let twice = super::process_batch(&mut Upper, once).unwrap();
    let view = eddy_batch::BatchView::new(&twice).unwrap();
    let values: Vec<_> = view.iter().map(|r| r.value.unwrap().to_vec()).collect();
    assert_eq!(values, vec![b"1".to_vec(), b"1".to_vec(), b"1".to_vec()]);
    assert_eq!(view.get(1).headers.len(), 2);
}

#[test]
fn an_error_is_pinned_to_its_input_record() {
    let input = [TestRecord::value("ok"), TestRecord::value("x fail")];
    let err = run_processor(&mut Split, &input).unwrap_err();
    assert_eq!(
        err,
        Error::Failed {
            message: "asked to fail".into(),
            input_index: Some(1)
        }
    );
}

#[test]
fn a_batch_with_overlapping_key_and_value_is_refused() {
    let mut w = eddy_batch::BatchWriter::new();
    let s = w.bytes(b"shared");
    w.entry(eddy_batch::Entry {
        key: s,
        value: s,
        ..Default::default()
    });
    let err = super::process_batch(&mut Upper, w.into_vec()).unwrap_err();
    assert!(matches!(err, Error::BadBatch(m) if m.contains("overlap")));
}

struct Sum;
impl Operator for Sum {
    fn init(_: &Settings) -> Result<Self, Error> {
        Ok(Sum)
    }
}
impl Aggregator for Sum {
    fn initialize(&mut self, _: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        Ok(b"0".to_vec())
    }
    fn add(&mut self, _: Option<&[u8]>, v: Option<&[u8]>, agg: &mut Vec<u8>) -> Result<(), Error> {
        let a: i64 = crate::json::from_slice(agg)?;
        let v: i64 = crate::json::from_slice(v.unwrap_or(b"0"))?;
        crate::json::to_vec_into(&(a + v), agg)
    }
}

#[test]
fn aggregation_runs_per_group_in_arrival_order() {
    let ups: [(&[u8], &[u8]); 4] = [(b"a", b"2"), (b"b", b"1"), (b"a", b"5"), (b"b", b"10")];
    let out = run_aggregator(&mut Sum, &ups).unwrap();
    assert_eq!(
        out,
        vec![b"2".to_vec(), b"1".to_vec(), b"7".to_vec(), b"11".to_vec()]
    );
}
