//! Checks the published test vectors, `docs/test-vectors.json`.
//!
//! Two things must hold: the committed file is exactly what `vectors::generate` produces today (so
//! a change to any byte format cannot slip past without the file, and client authors, noticing),
//! and every value in the file re-derives through the public API of `ordo-chain`: keys from seeds,
//! signing bytes, `tx_id`s and signatures, `tx_root`s, the whole chain through a `ChainVerifier`,
//! and each negative case rejected with exactly the error it states.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use ordo_chain::block::BlockJson;
use ordo_chain::cert::{pbft_commit_bytes, CertKind};
use ordo_chain::crypto::{sha256, Hash, PublicKey, Signature};
use ordo_chain::merkle::{leaf_hash, tx_root};
use ordo_chain::state::{encode_writes, execute, genesis_writes};
use ordo_chain::vectors::{generate, REGENERATE_COMMAND};
use ordo_chain::{Block, ChainVerifier, Committee, Keypair, Transaction, TxResult, TxRules};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors.json")
}

fn load() -> Value {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; create it with `{REGENERATE_COMMAND}`", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The JSON pointer of the first place where `a` and `b` differ, for a useful failure message.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &format!("{path}/{k}")),
                _ => Some(format!("{path}/{k} (present on one side only)")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}/{i}")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: file has {a}, generate() has {b}")),
    }
}

#[test]
fn committed_file_equals_generate() {
    let file = load();
    let fresh = generate();
    if let Some(diff) = first_difference(&file, &fresh, "") {
        panic!(
            "docs/test-vectors.json is out of date with vectors::generate() (first difference at {diff}).\n\
             If the change to the byte formats is intended, regenerate the file from the workspace root with\n    \
             {REGENERATE_COMMAND}\nand tell client authors: the vectors are part of the external contract."
        );
    }
}

/// Reads a field, naming it on failure.
fn field<'a>(v: &'a Value, ptr: &str) -> Result<&'a Value, String> {
    v.pointer(ptr).ok_or_else(|| format!("missing field {ptr}"))
}

fn text<'a>(v: &'a Value, ptr: &str) -> Result<&'a str, String> {
    field(v, ptr)?.as_str().ok_or_else(|| format!("{ptr} is not a string"))
}

fn parse<T: DeserializeOwned>(v: &Value, ptr: &str) -> Result<T, String> {
    serde_json::from_value(field(v, ptr)?.clone()).map_err(|e| format!("{ptr}: {e}"))
}

fn items<'a>(v: &'a Value, ptr: &str) -> Result<&'a Vec<Value>, String> {
    field(v, ptr)?.as_array().ok_or_else(|| format!("{ptr} is not an array"))
}

/// Fails with both values and the field's name when a re-derived value differs from the file's.
fn same<T: PartialEq + std::fmt::Debug>(what: &str, file: T, derived: T) -> Result<(), String> {
    if file == derived {
        Ok(())
    } else {
        Err(format!("{what}: the file says {file:?}, re-derived {derived:?}"))
    }
}

