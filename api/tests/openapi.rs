//! `GET /v1/openapi.json` (protocol §7): the document is OpenAPI 3, documents every route the
//! router serves and nothing it does not, is the checked-in `docs/openapi.json`, and describes
//! the real answers: each answer below is checked against the schema the document gives for its
//! route, status and content type, with a small checker written for this test.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{client, put, Harness, CHAIN};
use ordo_api::{ApiConfig, Readiness};
use ordo_chain::{Op, Transaction};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Where the published copy of the document lives.
fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

async fn document(h: &Harness) -> (String, Value) {
    let resp = h.get("/v1/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    (text, doc)
}

#[tokio::test]
async fn serves_an_openapi_3_document() {
    let h = Harness::start().await;
    let (_, doc) = document(&h).await;
    let version = doc["openapi"].as_str().expect("an `openapi` version string");
    assert!(version.starts_with("3."), "openapi {version:?}");
    assert_eq!(doc["info"]["title"], "Ordo node API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(!doc["paths"].as_object().unwrap().is_empty());
    // Every reference points at something the document defines.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        resolve(&doc, &r);
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The object a local `$ref` (`#/components/...`) points at; panics on a dangling one.
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("not a local reference: {reference}"));
    doc.pointer(pointer).unwrap_or_else(|| panic!("dangling reference {reference}"))
}

#[tokio::test]
async fn the_served_document_is_docs_openapi_json() {
    let h = Harness::start().await;
    let (served, doc) = document(&h).await;
    // The served bytes are the pretty form with a final newline, so the file diffs cleanly.
    assert!(served.starts_with("{\n  \"openapi\": ") && served.ends_with("}\n"), "not pretty JSON");
    assert!(doc.is_object());
    let path = golden_path();
    if std::env::var_os("ORDO_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    if published != served {
        let first_difference = published
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(published.lines().count().min(served.lines().count()));
        panic!(
            "docs/openapi.json is not the document the API serves (first difference at line {}). \
             If the change to the API is intended, regenerate it with\n    \
             ORDO_UPDATE_GOLDEN=1 cargo test -p ordo-api --test openapi\nand commit the file.",
            first_difference + 1
        );
    }
}

/// The paths the real router serves, read from its `Debug` form: axum offers no other way to
/// list a router's routes, and this one sees every route however it was added (`.route`,
/// `.merge`, `OpenApiRouter`). Fails loudly if axum changes that form.
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    // Only the main path router: the fallback router holds axum's own catch-all entries.
    let main = debug.split("fallback_router:").next().unwrap();
    let marker = "RouteId(";
    let mut paths = BTreeSet::new();
    let mut rest = main;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let Some(after_id) = rest.find("): \"") else { continue };
        if !rest[..after_id].chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let quoted = &rest[after_id + 4..];
        let end = quoted.find('"').expect("a closing quote");
        paths.insert(quoted[..end].to_string());
    }
    assert!(
        paths.contains("/v1/status") && paths.contains("/healthz"),
        "could not read the router's paths from its Debug form (did axum change it?): {paths:?}"
    );
    paths
}

#[tokio::test]
async fn every_served_path_is_documented_and_every_documented_path_is_served() {
    let h = Harness::start().await;
    let router = ordo_api::router(h.node.clone(), ApiConfig::default()).unwrap();
    let served: BTreeSet<String> = router_paths(&router).iter().map(|p| ordo_api::openapi::openapi_path(p)).collect();
    let (_, doc) = document(&h).await;
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    let unserved: Vec<&String> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes served but missing from the OpenAPI document: {undocumented:?}. Register a /v1 route \
         with `routes!` and a `#[utoipa::path]` on its handler, or document it in api/src/openapi."
    );
    assert!(unserved.is_empty(), "the OpenAPI document describes routes the router does not serve: {unserved:?}");
}

/// A concrete path for a documented template, with values the test node can look up.
fn sample_path(template: &str) -> String {
    let zero_hash = "0".repeat(64);
    template
        .replace("{tx_id}", &zero_hash)
        .replace("{hash}", &zero_hash)
        .replace("{height}", "0")
        .replace("{key}", "greeting")
}

