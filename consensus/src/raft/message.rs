//! Ordo's own Raft wire message: the subset of raft-rs's `eraftpb::Message` fields the engine
//! uses, encoded with `ordo_chain::codec`. Peer bytes are never parsed as protobuf (protobuf 2
//! has RUSTSEC-2024-0437, a crash on crafted input); they are decoded here, bounded, verified
//! (`super::verify`), and only then converted into raft-rs's types.
//!
//! Wire form (all integers big-endian):
//! `u8 version || u8 kind || u64 from || u64 to || u64 term || u64 log_term || u64 index ||
//!  u64 commit || u64 commit_term || u8 reject || u64 reject_hint ||
//!  u32 n || n × (u64 index || u64 term || bytes32 data) ||
//!  u8 has_snapshot || [u64 index || u64 term || u64 height]`.
//! An entry's `data` is empty for a leader's no-op entry, or an encoded [`EntryBatch`].

use ::raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use ordo_chain::cert::RaftCertificate;
use ordo_chain::codec::{Reader, Writer};
use ordo_chain::{BatchHeader, Transaction, VerifiedTx};

use crate::error::{ConsensusError, Result};

const WIRE_VERSION: u8 = 1;
const BATCH_VERSION: u8 = 1;

/// The Raft message kinds that may cross the wire. raft-rs's local kinds (hup, beat, propose,
/// check-quorum, ...) and the features Ordo does not use (leader transfer, read index) are
/// refused at decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RaftKind {
    Append,
    AppendResponse,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    Heartbeat,
    HeartbeatResponse,
    RequestPreVote,
    RequestPreVoteResponse,
}

impl RaftKind {
    pub fn to_raft(self) -> MessageType {
        match self {
            RaftKind::Append => MessageType::MsgAppend,
            RaftKind::AppendResponse => MessageType::MsgAppendResponse,
            RaftKind::RequestVote => MessageType::MsgRequestVote,
            RaftKind::RequestVoteResponse => MessageType::MsgRequestVoteResponse,
            RaftKind::Snapshot => MessageType::MsgSnapshot,
            RaftKind::Heartbeat => MessageType::MsgHeartbeat,
            RaftKind::HeartbeatResponse => MessageType::MsgHeartbeatResponse,
            RaftKind::RequestPreVote => MessageType::MsgRequestPreVote,
            RaftKind::RequestPreVoteResponse => MessageType::MsgRequestPreVoteResponse,
        }
    }

    pub fn from_raft(t: MessageType) -> Option<RaftKind> {
        Some(match t {
            MessageType::MsgAppend => RaftKind::Append,
            MessageType::MsgAppendResponse => RaftKind::AppendResponse,
            MessageType::MsgRequestVote => RaftKind::RequestVote,
            MessageType::MsgRequestVoteResponse => RaftKind::RequestVoteResponse,
            MessageType::MsgSnapshot => RaftKind::Snapshot,
            MessageType::MsgHeartbeat => RaftKind::Heartbeat,
            MessageType::MsgHeartbeatResponse => RaftKind::HeartbeatResponse,
            MessageType::MsgRequestPreVote => RaftKind::RequestPreVote,
            MessageType::MsgRequestPreVoteResponse => RaftKind::RequestPreVoteResponse,
            _ => return None,
        })
    }

    fn to_u8(self) -> u8 {
        self.to_raft() as u8
    }

    fn from_u8(b: u8) -> Option<RaftKind> {
        let t = match b {
            3 => MessageType::MsgAppend,
            4 => MessageType::MsgAppendResponse,
            5 => MessageType::MsgRequestVote,
            6 => MessageType::MsgRequestVoteResponse,
            7 => MessageType::MsgSnapshot,
            8 => MessageType::MsgHeartbeat,
            9 => MessageType::MsgHeartbeatResponse,
            17 => MessageType::MsgRequestPreVote,
            18 => MessageType::MsgRequestPreVoteResponse,
            _ => return None,
        };
        RaftKind::from_raft(t)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RaftKind::Append => "append",
            RaftKind::AppendResponse => "append-response",
            RaftKind::RequestVote => "request-vote",
            RaftKind::RequestVoteResponse => "request-vote-response",
            RaftKind::Snapshot => "snapshot",
            RaftKind::Heartbeat => "heartbeat",
            RaftKind::HeartbeatResponse => "heartbeat-response",
            RaftKind::RequestPreVote => "request-pre-vote",
            RaftKind::RequestPreVoteResponse => "request-pre-vote-response",
        }
    }
}

