//! `genesis.json` (protocol §2): what a consortium agrees on before the first block. Parsing is
//! strict (unknown fields are errors) and validation names the first broken rule.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ordo_chain::limits::{CHAIN_ID_MAX_BYTES, KEY_MAX_BYTES, VALUE_MAX_BYTES};
use ordo_chain::tx::{Clients, TxRules};
use ordo_chain::{Block, Committee, Op, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{GenesisError, Result};

/// Which ordering protocol the committee runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusKind {
    /// PBFT: n = 3f+1 validators, tolerates f Byzantine ones.
    Pbft,
    /// Raft: crash faults only, tolerates a minority down.
    Raft,
}

impl ConsensusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsensusKind::Pbft => "pbft",
            ConsensusKind::Raft => "raft",
        }
    }

    /// The smallest committee that tolerates at least one fault: 3f+1 = 4 for PBFT, 2f+1 = 3
    /// for Raft.
    pub fn min_validators(self) -> usize {
        match self {
            ConsensusKind::Pbft => 4,
            ConsensusKind::Raft => 3,
        }
    }
}

impl std::str::FromStr for ConsensusKind {
    type Err = GenesisError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pbft" => Ok(ConsensusKind::Pbft),
            "raft" => Ok(ConsensusKind::Raft),
            other => Err(GenesisError::UnknownConsensus(other.to_string())),
        }
    }
}

/// Protocol parameters, beside `kind` in the genesis `consensus` object. Every validator must
/// run with the same values, which is why they live in the genesis and not in `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusParams {
    /// The most transactions in one batch (one block).
    pub batch_max_txs: u64,
    /// The most bytes of transactions in one batch.
    pub batch_max_bytes: u64,
    /// How long the proposer waits to fill a batch before proposing a partial one.
    pub batch_timeout_ms: u64,
    /// PBFT: a checkpoint every this many heights; logs below a stable checkpoint are dropped.
    pub checkpoint_interval: u64,
    /// PBFT: how long a backup waits for progress before it starts a view change (the first
    /// timeout; it doubles on every failed view change, up to 16 times this value).
    pub view_change_timeout_ms: u64,
    /// Raft: the base election timeout (randomised between this and twice this).
    pub election_timeout_ms: u64,
    /// Raft: the leader's heartbeat interval.
    pub heartbeat_interval_ms: u64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        use ordo_chain::limits::consensus_defaults as d;
        Self {
            batch_max_txs: d::BATCH_MAX_TXS as u64,
            batch_max_bytes: d::BATCH_MAX_BYTES as u64,
            batch_timeout_ms: d::BATCH_TIMEOUT_MS,
            checkpoint_interval: d::CHECKPOINT_INTERVAL,
            view_change_timeout_ms: d::VIEW_CHANGE_TIMEOUT_MS,
            election_timeout_ms: d::ELECTION_TIMEOUT_MS,
            heartbeat_interval_ms: d::HEARTBEAT_INTERVAL_MS,
        }
    }
}

impl ConsensusParams {
    fn validate(&self) -> Result<()> {
        let rule = |ok: bool, name: &'static str, value: u64, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(GenesisError::BadParam { name, value, rule })
            }
        };
        rule((1..=100_000).contains(&self.batch_max_txs), "batch_max_txs", self.batch_max_txs, "must be 1..=100000")?;
        rule(
            (1024..=64 * 1024 * 1024).contains(&self.batch_max_bytes),
            "batch_max_bytes",
            self.batch_max_bytes,
            "must be 1 KiB..=64 MiB",
        )?;
        rule(
            (1..=10_000).contains(&self.batch_timeout_ms),
            "batch_timeout_ms",
            self.batch_timeout_ms,
            "must be 1..=10000",
        )?;
        rule(
            (1..=10_000).contains(&self.checkpoint_interval),
            "checkpoint_interval",
            self.checkpoint_interval,
            "must be 1..=10000",
        )?;
        rule(
            self.view_change_timeout_ms > self.batch_timeout_ms,
            "view_change_timeout_ms",
            self.view_change_timeout_ms,
            "must be longer than batch_timeout_ms",
        )?;
        rule(
            self.election_timeout_ms > 2 * self.heartbeat_interval_ms,
            "election_timeout_ms",
            self.election_timeout_ms,
            "must be more than twice heartbeat_interval_ms",
        )?;
        rule(self.heartbeat_interval_ms >= 1, "heartbeat_interval_ms", self.heartbeat_interval_ms, "must be at least 1")
    }
}

/// The `consensus` object of the genesis: `kind` and the parameters beside it. (Serde's
/// `flatten` cannot be combined with `deny_unknown_fields`, so the object is split by hand.)
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConsensusSection {
    kind: String,
    params: ConsensusParams,
}

