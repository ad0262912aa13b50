//! `[[sources]]`: names, topics, patterns, tables, event time.

use super::Validator;
use crate::spec::model::SpecFile;
use crate::topology::{Source, TimestampSource, Topics};

impl Validator<'_> {
    pub(super) fn sources(&mut self, spec: &SpecFile) -> Vec<Source> {
        let mut sources: Vec<Source> = Vec::new();
        if spec.sources.is_empty() {
            self.errors.push(self.lines.error(
                None,
                "sources",
                "no sources: add a [[sources]] table with a topic",
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, at) in spec.sources.iter().enumerate() {
            let s = at.get_ref();
            let key = |f: &str| format!("sources[{i}].{f}");
            let given = [
                s.topic.as_ref().map(|_| "topic"),
                s.topics.as_ref().map(|_| "topics"),
                s.pattern.as_ref().map(|_| "pattern"),
            ];
            let given: Vec<&str> = given.into_iter().flatten().collect();
            if given.len() != 1 {
                let what = if given.is_empty() {
                    "no topic".to_string()
                } else {
                    format!("both `{}` and `{}`", given[0], given[1])
                };
                self.err(at, format!("sources[{i}]"), format!("{what}: give one of `topic` (a topic), `topics` (a list) or `pattern` (a regular expression)"));
            }
            let topics = if let Some(t) = &s.topic {
                self.topic_name(t, &key("topic"));
                Topics::Names(vec![t.get_ref().clone()])
            } else if let Some(list) = &s.topics {
                if list.get_ref().is_empty() {
                    self.err(list, key("topics"), "give at least one topic");
                }
                for t in list.get_ref() {
                    self.topic_text(list, t, &key("topics"));
                }
                Topics::Names(list.get_ref().clone())
            } else if let Some(p) = &s.pattern {
                if let Err(e) = regex::Regex::new(p.get_ref()) {
                    let first = e.to_string();
                    let first = first.lines().last().unwrap_or("invalid").trim();
                    self.err(
                        p,
                        key("pattern"),
                        format!("not a regular expression: {first}"),
                    );
                }
                Topics::Pattern(p.get_ref().clone())
            } else {
                Topics::Names(Vec::new())
            };
            for t in topics.names() {
                if seen.contains(t) {
                    let at = s.topic.as_ref().map_or(at.span(), |t| t.span());
                    self.errors.push(self.lines.error(
                        Some(at),
                        key("topic"),
                        format!("topic {t:?} is already a source"),
                    ));
                }
                seen.push(t.clone());
            }
            let name = match (&s.name, topics.single()) {
                (Some(n), _) => {
                    self.node_name(n, &key("name"));
                    n.get_ref().clone()
                }
                (None, Some(t)) => t.to_string(),
                (None, None) => {
                    if !given.is_empty() {
                        self.err(at, key("name"), "a source reading several topics or a pattern needs a `name`, which steps and sinks read it by");
                    }
                    format!("source-{i}")
                }
            };
            let (table, global) = match s.read_as.as_ref().map(|a| (a, a.get_ref().as_str())) {
                None | Some((_, "stream")) => (false, false),
                Some((a, kind @ ("table" | "global-table"))) => {
                    if topics.single().is_none() {
                        self.err(a, key("as"), "a table reads one topic; use `topic`");
                    }
                    (kind == "table", kind == "global-table")
                }
                Some((a, other)) => {
                    self.err(
                        a,
                        key("as"),
                        format!("{other:?}: expected \"stream\", \"table\" or \"global-table\""),
                    );
                    (false, false)
                }
            };
            let history = s.history.as_ref().and_then(|h| {
                if !table {
                    self.err(
                        h,
                        key("history"),
                        "`history` makes a table versioned: use it with as = \"table\"",
                    );
                    return None;
                }
                match crate::units::parse_duration(h.get_ref()) {
                    Ok(d) if !d.is_zero() && d.as_millis() <= 100 * 366 * 24 * 3600 * 1000 => {
                        Some(d.as_millis() as i64)
                    }
                    Ok(_) => {
                        self.err(
                            h,
                            key("history"),
                            "must be more than zero and at most 100 years",
                        );
                        None
                    }
                    Err(e) => {
                        self.err(h, key("history"), e);
                        None
                    }
                }
            });
            let timestamp = match s.timestamp.as_ref().map(|a| (a, a.get_ref().as_str())) {
                None | Some((_, "record")) => TimestampSource::Record,
                Some((_, "processing-time")) => TimestampSource::ProcessingTime,
                Some((_, p)) if p.starts_with('/') => TimestampSource::Field(p.to_string()),
                Some((a, other)) => {
                    self.err(
                        a,
                        key("timestamp"),
                        format!("{other:?}: expected \"record\", \"processing-time\" or a JSON pointer into the value such as \"/ts\""),
                    );
                    TimestampSource::Record
                }
            };
            let on_error = self.policy(
                s.on_error.as_ref(),
                s.dead_letter_topic.as_ref(),
                &format!(
                    "{}-source-{name}-dead-letters",
                    spec.application_id.get_ref()
                ),
                &key,
            );
            sources.push(Source {
                name,
                topics,
                table,
                global,
                history,
                timestamp,
                on_error,
            });
        }
        sources
    }
}
