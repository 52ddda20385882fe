//! The in-memory store: the reference implementation of `Store`, used by the consensus
//! simulation and by tests. It keeps blocks encoded, as the RocksDB store does, so both exercise
//! the same record format.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{check_extends, decode_block, encode_block, index_entries, Store, TxLocation};
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
    safety: Option<Vec<u8>>,
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
        }
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
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

    fn save_safety(&self, record: &[u8]) -> Result<()> {
        self.lock().safety = Some(record.to_vec());
        Ok(())
    }

    fn load_safety(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().safety.clone())
    }
}
