//! The per-node `config.toml`: where a node keeps its data, its key and the genesis, where it
//! listens, and its local limits. Relative paths are relative to the config file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ordo_chain::limits::TxLimits;
use serde::{Deserialize, Serialize};

use crate::error::{GenesisError, Result};
use crate::genesis::parse_p2p_addr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The RocksDB directory.
    pub data_dir: PathBuf,
    /// This validator's key file.
    pub key_file: PathBuf,
    /// The consortium's genesis file.
    pub genesis_file: PathBuf,
    /// The libp2p listen address, e.g. `/ip4/0.0.0.0/tcp/7000`.
    pub p2p_listen: String,
    /// Peers dialled at start-up; the others are learned from signed announcements. When empty,
    /// every validator's `p2p_addr` from the genesis is dialled.
    pub bootstrap: Vec<String>,
    /// The REST API listen address, e.g. `127.0.0.1:8080`.
    pub api_listen: String,
    /// Transaction size limits (defaults: protocol §3).
    pub limits: TxLimits,
    /// The most transactions waiting in the mempool.
    pub mempool_max_txs: usize,
    /// The most bytes of transactions waiting in the mempool.
    pub mempool_max_bytes: usize,
    /// Requests per second allowed per client IP before 429.
    pub api_rate_limit_per_sec: u32,
    /// The longest an API request may take before it is answered with 503.
    pub api_request_timeout_ms: u64,
    /// The `tracing` filter, e.g. `info` or `ordo=debug,info`; `RUST_LOG` overrides it.
    pub log: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            key_file: "node.key".into(),
            genesis_file: "../genesis.json".into(),
            p2p_listen: "/ip4/127.0.0.1/tcp/7000".into(),
            bootstrap: Vec::new(),
            api_listen: "127.0.0.1:8080".into(),
            limits: TxLimits::default(),
            mempool_max_txs: ordo_chain::limits::MEMPOOL_MAX_TXS,
            mempool_max_bytes: ordo_chain::limits::MEMPOOL_MAX_BYTES,
            api_rate_limit_per_sec: 20_000,
            api_request_timeout_ms: 30_000,
            log: "info".into(),
        }
    }
}

