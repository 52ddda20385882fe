//! Transactions (protocol §3): the JSON form, the signing bytes, `tx_id`, the static rules, and
//! signature verification in batches. A `VerifiedTx` can only be made by the checks here, so code
//! that holds one knows the transaction passed every rule.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::crypto::{sha256, verify_batch, Hash, Keypair, PublicKey, SigCheck, Signature};
use crate::error::{ChainError, Result};
use crate::limits::TxLimits;

/// The domain tag of transaction signing bytes.
pub const TX_TAG: &str = "ordo/tx/v1";
/// The op tag of a put in signing bytes and state writes.
pub const OP_PUT: u8 = 1;
/// The op tag of a delete in signing bytes and state writes.
pub const OP_DELETE: u8 = 2;

/// What a transaction does to the key-value state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Op {
    Put { key: String, value: String },
    Delete { key: String },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }

    /// `u8 tag || u32 len(K) || K || [u32 len(V) || V]`, shared by signing bytes and state writes.
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Op::Put { key, value } => {
                w.u8(OP_PUT).bytes32(key.as_bytes()).bytes32(value.as_bytes());
            }
            Op::Delete { key } => {
                w.u8(OP_DELETE).bytes32(key.as_bytes());
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Op> {
        match r.u8()? {
            OP_PUT => Ok(Op::Put { key: r.string32()?, value: r.string32()? }),
            OP_DELETE => Ok(Op::Delete { key: r.string32()? }),
            t => Err(ChainError::Decode(format!("unknown op tag {t}"))),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Op::Put { key, value } => 1 + 4 + key.len() + 4 + value.len(),
            Op::Delete { key } => 1 + 4 + key.len(),
        }
    }
}

/// A signed transaction, exactly as submitted and served (protocol §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    pub chain_id: String,
    pub sender: PublicKey,
    pub nonce: u64,
    pub op: Op,
    pub signature: Signature,
}

impl Transaction {
    /// Builds and signs a transaction. Panics if `chain_id` is longer than a u16 can count, which
    /// the limits forbid long before.
    pub fn sign(chain_id: &str, key: &Keypair, nonce: u64, op: Op) -> Transaction {
        let mut tx = Transaction {
            chain_id: chain_id.to_string(),
            sender: key.public(),
            nonce,
            op,
            signature: Signature([0; 64]),
        };
        tx.signature = key.sign(&tx.signing_bytes());
        tx
    }

    /// `"ordo/tx/v1" || str(chain_id) || sender || u64 nonce || op`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.signing_len());
        w.tag(TX_TAG).str16(&self.chain_id).key(&self.sender).u64(self.nonce);
        self.op.encode(&mut w);
        w.finish()
    }

    fn signing_len(&self) -> usize {
        TX_TAG.len() + 2 + self.chain_id.len() + 32 + 8 + self.op.encoded_len()
    }

    /// `tx_id = H(signing bytes)`.
    pub fn tx_id(&self) -> Hash {
        sha256(&self.signing_bytes())
    }

    /// Computes the signing bytes and `tx_id` once, for a caller that needs the id before it
    /// verifies (the gossip path looks ids up first) and must not pay for them twice.
    pub fn stage(self) -> StagedTx {
        let bytes = self.signing_bytes();
        let id = sha256(&bytes);
        StagedTx { tx: self, bytes, id }
    }

    /// Parses the JSON form, reporting malformed input as `ChainError::Json`/`BadHex`.
    pub fn from_json(body: &[u8]) -> Result<Transaction> {
        serde_json::from_slice(body).map_err(|e| ChainError::Json(e.to_string()))
    }

    /// The rules that need no signature check: sizes and chain id (protocol §3), in that order.
    pub fn check_static(&self, chain_id: &str, limits: &TxLimits) -> Result<()> {
        if self.chain_id.len() > limits.chain_id_max_bytes {
            return Err(ChainError::ChainIdTooLong { len: self.chain_id.len(), max: limits.chain_id_max_bytes });
        }
        if self.chain_id != chain_id {
            return Err(ChainError::WrongChainId { expected: chain_id.to_string(), got: self.chain_id.clone() });
        }
        let key = self.op.key();
        if key.is_empty() {
            return Err(ChainError::EmptyKey);
        }
        if key.len() > limits.key_max_bytes {
            return Err(ChainError::KeyTooLong { len: key.len(), max: limits.key_max_bytes });
        }
        if let Op::Put { value, .. } = &self.op {
            if value.len() > limits.value_max_bytes {
                return Err(ChainError::ValueTooLong { len: value.len(), max: limits.value_max_bytes });
            }
        }
        Ok(())
    }

    /// Binary form used by the store and the network: `bytes32(signing bytes) || signature`.
    pub fn encode(&self, w: &mut Writer) {
        w.bytes32(&self.signing_bytes()).sig(&self.signature);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Transaction> {
        let signing = r.bytes32()?;
        let signature = r.sig()?;
        let mut s = Reader::new(signing);
        s.expect_tag(TX_TAG)?;
        let chain_id = s.str16()?;
        let sender = s.key()?;
        let nonce = s.u64()?;
        let op = Op::decode(&mut s)?;
        s.finish()?;
        Ok(Transaction { chain_id, sender, nonce, op, signature })
    }
}