/// One log entry on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftEntry {
    pub index: u64,
    pub term: u64,
    /// Empty for a leader's no-op entry; otherwise an encoded [`EntryBatch`].
    pub data: Vec<u8>,
}

/// The metadata of a leader's log base (its compaction point), sent instead of a state
/// snapshot: the receiver must already hold the block of `height`, or fetch it (certified)
/// first. Blocks are never shipped inside a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    /// The chain height reached by the log at `index`.
    pub height: u64,
}

/// A Raft message between two validators (raft ids are genesis index + 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftMessage {
    pub kind: RaftKind,
    pub from: u64,
    pub to: u64,
    pub term: u64,
    pub log_term: u64,
    pub index: u64,
    pub commit: u64,
    pub commit_term: u64,
    pub reject: bool,
    pub reject_hint: u64,
    pub entries: Vec<RaftEntry>,
    pub snapshot: Option<SnapshotMeta>,
}

impl RaftMessage {
    /// The binary form p2p ships.
    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self.entries.iter().map(|e| 20 + e.data.len()).sum();
        let mut w = Writer::with_capacity(96 + body);
        w.u8(WIRE_VERSION)
            .u8(self.kind.to_u8())
            .u64(self.from)
            .u64(self.to)
            .u64(self.term)
            .u64(self.log_term)
            .u64(self.index)
            .u64(self.commit)
            .u64(self.commit_term)
            .u8(self.reject as u8)
            .u64(self.reject_hint)
            .u32(u32::try_from(self.entries.len()).expect("entries are bounded"));
        for e in &self.entries {
            w.u64(e.index).u64(e.term).bytes32(&e.data);
        }
        match &self.snapshot {
            Some(s) => {
                w.u8(1).u64(s.index).u64(s.term).u64(s.height);
            }
            None => {
                w.u8(0);
            }
        }
        w.finish()
    }

    /// Decodes wire bytes, refusing oversized input before reading it and more than
    /// `max_entries` entries. Structural only: `super::verify` checks the content.
    pub fn decode(bytes: &[u8], max_bytes: usize, max_entries: usize) -> Result<RaftMessage> {
        if bytes.len() > max_bytes {
            return Err(ConsensusError::MessageTooLarge { len: bytes.len(), max: max_bytes });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != WIRE_VERSION {
            return Err(ConsensusError::Decode(format!("raft message version {version}")));
        }
        let k = r.u8()?;
        let kind = RaftKind::from_u8(k).ok_or_else(|| ConsensusError::Decode(format!("raft message kind {k}")))?;
        let (from, to, term, log_term, index, commit, commit_term) =
            (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let reject = match r.u8()? {
            0 => false,
            1 => true,
            b => return Err(ConsensusError::Decode(format!("reject flag {b}"))),
        };
        let reject_hint = r.u64()?;
        let n = r.u32()? as usize;
        if n > max_entries {
            return Err(ConsensusError::Decode(format!("{n} entries, the limit is {max_entries}")));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(RaftEntry { index: r.u64()?, term: r.u64()?, data: r.bytes32()?.to_vec() });
        }
        let snapshot = match r.u8()? {
            0 => None,
            1 => Some(SnapshotMeta { index: r.u64()?, term: r.u64()?, height: r.u64()? }),
            b => return Err(ConsensusError::Decode(format!("snapshot flag {b}"))),
        };
        r.finish()?;
        Ok(RaftMessage {
            kind,
            from,
            to,
            term,
            log_term,
            index,
            commit,
            commit_term,
            reject,
            reject_hint,
            entries,
            snapshot,
        })
    }

    /// From raft-rs's outgoing message. `None` for a kind that never crosses the wire (raft-rs
    /// emits none of those for the features the engine uses).
    pub fn from_raft(m: &Message) -> Option<RaftMessage> {
        let kind = RaftKind::from_raft(m.get_msg_type())?;
        let snapshot = m.snapshot.as_ref().filter(|s| s.get_metadata().index > 0).map(|s| SnapshotMeta {
            index: s.get_metadata().index,
            term: s.get_metadata().term,
            height: decode_snapshot_height(&s.data).unwrap_or(0),
        });
        Some(RaftMessage {
            kind,
            from: m.from,
            to: m.to,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            commit: m.commit,
            commit_term: m.commit_term,
            reject: m.reject,
            reject_hint: m.reject_hint,
            entries: m
                .entries
                .iter()
                .map(|e| RaftEntry { index: e.index, term: e.term, data: e.data.to_vec() })
                .collect(),
            snapshot,
        })
    }

    /// Into raft-rs's message, with the committee's (fixed) configuration in a snapshot.
    pub(crate) fn to_raft(&self, voters: &[u64]) -> Message {
        let mut m = Message::default();
        m.set_msg_type(self.kind.to_raft());
        m.from = self.from;
        m.to = self.to;
        m.term = self.term;
        m.log_term = self.log_term;
        m.index = self.index;
        m.commit = self.commit;
        m.commit_term = self.commit_term;
        m.reject = self.reject;
        m.reject_hint = self.reject_hint;
        m.set_entries(
            self.entries
                .iter()
                .map(|e| Entry { index: e.index, term: e.term, data: e.data.clone().into(), ..Default::default() })
                .collect::<Vec<_>>()
                .into(),
        );
        if let Some(s) = &self.snapshot {
            m.set_snapshot(snapshot(s, voters));
        }
        m
    }
}

/// A raft-rs snapshot that carries only Ordo's log base metadata.
pub(crate) fn snapshot(s: &SnapshotMeta, voters: &[u64]) -> Snapshot {
    let conf = ConfState { voters: voters.to_vec(), ..Default::default() };
    let mut meta = SnapshotMetadata { index: s.index, term: s.term, ..Default::default() };
    meta.set_conf_state(conf);
    let mut snap = Snapshot::default();
    snap.set_metadata(meta);
    snap.data = encode_snapshot_height(s.height).into();
    snap
}

pub(crate) fn encode_snapshot_height(height: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(8);
    w.u64(height);
    w.finish()
}

pub(crate) fn decode_snapshot_height(data: &[u8]) -> Result<u64> {
    let mut r = Reader::new(data);
    let h = r.u64()?;
    r.finish()?;
    Ok(h)
}

/// The payload of a batch entry: the batch header, its transactions, and the leader's
/// protocol §6 Raft certificate over (term, height, batch_digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryBatch {
    pub header: BatchHeader,
    pub txs: Vec<Transaction>,
    pub certificate: RaftCertificate,
}

