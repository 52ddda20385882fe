//! [`Ledger`]: a node's store and mempool behind one write path, used alike by the consensus
//! driver, the p2p loop and the API.
//!
//! Two orders matter and live here, not in the callers:
//! - a commit stores the block (one synced write) *before* it drops the block's transactions
//!   from the mempool, so a transaction on its way from one to the other is always found in one
//!   of them ([`Ledger::lookup`] asks the mempool first);
//! - observers (the API's dashboard ring, event streams, metrics and `?wait_ms` waiters) are told
//!   last, so whoever they wake finds everything in place.
//!
//! The ledger knows nothing of HTTP or of consensus; what the API keeps of each admission and
//! commit it keeps through a [`LedgerObserver`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::mempool::{committed_unless_pending, Admission, Mempool, MempoolStats, Origin};
use crate::store::{Store, TxLocation};
use crate::{Block, ChainError, Hash, Op, Transaction, VerifiedTx};

/// Told of every admission and commit, after the ledger's own bookkeeping. Called on the
/// caller's thread with no lock held; keep it cheap (counters, a notify, a ring buffer).
pub trait LedgerObserver: Send + Sync {
    /// Transactions were offered: one outcome each, in order, and the mempool's size after.
    fn admitted(&self, outcomes: &[Admission], pending: MempoolStats);

    /// `block` is durably stored (its synced write took `stored_in`) and its transactions have
    /// left the mempool, whose size after is `pending`.
    fn committed(&self, block: &Block, stored_in: Duration, pending: MempoolStats);
}

/// Where a known transaction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    Pending(VerifiedTx),
    Committed { location: TxLocation, tx: Transaction },
}

impl TxStatus {
    pub fn is_committed(&self) -> bool {
        matches!(self, TxStatus::Committed { .. })
    }
}

/// The store and the mempool, and who is told of changes to them.
pub struct Ledger {
    store: Arc<dyn Store>,
    mempool: Arc<Mempool>,
    observers: RwLock<Vec<Arc<dyn LedgerObserver>>>,
}

impl Ledger {
    /// Wraps an opened store and a mempool, checking the mempool's limits.
    pub fn new(store: Arc<dyn Store>, mempool: Arc<Mempool>) -> Result<Self, ChainError> {
        mempool.config().validate()?;
        Ok(Self { store, mempool, observers: RwLock::new(Vec::new()) })
    }

    /// Adds an observer, told of every later admission and commit.
    pub fn observe(&self, observer: Arc<dyn LedgerObserver>) {
        self.observers.write().unwrap_or_else(|p| p.into_inner()).push(observer);
    }

    fn each_observer(&self, f: impl Fn(&dyn LedgerObserver)) {
        for o in self.observers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            f(o.as_ref());
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.mempool
    }

    /// Offers verified transactions to the mempool, deduplicated against it and the store,
    /// within the limits of their `origin`; one outcome per transaction, in order.
    pub fn admit(&self, txs: Vec<VerifiedTx>, origin: Origin) -> Result<Vec<Admission>, ChainError> {
        let outcomes = self.mempool.admit(self.store.as_ref(), txs, origin)?;
        let pending = self.mempool.stats();
        self.each_observer(|o| o.admitted(&outcomes, pending));
        Ok(outcomes)
    }

    /// Whether each id is committed. An id pending in the mempool is not: a commit drops its
    /// transactions from the mempool before it returns, so outside a commit the mempool never
    /// holds a committed one. Only the other ids are asked of the store, in one batched read.
    /// Exact for the one task that commits (between its commits); for anyone else an id in a
    /// commit under way may read as not committed, as it would a moment earlier.
    pub fn committed(&self, ids: &[Hash]) -> Result<Vec<bool>, ChainError> {
        self.ask_store_unless_pending(ids, false)
    }

    /// Whether each id is pending or committed (what gossip need not verify again), asking the
    /// store only for the ids not pending.
    pub fn known(&self, ids: &[Hash]) -> Result<Vec<bool>, ChainError> {
        self.ask_store_unless_pending(ids, true)
    }

    fn ask_store_unless_pending(&self, ids: &[Hash], pending_answer: bool) -> Result<Vec<bool>, ChainError> {
        let pending = self.mempool.contains_each(ids);
        let committed = committed_unless_pending(self.store.as_ref(), ids, &pending)?;
        Ok(pending.into_iter().zip(committed).map(|(p, c)| c || (p && pending_answer)).collect())
    }

