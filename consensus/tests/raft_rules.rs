//! One test per rule of the Raft engine and per rejection rule of its verification, each naming
//! the rule it checks (Ongaro & Ousterhout, "In Search of an Understandable Consensus
//! Algorithm", 2014, section numbers; "thesis" is Ongaro's 2014 dissertation). Where an input
//! produces actions, the test asserts the whole list, with the persisted records decoded.

use ordo_chain::cert::{raft_block_bytes, Certificate, RaftCertificate};
use ordo_chain::store::{LogWrite, MemStore, Store};
use ordo_chain::{BatchHeader, Block, Committee, Hash, Keypair, Op, Transaction, TxRules, VerifiedTx};
use ordo_consensus::raft::storage::decode_meta;
use ordo_consensus::raft::{
    decode_and_verify, verify_block, verify_message, EntryBatch, RaftEngine, RaftEntry, RaftKind, RaftMessage,
    RaftRestore, RaftVerifyContext, SnapshotMeta,
};
use ordo_consensus::{Action, Consensus, ConsensusError, Input, Mode, RaftConfig, Verified};

const CHAIN: &str = "ordo-raft-rules";

fn key(i: usize) -> Keypair {
    Keypair::from_seed([i as u8 + 40; 32])
}

fn config() -> RaftConfig {
    RaftConfig {
        heartbeat_interval_ms: 10,
        election_timeout_ms: 50,
        batch_max_txs: 4,
        batch_timeout_ms: 5,
        max_in_flight: 2,
        ..RaftConfig::default()
    }
}

fn ctx(n: usize) -> RaftVerifyContext {
    RaftVerifyContext::new(Committee::new((0..n).map(|i| key(i).public()).collect()), TxRules::new(CHAIN), &config())
}

fn genesis() -> Block {
    Block::genesis(CHAIN, 1, &Default::default()).0
}

fn fresh(i: usize, n: usize, seed: u64) -> RaftEngine {
    let g = genesis();
    let restore = RaftRestore { log: Default::default(), executed_height: 0, executed_hash: g.hash };
    RaftEngine::new(config(), ctx(n), key(i), restore, seed, 0).expect("engine starts")
}

fn tx(nonce: u64) -> VerifiedTx {
    TxRules::new(CHAIN)
        .verify(Transaction::sign(CHAIN, &key(9), nonce, Op::Put { key: "k".into(), value: format!("v{nonce}") }))
        .unwrap()
}

fn msg(kind: RaftKind, from: u64, to: u64, term: u64) -> RaftMessage {
    RaftMessage {
        kind,
        from,
        to,
        term,
        log_term: 0,
        index: 0,
        commit: 0,
        commit_term: 0,
        reject: false,
        reject_hint: 0,
        entries: Vec::new(),
        snapshot: None,
    }
}

/// Verifies `m` as sent by validator raft id `m.from` and feeds it to the engine.
fn deliver(e: &mut RaftEngine, ctx: &RaftVerifyContext, m: RaftMessage) -> Vec<Action<RaftMessage>> {
    let sender = ctx.validator(m.from).unwrap();
    let v = verify_message(ctx, sender, m).expect("valid message");
    e.handle(Input::Message(v))
}

/// A batch entry for `height` certified by `leader` for `term`.
fn batch_entry(leader: usize, term: u64, index: u64, height: u64, txs: &[VerifiedTx]) -> RaftEntry {
    let k = key(leader);
    let header = BatchHeader::for_txs(height, 7, k.public(), txs);
    let digest = header.digest(CHAIN);
    let cert = RaftCertificate {
        term,
        height,
        batch_digest: digest,
        leader: k.public(),
        signature: k.sign(&raft_block_bytes(CHAIN, term, height, &digest)),
    };
    RaftEntry { index, term, data: EntryBatch::encode(&header, txs, &cert) }
}

fn meta_of(w: &LogWrite) -> (u64, u64, u64, u64) {
    let (hs, base) = decode_meta(w.meta.as_ref().expect("a meta record")).unwrap();
    (hs.term, hs.vote, hs.commit, base.index)
}

