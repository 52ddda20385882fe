//! The p2p layer's configuration: a typed struct with documented defaults and a `validate()` that
//! names the first broken rule, run once at start-up by `spawn`.

use std::collections::HashSet;

use libp2p::Multiaddr;
use ordo_chain::{Keypair, PublicKey};

use crate::error::{P2pError, Result};

/// The longest chain id, as protocol §3 limits it.
pub const CHAIN_ID_MAX_BYTES: usize = 64;

/// One genesis validator as the p2p layer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorPeer {
    pub key: PublicKey,
    pub name: String,
    /// The genesis `p2p_addr`, dialled at start; empty when unknown (addresses then come from
    /// bootstrap peers and signed announcements).
    pub p2p_addr: String,
}

impl From<(PublicKey, String, String)> for ValidatorPeer {
    fn from((key, name, p2p_addr): (PublicKey, String, String)) -> Self {
        ValidatorPeer { key, name, p2p_addr }
    }
}

/// Everything `spawn` needs. Build it with [`P2pConfig::new`] and adjust the public fields.
#[derive(Clone)]
pub struct P2pConfig {
    pub chain_id: String,
    /// The validator's ed25519 seed: it signs announcements and is the libp2p identity.
    pub seed: [u8; 32],
    /// The multiaddr to listen on, e.g. `/ip4/0.0.0.0/tcp/7000` (`tcp/0` picks a free port).
    pub listen: String,
    /// Addresses dialled at start to join the network; `/p2p/<peer id>` may end them.
    pub bootstrap: Vec<String>,
    /// The whole committee, the local validator included: the only peers admitted.
    pub validators: Vec<ValidatorPeer>,
    /// The largest gossip or direct message payload, in bytes, sent or accepted.
    pub max_message_bytes: usize,
    /// The largest block-sync response, in bytes, sent or accepted.
    pub max_sync_response_bytes: usize,
    /// Capacity of the channel that hands events to the node; when full, the network waits.
    pub event_channel_capacity: usize,
    /// Capacity of the channel from `P2pHandle` to the network task.
    pub command_channel_capacity: usize,
    /// How long `request_blocks` waits for an answer.
    pub block_request_timeout_ms: u64,
    /// Inbound block requests waiting for the node's reply at once; more are refused.
    pub max_pending_block_replies: usize,
    /// Outbound block requests in flight at once; more fail with `TooManyRequests`.
    pub max_outbound_block_requests: usize,
    /// First redial delay after a failed dial or a lost connection; doubles up to the maximum.
    pub dial_backoff_initial_ms: u64,
    pub dial_backoff_max_ms: u64,
    /// How often the node re-publishes its signed address announcement.
    pub announce_interval_ms: u64,
    /// The gossipsub heartbeat (mesh maintenance and lazy gossip).
    pub gossip_heartbeat_ms: u64,
    /// How long an idle connection to a validator is kept open.
    pub idle_connection_timeout_ms: u64,
}

impl std::fmt::Debug for P2pConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is secret: print the public key instead.
        f.debug_struct("P2pConfig")
            .field("chain_id", &self.chain_id)
            .field("key", &Keypair::from_seed(self.seed).public())
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("validators", &self.validators.len())
            .field("max_message_bytes", &self.max_message_bytes)
            .field("event_channel_capacity", &self.event_channel_capacity)
            .finish_non_exhaustive()
    }
}

impl P2pConfig {
    /// Default limits: messages up to 10 MiB (a full 8 MiB batch of protocol §3 in a consensus
    /// envelope), sync responses up to 64 MiB, 1024-slot channels, 10 s block requests, redial
    /// between 250 ms and 10 s, announcements every 5 s.
    pub fn new(
        chain_id: impl Into<String>,
        seed: [u8; 32],
        listen: impl Into<String>,
        validators: Vec<ValidatorPeer>,
    ) -> Self {
        P2pConfig {
            chain_id: chain_id.into(),
            seed,
            listen: listen.into(),
            bootstrap: Vec::new(),
            validators,
            max_message_bytes: 10 * 1024 * 1024,
            max_sync_response_bytes: ordo_chain::limits::SYNC_RESPONSE_MAX_BYTES,
            event_channel_capacity: 1024,
            command_channel_capacity: 1024,
            block_request_timeout_ms: 10_000,
            max_pending_block_replies: 64,
            max_outbound_block_requests: 64,
            dial_backoff_initial_ms: 250,
            dial_backoff_max_ms: 10_000,
            announce_interval_ms: 5_000,
            gossip_heartbeat_ms: 1_000,
            idle_connection_timeout_ms: 3_600_000,
        }
    }

    /// The local validator's public key.
    pub fn public_key(&self) -> PublicKey {
        Keypair::from_seed(self.seed).public()
    }