impl Serialize for ConsensusSection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(self.params).map_err(serde::ser::Error::custom)?;
        v.as_object_mut().expect("params are an object").insert("kind".into(), self.kind.clone().into());
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ConsensusSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::deserialize(d)?;
        let kind = match map.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(_) => return Err(D::Error::custom("consensus.kind must be a string")),
            None => return Err(D::Error::missing_field("kind")),
        };
        let params = serde_json::from_value(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(ConsensusSection { kind, params })
    }
}

/// One validator of the committee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorInfo {
    pub name: String,
    pub public_key: PublicKey,
    pub p2p_addr: String,
    pub api_addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    chain_id: String,
    genesis_time_ms: u64,
    consensus: ConsensusSection,
    validators: Vec<ValidatorInfo>,
    #[serde(default)]
    clients: Clients,
    #[serde(default)]
    state: BTreeMap<String, String>,
}

/// A validated genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    pub chain_id: String,
    pub genesis_time_ms: u64,
    pub consensus: ConsensusKind,
    pub params: ConsensusParams,
    pub validators: Vec<ValidatorInfo>,
    pub clients: Clients,
    pub state: BTreeMap<String, String>,
}

impl Genesis {
    pub fn load(path: &Path) -> Result<Genesis> {
        let bytes = std::fs::read(path).map_err(|source| GenesisError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&bytes).map_err(|e| match e {
            GenesisError::Json { reason, .. } => GenesisError::Json { path: path.to_path_buf(), reason },
            other => other,
        })
    }

    /// Parses and validates the JSON text of a genesis file.
    pub fn parse(bytes: &[u8]) -> Result<Genesis> {
        let file: GenesisFile = serde_json::from_slice(bytes)
            .map_err(|e| GenesisError::Json { path: "genesis.json".into(), reason: e.to_string() })?;
        let g = Genesis {
            chain_id: file.chain_id,
            genesis_time_ms: file.genesis_time_ms,
            consensus: file.consensus.kind.parse()?,
            params: file.consensus.params,
            validators: file.validators,
            clients: file.clients,
            state: file.state,
        };
        g.validate()?;
        Ok(g)
    }

    pub fn to_json(&self) -> String {
        let file = GenesisFile {
            chain_id: self.chain_id.clone(),
            genesis_time_ms: self.genesis_time_ms,
            consensus: ConsensusSection { kind: self.consensus.as_str().to_string(), params: self.params },
            validators: self.validators.clone(),
            clients: self.clients.clone(),
            state: self.state.clone(),
        };
        serde_json::to_string_pretty(&file).expect("genesis serializes")
    }

    /// Checks every rule of protocol §2, returning the first one broken.
    pub fn validate(&self) -> Result<()> {
        if self.chain_id.is_empty() || self.chain_id.len() > CHAIN_ID_MAX_BYTES {
            return Err(GenesisError::BadChainId { len: self.chain_id.len(), max: CHAIN_ID_MAX_BYTES });
        }
        let min = self.consensus.min_validators();
        if self.validators.len() < min {
            return Err(GenesisError::TooFewValidators {
                kind: self.consensus.as_str(),
                min,
                got: self.validators.len(),
            });
        }
        let mut names = HashMap::new();
        let mut keys = HashMap::new();
        let mut addrs: HashMap<String, String> = HashMap::new();
        for v in &self.validators {
            if !valid_name(&v.name) {
                return Err(GenesisError::BadName(v.name.clone()));
            }
            if names.insert(v.name.clone(), ()).is_some() {
                return Err(GenesisError::DuplicateName(v.name.clone()));
            }
            if keys.insert(v.public_key, ()).is_some() {
                return Err(GenesisError::DuplicateKey(v.public_key.to_hex()));
            }
            if v.public_key.to_verifying_key().is_err() {
                return Err(GenesisError::BadValidatorKey { name: v.name.clone(), key: v.public_key.to_hex() });
            }
            if parse_p2p_addr(&v.p2p_addr).is_none() {
                return Err(GenesisError::BadP2pAddr { name: v.name.clone(), addr: v.p2p_addr.clone() });
            }
            if parse_api_addr(&v.api_addr).is_none() {
                return Err(GenesisError::BadApiAddr { name: v.name.clone(), addr: v.api_addr.clone() });
            }
            for addr in [&v.p2p_addr, &v.api_addr] {
                if let Some(first) = addrs.insert(addr.clone(), v.name.clone()) {
                    return Err(GenesisError::DuplicateAddr { addr: addr.clone(), first, second: v.name.clone() });
                }
            }
        }
        self.params.validate()?;
        for (k, v) in &self.state {
            if k.is_empty() || k.len() > KEY_MAX_BYTES {
                return Err(GenesisError::BadStateEntry {
                    key: k.clone(),
                    reason: format!("keys are 1..={KEY_MAX_BYTES} bytes"),
                });
            }
            if v.len() > VALUE_MAX_BYTES {
                return Err(GenesisError::BadStateEntry {
                    key: k.clone(),
                    reason: format!("values are at most {VALUE_MAX_BYTES} bytes"),
                });
            }
        }
        Ok(())
    }

