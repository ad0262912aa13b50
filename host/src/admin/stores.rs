//! `/readyz` and interactive queries: `GET /stores/<store>/<key>`, with
//! `from` and `to` (window start times, ms) for window stores.

use super::{Api, error};
use crate::records::jsonl::bytes_field;
use crate::state::query::{Lookup, QueryError, Rows, Stored};
use crate::status::{Answer, AskError};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// 200 when every assigned task is open and restored, else 503; the body
/// says which tasks it waits for.
pub async fn readyz(State(api): State<Arc<Api>>) -> Response {
    let r = api.instance.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r)).into_response()
}

fn value_of(stored: &Stored, into: &mut Map<String, Value>) {
    let (name, value) = bytes_field("value", &stored.value);
    into.insert(name, value);
    into.insert("timestamp".into(), stored.timestamp.into());
}

/// A time parameter; the complaint when it is not a number.
fn ms(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, String> {
    q.get(name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                format!("`{name}` = {v:?}: expected a time in milliseconds since the epoch")
            })
        })
        .transpose()
}

/// The value of a key (key-value stores) or its windows (window stores),
/// read where the key lives: here, or redirected to the instance owning it.
pub async fn store_get(
    State(api): State<Arc<Api>>,
    Path((store, key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let bytes = match q.get("encoding").map(String::as_str) {
        None | Some("text") => key.clone().into_bytes(),
        Some("base64") => match base64::engine::general_purpose::STANDARD.decode(&key) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the key is not base64: {e}"),
                );
            }
        },
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("encoding {other:?}: expected text or base64"),
            );
        }
    };
    let range = match (ms(&q, "from"), ms(&q, "to")) {
        (Err(why), _) | (_, Err(why)) => return error(StatusCode::BAD_REQUEST, why),
        (Ok(None), Ok(None)) => None,
        (Ok(from), Ok(to)) => Some((from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX))),
    };
    if let Some((from, to)) = range
        && from > to
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`from` ({from}) is after `to` ({to})"),
        );
    }
    let at = match ms(&q, "at") {
        Ok(at) => at,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let (key_name, key_shown) = bytes_field("key", &bytes);
    let lookup = Lookup {
        key: bytes,
        range,
        at,
    };
    let instance = api.instance.clone();
    let asked = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || instance.ask(&store, lookup)).await
    };
    let answer = match asked {
        Ok(Ok(a)) => a,
        Ok(Err(e @ AskError::UnknownStore { .. })) => {
            return error(StatusCode::NOT_FOUND, e.to_string());
        }
        Ok(Err(AskError::Query(
            e
            @ (QueryError::NotWindowed(_) | QueryError::NotVersioned(_) | QueryError::Internal(_)),
        ))) => {
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("query: {e}")),
    };
    let mut body = Map::new();
    body.insert("store".into(), store.clone().into());
    body.insert(key_name, key_shown);
    match answer {
        Answer::Here { partition, rows } => {
            body.insert("partition".into(), partition.into());
            match rows {
                Rows::Value(Some(stored)) => {
                    value_of(&stored, &mut body);
                    Json(body).into_response()
                }
                Rows::Value(None) => {
                    body.insert(
                        "error".into(),
                        format!("the key has no value in store {store}").into(),
                    );
                    (StatusCode::NOT_FOUND, Json(body)).into_response()
                }
                Rows::Windows(rows) => {
                    let windows: Vec<Value> = rows
                        .iter()
                        .map(|w| {
                            let mut m = Map::new();
                            m.insert("start".into(), w.start.into());
                            m.insert("end".into(), w.end.into());
                            value_of(&w.stored, &mut m);
                            Value::Object(m)
                        })
                        .collect();
                    body.insert("windows".into(), windows.into());
                    Json(body).into_response()
                }
            }
        }
        Answer::Global {
            rows: Rows::Value(Some(stored)),
        } => {
            body.insert("global".into(), true.into());
            value_of(&stored, &mut body);
            Json(body).into_response()
        }
        Answer::Global { .. } => {
            body.insert("global".into(), true.into());
            body.insert(
                "error".into(),
                format!("the key has no row in global table {store}").into(),
            );
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
        Answer::Restoring { partition } => {
            body.insert("partition".into(), partition.into());
            body.insert(
                "error".into(),
                "the key's task is still restoring its stores; try again shortly".into(),
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(body),
            )
                .into_response()
        }
        Answer::Elsewhere { partition, owner } => {
            body.insert("partition".into(), partition.into());
            body.insert("owner".into(), json!(owner));
            let admin = owner.as_ref().and_then(|o| o.admin.clone());
            let location = admin
                .as_ref()
                .and_then(|admin| location(admin, &store, &key, &q).map(|l| (admin, l)));
            match location {
                Some((admin, location)) => {
                    body.insert(
                        "error".into(),
                        format!("the key lives in partition {partition}, owned by the instance at {admin}").into(),
                    );
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, location)],
                        Json(body),
                    )
                        .into_response()
                }
                None => {
                    let why = match owner {
                        Some(o) if o.admin.is_some() => {
                            "the key lives in another instance, whose published admin API address is no address a redirect can carry"
                        }
                        Some(_) => {
                            "the key lives in another instance, which has no admin API address in its client.id"
                        }
                        None => {
                            "the key lives in another instance, and the group does not say which (it may be rebalancing); try again shortly"
                        }
                    };
                    body.insert("error".into(), why.into());
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "1")],
                        Json(body),
                    )
                        .into_response()
                }
            }
        }
    }
}

/// Percent-encodes a path segment or query part.
/// Where the same query is answered at the instance whose admin API is
/// `admin`; none when `admin` (another member's `client.id`, so anything)
/// is no host and port a `Location` header can carry.
fn location(
    admin: &str,
    store: &str,
    key: &str,
    q: &HashMap<String, String>,
) -> Option<header::HeaderValue> {
    let (host, port) = admin.rsplit_once(':')?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
    if !host_ok || port.parse::<u16>().is_err() {
        return None;
    }
    let mut location = format!("http://{admin}/stores/{}/{}", encode(store), encode(key));
    let query: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query.join("&"));
    }
    header::HeaderValue::from_str(&location).ok()
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_goes_only_to_an_address_a_header_can_carry() {
        let q = HashMap::from([("from".to_string(), "1 2".to_string())]);
        let at = |admin: &str| location(admin, "counts", "k\0 x", &q);
        assert_eq!(
            at("10.0.0.5:9470").unwrap().to_str().unwrap(),
            "http://10.0.0.5:9470/stores/counts/k%00%20x?from=1%202"
        );
        assert!(at("[::1]:9470").is_some());
        assert!(at("eddy-1.svc:9470").is_some());
        // Another member's client.id may say anything.
        for bad in [
            "evil\0host:9470",
            "a b:1",
            "host:99999",
            ":9470",
            "no-port",
            "x/y:1",
        ] {
            assert!(at(bad).is_none(), "{bad:?}");
        }
    }
}