/// Which clients may submit transactions (genesis `clients`): `"any"` or a list of public keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Clients {
    #[default]
    Any,
    Only(BTreeSet<PublicKey>),
}

impl Clients {
    pub fn admits(&self, sender: &PublicKey) -> bool {
        match self {
            Clients::Any => true,
            Clients::Only(set) => set.contains(sender),
        }
    }
}

impl Serialize for Clients {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Clients::Any => s.serialize_str("any"),
            Clients::Only(set) => set.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Clients {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<PublicKey>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "any" => Ok(Clients::Any),
            Raw::Word(w) => {
                Err(serde::de::Error::custom(format!("clients must be \"any\" or a list of keys, got {w:?}")))
            }
            Raw::List(l) => Ok(Clients::Only(l.into_iter().collect())),
        }
    }
}

/// Everything a node needs to judge a transaction: its chain, limits and admitted clients.
#[derive(Debug, Clone)]
pub struct TxRules {
    pub chain_id: String,
    pub limits: TxLimits,
    pub clients: Clients,
}

/// The `known` lookup of [`TxRules::verify_many_reusing`] that knows no transaction.
pub fn nothing_known(ids: &[Hash]) -> Vec<Option<VerifiedTx>> {
    vec![None; ids.len()]
}

impl TxRules {
    pub fn new(chain_id: impl Into<String>) -> Self {
        Self { chain_id: chain_id.into(), limits: TxLimits::default(), clients: Clients::Any }
    }

    /// Checks one transaction fully (static rules, admission, strict signature).
    pub fn verify(&self, tx: Transaction) -> Result<VerifiedTx> {
        self.verify_many(vec![tx]).pop().expect("one result per input")
    }

    /// Checks many transactions, verifying their signatures as one batch. Returns one result per
    /// input, in order; a bad item is named and does not spoil the others.
    pub fn verify_many(&self, txs: Vec<Transaction>) -> Vec<Result<VerifiedTx>> {
        self.verify_many_reusing(txs, &nothing_known)
    }

    /// Like [`TxRules::verify_many`], but a transaction for which `known` (asked once, with every
    /// `tx_id` of the call, and answering one entry per id) returns an already verified
    /// transaction with the same `tx_id` *and identical content, signature included* is taken
    /// as it is, without a second signature check. The node passes its mempool here,
    /// so a backup does not verify again, in a PRE-PREPARE, the transactions it verified when
    /// they were gossiped. (`tx_id` does not cover the signature, hence the full comparison: a
    /// batch carrying a known id with a forged signature is checked and refused.)
    pub fn verify_many_reusing(
        &self,
        txs: Vec<Transaction>,
        known: &dyn Fn(&[Hash]) -> Vec<Option<VerifiedTx>>,
    ) -> Vec<Result<VerifiedTx>> {
        self.verify_many_split(txs, known).0
    }

    /// [`TxRules::verify_many_reusing`], also returning the transactions whose signatures this
    /// call checked and found good (those `known` did not supply), in order: what the caller
    /// learned, and may keep so that nobody checks them again.
    pub fn verify_many_split(
        &self,
        txs: Vec<Transaction>,
        known: &dyn Fn(&[Hash]) -> Vec<Option<VerifiedTx>>,
    ) -> (Vec<Result<VerifiedTx>>, Vec<VerifiedTx>) {
        self.verify_staged_split(txs.into_iter().map(Transaction::stage).collect(), known)
    }

