//! The block store: one trait, two implementations (in memory, and RocksDB behind the `rocksdb`
//! feature) that pass one shared test suite (`suite`).
//!
//! A commit is atomic and durable: the block with its certificate, its state writes, the
//! transaction index, the height and hash indexes and the tip move together in one synced write,
//! so a crash leaves either the whole block or none of it.

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
    /// Durably replaces the consensus safety record ("what this node last signed"). It returns
    /// only once the record is on disk, so a vote sent after it can never be contradicted.
    fn save_safety(&self, record: &[u8]) -> Result<()>;
    fn load_safety(&self) -> Result<Option<Vec<u8>>>;

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
