//! The view-models of the explorer's pages: what each template shows, built from the chain's
//! types with every formatting decision (names for keys, shortened hashes in lists, UTC times,
//! truncated client values in lists) made here rather than in the templates.
//!
//! Nothing here is marked safe for HTML: every string, including the client-written keys and
//! values, is escaped by askama when a template writes it.

use std::collections::HashMap;

use ordo_chain::cert::Certificate;
use ordo_chain::{Block, Op, PublicKey, Transaction, TxResult};

use crate::explorer::format::{short_hex, state_href, truncate_chars, utc_time};
use crate::node::ValidatorStatus;
use crate::recent::{BlockSummary, RecentBlocks};
use ordo_chain::ledger::TxStatus;

/// How many characters of a client-written key or value a list shows; the transaction's own page
/// shows it whole.
pub const LIST_TEXT_CHARS: usize = 48;

/// Validator names by public key, so pages show "node1" rather than 64 hex characters.
pub struct Names(HashMap<PublicKey, String>);

impl Names {
    pub fn new(validators: &[ValidatorStatus]) -> Self {
        Names(validators.iter().map(|v| (v.public_key, v.name.clone())).collect())
    }

    pub fn get(&self, key: &PublicKey) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The validator's name, or the shortened key of a key that is not a validator's.
    pub fn label(&self, key: &PublicKey) -> String {
        self.get(key).map_or_else(|| short_hex(&key.to_hex()), str::to_string)
    }
}

/// `applied` or `duplicate`, as protocol §4 names them.
pub fn result_text(result: TxResult) -> &'static str {
    match result {
        TxResult::Applied => "applied",
        TxResult::Duplicate => "duplicate",
    }
}

/// `put` or `delete`, as protocol §3 names them.
pub fn op_text(op: &Op) -> &'static str {
    match op {
        Op::Put { .. } => "put",
        Op::Delete { .. } => "delete",
    }
}

/// One row of a list of blocks (the dashboard's recent blocks, the `/blocks` pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    pub height: u64,
    pub hash: String,
    pub hash_short: String,
    pub time: String,
    pub tx_count: u32,
    /// The proposer's name; `—` for genesis, which has none.
    pub proposer: String,
    pub signers: usize,
}

impl BlockRow {
    pub fn of_summary(b: &BlockSummary, names: &Names) -> Self {
        let hash = b.hash.to_hex();
        BlockRow {
            height: b.height,
            hash_short: short_hex(&hash),
            hash,
            time: utc_time(b.timestamp_ms),
            tx_count: b.tx_count,
            proposer: if b.height == 0 { "—".to_string() } else { names.label(&b.proposer) },
            signers: b.signers.len(),
        }
    }

    pub fn of_block(b: &Block, names: &Names) -> Self {
        Self::of_summary(&BlockSummary::of(b), names)
    }
}

/// One validator as the dashboard and `/validators` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorRow {
    pub name: String,
    pub key: String,
    pub key_short: String,
    pub p2p_addr: String,
    pub api_addr: String,
    pub connected: bool,
    /// The newest height whose certificate this validator signed, among the recent blocks.
    pub last_signed: Option<u64>,
    pub is_leader: bool,
    /// The node serving the page.
    pub is_self: bool,
}

impl ValidatorRow {
    pub fn list(
        validators: &[ValidatorStatus],
        recent: &RecentBlocks,
        leader: Option<&PublicKey>,
        me: Option<&PublicKey>,
    ) -> Vec<Self> {
        validators
            .iter()
            .map(|v| {
                let key = v.public_key.to_hex();
                ValidatorRow {
                    name: v.name.clone(),
                    key_short: short_hex(&key),
                    key,
                    p2p_addr: v.p2p_addr.clone(),
                    api_addr: v.api_addr.clone(),
                    connected: v.connected,
                    last_signed: recent.last_signed(&v.public_key),
                    is_leader: leader == Some(&v.public_key),
                    is_self: me == Some(&v.public_key),
                }
            })
            .collect()
    }
}

/// A validator that signed a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerView {
    /// The validator's name; empty for a key that is not in the validator set.
    pub name: String,
    pub key: String,
    pub signature: String,
}

/// A block's certificate (protocol §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertView {
    pub kind: &'static str,
    /// `View` (PBFT) or `Term` (Raft).
    pub round_label: &'static str,
    pub round: u64,
    pub height: u64,
    pub batch_digest: String,
    pub signers: Vec<SignerView>,
}

impl CertView {
    pub fn of(cert: &Certificate, names: &Names) -> Self {
        let signer = |key: &PublicKey, signature: String| SignerView {
            name: names.get(key).unwrap_or_default().to_string(),
            key: key.to_hex(),
            signature,
        };
        match cert {
            Certificate::Pbft(c) => CertView {
                kind: "pbft",
                round_label: "View",
                round: c.view,
                height: c.height,
                batch_digest: c.batch_digest.to_hex(),
                signers: c.signatures.iter().map(|s| signer(&s.validator, s.signature.to_hex())).collect(),
            },
            Certificate::Raft(c) => CertView {
                kind: "raft",
                round_label: "Term",
                round: c.term,
                height: c.height,
                batch_digest: c.batch_digest.to_hex(),
                signers: vec![signer(&c.leader, c.signature.to_hex())],
            },
        }
    }
}