#[tokio::test]
async fn every_documented_operation_is_served_with_its_method() {
    let h = Harness::start().await;
    let (_, doc) = document(&h).await;
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = h.url(&sample_path(template));
            let mut request = h.http.request(method.clone(), &url);
            if template == "/v1/events" {
                // Only the headers are needed: the stream itself never ends.
                request = request.timeout(std::time::Duration::from_secs(5));
            }
            let resp = request.send().await.unwrap();
            let status = resp.status();
            let body = if template == "/v1/events" { String::new() } else { resp.text().await.unwrap() };
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {template}: {body}");
            assert!(
                !body.contains("no route for"),
                "{method} {template} is documented but not routed: {status} {body}"
            );
            checked += 1;
        }
        // The methods the path serves are the ones documented (axum answers HEAD wherever it
        // answers GET): the 405 for a method no route uses lists them.
        let resp = h.http.delete(h.url(&sample_path(template))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "DELETE {template}");
        let allow: BTreeSet<String> =
            resp.headers()["allow"].to_str().unwrap().split(',').map(|m| m.trim().to_ascii_lowercase()).collect();
        let mut documented: BTreeSet<String> = item.as_object().unwrap().keys().cloned().collect();
        if documented.contains("get") {
            documented.insert("head".into());
        }
        assert_eq!(allow, documented, "the methods {template} serves");
    }
    assert!(checked >= 20, "only {checked} operations documented");
}

// ---- Real answers against the document ----

/// Checks one answer against the document: its status must be documented for the operation, its
/// content type must be one the document gives for that status, and a JSON body must validate
/// against that content's schema. Headers the document lists for the answer must be present.
/// Returns the body.
async fn check_answer(doc: &Value, method: &str, template: &str, resp: reqwest::Response) -> Value {
    let status = resp.status().as_u16().to_string();
    let what = format!("{} {template} answered {status}", method.to_uppercase());
    let operation = &doc["paths"][template][method];
    assert!(operation.is_object(), "{what}: the operation is not documented");
    let mut response = operation["responses"]
        .get(&status)
        .unwrap_or_else(|| panic!("{what}: status not documented; documented: {}", operation["responses"]));
    if let Some(r) = response.get("$ref").and_then(Value::as_str) {
        response = resolve(doc, r);
    }
    if let Some(headers) = response.get("headers").and_then(Value::as_object) {
        for name in headers.keys() {
            // The batch answer's Retry-After is conditional (only when an item was refused for
            // `mempool_full`), and says so; every other documented header is always sent.
            if template == "/v1/transactions/batch" && status == "200" {
                continue;
            }
            assert!(resp.headers().contains_key(name.as_str()), "{what}: header {name} missing");
        }
    }
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.bytes().await.unwrap();
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(bytes.is_empty(), "{what}: a body the document does not describe");
        return Value::Null;
    };
    let content_type = content_type.unwrap_or_else(|| panic!("{what}: no Content-Type"));
    let essence = |ct: &str| ct.split(';').next().unwrap().trim().to_ascii_lowercase();
    let (_, media) = content
        .iter()
        .find(|(documented, _)| essence(documented) == essence(&content_type))
        .unwrap_or_else(|| panic!("{what}: Content-Type {content_type} not documented: {content:?}"));
    if essence(&content_type) != "application/json" {
        return Value::Null;
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    let schema = &media["schema"];
    if let Err(e) = check(doc, schema, &body, "$") {
        panic!("{what}: the body does not match the document: {e}\nbody: {body}");
    }
    body
}