/// Ticks a single-validator engine until it leads, executing nothing else.
fn lone_leader(store: &MemStore) -> RaftEngine {
    let mut e = fresh(0, 1, 1);
    for t in 1..=40 {
        for a in e.handle(Input::Tick { now_ms: t * 10 }) {
            if let Action::PersistLog(w) = a {
                store.write_log(&w).unwrap();
            }
        }
        if e.is_leader() {
            return e;
        }
    }
    panic!("a lone validator elects itself within 4 election timeouts");
}

// ---- Persistence before messages (§5.2 Figure 2 "persistent state", thesis §10.2.1) ----

/// Figure 2: a follower persists the entries it appends before it acknowledges them.
#[test]
fn a_follower_persists_appended_entries_before_acknowledging_them() {
    let c = ctx(3);
    let mut f = fresh(1, 3, 1);
    let mut m = msg(RaftKind::Append, 1, 2, 1);
    m.entries = vec![RaftEntry { index: 1, term: 1, data: Vec::new() }, batch_entry(0, 1, 2, 1, &[tx(1)])];
    let out = deliver(&mut f, &c, m);
    assert_eq!(out.len(), 3, "{out:?}");
    let Action::PersistLog(w) = &out[0] else { panic!("the write comes first: {out:?}") };
    assert_eq!(meta_of(w), (1, 0, 0, 0), "term 1, no vote, nothing committed, base 0");
    assert_eq!(w.truncate_from, Some(1));
    assert_eq!(w.append.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2]);
    let Action::Send { to, msg: ack } = &out[1] else { panic!("then the acknowledgement: {out:?}") };
    assert_eq!((*to, ack.kind, ack.index, ack.reject), (key(0).public(), RaftKind::AppendResponse, 2, false));
    let Action::StatusChanged(s) = &out[2] else { panic!("{out:?}") };
    assert_eq!((s.view, s.leader, s.mode), (1, Some(key(0).public()), Mode::Normal));
}

/// Figure 2 (RequestVote): currentTerm and votedFor are durable before the vote leaves.
#[test]
fn a_vote_leaves_only_after_the_term_and_vote_are_durable() {
    let c = ctx(3);
    let mut f = fresh(1, 3, 1);
    let out = deliver(&mut f, &c, msg(RaftKind::RequestVote, 3, 2, 2));
    assert_eq!(out.len(), 3, "{out:?}");
    let Action::PersistLog(w) = &out[0] else { panic!("the write comes first: {out:?}") };
    assert_eq!(meta_of(w), (2, 3, 0, 0), "term 2, voted for raft id 3");
    assert!(w.append.is_empty() && w.truncate_from.is_none());
    let Action::Send { to, msg: vote } = &out[1] else { panic!("then the vote: {out:?}") };
    assert_eq!((*to, vote.kind, vote.term, vote.reject), (key(2).public(), RaftKind::RequestVoteResponse, 2, false));
    let Action::StatusChanged(s) = &out[2] else { panic!("{out:?}") };
    assert_eq!((s.view, s.leader, s.mode), (2, None, Mode::ViewChange), "no leader during an election");
    // §5.2: one vote per term; another candidate of term 2 is refused.
    let out = deliver(&mut f, &c, msg(RaftKind::RequestVote, 1, 2, 2));
    let refused = out
        .iter()
        .any(|a| matches!(a, Action::Send { msg, .. } if msg.kind == RaftKind::RequestVoteResponse && msg.reject));
    assert!(refused, "{out:?}");
}

/// A restarted node keeps its vote: it does not vote again in the same term (§5.2, and the
/// planted bug (b) of the simulation).
#[test]
fn a_restarted_node_does_not_vote_twice_in_a_term() {
    let c = ctx(3);
    let store = MemStore::new();
    let mut f = fresh(1, 3, 1);
    for a in deliver(&mut f, &c, msg(RaftKind::RequestVote, 3, 2, 2)) {
        if let Action::PersistLog(w) = a {
            store.write_log(&w).unwrap();
        }
    }
    let restore = RaftRestore { log: store.load_log().unwrap(), executed_height: 0, executed_hash: genesis().hash };
    let mut f = RaftEngine::new(config(), c.clone(), key(1), restore, 2, 0).unwrap();
    assert_eq!(f.term(), 2);
    let out = deliver(&mut f, &c, msg(RaftKind::RequestVote, 1, 2, 2));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Send { msg, .. } if msg.kind == RaftKind::RequestVoteResponse && msg.reject)),
        "{out:?}"
    );
}

