//! The engine's in-memory image of its durable log, which raft-rs reads through its `Storage`
//! trait, and the records it is persisted as (`Action::PersistLog`, `Store::write_log`).
//!
//! The log starts after a base: the compaction point (or the metadata of an installed leader
//! snapshot), named by its raft (index, term) and the chain height the log had reached there.
//! raft-rs's snapshot is never a state snapshot here: `Storage::snapshot` returns only that
//! base, and a follower behind it fetches the certified blocks from a peer (see `engine`).
//!
//! Records (through `ordo_chain::codec`):
//! - meta: `u8 version || u64 term || u64 vote || u64 commit || u64 base_index || u64 base_term || u64 base_height`;
//! - entry (keyed by its index): `u64 term || bytes32 data`.

use ::raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use ::raft::{GetEntriesContext, RaftState, Storage, StorageError};
use ordo_chain::codec::{Reader, Writer};
use ordo_chain::store::StoredLog;

use super::message::{snapshot, SnapshotMeta};
use crate::error::{ConsensusError, Result};

const META_VERSION: u8 = 1;

/// The log's base: everything at or below `index` is compacted (or was never here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogBase {
    pub index: u64,
    pub term: u64,
    /// The chain height the log had reached at `index`.
    pub height: u64,
}

/// The engine's log as raft-rs sees it.
#[derive(Debug, Clone)]
pub struct EngineLog {
    pub(crate) hard: HardState,
    pub(crate) voters: Vec<u64>,
    pub(crate) base: LogBase,
    /// `entries[i].index == base.index + 1 + i`.
    pub(crate) entries: Vec<Entry>,
}

impl EngineLog {
    /// An empty log of a fresh committee.
    pub fn new(voters: Vec<u64>) -> Self {
        EngineLog { hard: HardState::default(), voters, base: LogBase::default(), entries: Vec::new() }
    }

    /// Rebuilds the log from what the store holds, checking that it is consistent.
    pub fn restore(voters: Vec<u64>, stored: &StoredLog) -> Result<Self> {
        let corrupt = |m: String| Err(ConsensusError::CorruptRaftLog(m));
        let mut log = EngineLog::new(voters);
        if let Some(meta) = &stored.meta {
            let (hard, base) = decode_meta(meta)?;
            log.hard = hard;
            log.base = base;
        } else if !stored.entries.is_empty() {
            return corrupt("log entries without a meta record".into());
        }
        for (i, (index, bytes)) in stored.entries.iter().enumerate() {
            if *index != log.base.index + 1 + i as u64 {
                return corrupt(format!("entry {index} where {} was expected", log.base.index + 1 + i as u64));
            }
            log.entries.push(decode_entry(*index, bytes)?);
        }
        if log.entries.windows(2).any(|w| w[1].term < w[0].term)
            || log.entries.first().is_some_and(|e| e.term < log.base.term)
        {
            return corrupt("entry terms decrease".into());
        }
        // raft-rs refuses a commit index beyond the log (a lost tail, a wiped directory): say so
        // instead of panicking inside it.
        if log.hard.commit > log.last_index() {
            return corrupt(format!(
                "commit index {} is beyond the last entry {}: entries the committee relies on are missing",
                log.hard.commit,
                log.last_index()
            ));
        }
        log.hard.commit = log.hard.commit.max(log.base.index);
        Ok(log)
    }

    pub fn first_index(&self) -> u64 {
        self.base.index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.base.index + self.entries.len() as u64
    }