    /// The committee, in genesis order (the order fixes PBFT's primary rotation).
    pub fn committee(&self) -> Committee {
        Committee::new(self.validators.iter().map(|v| v.public_key).collect())
    }

    /// The genesis block (height 0) and the writes that seed the state.
    pub fn block(&self) -> (Block, Vec<Op>) {
        Block::genesis(&self.chain_id, self.genesis_time_ms, &self.state)
    }

    /// The transaction rules of this chain with the default limits.
    /// The certificate kind every block of this chain must carry (protocol §6).
    pub fn cert_kind(&self) -> ordo_chain::cert::CertKind {
        match self.consensus {
            ConsensusKind::Pbft => ordo_chain::cert::CertKind::Pbft,
            ConsensusKind::Raft => ordo_chain::cert::CertKind::Raft,
        }
    }

    pub fn tx_rules(&self) -> TxRules {
        TxRules { chain_id: self.chain_id.clone(), limits: Default::default(), clients: self.clients.clone() }
    }

    pub fn validator(&self, key: &PublicKey) -> Option<&ValidatorInfo> {
        self.validators.iter().find(|v| v.public_key == *key)
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A parsed p2p address: `/ip4/A/tcp/P`, `/ip6/A/tcp/P`, or `/dns|dns4|dns6/H/tcp/P`.
/// Returns the host and port. Checked here without libp2p, which only `p2p` may import.
pub fn parse_p2p_addr(addr: &str) -> Option<(String, u16)> {
    let parts: Vec<&str> = addr.split('/').collect();
    if parts.len() != 5 || !parts[0].is_empty() || parts[3] != "tcp" {
        return None;
    }
    let host = parts[2];
    let ok = match parts[1] {
        "ip4" => host.parse::<std::net::Ipv4Addr>().is_ok(),
        "ip6" => host.parse::<std::net::Ipv6Addr>().is_ok(),
        "dns" | "dns4" | "dns6" => valid_hostname(host),
        _ => false,
    };
    let port: u16 = parts[4].parse().ok().filter(|p| *p != 0)?;
    ok.then(|| (host.to_string(), port))
}

/// A parsed API address `http://HOST:PORT` (no path). Returns the host and port.
pub fn parse_api_addr(addr: &str) -> Option<(String, u16)> {
    let rest = addr.strip_prefix("http://")?;
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, p) = v6.split_once("]:")?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        (h, p)
    } else {
        let (h, p) = rest.rsplit_once(':')?;
        if h.parse::<std::net::Ipv4Addr>().is_err() && !valid_hostname(h) {
            return None;
        }
        (h, p)
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((host.to_string(), port))
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::Keypair;

    fn sample(n: usize) -> serde_json::Value {
        let validators: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "name": format!("node{i}"),
                    "public_key": Keypair::from_seed([i as u8 + 1; 32]).public().to_hex(),
                    "p2p_addr": format!("/ip4/127.0.0.1/tcp/{}", 7000 + i),
                    "api_addr": format!("http://127.0.0.1:{}", 8080 + i),
                })
            })
            .collect();
        serde_json::json!({
            "chain_id": "ordo-testnet",
            "genesis_time_ms": 1764288000000u64,
            "consensus": { "kind": "pbft" },
            "validators": validators,
            "clients": "any",
            "state": { "greeting": "hello" }
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Genesis> {
        Genesis::parse(v.to_string().as_bytes())
    }

    #[test]
    fn the_spec_example_parses_with_defaults() {
        let g = parse(&sample(4)).unwrap();
        assert_eq!(g.consensus, ConsensusKind::Pbft);
        assert_eq!(g.params, ConsensusParams::default());
        assert_eq!(g.committee().quorum(), 3);
        let (b, writes) = g.block();
        assert_eq!(b.height(), 0);
        assert_eq!(writes.len(), 1);
        // A round trip through to_json keeps everything.
        assert_eq!(Genesis::parse(g.to_json().as_bytes()).unwrap(), g);
    }

    #[test]
    fn params_beside_kind() {
        let mut v = sample(4);
        v["consensus"] = serde_json::json!({"kind": "pbft", "batch_max_txs": 10, "checkpoint_interval": 4});
        let g = parse(&v).unwrap();
        assert_eq!(g.params.batch_max_txs, 10);
        assert_eq!(g.params.checkpoint_interval, 4);
        v["consensus"]["batch_max_txs"] = 0.into();
        assert!(matches!(parse(&v), Err(GenesisError::BadParam { name: "batch_max_txs", .. })));
        v["consensus"] = serde_json::json!({"kind": "pbft", "bogus": 1});
        assert!(matches!(parse(&v), Err(GenesisError::Json { .. })));
    }

    #[test]
    fn reject_unknown_consensus() {
        let mut v = sample(4);
        v["consensus"]["kind"] = "paxos".into();
        assert!(matches!(parse(&v), Err(GenesisError::UnknownConsensus(k)) if k == "paxos"));
    }

    #[test]
    fn reject_too_few_validators() {
        assert!(matches!(parse(&sample(3)), Err(GenesisError::TooFewValidators { kind: "pbft", min: 4, got: 3 })));
        let mut v = sample(2);
        v["consensus"]["kind"] = "raft".into();
        assert!(matches!(parse(&v), Err(GenesisError::TooFewValidators { kind: "raft", .. })));
        v = sample(3);
        v["consensus"]["kind"] = "raft".into();
        assert!(parse(&v).is_ok());
    }

    #[test]
    fn reject_duplicate_name() {
        let mut v = sample(4);
        v["validators"][1]["name"] = "node0".into();
        assert!(matches!(parse(&v), Err(GenesisError::DuplicateName(n)) if n == "node0"));
    }

    #[test]
    fn reject_bad_name() {
        let mut v = sample(4);
        v["validators"][1]["name"] = "no spaces".into();
        assert!(matches!(parse(&v), Err(GenesisError::BadName(_))));
    }

    #[test]
    fn reject_duplicate_key() {
        let mut v = sample(4);
        v["validators"][2]["public_key"] = v["validators"][0]["public_key"].clone();
        assert!(matches!(parse(&v), Err(GenesisError::DuplicateKey(_))));
    }

    #[test]
    fn reject_bad_key() {
        let mut v = sample(4);
        v["validators"][2]["public_key"] = "zz".into();
        assert!(matches!(parse(&v), Err(GenesisError::Json { .. })));
        // The identity point is a small-order key.
        let mut id = "01".to_string();
        id.push_str(&"00".repeat(31));
        v["validators"][2]["public_key"] = id.into();
        assert!(matches!(parse(&v), Err(GenesisError::BadValidatorKey { .. })));
    }

    #[test]
    fn reject_bad_addresses() {
        for bad in [
            "/ip4/127.0.0.1/udp/7000",
            "/ip4/999.0.0.1/tcp/7000",
            "127.0.0.1:7000",
            "/ip4/127.0.0.1/tcp/0",
            "/ip4/127.0.0.1/tcp/x",
        ] {
            let mut v = sample(4);
            v["validators"][1]["p2p_addr"] = bad.into();
            assert!(matches!(parse(&v), Err(GenesisError::BadP2pAddr { .. })), "{bad}");
        }
        for bad in
            ["127.0.0.1:8080", "https://127.0.0.1:8080", "http://127.0.0.1", "http://127.0.0.1:8080/x", "http://:80"]
        {
            let mut v = sample(4);
            v["validators"][1]["api_addr"] = bad.into();
            assert!(matches!(parse(&v), Err(GenesisError::BadApiAddr { .. })), "{bad}");
        }
        assert_eq!(parse_p2p_addr("/dns4/node1/tcp/7001"), Some(("node1".into(), 7001)));
        assert_eq!(parse_api_addr("http://[::1]:8080"), Some(("::1".into(), 8080)));
    }

    #[test]
    fn reject_duplicate_address() {
        let mut v = sample(4);
        v["validators"][3]["api_addr"] = v["validators"][0]["api_addr"].clone();
        assert!(matches!(parse(&v), Err(GenesisError::DuplicateAddr { .. })));
    }

    #[test]
    fn reject_bad_chain_id_and_state() {
        let mut v = sample(4);
        v["chain_id"] = "".into();
        assert!(matches!(parse(&v), Err(GenesisError::BadChainId { .. })));
        let mut v = sample(4);
        v["state"] = serde_json::json!({"": "x"});
        assert!(matches!(parse(&v), Err(GenesisError::BadStateEntry { .. })));
    }

    #[test]
    fn reject_unknown_field() {
        let mut v = sample(4);
        v["extra"] = 1.into();
        assert!(matches!(parse(&v), Err(GenesisError::Json { .. })));
    }

    #[test]
    fn clients_list() {
        let mut v = sample(4);
        let k = Keypair::from_seed([42; 32]).public();
        v["clients"] = serde_json::json!([k.to_hex()]);
        let g = parse(&v).unwrap();
        assert!(g.tx_rules().clients.admits(&k));
        assert!(!g.tx_rules().clients.admits(&Keypair::from_seed([43; 32]).public()));
    }
}