impl EntryBatch {
    /// `u8 version || u64 height || u64 timestamp_ms || proposer(32) || tx_root(32) ||
    /// u32 tx_count || u32 n || n × tx || u64 term || u64 height || digest(32) || leader(32) || signature(64)`.
    pub fn encode(header: &BatchHeader, txs: &[VerifiedTx], cert: &RaftCertificate) -> Vec<u8> {
        let body: usize = txs.iter().map(|t| t.wire_len()).sum();
        let mut w = Writer::with_capacity(320 + body);
        w.u8(BATCH_VERSION);
        header.encode(&mut w);
        w.u32(u32::try_from(txs.len()).expect("batches are bounded"));
        for t in txs {
            t.encode(&mut w);
        }
        w.u64(cert.term).u64(cert.height).hash(&cert.batch_digest).key(&cert.leader).sig(&cert.signature);
        w.finish()
    }

    /// Structural decoding with a bound on the transaction count.
    pub fn decode(data: &[u8], max_txs: usize) -> Result<EntryBatch> {
        let mut r = Reader::new(data);
        let version = r.u8()?;
        if version != BATCH_VERSION {
            return Err(ConsensusError::Decode(format!("batch entry version {version}")));
        }
        let header = BatchHeader::decode(&mut r)?;
        let n = r.u32()? as usize;
        if n > max_txs {
            return Err(ConsensusError::BatchTooLarge { height: header.height, count: n, max: max_txs });
        }
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push(Transaction::decode(&mut r)?);
        }
        let certificate = RaftCertificate {
            term: r.u64()?,
            height: r.u64()?,
            batch_digest: r.hash()?,
            leader: r.key()?,
            signature: r.sig()?,
        };
        r.finish()?;
        Ok(EntryBatch { header, txs, certificate })
    }
}