/// Re-derives every value of the vectors through the public chain API.
fn check(v: &Value) -> Result<(), String> {
    let chain_id = text(v, "/chain_id")?;
    let rules = TxRules::new(chain_id);

    // Keys: every public key follows from its seed.
    let mut keys: BTreeMap<String, Keypair> = BTreeMap::new();
    for group in ["clients", "validators"] {
        for (i, k) in items(v, &format!("/keys/{group}"))?.iter().enumerate() {
            let seed: Hash = parse(k, "/seed")?;
            let kp = Keypair::from_seed(seed.0);
            same(&format!("/keys/{group}/{i}/public_key"), parse::<PublicKey>(k, "/public_key")?, kp.public())?;
            keys.insert(text(k, "/name")?.to_string(), kp);
        }
    }

    // Transactions: signing bytes, tx_id and signature, and the full verification of protocol §3.
    for (i, t) in items(v, "/transactions")?.iter().enumerate() {
        let at = format!("/transactions/{i}");
        let tx: Transaction = parse(t, "/tx")?;
        same(&format!("{at}/signing_bytes"), text(t, "/signing_bytes")?.to_string(), hex::encode(tx.signing_bytes()))?;
        same(&format!("{at}/tx_id"), parse::<Hash>(t, "/tx_id")?, tx.tx_id())?;
        same(&format!("{at}/signature"), parse::<Signature>(t, "/signature")?, tx.signature)?;
        let signer = keys.get(text(t, "/signer")?).ok_or_else(|| format!("{at}/signer names no key"))?;
        same(&format!("{at}/tx/sender"), tx.sender, signer.public())?;
        // Ed25519 is deterministic: signing again with the seed gives the very same signature.
        same(&format!("{at} re-signed"), tx.signature, signer.sign(&tx.signing_bytes()))?;
        let verified = rules.verify(tx.clone()).map_err(|e| format!("{at} does not verify: {e}"))?;
        same(&format!("{at} verified id"), verified.id(), tx.tx_id())?;
    }

    // Merkle roots.
    for (i, r) in items(v, "/tx_roots")?.iter().enumerate() {
        let at = format!("/tx_roots/{i}");
        let ids: Vec<Hash> = parse(r, "/tx_ids")?;
        same(&format!("{at}/leaves"), field(r, "/leaves")?.as_u64(), Some(ids.len() as u64))?;
        same(
            &format!("{at}/leaf_hashes"),
            parse::<Vec<Hash>>(r, "/leaf_hashes")?,
            ids.iter().map(leaf_hash).collect(),
        )?;
        same(&format!("{at}/root"), parse::<Hash>(r, "/root")?, tx_root(&ids))?;
    }

    // The chain: genesis from the genesis file, then every block through a ChainVerifier, with the
    // intermediate values (writes, commit bytes) re-derived beside it.
    let genesis_file = field(v, "/chain/genesis")?;
    same("/chain/genesis/chain_id", text(genesis_file, "/chain_id")?, chain_id)?;
    let genesis_time_ms = field(genesis_file, "/genesis_time_ms")?.as_u64().ok_or("genesis_time_ms is not a u64")?;
    let state: BTreeMap<String, String> = parse(genesis_file, "/state")?;
    let validators: Vec<PublicKey> =
        items(genesis_file, "/validators")?.iter().map(|val| parse(val, "/public_key")).collect::<Result<_, _>>()?;
    let committee = Committee::new(validators);
    let (genesis, writes0) = Block::genesis(chain_id, genesis_time_ms, &state);
    same("genesis writes", writes0.clone(), genesis_writes(&state))?;

    let entries = items(v, "/chain/blocks")?;
    let mut chain: Vec<Block> = Vec::new();
    let mut verifier: Option<ChainVerifier> = None;
    let mut committed: HashSet<Hash> = HashSet::new();
    for (h, e) in entries.iter().enumerate() {
        let at = format!("/chain/blocks/{h}");
        let block: Block = parse::<BlockJson>(e, "/block")?.into();
        same(&format!("{at}/height"), field(e, "/height")?.as_u64(), Some(h as u64))?;
        same(&format!("{at}/block/height"), block.height(), h as u64)?;
        let (writes, state_hash) = if h == 0 {
            same(&format!("{at}/block"), BlockJson::from(&block), BlockJson::from(&genesis))?;
            verifier = Some(
                ChainVerifier::new(rules.clone(), committee.clone(), CertKind::Pbft, genesis.clone(), &block)
                    .map_err(|e| format!("{at}: {e}"))?,
            );
            (encode_writes(&writes0), genesis.state_hash)
        } else {
            let prev = chain.last().expect("genesis is pushed first");
            let flags: Vec<bool> = block.tx_ids.iter().map(|id| committed.contains(id)).collect();
            let exec = execute(&prev.state_hash, &block.tx_ids, &block.txs, &flags);
            let commit = pbft_commit_bytes(
                chain_id,
                field(e, "/commit_view")?.as_u64().ok_or("commit_view is not a u64")?,
                block.height(),
                &block.batch_digest,
            );
            same(
                &format!("{at}/commit_signing_bytes"),
                text(e, "/commit_signing_bytes")?.to_string(),
                hex::encode(commit),
            )?;
            same(&format!("{at}/commit_view"), field(e, "/commit_view")?, field(e, "/block/certificate/view")?)?;
            let v = verifier.as_mut().expect("the genesis entry comes first");
            v.push(block.clone()).map_err(|e| format!("{at} is rejected: {e}"))?;
            (encode_writes(&exec.writes), exec.state_hash)
        };
        for (id, r) in block.tx_ids.iter().zip(&block.results) {
            if *r == TxResult::Applied {
                committed.insert(*id);
            }
        }
        same(&format!("{at}/writes"), text(e, "/writes")?.to_string(), hex::encode(&writes))?;
        same(&format!("{at}/writes_hash"), parse::<Hash>(e, "/writes_hash")?, sha256(&writes))?;
        same(&format!("{at}/state_hash"), parse::<Hash>(e, "/state_hash")?, state_hash)?;
        same(&format!("{at}/block/state_hash"), block.state_hash, state_hash)?;
        same(&format!("{at}/tx_root"), parse::<Hash>(e, "/tx_root")?, tx_root(&block.tx_ids))?;
        same(&format!("{at}/batch_digest"), parse::<Hash>(e, "/batch_digest")?, block.header.digest(chain_id))?;
        same(&format!("{at}/block_hash"), parse::<Hash>(e, "/block_hash")?, block.hash)?;
        chain.push(block);
    }

    // Negative transactions: each is rejected with exactly the stated error.
    for (i, n) in items(v, "/negative/transactions")?.iter().enumerate() {
        let at = format!("/negative/transactions/{i}");
        let tx: Transaction = parse(n, "/tx")?;
        let err = match rules.verify(tx) {
            Ok(_) => return Err(format!("{at} ({}) was accepted", text(n, "/name")?)),
            Err(e) => e,
        };
        same(&format!("{at}/error"), text(n, "/error")?, err.code())?;
        same(&format!("{at}/reason"), text(n, "/reason")?.to_string(), err.to_string())?;
    }

    // Negative blocks: each is rejected on top of its real parent with exactly the stated error.
    for (i, n) in items(v, "/negative/blocks")?.iter().enumerate() {
        let at = format!("/negative/blocks/{i}");
        let parent = field(n, "/parent_height")?.as_u64().ok_or("parent_height is not a u64")? as usize;
        if parent >= chain.len() {
            return Err(format!("{at}/parent_height {parent} is beyond the chain"));
        }
        let mut v = ChainVerifier::new(rules.clone(), committee.clone(), CertKind::Pbft, genesis.clone(), &chain[0])
            .map_err(|e| e.to_string())?;
        for b in &chain[1..=parent] {
            v.push(b.clone()).map_err(|e| format!("{at}: re-verifying the parent chain: {e}"))?;
        }
        let bad: Block = parse::<BlockJson>(n, "/block")?.into();
        let err = match v.push(bad) {
            Ok(()) => return Err(format!("{at} ({}) was accepted", text(n, "/name")?)),
            Err(e) => e,
        };
        same(&format!("{at}/error"), text(n, "/error")?, err.code())?;
        same(&format!("{at}/reason"), text(n, "/reason")?.to_string(), err.to_string())?;
    }
    Ok(())
}

