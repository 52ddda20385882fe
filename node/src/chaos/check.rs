//! The verdict of `ordo chaos`: a pure function from what was acknowledged and what every node
//! holds at the end to the list of violations. It does no IO, so a unit test can hand it a
//! fabricated run (an acknowledgement of a transaction nobody submitted, a fork, a node in
//! another view) and see it fail.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ordo_chain::Hash;

/// A transaction some node acknowledged (202 pending, or 200 with its known status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedTx {
    pub tx_id: Hash,
    /// The name of the node that acknowledged it.
    pub node: String,
}

/// Where one transaction sits in a node's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub height: u64,
    pub index: u32,
    /// `applied`, not `duplicate`.
    pub applied: bool,
}

/// A node's whole chain, as read over its API: the hash of every height from 0, and where each
/// transaction id appears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeChain {
    pub hashes: Vec<Hash>,
    pub txs: HashMap<Hash, Vec<Placement>>,
}

impl NodeChain {
    /// Records the transactions of the block at `height` (the next one: heights arrive in order).
    pub fn push_block(&mut self, height: u64, hash: Hash, txs: impl IntoIterator<Item = (Hash, bool)>) {
        debug_assert_eq!(height, self.hashes.len() as u64, "blocks are pushed in height order");
        self.hashes.push(hash);
        for (index, (id, applied)) in txs.into_iter().enumerate() {
            self.txs.entry(id).or_default().push(Placement { height, index: index as u32, applied });
        }
    }

    fn applied(&self, id: &Hash) -> Vec<Placement> {
        self.txs.get(id).map(|p| p.iter().filter(|p| p.applied).copied().collect()).unwrap_or_default()
    }
}

/// What `GET /v1/transactions/{tx_id}` said on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Committed {
        height: u64,
        index: u32,
        applied: bool,
    },
    Pending,
    Unknown,
    /// The request failed, or the answer was not a transaction status.
    Failed(String),
}

/// The part of `GET /v1/status` the check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalStatus {
    pub height: u64,
    /// The PBFT view, or the Raft term.
    pub view: u64,
    pub ready: bool,
}

/// Everything read from one node after the heal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFinal {
    pub name: String,
    /// `Err` when the node did not answer.
    pub status: Result<FinalStatus, String>,
    pub chain: Result<NodeChain, String>,
    /// One per acknowledged transaction.
    pub lookups: HashMap<Hash, Lookup>,
    /// `ordo verify-chain --node`'s verdict: its summary line, or its error.
    pub verify: Result<String, String>,
}

/// The whole input of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInput {
    pub acked: Vec<AckedTx>,
    pub nodes: Vec<NodeFinal>,
    /// Violations the run itself saw (a node that died on its own, no commit long after a fault,
    /// an answer that named another tx_id); each is reported as it is.
    pub incidents: Vec<String>,
}

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Acknowledged, yet applied in no node's chain.
    Lost {
        tx_id: Hash,
        acked_by: String,
        /// The nodes whose lookup still says pending (in their mempool, never ordered).
        pending_on: Vec<String>,
    },
    /// Applied in more than one block of one node's chain.
    AppliedTwice {
        tx_id: Hash,
        node: String,
        heights: Vec<u64>,
    },
    /// Acknowledged and applied on some nodes but not on this one.
    MissingOn {
        tx_id: Hash,
        node: String,
    },
    /// The node's transaction lookup disagrees with its own chain.
    LookupDisagrees {
        tx_id: Hash,
        node: String,
        lookup: String,
        chain: String,
    },
    /// Two nodes hold different blocks at one height.
    Fork {
        height: u64,
        node: String,
        hash: Hash,
        reference: String,
        reference_hash: Hash,
    },
    /// The nodes did not end at one height.
    HeightsDiffer {
        heights: Vec<(String, u64)>,
    },
    /// The nodes did not end in one view (or term).
    ViewsDiffer {
        views: Vec<(String, u64)>,
    },
    NotReady {
        node: String,
    },
    Unreachable {
        node: String,
        error: String,
    },
    VerifyFailed {
        node: String,
        error: String,
    },
    Incident(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[(String, u64)]| v.iter().map(|(n, x)| format!("{n} {x}")).collect::<Vec<_>>().join(", ");
        match self {
            Violation::Lost { tx_id, acked_by, pending_on } => {
                write!(f, "transaction {tx_id} was acknowledged by {acked_by} but is in no node's chain")?;
                match pending_on.as_slice() {
                    [] => write!(f, " nor in any mempool"),
                    on => write!(f, " (still pending on {}, never ordered)", on.join(", ")),
                }
            }
            Violation::AppliedTwice { tx_id, node, heights } => {
                write!(f, "transaction {tx_id} is applied more than once on {node}, at heights {heights:?}")
            }
            Violation::MissingOn { tx_id, node } => {
                write!(f, "transaction {tx_id} is committed on other nodes but not in {node}'s chain")
            }
            Violation::LookupDisagrees { tx_id, node, lookup, chain } => {
                write!(f, "{node} answers {lookup} for transaction {tx_id}, but its chain has it {chain}")
            }
            Violation::Fork { height, node, hash, reference, reference_hash } => {
                write!(f, "fork at height {height}: {node} holds {hash}, {reference} holds {reference_hash}")
            }
            Violation::HeightsDiffer { heights } => {
                write!(f, "the nodes ended at different heights: {}", list(heights))
            }
            Violation::ViewsDiffer { views } => {
                write!(f, "the nodes ended in different views (Raft: terms): {}", list(views))
            }
            Violation::NotReady { node } => write!(f, "{node} is not ready after the heal"),
            Violation::Unreachable { node, error } => write!(f, "{node} could not be read after the heal: {error}"),
            Violation::VerifyFailed { node, error } => write!(f, "verify-chain failed on {node}: {error}"),
            Violation::Incident(s) => f.write_str(s),
        }
    }
}

