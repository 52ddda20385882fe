//! The JSON bodies of the API: parsing submitted transactions (singly and in bounded batches)
//! with precise error codes, and the shapes of the answers.
//!
//! Every answer type derives `utoipa::ToSchema`, so `GET /v1/openapi.json` describes exactly
//! what is served; fields of `ordo-chain` types name their hand-written schemas in
//! [`crate::openapi::schemas`] (`value_type`), since that crate does not depend on utoipa.
//!
//! A transaction is parsed through [`TxInput`], whose keys and signatures are plain strings, so
//! bad hex is reported as `bad_hex` naming the field rather than as a generic JSON error; the
//! chain's own `Transaction` deserializer would fold both into one message.

use std::cell::Cell;
use std::fmt;

use ordo_chain::{BlockJson, Hash, Op, PublicKey, Signature, Transaction, TxResult};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::node::{BlockPage, ValidatorStatus};
use crate::openapi::schemas::{
    BlockSchema, ErrorBodySchema, HashSchema, TransactionSchema, TxResultSchema, ValidatorStatusSchema,
};
use ordo_chain::ledger::TxStatus;

/// A transaction exactly as protocol §3 submits it, before its hex fields are decoded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TxInput {
    chain_id: String,
    sender: String,
    nonce: u64,
    op: Op,
    signature: String,
}

impl TxInput {
    fn into_transaction(self) -> Result<Transaction, ApiError> {
        Ok(Transaction {
            chain_id: self.chain_id,
            sender: PublicKey::from_hex(&self.sender)?,
            nonce: self.nonce,
            op: self.op,
            signature: Signature::from_hex(&self.signature)?,
        })
    }
}

/// Sorts a serde_json failure into "not JSON" and "JSON of the wrong shape".
fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => ApiError::MalformedJson { reason: e.to_string() },
        Category::Data => ApiError::InvalidJson { reason: e.to_string() },
        Category::Io => ApiError::UnreadableBody { reason: e.to_string() },
    }
}

/// Parses one submitted transaction.
pub fn parse_tx(body: &[u8]) -> Result<Transaction, ApiError> {
    serde_json::from_slice::<TxInput>(body).map_err(json_error)?.into_transaction()
}

/// Parses a batch: the body must be a JSON array of at most `max_txs` items; each item is then
/// parsed on its own, so one bad item fails alone. Parsing stops at item `max_txs + 1`, so an
/// oversized batch costs no more than a full one.
pub fn parse_batch(body: &[u8], max_txs: usize) -> Result<Vec<Result<Transaction, ApiError>>, ApiError> {
    let too_many = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = BoundedArray { max_items: max_txs, too_many: &too_many }.deserialize(&mut de).and_then(|items| {
        de.end()?;
        Ok(items)
    });
    let items = match items {
        Ok(items) => items,
        Err(_) if too_many.get() => return Err(ApiError::BatchTooLarge { max_txs }),
        Err(e) => return Err(json_error(e)),
    };
    Ok(items
        .into_iter()
        .map(|raw| serde_json::from_str::<TxInput>(raw.get()).map_err(json_error)?.into_transaction())
        .collect())
}

/// Deserializes a JSON array into borrowed raw items, failing as soon as it holds too many.
struct BoundedArray<'a> {
    max_items: usize,
    too_many: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BoundedArray<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BoundedArray<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON array of at most {} transactions", self.max_items)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max_items {
                self.too_many.set(true);
                return Err(serde::de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// `"pending"` or `"committed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TxState {
    Pending,
    Committed,
}

/// The 202 answer to a newly admitted transaction: `{"tx_id","status":"pending"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Accepted)]
#[serde(deny_unknown_fields)]
pub struct AcceptedJson {
    #[schema(value_type = HashSchema)]
    pub tx_id: Hash,
    /// Always `pending`.
    pub status: TxState,
}

/// The status of a known transaction, as `GET /v1/transactions/{tx_id}` serves it. `height`,
/// `index` and `result` are `null` while it is pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = TxStatus)]
#[serde(deny_unknown_fields)]
pub struct TxStatusJson {
    #[schema(value_type = HashSchema)]
    pub tx_id: Hash,
    pub status: TxState,
    /// The block that committed it; `null` while pending.
    #[schema(required = true)]
    pub height: Option<u64>,
    /// Its position in that block; `null` while pending.
    #[schema(required = true)]
    pub index: Option<u32>,
    /// `applied` once committed (a transaction is only ever indexed where it applied); `null`
    /// while pending.
    #[schema(value_type = Option<TxResultSchema>, required = true)]
    pub result: Option<TxResult>,
    #[schema(value_type = TransactionSchema)]
    pub tx: Transaction,
}

impl From<TxStatus> for TxStatusJson {
    fn from(s: TxStatus) -> Self {
        match s {
            TxStatus::Pending(v) => TxStatusJson {
                tx_id: v.id(),
                status: TxState::Pending,
                height: None,
                index: None,
                result: None,
                tx: v.tx().clone(),
            },
            TxStatus::Committed { location, tx } => TxStatusJson {
                tx_id: tx.tx_id(),
                status: TxState::Committed,
                height: Some(location.height),
                index: Some(location.index),
                result: Some(location.result),
                tx,
            },
        }
    }
}

