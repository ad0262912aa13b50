//! Dead letters: a record eddy could not use, as it was, with `eddy.*`
//! headers saying what went wrong and where it came from. Built here for
//! every kind (an unreadable source record, a record an operator failed
//! on, a record the broker refused) and for every I/O layer, so a dead
//! letter looks the same on Kafka and in `eddy test`.

use crate::wasm::{Chain, Rejected};
use eddy_batch::{BatchView, RecordRef};

/// Where a source record was read: topic, partition, offset.
pub type SourceAt<'a> = (&'a str, i32, i64);

/// A record bound for a dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter topic.
    pub topic: String,
    /// The record's key.
    pub key: Option<Vec<u8>>,
    /// The record's value (none when it is what was wrong: too large).
    pub value: Option<Vec<u8>>,
    /// The record's timestamp.
    pub timestamp: i64,
    /// The record's own headers, then the `eddy.*` ones.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A record's parts, borrowed: key, value, timestamp, headers.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: Option<&'a [u8]>,
    /// The timestamp.
    pub timestamp: i64,
    /// The headers.
    pub headers: &'a [(String, Option<Vec<u8>>)],
}

impl DeadLetter {
    /// A source record whose event time could not be read
    /// (`eddy.error.kind = deserialization`).
    pub fn unreadable(
        topic: &str,
        r: Parts<'_>,
        error: &crate::time::extract::TimestampError,
        at: SourceAt<'_>,
    ) -> Self {
        let about = [
            ("eddy.error", unreadable_why(error, at)),
            ("eddy.error.kind", "deserialization".to_string()),
        ]
        .into_iter()
        .chain(source_headers(at));
        Self::of(
            topic,
            r.key,
            r.value,
            r.timestamp,
            r.headers.to_vec(),
            about,
        )
    }

    /// A record step `r.step`'s operator failed on, under `dead-letter`.
    pub fn rejected(topic: &str, r: &Rejected, chain: &Chain, at: Option<SourceAt<'_>>) -> Self {
        let view = BatchView::already_checked(&r.record).expect("checked when taken out");
        let rec = view.get(0);
        let about = [
            ("eddy.error", r.error.to_string()),
            ("eddy.error.kind", r.error.kind().to_string()),
            ("eddy.operator", chain.name(r.step).to_string()),
            ("eddy.operator.version", chain.version(r.step).to_string()),
        ]
        .into_iter()
        .chain(at.into_iter().flat_map(source_headers));
        Self::of(
            topic,
            rec.key,
            rec.value,
            rec.timestamp,
            batch_headers(&rec),
            about,
        )
    }

    /// A record for sink topic `sink` that the client or the broker refused
    /// (`eddy.error.kind = production`); without its value when its size
    /// was the reason (`eddy.value.size` says how large it was).
    pub fn refused(
        topic: &str,
        sink: &str,
        r: Parts<'_>,
        why: &str,
        too_large: bool,
        at: Option<SourceAt<'_>>,
    ) -> Self {
        let mut about = vec![
            ("eddy.error", why.to_string()),
            ("eddy.error.kind", "production".to_string()),
            ("eddy.sink.topic", sink.to_string()),
        ];
        about.extend(at.into_iter().flat_map(source_headers));
        let value = if too_large {
            about.push((
                "eddy.value.size",
                r.value.map_or(0, <[u8]>::len).to_string(),
            ));
            None
        } else {
            r.value
        };
        Self::of(topic, r.key, value, r.timestamp, r.headers.to_vec(), about)
    }

    /// Makes the letter fit in `max` bytes (the limit of its topic or of
    /// the producer) so that the policy works whatever the record: without
    /// the largest of its value, its own headers and its key, then the next
    /// (each dropped part named in an `eddy.*` header), last with the
    /// `eddy.*` headers cut.
    pub fn fit(&mut self, max: usize) {
        // A record batch's own header and the record's varints.
        let max = max.saturating_sub(512);
        let len = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len);
        while self.size() > max {
            let own: usize = self
                .headers
                .iter()
                .filter(|(n, _)| !n.starts_with("eddy."))
                .map(|(n, v)| 16 + n.len() + len(v))
                .sum();
            let (value, key) = (len(&self.value), len(&self.key));
            if value.max(own).max(key) == 0 {
                break;
            }
            if value >= own && value >= key {
                self.value = None;
                self.note("eddy.value.size", value);
            } else if own >= key {
                let before = self.headers.len();
                self.headers.retain(|(n, _)| n.starts_with("eddy."));
                self.note("eddy.headers.dropped", before - self.headers.len());
            } else {
                self.key = None;
                self.note("eddy.key.size", key);
            }
        }
        let over = self.size().saturating_sub(max);
        if over > 0
            && let Some((_, Some(longest))) = self
                .headers
                .iter_mut()
                .max_by_key(|(_, v)| v.as_ref().map_or(0, Vec::len))
        {
            longest.truncate(longest.len().saturating_sub(over));
        }
    }
    /// Adds header `name` = `n` unless the letter has it.
    fn note(&mut self, name: &str, n: usize) {
        if !self.headers.iter().any(|(h, _)| h == name) {
            self.headers
                .push((name.to_string(), Some(n.to_string().into_bytes())));
        }
    }

    /// Its size on the wire, roughly from above.
    pub fn size(&self) -> usize {
        let len = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len);
        64 + len(&self.key)
            + len(&self.value)
            + self
                .headers
                .iter()
                .map(|(n, v)| 16 + n.len() + len(v))
                .sum::<usize>()
    }

    fn of(
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        mut headers: Vec<(String, Option<Vec<u8>>)>,
        about: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Self {
        headers.extend(
            about
                .into_iter()
                .map(|(n, v)| (n.to_string(), Some(v.into_bytes()))),
        );
        DeadLetter {
            topic: topic.to_string(),
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            timestamp,
            headers,
        }
    }
}