/// The verdict and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub acknowledged: usize,
    /// Acknowledged transactions applied exactly once in every node's chain, where every node's
    /// lookup agrees.
    pub committed: usize,
    /// Acknowledged transactions applied in no node's chain.
    pub lost: usize,
    /// Of the lost ones, those some node still holds as pending.
    pub lost_pending: usize,
    /// The height every node reached (the lowest tip when they differ).
    pub common_height: Option<u64>,
    pub violations: Vec<Violation>,
}

fn describe_lookup(l: &Lookup) -> String {
    match l {
        Lookup::Committed { height, index, applied } => {
            format!("committed at {height}:{index} ({})", if *applied { "applied" } else { "duplicate" })
        }
        Lookup::Pending => "pending".into(),
        Lookup::Unknown => "unknown (404)".into(),
        Lookup::Failed(e) => format!("an error ({e})"),
    }
}

/// Checks every promise of protocol §8's `ordo chaos`: every acknowledged transaction committed
/// exactly once on every node (in the blocks and in the lookup), one chain on every node, every
/// chain verified against genesis, every node ready in one view.
pub fn check(input: &CheckInput) -> CheckOutcome {
    let mut violations: Vec<Violation> = input.incidents.iter().cloned().map(Violation::Incident).collect();

    // The nodes themselves: reachable, ready, one height, one view, verified.
    let mut statuses: Vec<(&str, &FinalStatus)> = Vec::new();
    for n in &input.nodes {
        match &n.status {
            Ok(s) => {
                if !s.ready {
                    violations.push(Violation::NotReady { node: n.name.clone() });
                }
                statuses.push((&n.name, s));
            }
            Err(e) => violations.push(Violation::Unreachable { node: n.name.clone(), error: e.clone() }),
        }
        if let Err(e) = &n.chain {
            violations.push(Violation::Unreachable { node: n.name.clone(), error: e.clone() });
        }
        if let Err(e) = &n.verify {
            violations.push(Violation::VerifyFailed { node: n.name.clone(), error: e.clone() });
        }
    }
    let differ = |f: fn(&FinalStatus) -> u64| -> Option<Vec<(String, u64)>> {
        let first = statuses.first().map(|(_, s)| f(s))?;
        statuses
            .iter()
            .any(|(_, s)| f(s) != first)
            .then(|| statuses.iter().map(|(n, s)| (n.to_string(), f(s))).collect())
    };
    if let Some(heights) = differ(|s| s.height) {
        violations.push(Violation::HeightsDiffer { heights });
    }
    if let Some(views) = differ(|s| s.view) {
        violations.push(Violation::ViewsDiffer { views });
    }

    // One chain: every node's hash at every height up to the lowest tip equals the first
    // readable node's. One violation per node (its first differing height) says enough.
    let chains: Vec<(&str, &NodeChain)> =
        input.nodes.iter().filter_map(|n| n.chain.as_ref().ok().map(|c| (n.name.as_str(), c))).collect();
    let common_height = chains.iter().map(|(_, c)| c.hashes.len() as u64).min().and_then(|len| len.checked_sub(1));
    if let (Some((ref_name, ref_chain)), Some(top)) = (chains.first(), common_height) {
        for (name, chain) in &chains[1..] {
            if let Some(h) = (0..=top as usize).find(|&h| chain.hashes[h] != ref_chain.hashes[h]) {
                violations.push(Violation::Fork {
                    height: h as u64,
                    node: name.to_string(),
                    hash: chain.hashes[h],
                    reference: ref_name.to_string(),
                    reference_hash: ref_chain.hashes[h],
                });
            }
        }
    }

    // No transaction, acknowledged by us or not, is applied twice in one chain (protocol §3: a
    // tx_id is committed at most once in the chain's whole history).
    for (name, chain) in &chains {
        let mut twice: BTreeMap<Hash, Vec<u64>> = BTreeMap::new();
        for (id, places) in &chain.txs {
            let heights: Vec<u64> = places.iter().filter(|p| p.applied).map(|p| p.height).collect();
            if heights.len() > 1 {
                twice.insert(*id, heights);
            }
        }
        for (tx_id, heights) in twice {
            violations.push(Violation::AppliedTwice { tx_id, node: name.to_string(), heights });
        }
    }

    // Every acknowledged transaction: applied exactly once on every node, and every node's
    // lookup names that very place.
    let (mut committed, mut lost, mut lost_pending) = (0, 0, 0);
    for ack in &input.acked {
        let places: Vec<(&str, Vec<Placement>)> = chains.iter().map(|(n, c)| (*n, c.applied(&ack.tx_id))).collect();
        if places.iter().all(|(_, p)| p.is_empty()) {
            let pending_on: Vec<String> = input
                .nodes
                .iter()
                .filter(|n| n.lookups.get(&ack.tx_id) == Some(&Lookup::Pending))
                .map(|n| n.name.clone())
                .collect();
            lost += 1;
            lost_pending += !pending_on.is_empty() as usize;
            violations.push(Violation::Lost { tx_id: ack.tx_id, acked_by: ack.node.clone(), pending_on });
            continue;
        }
        let mut ok = input.nodes.len() == chains.len();
        for (name, p) in &places {
            if p.is_empty() {
                ok = false;
                violations.push(Violation::MissingOn { tx_id: ack.tx_id, node: name.to_string() });
            } else if p.len() > 1 {
                // Already reported above, with the heights.
                ok = false;
            }
        }
        for n in &input.nodes {
            let Ok(chain) = &n.chain else { continue };
            let applied = chain.applied(&ack.tx_id);
            let [place] = applied.as_slice() else { continue };
            let lookup = n.lookups.get(&ack.tx_id).cloned().unwrap_or(Lookup::Failed("never asked".into()));
            let expected = Lookup::Committed { height: place.height, index: place.index, applied: true };
            if lookup != expected {
                ok = false;
                violations.push(Violation::LookupDisagrees {
                    tx_id: ack.tx_id,
                    node: n.name.clone(),
                    lookup: describe_lookup(&lookup),
                    chain: describe_lookup(&expected),
                });
            }
        }
        committed += ok as usize;
    }
    CheckOutcome { acknowledged: input.acked.len(), committed, lost, lost_pending, common_height, violations }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: u8) -> Hash {
        Hash([x; 32])
    }

    /// Four nodes holding the same three-block chain: block 1 applies txs 10 and 11, block 2
    /// applies 12 and carries 10 again as a duplicate (a replay, which is allowed).
    fn clean() -> CheckInput {
        let mut chain = NodeChain::default();
        chain.push_block(0, h(1), []);
        chain.push_block(1, h(2), [(h(10), true), (h(11), true)]);
        chain.push_block(2, h(3), [(h(12), true), (h(10), false)]);
        let lookups: HashMap<Hash, Lookup> = [
            (h(10), Lookup::Committed { height: 1, index: 0, applied: true }),
            (h(11), Lookup::Committed { height: 1, index: 1, applied: true }),
            (h(12), Lookup::Committed { height: 2, index: 0, applied: true }),
        ]
        .into();
        let nodes = (0..4)
            .map(|i| NodeFinal {
                name: format!("node{i}"),
                status: Ok(FinalStatus { height: 2, view: 3, ready: true }),
                chain: Ok(chain.clone()),
                lookups: lookups.clone(),
                verify: Ok("ok: 3 blocks".into()),
            })
            .collect();
        let acked = [10, 11, 12].iter().map(|&x| AckedTx { tx_id: h(x), node: "node1".into() }).collect();
        CheckInput { acked, nodes, incidents: Vec::new() }
    }

    #[test]
    fn a_clean_run_passes() {
        let out = check(&clean());
        assert_eq!(out.violations, vec![]);
        assert_eq!((out.acknowledged, out.committed, out.lost, out.common_height), (3, 3, 0, Some(2)));
    }

    #[test]
    fn an_acknowledged_transaction_nobody_submitted_is_lost() {
        let mut input = clean();
        input.acked.push(AckedTx { tx_id: h(99), node: "node2".into() });
        let out = check(&input);
        assert_eq!(
            out.violations,
            vec![Violation::Lost { tx_id: h(99), acked_by: "node2".into(), pending_on: vec![] }]
        );
        assert_eq!((out.acknowledged, out.committed, out.lost, out.lost_pending), (4, 3, 1, 0));
        assert!(out.violations[0].to_string().contains("acknowledged by node2 but is in no node's chain nor in any"));
    }

    #[test]
    fn an_acknowledged_transaction_left_pending_is_lost_and_says_where_it_waits() {
        let mut input = clean();
        input.acked.push(AckedTx { tx_id: h(98), node: "node0".into() });
        for n in &mut input.nodes {
            let seen = if n.name == "node3" { Lookup::Pending } else { Lookup::Unknown };
            n.lookups.insert(h(98), seen);
        }
        let out = check(&input);
        let lost = Violation::Lost { tx_id: h(98), acked_by: "node0".into(), pending_on: vec!["node3".into()] };
        assert_eq!(out.violations, vec![lost]);
        assert_eq!((out.committed, out.lost, out.lost_pending), (3, 1, 1));
        assert!(out.violations[0].to_string().ends_with("(still pending on node3, never ordered)"));
    }

    #[test]
    fn a_transaction_applied_twice_is_a_violation() {
        let mut input = clean();
        for n in &mut input.nodes {
            let chain = n.chain.as_mut().unwrap();
            chain.push_block(3, h(4), [(h(11), true)]);
            n.status.as_mut().unwrap().height = 3;
        }
        let out = check(&input);
        assert_eq!(out.committed, 2, "tx 11 no longer counts as committed once");
        assert_eq!(out.violations.len(), 4, "{:?}", out.violations);
        for (i, v) in out.violations.iter().enumerate() {
            assert_eq!(*v, Violation::AppliedTwice { tx_id: h(11), node: format!("node{i}"), heights: vec![1, 3] });
        }
    }

    #[test]
    fn a_fork_is_found_at_its_first_height() {
        let mut input = clean();
        let mut forked = NodeChain::default();
        forked.push_block(0, h(1), []);
        forked.push_block(1, h(7), [(h(10), true), (h(11), true)]);
        forked.push_block(2, h(8), [(h(12), true)]);
        input.nodes[2].chain = Ok(forked);
        let out = check(&input);
        assert_eq!(
            out.violations,
            vec![Violation::Fork {
                height: 1,
                node: "node2".into(),
                hash: h(7),
                reference: "node0".into(),
                reference_hash: h(2)
            }]
        );
    }

    #[test]
    fn a_transaction_missing_on_one_node_or_pending_in_its_lookup_fails() {
        let mut input = clean();
        let mut short = NodeChain::default();
        short.push_block(0, h(1), []);
        short.push_block(1, h(2), [(h(10), true), (h(11), true)]);
        input.nodes[3].chain = Ok(short);
        input.nodes[3].status.as_mut().unwrap().height = 1;
        input.nodes[1].lookups.insert(h(11), Lookup::Pending);
        let out = check(&input);
        assert_eq!(out.committed, 1, "{:?}", out.violations);
        assert_eq!(out.lost, 0);
        assert!(out.violations.contains(&Violation::MissingOn { tx_id: h(12), node: "node3".into() }));
        assert!(out.violations.iter().any(|v| matches!(v, Violation::HeightsDiffer { .. })));
        assert!(out.violations.contains(&Violation::LookupDisagrees {
            tx_id: h(11),
            node: "node1".into(),
            lookup: "pending".into(),
            chain: "committed at 1:1 (applied)".into()
        }));
        assert_eq!(out.common_height, Some(1));
    }

    #[test]
    fn nodes_in_other_views_not_ready_unreadable_or_unverified_fail() {
        let mut input = clean();
        input.nodes[0].status.as_mut().unwrap().view = 4;
        input.nodes[1].status.as_mut().unwrap().ready = false;
        input.nodes[2].verify = Err("block 2 does not verify".into());
        input.nodes[3].status = Err("connection refused".into());
        input.incidents.push("node3 exited on its own".into());
        let out = check(&input);
        let v = &out.violations;
        assert!(v.contains(&Violation::Incident("node3 exited on its own".into())));
        assert!(v.contains(&Violation::NotReady { node: "node1".into() }));
        assert!(v.contains(&Violation::VerifyFailed { node: "node2".into(), error: "block 2 does not verify".into() }));
        assert!(v.contains(&Violation::Unreachable { node: "node3".into(), error: "connection refused".into() }));
        assert!(v.contains(&Violation::ViewsDiffer {
            views: vec![("node0".into(), 4), ("node1".into(), 3), ("node2".into(), 3)]
        }));
        assert_eq!(v.len(), 5, "{v:?}");
    }
}
