//! Blocks (protocol §4): the batch digest that consensus votes on, the block hash that chains them,
//! the JSON form served by the API, and the re-derivation that checks a block someone else made.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::cert::{CertKind, Certificate};
use crate::codec::{Reader, Writer};
use crate::committee::Committee;
use crate::crypto::{sha256, sha256_parts, Hash, PublicKey, Signature};
use crate::error::{ChainError, Result};
use crate::merkle::tx_root;
use crate::state::{execute, genesis_writes, state_hash, Executed};
use crate::tx::{Op, Transaction, TxResult, TxRules, VerifiedTx};

pub const BATCH_TAG: &str = "ordo/batch/v1";
pub const BLOCK_TAG: &str = "ordo/block/v1";

/// `H("ordo/batch/v1" || str(chain_id) || u64 height || u64 timestamp_ms || proposer || tx_root || u32 tx_count)`.
pub fn batch_digest(
    chain_id: &str,
    height: u64,
    timestamp_ms: u64,
    proposer: &PublicKey,
    tx_root: &Hash,
    tx_count: u32,
) -> Hash {
    let mut w = Writer::with_capacity(160);
    w.tag(BATCH_TAG).str16(chain_id).u64(height).u64(timestamp_ms).key(proposer).hash(tx_root).u32(tx_count);
    sha256(&w.buf)
}

/// `H("ordo/block/v1" || prev_hash || batch_digest || state_hash)`.
pub fn block_hash(prev_hash: &Hash, batch_digest: &Hash, state_hash: &Hash) -> Hash {
    sha256_parts(&[BLOCK_TAG.as_bytes(), &prev_hash.0, &batch_digest.0, &state_hash.0])
}

/// The header of a batch: everything `batch_digest` covers. Consensus orders batches by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchHeader {
    pub height: u64,
    pub timestamp_ms: u64,
    pub proposer: PublicKey,
    pub tx_root: Hash,
    pub tx_count: u32,
}

impl BatchHeader {
    /// The header's fields in binary form (`u64 height || u64 timestamp_ms || proposer(32) ||
    /// tx_root(32) || u32 tx_count`), as the store records and every consensus message carry it.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.height).u64(self.timestamp_ms).key(&self.proposer).hash(&self.tx_root).u32(self.tx_count);
    }

    /// Reads what [`BatchHeader::encode`] wrote.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(BatchHeader {
            height: r.u64()?,
            timestamp_ms: r.u64()?,
            proposer: r.key()?,
            tx_root: r.hash()?,
            tx_count: r.u32()?,
        })
    }

    /// The header of a batch of verified transactions, computing its Merkle root once.
    pub fn for_txs(height: u64, timestamp_ms: u64, proposer: PublicKey, txs: &[VerifiedTx]) -> Self {
        let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
        BatchHeader {
            height,
            timestamp_ms,
            proposer,
            tx_root: tx_root(&ids),
            tx_count: u32::try_from(txs.len()).expect("a batch holds fewer than 2^32 transactions"),
        }
    }

    pub fn digest(&self, chain_id: &str) -> Hash {
        batch_digest(chain_id, self.height, self.timestamp_ms, &self.proposer, &self.tx_root, self.tx_count)
    }
}

/// A committed block with its transactions, their results and its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: BatchHeader,
    pub prev_hash: Hash,
    pub batch_digest: Hash,
    pub state_hash: Hash,
    pub hash: Hash,
    pub txs: Vec<Transaction>,
    pub tx_ids: Vec<Hash>,
    pub results: Vec<TxResult>,
    /// `None` only for the genesis block, which genesis.json itself proves.
    pub certificate: Option<Certificate>,
}

impl Block {
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The genesis block (protocol §2) and the state writes that seed the state.
    pub fn genesis(chain_id: &str, genesis_time_ms: u64, state: &BTreeMap<String, String>) -> (Block, Vec<Op>) {
        let header = BatchHeader {
            height: 0,
            timestamp_ms: genesis_time_ms,
            proposer: PublicKey::ZERO,
            tx_root: tx_root(&[]),
            tx_count: 0,
        };
        let writes = genesis_writes(state);
        let digest = header.digest(chain_id);
        let sh = state_hash(&Hash::ZERO, &writes);
        let block = Block {
            header,
            prev_hash: Hash::ZERO,
            batch_digest: digest,
            state_hash: sh,
            hash: block_hash(&Hash::ZERO, &digest, &sh),
            txs: Vec::new(),
            tx_ids: Vec::new(),
            results: Vec::new(),
            certificate: None,
        };
        (block, writes)
    }

