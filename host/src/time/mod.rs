//! Event time: where a record's timestamp comes from, and which windows a
//! timestamp falls in (Kafka Streams' rules, pure functions).

pub mod extract;
pub mod windows;
