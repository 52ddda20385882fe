//! The HTTP client `ordo chaos` uses while faults are live. `client::Api` waits up to a minute
//! for an answer, which is right for a person's command but wrong here: a paused node accepts the
//! connection and never answers, and the workload must move on to another node quickly.

use std::time::Duration;

use serde_json::Value;

/// How long a request to a node may take while faults are live before the node counts as not
/// answering.
pub const REQUEST_TIMEOUT_MS: u64 = 2_000;

/// How long opening a connection may take.
const CONNECT_TIMEOUT_MS: u64 = 1_000;

pub struct Http {
    base: String,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .build();
        Self { base: base.trim_end_matches('/').to_string(), agent }
    }

    /// The status and JSON body (`Null` when it is not JSON) of an answer; `Err` when no answer
    /// came (refused, reset, timed out).
    fn answer(r: Result<ureq::Response, ureq::Error>) -> Result<(u16, Value), String> {
        match r {
            Ok(resp) => {
                let code = resp.status();
                Ok((code, resp.into_json().unwrap_or(Value::Null)))
            }
            Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_json().unwrap_or(Value::Null))),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn get(&self, path: &str) -> Result<(u16, Value), String> {
        Self::answer(self.agent.get(&format!("{}{path}", self.base)).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        Self::answer(self.agent.post(&format!("{}{path}", self.base)).send_json(body))
    }
}
