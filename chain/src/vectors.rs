//! The deterministic test vectors published in `docs/test-vectors.json`.
//!
//! Client authors in other languages test their implementation of protocol §1–§6 against these
//! values: keys, transactions with their signing bytes and `tx_id`, `tx_root`s, a genesis block and
//! three certified blocks on top of it, and inputs a client must reject. Everything is derived from
//! fixed seeds through the public API of this crate, with no randomness and no clock, and ed25519
//! signatures are deterministic, so [`generate`] returns the same value on every run.
//!
//! `chain/tests/vectors.rs` checks that the committed file equals [`generate`] and re-derives every
//! value in it; `scripts/spec_check.py` re-derives them again from the SPEC text alone.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use crate::block::{BatchHeader, Block, BlockJson};
use crate::cert::{pbft_commit_bytes, Certificate};
use crate::crypto::{sha256, Hash, Keypair, PublicKey, SigError, Signature};
use crate::error::ChainError;
use crate::merkle::{leaf_hash, tx_root};
use crate::state::encode_writes;
use crate::tx::{Op, Transaction, TxResult, TxRules, VerifiedTx};

/// The chain every vector belongs to.
pub const CHAIN_ID: &str = "ordo-testnet";
/// The genesis time of the vectors' chain (2025-11-28T00:00:00Z).
pub const GENESIS_TIME_MS: u64 = 1_764_288_000_000;
/// The chain id of the "wrong chain" negative cases.
pub const OTHER_CHAIN_ID: &str = "ordo-devnet";
/// The command that rewrites `docs/test-vectors.json`, run from the workspace root.
pub const REGENERATE_COMMAND: &str =
    "cargo run -p ordo-chain --no-default-features --example test_vectors > docs/test-vectors.json";

/// The client keys, by name. `mallory` is no validator: she signs the outsider certificate.
pub const CLIENT_NAMES: [&str; 4] = ["alice", "bob", "carol", "mallory"];
/// The number of validators of the vectors' chain (n = 4, f = 1, quorum 3).
pub const VALIDATOR_COUNT: usize = 4;

/// A client key: its seed is `SHA-256("ordo/test-vectors/client/<name>")`, so the seeds look like
/// real keys yet anyone can see they were not chosen to hide anything.
pub fn client_key(name: &str) -> Keypair {
    Keypair::from_seed(sha256(format!("ordo/test-vectors/client/{name}").as_bytes()).0)
}

/// Validator `i`'s key: its seed is `SHA-256("ordo/test-vectors/validator/<i>")`.
pub fn validator_key(i: usize) -> Keypair {
    Keypair::from_seed(sha256(format!("ordo/test-vectors/validator/{i}").as_bytes()).0)
}

/// The validator keys in genesis order.
pub fn validator_keys() -> Vec<Keypair> {
    (0..VALIDATOR_COUNT).map(validator_key).collect()
}

/// The initial state of the vectors' genesis.
pub fn genesis_state() -> BTreeMap<String, String> {
    [("greeting".to_string(), "hello".to_string())].into()
}

fn put(key: &str, value: &str) -> Op {
    Op::Put { key: key.into(), value: value.into() }
}

/// One named, valid transaction of the vectors.
struct NamedTx {
    name: &'static str,
    about: &'static str,
    signer: &'static str,
    tx: Transaction,
}

impl NamedTx {
    fn new(name: &'static str, about: &'static str, signer: &'static str, nonce: u64, op: Op) -> Self {
        Self { name, about, signer, tx: Transaction::sign(CHAIN_ID, &client_key(signer), nonce, op) }
    }
}