// ---- Guards: what would make raft-rs panic never reaches it ----

/// The etcd/Fabric "tocommit out of range": a heartbeat committing past this log (a node whose
/// data was wiped) is refused with a reason instead of panicking inside raft-rs.
#[test]
fn a_heartbeat_beyond_the_log_is_refused_not_a_panic() {
    let c = ctx(3);
    let mut f = fresh(1, 3, 1);
    let mut m = msg(RaftKind::Heartbeat, 1, 2, 1);
    m.commit = 5;
    let out = deliver(&mut f, &c, m);
    assert!(out.is_empty(), "{out:?}");
    assert!(
        matches!(f.last_drop(), Some(ConsensusError::RaftRefused(r)) if r.contains("beyond this log's last index 0"))
    );
}

/// §5.3 Log Matching: an append that would rewrite a committed entry is refused (raft-rs
/// would panic on it).
#[test]
fn an_append_rewriting_a_committed_entry_is_refused() {
    let c = ctx(3);
    let mut f = fresh(1, 3, 1);
    let mut m = msg(RaftKind::Append, 1, 2, 1);
    m.entries =
        vec![RaftEntry { index: 1, term: 1, data: Vec::new() }, RaftEntry { index: 2, term: 1, data: Vec::new() }];
    m.commit = 2;
    deliver(&mut f, &c, m);
    assert_eq!(f.committed_index(), 2);
    let mut m = msg(RaftKind::Append, 3, 2, 2);
    m.entries = vec![RaftEntry { index: 1, term: 2, data: Vec::new() }];
    let out = deliver(&mut f, &c, m);
    assert!(out.is_empty(), "{out:?}");
    assert!(matches!(f.last_drop(), Some(ConsensusError::RaftRefused(r)) if r.contains("rewrites committed entry 1")));
    assert_eq!(f.term_at(1), Some(1));
}

/// An acknowledgement of entries the leader does not have is refused.
#[test]
fn an_acknowledgement_beyond_the_log_is_refused() {
    let c = ctx(3);
    let mut f = fresh(1, 3, 1);
    let mut m = msg(RaftKind::AppendResponse, 1, 2, 1);
    m.index = 9;
    assert!(deliver(&mut f, &c, m).is_empty());
    assert!(matches!(f.last_drop(), Some(ConsensusError::RaftRefused(r)) if r.contains("acknowledges index 9")));
}

// ---- Verification: one test per rejection rule ----

#[test]
fn reject_a_sender_that_is_not_the_authenticated_validator() {
    let c = ctx(3);
    let m = msg(RaftKind::Heartbeat, 1, 2, 1);
    assert_eq!(
        verify_message(&c, key(2).public(), m.clone()).unwrap_err(),
        ConsensusError::SenderMismatch { sender: key(2).public(), claimed: 1 }
    );
    assert!(matches!(verify_message(&c, key(7).public(), m), Err(ConsensusError::UnknownSender { .. })));
}

#[test]
fn reject_a_message_to_nobody_or_to_itself_or_of_term_zero() {
    let c = ctx(3);
    for m in [msg(RaftKind::Heartbeat, 1, 4, 1), msg(RaftKind::Heartbeat, 1, 1, 1), msg(RaftKind::Heartbeat, 1, 2, 0)] {
        assert!(matches!(verify_message(&c, key(0).public(), m), Err(ConsensusError::BadRaftMessage { .. })));
    }
}

