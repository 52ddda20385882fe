//! The mempool: verified transactions waiting to be ordered, oldest first.
//!
//! It admits only [`VerifiedTx`], so nothing unchecked can ever reach a proposal. A transaction is
//! admitted once: its `tx_id` must be neither pending here nor committed in the chain (asked of
//! the [`Store`] in one batched read). Two named limits bound it, a count and a byte total, so it
//! never grows without bound. Lookups by id are one hash-map probe (the map holds the transaction
//! itself); admission and removal also touch the FIFO queue, O(log n) in the number pending.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::store::Store;
use crate::{ChainError, Hash, VerifiedTx};
use serde::{Deserialize, Serialize};

/// Whether each id is committed, asking the store (in one batched read) only for the ids not
/// `pending`: a pending id is never committed outside a commit under way (see
/// [`crate::Ledger::committed`]), so it reads `false` without a lookup.
pub(crate) fn committed_unless_pending<S: Store + ?Sized>(
    store: &S,
    ids: &[Hash],
    pending: &[bool],
) -> Result<Vec<bool>, ChainError> {
    let (ask, at): (Vec<Hash>, Vec<usize>) =
        ids.iter().zip(pending).enumerate().filter(|(_, (_, p))| !**p).map(|(i, (id, _))| (*id, i)).unzip();
    let answers = store.committed(&ask)?;
    assert_eq!(answers.len(), ask.len(), "the store answers once per id");
    let mut committed = vec![false; ids.len()];
    for (i, c) in at.into_iter().zip(answers) {
        committed[i] = c;
    }
    Ok(committed)
}

/// The mempool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// The most transactions pending at once.
    pub max_txs: usize,
    /// The most bytes pending at once, counted by [`VerifiedTx::wire_len`].
    pub max_bytes: usize,
}

impl Default for MempoolConfig {
    /// The same defaults as the node's `mempool_max_txs` and `mempool_max_bytes`.
    fn default() -> Self {
        Self { max_txs: crate::limits::MEMPOOL_MAX_TXS, max_bytes: crate::limits::MEMPOOL_MAX_BYTES }
    }
}

impl MempoolConfig {
    /// The limits a client's transaction is admitted within: three quarters of each, at least
    /// one transaction and one byte (see [`Origin`]).
    pub fn client_share(&self) -> MempoolConfig {
        MempoolConfig {
            max_txs: (self.max_txs - self.max_txs / 4).max(1),
            max_bytes: (self.max_bytes - self.max_bytes / 4).max(1),
        }
    }

    /// The limits a transaction from `origin` is admitted within.
    pub fn for_origin(&self, origin: Origin) -> MempoolConfig {
        match origin {
            Origin::Client => self.client_share(),
            Origin::Peer => *self,
        }
    }

    /// Checks every rule once at start-up: a zero limit would refuse every transaction.
    pub fn validate(&self) -> Result<(), ChainError> {
        if self.max_txs == 0 {
            return Err(ChainError::ZeroMempoolLimit { field: "max_txs" });
        }
        if self.max_bytes == 0 {
            return Err(ChainError::ZeroMempoolLimit { field: "max_bytes" });
        }
        Ok(())
    }
}

/// Who offers a transaction, which sets how much of the mempool it may fill.
///
/// Clients may fill it to [`MempoolConfig::client_share`] (three quarters); the last quarter
/// only takes transactions another validator admitted first (gossip, re-gossip, a
/// PRE-PREPARE). Under overload every validator's API stops admitting at the same mark, so the
/// gossip of what the others acknowledged meanwhile still finds room: each validator keeps
/// holding every acknowledged transaction, and the primary has what its backups wait for. With
/// one limit for both, a validator full of its own clients' transactions dropped the others'
/// gossip, each held a different part of the backlog, and a primary that had proposed all of
/// its own was suspected for the rest (docs/performance.md, thirteenth round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Submitted to this node's API.
    Client,
    /// Received from another validator.
    Peer,
}

/// What happened to one transaction offered to the mempool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It is now pending; the caller should gossip it.
    Admitted,
    /// A transaction with the same `tx_id` is already pending; nothing changed.
    AlreadyPending,
    /// A transaction with the same `tx_id` is already committed; nothing changed.
    AlreadyCommitted,
    /// Admitting it would break the count or byte limit (for its [`Origin`]); nothing changed.
    Full,
}