impl NodeConfig {
    /// Reads, validates, and resolves relative paths against the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let text =
            std::fs::read_to_string(path).map_err(|source| GenesisError::Io { path: path.to_path_buf(), source })?;
        let mut cfg: NodeConfig = toml::from_str(&text)
            .map_err(|e| GenesisError::Toml { path: path.to_path_buf(), reason: e.to_string() })?;
        cfg.validate()?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.data_dir, &mut cfg.key_file, &mut cfg.genesis_file] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    /// One error per rule, the first broken one.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: String, rule: &'static str| {
            Err(GenesisError::BadConfig { field, value, rule })
        };
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", String::new(), "must not be empty");
        }
        if self.key_file.as_os_str().is_empty() {
            return bad("key_file", String::new(), "must not be empty");
        }
        if self.genesis_file.as_os_str().is_empty() {
            return bad("genesis_file", String::new(), "must not be empty");
        }
        if parse_p2p_addr(&self.p2p_listen).is_none() {
            return bad("p2p_listen", self.p2p_listen.clone(), "must be /ip4/A/tcp/P, /ip6/A/tcp/P or /dns4/H/tcp/P");
        }
        for b in &self.bootstrap {
            if parse_p2p_addr(b).is_none() {
                return bad("bootstrap", b.clone(), "each entry must be /ip4/A/tcp/P, /ip6/A/tcp/P or /dns4/H/tcp/P");
            }
        }
        if self.api_listen.parse::<SocketAddr>().is_err() {
            return bad("api_listen", self.api_listen.clone(), "must be IP:PORT");
        }
        let l = &self.limits;
        if l.chain_id_max_bytes == 0 || l.chain_id_max_bytes > u16::MAX as usize {
            return bad(
                "limits.chain_id_max_bytes",
                l.chain_id_max_bytes.to_string(),
                "must be 1..=65535 (a u16 length)",
            );
        }
        if l.key_max_bytes == 0 || l.key_max_bytes > 1 << 20 {
            return bad("limits.key_max_bytes", l.key_max_bytes.to_string(), "must be 1..=1 MiB");
        }
        if l.value_max_bytes > 16 << 20 {
            return bad("limits.value_max_bytes", l.value_max_bytes.to_string(), "must be at most 16 MiB");
        }
        if l.request_max_bytes < 1024 {
            return bad("limits.request_max_bytes", l.request_max_bytes.to_string(), "must be at least 1 KiB");
        }
        if l.batch_request_max_bytes < l.request_max_bytes {
            return bad(
                "limits.batch_request_max_bytes",
                l.batch_request_max_bytes.to_string(),
                "must be at least request_max_bytes",
            );
        }
        if l.batch_max_txs == 0 {
            return bad("limits.batch_max_txs", "0".into(), "must be at least 1");
        }
        if self.mempool_max_txs == 0 {
            return bad("mempool_max_txs", "0".into(), "must be at least 1");
        }
        // Clients fill three quarters of the mempool (`ordo_chain::Origin`); one request must fit.
        let mempool = ordo_chain::MempoolConfig { max_txs: self.mempool_max_txs, max_bytes: self.mempool_max_bytes };
        if mempool.client_share().max_bytes < l.request_max_bytes {
            return bad(
                "mempool_max_bytes",
                self.mempool_max_bytes.to_string(),
                "must hold at least one request in the three quarters clients may fill",
            );
        }
        if self.api_rate_limit_per_sec == 0 {
            return bad("api_rate_limit_per_sec", "0".into(), "must be at least 1");
        }
        if self.api_request_timeout_ms == 0 {
            return bad("api_request_timeout_ms", "0".into(), "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_roundtrip() {
        let c = NodeConfig::default();
        c.validate().unwrap();
        let back: NodeConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn load_resolves_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "data_dir = \"d\"\napi_listen = \"127.0.0.1:9000\"\n").unwrap();
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.data_dir, dir.path().join("d"));
        assert_eq!(c.api_listen, "127.0.0.1:9000");
        assert_eq!(c.mempool_max_txs, NodeConfig::default().mempool_max_txs);
    }

    #[test]
    fn each_rule_has_its_error() {
        type Mutation = Box<dyn Fn(&mut NodeConfig)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("data_dir", Box::new(|c| c.data_dir = PathBuf::new())),
            ("p2p_listen", Box::new(|c| c.p2p_listen = "127.0.0.1:7000".into())),
            ("bootstrap", Box::new(|c| c.bootstrap = vec!["nope".into()])),
            ("api_listen", Box::new(|c| c.api_listen = "localhost".into())),
            ("limits.chain_id_max_bytes", Box::new(|c| c.limits.chain_id_max_bytes = 70_000)),
            ("limits.batch_request_max_bytes", Box::new(|c| c.limits.batch_request_max_bytes = 10)),
            ("mempool_max_txs", Box::new(|c| c.mempool_max_txs = 0)),
            // One request of 1 MiB fills the whole mempool, but clients may fill only 3/4 of it.
            ("mempool_max_bytes", Box::new(|c| c.mempool_max_bytes = c.limits.request_max_bytes)),
            ("api_rate_limit_per_sec", Box::new(|c| c.api_rate_limit_per_sec = 0)),
        ];
        for (field, mutate) in cases {
            let mut c = NodeConfig::default();
            mutate(&mut c);
            match c.validate() {
                Err(GenesisError::BadConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected BadConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_field_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "data_dirr = \"d\"\n").unwrap();
        assert!(matches!(NodeConfig::load(&p), Err(GenesisError::Toml { .. })));
    }
}
