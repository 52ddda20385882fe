//! Key files (protocol §1): `{"public_key": "<64 hex>", "secret_key": "<64 hex seed>"}`, written with
//! mode 0600 so that only the node's user can read the secret.

use std::io::Write;
use std::path::Path;

use ordo_chain::crypto::decode_hex;
use ordo_chain::Keypair;
use serde::{Deserialize, Serialize};

use crate::error::{GenesisError, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub public_key: String,
    pub secret_key: String,
}

impl KeyFile {
    pub fn from_keypair(k: &Keypair) -> Self {
        Self { public_key: k.public().to_hex(), secret_key: hex::encode(k.seed()) }
    }

    /// Writes a key file with mode 0600, refusing to overwrite an existing one: a lost validator
    /// key cannot be recovered.
    pub fn write_new(k: &Keypair, path: &Path) -> Result<()> {
        let io = |source| GenesisError::Io { path: path.to_path_buf(), source };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                GenesisError::Exists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
        let mut text = serde_json::to_string_pretty(&Self::from_keypair(k)).expect("key file serializes");
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads a key file and checks that its public key is the one its seed derives.
    pub fn read(path: &Path) -> Result<Keypair> {
        let bytes = std::fs::read(path).map_err(|source| GenesisError::Io { path: path.to_path_buf(), source })?;
        let kf: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| GenesisError::BadKeyFile { path: path.to_path_buf(), reason: e.to_string() })?;
        let bad =
            |e: ordo_chain::ChainError| GenesisError::BadKeyFile { path: path.to_path_buf(), reason: e.to_string() };
        let seed = decode_hex::<32>("secret_key", &kf.secret_key).map_err(bad)?;
        let public = decode_hex::<32>("public_key", &kf.public_key).map_err(bad)?;
        let k = Keypair::from_seed(seed);
        if k.public().0 != public {
            return Err(GenesisError::KeyMismatch { path: path.to_path_buf() });
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_roundtrip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.key");
        let k = Keypair::from_seed([3; 32]);
        KeyFile::write_new(&k, &p).unwrap();
        assert_eq!(KeyFile::read(&p).unwrap().public(), k.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(matches!(KeyFile::write_new(&k, &p), Err(GenesisError::Exists(_))));
    }

    #[test]
    fn mismatched_public_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.key");
        let kf =
            KeyFile { public_key: Keypair::from_seed([1; 32]).public().to_hex(), secret_key: hex::encode([2u8; 32]) };
        std::fs::write(&p, serde_json::to_string(&kf).unwrap()).unwrap();
        assert!(matches!(KeyFile::read(&p), Err(GenesisError::KeyMismatch { .. })));
        std::fs::write(&p, "{\"public_key\":\"ab\",\"secret_key\":\"cd\"}").unwrap();
        assert!(matches!(KeyFile::read(&p), Err(GenesisError::BadKeyFile { .. })));
    }
}