    /// Executes an ordered batch on top of `prev` and builds the block. `committed[i]` says whether
    /// `txs[i]`'s id was committed in an earlier block (the store answers this in one batched read).
    pub fn build(
        chain_id: &str,
        prev: &Block,
        header: BatchHeader,
        txs: &[VerifiedTx],
        committed: &[bool],
        certificate: Option<Certificate>,
    ) -> (Block, Executed) {
        assert_eq!(header.height, prev.height() + 1, "blocks are built on their parent");
        assert_eq!(header.tx_count as usize, txs.len(), "header counts the batch's transactions");
        let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
        let plain: Vec<Transaction> = txs.iter().map(|t| t.tx().clone()).collect();
        let exec = execute(&prev.state_hash, &ids, &plain, committed);
        let digest = header.digest(chain_id);
        let block = Block {
            header,
            prev_hash: prev.hash,
            batch_digest: digest,
            state_hash: exec.state_hash,
            hash: block_hash(&prev.hash, &digest, &exec.state_hash),
            txs: plain,
            tx_ids: ids,
            results: exec.results.clone(),
            certificate,
        };
        (block, exec)
    }
}

/// Re-derives and checks a block made elsewhere: every transaction against the chain's rules
/// (chain id, limits, admitted senders, signatures in one batch), every `tx_id`, `tx_root`,
/// `batch_digest`, the execution results and `state_hash`, `block_hash`, the link to `prev`, and
/// the certificate against `committee` and the chain's certificate `kind`. A certificate proves
/// ordering only; a verifier does not take the committee's word for the transactions.
///
/// `committed[i]` says whether the block's i-th transaction id was committed before this block.
pub fn check_block(
    rules: &TxRules,
    committee: &Committee,
    kind: CertKind,
    prev: &Block,
    block: &Block,
    committed: &[bool],
) -> Result<Executed> {
    let chain_id = rules.chain_id.as_str();
    let height = block.height();
    let mismatch =
        |what: &'static str, expected: String, got: String| ChainError::BlockMismatch { height, what, expected, got };
    if height != prev.height() + 1 {
        return Err(mismatch("height", (prev.height() + 1).to_string(), height.to_string()));
    }
    if block.prev_hash != prev.hash {
        return Err(mismatch("prev_hash", prev.hash.to_hex(), block.prev_hash.to_hex()));
    }
    if block.header.tx_count as usize != block.txs.len()
        || block.results.len() != block.txs.len()
        || block.tx_ids.len() != block.txs.len()
    {
        return Err(mismatch("tx_count", block.txs.len().to_string(), block.header.tx_count.to_string()));
    }
    let mut ids = Vec::with_capacity(block.txs.len());
    for r in rules.verify_many(block.txs.clone()) {
        ids.push(r?.id());
    }
    if ids != block.tx_ids {
        let i = ids.iter().zip(&block.tx_ids).position(|(a, b)| a != b).unwrap_or(0);
        return Err(mismatch("tx_id", ids[i].to_hex(), block.tx_ids[i].to_hex()));
    }
    let root = tx_root(&ids);
    if root != block.header.tx_root {
        return Err(mismatch("tx_root", root.to_hex(), block.header.tx_root.to_hex()));
    }
    let digest = block.header.digest(chain_id);
    if digest != block.batch_digest {
        return Err(mismatch("batch_digest", digest.to_hex(), block.batch_digest.to_hex()));
    }
    let exec = execute(&prev.state_hash, &ids, &block.txs, committed);
    if exec.results != block.results {
        return Err(mismatch("results", format!("{:?}", exec.results), format!("{:?}", block.results)));
    }
    if exec.state_hash != block.state_hash {
        return Err(mismatch("state_hash", exec.state_hash.to_hex(), block.state_hash.to_hex()));
    }
    let hash = block_hash(&block.prev_hash, &digest, &exec.state_hash);
    if hash != block.hash {
        return Err(mismatch("block_hash", hash.to_hex(), block.hash.to_hex()));
    }
    match &block.certificate {
        None => return Err(ChainError::CertMissing { height }),
        Some(c) => c.verify(chain_id, committee, kind, height, &digest)?,
    }
    Ok(exec)
}