/// The valid transactions, in the order the file lists them; the chain below uses them all.
fn named_txs() -> Vec<NamedTx> {
    vec![
        NamedTx::new(
            "put_basic",
            "The protocol §3 example: a put with ASCII key and value.",
            "alice",
            7,
            put("user:1", "John Doe"),
        ),
        NamedTx::new(
            "put_empty_value",
            "A put of the empty value at nonce 0: the value is present, with length 0.",
            "alice",
            0,
            put("flag", ""),
        ),
        NamedTx::new(
            "put_unicode",
            "Non-ASCII key and value: lengths count UTF-8 bytes, not characters.",
            "bob",
            42,
            put("名前/ключ", "héllo wörld 🌍"),
        ),
        NamedTx::new("put_second", "A second put, submitted twice in block 2.", "bob", 1, put("user:2", "Jane Roe")),
        NamedTx::new(
            "delete_max_nonce",
            "A delete (tag 2, no value) at nonce u64::MAX.",
            "alice",
            u64::MAX,
            Op::Delete { key: "user:1".into() },
        ),
        NamedTx::new(
            "put_overwrite",
            "A put that overwrites a genesis key.",
            "carol",
            3,
            put("greeting", "hello, world"),
        ),
    ]
}

fn find<'a>(txs: &'a [NamedTx], name: &str) -> &'a Transaction {
    &txs.iter().find(|t| t.name == name).expect("the vectors name only transactions they define").tx
}

/// One block of the vectors' chain, above genesis.
struct BlockPlan {
    view: u64,
    proposer: usize,
    timestamp_ms: u64,
    signers: &'static [usize],
    txs: &'static [&'static str],
}

/// Blocks 1–3. Block 2 repeats `put_basic` (committed in block 1) and carries `put_second` twice,
/// so it shows both kinds of duplicate; its view is 1, so its primary is validator 1. The
/// certificates use different signer subsets, in different orders, because order is not fixed.
const BLOCK_PLANS: [BlockPlan; 3] = [
    BlockPlan {
        view: 0,
        proposer: 0,
        timestamp_ms: GENESIS_TIME_MS + 1_000,
        signers: &[0, 1, 2],
        txs: &["put_basic", "put_empty_value", "put_unicode"],
    },
    BlockPlan {
        view: 1,
        proposer: 1,
        timestamp_ms: GENESIS_TIME_MS + 2_500,
        signers: &[3, 1, 2],
        txs: &["put_basic", "put_second", "put_second"],
    },
    BlockPlan {
        view: 1,
        proposer: 1,
        timestamp_ms: GENESIS_TIME_MS + 4_000,
        signers: &[0, 2, 3],
        txs: &["delete_max_nonce", "put_overwrite"],
    },
];

fn verified(tx: &Transaction) -> VerifiedTx {
    TxRules::new(CHAIN_ID).verify(tx.clone()).expect("every transaction in the vectors' chain is valid")
}

/// A PBFT certificate over `digest` signed by `signers`, each over the COMMIT bytes of `chain_id`.
fn pbft_certificate(chain_id: &str, view: u64, height: u64, digest: Hash, signers: &[Keypair]) -> Certificate {
    Certificate::pbft_signed(chain_id, view, height, digest, signers)
}

/// Builds a block on `prev` from verified transactions, marking as committed the ids in `committed`.
fn build_block(prev: &Block, plan: &BlockPlan, txs: &[VerifiedTx], committed: &HashSet<Hash>) -> (Block, Vec<u8>) {
    let validators = validator_keys();
    let header = BatchHeader::for_txs(prev.height() + 1, plan.timestamp_ms, validators[plan.proposer].public(), txs);
    let signers: Vec<Keypair> = plan.signers.iter().map(|&i| validators[i].clone()).collect();
    let cert = pbft_certificate(CHAIN_ID, plan.view, header.height, header.digest(CHAIN_ID), &signers);
    let flags: Vec<bool> = txs.iter().map(|t| committed.contains(&t.id())).collect();
    let (block, exec) = Block::build(CHAIN_ID, prev, header, txs, &flags, Some(cert));
    (block, encode_writes(&exec.writes))
}

fn block_entry(block: &Block, writes: &[u8], commit: Option<(u64, Vec<u8>)>) -> Value {
    let mut v = json!({
        "height": block.height(),
        "writes": hex::encode(writes),
        "writes_hash": sha256(writes),
        "tx_root": block.header.tx_root,
        "batch_digest": block.batch_digest,
        "state_hash": block.state_hash,
        "block_hash": block.hash,
        "block": BlockJson::from(block),
    });
    if let Some((view, bytes)) = commit {
        v["commit_view"] = json!(view);
        v["commit_signing_bytes"] = json!(hex::encode(bytes));
    }
    v
}

