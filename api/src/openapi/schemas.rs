//! Schemas of the JSON shapes whose Rust types cannot carry a `ToSchema` derive here: the
//! protocol types of `ordo-chain` (which must not depend on utoipa) and the answers defined in
//! other modules of this crate (`node`, `mempool`, `error`).
//!
//! Each type below mirrors one serialized shape exactly: the same field names, the same serde
//! attributes (`deny_unknown_fields`, tags, `rename_all`), and `required`/nullable where the real
//! type always writes a field that may be `null`. They are documentation only and never
//! constructed; `api/tests/openapi.rs` checks real answers against the document, so a mirror that
//! drifts from the type it describes fails a test. The `as = ...` names are the names the
//! document uses, the Rust ones, so a reader of the document can find the real type.

// The mirrors are never constructed or read: they exist for their derived schemas.
#![allow(dead_code)]

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A string of `bytes` bytes in hex, as every hash, key and signature travels in JSON.
fn hex_schema(bytes: usize, what: &str) -> RefOr<Schema> {
    let chars = bytes * 2;
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "{what}: {bytes} bytes as {chars} hex digits, lowercase in answers (either case is accepted on input)."
        )))
        .pattern(Some(format!("^[0-9a-fA-F]{{{chars}}}$")))
        .min_length(Some(chars))
        .max_length(Some(chars))
        .into()
}