    /// [`TxRules::verify_many`] on transactions whose signing bytes and ids are already computed.
    pub fn verify_staged(&self, txs: Vec<StagedTx>) -> Vec<Result<VerifiedTx>> {
        self.verify_staged_split(txs, &nothing_known).0
    }

    fn verify_staged_split(
        &self,
        txs: Vec<StagedTx>,
        known: &dyn Fn(&[Hash]) -> Vec<Option<VerifiedTx>>,
    ) -> (Vec<Result<VerifiedTx>>, Vec<VerifiedTx>) {
        enum Staged {
            Known(VerifiedTx),
            Check(Box<Transaction>, Vec<u8>, Hash),
        }
        let ids: Vec<Hash> = txs.iter().map(StagedTx::id).collect();
        let found = known(&ids);
        assert_eq!(found.len(), ids.len(), "a known-transaction lookup answers once per id");
        // Static checks first; only the survivors go into the batch.
        let mut staged: Vec<Result<Staged>> = txs
            .into_iter()
            .zip(found)
            .map(|(StagedTx { tx, bytes, id }, found)| {
                if let Some(v) = found.filter(|v| *v.tx() == tx) {
                    return Ok(Staged::Known(v));
                }
                tx.check_static(&self.chain_id, &self.limits)?;
                if !self.clients.admits(&tx.sender) {
                    return Err(ChainError::SenderNotAdmitted { sender: tx.sender });
                }
                Ok(Staged::Check(Box::new(tx), bytes, id))
            })
            .collect();
        let checks: Vec<SigCheck> = staged
            .iter()
            .filter_map(|s| match s {
                Ok(Staged::Check(tx, bytes, _)) => Some(SigCheck { key: &tx.sender, msg: bytes, sig: &tx.signature }),
                _ => None,
            })
            .collect();
        let mut sig_results = verify_batch(&checks).into_iter();
        drop(checks);
        let mut fresh = Vec::new();
        let results = staged
            .drain(..)
            .map(|s| match s? {
                Staged::Known(v) => Ok(v),
                Staged::Check(tx, bytes, id) => match sig_results.next().expect("one result per checked transaction") {
                    Ok(()) => {
                        let v = VerifiedTx::new_checked(*tx, id, bytes);
                        fresh.push(v.clone());
                        Ok(v)
                    }
                    Err(reason) => Err(ChainError::BadSignature { tx_id: id, reason }),
                },
            })
            .collect();
        (results, fresh)
    }
}

/// A transaction not yet verified, with its signing bytes and `tx_id` computed
/// ([`Transaction::stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedTx {
    tx: Transaction,
    bytes: Vec<u8>,
    id: Hash,
}

impl StagedTx {
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The size of the binary encoding, as [`VerifiedTx::wire_len`] will count it.
    pub fn wire_len(&self) -> usize {
        encoded_len(&self.bytes)
    }
}

/// The size of a transaction's binary encoding (`bytes32(signing_bytes) || sig(64)`), from its
/// signing bytes.
fn encoded_len(signing_bytes: &[u8]) -> usize {
    4 + signing_bytes.len() + 64
}

/// A transaction that passed every rule of protocol §3, with its `tx_id`. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedTx(Arc<VerifiedInner>);

#[derive(PartialEq, Eq)]
struct VerifiedInner {
    tx: Transaction,
    id: Hash,
    /// The signing bytes the signature was checked over, kept so that every later encoding
    /// (gossip, PRE-PREPARE, Raft entries) copies them instead of building them again.
    signing_bytes: Box<[u8]>,
}

impl VerifiedTx {
    fn new_checked(tx: Transaction, id: Hash, signing_bytes: Vec<u8>) -> Self {
        Self(Arc::new(VerifiedInner { tx, id, signing_bytes: signing_bytes.into_boxed_slice() }))
    }

    /// Wraps a transaction read back from this node's own store, which only ever holds verified
    /// transactions. Never use it on input from outside the node.
    pub fn from_trusted_store(tx: Transaction) -> Self {
        Self::unchecked(tx.stage())
    }

