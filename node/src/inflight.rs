//! Transactions whose signatures are being checked right now, so that a backup checks each
//! transaction once even when two paths bring it at the same moment.
//!
//! A backup receives most transactions twice: in gossip from the validator that admitted them
//! (`inbound::admit_gossip`) and in the primary's PRE-PREPARE (the known-transactions hook that
//! `run::build_pbft` gives the verifier). Each path skips what the mempool already holds, but a
//! PRE-PREPARE arriving while the same transactions' gossip is still being checked (or the
//! other way round) found nothing there, and both checked them: 7–20% of all transactions under
//! load (docs/performance.md, sixth round).
//!
//! Both paths now go through [`InFlight::recall`]: look the ids up; wait, bounded by
//! [`WAIT_MAX`], until no other verification has claimed the missing ones, and claim them in
//! the same step; look them up again; check what is still unknown, admit the good ones, and
//! only then drop the [`Claim`]. Nobody waits while holding a claim, so no two verifications
//! can wait for each other.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ordo_chain::Hash;
use tracing::debug;

/// The longest a verification waits for another to finish checking the same transactions
/// before it checks them itself. A claimant is checking a batch of at most a few thousand
/// signatures, which takes tens of milliseconds even on a loaded machine; past this bound
/// something is wrong with it, and checking again is the safe answer.
pub const WAIT_MAX: Duration = Duration::from_millis(500);

/// The ids claimed by verifications under way.
#[derive(Default)]
pub struct InFlight {
    claimed: Mutex<HashSet<Hash>>,
    released: Condvar,
}

/// Ids one verification claimed: released, and waiters woken, when it is dropped. The holder
/// drops it only after it has admitted the good transactions, so that a waiter finds them.
#[must_use = "the claim is released when dropped"]
pub struct Claim {
    inflight: Arc<InFlight>,
    ids: Vec<Hash>,
}

#[cfg(test)]
impl Claim {
    /// The ids this claim holds (those of the request nobody else held).
    fn ids(&self) -> &[Hash] {
        &self.ids
    }
}

impl Claim {
    /// Releases the ids `keep` rejects (found admitted after all), waking whoever waits.
    fn retain(&mut self, keep: impl Fn(&Hash) -> bool) {
        let (kept, gone): (Vec<Hash>, Vec<Hash>) = self.ids.iter().partition(|id| keep(id));
        self.ids = kept;
        self.inflight.release(&gone);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.inflight.release(&self.ids);
    }
}

/// How a wait for other verifications' claims ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// None of the ids was claimed: there was nothing to wait for.
    Free,
    /// Some were claimed, and every claim on them has been released.
    Released,
    /// Some were still claimed when the time ran out.
    TimedOut,
}

impl InFlight {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<Hash>> {
        self.claimed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, ids: &[Hash]) {
        if ids.is_empty() {
            return;
        }
        let mut claimed = self.lock();
        for id in ids {
            claimed.remove(id);
        }
        drop(claimed);
        self.released.notify_all();
    }