/// Checks a whole chain block by block from genesis, remembering every committed `tx_id`.
pub struct ChainVerifier {
    rules: TxRules,
    committee: Committee,
    kind: CertKind,
    tip: Block,
    committed: HashSet<Hash>,
}

impl ChainVerifier {
    /// Starts from the expected genesis block; `genesis` is compared with the expected one.
    pub fn new(
        rules: TxRules,
        committee: Committee,
        kind: CertKind,
        expected_genesis: Block,
        genesis: &Block,
    ) -> Result<Self> {
        if genesis.hash != expected_genesis.hash {
            return Err(ChainError::BlockMismatch {
                height: 0,
                what: "genesis block_hash",
                expected: expected_genesis.hash.to_hex(),
                got: genesis.hash.to_hex(),
            });
        }
        Ok(Self { rules, committee, kind, tip: expected_genesis, committed: HashSet::new() })
    }

    /// Checks the next block and makes it the tip.
    pub fn push(&mut self, block: Block) -> Result<()> {
        let committed: Vec<bool> = block.tx_ids.iter().map(|id| self.committed.contains(id)).collect();
        check_block(&self.rules, &self.committee, self.kind, &self.tip, &block, &committed)?;
        for (id, r) in block.tx_ids.iter().zip(&block.results) {
            if *r == TxResult::Applied {
                self.committed.insert(*id);
            }
        }
        self.tip = block;
        Ok(())
    }

    pub fn tip(&self) -> &Block {
        &self.tip
    }
}

/// A transaction as it appears inside a served block: the transaction plus its id and result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockTxJson {
    pub chain_id: String,
    pub sender: PublicKey,
    pub nonce: u64,
    pub op: Op,
    pub signature: Signature,
    pub tx_id: Hash,
    pub result: TxResult,
}

/// The JSON form of a block (protocol §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockJson {
    pub height: u64,
    pub hash: Hash,
    pub prev_hash: Hash,
    pub batch_digest: Hash,
    pub state_hash: Hash,
    pub timestamp_ms: u64,
    pub proposer: PublicKey,
    pub tx_root: Hash,
    pub tx_count: u32,
    pub txs: Vec<BlockTxJson>,
    pub certificate: Option<Certificate>,
}

impl From<&Block> for BlockJson {
    fn from(b: &Block) -> Self {
        BlockJson {
            height: b.header.height,
            hash: b.hash,
            prev_hash: b.prev_hash,
            batch_digest: b.batch_digest,
            state_hash: b.state_hash,
            timestamp_ms: b.header.timestamp_ms,
            proposer: b.header.proposer,
            tx_root: b.header.tx_root,
            tx_count: b.header.tx_count,
            txs: b
                .txs
                .iter()
                .zip(&b.tx_ids)
                .zip(&b.results)
                .map(|((t, id), r)| BlockTxJson {
                    chain_id: t.chain_id.clone(),
                    sender: t.sender,
                    nonce: t.nonce,
                    op: t.op.clone(),
                    signature: t.signature,
                    tx_id: *id,
                    result: *r,
                })
                .collect(),
            certificate: b.certificate.clone(),
        }
    }
}