    /// Wraps a transaction carried in a Raft leader's log entry, whose signature is not checked
    /// again. Only for a crash-fault-tolerant (Raft) committee, which trusts its members not to
    /// lie: the node that admitted the transaction verified it (`TxRules::verify_many`), the
    /// leader's certificate covers the batch, and `ordo verify-chain` re-checks every signature.
    /// The caller still applies the static rules (`Transaction::check_static`). Never use it
    /// on a PBFT chain or on input from outside the committee.
    pub fn from_crash_trusted_leader(tx: Transaction) -> Self {
        Self::unchecked(tx.stage())
    }

    /// For the two trusted constructors above only: no signature check.
    fn unchecked(StagedTx { tx, bytes, id }: StagedTx) -> Self {
        Self::new_checked(tx, id, bytes)
    }

    pub fn tx(&self) -> &Transaction {
        &self.0.tx
    }
    pub fn id(&self) -> Hash {
        self.0.id
    }
    /// The size of the binary encoding, for byte limits on batches and the mempool.
    pub fn wire_len(&self) -> usize {
        encoded_len(&self.0.signing_bytes)
    }
    /// Writes the binary encoding, exactly as [`Transaction::encode`] does.
    pub fn encode(&self, w: &mut Writer) {
        w.bytes32(&self.0.signing_bytes).sig(&self.0.tx.signature);
    }
}

impl fmt::Debug for VerifiedTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedTx({:?})", self.0.id)
    }
}

/// The outcome of a committed transaction (protocol §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxResult {
    /// Its write was applied to the state.
    Applied,
    /// Its `tx_id` was already committed earlier; it changed nothing.
    Duplicate,
}