/// Validates `value` against `schema` (the OpenAPI 3.1 / JSON Schema subset utoipa writes),
/// resolving `$ref`s in `doc`. Stricter than JSON Schema in one way: an object may hold no key
/// its schema does not list, since an undocumented field is a document that is not true.
/// A keyword the checker does not know is an error, so it can never pass by ignoring one.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("{at}: schema {schema} is not an object")),
        };
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$ref" => check(doc, resolve(doc, rule.as_str().unwrap()), value, at)?,
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => return Err(format!("{at}: bad type {rule}")),
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    return Err(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    return Err(format!("{at}: {value} is not {rule}"));
                }
            }
            "properties" | "required" | "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    check_object(doc, schema, object, at)?;
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(doc, rule, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "oneOf" => {
                let errors: Vec<String> =
                    rule.as_array().unwrap().iter().filter_map(|s| check(doc, s, value, at).err()).collect();
                let matched = rule.as_array().unwrap().len() - errors.len();
                if matched != 1 {
                    return Err(format!("{at}: matches {matched} of oneOf, not 1 ({})", errors.join("; ")));
                }
            }
            "anyOf" => {
                let errors: Vec<String> =
                    rule.as_array().unwrap().iter().filter_map(|s| check(doc, s, value, at).err()).collect();
                if errors.len() == rule.as_array().unwrap().len() {
                    return Err(format!("{at}: matches none of anyOf ({})", errors.join("; ")));
                }
            }
            "allOf" => {
                for s in rule.as_array().unwrap() {
                    check(doc, s, value, at)?;
                }
            }
            "minimum" | "maximum" => {
                if let Some(n) = value.as_f64() {
                    let bound = rule.as_f64().unwrap();
                    if (keyword == "minimum" && n < bound) || (keyword == "maximum" && n > bound) {
                        return Err(format!("{at}: {n} is outside {keyword} {bound}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(s) = value.as_str() {
                    let n = s.chars().count() as u64;
                    let bound = rule.as_u64().unwrap();
                    if (keyword == "minLength" && n < bound) || (keyword == "maxLength" && n > bound) {
                        return Err(format!("{at}: length {n} is outside {keyword} {bound}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = value.as_str() {
                    check_hex_pattern(rule.as_str().unwrap(), s).map_err(|e| format!("{at}: {e}"))?;
                }
            }
            // Annotations: they say something about a value but constrain nothing here.
            "description" | "title" | "format" | "example" | "examples" | "default" | "deprecated" => {}
            other => return Err(format!("{at}: the checker does not know the keyword {other:?}")),
        }
    }
    Ok(())
}

fn check_object(
    doc: &Value,
    schema: &serde_json::Map<String, Value>,
    object: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let empty = serde_json::Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let name = required.as_str().unwrap();
        if !object.contains_key(name) {
            return Err(format!("{at}: required field {name:?} is missing"));
        }
    }
    for (key, v) in object {
        let Some(property) = properties.get(key) else {
            return Err(format!("{at}: field {key:?} is not in the document"));
        };
        check(doc, property, v, &format!("{at}.{key}"))?;
    }
    Ok(())
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_u64() || value.is_i64(),
        _ => false,
    }
}

/// The only patterns the document uses: `^[0-9a-fA-F]{N}$`, hex strings of a fixed length.
fn check_hex_pattern(pattern: &str, s: &str) -> Result<(), String> {
    let n: usize = pattern
        .strip_prefix("^[0-9a-fA-F]{")
        .and_then(|p| p.strip_suffix("}$"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("the checker does not know the pattern {pattern:?}"))?;
    if s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{s:?} does not match {pattern}"))
    }
}

#[test]
fn the_checker_refuses_what_the_schema_does_not_allow() {
    let doc = json!({"components": {"schemas": {
        "Hash": {"type": "string", "pattern": "^[0-9a-fA-F]{4}$"},
        "Thing": {"type": "object", "required": ["id", "n"], "additionalProperties": false, "properties": {
            "id": {"$ref": "#/components/schemas/Hash"},
            "n": {"type": ["integer", "null"], "minimum": 0},
            "kind": {"type": "string", "enum": ["a", "b"]}
        }}
    }}});
    let thing = json!({"$ref": "#/components/schemas/Thing"});
    assert_eq!(check(&doc, &thing, &json!({"id": "ab12", "n": 3, "kind": "a"}), "$"), Ok(()));
    assert_eq!(check(&doc, &thing, &json!({"id": "ab12", "n": null}), "$"), Ok(()));
    for bad in [
        json!({"id": "ab12"}),
        json!({"id": "ab1", "n": 1}),
        json!({"id": "zz12", "n": 1}),
        json!({"id": "ab12", "n": -1}),
        json!({"id": "ab12", "n": 1.5}),
        json!({"id": "ab12", "n": 1, "kind": "c"}),
        json!({"id": "ab12", "n": 1, "extra": true}),
        json!([]),
    ] {
        assert!(check(&doc, &thing, &bad, "$").is_err(), "{bad} passed");
    }
    let one_of = json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Hash"}]});
    assert!(check(&doc, &one_of, &Value::Null, "$").is_ok());
    assert!(check(&doc, &one_of, &json!(7), "$").is_err());
    assert!(check(&doc, &json!({"unknownKeyword": 1}), &json!(1), "$").is_err());
}

#[tokio::test]
async fn real_answers_match_the_document() {
    let h = Harness::start().await;
    let (_, doc) = document(&h).await;
    let d = &doc;

    // The request body a client sends is what the document asks for.
    let tx = put(1, "colour", "blue");
    let request_schema =
        &d["paths"]["/v1/transactions"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    check(d, request_schema, &serde_json::to_value(&tx).unwrap(), "$").unwrap();
    let delete = Transaction::sign(CHAIN, &client(), 2, Op::Delete { key: "colour".into() });
    check(d, request_schema, &serde_json::to_value(&delete).unwrap(), "$").unwrap();

    check_answer(d, "get", "/healthz", h.get("/healthz").await).await;
    check_answer(d, "get", "/readyz", h.get("/readyz").await).await;
    check_answer(d, "get", "/v1/status", h.get("/v1/status").await).await;
    check_answer(d, "get", "/v1/validators", h.get("/v1/validators").await).await;
    check_answer(d, "get", "/v1/state/{key}", h.get("/v1/state/greeting").await).await;
    // The genesis block, whose certificate is null.
    let genesis = check_answer(d, "get", "/v1/blocks/{height}", h.get("/v1/blocks/0").await).await;
    assert!(genesis["certificate"].is_null());

    // Submitted: accepted, then known and pending (alone and in a batch, next to a refused item).
    let accepted = check_answer(d, "post", "/v1/transactions", h.post_json("/v1/transactions", &json!(tx)).await).await;
    assert_eq!(accepted["status"], "pending");
    let known = check_answer(d, "post", "/v1/transactions", h.post_json("/v1/transactions", &json!(tx)).await).await;
    assert!(known["height"].is_null());
    let tx_path = format!("/v1/transactions/{}", tx.tx_id());
    check_answer(d, "get", "/v1/transactions/{tx_id}", h.get(&tx_path).await).await;
    let batch = json!([tx, delete, {"chain_id": CHAIN}]);
    let items =
        check_answer(d, "post", "/v1/transactions/batch", h.post_json("/v1/transactions/batch", &batch).await).await;
    assert_eq!(items.as_array().unwrap().len(), 3);
    assert!(items[2]["error"].is_object(), "{items}");

    // Committed: the transaction's status, the block (with a PBFT certificate) by height, by
    // hash and as the latest, a page of blocks, the state entry it wrote.
    let block = h.commit_block(&[tx.clone(), delete.clone()]);
    let committed = check_answer(d, "get", "/v1/transactions/{tx_id}", h.get(&tx_path).await).await;
    assert_eq!(committed["status"], "committed");
    let served = check_answer(d, "get", "/v1/blocks/{height}", h.get("/v1/blocks/1").await).await;
    assert_eq!(served["certificate"]["kind"], "pbft");
    let by_hash = format!("/v1/blocks/by-hash/{}", block.hash);
    check_answer(d, "get", "/v1/blocks/by-hash/{hash}", h.get(&by_hash).await).await;
    check_answer(d, "get", "/v1/blocks/latest", h.get("/v1/blocks/latest").await).await;
    let page = check_answer(d, "get", "/v1/blocks", h.get("/v1/blocks?limit=5").await).await;
    assert_eq!(page["blocks"].as_array().unwrap().len(), 2);
    assert!(page["next"].is_null());
    check_answer(d, "get", "/v1/blocks", h.get("/v1/blocks?limit=1").await).await;

    // Errors, each with the status the document gives for its route.
    check_answer(d, "get", "/v1/blocks/{height}", h.get("/v1/blocks/99").await).await;
    check_answer(d, "get", "/v1/blocks/{height}", h.get("/v1/blocks/abc").await).await;
    check_answer(d, "get", "/v1/blocks", h.get("/v1/blocks?limit=0").await).await;
    check_answer(d, "get", "/v1/state/{key}", h.get("/v1/state/absent").await).await;
    check_answer(d, "get", "/v1/transactions/{tx_id}", h.get("/v1/transactions/xyz").await).await;
    let post =
        |body: &'static [u8], content_type: &'static str| h.post_raw("/v1/transactions", content_type, body.to_vec());
    check_answer(d, "post", "/v1/transactions", post(b"{", "application/json").await).await;
    check_answer(d, "post", "/v1/transactions", post(b"{}", "text/plain").await).await;
    let wrong_chain = Transaction::sign("other-chain", &client(), 3, Op::Delete { key: "k".into() });
    check_answer(d, "post", "/v1/transactions", h.post_json("/v1/transactions", &json!(wrong_chain)).await).await;
    let oversized = vec![b' '; h.node.rules.limits.request_max_bytes + 1];
    check_answer(d, "post", "/v1/transactions", h.post_raw("/v1/transactions", "application/json", oversized).await)
        .await;
    *h.node.readiness.lock().unwrap() = Readiness::NotReady { reason: "alone".into() };
    check_answer(d, "get", "/readyz", h.get("/readyz").await).await;
    let fresh = put(4, "colour", "red");
    check_answer(d, "post", "/v1/transactions", h.post_json("/v1/transactions", &json!(fresh)).await).await;
    *h.node.readiness.lock().unwrap() = Readiness::Ready;

    // The document describes itself, and the other media types.
    check_answer(d, "get", "/v1/openapi.json", h.get("/v1/openapi.json").await).await;
    check_answer(d, "get", "/metrics", h.get("/metrics").await).await;

    // The explorer's pages, their failures, and the search's redirect (not followed).
    let browser = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = |path: String| {
        let request = browser.get(h.url(&path));
        async move { request.send().await.unwrap() }
    };
    let tx_page = format!("/tx/{}", tx.tx_id());
    for (template, path) in [
        ("/", "/".to_string()),
        ("/blocks", "/blocks".to_string()),
        ("/blocks", "/blocks?before=x".to_string()),
        ("/blocks/{height}", "/blocks/1".to_string()),
        ("/blocks/{height}", "/blocks/99".to_string()),
        ("/blocks/{height}", "/blocks/abc".to_string()),
        ("/tx/{tx_id}", tx_page),
        ("/tx/{tx_id}", format!("/tx/{}", "0".repeat(64))),
        ("/state/{key}", "/state/greeting".to_string()),
        ("/state/{key}", "/state/absent".to_string()),
        ("/state", "/state?key=greeting".to_string()),
        ("/state", "/state".to_string()),
        ("/validators", "/validators".to_string()),
        ("/search", "/search?q=1".to_string()),
        ("/search", "/search?q=nothing-here".to_string()),
        ("/search", "/search".to_string()),
        ("/favicon.ico", "/favicon.ico".to_string()),
    ] {
        check_answer(d, "get", template, page(path).await).await;
    }
}

/// Splits a Server-Sent Events text into (event name, data) pairs; comments and `retry:` lines
/// carry no event.
fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            Some((name?, data.join("\n")))
        })
        .collect()
}

#[tokio::test]
async fn the_event_stream_carries_what_the_document_says() {
    let h = Harness::start().await;
    let (_, doc) = document(&h).await;
    h.commit_block(&[put(1, "colour", "blue")]);
    let mut resp = h.get("/v1/events?from_height=0").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let media = &doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"];
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(media.get(content_type.as_str()).is_some(), "{content_type} not documented: {media}");
    // hello, then the blocks at heights 0 and 1, replayed from the store.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while sse_events(&text).iter().filter(|(name, _)| name == "block").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.expect("events in time").unwrap();
        text.push_str(std::str::from_utf8(&chunk.expect("the stream stays open")).unwrap());
    }
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let events = sse_events(&text);
    assert_eq!(events[0].0, "hello", "{text}");
    for (name, data) in &events {
        let data: Value = serde_json::from_str(data).unwrap();
        let expected = match name.as_str() {
            "hello" => "HelloEvent",
            "block" => "Block",
            "status" => "NodeStatus",
            other => panic!("an event the document does not describe: {other}"),
        };
        check(&doc, &schema(expected), &data, "$").unwrap_or_else(|e| panic!("{name} event: {e}"));
    }
}