#[test]
fn reject_entries_that_are_not_contiguous_or_exceed_the_term() {
    let c = ctx(3);
    let mut m = msg(RaftKind::Append, 1, 2, 2);
    m.entries = vec![RaftEntry { index: 1, term: 1, data: vec![] }, RaftEntry { index: 3, term: 1, data: vec![] }];
    assert!(matches!(verify_message(&c, key(0).public(), m.clone()), Err(ConsensusError::BadRaftMessage { .. })));
    m.entries = vec![RaftEntry { index: 1, term: 3, data: vec![] }];
    assert!(matches!(verify_message(&c, key(0).public(), m.clone()), Err(ConsensusError::BadRaftMessage { .. })));
    m.entries = vec![RaftEntry { index: 1, term: 2, data: vec![] }, RaftEntry { index: 2, term: 1, data: vec![] }];
    assert!(matches!(verify_message(&c, key(0).public(), m.clone()), Err(ConsensusError::BadRaftMessage { .. })));
    let mut hb = msg(RaftKind::Heartbeat, 1, 2, 2);
    hb.entries = vec![RaftEntry { index: 1, term: 1, data: vec![] }];
    assert!(matches!(verify_message(&c, key(0).public(), hb), Err(ConsensusError::BadRaftMessage { .. })));
}

/// Protocol §6: the certificate's term is the term of the entry that carries the block.
#[test]
fn reject_a_batch_certified_for_another_term() {
    let c = ctx(3);
    let mut m = msg(RaftKind::Append, 1, 2, 3);
    let mut e = batch_entry(0, 2, 1, 1, &[tx(1)]);
    e.term = 3;
    m.entries = vec![e];
    assert!(
        matches!(verify_message(&c, key(0).public(), m), Err(ConsensusError::BadEntry { index: 1, reason }) if reason.contains("term 2"))
    );
}

#[test]
fn reject_a_batch_with_a_bad_certificate_signature_or_a_wrong_root() {
    let c = ctx(3);
    let good = batch_entry(0, 1, 1, 1, &[tx(1)]);
    let mut b = EntryBatch::decode(&good.data, 10).unwrap();
    b.certificate.signature.0[0] ^= 1;
    let txs: Vec<VerifiedTx> = b.txs.iter().cloned().map(VerifiedTx::from_trusted_store).collect();
    let bad_sig = RaftEntry { data: EntryBatch::encode(&b.header, &txs, &b.certificate), ..good.clone() };
    let mut m = msg(RaftKind::Append, 1, 2, 1);
    m.entries = vec![bad_sig];
    assert!(matches!(verify_message(&c, key(0).public(), m.clone()), Err(ConsensusError::BadEntry { .. })));
    // The header of one batch with the transactions of another.
    let b = EntryBatch::decode(&good.data, 10).unwrap();
    let wrong = RaftEntry { data: EntryBatch::encode(&b.header, &[tx(2)], &b.certificate), ..good };
    m.entries = vec![wrong];
    assert!(matches!(verify_message(&c, key(0).public(), m), Err(ConsensusError::BadEntry { .. })));
}

#[test]
fn wire_form_round_trips_and_decoding_is_bounded() {
    let c = ctx(3);
    let mut m = msg(RaftKind::Append, 1, 2, 4);
    m.log_term = 3;
    m.index = 6;
    m.commit = 5;
    m.reject_hint = 2;
    m.entries = vec![batch_entry(0, 4, 7, 3, &[tx(1), tx(2)])];
    let bytes = m.encode();
    let v = decode_and_verify(&c, key(0).public(), &bytes).unwrap();
    assert_eq!(*v, m);
    assert!(matches!(RaftMessage::decode(&bytes, 10, 16), Err(ConsensusError::MessageTooLarge { .. })));
    assert!(matches!(RaftMessage::decode(&bytes, 1 << 20, 0), Err(ConsensusError::Decode(_))));
    let mut bad_kind = bytes.clone();
    bad_kind[1] = 2; // MsgPropose never crosses the wire.
    assert!(matches!(RaftMessage::decode(&bad_kind, 1 << 20, 16), Err(ConsensusError::Decode(_))));
    let mut snap = msg(RaftKind::Snapshot, 1, 2, 4);
    snap.snapshot = Some(SnapshotMeta { index: 9, term: 4, height: 5 });
    assert_eq!(*decode_and_verify(&c, key(0).public(), &snap.encode()).unwrap(), snap);
}