    /// Checks every rule; the error names the first one broken.
    pub fn validate(&self) -> Result<()> {
        if self.chain_id.is_empty() || self.chain_id.len() > CHAIN_ID_MAX_BYTES {
            return Err(P2pError::BadChainId { len: self.chain_id.len(), max_bytes: CHAIN_ID_MAX_BYTES });
        }
        self.listen
            .parse::<Multiaddr>()
            .map_err(|e| P2pError::BadListenAddr { addr: self.listen.clone(), reason: e.to_string() })?;
        for addr in &self.bootstrap {
            addr.parse::<Multiaddr>()
                .map_err(|e| P2pError::BadBootstrapAddr { addr: addr.clone(), reason: e.to_string() })?;
        }
        let mut seen = HashSet::new();
        for v in &self.validators {
            if !seen.insert(v.key) {
                return Err(P2pError::DuplicateValidator { key: v.key });
            }
            if v.key.to_verifying_key().is_err() {
                return Err(P2pError::BadValidatorKey { name: v.name.clone(), key: v.key });
            }
            if !v.p2p_addr.is_empty() {
                v.p2p_addr.parse::<Multiaddr>().map_err(|e| P2pError::BadValidatorAddr {
                    name: v.name.clone(),
                    addr: v.p2p_addr.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        let me = self.public_key();
        if !seen.contains(&me) {
            return Err(P2pError::NotAValidator { key: me });
        }
        let limits: [(&'static str, u64); 9] = [
            ("max_message_bytes", self.max_message_bytes as u64),
            ("max_sync_response_bytes", self.max_sync_response_bytes as u64),
            ("event_channel_capacity", self.event_channel_capacity as u64),
            ("command_channel_capacity", self.command_channel_capacity as u64),
            ("block_request_timeout_ms", self.block_request_timeout_ms),
            ("max_pending_block_replies", self.max_pending_block_replies as u64),
            ("max_outbound_block_requests", self.max_outbound_block_requests as u64),
            ("announce_interval_ms", self.announce_interval_ms),
            ("gossip_heartbeat_ms", self.gossip_heartbeat_ms),
        ];
        for (field, value) in limits {
            if value == 0 {
                return Err(P2pError::ZeroLimit { field });
            }
        }
        if self.dial_backoff_initial_ms == 0 {
            return Err(P2pError::ZeroLimit { field: "dial_backoff_initial_ms" });
        }
        if self.idle_connection_timeout_ms == 0 {
            return Err(P2pError::ZeroLimit { field: "idle_connection_timeout_ms" });
        }
        if self.dial_backoff_initial_ms > self.dial_backoff_max_ms {
            return Err(P2pError::BackoffOrder {
                initial_ms: self.dial_backoff_initial_ms,
                max_ms: self.dial_backoff_max_ms,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committee(n: u8) -> Vec<ValidatorPeer> {
        (0..n)
            .map(|i| ValidatorPeer {
                key: Keypair::from_seed([i + 1; 32]).public(),
                name: format!("node{i}"),
                p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", 7000 + i as u16),
            })
            .collect()
    }

    #[test]
    fn default_config_is_valid() {
        let c = P2pConfig::new("ordo-test", [1; 32], "/ip4/127.0.0.1/tcp/0", committee(4));
        c.validate().unwrap();
    }

    #[test]
    fn each_rule_is_named() {
        let base = P2pConfig::new("ordo-test", [1; 32], "/ip4/127.0.0.1/tcp/0", committee(4));

        let mut c = base.clone();
        c.chain_id = String::new();
        assert_eq!(c.validate(), Err(P2pError::BadChainId { len: 0, max_bytes: 64 }));

        let mut c = base.clone();
        c.listen = "127.0.0.1:7000".into();
        assert!(matches!(c.validate(), Err(P2pError::BadListenAddr { .. })));

        let mut c = base.clone();
        c.bootstrap = vec!["nonsense".into()];
        assert!(matches!(c.validate(), Err(P2pError::BadBootstrapAddr { addr, .. }) if addr == "nonsense"));

        let mut c = base.clone();
        c.validators[2].p2p_addr = "tcp://x".into();
        assert!(matches!(c.validate(), Err(P2pError::BadValidatorAddr { name, .. }) if name == "node2"));

        let mut c = base.clone();
        let dup = c.validators[1].clone();
        c.validators.push(dup.clone());
        assert_eq!(c.validate(), Err(P2pError::DuplicateValidator { key: dup.key }));

        let mut c = base.clone();
        c.seed = [99; 32];
        assert_eq!(c.validate(), Err(P2pError::NotAValidator { key: Keypair::from_seed([99; 32]).public() }));

        let mut c = base.clone();
        c.event_channel_capacity = 0;
        assert_eq!(c.validate(), Err(P2pError::ZeroLimit { field: "event_channel_capacity" }));

        let mut c = base.clone();
        c.dial_backoff_initial_ms = 20_000;
        assert_eq!(c.validate(), Err(P2pError::BackoffOrder { initial_ms: 20_000, max_ms: 10_000 }));

        let mut c = base;
        let mut id = [0u8; 32];
        id[0] = 1; // The identity point: small order, so not an acceptable validator key.
        c.validators[3].key = PublicKey(id);
        assert!(matches!(c.validate(), Err(P2pError::BadValidatorKey { name, .. }) if name == "node3"));
    }
}