/// One item of a batch answer: what `POST /v1/transactions` would have answered for it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = BatchItem)]
#[serde(untagged)]
pub enum BatchItemJson {
    /// Already pending or committed: its current status.
    Known(TxStatusJson),
    /// Admitted to the mempool.
    Accepted(AcceptedJson),
    /// Refused, alone: malformed, against a rule, or `mempool_full`.
    #[schema(value_type = ErrorBodySchema)]
    Error(ErrorBody),
}

/// `GET /v1/blocks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = BlockPage)]
#[serde(deny_unknown_fields)]
pub struct BlockPageJson {
    /// Newest first.
    #[schema(value_type = Vec<BlockSchema>)]
    pub blocks: Vec<BlockJson>,
    /// The `before` of the following page (the lowest height returned); `null` once the page
    /// reaches genesis or is empty.
    #[schema(required = true)]
    pub next: Option<u64>,
}

impl From<BlockPage> for BlockPageJson {
    fn from(p: BlockPage) -> Self {
        BlockPageJson { blocks: p.blocks.iter().map(BlockJson::from).collect(), next: p.next }
    }
}

/// `GET /v1/validators`: the genesis validator set, in genesis order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Validators)]
#[serde(deny_unknown_fields)]
pub struct ValidatorsJson {
    #[schema(value_type = Vec<ValidatorStatusSchema>)]
    pub validators: Vec<ValidatorStatus>,
}

/// `GET /healthz`: `{"status":"ok"}` whenever the process serves requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Health)]
#[serde(deny_unknown_fields)]
pub struct HealthJson {
    /// Always `ok`.
    pub status: HealthState,
}

/// The one value of [`HealthJson::status`]: a process that answers at all is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Ok,
}

/// `GET /readyz` when the node is ready: `{"ready":true}` (not ready is a 503 error body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Ready)]
#[serde(deny_unknown_fields)]
pub struct ReadyJson {
    /// Always `true`: a node that is not ready answers 503 `not_ready`.
    pub ready: bool,
}

#[cfg(test)]
mod tests {
    use ordo_chain::Keypair;

    use super::*;

    fn tx_json() -> serde_json::Value {
        let op = Op::Put { key: "k".into(), value: "v".into() };
        serde_json::to_value(Transaction::sign("c", &Keypair::from_seed([3; 32]), 1, op)).unwrap()
    }

    #[test]
    fn parses_what_the_chain_serializes() {
        let v = tx_json();
        let tx = parse_tx(v.to_string().as_bytes()).unwrap();
        assert_eq!(serde_json::to_value(tx).unwrap(), v);
    }

    #[test]
    fn sorts_errors_by_kind() {
        assert_eq!(parse_tx(b"{\"chain_id\":").unwrap_err().code(), "malformed_json");
        assert_eq!(parse_tx(b"{\"chain_id\": \"c\",}").unwrap_err().code(), "malformed_json");
        let mut v = tx_json();
        v.as_object_mut().unwrap().remove("nonce");
        assert_eq!(parse_tx(v.to_string().as_bytes()).unwrap_err().code(), "invalid_json");
        let mut v = tx_json();
        v["sender"] = "xy".repeat(32).into();
        let e = parse_tx(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.code(), "bad_hex");
        assert!(e.to_string().contains("public key"), "{e}");
        let mut v = tx_json();
        v["signature"] = "ab".into();
        assert_eq!(parse_tx(v.to_string().as_bytes()).unwrap_err().code(), "bad_hex");
    }

    #[test]
    fn batch_is_bounded_and_items_fail_alone() {
        let good = tx_json();
        let body = serde_json::json!([good, {"x": 1}, good]).to_string();
        let items = parse_batch(body.as_bytes(), 3).unwrap();
        assert!(items[0].is_ok() && items[2].is_ok());
        assert_eq!(items[1].as_ref().unwrap_err().code(), "invalid_json");
        assert!(matches!(parse_batch(body.as_bytes(), 2), Err(ApiError::BatchTooLarge { max_txs: 2 })));
        assert!(parse_batch(b"[]", 0).unwrap().is_empty());
        assert_eq!(parse_batch(b"{}", 3).unwrap_err().code(), "invalid_json");
        assert_eq!(parse_batch(b"[] x", 3).unwrap_err().code(), "malformed_json");
        assert_eq!(parse_batch(b"[1, 2", 3).unwrap_err().code(), "malformed_json");
    }

    #[test]
    fn pending_status_has_null_location() {
        let tx = parse_tx(tx_json().to_string().as_bytes()).unwrap();
        let v = ordo_chain::TxRules::new("c").verify(tx).unwrap();
        let json = serde_json::to_value(TxStatusJson::from(TxStatus::Pending(v.clone()))).unwrap();
        assert_eq!(json["status"], "pending");
        assert_eq!(json["tx_id"], v.id().to_hex());
        assert!(json["height"].is_null() && json["index"].is_null() && json["result"].is_null());
    }
}