    /// The committed transactions among `ids`, as this node stored them (signature included),
    /// `None` for the others: one batched read of the index, then each block that holds some of
    /// them read once. What a view change's proofs bring again, batches this node committed
    /// already, is then compared with what it verified when it committed them instead of being
    /// checked again: up to a whole watermark window of transactions per message under load.
    pub fn committed_txs(&self, ids: &[Hash]) -> Result<Vec<Option<VerifiedTx>>, ChainError> {
        let committed = self.store.committed(ids)?;
        let mut found: Vec<Option<VerifiedTx>> = vec![None; ids.len()];
        let mut by_height: BTreeMap<u64, Vec<(usize, u32)>> = BTreeMap::new();
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| committed[*i]) {
            if let Some(location) = self.store.tx_location(id)? {
                by_height.entry(location.height).or_default().push((i, location.index));
            }
        }
        for (height, wanted) in by_height {
            let block = self.indexed_block(height)?;
            for (i, index) in wanted {
                found[i] = Some(VerifiedTx::from_trusted_store(indexed_tx(&block, index)?.clone()));
            }
        }
        Ok(found)
    }

    /// The block the transaction index points at; its absence is corruption.
    fn indexed_block(&self, height: u64) -> Result<Block, ChainError> {
        self.store
            .block(height)?
            .ok_or_else(|| ChainError::Corrupt(format!("transaction index points at missing block {height}")))
    }

    /// Stores a block and its state writes in one synced write, then drops its transactions
    /// from the mempool, then tells the observers. On a store error nothing else changes.
    pub fn commit(&self, block: &Block, writes: &[Op]) -> Result<(), ChainError> {
        let started = Instant::now();
        self.store.commit(block, writes)?;
        let stored_in = started.elapsed();
        self.mempool.remove_committed(&block.tx_ids);
        let pending = self.mempool.stats();
        self.each_observer(|o| o.committed(block, stored_in, pending));
        Ok(())
    }

    /// Where a transaction is: the mempool first, then the store (see the module notes for why
    /// this order never misses one in flight).
    pub fn lookup(&self, id: &Hash) -> Result<Option<TxStatus>, ChainError> {
        if let Some(tx) = self.mempool.get(id) {
            return Ok(Some(TxStatus::Pending(tx)));
        }
        let Some(location) = self.store.tx_location(id)? else {
            return Ok(None);
        };
        let block = self.indexed_block(location.height)?;
        let tx = indexed_tx(&block, location.index)?.clone();
        Ok(Some(TxStatus::Committed { location, tx }))
    }
}