    /// Waits until none of `ids` is claimed elsewhere, or until `deadline`; then, with `claim`,
    /// claims those of them nobody holds, under the same lock, so that two verifications that
    /// wake together never both take the same ids. It holds nothing while it waits.
    fn wait_then_claim(self: &Arc<Self>, ids: &[Hash], deadline: Instant, claim: bool) -> (Waited, Option<Claim>) {
        let mut claimed = self.lock();
        let mut waited = Waited::Free;
        while ids.iter().any(|id| claimed.contains(id)) {
            let now = Instant::now();
            if now >= deadline {
                waited = Waited::TimedOut;
                break;
            }
            waited = Waited::Released;
            claimed = self.released.wait_timeout(claimed, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        let held = claim.then(|| {
            let mine = ids.iter().filter(|id| claimed.insert(**id)).copied().collect();
            Claim { inflight: self.clone(), ids: mine }
        });
        (waited, held)
    }

    /// One verification's first step. `lookup` answers, one entry per id, what this node
    /// already holds. The ids it does not hold are waited for while another verification has
    /// claimed them (up to [`WAIT_MAX`]); with `claim`, they are then claimed for the caller,
    /// who checks them, admits the good ones and drops the claim. They are looked up again
    /// after a wait or a claim: another verification may have admitted them meanwhile,
    /// even between the first lookup and the claim.
    pub fn recall<T>(
        self: &Arc<Self>,
        ids: &[Hash],
        claim: bool,
        lookup: impl Fn(&[Hash]) -> Vec<Option<T>>,
    ) -> (Vec<Option<T>>, Option<Claim>) {
        let deadline = Instant::now() + WAIT_MAX;
        let mut found = lookup(ids);
        debug_assert_eq!(found.len(), ids.len(), "a lookup answers once per id");
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return (found, None);
        }
        let missing_ids: Vec<Hash> = missing.iter().map(|&i| ids[i]).collect();
        let (waited, mut held) = self.wait_then_claim(&missing_ids, deadline, claim);
        if waited == Waited::TimedOut {
            debug!(ids = missing_ids.len(), "another verification of these transactions is late; checking them here");
        }
        if waited != Waited::Free || held.is_some() {
            let mut admitted = HashSet::new();
            for ((i, id), again) in missing.iter().zip(&missing_ids).zip(lookup(&missing_ids)) {
                if again.is_some() {
                    admitted.insert(*id);
                }
                found[*i] = again;
            }
            if let Some(c) = held.as_mut().filter(|_| !admitted.is_empty()) {
                c.retain(|id| !admitted.contains(id));
            }
        }
        (found, held)
    }

    /// Claims those of `ids` that nobody holds, without waiting.
    #[cfg(test)]
    fn claim(self: &Arc<Self>, ids: &[Hash]) -> Claim {
        self.wait_then_claim(ids, Instant::now(), true).1.expect("claimed")
    }

    /// Waits until none of `ids` is claimed, or `timeout` has passed; claims nothing.
    #[cfg(test)]
    fn wait_released(self: &Arc<Self>, ids: &[Hash], timeout: Duration) -> Waited {
        self.wait_then_claim(ids, Instant::now() + timeout, false).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    fn id(b: u8) -> Hash {
        Hash([b; 32])
    }

    #[test]
    fn a_claim_takes_only_what_nobody_holds_and_releases_it_when_dropped() {
        let f = InFlight::new();
        let first = f.claim(&[id(1), id(2)]);
        let second = f.claim(&[id(2), id(3)]);
        assert_eq!(first.ids(), [id(1), id(2)]);
        assert_eq!(second.ids(), [id(3)]);
        drop(first);
        assert_eq!(f.claim(&[id(1), id(2), id(3)]).ids(), [id(1), id(2)]);
        drop(second);
        assert!(f.lock().is_empty(), "every claim dropped, nothing held");
    }

    #[test]
    fn waiting_on_unclaimed_ids_returns_at_once() {
        let f = InFlight::new();
        let _other = f.claim(&[id(9)]);
        let start = Instant::now();
        assert_eq!(f.wait_released(&[id(1), id(2)], Duration::from_secs(10)), Waited::Free);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_waiter_wakes_when_the_claim_is_dropped_and_times_out_when_it_is_not() {
        let f = InFlight::new();
        let claim = f.claim(&[id(1)]);
        assert_eq!(f.wait_released(&[id(1)], Duration::from_millis(30)), Waited::TimedOut);
        let waiter = {
            let f = f.clone();
            thread::spawn(move || f.wait_released(&[id(1), id(2)], Duration::from_secs(60)))
        };
        thread::sleep(Duration::from_millis(20));
        drop(claim);
        assert_eq!(waiter.join().unwrap(), Waited::Released);
    }

    /// The race this module exists for: a verification that finds ids claimed waits, then
    /// takes what the claimant admitted instead of checking it again; only what the claimant
    /// did not admit (a bad transaction) is left to it, and claimed.
    #[test]
    fn recall_waits_for_the_claimant_and_takes_what_it_admitted() {
        let f = InFlight::new();
        let pool: Arc<Mutex<HashSet<Hash>>> = Arc::default();
        let lookups = Arc::new(AtomicUsize::new(0));
        let lookup = {
            let (pool, lookups) = (pool.clone(), lookups.clone());
            move |ids: &[Hash]| {
                lookups.fetch_add(1, Ordering::SeqCst);
                let pool = pool.lock().unwrap();
                ids.iter().map(|i| pool.contains(i).then_some(*i)).collect::<Vec<_>>()
            }
        };
        pool.lock().unwrap().insert(id(0));
        let claimant = f.claim(&[id(1), id(2)]);
        let admitter = {
            let pool = pool.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                pool.lock().unwrap().insert(id(1)); // id(2) was bad: not admitted
                drop(claimant);
            })
        };
        let (found, claim) = f.recall(&[id(0), id(1), id(2), id(3)], true, lookup);
        admitter.join().unwrap();
        assert_eq!(found, [Some(id(0)), Some(id(1)), None, None]);
        assert_eq!(claim.as_ref().map(Claim::ids), Some(&[id(2), id(3)][..]));
        assert_eq!(lookups.load(Ordering::SeqCst), 2, "looked up once, then again after waiting");
    }

    /// A claimant may admit and release between a verification's lookup and its claim: the
    /// look after the claim finds what it admitted.
    #[test]
    fn recall_looks_again_after_claiming() {
        let f = InFlight::new();
        let admitted = AtomicUsize::new(0);
        let (found, claim) = f.recall(&[id(1)], true, |ids| {
            // The first lookup misses; the claimant admits right after it.
            let seen = admitted.fetch_add(1, Ordering::SeqCst) > 0;
            ids.iter().map(|_| seen.then_some(())).collect()
        });
        assert_eq!(found, [Some(())]);
        assert_eq!(admitted.load(Ordering::SeqCst), 2);
        assert_eq!(claim.as_ref().map(Claim::ids), Some(&[][..]), "nothing left to check, nothing held");
        assert!(f.lock().is_empty());
    }

    /// Two verifications waiting on the same claim wake together; only one of them may take the
    /// ids, and the other waits on it in turn (here until it gives up, as its holder keeps it).
    #[test]
    fn two_waiters_never_both_claim_the_same_ids() {
        let f = InFlight::new();
        let first = f.claim(&[id(1)]);
        let (results, keep) = (std::sync::mpsc::channel(), Arc::new(std::sync::Barrier::new(3)));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (f, tx, keep) = (f.clone(), results.0.clone(), keep.clone());
                thread::spawn(move || {
                    let (_, claim) = f.recall(&[id(1)], true, |ids| vec![None::<()>; ids.len()]);
                    tx.send(claim.as_ref().map(|c| c.ids().to_vec()).unwrap_or_default()).unwrap();
                    keep.wait(); // hold the claim until both have answered
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        drop(first);
        let mut got = vec![results.1.recv().unwrap(), results.1.recv().unwrap()];
        got.sort();
        assert_eq!(got, [vec![], vec![id(1)]]);
        keep.wait();
        waiters.into_iter().for_each(|w| w.join().unwrap());
        assert!(f.lock().is_empty());
    }

    #[test]
    fn recall_without_claiming_or_with_everything_known_holds_nothing() {
        let f = InFlight::new();
        let (found, claim) = f.recall(&[id(1)], false, |ids| vec![None::<()>; ids.len()]);
        assert_eq!(found, [None]);
        assert!(claim.is_none());
        let (found, claim) = f.recall(&[id(1)], true, |ids| vec![Some(()); ids.len()]);
        assert_eq!(found, [Some(())]);
        assert!(claim.is_none());
        assert!(f.lock().is_empty());
    }
}
