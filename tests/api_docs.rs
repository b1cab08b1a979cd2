//! `GET /openapi.json` and `GET /docs`: the API's description is served,
//! and it lists exactly the routes the service answers, with exactly the
//! methods each takes (read from the service's own `Allow` headers).

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{Client, Server};

/// A UUID the service never handed out.
const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

fn document(client: &mut Client) -> Value {
    client.get("/openapi.json").expect(200)
}

/// Every `$ref` in `value`, recursively.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let server = Server::start();
    let doc = document(&mut server.connect());
    assert_eq!(doc["openapi"], "3.1.0");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 30, "{}", found.len());
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{target} resolves");
    }
}

#[test]
fn it_lists_exactly_the_routes_served_with_their_methods() {
    let server = Server::start();
    let mut client = server.connect();
    let doc = document(&mut client);
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        documented,
        BTreeSet::from([
            "/book",
            "/candles",
            "/health",
            "/metrics",
            "/order/",
            "/order/{order_id}",
            "/orders",
            "/orders/batch",
            "/orders/cancel",
            "/orders/cancel_all_after",
            "/orders/modify",
            "/ticker",
            "/trades",
            "/ws",
        ]),
        "every route the service answers (the docs' own two aside)"
    );
    for (path, item) in paths {
        let methods: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| *key != "parameters")
            .map(|method| method.to_uppercase())
            .collect();
        // The service says what the path takes when asked with a method
        // it does not.
        let concrete = path.replace("{order_id}", UNKNOWN_ID);
        let refused = client.request("PATCH", &concrete, Some("{}"));
        assert_eq!(refused.status, 405, "{path}");
        let allowed: BTreeSet<String> = refused
            .header("allow")
            .unwrap()
            .split(", ")
            .filter(|method| *method != "HEAD")
            .map(str::to_owned)
            .collect();
        assert_eq!(methods, allowed, "{path}");
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("200") || responses.contains_key("101"),
                "{path}"
            );
        }
    }
}

#[test]
fn docs_is_a_swagger_ui_page_reading_the_document() {
    let server = Server::start();
    let mut client = server.connect();
    client
        .send_raw(&support::request_bytes("GET", "/docs/", None))
        .unwrap();
    let page = client
        .read_response_of_type("text/html; charset=utf-8")
        .unwrap();
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
    assert!(
        text.contains(r#"SwaggerUIBundle({ url: "/openapi.json""#),
        "{text}"
    );
    // Both files from the CDN are pinned by their hashes.
    assert_eq!(text.matches(r#"integrity="sha384-"#).count(), 2, "{text}");
    assert_eq!(text.matches("swagger-ui-dist@5.35.0/").count(), 2, "{text}");
    let refused = client.request("POST", "/openapi.json", Some("{}"));
    assert_eq!(
        (refused.status, refused.header("allow")),
        (405, Some("GET, HEAD"))
    );
}

/// Every status a read through the matching thread can answer is in the
/// document: on a command ring of one slot, reads pipelined faster than
/// it drains find it full and are answered 503, which each lists.
#[test]
fn every_status_a_read_answers_under_a_full_ring_is_documented() {
    let server = Server::start_with(&["--command-ring", "1"]);
    let mut client = server.connect();
    let doc = document(&mut client);
    // A name the front knows, so its read goes to the replica too.
    let named = r#"{"quantity": 1, "price": 100.0, "side": 1, "client_order_id": "reader-1"}"#;
    client.post("/order/", named).expect(200);
    let reads = [
        ("/order/{order_id}", format!("/order/{UNKNOWN_ID}")),
        ("/order/", "/order/?client_order_id=reader-1".to_owned()),
        ("/orders", "/orders".to_owned()),
        ("/trades", "/trades".to_owned()),
        ("/candles", "/candles".to_owned()),
        ("/book", "/book".to_owned()),
        ("/ticker", "/ticker".to_owned()),
    ];
    const COPIES: usize = 40;
    let mut burst = Vec::new();
    for (_, target) in &reads {
        for _ in 0..COPIES {
            burst.extend(support::request_bytes("GET", target, None));
        }
    }
    client.send_raw(&burst).unwrap();
    let mut undocumented = BTreeSet::new();
    let mut overloaded = BTreeSet::new();
    for (path, _) in &reads {
        let listed = doc["paths"][path]["get"]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{path} has a GET"));
        for _ in 0..COPIES {
            let response = client.read_response().unwrap();
            if !listed.contains_key(&response.status.to_string()) {
                undocumented.insert((*path, response.status));
            }
            if response.status == 503 {
                overloaded.insert(*path);
            }
        }
    }
    assert_eq!(undocumented, BTreeSet::new(), "(path, status) not listed");
    let every: BTreeSet<&str> = reads.iter().map(|(path, _)| *path).collect();
    assert_eq!(overloaded, every, "each read met the full ring");
}