/// The transaction at `index` of a block the transaction index points at; its absence is
/// corruption.
fn indexed_tx(block: &Block, index: u32) -> Result<&Transaction, ChainError> {
    block
        .txs
        .get(index as usize)
        .ok_or_else(|| ChainError::Corrupt(format!("transaction index points past block {} ({index})", block.height())))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::mempool::MempoolConfig;
    use crate::store::MemStore;
    use crate::{BatchHeader, Keypair, TxRules};

    const CHAIN: &str = "ordo-test";

    fn tx(nonce: u64) -> VerifiedTx {
        let op = Op::Put { key: format!("k{nonce}"), value: "v".into() };
        TxRules::new(CHAIN).verify(Transaction::sign(CHAIN, &Keypair::from_seed([7; 32]), nonce, op)).unwrap()
    }

    /// Records what it is told, and what the ledger looked like at that moment.
    #[derive(Default)]
    struct Log {
        seen: Mutex<Vec<String>>,
        ledger: Mutex<Option<Arc<Ledger>>>,
    }

    impl LedgerObserver for Log {
        fn admitted(&self, outcomes: &[Admission], pending: MempoolStats) {
            self.seen.lock().unwrap().push(format!("admitted {} pending {}", outcomes.len(), pending.txs));
        }
        fn committed(&self, block: &Block, _: Duration, pending: MempoolStats) {
            // Whoever an observer wakes must find the block stored and its transactions gone
            // from the mempool.
            let ledger = self.ledger.lock().unwrap().clone().unwrap();
            assert_eq!(ledger.store().latest_height().unwrap(), Some(block.height()));
            for id in &block.tx_ids {
                assert!(!ledger.mempool().contains(id));
                assert!(ledger.lookup(id).unwrap().unwrap().is_committed());
            }
            self.seen.lock().unwrap().push(format!("committed {} pending {}", block.height(), pending.txs));
        }
    }

    fn ledger() -> (Arc<Ledger>, Arc<Log>, Block) {
        let store = Arc::new(MemStore::new());
        let (genesis, writes) = Block::genesis(CHAIN, 0, &BTreeMap::new());
        store.commit(&genesis, &writes).unwrap();
        let ledger = Arc::new(Ledger::new(store, Arc::new(Mempool::new(MempoolConfig::default()))).unwrap());
        let log = Arc::new(Log::default());
        *log.ledger.lock().unwrap() = Some(ledger.clone());
        ledger.observe(log.clone());
        (ledger, log, genesis)
    }

    #[test]
    fn refuses_a_zero_limit_and_changes_nothing() {
        let store = Arc::new(MemStore::new());
        let e = Ledger::new(store, Arc::new(Mempool::new(MempoolConfig { max_txs: 0, max_bytes: 1 }))).err().unwrap();
        assert!(matches!(e, ChainError::ZeroMempoolLimit { field: "max_txs" }), "{e}");
    }

    #[test]
    fn commit_stores_then_empties_the_mempool_then_tells_observers() {
        let (ledger, log, genesis) = ledger();
        let txs: Vec<VerifiedTx> = (0..3).map(tx).collect();
        assert_eq!(ledger.admit(txs.clone(), Origin::Client).unwrap(), vec![Admission::Admitted; 3]);
        assert!(matches!(ledger.lookup(&txs[0].id()).unwrap(), Some(TxStatus::Pending(_))));

        let header = BatchHeader::for_txs(1, 1, Keypair::from_seed([1; 32]).public(), &txs[..2]);
        let (block, exec) = Block::build(CHAIN, &genesis, header, &txs[..2], &[false; 2], None);
        ledger.commit(&block, &exec.writes).unwrap();

        let Some(TxStatus::Committed { location, tx }) = ledger.lookup(&txs[1].id()).unwrap() else { panic!() };
        assert_eq!((location.height, location.index, tx.tx_id()), (1, 1, txs[1].id()));
        assert!(matches!(ledger.lookup(&txs[2].id()).unwrap(), Some(TxStatus::Pending(_))));
        assert_eq!(ledger.lookup(&Hash::ZERO).unwrap(), None);
        // Admitting a committed one again changes nothing.
        assert_eq!(ledger.admit(vec![txs[0].clone()], Origin::Client).unwrap(), vec![Admission::AlreadyCommitted]);
        assert_eq!(
            *log.seen.lock().unwrap(),
            ["admitted 3 pending 3", "committed 1 pending 1", "admitted 1 pending 1"]
        );
    }

    #[test]
    fn committed_and_known_ask_the_store_only_for_what_is_not_pending() {
        let (ledger, _, genesis) = ledger();
        let txs: Vec<VerifiedTx> = (0..4).map(tx).collect();
        ledger.admit(txs[..3].to_vec(), Origin::Client).unwrap();
        let header = BatchHeader::for_txs(1, 1, Keypair::from_seed([1; 32]).public(), &txs[..1]);
        let (block, exec) = Block::build(CHAIN, &genesis, header, &txs[..1], &[false], None);
        ledger.commit(&block, &exec.writes).unwrap();
        // txs[0] committed, txs[1] and txs[2] pending, txs[3] unknown.
        let ids: Vec<Hash> = txs.iter().map(VerifiedTx::id).collect();
        assert_eq!(ledger.committed(&ids).unwrap(), [true, false, false, false]);
        assert_eq!(ledger.known(&ids).unwrap(), [true, true, true, false]);
        assert_eq!(ledger.committed(&[]).unwrap(), Vec::<bool>::new());
    }

    #[test]
    fn committed_transactions_come_back_as_stored_and_nothing_else_does() {
        let (ledger, _, genesis) = ledger();
        let txs: Vec<VerifiedTx> = (0..5).map(tx).collect();
        let header = BatchHeader::for_txs(1, 1, Keypair::from_seed([1; 32]).public(), &txs[..2]);
        let (b1, exec) = Block::build(CHAIN, &genesis, header, &txs[..2], &[false; 2], None);
        ledger.commit(&b1, &exec.writes).unwrap();
        let header = BatchHeader::for_txs(2, 2, Keypair::from_seed([1; 32]).public(), &txs[2..3]);
        let (b2, exec) = Block::build(CHAIN, &b1, header, &txs[2..3], &[false], None);
        ledger.commit(&b2, &exec.writes).unwrap();
        ledger.admit(vec![txs[3].clone()], Origin::Client).unwrap();
        // Two committed in block 1, one in block 2, one pending, one unknown; in any order.
        let ids = [txs[4].id(), txs[2].id(), txs[1].id(), txs[3].id(), txs[0].id()];
        let found = ledger.committed_txs(&ids).unwrap();
        let got: Vec<Option<&Transaction>> = found.iter().map(|f| f.as_ref().map(VerifiedTx::tx)).collect();
        assert_eq!(got, [None, Some(txs[2].tx()), Some(txs[1].tx()), None, Some(txs[0].tx())]);
        assert_eq!(ledger.committed_txs(&[]).unwrap().len(), 0);
    }

    #[test]
    fn a_refused_commit_changes_nothing_and_tells_nobody() {
        let (ledger, log, genesis) = ledger();
        let txs: Vec<VerifiedTx> = (0..2).map(tx).collect();
        ledger.admit(txs.clone(), Origin::Client).unwrap();
        // Height 2 on top of height 0: the store refuses it.
        let header = BatchHeader::for_txs(1, 2, Keypair::from_seed([1; 32]).public(), &txs);
        let (mut block, exec) = Block::build(CHAIN, &genesis, header, &txs, &[false; 2], None);
        block.header.height = 2;
        assert!(ledger.commit(&block, &exec.writes).is_err());
        assert_eq!(ledger.mempool().len(), 2);
        assert_eq!(*log.seen.lock().unwrap(), ["admitted 2 pending 2"]);
    }
}