/// One transaction in a block's table; key and value are cut to [`LIST_TEXT_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRow {
    pub index: usize,
    pub id: String,
    pub id_short: String,
    pub sender: String,
    pub sender_short: String,
    pub nonce: u64,
    pub op: &'static str,
    pub key: String,
    pub key_href: String,
    /// `None` for a delete.
    pub value: Option<String>,
    pub result: &'static str,
}

/// Everything `/blocks/{height}` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockView {
    pub height: u64,
    pub hash: String,
    pub prev_hash: String,
    /// The parent's height; `None` for genesis, whose `prev_hash` is all zeros.
    pub prev_height: Option<u64>,
    /// The child's height when this node has it.
    pub next_height: Option<u64>,
    pub batch_digest: String,
    pub state_hash: String,
    pub timestamp_ms: u64,
    pub time: String,
    /// The proposer's name; empty for genesis or a key outside the validator set.
    pub proposer_name: String,
    pub proposer: String,
    pub tx_root: String,
    pub tx_count: u32,
    pub certificate: Option<CertView>,
    pub txs: Vec<TxRow>,
}

impl BlockView {
    /// `tip` is this node's newest height, to link the next block only when there is one.
    pub fn of(b: &Block, names: &Names, tip: u64) -> Self {
        let height = b.height();
        let txs = b
            .txs
            .iter()
            .zip(&b.tx_ids)
            .zip(&b.results)
            .enumerate()
            .map(|(index, ((tx, id), result))| {
                let id = id.to_hex();
                let sender = tx.sender.to_hex();
                let key = tx.op.key();
                TxRow {
                    index,
                    id_short: short_hex(&id),
                    id,
                    sender_short: names.get(&tx.sender).map_or_else(|| short_hex(&sender), str::to_string),
                    sender,
                    nonce: tx.nonce,
                    op: op_text(&tx.op),
                    key: truncate_chars(key, LIST_TEXT_CHARS).0,
                    key_href: state_href(key),
                    value: match &tx.op {
                        Op::Put { value, .. } => Some(truncate_chars(value, LIST_TEXT_CHARS).0),
                        Op::Delete { .. } => None,
                    },
                    result: result_text(*result),
                }
            })
            .collect();
        BlockView {
            height,
            hash: b.hash.to_hex(),
            prev_hash: b.prev_hash.to_hex(),
            prev_height: height.checked_sub(1),
            next_height: height.checked_add(1).filter(|n| *n <= tip),
            batch_digest: b.batch_digest.to_hex(),
            state_hash: b.state_hash.to_hex(),
            timestamp_ms: b.header.timestamp_ms,
            time: utc_time(b.header.timestamp_ms),
            proposer_name: if height == 0 {
                String::new()
            } else {
                names.get(&b.header.proposer).unwrap_or_default().to_string()
            },
            proposer: b.header.proposer.to_hex(),
            tx_root: b.header.tx_root.to_hex(),
            tx_count: b.header.tx_count,
            certificate: b.certificate.as_ref().map(|c| CertView::of(c, names)),
            txs,
        }
    }
}

/// Everything `/tx/{tx_id}` shows; key and value whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxView {
    pub id: String,
    /// `pending` or `committed`.
    pub status: &'static str,
    pub height: Option<u64>,
    pub index: Option<u32>,
    pub result: Option<&'static str>,
    pub chain_id: String,
    pub op: &'static str,
    pub key: String,
    pub key_href: String,
    pub value: Option<String>,
    pub sender: String,
    pub sender_name: String,
    pub nonce: u64,
    pub signature: String,
}

impl TxView {
    pub fn of(status: &TxStatus, names: &Names) -> Self {
        let (tx, state, location): (&Transaction, _, _) = match status {
            TxStatus::Pending(v) => (v.tx(), "pending", None),
            TxStatus::Committed { location, tx } => (tx, "committed", Some(location)),
        };
        TxView {
            id: tx.tx_id().to_hex(),
            status: state,
            height: location.map(|l| l.height),
            index: location.map(|l| l.index),
            result: location.map(|l| result_text(l.result)),
            chain_id: tx.chain_id.clone(),
            op: op_text(&tx.op),
            key: tx.op.key().to_string(),
            key_href: state_href(tx.op.key()),
            value: match &tx.op {
                Op::Put { value, .. } => Some(value.clone()),
                Op::Delete { .. } => None,
            },
            sender: tx.sender.to_hex(),
            sender_name: names.get(&tx.sender).unwrap_or_default().to_string(),
            nonce: tx.nonce,
            signature: tx.signature.to_hex(),
        }
    }
}
