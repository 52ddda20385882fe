//! The bench's HTTP side: blocking ureq agents, and the sorting of every answer to a batch POST
//! into taken (one item per transaction), refused (another node may take it) or rejected (no
//! node will). The sorting is what lets the bench move a refused request on to the next node
//! instead of hammering the one that refused it.

use std::io::ErrorKind as IoKind;
use std::time::Duration;

use serde_json::Value;

/// How long one batch POST may take before the node counts as refusing it (`timeout`): a node
/// that slow is skipped for a while, and the request goes to the next one. Resending is safe,
/// because submitting a known `tx_id` is idempotent (SPEC §3).
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How long a status, metrics or block read may take. Short, so that a paused node delays the
/// report or the chain follower by seconds, not minutes.
pub const READ_TIMEOUT_MS: u64 = 3_000;

/// Per-item error codes that mean "not now, maybe elsewhere": the item goes to the next node.
/// Any other item error (bad signature, wrong chain id, over a limit) is final.
pub const REFUSAL_CODES: &[&str] = &["mempool_full", "not_ready", "rate_limited", "timeout", "internal"];

/// The answer to one batch POST, as the submitter acts on it.
pub enum Posted {
    /// 200 with one item per transaction, and the `Retry-After` the node sent with it (a node
    /// sends one when it refused some items for a full mempool).
    Items { items: Vec<Value>, retry_after: Option<Duration> },
    /// The node did not take the request (429, 503 or another 5xx, no connection, no answer in
    /// time): another node may. `reason` is the key of the per-node refusal counts.
    Refused { reason: String, retry_after: Option<Duration> },
    /// The node judged the request itself bad (another 4xx, or a 200 that is not one item per
    /// transaction): every node would.
    Rejected { reason: String, message: String },
}

pub fn agent(timeout_ms: u64) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_millis(timeout_ms)).build()
}

/// POSTs a JSON array of `count` transactions to `url`'s batch endpoint, waiting at most
/// `timeout` for the whole answer.
pub fn post_batch(agent: &ureq::Agent, url: &str, body: &str, count: usize, timeout: Duration) -> Posted {
    let answer = agent
        .post(&format!("{url}/v1/transactions/batch"))
        .timeout(timeout)
        .set("Content-Type", "application/json")
        .send_string(body);
    match answer {
        Ok(resp) => {
            let retry_after = retry_after(&resp);
            let status = resp.status();
            match resp.into_json::<Value>() {
                Ok(Value::Array(items)) if status == 200 && items.len() == count => {
                    Posted::Items { items, retry_after }
                }
                Ok(other) => Posted::Rejected {
                    reason: format!("{status}"),
                    message: format!("not one answer per transaction ({count} sent): {}", clip(&other.to_string())),
                },
                // The answer stopped half-way: the node may or may not have admitted the items.
                Err(e) => Posted::Refused { reason: io_reason(&e).to_string(), retry_after: None },
            }
        }
        Err(ureq::Error::Status(code, resp)) => {
            let retry_after = retry_after(&resp);
            let body: Value = resp.into_json().unwrap_or(Value::Null);
            if code == 429 || code >= 500 {
                Posted::Refused { reason: code.to_string(), retry_after }
            } else {
                let kind = body["error"]["code"].as_str().unwrap_or("no_error_code");
                Posted::Rejected {
                    reason: format!("{code} {kind}"),
                    message: body["error"]["message"].as_str().map_or_else(|| clip(&body.to_string()), str::to_string),
                }
            }
        }
        Err(ureq::Error::Transport(t)) => {
            Posted::Refused { reason: transport_reason(&t).to_string(), retry_after: None }
        }
    }
}

/// GETs a JSON document: `Ok(None)` on 404, `Err` with a short reason on anything else.
pub fn get_json(agent: &ureq::Agent, url: &str, path: &str) -> Result<Option<Value>, String> {
    get_typed(agent, url, path)
}

