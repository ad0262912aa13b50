//! The batch encoding, host side. Any bytes: `BatchView::new` refuses them
//! or every record, header and byte range reads without a panic, and the
//! host's ways of passing records on (copying them into a new batch,
//! appending to the batch in place, renumbering an output's indices) keep
//! every record as it was. Any sequence of writes: what `BatchWriter`
//! writes reads back as written.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use eddy_batch::{BatchView, BatchWriter, HeaderEntry, RecordRef};
use libfuzzer_sys::fuzz_target;

/// A record as owned values, for comparisons.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
struct Rec {
    index: u32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    aux: Option<Vec<u8>>,
    tag: u32,
    timestamp: i64,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl From<RecordRef<'_>> for Rec {
    fn from(r: RecordRef<'_>) -> Self {
        Rec {
            index: r.index,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            aux: r.aux.map(<[u8]>::to_vec),
            tag: r.tag,
            timestamp: r.timestamp,
            headers: (r.headers.iter())
                .map(|(n, v)| (n.to_vec(), v.map(<[u8]>::to_vec)))
                .collect(),
        }
    }
}

fn write(w: &mut BatchWriter, r: &Rec) {
    w.record_full(
        r.index,
        r.key.as_deref(),
        r.value.as_deref(),
        r.aux.as_deref(),
        r.tag,
        r.timestamp,
        r.headers.iter().map(|(n, v)| (n.as_slice(), v.as_deref())),
    );
}

/// The records of a batch, checked as the host checks an operator's output.
fn read(buf: &[u8]) -> eddy_batch::Result<Vec<Rec>> {
    let view = BatchView::new(buf)?;
    let records: Vec<Rec> = view.iter().map(Rec::from).collect();
    assert_eq!(records.len(), view.len());
    let ordered = records.windows(2).all(|p| p[0].index <= p[1].index);
    let inputs = records
        .iter()
        .map(|r| r.index as usize + 1)
        .max()
        .unwrap_or(0);
    assert_eq!(view.check_output_indices(inputs).is_ok(), ordered);
    if inputs > 0 {
        assert!(view.check_output_indices(inputs - 1).is_err());
    }
    let again = BatchView::already_checked(buf).expect("checked");
    assert!(again.iter().map(Rec::from).eq(records.iter().cloned()));
    Ok(records)
}

/// Any bytes, read as a batch and passed on the ways the host passes one.
fn raw(data: &[u8]) {
    let Ok(records) = read(data) else {
        return;
    };
    let view = BatchView::new(data).expect("read once");
    // Copied record by record (as the chain isolates a failing record).
    let mut w = BatchWriter::new();
    records.iter().for_each(|r| write(&mut w, r));
    assert_eq!(read(&w.into_vec()).expect("a copy reads"), records);
    // Appended in place: new tables after the bytes, spans kept.
    let mut w = BatchWriter::append_to(data.to_vec());
    for i in 0..view.len() {
        let mut e = view.entry(i);
        let start = w.header_count();
        for h in 0..e.header_count as usize {
            let at = view.layout().header_at(e.header_start as usize + h);
            let HeaderEntry { name, value } = HeaderEntry::read(data, at);
            w.header_spans(name, value);
        }
        e.header_start = start;
        w.entry(e);
    }
    assert_eq!(read(&w.into_vec()).expect("an append reads"), records);
    // Renumbered as the chain renumbers the output of a step.
    let mut out = data.to_vec();
    for j in 0..view.len() {
        let at = view.layout().entry_at(j);
        out[at..at + 4].copy_from_slice(&(j as u32).to_le_bytes());
    }
    // Later stages read it unchecked (`already_checked`): it must still be
    // a valid batch.
    let renumbered = BatchView::new(&out).expect("a renumbered batch stays valid");
    assert!(
        renumbered
            .iter()
            .enumerate()
            .all(|(j, r)| r.index as usize == j)
    );
}

/// What a writer is asked to do.
#[derive(Arbitrary, Debug)]
enum Op {
    Record(Rec),
    Finish,
    Clear,
}

/// A writer's output reads back as written, through finishes and reuse.
fn written(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let prefix: Option<Vec<u8>> = u.arbitrary()?;
    let mut w = match &prefix {
        Some(p) => BatchWriter::append_to(p.clone()),
        None => BatchWriter::new(),
    };
    let mut want: Vec<Rec> = Vec::new();
    for op in u.arbitrary_iter::<Op>()? {
        match op? {
            Op::Record(r) => {
                write(&mut w, &r);
                want.push(r);
            }
            Op::Finish => assert_eq!(read(w.finish()).expect("finished"), want),
            Op::Clear => {
                w.clear();
                want.clear();
            }
        }
        assert_eq!(w.len(), want.len());
    }
    assert_eq!(read(&w.into_vec()).expect("written"), want);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    let _ = written(&mut Unstructured::new(data));
});
