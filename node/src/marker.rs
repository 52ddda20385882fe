//! The Raft membership marker: a small file beside a Raft validator's key that records that the
//! validator holds durable Raft state (a term, a vote, acknowledged entries) in this network.
//!
//! Raft's safety rests on every validator remembering its term, its vote and the entries it
//! acknowledged. A validator whose data directory was wiped or replaced comes back with none of
//! them: under its old key it could vote a second time in a term it already voted in (two
//! leaders in one term) and would be sent commit indexes beyond its empty log (etcd's "tocommit
//! out of range"). So the node writes this marker (with fsync) together with its first
//! persisted Raft log write, before any vote or acknowledgement that write protects leaves; and a
//! start that finds the marker but no Raft state in the store stops with an error that says what
//! to do, instead of rejoining as if nothing happened. A validator that never persisted Raft
//! state (killed before its first election) has no marker and starts normally.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use ordo_genesis::{Genesis, NodeConfig};

pub struct RaftMarker {
    path: PathBuf,
    data_dir: PathBuf,
    /// `chain_id genesis_hash`: a marker of another network (a reused key) is not this one's.
    content: String,
    written: AtomicBool,
}

impl RaftMarker {
    pub fn new(cfg: &NodeConfig, genesis: &Genesis) -> Self {
        let (g, _) = genesis.block();
        RaftMarker {
            path: cfg.key_file.with_file_name("raft-member"),
            data_dir: cfg.data_dir.clone(),
            content: format!("{} {}\n", genesis.chain_id, g.hash),
            written: AtomicBool::new(false),
        }
    }

    /// At start-up: refuses a store without Raft state when the marker says there was some.
    /// A store with state and no marker (a crash between the two writes) gets its marker now.
    pub fn check(&self, store_has_state: bool) -> anyhow::Result<()> {
        let present = match std::fs::read_to_string(&self.path) {
            Ok(text) => text == self.content,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).with_context(|| format!("could not read {}", self.path.display())),
        };
        match (present, store_has_state) {
            (true, false) => bail!(
                "{} holds no Raft state, but {} shows that this validator already ran in this network: its \
                 log and its votes were lost (a wiped or replaced data directory). Rejoining under the same \
                 key could vote twice in one term and break Raft's safety. Restore the data directory from a \
                 backup; or, only if you know this validator never voted in this network, delete {} and \
                 start again.",
                self.data_dir.display(),
                self.path.display(),
                self.path.display()
            ),
            (true, true) => {
                self.written.store(true, Ordering::Release);
                Ok(())
            }
            (false, true) => self.ensure_written(),
            (false, false) => Ok(()),
        }
    }

    /// Writes the marker durably unless it is written already (cheap after the first call).
    pub fn ensure_written(&self) -> anyhow::Result<()> {
        if self.written.load(Ordering::Acquire) {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.content.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("could not write {}", self.path.display()))?;
        self.written.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(dir: &std::path::Path) -> RaftMarker {
        RaftMarker {
            path: dir.join("raft-member"),
            data_dir: dir.join("data"),
            content: "chain abc\n".into(),
            written: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_marker_without_state_is_refused_and_nothing_else_is() {
        let d = tempfile::tempdir().unwrap();
        let m = marker(d.path());
        // First start: no marker, no state.
        m.check(false).unwrap();
        assert!(!d.path().join("raft-member").exists(), "no marker before any Raft state is persisted");
        // The first persisted log write writes it; later calls are free.
        m.ensure_written().unwrap();
        m.ensure_written().unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("raft-member")).unwrap(), "chain abc\n");
        // A restart with state passes; one whose state was wiped is refused.
        marker(d.path()).check(true).unwrap();
        let e = marker(d.path()).check(false).unwrap_err().to_string();
        assert!(e.contains("holds no Raft state") && e.contains("vote twice"), "{e}");
        // A marker of another network does not count.
        std::fs::write(d.path().join("raft-member"), "other xyz\n").unwrap();
        marker(d.path()).check(false).unwrap();
    }

    #[test]
    fn state_without_a_marker_gets_one() {
        let d = tempfile::tempdir().unwrap();
        marker(d.path()).check(true).unwrap();
        assert!(d.path().join("raft-member").exists());
    }
}