/// How full the mempool is, as served in `GET /v1/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MempoolStats {
    pub txs: usize,
    pub bytes: usize,
}

/// A thread-safe FIFO of verified transactions, deduplicated by `tx_id`.
pub struct Mempool {
    config: MempoolConfig,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Pending transactions by arrival number: iteration order is FIFO order.
    queue: BTreeMap<u64, VerifiedTx>,
    /// Each pending `tx_id`, its arrival number and (a second handle to) the transaction: a
    /// lookup by id is one probe, without a walk down the queue.
    index: HashMap<Hash, (u64, VerifiedTx)>,
    bytes: usize,
    next_seq: u64,
}

impl Inner {
    fn remove(&mut self, id: &Hash) -> bool {
        match self.index.remove(id) {
            Some((seq, tx)) => {
                self.queue.remove(&seq).expect("every indexed transaction is queued");
                self.bytes -= tx.wire_len();
                true
            }
            None => false,
        }
    }

    fn assert_consistent(&self) {
        // Kept in release builds: a drift here would silently break the limits.
        assert_eq!(self.queue.len(), self.index.len(), "mempool queue and index disagree");
    }
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Self { config, inner: Mutex::new(Inner::default()) }
    }

    pub fn config(&self) -> MempoolConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every method finishes its changes before it can panic, so a poisoned lock still guards
        // consistent data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offers `txs`, in order, and returns one outcome per transaction. A transaction whose
    /// `tx_id` is pending (including one earlier in `txs`) or committed in `store` changes
    /// nothing; so does one that would break a limit of its `origin`, while later, smaller ones
    /// may still fit.
    ///
    /// Only the ids not pending here are asked of the store (one batched read): a pending
    /// transaction is a duplicate whatever the store says. The store is asked while the mempool
    /// is locked, so a commit that lands in between is seen either here (`AlreadyCommitted`) or
    /// by the `remove_committed` that follows it.
    pub fn admit<S: Store + ?Sized>(
        &self,
        store: &S,
        txs: Vec<VerifiedTx>,
        origin: Origin,
    ) -> Result<Vec<Admission>, ChainError> {
        let limits = self.config.for_origin(origin);
        let mut inner = self.lock();
        let ids: Vec<Hash> = txs.iter().map(VerifiedTx::id).collect();
        let pending: Vec<bool> = ids.iter().map(|id| inner.index.contains_key(id)).collect();
        let committed = committed_unless_pending(store, &ids, &pending)?;
        let outcomes = txs
            .into_iter()
            .zip(committed)
            .map(|(tx, was_committed)| {
                let id = tx.id();
                // Checked again, not taken from `pending`: an id may repeat within `txs`.
                if inner.index.contains_key(&id) {
                    Admission::AlreadyPending
                } else if was_committed {
                    Admission::AlreadyCommitted
                } else if inner.queue.len() >= limits.max_txs || inner.bytes + tx.wire_len() > limits.max_bytes {
                    Admission::Full
                } else {
                    let seq = inner.next_seq;
                    inner.next_seq += 1;
                    inner.bytes += tx.wire_len();
                    inner.index.insert(id, (seq, tx.clone()));
                    inner.queue.insert(seq, tx);
                    Admission::Admitted
                }
            })
            .collect();
        inner.assert_consistent();
        Ok(outcomes)
    }

    /// Drops the given ids (those a block just committed) and returns how many were pending.
    pub fn remove_committed(&self, ids: &[Hash]) -> usize {
        let mut inner = self.lock();
        let removed = ids.iter().filter(|id| inner.remove(id)).count();
        inner.assert_consistent();
        removed
    }

    /// The oldest pending transactions, at most `max_txs` of them and `max_bytes` in total,
    /// leaving them pending (re-gossip uses it; transactions leave the mempool only when they
    /// commit). It stops at the first one that does not fit, so FIFO order holds;
    /// a caller's `max_bytes` must therefore exceed the largest transaction the limits allow.
    pub fn peek(&self, max_txs: usize, max_bytes: usize) -> Vec<VerifiedTx> {
        let inner = self.lock();
        Self::oldest(&inner, max_txs, max_bytes).map(|(_, tx)| tx.clone()).collect()
    }

    fn oldest(inner: &Inner, max_txs: usize, max_bytes: usize) -> impl Iterator<Item = (u64, &VerifiedTx)> {
        let mut bytes = 0usize;
        inner
            .queue
            .iter()
            .take(max_txs)
            .take_while(move |(_, tx)| {
                bytes += tx.wire_len();
                bytes <= max_bytes
            })
            .map(|(seq, tx)| (*seq, tx))
    }

    /// The pending transactions admitted at or after arrival number `from`, oldest first, at
    /// most `max_txs` of them, and the arrival number to ask from next time. The consensus
    /// driver follows the mempool with this cursor, so every admitted transaction reaches the
    /// core exactly once, whatever path (API or gossip) admitted it.
    pub fn since(&self, from: u64, max_txs: usize) -> (Vec<VerifiedTx>, u64) {
        let inner = self.lock();
        let txs: Vec<(u64, VerifiedTx)> =
            inner.queue.range(from..).take(max_txs).map(|(seq, tx)| (*seq, tx.clone())).collect();
        let next = txs.last().map_or(from, |(seq, _)| seq + 1);
        (txs.into_iter().map(|(_, tx)| tx).collect(), next)
    }

    /// The pending transaction with this id, if any.
    pub fn get(&self, id: &Hash) -> Option<VerifiedTx> {
        self.lock().index.get(id).map(|(_, tx)| tx.clone())
    }

    /// The pending transaction with each id, if any, under one lock (a backup looks up a whole
    /// PRE-PREPARE's transactions at once).
    pub fn get_many(&self, ids: &[Hash]) -> Vec<Option<VerifiedTx>> {
        let inner = self.lock();
        ids.iter().map(|id| inner.index.get(id).map(|(_, tx)| tx.clone())).collect()
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.lock().index.contains_key(id)
    }

    /// Whether each id is pending, under one lock.
    pub fn contains_each(&self, ids: &[Hash]) -> Vec<bool> {
        let inner = self.lock();
        ids.iter().map(|id| inner.index.contains_key(id)).collect()
    }

    /// How many more transactions, and bytes of them, `origin` may add now. Callers ask before
    /// checking signatures, so that an overloaded node does not verify what it would then
    /// refuse; admission checks the limits again, as others may take the room meanwhile.
    pub fn room(&self, origin: Origin) -> MempoolStats {
        let limits = self.config.for_origin(origin);
        let inner = self.lock();
        MempoolStats {
            txs: limits.max_txs.saturating_sub(inner.queue.len()),
            bytes: limits.max_bytes.saturating_sub(inner.bytes),
        }
    }

    pub fn stats(&self) -> MempoolStats {
        let inner = self.lock();
        MempoolStats { txs: inner.queue.len(), bytes: inner.bytes }
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::store::MemStore;
    use crate::{BatchHeader, Block, Keypair, Op, Transaction, TxRules};

    use super::*;

    const CHAIN: &str = "ordo-test";

    fn tx(nonce: u64) -> VerifiedTx {
        tx_with_value(nonce, "v")
    }

    fn tx_with_value(nonce: u64, value: &str) -> VerifiedTx {
        let op = Op::Put { key: "k".into(), value: value.into() };
        let t = Transaction::sign(CHAIN, &Keypair::from_seed([7; 32]), nonce, op);
        TxRules::new(CHAIN).verify(t).unwrap()
    }

    fn pool(max_txs: usize, max_bytes: usize) -> Mempool {
        Mempool::new(MempoolConfig { max_txs, max_bytes })
    }

    fn ids(txs: &[VerifiedTx]) -> Vec<Hash> {
        txs.iter().map(VerifiedTx::id).collect()
    }

    /// A store holding genesis and one block that committed `txs`.
    fn store_with_committed(txs: &[VerifiedTx]) -> MemStore {
        let store = MemStore::new();
        let (genesis, writes) = Block::genesis(CHAIN, 0, &BTreeMap::new());
        store.commit(&genesis, &writes).unwrap();
        let header = BatchHeader::for_txs(1, 1, Keypair::from_seed([1; 32]).public(), txs);
        let (block, exec) = Block::build(CHAIN, &genesis, header, txs, &vec![false; txs.len()], None);
        store.commit(&block, &exec.writes).unwrap();
        store
    }

    #[test]
    fn clients_fill_three_quarters_and_peers_the_rest() {
        let m = pool(8, 1 << 20);
        assert_eq!(m.config().client_share(), MempoolConfig { max_txs: 6, max_bytes: 786_432 });
        let out = m.admit(&MemStore::new(), (1..=7).map(tx).collect(), Origin::Client).unwrap();
        assert_eq!(out[..6], [Admission::Admitted; 6]);
        assert_eq!(out[6], Admission::Full, "the seventh is over the clients' share");
        assert_eq!((m.room(Origin::Client).txs, m.room(Origin::Peer).txs), (0, 2));
        // A duplicate is still answered as one, full or not.
        assert_eq!(m.admit(&MemStore::new(), vec![tx(1)], Origin::Client).unwrap(), [Admission::AlreadyPending]);
        // Another validator's transactions take the last quarter, and no more.
        let out = m.admit(&MemStore::new(), vec![tx(7), tx(8), tx(9)], Origin::Peer).unwrap();
        assert_eq!(out, [Admission::Admitted, Admission::Admitted, Admission::Full]);
        assert_eq!(m.room(Origin::Peer).txs, 0);
        assert_eq!(m.len(), 8);
        // Room comes back to clients only below their share again.
        m.remove_committed(&ids(&[tx(1)]));
        assert_eq!((m.room(Origin::Client).txs, m.room(Origin::Peer).txs), (0, 1));
        m.remove_committed(&ids(&[tx(2), tx(3)]));
        assert_eq!((m.room(Origin::Client).txs, m.room(Origin::Peer).txs), (1, 3));
        assert_eq!(m.room(Origin::Peer).bytes, (1 << 20) - m.stats().bytes);
        // The bytes are shared the same way, and a tiny mempool still takes one client transaction.
        let bytes = tx(1).wire_len();
        let m = pool(100, 4 * bytes);
        let out = m.admit(&MemStore::new(), (1..=5).map(tx).collect(), Origin::Client).unwrap();
        assert_eq!(
            out,
            [Admission::Admitted, Admission::Admitted, Admission::Admitted, Admission::Full, Admission::Full]
        );
        assert_eq!(
            MempoolConfig { max_txs: 1, max_bytes: 1 }.client_share(),
            MempoolConfig { max_txs: 1, max_bytes: 1 }
        );
    }

    #[test]
    fn config_rules() {
        MempoolConfig::default().validate().unwrap();
        let e = MempoolConfig { max_txs: 0, ..MempoolConfig::default() }.validate().unwrap_err();
        assert!(matches!(e, ChainError::ZeroMempoolLimit { field: "max_txs" }));
        let e = MempoolConfig { max_bytes: 0, ..MempoolConfig::default() }.validate().unwrap_err();
        assert!(matches!(e, ChainError::ZeroMempoolLimit { field: "max_bytes" }));
    }

    #[test]
    fn admits_new_transactions_in_fifo_order() {
        let m = pool(10, 1 << 20);
        let txs: Vec<VerifiedTx> = (0..3).map(tx).collect();
        let out = m.admit(&MemStore::new(), txs.clone(), Origin::Peer).unwrap();
        assert_eq!(out, vec![Admission::Admitted; 3]);
        assert_eq!(ids(&m.peek(10, 1 << 20)), ids(&txs));
        let bytes: usize = txs.iter().map(VerifiedTx::wire_len).sum();
        assert_eq!(m.stats(), MempoolStats { txs: 3, bytes });
        assert_eq!(m.get(&txs[1].id()).unwrap().id(), txs[1].id());
        let absent = tx(9).id();
        let got = m.get_many(&[txs[2].id(), absent, txs[0].id()]);
        assert_eq!(
            got.iter().map(|t| t.as_ref().map(VerifiedTx::id)).collect::<Vec<_>>(),
            [Some(txs[2].id()), None, Some(txs[0].id())]
        );
        m.remove_committed(&[txs[2].id()]);
        assert!(m.get(&txs[2].id()).is_none() && m.get_many(&[txs[2].id()]) == [None]);
    }

    #[test]
    fn duplicate_of_pending_is_already_pending() {
        let m = pool(10, 1 << 20);
        m.admit(&MemStore::new(), vec![tx(1)], Origin::Peer).unwrap();
        let before = m.stats();
        assert_eq!(m.admit(&MemStore::new(), vec![tx(1)], Origin::Peer).unwrap(), vec![Admission::AlreadyPending]);
        assert_eq!(m.stats(), before);
    }

    #[test]
    fn duplicate_within_one_batch_is_admitted_once() {
        let m = pool(10, 1 << 20);
        let out = m.admit(&MemStore::new(), vec![tx(1), tx(1)], Origin::Peer).unwrap();
        assert_eq!(out, vec![Admission::Admitted, Admission::AlreadyPending]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn committed_transaction_is_already_committed() {
        let store = store_with_committed(&[tx(1)]);
        let m = pool(10, 1 << 20);
        let out = m.admit(&store, vec![tx(1), tx(2)], Origin::Peer).unwrap();
        assert_eq!(out, vec![Admission::AlreadyCommitted, Admission::Admitted]);
        assert!(!m.contains(&tx(1).id()));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn count_limit_rejects_without_change() {
        let m = pool(2, 1 << 20);
        let out = m.admit(&MemStore::new(), vec![tx(1), tx(2), tx(3)], Origin::Peer).unwrap();
        assert_eq!(out, vec![Admission::Admitted, Admission::Admitted, Admission::Full]);
        let before = m.stats();
        assert_eq!(m.admit(&MemStore::new(), vec![tx(4)], Origin::Peer).unwrap(), vec![Admission::Full]);
        assert_eq!(m.stats(), before);
        assert!(!m.contains(&tx(3).id()) && !m.contains(&tx(4).id()));
    }

    #[test]
    fn byte_limit_rejects_without_change_and_smaller_ones_still_fit() {
        let small = tx(1);
        let big = tx_with_value(2, &"x".repeat(1000));
        let m = pool(10, small.wire_len() * 2);
        let out = m.admit(&MemStore::new(), vec![small.clone(), big.clone(), tx(3)], Origin::Peer).unwrap();
        assert_eq!(out, vec![Admission::Admitted, Admission::Full, Admission::Admitted]);
        assert_eq!(m.stats().bytes, small.wire_len() * 2);
        assert!(!m.contains(&big.id()));
    }

    #[test]
    fn exactly_at_the_byte_limit_is_admitted() {
        let t = tx(1);
        let m = pool(10, t.wire_len());
        assert_eq!(m.admit(&MemStore::new(), vec![t], Origin::Peer).unwrap(), vec![Admission::Admitted]);
        assert_eq!(m.admit(&MemStore::new(), vec![tx(2)], Origin::Peer).unwrap(), vec![Admission::Full]);
    }

    #[test]
    fn remove_committed_frees_room() {
        let m = pool(2, 1 << 20);
        m.admit(&MemStore::new(), vec![tx(1), tx(2)], Origin::Peer).unwrap();
        assert_eq!(m.remove_committed(&[tx(1).id(), tx(9).id()]), 1);
        assert_eq!(m.stats(), MempoolStats { txs: 1, bytes: tx(2).wire_len() });
        assert_eq!(m.admit(&MemStore::new(), vec![tx(3)], Origin::Peer).unwrap(), vec![Admission::Admitted]);
        assert_eq!(ids(&m.peek(10, 1 << 20)), ids(&[tx(2), tx(3)]));
    }

    #[test]
    fn peek_respects_count_and_bytes_and_keeps_order() {
        let m = pool(10, 1 << 20);
        let txs: Vec<VerifiedTx> = (0..5).map(tx).collect();
        m.admit(&MemStore::new(), txs.clone(), Origin::Peer).unwrap();
        assert_eq!(ids(&m.peek(2, 1 << 20)), ids(&txs[..2]));
        let three = txs[0].wire_len() * 3;
        assert_eq!(ids(&m.peek(10, three)), ids(&txs[..3]));
        assert_eq!(ids(&m.peek(10, three - 1)), ids(&txs[..2]));
        assert!(m.peek(0, 1 << 20).is_empty());
        assert_eq!(m.len(), 5, "peek leaves transactions pending");
    }

    #[test]
    fn peek_stops_at_the_first_transaction_that_does_not_fit() {
        let m = pool(10, 1 << 20);
        let big = tx_with_value(2, &"x".repeat(1000));
        m.admit(&MemStore::new(), vec![tx(1), big, tx(3)], Origin::Peer).unwrap();
        // The third would fit on its own, but taking it would jump the queue.
        assert_eq!(ids(&m.peek(10, tx(1).wire_len() * 2)), ids(&[tx(1)]));
    }

    #[test]
    fn store_error_changes_nothing() {
        struct Broken;
        impl Store for Broken {
            fn commit(&self, _: &Block, _: &[Op]) -> crate::Result<()> {
                unreachable!("the mempool never commits")
            }
            fn block(&self, _: u64) -> crate::Result<Option<Block>> {
                unreachable!("the mempool never reads blocks")
            }
            fn block_by_hash(&self, _: &Hash) -> crate::Result<Option<Block>> {
                unreachable!("the mempool never reads blocks")
            }
            fn latest_height(&self) -> crate::Result<Option<u64>> {
                unreachable!("the mempool never reads the tip")
            }
            fn tx_location(&self, _: &Hash) -> crate::Result<Option<crate::store::TxLocation>> {
                unreachable!("the mempool asks `committed`")
            }
            fn committed(&self, _: &[Hash]) -> crate::Result<Vec<bool>> {
                Err(ChainError::Io("disk on fire".into()))
            }
            fn state_get(&self, _: &str) -> crate::Result<Option<String>> {
                unreachable!("the mempool never reads state")
            }
            fn save_safety(&self, _: &crate::store::SafetyWrite) -> crate::Result<()> {
                unreachable!("the mempool never votes")
            }
            fn load_safety(&self) -> crate::Result<Option<crate::store::StoredSafety>> {
                unreachable!("the mempool never votes")
            }
            fn write_log(&self, _: &crate::store::LogWrite) -> crate::Result<()> {
                unreachable!("the mempool never writes a replicated log")
            }
            fn load_log(&self) -> crate::Result<crate::store::StoredLog> {
                unreachable!("the mempool never reads a replicated log")
            }
        }
        let m = pool(10, 1 << 20);
        assert_eq!(m.admit(&Broken, vec![tx(1)], Origin::Peer).unwrap_err(), ChainError::Io("disk on fire".into()));
        assert!(m.is_empty());
    }

    #[test]
    fn concurrent_admission_admits_each_id_once() {
        let m = std::sync::Arc::new(pool(1000, 1 << 20));
        let txs: Vec<VerifiedTx> = (0..50).map(tx).collect();
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (m, txs) = (m.clone(), txs.clone());
                    s.spawn(move || {
                        m.admit(&MemStore::new(), txs, Origin::Peer)
                            .unwrap()
                            .iter()
                            .filter(|a| **a == Admission::Admitted)
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 50);
        assert_eq!(m.len(), 50);
    }

    #[test]
    fn since_follows_admissions_with_a_cursor() {
        let pool = Mempool::new(MempoolConfig { max_txs: 100, max_bytes: 1 << 20 });
        let store = MemStore::new();
        let txs: Vec<VerifiedTx> = (0..5).map(tx).collect();
        pool.admit(&store, txs[..3].to_vec(), Origin::Peer).unwrap();
        let (got, next) = pool.since(0, 2);
        assert_eq!(ids(&got), ids(&txs[..2]));
        let (got, next) = pool.since(next, 10);
        assert_eq!(ids(&got), ids(&txs[2..3]));
        assert_eq!(pool.since(next, 10), (vec![], next), "nothing new: the cursor stays");
        // Removed entries are skipped; later admissions are found from the same cursor.
        pool.remove_committed(&ids(&txs[..1]));
        pool.admit(&store, txs[3..].to_vec(), Origin::Peer).unwrap();
        let (got, _) = pool.since(next, 10);
        assert_eq!(ids(&got), ids(&txs[3..]));
        assert_eq!(ids(&pool.since(0, 10).0), ids(&txs[1..]));
    }
}
