//! The in-memory store: the reference implementation of `Store`, used by the consensus
//! simulation and by tests. It keeps blocks encoded, as the RocksDB store does, so both exercise
//! the same record format.
//!
//! It also models what a crash does to a disk: everything the `Store` trait writes is synced
//! (block commits, the safety record, `write_log`), but a simulation can write log changes
//! without syncing them (`write_log_unsynced`, a driver bug to be caught) and then `crash()`,
//! which drops every write not yet synced. A synced write syncs the ones before it too, as an
//! fsync of a write-ahead log does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{
    check_extends, check_log_write, decode_block, encode_block, index_entries, LogWrite, SafetyWrite, Store, StoredLog,
    StoredSafety, TxLocation,
};
use crate::block::Block;
use crate::crypto::Hash;
use crate::error::Result;
use crate::tx::Op;

#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

struct Inner {
    blocks: Vec<Vec<u8>>,
    tip_hash: Hash,
    by_hash: HashMap<Hash, u64>,
    txs: HashMap<Hash, TxLocation>,
    state: HashMap<String, String>,
    safety: Option<StoredSafety>,
    /// The consensus log as synced to "disk".
    log: LogImage,
    /// Log writes made without a sync, in order: visible to reads, lost by `crash()`.
    unsynced: Vec<LogWrite>,
}

/// The consensus log: the meta record and the entries by index.
#[derive(Default, Clone)]
struct LogImage {
    meta: Option<Vec<u8>>,
    entries: BTreeMap<u64, Vec<u8>>,
}

impl LogImage {
    /// Checks and applies one write; a refused write leaves the image untouched.
    fn apply(&mut self, w: &LogWrite) -> Result<()> {
        let last_after_truncate = match w.truncate_from {
            Some(from) => self.entries.range(..from).next_back().map(|(i, _)| *i),
            None => self.entries.keys().next_back().copied(),
        };
        check_log_write(last_after_truncate, w)?;
        if let Some(meta) = &w.meta {
            self.meta = Some(meta.clone());
        }
        if let Some(from) = w.truncate_from {
            self.entries.split_off(&from);
        }
        for (i, e) in &w.append {
            self.entries.insert(*i, e.clone());
        }
        if let Some(below) = w.delete_below {
            self.entries = self.entries.split_off(&below);
        }
        Ok(())
    }
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            tip_hash: Hash::ZERO,
            by_hash: HashMap::new(),
            txs: HashMap::new(),
            state: HashMap::new(),
            safety: None,
            log: LogImage::default(),
            unsynced: Vec::new(),
        }
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a log change without syncing it: reads see it, `crash()` loses it. Only the
    /// simulation calls this, to show what an unsynced write costs.
    pub fn write_log_unsynced(&self, w: &LogWrite) -> Result<()> {
        let mut s = self.lock();
        let mut view = s.log.clone();
        for u in &s.unsynced {
            view.apply(u).expect("unsynced writes were checked when made");
        }
        view.apply(w)?;
        s.unsynced.push(w.clone());
        Ok(())
    }

    /// Syncs every write made so far.
    pub fn sync(&self) {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.unsynced);
        for u in &pending {
            s.log.apply(u).expect("unsynced writes were checked when made");
        }
    }

    /// A power failure: every write not yet synced is lost; synced ones stay.
    pub fn crash(&self) {
        self.lock().unsynced.clear();
    }

    /// How many log writes wait for a sync.
    pub fn unsynced_writes(&self) -> usize {
        self.lock().unsynced.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug elsewhere; the data is still consistent
        // because every commit builds its changes before applying them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn commit(&self, block: &Block, writes: &[Op]) -> Result<()> {
        let mut s = self.lock();
        let tip = s.blocks.len().checked_sub(1).map(|h| (h as u64, s.tip_hash));
        check_extends(tip, block)?;
        let record = encode_block(block);
        for (id, loc) in index_entries(block) {
            s.txs.insert(id, loc);
        }
        for op in writes {
            match op {
                Op::Put { key, value } => {
                    s.state.insert(key.clone(), value.clone());
                }
                Op::Delete { key } => {
                    s.state.remove(key);
                }
            }
        }
        s.by_hash.insert(block.hash, block.height());
        s.tip_hash = block.hash;
        s.blocks.push(record);
        Ok(())
    }

    fn block(&self, height: u64) -> Result<Option<Block>> {
        let s = self.lock();
        s.blocks.get(height as usize).map(|b| decode_block(b)).transpose()
    }

    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>> {
        let h = self.lock().by_hash.get(hash).copied();
        match h {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    fn latest_height(&self) -> Result<Option<u64>> {
        Ok(self.lock().blocks.len().checked_sub(1).map(|h| h as u64))
    }

    fn tx_location(&self, id: &Hash) -> Result<Option<TxLocation>> {
        Ok(self.lock().txs.get(id).copied())
    }

    fn committed(&self, ids: &[Hash]) -> Result<Vec<bool>> {
        let s = self.lock();
        Ok(ids.iter().map(|id| s.txs.contains_key(id)).collect())
    }

    fn state_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock().state.get(key).cloned())
    }

    fn save_safety(&self, w: &SafetyWrite) -> Result<()> {
        let mut s = self.lock();
        let safety = s.safety.get_or_insert_with(StoredSafety::default);
        safety.record = w.record.clone();
        for key in &w.delete_bodies {
            safety.bodies.remove(key);
        }
        for (key, body) in &w.put_bodies {
            safety.bodies.insert(*key, body.clone());
        }
        Ok(())
    }

    fn load_safety(&self) -> Result<Option<StoredSafety>> {
        Ok(self.lock().safety.clone())
    }

    fn write_log(&self, w: &LogWrite) -> Result<()> {
        // A synced write: the earlier unsynced ones reach the disk with it.
        self.write_log_unsynced(w)?;
        self.sync();
        Ok(())
    }

    fn load_log(&self) -> Result<StoredLog> {
        let s = self.lock();
        let mut view = s.log.clone();
        for u in &s.unsynced {
            view.apply(u).expect("unsynced writes were checked when made");
        }
        Ok(StoredLog { meta: view.meta, entries: view.entries.into_iter().collect() })
    }
}
