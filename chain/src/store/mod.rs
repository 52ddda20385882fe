//! The block store: one trait, two implementations (in memory, and RocksDB behind the `rocksdb`
//! feature) that pass one shared test suite (`suite`).
//!
//! A commit is atomic and durable: the block with its certificate, its state writes, the
//! transaction index, the height and hash indexes and the tip move together in one synced write,
//! so a crash leaves either the whole block or none of it.
//!
//! Beside the chain, a store keeps one replicated log for the consensus engine that needs one
//! (Raft): a meta record the engine encodes (its hard state, its log base) and entries by index.
//! The store knows nothing of Raft: a [`LogWrite`] replaces the meta record, truncates, appends
//! and compacts in one atomic, synced write, and [`Store::load_log`] reads it all back.

mod encoding;
mod mem;
#[cfg(feature = "rocksdb")]
mod rocks;
#[cfg(test)]
mod suite;

use crate::block::Block;
use crate::crypto::Hash;
use crate::error::Result;
use crate::tx::{Op, TxResult};

pub use encoding::{decode_block, encode_block};
pub use mem::MemStore;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksStore;

/// Where a committed transaction lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
    pub result: TxResult,
}

/// One atomic, synced change of the engine's durable log. Applied in this order: replace the
/// meta record (if `meta` is set), delete entries with index >= `truncate_from`, put `append`
/// (contiguous indexes, continuing the entries that remain, if any), then delete entries with
/// index < `delete_below` (compaction). A write that breaks a rule is refused whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogWrite {
    /// Replaces the meta record (engine-encoded: hard state, log base).
    pub meta: Option<Vec<u8>>,
    /// Delete entries with index >= this, first.
    pub truncate_from: Option<u64>,
    /// Then put these (index, entry bytes); the indexes are contiguous.
    pub append: Vec<(u64, Vec<u8>)>,
    /// Then delete entries with index < this (compaction).
    pub delete_below: Option<u64>,
}

impl LogWrite {
    /// True when the write changes nothing.
    pub fn is_empty(&self) -> bool {
        self.meta.is_none() && self.truncate_from.is_none() && self.append.is_empty() && self.delete_below.is_none()
    }
}

/// The engine's durable log as stored: the meta record and the entries, by ascending index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredLog {
    pub meta: Option<Vec<u8>>,
    pub entries: Vec<(u64, Vec<u8>)>,
}

/// One durable change of the consensus safety record (see [`Store::save_safety`]): the new record,
/// and the batch bodies it refers to, each stored once under (height, batch digest) instead of
/// inside every copy of the record. The record is rewritten before every vote; a body is written
/// when its batch prepares and deleted once the record no longer names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafetyWrite {
    pub record: Vec<u8>,
    pub put_bodies: Vec<((u64, Hash), Vec<u8>)>,
    pub delete_bodies: Vec<(u64, Hash)>,
}

/// The safety record as last saved, with every body stored beside it, by (height, digest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSafety {
    pub record: Vec<u8>,
    pub bodies: std::collections::BTreeMap<(u64, Hash), Vec<u8>>,
}

/// Persistent chain storage. Every method is safe to call from several threads.
pub trait Store: Send + Sync + 'static {
    /// Commits `block` (height = tip + 1, or 0 on an empty store) with its state `writes`, in one
    /// atomic, synced write. Rejects a block that does not extend the tip.
    fn commit(&self, block: &Block, writes: &[Op]) -> Result<()>;
    /// The block at `height`, with its certificate.
    fn block(&self, height: u64) -> Result<Option<Block>>;
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>>;
    /// The height of the newest block; `None` on an empty store (before genesis).
    fn latest_height(&self) -> Result<Option<u64>>;
    /// Where the transaction with this id was applied.
    fn tx_location(&self, id: &Hash) -> Result<Option<TxLocation>>;
    /// For each id, whether it was already applied: one batched read for a whole block.
    fn committed(&self, ids: &[Hash]) -> Result<Vec<bool>>;
    /// The current value of a state key.
    fn state_get(&self, key: &str) -> Result<Option<String>>;
    /// Durably replaces the consensus safety record ("what this node last signed") and applies
    /// its body changes, all in one atomic write. It returns only once the write is on disk, so
    /// a vote sent after it can never be contradicted.
    fn save_safety(&self, w: &SafetyWrite) -> Result<()>;
    /// The record as last saved, with its bodies; `None` before the first save.
    fn load_safety(&self) -> Result<Option<StoredSafety>>;
    /// Applies one change of the consensus log (see [`LogWrite`]) atomically and durably: it
    /// returns only once the change is on disk, so a message sent after it can rely on it.
    fn write_log(&self, w: &LogWrite) -> Result<()>;
    /// The consensus log as last written: meta record and entries by ascending index.
    fn load_log(&self) -> Result<StoredLog>;

    /// The newest block, if any.
    fn latest_block(&self) -> Result<Option<Block>> {
        match self.latest_height()? {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }
}

/// The checks every implementation makes before a commit, in one place.
fn check_extends(tip: Option<(u64, Hash)>, block: &Block) -> Result<()> {
    use crate::error::ChainError;
    let expected = tip.map_or(0, |(h, _)| h + 1);
    if block.height() != expected {
        return Err(ChainError::NonSequentialCommit { expected, got: block.height() });
    }
    let prev = tip.map_or(Hash::ZERO, |(_, h)| h);
    if block.prev_hash != prev {
        return Err(ChainError::PrevHashMismatch { height: block.height(), expected: prev, got: block.prev_hash });
    }
    Ok(())
}

/// The rules of a [`LogWrite`], checked against the last index that survives its truncation
/// (`None` for an empty log) before anything is written, so a refused write changes nothing.
fn check_log_write(last_after_truncate: Option<u64>, w: &LogWrite) -> Result<()> {
    use crate::error::ChainError;
    for pair in w.append.windows(2) {
        if pair[1].0 != pair[0].0 + 1 {
            return Err(ChainError::NonContiguousLog { expected: pair[0].0 + 1, got: pair[1].0 });
        }
    }
    if let (Some(last), Some((first, _))) = (last_after_truncate, w.append.first()) {
        if *first != last + 1 {
            return Err(ChainError::NonContiguousLog { expected: last + 1, got: *first });
        }
    }
    Ok(())
}

/// The transaction index entries a block adds: only applied transactions, so an id always points
/// at the block that applied it, never at a later duplicate.
fn index_entries(block: &Block) -> impl Iterator<Item = (Hash, TxLocation)> + '_ {
    block
        .tx_ids
        .iter()
        .zip(&block.results)
        .enumerate()
        .filter(|(_, (_, r))| **r == TxResult::Applied)
        .map(move |(i, (id, r))| (*id, TxLocation { height: block.height(), index: i as u32, result: *r }))
}