    /// The term of `index`, if the log holds it (the base included).
    pub fn term_of(&self, index: u64) -> Option<u64> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        if index < self.base.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.base.index - 1) as usize].term)
    }

    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.base.index || index > self.last_index() {
            return None;
        }
        Some(&self.entries[(index - self.base.index - 1) as usize])
    }

    /// Appends entries from raft-rs's Ready, replacing any conflicting suffix.
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        assert!(
            first.index > self.base.index && first.index <= self.last_index() + 1,
            "append at {} to a log of [{}, {}]",
            first.index,
            self.first_index(),
            self.last_index()
        );
        self.entries.truncate((first.index - self.base.index - 1) as usize);
        self.entries.extend_from_slice(ents);
    }

    /// Replaces the whole log by a base (an installed snapshot).
    pub fn install(&mut self, base: LogBase) {
        self.base = base;
        self.entries.clear();
        self.hard.commit = self.hard.commit.max(base.index);
    }

    /// Drops the entries at or below `index`, which becomes the base.
    pub fn compact(&mut self, index: u64, height: u64) {
        assert!(index > self.base.index && index <= self.last_index(), "compaction inside the log");
        let term = self.term_of(index).expect("inside the log");
        self.entries.drain(..(index - self.base.index) as usize);
        self.base = LogBase { index, term, height };
    }

    pub fn meta_record(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(49);
        w.u8(META_VERSION)
            .u64(self.hard.term)
            .u64(self.hard.vote)
            .u64(self.hard.commit)
            .u64(self.base.index)
            .u64(self.base.term)
            .u64(self.base.height);
        w.finish()
    }

    fn snapshot_meta(&self) -> SnapshotMeta {
        SnapshotMeta { index: self.base.index, term: self.base.term, height: self.base.height }
    }
}

pub fn decode_meta(bytes: &[u8]) -> Result<(HardState, LogBase)> {
    let corrupt = |e: ordo_chain::ChainError| ConsensusError::CorruptRaftLog(format!("meta record: {e}"));
    let mut r = Reader::new(bytes);
    let version = r.u8().map_err(corrupt)?;
    if version != META_VERSION {
        return Err(ConsensusError::CorruptRaftLog(format!("meta record version {version}")));
    }
    let (term, vote, commit) = (r.u64().map_err(corrupt)?, r.u64().map_err(corrupt)?, r.u64().map_err(corrupt)?);
    let hard = HardState { term, vote, commit, ..Default::default() };
    let base = LogBase {
        index: r.u64().map_err(corrupt)?,
        term: r.u64().map_err(corrupt)?,
        height: r.u64().map_err(corrupt)?,
    };
    r.finish().map_err(corrupt)?;
    Ok((hard, base))
}

pub fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut w = Writer::with_capacity(12 + e.data.len());
    w.u64(e.term).bytes32(&e.data);
    w.finish()
}

pub fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry> {
    let corrupt = |e: ordo_chain::ChainError| ConsensusError::CorruptRaftLog(format!("entry {index}: {e}"));
    let mut r = Reader::new(bytes);
    let term = r.u64().map_err(corrupt)?;
    let data = r.bytes32().map_err(corrupt)?.to_vec().into();
    let e = Entry { index, term, data, ..Default::default() };
    r.finish().map_err(corrupt)?;
    Ok(e)
}

impl Storage for EngineLog {
    fn initial_state(&self) -> ::raft::Result<RaftState> {
        let conf = ConfState { voters: self.voters.clone(), ..Default::default() };
        Ok(RaftState { hard_state: self.hard.clone(), conf_state: conf })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> ::raft::Result<Vec<Entry>> {
        if low <= self.base.index {
            return Err(::raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index() + 1 || low > high {
            return Err(::raft::Error::Store(StorageError::Unavailable));
        }
        let lo = (low - self.base.index - 1) as usize;
        let hi = (high - self.base.index - 1) as usize;
        let mut ents = self.entries[lo..hi].to_vec();
        ::raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> ::raft::Result<u64> {
        if idx < self.base.index {
            return Err(::raft::Error::Store(StorageError::Compacted));
        }
        self.term_of(idx).ok_or(::raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> ::raft::Result<u64> {
        Ok(self.first_index())
    }

    fn last_index(&self) -> ::raft::Result<u64> {
        Ok(self.last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> ::raft::Result<Snapshot> {
        if self.base.index == 0 || self.base.index < request_index {
            return Err(::raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(snapshot(&self.snapshot_meta(), &self.voters))
    }
}
