//! The RocksDB store. The only module of Ordo that imports `rocksdb`.
//!
//! Column families:
//! - `blocks`: u64 height (big-endian, so keys sort by height) → block record (`encoding`).
//! - `hashes`: block hash → u64 height.
//! - `txs`: tx_id → u64 height || u32 index || u8 result.
//! - `state`: key → value.
//! - `meta`: `tip` → u64 height || hash; `safety` → the consensus safety record;
//!   `log_meta` → the consensus log's meta record; `log/` || u64 index → one log entry (the
//!   big-endian index makes the entries sort by index). The log lives in `meta` so that a store
//!   made before it existed opens unchanged, read-only included.
//!
//! Every commit is one `WriteBatch` written with `sync = true`: RocksDB applies a batch
//! atomically and the WAL is fsynced before the call returns, so after a crash the store holds
//! either the whole block or none of it. A `write_log` is one synced `WriteBatch` too.

use std::path::Path;
use std::sync::Mutex;

use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};

use super::{
    check_extends, check_log_write, decode_block, encode_block, index_entries, LogWrite, SafetyWrite, Store, StoredLog,
    StoredSafety, TxLocation,
};
use crate::block::Block;
use crate::codec::{Reader, Writer};
use crate::crypto::Hash;
use crate::error::{ChainError, Result};
use crate::tx::{Op, TxResult};

pub(crate) const CF_BLOCKS: &str = "blocks";
const CF_HASHES: &str = "hashes";
const CF_TXS: &str = "txs";
pub(crate) const CF_STATE: &str = "state";
const CF_META: &str = "meta";
/// The memtable size of the block column family (see `RocksStore::cf_options`).
pub(crate) const BLOCKS_WRITE_BUFFER_BYTES: usize = 16 << 20;
const KEY_TIP: &[u8] = b"tip";
const KEY_SAFETY: &[u8] = b"safety";
/// The prefix of the safety record's body keys; `SAFETY_BODY_END` is the first key past every one
/// of them (`'0'` follows `'/'`).
const SAFETY_BODY_PREFIX: &str = "safety/body/";
const SAFETY_BODY_END: &[u8] = b"safety/body0";
const KEY_LOG_META: &[u8] = b"log_meta";
/// The prefix of log entry keys; `LOG_END` is the first key past every one of them
/// (`'0'` follows `'/'`), the exclusive end of a range delete.
const LOG_PREFIX: &str = "log/";
const LOG_END: &[u8] = b"log0";

/// `"safety/body/" || u64 height || batch digest`.
fn safety_body_key((height, digest): &(u64, Hash)) -> Vec<u8> {
    let mut w = Writer::with_capacity(SAFETY_BODY_PREFIX.len() + 40);
    w.tag(SAFETY_BODY_PREFIX).u64(*height).hash(digest);
    w.finish()
}

/// The (height, digest) of a `safety/body/` key.
fn safety_body_of(key: &[u8]) -> Result<(u64, Hash)> {
    let mut r = Reader::new(key);
    r.expect_tag(SAFETY_BODY_PREFIX)?;
    let (height, digest) = (r.u64()?, r.hash()?);
    r.finish()?;
    Ok((height, digest))
}

/// `"log/" || u64 index`.
fn log_key(index: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(12);
    w.tag(LOG_PREFIX).u64(index);
    w.finish()
}

/// The index of a `log/` key.
fn log_index(key: &[u8]) -> Result<u64> {
    let mut r = Reader::new(key);
    r.expect_tag(LOG_PREFIX)?;
    let i = r.u64()?;
    r.finish()?;
    Ok(i)
}

pub struct RocksStore {
    db: DB,
    /// The tip, cached; the lock also serialises commits so two can never race on the height.
    tip: Mutex<Option<(u64, Hash)>>,
}

fn io(e: rocksdb::Error) -> ChainError {
    ChainError::Io(e.into_string())
}