fn tx_error(name: &str, about: &str, tx: &Transaction, error: ChainError) -> Value {
    json!({ "name": name, "about": about, "tx": tx, "error": error.code(), "reason": error.to_string() })
}

fn block_error(name: &str, about: &str, block: &Block, error: ChainError) -> Value {
    json!({
        "name": name,
        "about": about,
        "parent_height": block.height() - 1,
        "block": BlockJson::from(block),
        "error": error.code(),
        "reason": error.to_string(),
    })
}

/// Adds the group order L to the S half of a signature: the same scalar mod L, in a non-canonical
/// encoding that strict verification must reject.
fn non_canonical_s(sig: &Signature) -> Signature {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = *sig;
    let mut carry = 0u16;
    for (byte, l) in out.0[32..].iter_mut().zip(L) {
        let s = u16::from(*byte) + u16::from(l) + carry;
        *byte = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes because S < L < 2^253");
    out
}

fn negative_txs(txs: &[NamedTx]) -> Vec<Value> {
    let basic = find(txs, "put_basic");
    let mut out = Vec::new();

    let mut t = basic.clone();
    t.nonce = 8;
    let err = ChainError::BadSignature { tx_id: t.tx_id(), reason: SigError::Invalid };
    out.push(tx_error("bad_signature", "put_basic with its nonce changed from 7 to 8 after signing.", &t, err));

    let t = Transaction::sign(OTHER_CHAIN_ID, &client_key("alice"), 7, put("user:1", "John Doe"));
    let err = ChainError::WrongChainId { expected: CHAIN_ID.into(), got: OTHER_CHAIN_ID.into() };
    out.push(tx_error("wrong_chain_id", "A correctly signed transaction for another chain.", &t, err));

    let mut t = basic.clone();
    t.sender = client_key("bob").public();
    let err = ChainError::BadSignature { tx_id: t.tx_id(), reason: SigError::Invalid };
    out.push(tx_error("other_sender", "put_basic, signed by alice, claiming bob as its sender.", &t, err));

    let mut t = basic.clone();
    t.signature = non_canonical_s(&t.signature);
    let err = ChainError::BadSignature { tx_id: t.tx_id(), reason: SigError::Invalid };
    out.push(tx_error(
        "non_canonical_s",
        "put_basic with L added to S: non-strict verifiers that reduce S mod L accept it; protocol §1 requires rejecting it.",
        &t,
        err,
    ));

    // The identity point as the key, the identity point as R and S = 0 satisfy the cofactorless
    // equation [S]B = R + [k]A for every message: only the small-order check rejects it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let t = Transaction { sender: PublicKey(identity), signature: Signature(sig), ..basic.clone() };
    let err = ChainError::BadSignature { tx_id: t.tx_id(), reason: SigError::WeakKey };
    out.push(tx_error(
        "small_order_sender",
        "Sender and R are the identity point and S = 0, which satisfies the verification equation for any message; protocol §1 requires rejecting small-order keys.",
        &t,
        err,
    ));
    out
}

/// Builds the whole vectors document.
pub fn generate() -> Value {
    let validators = validator_keys();
    let txs = named_txs();

    let keys = json!({
        "clients": CLIENT_NAMES.iter().map(|n| {
            let k = client_key(n);
            json!({ "name": n, "seed": hex::encode(k.seed()), "public_key": k.public() })
        }).collect::<Vec<_>>(),
        "validators": validators.iter().enumerate().map(|(i, k)| {
            json!({ "name": format!("node{i}"), "seed": hex::encode(k.seed()), "public_key": k.public() })
        }).collect::<Vec<_>>(),
    });

    let transactions: Vec<Value> = txs
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "about": t.about,
                "signer": t.signer,
                "tx": t.tx,
                "signing_bytes": hex::encode(t.tx.signing_bytes()),
                "tx_id": t.tx.tx_id(),
                "signature": t.tx.signature,
            })
        })
        .collect();

    // The leaves are the ids of carol's puts "item:<i>" = "<i>" at nonce i: real tx ids, but any
    // 32-byte strings would do, since the tree only sees ids.
    let leaf_ids: Vec<Hash> = (0..8u64)
        .map(|i| {
            Transaction::sign(CHAIN_ID, &client_key("carol"), i, put(&format!("item:{i}"), &i.to_string())).tx_id()
        })
        .collect();
    let tx_roots: Vec<Value> = [0usize, 1, 2, 3, 5, 8]
        .iter()
        .map(|&n| {
            let ids = &leaf_ids[..n];
            json!({
                "leaves": n,
                "tx_ids": ids,
                "leaf_hashes": ids.iter().map(leaf_hash).collect::<Vec<_>>(),
                "root": tx_root(ids),
            })
        })
        .collect();

    let state = genesis_state();
    let genesis_json = json!({
        "chain_id": CHAIN_ID,
        "genesis_time_ms": GENESIS_TIME_MS,
        "consensus": { "kind": "pbft" },
        "validators": validators.iter().enumerate().map(|(i, k)| json!({
            "name": format!("node{i}"),
            "public_key": k.public(),
            "p2p_addr": format!("/ip4/127.0.0.1/tcp/{}", 7000 + i),
            "api_addr": format!("http://127.0.0.1:{}", 8080 + i),
        })).collect::<Vec<_>>(),
        "clients": "any",
        "state": state,
    });

    let (genesis, writes0) = Block::genesis(CHAIN_ID, GENESIS_TIME_MS, &state);
    let mut blocks = vec![block_entry(&genesis, &encode_writes(&writes0), None)];
    let mut committed: HashSet<Hash> = HashSet::new();
    let mut chain = vec![genesis];
    for plan in &BLOCK_PLANS {
        let vtxs: Vec<VerifiedTx> = plan.txs.iter().map(|n| verified(find(&txs, n))).collect();
        let prev = chain.last().expect("the chain starts at genesis");
        let (block, writes) = build_block(prev, plan, &vtxs, &committed);
        for (id, r) in block.tx_ids.iter().zip(&block.results) {
            if *r == TxResult::Applied {
                committed.insert(*id);
            }
        }
        let commit = pbft_commit_bytes(CHAIN_ID, plan.view, block.height(), &block.batch_digest);
        blocks.push(block_entry(&block, &writes, Some((plan.view, commit))));
        chain.push(block);
    }

    json!({
        "about": "Ordo test vectors for protocol §1–§6 (v1). Every hash, key and signature is lowercase hex; byte strings are hex. See docs/test-vectors.md.",
        "regenerate": REGENERATE_COMMAND,
        "chain_id": CHAIN_ID,
        "keys": keys,
        "transactions": transactions,
        "tx_roots": tx_roots,
        "chain": { "genesis": genesis_json, "blocks": blocks },
        "negative": {
            "transactions": negative_txs(&txs),
            "blocks": negative_blocks(&chain, &txs),
        },
    })
}