/// A fetched block must carry a Raft certificate on a Raft chain.
#[test]
fn verify_block_refuses_a_pbft_certificate_and_accepts_a_raft_one() {
    let c = ctx(3);
    let g = genesis();
    let txs = vec![tx(1)];
    let header = BatchHeader::for_txs(1, 7, key(0).public(), &txs);
    let d = header.digest(CHAIN);
    let raft = Certificate::Raft(RaftCertificate {
        term: 1,
        height: 1,
        batch_digest: d,
        leader: key(0).public(),
        signature: key(0).sign(&raft_block_bytes(CHAIN, 1, 1, &d)),
    });
    let (block, _) = Block::build(CHAIN, &g, header, &txs, &[false], Some(raft));
    assert_eq!(verify_block(&c, &block).unwrap().header, header);
    let pbft = Certificate::pbft_signed(CHAIN, 0, 1, d, &[key(0), key(1)]);
    let (block, _) = Block::build(CHAIN, &g, header, &txs, &[false], Some(pbft));
    assert!(matches!(verify_block(&c, &block), Err(ConsensusError::BadSyncedBlock { .. })));
}

// ---- Blocks ----

/// A leader signs each batch for its current term and proposes it as one entry; heights follow
/// the chain; the committed batch carries that certificate.
#[test]
fn a_leader_certifies_each_batch_with_its_term() {
    let store = MemStore::new();
    let mut e = lone_leader(&store);
    let term = e.term();
    e.handle(Input::ClientTxs(vec![tx(1), tx(2)]));
    let mut commits = Vec::new();
    for a in e.handle(Input::Tick { now_ms: 1000 }) {
        match a {
            Action::PersistLog(w) => store.write_log(&w).unwrap(),
            Action::Commit(b) => commits.push(b),
            _ => {}
        }
    }
    assert_eq!(commits.len(), 1);
    let b = &commits[0];
    assert_eq!((b.header.height, b.header.proposer, b.txs.len()), (1, key(0).public(), 2));
    let Certificate::Raft(c) = &b.certificate else { panic!("a raft certificate") };
    assert_eq!((c.term, c.height, c.leader), (term, 1, key(0).public()));
    b.certificate
        .verify(CHAIN, &ctx(1).committee, ordo_chain::cert::CertKind::Raft, 1, &b.header.digest(CHAIN))
        .unwrap();
}

/// §5.4.2 and the block rule: a new leader proposes nothing until an entry of its own term is
/// committed and applied and the node executed everything before it; then at most
/// `max_in_flight` batches wait uncommitted.
#[test]
fn a_new_leader_waits_for_its_term_and_bounds_what_is_in_flight() {
    let c = ctx(3);
    let mut l = fresh(0, 3, 1);
    // Elect validator 0 by hand: pre-vote, then vote, from validator 1.
    let mut t = 0;
    while !l.is_leader() {
        t += 10;
        assert!(t < 2000, "elected");
        for a in l.handle(Input::Tick { now_ms: t }) {
            if let Action::Send { msg, .. } = a {
                if msg.to == 2 && matches!(msg.kind, RaftKind::RequestPreVote | RaftKind::RequestVote) {
                    let kind = if msg.kind == RaftKind::RequestPreVote {
                        RaftKind::RequestPreVoteResponse
                    } else {
                        RaftKind::RequestVoteResponse
                    };
                    let reply = msg_term(kind, 2, 1, msg.term);
                    for b in deliver(&mut l, &c, reply) {
                        if let Action::Send { msg, .. } = b {
                            if msg.to == 2 && msg.kind == RaftKind::RequestVote {
                                deliver(&mut l, &c, msg_term(RaftKind::RequestVoteResponse, 2, 1, msg.term));
                            }
                        }
                    }
                }
            }
        }
    }
    let term = l.term();
    l.handle(Input::ClientTxs((0..20).map(tx).collect()));
    // The batch entries (distinct indexes) the leader's appends carry.
    let proposals = |out: &[Action<RaftMessage>]| {
        out.iter()
            .flat_map(|a| match a {
                Action::Send { msg, .. } if msg.kind == RaftKind::Append => msg.entries.clone(),
                _ => Vec::new(),
            })
            .filter(|e| !e.data.is_empty())
            .map(|e| e.index)
            .collect::<std::collections::BTreeSet<u64>>()
            .len()
    };
    // (Within one election timeout: with check_quorum a leader that hears from no follower for
    // that long steps down.)
    let out = l.handle(Input::Tick { now_ms: t + 6 });
    assert_eq!(proposals(&out), 0, "no batch before the no-op of term {term} commits");
    // Validator 1 acknowledges the no-op (index 1): it commits and is applied.
    let mut ack = msg_term(RaftKind::AppendResponse, 2, 1, term);
    ack.index = 1;
    let out = deliver(&mut l, &c, ack);
    let n = proposals(&out);
    assert_eq!(n, 2, "then max_in_flight = 2 batches at once");
    let out = l.handle(Input::Tick { now_ms: t + 12 });
    assert!(proposals(&out) <= n, "nothing more until they commit (re-sends only)");
}