impl RocksStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // No compression (each column family's `Options::default()`; the crate is built without
        // Snappy): blocks are mostly signatures, keys and hashes, which do not compress, and
        // compressing in flushes and compactions would take the cores that verify signatures.
        let cfs = [CF_BLOCKS, CF_HASHES, CF_TXS, CF_STATE, CF_META]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, Self::cf_options(name)));
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(io)?;
        let store = Self { db, tip: Mutex::new(None) };
        let tip = store.read_tip()?;
        *store.tip.lock().expect("fresh lock") = tip;
        Ok(store)
    }

    /// The block column family is written in memtables of [`BLOCKS_WRITE_BUFFER_BYTES`], a
    /// quarter of RocksDB's default, so that each flush is small. Its keys are heights, in order,
    /// so the table files it makes do not overlap and compaction moves them without rewriting.
    /// With 64 MiB, every validator of a loopback testnet flushed 64 MiB at the same moment
    /// (they hold the same chain), and the step of `ordo bench` in which that happened had the
    /// worst p99 of its run (docs/performance.md, thirteenth round).
    ///
    /// The transaction index is asked, for every transaction a node admits, whether an id is
    /// already committed, and the answer is almost always no. Bloom filters on whole keys, in the
    /// memtable and in every table file, answer most of those from memory without searching the
    /// memtable's skip list or reading a block (a "maybe" is then looked up exactly, so an answer
    /// is never wrong). The hash index gets the same for `GET /v1/blocks/{hash}` misses.
    fn cf_options(name: &str) -> Options {
        let mut o = Options::default();
        if name == CF_BLOCKS {
            o.set_write_buffer_size(BLOCKS_WRITE_BUFFER_BYTES);
        }
        if name == CF_TXS || name == CF_HASHES {
            let mut table = BlockBasedOptions::default();
            table.set_bloom_filter(10.0, false);
            table.set_whole_key_filtering(true);
            o.set_block_based_table_factory(&table);
            o.set_memtable_prefix_bloom_ratio(0.05);
            o.set_memtable_whole_key_filtering(true);
        }
        o
    }

    /// Opens an existing store for reading only, without taking its lock: a running node's
    /// store can be inspected (`ordo verify-chain --data-dir`) while the node writes. The view
    /// is the store as it was at open.
    pub fn open_read_only(dir: &Path) -> Result<Self> {
        if !dir.join("CURRENT").exists() {
            return Err(ChainError::Io(format!("{} holds no Ordo store", dir.display())));
        }
        let opts = Options::default();
        let db = DB::open_cf_for_read_only(&opts, dir, [CF_BLOCKS, CF_HASHES, CF_TXS, CF_STATE, CF_META], false)
            .map_err(io)?;
        let store = Self { db, tip: Mutex::new(None) };
        let tip = store.read_tip()?;
        *store.tip.lock().expect("fresh lock") = tip;
        Ok(store)
    }

    fn read_tip(&self) -> Result<Option<(u64, Hash)>> {
        match self.db.get_cf(self.cf(CF_META), KEY_TIP).map_err(io)? {
            None => Ok(None),
            Some(v) => {
                let (h, hash) = v.split_at_checked(8).ok_or_else(|| ChainError::Corrupt("tip record".into()))?;
                let h = u64::from_be_bytes(h.try_into().expect("8 bytes"));
                let hash = Hash(hash.try_into().map_err(|_| ChainError::Corrupt("tip hash".into()))?);
                Ok(Some((h, hash)))
            }
        }
    }

    /// The bytes of column family `name`'s table files: what its memtables flushed so far.
    #[cfg(test)]
    pub(crate) fn table_bytes(&self, name: &str) -> u64 {
        self.db.property_int_value_cf(self.cf(name), "rocksdb.total-sst-files-size").ok().flatten().unwrap_or(0)
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    fn synced() -> WriteOptions {
        let mut w = WriteOptions::default();
        w.set_sync(true);
        w
    }
}

fn encode_location(l: &TxLocation) -> [u8; 13] {
    let mut b = [0u8; 13];
    b[..8].copy_from_slice(&l.height.to_be_bytes());
    b[8..12].copy_from_slice(&l.index.to_be_bytes());
    b[12] = l.result.to_u8();
    b
}

fn decode_location(b: &[u8]) -> Result<TxLocation> {
    if b.len() != 13 {
        return Err(ChainError::Corrupt(format!("tx index entry of {} bytes", b.len())));
    }
    Ok(TxLocation {
        height: u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        index: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
        result: TxResult::from_u8(b[12])?,
    })
}

