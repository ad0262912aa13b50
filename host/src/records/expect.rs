//! `eddy test --expect`: the output records compared with an expected
//! records file, with a readable diff when they differ.
//!
//! Records are compared in the form `eddy test` writes them, not as the
//! expected file spells them: `"value": "{\"a\": 1}"` and `"value":
//! {"a":1}` are the same (JSON is written compact), and the order of a
//! line's fields or spacing in the JSON does not matter. The diff shows
//! each record in that form, with its line in the expected file.

use super::jsonl::{OwnedRecord, parse_line, write_record};
use similar::{ChangeTag, TextDiff};

/// Reads records written by `eddy test` (one per line).
pub fn parse_output(text: &str) -> Result<Vec<OwnedRecord>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l).map_err(|e| format!("output line {}: {e}", i + 1)))
        .collect()
}

/// None when `got` equals `expected` record for record, both in the form
/// `eddy test` writes them; else a diff
/// (`-` expected, `+` got, with line numbers of the expected file as
/// given in `expected_lines`).
pub fn diff(got: &[OwnedRecord], expected: &[(usize, OwnedRecord)]) -> Option<String> {
    let text = |records: &mut dyn Iterator<Item = &OwnedRecord>| {
        let mut out = Vec::new();
        for r in records {
            let _ = write_record(
                &mut out,
                &r.topic,
                r.key.as_deref(),
                r.value.as_deref(),
                r.timestamp,
                r.headers.iter().cloned(),
            );
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let want = text(&mut expected.iter().map(|(_, r)| r));
    let have = text(&mut got.iter());
    if want == have {
        return None;
    }
    let d = TextDiff::from_lines(&want, &have);
    let mut out = String::new();
    let (mut missing, mut extra) = (0, 0);
    for group in d.grouped_ops(2) {
        for op in group {
            for change in d.iter_changes(&op) {
                let line = change.value().trim_end();
                match change.tag() {
                    ChangeTag::Equal => out.push_str(&format!("    {line}\n")),
                    ChangeTag::Delete => {
                        missing += 1;
                        let at = change
                            .old_index()
                            .and_then(|i| expected.get(i))
                            .map_or(String::new(), |(l, _)| format!(" (expected line {l})"));
                        out.push_str(&format!("  - {line}{at}\n"));
                    }
                    ChangeTag::Insert => {
                        extra += 1;
                        out.push_str(&format!("  + {line}\n"));
                    }
                }
            }
        }
        out.push_str("  ...\n");
    }
    Some(format!(
        "the output differs from the expected records: {missing} expected record(s) missing or different, {extra} unexpected (- expected, + got):\n{out}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, v: &str) -> OwnedRecord {
        OwnedRecord {
            topic: topic.into(),
            value: Some(v.as_bytes().to_vec()),
            ..OwnedRecord::default()
        }
    }

    #[test]
    fn equal_records_in_other_json_forms_match() {
        let got = parse_output("{\"topic\":\"o\",\"value\":{\"a\":1}}\n").unwrap();
        let want = vec![(
            3,
            parse_line("{\"value\": \"{\\\"a\\\":1}\", \"topic\": \"o\"}").unwrap(),
        )];
        assert_eq!(diff(&got, &want), None);
    }

    /// Found by fuzzing (fuzz target `records_file`): JSON text given as a
    /// string with spaces never matched the output of those very bytes
    /// (written compact), and the diff showed two equal lines.
    #[test]
    fn json_text_given_as_a_string_matches_the_output_of_its_bytes() {
        let want = vec![(1, parse_line(r#"{"topic":"o","value":"[1, 2]"}"#).unwrap())];
        let mut out = Vec::new();
        write_record(&mut out, "o", None, Some(b"[1, 2]"), 0, std::iter::empty()).unwrap();
        let got = parse_output(&String::from_utf8(out).unwrap()).unwrap();
        assert_eq!(diff(&got, &want), None);
        assert!(diff(&got, &[(1, rec("o", "[1, 3]"))]).is_some());
    }

    #[test]
    fn a_difference_names_the_expected_line_and_both_sides() {
        let got = [rec("o", "a"), rec("o", "X"), rec("o", "c")];
        let want = [(1, rec("o", "a")), (2, rec("o", "b")), (5, rec("o", "c"))];
        let d = diff(&got, &want).expect("they differ");
        assert!(d.contains("(expected line 2)"), "{d}");
        assert!(
            d.contains("+ {\"topic\":\"o\",\"key\":null,\"value\":\"X\""),
            "{d}"
        );
        assert!(
            d.contains("1 expected record(s) missing or different, 1 unexpected"),
            "{d}"
        );
        let fewer = diff(&got[..2], &want[..2]);
        assert!(fewer.is_some());
        assert_eq!(diff(&got[..1], &want[..1]), None);
    }
}