/// Declares a named hex-string schema for one of the chain's fixed-size byte types.
macro_rules! hex_schema_type {
    ($(#[$doc:meta])* $marker:ident, $name:literal, $bytes:expr, $what:literal) => {
        $(#[$doc])*
        pub struct $marker;

        impl PartialSchema for $marker {
            fn schema() -> RefOr<Schema> {
                hex_schema($bytes, $what)
            }
        }

        impl ToSchema for $marker {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

hex_schema_type!(
    // Mirrors `ordo_chain::Hash`.
    /// A SHA-256 digest (tx_id, block hash, Merkle roots, state hash).
    HashSchema,
    "Hash",
    32,
    "A SHA-256 digest"
);
hex_schema_type!(
    // Mirrors `ordo_chain::PublicKey`.
    /// An ed25519 public key (a client, or a validator's identity).
    PublicKeySchema,
    "PublicKey",
    32,
    "An ed25519 public key"
);
hex_schema_type!(
    // Mirrors `ordo_chain::Signature`.
    /// An ed25519 signature.
    SignatureSchema,
    "Signature",
    64,
    "An ed25519 signature"
);

// Mirrors `ordo_chain::Op`.
/// What a transaction does to the key-value state, tagged by `type`.
#[derive(ToSchema)]
#[schema(as = Op)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OpSchema {
    /// Sets `key` to `value`.
    Put { key: String, value: String },
    /// Removes `key` (a no-op when it is absent).
    Delete { key: String },
}

// Mirrors `ordo_chain::Transaction`.
/// A signed transaction (protocol §3), exactly as submitted and served.
/// The signature covers `"ordo/tx/v1" || str(chain_id) || sender || u64 nonce || op`.
#[derive(ToSchema)]
#[schema(as = Transaction)]
#[serde(deny_unknown_fields)]
pub struct TransactionSchema {
    /// The chain this transaction is for; a node refuses any other (422 `wrong_chain_id`).
    pub chain_id: String,
    /// The client's public key; the genesis may restrict which clients are admitted.
    pub sender: PublicKeySchema,
    /// Chosen by the client; it makes otherwise equal transactions distinct.
    pub nonce: u64,
    pub op: OpSchema,
    pub signature: SignatureSchema,
}

// Mirrors `ordo_chain::TxResult`.
/// The outcome of a committed transaction (protocol §4).
#[derive(ToSchema)]
#[schema(as = TxResult)]
#[serde(rename_all = "lowercase")]
pub enum TxResultSchema {
    /// Its write was applied to the state.
    Applied,
    /// Its `tx_id` was committed earlier; it changed nothing.
    Duplicate,
}

// Mirrors `ordo_chain::BlockTxJson`.
/// One transaction of a block, with its id and outcome.
#[derive(ToSchema)]
#[schema(as = BlockTx)]
#[serde(deny_unknown_fields)]
pub struct BlockTxSchema {
    pub chain_id: String,
    pub sender: PublicKeySchema,
    pub nonce: u64,
    pub op: OpSchema,
    pub signature: SignatureSchema,
    pub tx_id: HashSchema,
    pub result: TxResultSchema,
}

// Mirrors `ordo_chain::cert::ValidatorSignature`.
/// One validator's COMMIT signature.
#[derive(ToSchema)]
#[schema(as = ValidatorSignature)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSignatureSchema {
    pub validator: PublicKeySchema,
    pub signature: SignatureSchema,
}

// Mirrors `ordo_chain::Certificate`.
/// The proof a block was agreed, tagged by `kind`, which must match
/// the chain's consensus.
#[derive(ToSchema)]
#[schema(as = Certificate)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CertificateSchema {
    /// COMMIT signatures of a quorum of validators over (view, height, batch_digest).
    Pbft { view: u64, height: u64, batch_digest: HashSchema, signatures: Vec<ValidatorSignatureSchema> },
    /// The leader's signature over (term, height, batch_digest).
    Raft { term: u64, height: u64, batch_digest: HashSchema, leader: PublicKeySchema, signature: SignatureSchema },
}

// Mirrors `ordo_chain::BlockJson`.
/// A block as the API and the event stream serve it.
#[derive(ToSchema)]
#[schema(as = Block)]
#[serde(deny_unknown_fields)]
pub struct BlockSchema {
    pub height: u64,
    pub hash: HashSchema,
    pub prev_hash: HashSchema,
    /// What the committee signs: the hash of the batch header.
    pub batch_digest: HashSchema,
    /// The state after this block.
    pub state_hash: HashSchema,
    pub timestamp_ms: u64,
    pub proposer: PublicKeySchema,
    /// The Merkle root of the transactions' ids.
    pub tx_root: HashSchema,
    pub tx_count: u32,
    pub txs: Vec<BlockTxSchema>,
    /// `null` for the genesis block (height 0) only.
    #[schema(required = true)]
    pub certificate: Option<CertificateSchema>,
}

// Mirrors `ordo_genesis::ConsensusKind`.
/// The ordering protocol of the chain.
#[derive(ToSchema)]
#[schema(as = ConsensusKind)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusKindSchema {
    Pbft,
    Raft,
}

// Mirrors `ordo_chain::mempool::MempoolStats`.
/// How full the mempool is.
#[derive(ToSchema)]
#[schema(as = MempoolStats)]
pub struct MempoolStatsSchema {
    pub txs: u64,
    pub bytes: u64,
}

// Mirrors `crate::node::PeerStatus`.
/// Another validator as this node's p2p layer sees it.
#[derive(ToSchema)]
#[schema(as = PeerStatus)]
#[serde(deny_unknown_fields)]
pub struct PeerStatusSchema {
    pub node_id: PublicKeySchema,
    pub name: String,
    pub connected: bool,
}

// Mirrors `crate::node::NodeStatus`.
/// This node's view of the chain and the consensus (`GET /v1/status`). Exactly one of `view`
/// (PBFT) and `term` (Raft) is present.
#[derive(ToSchema)]
#[schema(as = NodeStatus)]
pub struct NodeStatusSchema {
    pub chain_id: String,
    /// This validator's public key.
    pub node_id: PublicKeySchema,
    pub name: String,
    pub consensus: ConsensusKindSchema,
    /// The PBFT view; present when `consensus` is `pbft`.
    #[schema(value_type = u64, required = false)]
    pub view: Option<u64>,
    /// The Raft term; present when `consensus` is `raft`.
    #[schema(value_type = u64, required = false)]
    pub term: Option<u64>,
    /// The current primary or leader's public key; `null` while none is known.
    #[schema(required = true)]
    pub leader: Option<PublicKeySchema>,
    pub height: u64,
    pub last_block_hash: HashSchema,
    pub state_hash: HashSchema,
    pub mempool: MempoolStatsSchema,
    /// The other validators.
    pub peers: Vec<PeerStatusSchema>,
    /// The number of validators, n.
    pub validators: u64,
    /// The number of faults tolerated.
    pub f: u64,
    /// Whether the node accepts submissions (connected to a quorum and caught up).
    pub ready: bool,
}

// Mirrors `crate::node::ValidatorStatus`.
/// One genesis validator and whether this node reaches it.
#[derive(ToSchema)]
#[schema(as = ValidatorStatus)]
#[serde(deny_unknown_fields)]
pub struct ValidatorStatusSchema {
    pub name: String,
    pub public_key: PublicKeySchema,
    /// Its libp2p multiaddress.
    pub p2p_addr: String,
    /// The base URL of its API.
    pub api_addr: String,
    /// True for this node itself and for peers it has a live connection to.
    pub connected: bool,
}

// Mirrors `crate::node::StateEntry`.
/// A state key's value (`GET /v1/state/{key}`).
#[derive(ToSchema)]
#[schema(as = StateEntry)]
#[serde(deny_unknown_fields)]
pub struct StateEntrySchema {
    pub key: String,
    pub value: String,
    /// The height of the newest block when the value was read.
    pub height: u64,
}

// Mirrors `crate::error::ErrorDetail`.
/// What went wrong.
#[derive(ToSchema)]
#[schema(as = ErrorDetail)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetailSchema {
    /// A stable snake_case code to branch on (see docs/api.md for the list).
    pub code: String,
    /// A human-readable explanation; its wording may change.
    pub message: String,
}

// Mirrors `crate::error::ErrorBody`.
/// The body of every error answer, `{"error":{"code","message"}}`.
#[derive(ToSchema)]
#[schema(as = ErrorBody)]
#[serde(deny_unknown_fields)]
pub struct ErrorBodySchema {
    pub error: ErrorDetailSchema,
}

// Mirrors the `Hello` of `crate::events`.
/// The data of the `hello` event that opens every `GET /v1/events` stream.
#[derive(ToSchema)]
#[schema(as = HelloEvent)]
pub struct HelloEventSchema {
    pub chain_id: String,
    /// This validator's public key.
    pub node_id: PublicKeySchema,
    /// The node's tip when the stream opened.
    pub height: u64,
    /// The lowest height this node can replay (it keeps every block: 0).
    pub oldest_height: u64,
}