#[test]
fn every_value_in_the_file_rederives() {
    check(&load()).unwrap_or_else(|e| panic!("docs/test-vectors.json: {e}"));
}

#[test]
fn the_file_covers_what_the_docs_promise() {
    let v = load();
    let roots: Vec<u64> = v["tx_roots"].as_array().unwrap().iter().map(|r| r["leaves"].as_u64().unwrap()).collect();
    assert_eq!(roots, [0, 1, 2, 3, 5, 8]);
    let nonces: Vec<u64> =
        v["transactions"].as_array().unwrap().iter().map(|t| t["tx"]["nonce"].as_u64().unwrap()).collect();
    assert!(nonces.contains(&0) && nonces.contains(&u64::MAX), "nonces 0 and u64::MAX: {nonces:?}");
    let blocks = v["chain"]["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 4, "genesis and blocks 1-3");
    let results: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b["block"]["txs"].as_array().unwrap())
        .map(|t| t["result"].as_str().unwrap())
        .collect();
    assert!(results.contains(&"duplicate"), "at least one duplicate");
    let ops: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b["block"]["txs"].as_array().unwrap())
        .map(|t| t["op"]["type"].as_str().unwrap())
        .collect();
    assert!(ops.contains(&"delete"), "at least one delete");
    let errors: Vec<&str> =
        v["negative"]["transactions"].as_array().unwrap().iter().map(|n| n["error"].as_str().unwrap()).collect();
    assert!(errors.contains(&"bad_signature") && errors.contains(&"wrong_chain_id"), "{errors:?}");
}

/// Changes the last hex digit of the string at `ptr`, keeping it valid hex of the same length.
fn flip_hex(v: &mut Value, ptr: &str) {
    let s = v.pointer_mut(ptr).unwrap_or_else(|| panic!("no {ptr}"));
    let mut t = s.as_str().unwrap_or_else(|| panic!("{ptr} is not a string")).to_string();
    let last = t.pop().expect("non-empty hex");
    t.push(if last == '0' { '1' } else { '0' });
    *s = Value::String(t);
}

#[test]
fn the_checker_catches_a_tampered_file() {
    // The check above is only worth something if it fails on a wrong value: tamper with one value
    // of each kind and require a failure that names it.
    let original = load();
    for ptr in [
        "/keys/clients/0/public_key",
        "/transactions/1/signing_bytes",
        "/transactions/2/tx_id",
        "/tx_roots/4/root",
        "/tx_roots/3/leaf_hashes/2",
        "/chain/blocks/0/writes",
        "/chain/blocks/2/state_hash",
        "/chain/blocks/2/writes_hash",
        "/chain/blocks/1/block/certificate/signatures/0/signature",
        "/chain/blocks/3/commit_signing_bytes",
        "/chain/blocks/3/block_hash",
    ] {
        let mut v = original.clone();
        flip_hex(&mut v, ptr);
        assert!(check(&v).is_err(), "changing {ptr} went unnoticed");
    }
    let mut v = original.clone();
    v["negative"]["transactions"][0]["error"] = "wrong_chain_id".into();
    assert!(check(&v).is_err(), "a wrong error code went unnoticed");
    let mut v = original;
    v["negative"]["blocks"][0]["block"]["certificate"] = v["chain"]["blocks"][1]["block"]["certificate"].clone();
    let e = check(&v).unwrap_err();
    assert!(e.contains("was accepted"), "a valid block listed as negative must be reported: {e}");
}
