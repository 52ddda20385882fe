//! Signing, all of it before the clock starts (signing is the client's cost, not the
//! committee's): many sender keys, then every transaction signed on every core and kept as the
//! JSON of its batch request, ready to send.

use std::ops::Range;

use ordo_chain::crypto::sha256_parts;
use ordo_chain::{Hash, Keypair, Op, Transaction};

/// The most transactions one step signs ahead (rate x duration included): about 400 bytes each
/// in memory, so this bounds the bench at under a gigabyte.
pub const STEP_MAX_TXS: usize = 2_000_000;

/// What every transaction of a run shares.
pub struct Plan<'a> {
    pub chain_id: &'a str,
    pub senders: &'a [Keypair],
    /// A random tag that keeps this run's keys (and so its `tx_id`s) apart from every other run's.
    pub run_tag: &'a str,
    pub value_size: usize,
}

impl Plan<'_> {
    /// Transaction `index` of the run (counted across the steps of a sweep): signed by sender
    /// `index mod senders`, writing `bench/<run>/<prefix><index>`.
    pub fn transaction(&self, prefix: &str, index: usize) -> Transaction {
        let key = &self.senders[index % self.senders.len()];
        let op = Op::Put { key: format!("bench/{}/{prefix}{index}", self.run_tag), value: "v".repeat(self.value_size) };
        Transaction::sign(self.chain_id, key, index as u64, op)
    }
}

/// One batch request: its transactions' ids and JSON, in order.
pub struct Request {
    pub ids: Vec<Hash>,
    pub json: Vec<String>,
}

impl Request {
    /// The body of a batch POST carrying the items at `items` (indexes into this request).
    pub fn body(&self, items: &[usize]) -> String {
        let len = items.iter().map(|&i| self.json[i].len() + 1).sum::<usize>() + 2;
        let mut body = String::with_capacity(len);
        body.push('[');
        for (k, &i) in items.iter().enumerate() {
            if k > 0 {
                body.push(',');
            }
            body.push_str(&self.json[i]);
        }
        body.push(']');
        body
    }
}

/// `count` sender keys derived from `run_seed`, made on every core.
pub fn senders(count: usize, run_seed: &[u8; 32], threads: usize) -> Vec<Keypair> {
    par_map(0..count, threads, |i| Keypair::from_seed(sha256_parts(&[run_seed, &(i as u64).to_be_bytes()]).0))
}

/// Signs run transactions `range` on every core, grouped into requests of `batch`.
pub fn requests(plan: &Plan<'_>, range: Range<usize>, batch: usize, threads: usize) -> Vec<Request> {
    let starts: Vec<usize> = range.clone().step_by(batch).collect();
    par_map(0..starts.len(), threads, |r| {
        let from = starts[r];
        let txs: Vec<Transaction> = (from..(from + batch).min(range.end)).map(|i| plan.transaction("", i)).collect();
        Request {
            ids: txs.iter().map(Transaction::tx_id).collect(),
            json: txs.iter().map(|t| serde_json::to_string(t).expect("a transaction serializes")).collect(),
        }
    })
}

/// Maps `f` over `range` on `threads` threads, each taking one contiguous slice; keeps order.
pub fn par_map<T: Send>(range: Range<usize>, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let items: Vec<usize> = range.collect();
    let per = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(per).map(|chunk| s.spawn(move || chunk.iter().map(|&i| f(i)).collect::<Vec<T>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a signing thread panicked")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::TxRules;

    #[test]
    fn requests_cover_the_range_in_order_with_many_senders_and_valid_signatures() {
        let keys = senders(7, &[3; 32], 3);
        let distinct: std::collections::BTreeSet<_> = keys.iter().map(|k| k.public()).collect();
        assert_eq!(distinct.len(), 7, "every sender key is distinct");
        let plan = Plan { chain_id: "ordo-test", senders: &keys, run_tag: "t", value_size: 5 };
        let reqs = requests(&plan, 10..33, 10, 4);
        assert_eq!(reqs.iter().map(|r| r.ids.len()).collect::<Vec<_>>(), vec![10, 10, 3]);
        let rules = TxRules::new("ordo-test");
        let mut n = 10;
        for r in &reqs {
            let parsed: Vec<Transaction> =
                serde_json::from_str(&r.body(&(0..r.ids.len()).collect::<Vec<_>>())).unwrap();
            for (tx, id) in parsed.iter().zip(&r.ids) {
                assert_eq!(tx.tx_id(), *id);
                assert_eq!(tx.nonce, n as u64);
                assert_eq!(tx.sender, keys[n % 7].public(), "transaction {n} is signed by sender {n} mod 7");
                n += 1;
            }
            assert!(rules.verify_many(parsed).iter().all(Result::is_ok));
        }
        assert_eq!(n, 33);
        // A body of some items only carries those, in the order given.
        let some: Vec<Transaction> = serde_json::from_str(&reqs[0].body(&[4, 1])).unwrap();
        assert_eq!(some.iter().map(Transaction::tx_id).collect::<Vec<_>>(), vec![reqs[0].ids[4], reqs[0].ids[1]]);
    }

    #[test]
    fn par_map_keeps_order_whatever_the_threads() {
        for threads in [1, 2, 3, 8, 100] {
            assert_eq!(par_map(5..17, threads, |i| i * 2), (5..17).map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(par_map(0..0, 4, |i| i).is_empty());
    }
}
