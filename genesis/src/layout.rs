//! Writing a whole network directory, as `ordo genesis` does (protocol §8):
//! `DIR/genesis.json` and `DIR/nodeI/{node.key,config.toml}`, node I listening on P+I and A+I.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ordo_chain::tx::Clients;
use ordo_chain::Keypair;

use crate::config::NodeConfig;
use crate::error::{GenesisError, Result};
use crate::genesis::{ConsensusKind, ConsensusParams, Genesis, ValidatorInfo};
use crate::keys::KeyFile;

/// What `ordo genesis` is asked to write.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub validators: usize,
    pub consensus: ConsensusKind,
    pub chain_id: String,
    pub out_dir: PathBuf,
    pub host: IpAddr,
    pub p2p_port: u16,
    pub api_port: u16,
    pub genesis_time_ms: u64,
}

/// The directory of node `i` inside a network directory.
pub fn node_dir(out_dir: &Path, i: usize) -> PathBuf {
    out_dir.join(format!("node{i}"))
}

fn multiaddr(host: IpAddr, port: u16) -> String {
    match host {
        IpAddr::V4(a) => format!("/ip4/{a}/tcp/{port}"),
        IpAddr::V6(a) => format!("/ip6/{a}/tcp/{port}"),
    }
}

fn port(base: u16, i: usize, flag: &'static str) -> Result<u16> {
    u16::try_from(base as usize + i).map_err(|_| GenesisError::BadConfig {
        field: flag,
        value: base.to_string(),
        rule: "base port + node index must stay below 65536",
    })
}

/// Writes the genesis, one key and one config per validator. Refuses to overwrite an existing
/// genesis or key, so a second run can never replace a consortium's keys by accident.
pub fn write_network(spec: &NetworkSpec) -> Result<Genesis> {
    let genesis_path = spec.out_dir.join("genesis.json");
    if genesis_path.exists() {
        return Err(GenesisError::Exists(genesis_path));
    }
    let keys: Vec<Keypair> = (0..spec.validators).map(|_| Keypair::generate()).collect();
    let mut validators = Vec::with_capacity(spec.validators);
    for (i, k) in keys.iter().enumerate() {
        let p2p = port(spec.p2p_port, i, "--p2p-port")?;
        let api = port(spec.api_port, i, "--api-port")?;
        let api_host = match spec.host {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        validators.push(ValidatorInfo {
            name: format!("node{i}"),
            public_key: k.public(),
            p2p_addr: multiaddr(spec.host, p2p),
            api_addr: format!("http://{api_host}:{api}"),
        });
    }
    let genesis = Genesis {
        chain_id: spec.chain_id.clone(),
        genesis_time_ms: spec.genesis_time_ms,
        consensus: spec.consensus,
        params: ConsensusParams::default(),
        validators,
        clients: Clients::Any,
        state: BTreeMap::from([("greeting".to_string(), "hello".to_string())]),
    };
    genesis.validate()?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenesisError::Io { path, source }
    };
    std::fs::create_dir_all(&spec.out_dir).map_err(io(&spec.out_dir))?;
    for (i, k) in keys.iter().enumerate() {
        let dir = node_dir(&spec.out_dir, i);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        KeyFile::write_new(k, &dir.join("node.key"))?;
        let api_listen = match spec.host {
            IpAddr::V4(a) => format!("{a}:{}", port(spec.api_port, i, "--api-port")?),
            IpAddr::V6(a) => format!("[{a}]:{}", port(spec.api_port, i, "--api-port")?),
        };
        let cfg =
            NodeConfig { p2p_listen: genesis.validators[i].p2p_addr.clone(), api_listen, ..NodeConfig::default() };
        cfg.validate()?;
        let path = dir.join("config.toml");
        std::fs::write(&path, cfg.to_toml()).map_err(io(&path))?;
    }
    // The genesis goes last: its presence marks a complete directory.
    std::fs::write(&genesis_path, genesis.to_json() + "\n").map_err(io(&genesis_path))?;
    Ok(genesis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path) -> NetworkSpec {
        NetworkSpec {
            validators: 4,
            consensus: ConsensusKind::Pbft,
            chain_id: "ordo-testnet".into(),
            out_dir: dir.to_path_buf(),
            host: "127.0.0.1".parse().unwrap(),
            p2p_port: 7100,
            api_port: 8180,
            genesis_time_ms: 1,
        }
    }

    #[test]
    fn writes_a_loadable_network() {
        let dir = tempfile::tempdir().unwrap();
        let g = write_network(&spec(dir.path())).unwrap();
        assert_eq!(Genesis::load(&dir.path().join("genesis.json")).unwrap(), g);
        for i in 0..4 {
            let cfg = NodeConfig::load(&node_dir(dir.path(), i).join("config.toml")).unwrap();
            assert_eq!(cfg.api_listen, format!("127.0.0.1:{}", 8180 + i));
            assert_eq!(cfg.p2p_listen, format!("/ip4/127.0.0.1/tcp/{}", 7100 + i));
            let key = KeyFile::read(&cfg.key_file).unwrap();
            assert_eq!(key.public(), g.validators[i].public_key);
            assert_eq!(Genesis::load(&cfg.genesis_file).unwrap(), g);
        }
        // A second run refuses to overwrite the consortium's genesis and keys.
        assert!(matches!(write_network(&spec(dir.path())), Err(GenesisError::Exists(_))));
    }

    #[test]
    fn too_few_validators_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(&dir.path().join("net"));
        s.validators = 2;
        assert!(matches!(write_network(&s), Err(GenesisError::TooFewValidators { .. })));
        assert!(!dir.path().join("net").exists());
    }
}
