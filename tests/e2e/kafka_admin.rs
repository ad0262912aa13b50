//! The admin API against what a web page, another user of the machine or
//! a careless client can send: forged requests, no token, huge bodies.

use crate::eddy_bin;
use crate::kafka_reload::{eddy_reload, post, running_version, spec, stamped};
use eddy_e2e::{Topics, generated_token, start_with_admin, unique, wait_until};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// The status of a raw HTTP/1.1 request (every header as given, `Host`
/// included) to the admin API at `addr`.
fn raw_status(addr: &str, request_head: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{request_head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn a_web_page_can_neither_reload_an_operator_nor_read_through_a_rebound_name() {
    let topics = Topics::create(&[("admin-web-in", 1), ("admin-web-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), &unique("admin-web"), input, output, "");
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    let before = running_version(&addr);
    let new = stamped(1);
    let post = |headers: &str| {
        let head = format!("POST /operators/stamp HTTP/1.1\r\nHost: {addr}{headers}");
        raw_status(&addr, &head, &new)
    };
    // A form or text/plain POST is what a page may send without asking.
    assert_eq!(post("\r\nContent-Type: text/plain"), 415);
    assert_eq!(post(""), 415);
    // With a component's type a browser asks first (no answer) and says
    // where the page came from.
    assert_eq!(
        post("\r\nContent-Type: application/wasm\r\nOrigin: http://evil.example"),
        403
    );
    // A name rebound to this address is not this instance's name.
    let rebound = "GET /operators HTTP/1.1\r\nHost: evil.example:80";
    assert_eq!(raw_status(&addr, rebound, b""), 403);
    let rebound =
        "POST /operators/stamp HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/wasm";
    assert_eq!(raw_status(&addr, rebound, &new), 403);
    assert_eq!(running_version(&addr), before, "nothing was replaced");
    // `eddy reload` goes through.
    eddy_reload(&dir.path().join("stamp-1.wasm"), &new, &addr);
    assert_eq!(running_version(&addr), eddy::wasm::version_of(&new));
    assert!(eddy.stop());
}

#[test]
fn a_loopback_admin_api_wants_a_token_that_only_its_user_can_read() {
    let topics = Topics::create(&[("admin-token-in", 1), ("admin-token-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), &unique("admin-token"), input, output, "");
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let file = eddy::admin::token::token_path(port).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    let token = generated_token(&addr);
    assert!(token.len() >= 32, "{token:?}");

    let (status, answer) = post(&addr, "stamp", &stamped(1), None);
    assert_eq!(status, 401, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = post(&addr, "stamp", &stamped(1), Some("not-the-token-at-all"));
    assert_eq!(status, 403);
    let (status, answer) = post(&addr, "stamp", &stamped(1), Some(&token));
    assert_eq!(status, 200, "{answer}");
    // `eddy reload` finds the token on its own.
    eddy_reload(&dir.path().join("stamp-2.wasm"), &stamped(2), &addr);
    assert_eq!(running_version(&addr), eddy::wasm::version_of(&stamped(2)));
    assert!(eddy.stop());
    assert!(!file.exists(), "the token file goes with the instance");
}

#[test]
fn a_body_beyond_the_cap_is_refused_and_a_large_one_leaves_no_memory_behind() {
    let topics = Topics::create(&[("admin-cap-in", 1), ("admin-cap-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let admin = "[admin]\nmax_component_size = \"96MiB\"";
    let spec = spec(dir.path(), &unique("admin-cap"), input, output, admin);
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    let token = generated_token(&addr);
    let before = running_version(&addr);

    let (status, answer) = post(&addr, "stamp", &vec![0u8; 97 << 20], Some(&token));
    assert_eq!(status, 413, "{answer}");
    let why = answer["error"].as_str().unwrap();
    assert!(why.contains("admin.max_component_size"), "{why}");

    // Within the cap but no component: refused, and its memory given back.
    let rss = eddy.rss();
    for _ in 0..3 {
        let (status, answer) = post(&addr, "stamp", &vec![0u8; 90 << 20], Some(&token));
        assert_eq!(status, 422, "{answer}");
    }
    let mut after = u64::MAX;
    wait_until(Duration::from_secs(10), "memory to be returned", || {
        after = eddy.rss();
        after < rss + (32 << 20)
    });
    eprintln!(
        "RSS before {} MiB, after three 90 MiB bodies {} MiB",
        rss >> 20,
        after >> 20
    );
    assert_eq!(running_version(&addr), before);
    assert!(eddy.stop());
}