/// Blocks a verifier must reject, each a variant of block 1 or 2 checked on top of its real parent.
fn negative_blocks(chain: &[Block], txs: &[NamedTx]) -> Vec<Value> {
    let validators = validator_keys();
    let b1 = &chain[1];
    let mut out = Vec::new();

    let mut b = b1.clone();
    b.certificate = Some(pbft_certificate(CHAIN_ID, 0, 1, b1.batch_digest, &validators[..2]));
    out.push(block_error(
        "certificate_too_few_signatures",
        "Block 1 with a certificate of 2 signatures; n = 4 needs 2f+1 = 3.",
        &b,
        ChainError::CertTooFewSignatures { got: 2, need: 3 },
    ));

    let mallory = client_key("mallory");
    let mut b = b1.clone();
    let signers = [validators[0].clone(), validators[1].clone(), mallory.clone()];
    b.certificate = Some(pbft_certificate(CHAIN_ID, 0, 1, b1.batch_digest, &signers));
    out.push(block_error(
        "certificate_outsider",
        "Block 1 with a certificate whose third signature, valid in itself, is by mallory, who is no validator.",
        &b,
        ChainError::CertUnknownValidator { validator: mallory.public() },
    ));

    let mut b = b1.clone();
    b.certificate = Some(pbft_certificate(OTHER_CHAIN_ID, 0, 1, b1.batch_digest, &validators[..3]));
    out.push(block_error(
        "certificate_other_chain",
        "Block 1 with COMMIT signatures over chain_id \"ordo-devnet\" instead of \"ordo-testnet\".",
        &b,
        ChainError::CertBadSignature { validator: validators[0].public() },
    ));

    let mut b = b1.clone();
    let leader = &validators[0];
    b.certificate = Some(Certificate::Raft(crate::cert::RaftCertificate {
        term: 1,
        height: 1,
        batch_digest: b1.batch_digest,
        leader: leader.public(),
        signature: leader.sign(&crate::cert::raft_block_bytes(CHAIN_ID, 1, 1, &b1.batch_digest)),
    }));
    out.push(block_error(
        "certificate_of_the_other_kind",
        "Block 1 of this PBFT chain with a Raft certificate: one validator's valid signature, which a PBFT chain must not accept.",
        &b,
        ChainError::CertKindMismatch { expected: "pbft", got: "raft" },
    ));

    // A block whose transaction is validly signed but for another chain: the certificate only
    // proves ordering, so a verifier must still apply the transaction rules itself.
    let foreign = Transaction::sign(OTHER_CHAIN_ID, &client_key("alice"), 1, put("foreign", "tx"));
    let foreign_v = TxRules::new(OTHER_CHAIN_ID).verify(foreign).expect("valid on its own chain");
    let header = BatchHeader::for_txs(1, b1.header.timestamp_ms, b1.header.proposer, std::slice::from_ref(&foreign_v));
    let cert = pbft_certificate(CHAIN_ID, 0, 1, header.digest(CHAIN_ID), &validators[..3]);
    let (b, _) = Block::build(CHAIN_ID, &chain[0], header, &[foreign_v], &[false], Some(cert));
    out.push(block_error(
        "transaction_of_another_chain",
        "Block 1 replaced by a certified block holding a transaction signed for chain \"ordo-devnet\".",
        &b,
        ChainError::WrongChainId { expected: CHAIN_ID.into(), got: OTHER_CHAIN_ID.into() },
    ));

    // A node that forgot replay protection: block 2 executed as if put_basic had never been
    // committed. Its hashes and certificate are all consistent; only its results are wrong.
    let plan = &BLOCK_PLANS[1];
    let vtxs: Vec<VerifiedTx> = plan.txs.iter().map(|n| verified(find(txs, n))).collect();
    let (b, _) = build_block(b1, plan, &vtxs, &HashSet::new());
    let expected = vec![TxResult::Duplicate, TxResult::Applied, TxResult::Duplicate];
    let got = b.results.clone();
    assert_ne!(expected, got, "the replayed block differs from the real block 2");
    out.push(block_error(
        "replayed_transaction_applied",
        "Block 2 executed without replay protection: put_basic, committed in block 1, is marked applied and its write is in state_hash.",
        &b,
        ChainError::BlockMismatch { height: 2, what: "results", expected: format!("{expected:?}"), got: format!("{got:?}") },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_is_deterministic() {
        // Two runs must agree byte for byte: the published file depends on it.
        assert_eq!(generate().to_string(), generate().to_string());
    }

    #[test]
    fn the_chain_shows_both_kinds_of_duplicate_and_a_delete() {
        let v = generate();
        let b2 = &v["chain"]["blocks"][2]["block"]["txs"];
        let results: Vec<&str> = (0..3).map(|i| b2[i]["result"].as_str().unwrap()).collect();
        assert_eq!(results, ["duplicate", "applied", "duplicate"]);
        assert_eq!(v["chain"]["blocks"][3]["block"]["txs"][0]["op"]["type"], "delete");
    }
}