fn msg_term(kind: RaftKind, from: u64, to: u64, term: u64) -> RaftMessage {
    msg(kind, from, to, term)
}

/// A restarted engine does not hand the node again what it already executed.
#[test]
fn a_restart_does_not_apply_executed_heights_again() {
    let store = MemStore::new();
    let mut e = lone_leader(&store);
    let mut now = 1000;
    let mut heights = Vec::new();
    for n in 0..3 {
        e.handle(Input::ClientTxs(vec![tx(n)]));
        now += 100;
        for a in e.handle(Input::Tick { now_ms: now }) {
            match a {
                Action::PersistLog(w) => store.write_log(&w).unwrap(),
                Action::Commit(b) => heights.push(b.header.height),
                _ => {}
            }
        }
    }
    assert_eq!(heights, vec![1, 2, 3]);
    // The node stored blocks 1 and 2 but crashed before storing 3.
    let restore = RaftRestore { log: store.load_log().unwrap(), executed_height: 2, executed_hash: Hash([2; 32]) };
    let mut e = RaftEngine::new(config(), ctx(1), key(0), restore, 5, now).unwrap();
    let out = e.handle(Input::Tick { now_ms: now + 10 });
    let again: Vec<u64> =
        out.iter().filter_map(|a| if let Action::Commit(b) = a { Some(b.header.height) } else { None }).collect();
    assert_eq!(again, vec![3], "{out:?}");
}

// ---- Catch-up and compaction ----

/// A follower behind a leader's base fetches the certified blocks first and takes the
/// snapshot (metadata only) once it holds them.
#[test]
fn a_follower_behind_the_base_fetches_blocks_before_taking_the_snapshot() {
    let c = ctx(3);
    let mut f = fresh(1, 3, 1);
    let mut snap = msg(RaftKind::Snapshot, 1, 2, 2);
    snap.snapshot = Some(SnapshotMeta { index: 6, term: 2, height: 2 });
    let out = deliver(&mut f, &c, snap.clone());
    assert_eq!(out, vec![Action::FetchBlocks { from: key(0).public(), from_height: 1, to_height: 2 }]);
    // The fetched blocks, certified by the leader of term 1.
    let mut prev = genesis();
    let mut blocks: Vec<Verified<_>> = Vec::new();
    for h in 1..=2 {
        let txs = vec![tx(h)];
        let header = BatchHeader::for_txs(h, 7, key(0).public(), &txs);
        let d = header.digest(CHAIN);
        let cert = Certificate::Raft(RaftCertificate {
            term: 1,
            height: h,
            batch_digest: d,
            leader: key(0).public(),
            signature: key(0).sign(&raft_block_bytes(CHAIN, 1, h, &d)),
        });
        let (b, _) = Block::build(CHAIN, &prev, header, &txs, &[false], Some(cert));
        blocks.push(verify_block(&c, &b).unwrap());
        prev = b;
    }
    blocks.reverse(); // In any order.
    let out = f.handle(Input::SyncedBlocks(blocks));
    let heights: Vec<u64> =
        out.iter().filter_map(|a| if let Action::Commit(b) = a { Some(b.header.height) } else { None }).collect();
    assert_eq!(heights, vec![1, 2]);
    f.handle(Input::Executed { height: 2, block_hash: prev.hash });
    let out = deliver(&mut f, &c, snap);
    let Action::PersistLog(w) = &out[0] else { panic!("the base is persisted first: {out:?}") };
    assert_eq!(meta_of(w), (2, 0, 6, 6), "term 2, commit and base at index 6");
    assert_eq!(w.truncate_from, Some(0), "the whole old log goes");
    assert!(matches!(&out[1], Action::Send { msg, .. } if msg.kind == RaftKind::AppendResponse && msg.index == 6));
    assert_eq!((f.log_base().index, f.log_base().height, f.log_height()), (6, 2, 2));
}