impl From<BlockJson> for Block {
    /// Takes the served form at its word; `check_block` is what checks it.
    fn from(j: BlockJson) -> Self {
        let (mut txs, mut ids, mut results) = (Vec::new(), Vec::new(), Vec::new());
        for t in j.txs {
            txs.push(Transaction {
                chain_id: t.chain_id,
                sender: t.sender,
                nonce: t.nonce,
                op: t.op,
                signature: t.signature,
            });
            ids.push(t.tx_id);
            results.push(t.result);
        }
        Block {
            header: BatchHeader {
                height: j.height,
                timestamp_ms: j.timestamp_ms,
                proposer: j.proposer,
                tx_root: j.tx_root,
                tx_count: j.tx_count,
            },
            prev_hash: j.prev_hash,
            batch_digest: j.batch_digest,
            state_hash: j.state_hash,
            hash: j.hash,
            txs,
            tx_ids: ids,
            results,
            certificate: j.certificate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    const CHAIN: &str = "ordo-testnet";

    fn validators() -> Vec<Keypair> {
        (0..4u8).map(|i| Keypair::from_seed([100 + i; 32])).collect()
    }

    fn certify(keys: &[Keypair], height: u64, digest: Hash) -> Certificate {
        Certificate::pbft_signed(CHAIN, 0, height, digest, &keys[..3])
    }

    fn next(prev: &Block, txs: Vec<VerifiedTx>, committed: &[bool]) -> Block {
        let v = validators();
        let header = BatchHeader::for_txs(prev.height() + 1, 1000 + prev.height(), v[0].public(), &txs);
        let cert = certify(&v, header.height, header.digest(CHAIN));
        Block::build(CHAIN, prev, header, &txs, committed, Some(cert)).0
    }

    fn tx(nonce: u64, key: &str) -> VerifiedTx {
        let t = Transaction::sign(
            CHAIN,
            &Keypair::from_seed([1; 32]),
            nonce,
            Op::Put { key: key.into(), value: "v".into() },
        );
        TxRules::new(CHAIN).verify(t).unwrap()
    }

    #[test]
    fn genesis_shape() {
        let state: BTreeMap<String, String> = [("greeting".to_string(), "hello".to_string())].into();
        let (g, writes) = Block::genesis(CHAIN, 1764288000000, &state);
        assert_eq!(g.height(), 0);
        assert_eq!(g.prev_hash, Hash::ZERO);
        assert_eq!(g.header.proposer, PublicKey::ZERO);
        assert_eq!(g.header.tx_root, sha256(b""));
        assert_eq!(writes.len(), 1);
        assert_eq!(g.hash, block_hash(&Hash::ZERO, &g.batch_digest, &g.state_hash));
    }

    #[test]
    fn chain_verifies_and_tampering_is_caught() {
        let (g, _) = Block::genesis(CHAIN, 5, &BTreeMap::new());
        let b1 = next(&g, vec![tx(1, "a"), tx(2, "b")], &[false, false]);
        let b2 = next(&b1, vec![tx(1, "a"), tx(3, "c"), tx(3, "c")], &[true, false, false]);
        assert_eq!(b2.results, vec![TxResult::Duplicate, TxResult::Applied, TxResult::Duplicate]);
        let committee = Committee::new(validators().iter().map(|k| k.public()).collect());
        let mut v = ChainVerifier::new(TxRules::new(CHAIN), committee.clone(), CertKind::Pbft, g.clone(), &g).unwrap();
        v.push(b1.clone()).unwrap();
        v.push(b2.clone()).unwrap();

        let mut v = ChainVerifier::new(TxRules::new(CHAIN), committee.clone(), CertKind::Pbft, g.clone(), &g).unwrap();
        v.push(b1.clone()).unwrap();
        let mut bad = b2.clone();
        bad.results[0] = TxResult::Applied;
        assert!(matches!(v.push(bad), Err(ChainError::BlockMismatch { what: "results", .. })));
        let mut bad = b2.clone();
        bad.state_hash = Hash([1; 32]);
        assert!(matches!(v.push(bad), Err(ChainError::BlockMismatch { what: "state_hash", .. })));
        let mut bad = b2.clone();
        bad.header.timestamp_ms += 1;
        assert!(matches!(v.push(bad), Err(ChainError::BlockMismatch { what: "batch_digest", .. })));
        let mut bad = b2.clone();
        bad.certificate = None;
        assert!(matches!(v.push(bad), Err(ChainError::CertMissing { .. })));
        let mut bad = b2.clone();
        bad.txs[1].nonce = 77;
        assert!(matches!(v.push(bad), Err(ChainError::BadSignature { .. })));
        // A validly signed transaction of another chain does not belong in this one.
        let foreign = Transaction::sign("ordo-devnet", &Keypair::from_seed([1; 32]), 9, Op::Delete { key: "a".into() });
        let mut bad = b2.clone();
        bad.txs[1] = foreign;
        assert!(matches!(v.push(bad), Err(ChainError::WrongChainId { .. })));
    }

    #[test]
    fn json_roundtrip() {
        let (g, _) = Block::genesis(CHAIN, 5, &BTreeMap::new());
        let b1 = next(&g, vec![tx(1, "a")], &[false]);
        let j = serde_json::to_value(BlockJson::from(&b1)).unwrap();
        for f in [
            "height",
            "hash",
            "prev_hash",
            "batch_digest",
            "state_hash",
            "timestamp_ms",
            "proposer",
            "tx_root",
            "tx_count",
            "txs",
            "certificate",
        ] {
            assert!(j.get(f).is_some(), "missing {f}");
        }
        assert_eq!(j["txs"][0]["result"], "applied");
        let back: BlockJson = serde_json::from_value(j).unwrap();
        assert_eq!(Block::from(back), b1);
    }
}