/// [`get_json`] into a type that names only the fields the caller reads: serde skips the rest
/// without building them (the block follower reads 2,000 `tx_id`s of a block, not its whole tree).
/// The body is read whole first: parsing straight from the response reader goes through it a
/// byte at a time, which showed in the bench's profile on 600 KB blocks.
pub fn get_typed<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    url: &str,
    path: &str,
) -> Result<Option<T>, String> {
    match agent.get(&format!("{url}{path}")).call() {
        Ok(resp) => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut resp.into_reader(), &mut body)
                .map_err(|e| format!("GET {url}{path}: could not read the answer: {e}"))?;
            serde_json::from_slice(&body).map(Some).map_err(|e| format!("GET {url}{path}: the answer is not JSON: {e}"))
        }
        Err(ureq::Error::Status(404, _)) => Ok(None),
        Err(ureq::Error::Status(code, _)) => Err(format!("GET {url}{path}: {code}")),
        Err(ureq::Error::Transport(t)) => Err(format!("GET {url}{path}: {t}")),
    }
}

/// GETs a text document (Prometheus metrics); `None` when the node does not serve it.
pub fn get_text(agent: &ureq::Agent, url: &str, path: &str) -> Option<String> {
    agent.get(&format!("{url}{path}")).call().ok()?.into_string().ok()
}

/// `Retry-After` in its delay-seconds form; the HTTP-date form is left to the default back-off.
fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    resp.header("Retry-After")?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn transport_reason(t: &ureq::Transport) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), IoKind::TimedOut | IoKind::WouldBlock) {
                return "timeout";
            }
        }
        source = e.source();
    }
    match t.kind() {
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => "connect",
        _ => "io",
    }
}

fn io_reason(e: &std::io::Error) -> &'static str {
    if matches!(e.kind(), IoKind::TimedOut | IoKind::WouldBlock) {
        "timeout"
    } else {
        "io"
    }
}

fn clip(s: &str) -> String {
    const SHOWN_MAX_CHARS: usize = 200;
    if s.chars().count() <= SHOWN_MAX_CHARS {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(SHOWN_MAX_CHARS).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port on loopback that nothing listens on: bound, then closed.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn a_closed_port_is_a_connect_refusal() {
        let url = format!("http://127.0.0.1:{}", closed_port());
        match post_batch(&agent(1_000), &url, "[]", 0, Duration::from_millis(1_000)) {
            Posted::Refused { reason, retry_after } => {
                assert_eq!(reason, "connect");
                assert_eq!(retry_after, None);
            }
            _ => panic!("a closed port must be a refusal"),
        }
        assert!(get_json(&agent(1_000), &url, "/v1/status").is_err());
        assert_eq!(get_text(&agent(1_000), &url, "/metrics"), None);
    }

    #[test]
    fn a_silent_server_is_a_timeout_refusal() {
        // Accepts the connection, never answers.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let holder = std::thread::spawn(move || {
            let (conn, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1_500));
            drop(conn);
        });
        match post_batch(&agent(300), &url, "[]", 0, Duration::from_millis(300)) {
            Posted::Refused { reason, .. } => assert_eq!(reason, "timeout"),
            _ => panic!("a silent server must be a refusal"),
        }
        holder.join().unwrap();
    }

    /// Serves one canned HTTP answer to one request.
    fn serve_once(answer: impl Into<String>) -> String {
        use std::io::{Read, Write};
        let answer: String = answer.into();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut conn, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(answer.as_bytes());
        });
        url
    }

    #[test]
    fn answers_are_sorted_by_status() {
        let full = serve_once(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        );
        match post_batch(&agent(2_000), &full, "[]", 0, Duration::from_millis(2_000)) {
            Posted::Refused { reason, retry_after } => {
                assert_eq!(reason, "503");
                assert_eq!(retry_after, Some(Duration::from_secs(3)));
            }
            _ => panic!("503 is a refusal"),
        }
        let body = r#"{"error":{"code":"invalid_json","message":"expected an array"}}"#;
        let bad = serve_once(format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        match post_batch(&agent(2_000), &bad, "[]", 0, Duration::from_millis(2_000)) {
            Posted::Rejected { reason, message } => {
                assert_eq!(reason, "400 invalid_json");
                assert_eq!(message, "expected an array");
            }
            _ => panic!("400 is a rejection"),
        }
        let short = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n[{}]");
        assert!(matches!(
            post_batch(&agent(2_000), &short, "[1,2]", 2, Duration::from_millis(2_000)),
            Posted::Rejected { .. }
        ));
        let good = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n[{},{}]");
        match post_batch(&agent(2_000), &good, "[1,2]", 2, Duration::from_millis(2_000)) {
            Posted::Items { items, retry_after } => {
                assert_eq!(items.len(), 2);
                assert_eq!(retry_after, None);
            }
            _ => panic!("200 with one item per transaction is taken"),
        }
    }
}