/// The log is compacted only at executed heights, keeping a margin.
#[test]
fn the_log_is_compacted_only_at_executed_heights() {
    let store = MemStore::new();
    let mut e = lone_leader(&store);
    let cfg = config();
    let mut now = 1000;
    let mut committed = 0;
    let total = cfg.compact_threshold_entries + cfg.compact_margin_entries + 8;
    for n in 0..total {
        e.handle(Input::ClientTxs(vec![tx(n)]));
        now += 100;
        for a in e.handle(Input::Tick { now_ms: now }) {
            match a {
                Action::PersistLog(w) => store.write_log(&w).unwrap(),
                Action::Commit(b) => committed = b.header.height,
                _ => {}
            }
        }
    }
    assert_eq!(committed, total);
    assert_eq!(e.log_base().index, 0, "nothing executed, nothing compacted");
    let out = e.handle(Input::Executed { height: total, block_hash: Hash([1; 32]) });
    let w = out
        .iter()
        .find_map(|a| if let Action::PersistLog(w) = a { Some(w.clone()) } else { None })
        .expect("a compaction write");
    store.write_log(&w).unwrap();
    let base = e.log_base();
    assert_eq!(base.height, total - cfg.compact_margin_entries, "a margin of executed heights stays");
    assert_eq!(w.delete_below, Some(base.index + 1));
    assert_eq!(meta_of(&w).3, base.index);
    assert_eq!(store.load_log().unwrap().entries.first().map(|(i, _)| *i), Some(base.index + 1));
    assert_eq!(e.status().stable_height, base.height);
}

// ---- Determinism ----

/// No hidden randomness: the same seed and inputs give the same actions; the election timeout
/// comes from the seed (different seeds campaign at different times).
#[test]
fn election_timeouts_come_from_the_seed() {
    let first_campaign = |seed: u64| -> (u64, Vec<Action<RaftMessage>>) {
        let mut e = fresh(0, 3, seed);
        for t in 1..400 {
            let out = e.handle(Input::Tick { now_ms: t * 10 });
            if out.iter().any(|a| matches!(a, Action::Send { msg, .. } if msg.kind == RaftKind::RequestPreVote)) {
                return (t, out);
            }
        }
        panic!("campaigns");
    };
    assert_eq!(first_campaign(7), first_campaign(7));
    let times: std::collections::BTreeSet<u64> = (0..16).map(|s| first_campaign(s).0).collect();
    assert!(times.len() > 1, "every seed campaigned at the same tick: {times:?}");
    // Within raft-rs's randomised range [election, 2 × election) ticks of 10 ms, after the first tick.
    assert!(times.iter().all(|t| (5..=11).contains(t)), "{times:?}");
}

/// The quorum the node's readiness uses is a majority.
#[test]
fn quorum_is_a_majority() {
    assert_eq!(fresh(0, 3, 1).quorum(), 2);
    assert_eq!(fresh(0, 4, 1).quorum(), 3);
    assert_eq!(fresh(0, 5, 1).quorum(), 3);
}