impl Store for RocksStore {
    fn commit(&self, block: &Block, writes: &[Op]) -> Result<()> {
        let mut tip = self.tip.lock().unwrap_or_else(|p| p.into_inner());
        check_extends(*tip, block)?;
        let height = block.height().to_be_bytes();
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_BLOCKS), height, encode_block(block));
        batch.put_cf(self.cf(CF_HASHES), block.hash.0, height);
        // Each column family's entries go in in key order. RocksDB's skip-list memtable keeps a
        // splice of the previous insert and recomputes it only below the level where it still
        // brackets the new key: keys in ascending order reuse most of it, where a block's
        // thousands of random tx ids would each search the memtable from the top.
        let mut index: Vec<(Hash, TxLocation)> = index_entries(block).collect();
        index.sort_unstable_by_key(|(id, _)| *id); // ids are unique within a block
        for (id, loc) in index {
            batch.put_cf(self.cf(CF_TXS), id.0, encode_location(&loc));
        }
        let state = self.cf(CF_STATE);
        // Stable, so that two writes to one key keep their order (the batch applies them in turn).
        let mut writes: Vec<&Op> = writes.iter().collect();
        writes.sort_by(|a, b| a.key().cmp(b.key()));
        for op in writes {
            match op {
                Op::Put { key, value } => batch.put_cf(state, key.as_bytes(), value.as_bytes()),
                Op::Delete { key } => batch.delete_cf(state, key.as_bytes()),
            }
        }
        let mut tip_record = Vec::with_capacity(40);
        tip_record.extend_from_slice(&height);
        tip_record.extend_from_slice(&block.hash.0);
        batch.put_cf(self.cf(CF_META), KEY_TIP, tip_record);
        self.db.write_opt(batch, &Self::synced()).map_err(io)?;
        *tip = Some((block.height(), block.hash));
        Ok(())
    }

    fn block(&self, height: u64) -> Result<Option<Block>> {
        match self.db.get_pinned_cf(self.cf(CF_BLOCKS), height.to_be_bytes()).map_err(io)? {
            Some(v) => decode_block(&v).map(Some),
            None => Ok(None),
        }
    }

    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>> {
        match self.db.get_pinned_cf(self.cf(CF_HASHES), hash.0).map_err(io)? {
            Some(v) => {
                let h: [u8; 8] = v.as_ref().try_into().map_err(|_| ChainError::Corrupt("hash index entry".into()))?;
                self.block(u64::from_be_bytes(h))
            }
            None => Ok(None),
        }
    }

    fn latest_height(&self) -> Result<Option<u64>> {
        Ok(self.tip.lock().unwrap_or_else(|p| p.into_inner()).map(|(h, _)| h))
    }

    fn tx_location(&self, id: &Hash) -> Result<Option<TxLocation>> {
        match self.db.get_pinned_cf(self.cf(CF_TXS), id.0).map_err(io)? {
            Some(v) => decode_location(&v).map(Some),
            None => Ok(None),
        }
    }

    fn committed(&self, ids: &[Hash]) -> Result<Vec<bool>> {
        let cf = self.cf(CF_TXS);
        self.db
            .batched_multi_get_cf(cf, ids.iter().map(|id| id.0.as_slice()), false)
            .into_iter()
            .map(|r| r.map(|v| v.is_some()).map_err(io))
            .collect()
    }

    fn state_get(&self, key: &str) -> Result<Option<String>> {
        match self.db.get_pinned_cf(self.cf(CF_STATE), key.as_bytes()).map_err(io)? {
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| ChainError::Corrupt(format!("state value of {key:?}"))),
            None => Ok(None),
        }
    }

    fn save_safety(&self, w: &SafetyWrite) -> Result<()> {
        let meta = self.cf(CF_META);
        let mut batch = WriteBatch::default();
        for key in &w.delete_bodies {
            batch.delete_cf(meta, safety_body_key(key));
        }
        for (key, body) in &w.put_bodies {
            batch.put_cf(meta, safety_body_key(key), body);
        }
        batch.put_cf(meta, KEY_SAFETY, &w.record);
        self.db.write_opt(batch, &Self::synced()).map_err(io)
    }

    fn load_safety(&self) -> Result<Option<StoredSafety>> {
        let meta = self.cf(CF_META);
        let Some(record) = self.db.get_cf(meta, KEY_SAFETY).map_err(io)? else { return Ok(None) };
        let mut bodies = std::collections::BTreeMap::new();
        for item in self.db.iterator_cf(meta, IteratorMode::From(SAFETY_BODY_PREFIX.as_bytes(), Direction::Forward)) {
            let (k, v) = item.map_err(io)?;
            if *k >= *SAFETY_BODY_END {
                break;
            }
            bodies.insert(safety_body_of(&k)?, v.to_vec());
        }
        Ok(Some(StoredSafety { record, bodies }))
    }

    fn write_log(&self, w: &LogWrite) -> Result<()> {
        // Serialised with commits by the tip lock, so two log writes never interleave their
        // check and their batch.
        let _guard = self.tip.lock().unwrap_or_else(|p| p.into_inner());
        let meta = self.cf(CF_META);
        let last_after_truncate = {
            let upper = match w.truncate_from {
                Some(from) => log_key(from),
                None => LOG_END.to_vec(),
            };
            // `From(upper, Reverse)` starts at the last key <= upper; `upper` itself is excluded.
            let mut found = None;
            for item in self.db.iterator_cf(meta, IteratorMode::From(&upper, Direction::Reverse)) {
                let (k, _) = item.map_err(io)?;
                if *k == *upper {
                    continue;
                }
                if k.starts_with(LOG_PREFIX.as_bytes()) {
                    found = Some(log_index(&k)?);
                }
                break;
            }
            found
        };
        check_log_write(last_after_truncate, w)?;
        let mut batch = WriteBatch::default();
        if let Some(m) = &w.meta {
            batch.put_cf(meta, KEY_LOG_META, m);
        }
        if let Some(from) = w.truncate_from {
            batch.delete_range_cf(meta, log_key(from), LOG_END.to_vec());
        }
        for (i, e) in &w.append {
            batch.put_cf(meta, log_key(*i), e);
        }
        if let Some(below) = w.delete_below {
            batch.delete_range_cf(meta, log_key(0), log_key(below));
        }
        self.db.write_opt(batch, &Self::synced()).map_err(io)
    }

    fn load_log(&self) -> Result<StoredLog> {
        let meta_cf = self.cf(CF_META);
        let meta = self.db.get_cf(meta_cf, KEY_LOG_META).map_err(io)?;
        let start = log_key(0);
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(meta_cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item.map_err(io)?;
            if !k.starts_with(LOG_PREFIX.as_bytes()) {
                break;
            }
            entries.push((log_index(&k)?, v.to_vec()));
        }
        Ok(StoredLog { meta, entries })
    }
}