impl TxResult {
    pub fn to_u8(self) -> u8 {
        match self {
            TxResult::Applied => 1,
            TxResult::Duplicate => 2,
        }
    }
    pub fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(TxResult::Applied),
            2 => Ok(TxResult::Duplicate),
            _ => Err(ChainError::Decode(format!("unknown tx result {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigError;

    #[test]
    fn verify_many_reusing_takes_known_transactions_only_when_identical() {
        let rules = TxRules::new("ordo-test");
        let k = key();
        let a = Transaction::sign("ordo-test", &k, 1, put("a", "1"));
        let b = Transaction::sign("ordo-test", &k, 2, put("b", "2"));
        let va = rules.verify(a.clone()).unwrap();
        let known = |ids: &[Hash]| ids.iter().map(|id| (*id == va.id()).then(|| va.clone())).collect();
        let out = rules.verify_many_reusing(vec![a.clone(), b.clone()], &known);
        assert_eq!(out[0].as_ref().unwrap(), &va);
        assert_eq!(out[1].as_ref().unwrap().tx(), &b);
        // Only what this call checked is reported as fresh.
        let (out, fresh) = rules.verify_many_split(vec![a.clone(), b.clone()], &known);
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 2);
        assert_eq!(fresh.iter().map(VerifiedTx::id).collect::<Vec<_>>(), [b.tx_id()]);
        // Same tx_id (the signature is not part of it), other signature: checked, and refused.
        let mut forged = a.clone();
        forged.signature = b.signature;
        assert_eq!(forged.tx_id(), a.tx_id());
        let (out, fresh) = rules.verify_many_split(vec![forged], &known);
        assert!(matches!(out[0], Err(ChainError::BadSignature { .. })), "{out:?}");
        assert!(fresh.is_empty(), "a refused transaction is never reported fresh");
        // A known id does not bypass the static rules of another chain either.
        let other = TxRules::new("other-chain");
        assert!(matches!(other.verify_many_reusing(vec![b], &nothing_known)[0], Err(ChainError::WrongChainId { .. })));
    }

    fn key() -> Keypair {
        Keypair::from_seed([1; 32])
    }

    fn put(k: &str, v: &str) -> Op {
        Op::Put { key: k.into(), value: v.into() }
    }

    fn rules() -> TxRules {
        TxRules::new("ordo-testnet")
    }

    #[test]
    fn signing_bytes_layout_matches_spec() {
        let tx = Transaction::sign("c", &key(), 7, put("k", "vv"));
        let b = tx.signing_bytes();
        let mut expect = b"ordo/tx/v1".to_vec();
        expect.extend_from_slice(&[0, 1, b'c']);
        expect.extend_from_slice(&key().public().0);
        expect.extend_from_slice(&7u64.to_be_bytes());
        expect.extend_from_slice(&[1, 0, 0, 0, 1, b'k', 0, 0, 0, 2, b'v', b'v']);
        assert_eq!(b, expect);
        let del = Transaction::sign("c", &key(), 7, Op::Delete { key: "k".into() });
        assert!(del.signing_bytes().ends_with(&[2, 0, 0, 0, 1, b'k']));
    }

    #[test]
    fn json_roundtrip_and_field_names() {
        let tx = Transaction::sign("ordo-testnet", &key(), 7, put("user:1", "John Doe"));
        let json = serde_json::to_value(&tx).unwrap();
        assert_eq!(json["op"]["type"], "put");
        assert_eq!(json["nonce"], 7);
        assert_eq!(json["sender"].as_str().unwrap().len(), 64);
        assert_eq!(json["signature"].as_str().unwrap().len(), 128);
        let back = Transaction::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(back, tx);
        let del = Transaction::sign("ordo-testnet", &key(), 1, Op::Delete { key: "a".into() });
        let v = serde_json::to_value(&del).unwrap();
        assert_eq!(v["op"], serde_json::json!({"type": "delete", "key": "a"}));
    }

    #[test]
    fn binary_roundtrip() {
        let tx = Transaction::sign("ordo-testnet", &key(), u64::MAX, put("k", "v"));
        let mut w = Writer::default();
        tx.encode(&mut w);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(Transaction::decode(&mut r).unwrap(), tx);
        r.finish().unwrap();
        assert!(Transaction::decode(&mut Reader::new(&bytes[..bytes.len() - 1])).is_err());
    }

    #[test]
    fn a_verified_transaction_encodes_as_its_transaction_does() {
        for op in [put("k", "v"), put("long", &"x".repeat(300)), Op::Delete { key: "gone".into() }] {
            let tx = Transaction::sign("ordo-testnet", &key(), 9, op);
            let mut plain = Writer::default();
            tx.encode(&mut plain);
            let plain = plain.finish();
            for v in [
                rules().verify(tx.clone()).unwrap(),
                rules().verify_staged(vec![tx.clone().stage()]).remove(0).unwrap(),
            ] {
                let mut cached = Writer::default();
                v.encode(&mut cached);
                assert_eq!(cached.finish(), plain);
                assert_eq!(v.wire_len(), plain.len());
                assert_eq!(v.id(), tx.tx_id());
            }
        }
    }

    #[test]
    fn valid_transaction_verifies() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        let v = rules().verify(tx.clone()).unwrap();
        assert_eq!(v.id(), tx.tx_id());
    }

    // One test per rejection rule of protocol §3.

    #[test]
    fn reject_malformed_json() {
        assert!(matches!(Transaction::from_json(b"{not json"), Err(ChainError::Json(_))));
    }

    #[test]
    fn reject_missing_field() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        let mut v = serde_json::to_value(&tx).unwrap();
        v.as_object_mut().unwrap().remove("nonce");
        let e = Transaction::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(&e, ChainError::Json(m) if m.contains("nonce")), "{e}");
    }

    #[test]
    fn reject_unknown_field() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        let mut v = serde_json::to_value(&tx).unwrap();
        v["extra"] = 1.into();
        assert!(matches!(Transaction::from_json(v.to_string().as_bytes()), Err(ChainError::Json(_))));
        let mut v = serde_json::to_value(&tx).unwrap();
        v["op"]["extra"] = 1.into();
        assert!(matches!(Transaction::from_json(v.to_string().as_bytes()), Err(ChainError::Json(_))));
    }

    #[test]
    fn reject_unknown_op_type() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        let mut v = serde_json::to_value(&tx).unwrap();
        v["op"]["type"] = "increment".into();
        assert!(matches!(Transaction::from_json(v.to_string().as_bytes()), Err(ChainError::Json(_))));
    }

    #[test]
    fn reject_bad_hex() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        let mut v = serde_json::to_value(&tx).unwrap();
        v["sender"] = "zz".repeat(32).into();
        let e = Transaction::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(&e, ChainError::Json(m) if m.contains("hex")), "{e}");
        let mut v = serde_json::to_value(&tx).unwrap();
        v["signature"] = "ab".into();
        assert!(Transaction::from_json(v.to_string().as_bytes()).is_err());
    }

    #[test]
    fn reject_wrong_chain_id() {
        let tx = Transaction::sign("other", &key(), 1, put("k", "v"));
        assert!(matches!(rules().verify(tx), Err(ChainError::WrongChainId { .. })));
    }

    #[test]
    fn reject_chain_id_too_long() {
        let long = "c".repeat(65);
        let tx = Transaction::sign(&long, &key(), 1, put("k", "v"));
        assert!(matches!(TxRules::new(long).verify(tx), Err(ChainError::ChainIdTooLong { len: 65, max: 64 })));
    }

    #[test]
    fn reject_empty_key() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("", "v"));
        assert_eq!(rules().verify(tx).unwrap_err(), ChainError::EmptyKey);
    }

    #[test]
    fn reject_key_too_long() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put(&"k".repeat(257), "v"));
        assert!(matches!(rules().verify(tx), Err(ChainError::KeyTooLong { len: 257, max: 256 })));
        let ok = Transaction::sign("ordo-testnet", &key(), 1, put(&"k".repeat(256), "v"));
        assert!(rules().verify(ok).is_ok());
    }

    #[test]
    fn reject_value_too_long() {
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", &"v".repeat(65537)));
        assert!(matches!(rules().verify(tx), Err(ChainError::ValueTooLong { len: 65537, .. })));
    }

    #[test]
    fn reject_bad_signature() {
        let mut tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        tx.nonce = 2; // the signature was over nonce 1
        assert!(matches!(rules().verify(tx), Err(ChainError::BadSignature { reason: SigError::Invalid, .. })));
    }

    #[test]
    fn reject_signature_by_another_key() {
        let mut tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        tx.sender = Keypair::from_seed([2; 32]).public();
        assert!(matches!(rules().verify(tx), Err(ChainError::BadSignature { .. })));
    }

    #[test]
    fn reject_small_order_sender() {
        let mut id = [0u8; 32];
        id[0] = 1;
        let tx = Transaction {
            chain_id: "ordo-testnet".into(),
            sender: PublicKey(id),
            nonce: 1,
            op: put("k", "v"),
            signature: Signature([0; 64]),
        };
        assert!(matches!(rules().verify(tx), Err(ChainError::BadSignature { reason: SigError::WeakKey, .. })));
    }

    #[test]
    fn reject_non_canonical_s() {
        let mut tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        // Add the group order L to S: same scalar mod L, but a non-canonical encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s_byte, l_byte) in tx.signature.0[32..].iter_mut().zip(L) {
            let s = *s_byte as u16 + l_byte as u16 + carry;
            *s_byte = s as u8;
            carry = s >> 8;
        }
        assert!(matches!(rules().verify(tx), Err(ChainError::BadSignature { .. })));
    }

    #[test]
    fn reject_sender_not_admitted() {
        let mut r = rules();
        r.clients = Clients::Only([Keypair::from_seed([9; 32]).public()].into_iter().collect());
        let tx = Transaction::sign("ordo-testnet", &key(), 1, put("k", "v"));
        assert!(matches!(r.verify(tx), Err(ChainError::SenderNotAdmitted { .. })));
    }

    #[test]
    fn batch_names_each_bad_item() {
        let mut txs: Vec<Transaction> =
            (0..64).map(|i| Transaction::sign("ordo-testnet", &key(), i, put("k", "v"))).collect();
        txs[10].nonce = 999;
        txs[20].chain_id = "x".into();
        let res = rules().verify_many(txs);
        assert_eq!(res.len(), 64);
        assert!(matches!(res[10], Err(ChainError::BadSignature { .. })));
        assert!(matches!(res[20], Err(ChainError::WrongChainId { .. })));
        assert_eq!(res.iter().filter(|r| r.is_ok()).count(), 62);
    }

    #[test]
    fn clients_json() {
        let any: Clients = serde_json::from_str("\"any\"").unwrap();
        assert_eq!(any, Clients::Any);
        let pk = key().public();
        let only: Clients = serde_json::from_str(&format!("[\"{pk}\"]")).unwrap();
        assert!(only.admits(&pk));
        assert!(serde_json::from_str::<Clients>("\"some\"").is_err());
    }
}