/// What is wrong with a source record whose event time cannot be read.
pub fn unreadable_why(
    error: &crate::time::extract::TimestampError,
    (topic, partition, offset): SourceAt<'_>,
) -> String {
    format!("record at offset {offset} of {topic}-{partition} has no event time: {error}")
}

/// A batch record's headers, owned (names as text).
pub fn batch_headers(r: &RecordRef<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    r.headers
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                v.map(<[u8]>::to_vec),
            )
        })
        .collect()
}

/// The headers naming where a source record was read: topic, partition
/// and offset.
pub fn source_headers((topic, partition, offset): SourceAt<'_>) -> [(&'static str, String); 3] {
    [
        ("eddy.source.topic", topic.to_string()),
        ("eddy.source.partition", partition.to_string()),
        ("eddy.source.offset", offset.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'d>(d: &'d DeadLetter, name: &str) -> Option<&'d str> {
        d.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok())
    }

    #[test]
    fn an_unreadable_record_keeps_its_headers_then_says_why_and_where() {
        let own = vec![("trace".to_string(), Some(b"t1".to_vec()))];
        let r = Parts {
            key: Some(b"k"),
            value: Some(b"not json"),
            timestamp: 7,
            headers: &own,
        };
        let error = crate::time::extract::extract(
            &crate::topology::TimestampSource::Field("/ts".into()),
            0,
            r.value,
        )
        .unwrap_err();
        let d = DeadLetter::unreadable("dl", r, &error, ("in", 2, 41));
        assert_eq!(d.topic, "dl");
        assert_eq!(d.value.as_deref(), Some(&b"not json"[..]));
        assert_eq!(d.headers[0].0, "trace", "the record's own headers first");
        assert_eq!(header(&d, "eddy.error.kind"), Some("deserialization"));
        assert!(
            header(&d, "eddy.error")
                .unwrap()
                .starts_with("record at offset 41 of in-2 has no event time: "),
            "{d:?}"
        );
        assert_eq!(header(&d, "eddy.source.offset"), Some("41"));
        assert_eq!(header(&d, "eddy.source.partition"), Some("2"));
    }

    #[test]
    fn a_letter_is_cut_to_fit_value_first_then_headers_then_key() {
        let letter = |value: usize, header: usize, key: usize| DeadLetter {
            topic: "dlq".into(),
            key: Some(vec![b'k'; key]),
            value: Some(vec![b'v'; value]),
            timestamp: 1,
            headers: vec![
                ("trace".into(), Some(vec![b't'; header])),
                ("eddy.error".into(), Some(vec![b'e'; 4096])),
            ],
        };
        let mut small = letter(100, 10, 10);
        small.fit(1 << 20);
        assert_eq!(small, letter(100, 10, 10), "what fits is left alone");

        let mut d = letter(2 << 20, 10, 10);
        d.fit(1 << 20);
        assert_eq!(d.value, None);
        assert_eq!(header(&d, "eddy.value.size"), Some("2097152"));
        assert_eq!(
            header(&d, "trace").map(str::len),
            Some(10),
            "headers kept when they fit"
        );
        assert!(d.size() <= (1 << 20) - 512);

        let mut d = letter(2 << 20, 2 << 20, 100);
        d.fit(1 << 20);
        assert_eq!(header(&d, "trace"), None);
        assert_eq!(header(&d, "eddy.headers.dropped"), Some("1"));
        assert_eq!(d.key.as_deref().map(<[u8]>::len), Some(100));

        let mut d = letter(10, 10, 2 << 20);
        d.fit(1 << 20);
        assert_eq!(d.key, None);
        assert_eq!(header(&d, "eddy.key.size"), Some("2097152"));

        // A limit smaller than the eddy.* headers themselves: cut, still sent.
        let mut d = letter(10, 10, 10);
        d.fit(4096);
        assert!(d.size() <= 4096 - 512, "{}", d.size());
        assert!(header(&d, "eddy.error").is_some());
    }

    #[test]
    fn a_refusal_for_size_drops_the_value_and_says_how_large_it_was() {
        let r = Parts {
            key: None,
            value: Some(&[0; 5000]),
            timestamp: 1,
            headers: &[],
        };
        let d = DeadLetter::refused("dl", "out", r, "too large", true, None);
        assert_eq!(d.value, None);
        assert_eq!(header(&d, "eddy.value.size"), Some("5000"));
        assert_eq!(header(&d, "eddy.sink.topic"), Some("out"));
        assert_eq!(header(&d, "eddy.source.topic"), None, "no source known");
        let kept = DeadLetter::refused("dl", "out", r, "invalid", false, Some(("in", 0, 3)));
        assert_eq!(kept.value.as_ref().map(Vec::len), Some(5000));
        assert_eq!(header(&kept, "eddy.source.topic"), Some("in"));
    }
}
