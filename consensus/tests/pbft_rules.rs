//! One test per protocol rule and per rejection rule of PBFT as implemented here, each naming
//! the section of Castro & Liskov, "Practical Byzantine Fault Tolerance and Proactive
//! Recovery" (TOCS 2002) that it checks. Replicas are driven directly through the `Consensus`
//! interface, and the tests assert the exact actions they produce.

use ordo_chain::cert::{pbft_commit_bytes, CertKind, Certificate, PbftCertificate, ValidatorSignature};
use ordo_chain::store::{MemStore, SafetyWrite, Store, StoredSafety};
use ordo_chain::{Block, Hash, Op, PublicKey, Transaction, TxRules, VerifiedTx};
use ordo_consensus::pbft::messages::new_view::compute_plan;
use ordo_consensus::pbft::messages::{
    Batch, Checkpoint, CheckpointProof, Commit, Message, NewView, PrePrepare, Prepare, PreparedProof, ViewChange,
    WireMessage,
};
use ordo_consensus::pbft::replica::{Replica, Restore};
use ordo_consensus::pbft::safety::{Safety, SafetyRecord};
use ordo_consensus::pbft::{decode_and_verify, verify_block, VerifyContext};
use ordo_consensus::sim::{committee, genesis, sim_config, validator_key, CHAIN_ID};
use ordo_consensus::{Action, Consensus, ConsensusError, Input, Mode, Verified};

const N: usize = 4;

fn ctx() -> VerifyContext {
    VerifyContext::new(committee(N), TxRules::new(CHAIN_ID), &sim_config())
}

fn replica(i: usize) -> Replica {
    let g = genesis();
    Replica::new(
        sim_config(),
        ctx(),
        validator_key(i),
        g.hash,
        Restore { safety: None, executed_height: 0, executed_hash: g.hash },
        0,
    )
    .unwrap()
}

/// The safety record as the store holds it after one `PersistSafety` write to an empty store.
fn stored(w: &SafetyWrite) -> StoredSafety {
    let store = MemStore::new();
    store.save_safety(w).unwrap();
    store.load_safety().unwrap().unwrap()
}

fn restored(i: usize, safety: StoredSafety) -> Replica {
    let g = genesis();
    Replica::new(
        sim_config(),
        ctx(),
        validator_key(i),
        g.hash,
        Restore { safety: Some(safety), executed_height: 0, executed_hash: g.hash },
        0,
    )
    .unwrap()
}

fn replica_with(i: usize, cfg: ordo_consensus::PbftConfig) -> Replica {
    let g = genesis();
    Replica::new(
        cfg,
        ctx(),
        validator_key(i),
        g.hash,
        Restore { safety: None, executed_height: 0, executed_hash: g.hash },
        0,
    )
    .unwrap()
}

/// A VIEW-CHANGE for `view` from validator `i` with the genesis checkpoint and nothing prepared.
fn vc(i: usize, view: u64) -> ViewChange {
    ViewChange::sign(CHAIN_ID, &validator_key(i), view, CheckpointProof::genesis(genesis().hash), Vec::new())
}

fn commit(i: usize, view: u64, b: &Batch) -> Message {
    Message::Commit(Commit::sign(CHAIN_ID, &validator_key(i), view, b.header.height, b.digest(CHAIN_ID)))
}

/// The safety record an input's actions persist, decoded; it always comes first.
fn persisted(actions: &[Action<Message>]) -> Option<SafetyRecord> {
    match actions.first() {
        Some(Action::PersistSafety(w)) => Some(SafetyRecord::decode_stored(&w.record, &stored(w).bodies).unwrap()),
        _ => None,
    }
}

/// Votes (PRE-PREPARE, PREPARE, COMMIT) among the messages an input sends.
fn votes(actions: &[Action<Message>]) -> usize {
    actions
        .iter()
        .filter(|a| match a {
            Action::Broadcast(m) | Action::Send { msg: m, .. } => {
                matches!(m, Message::PrePrepare(_) | Message::Prepare(_) | Message::Commit(_))
            }
            _ => false,
        })
        .count()
}

fn txs(n: usize, salt: u64) -> Vec<VerifiedTx> {
    let client = ordo_chain::Keypair::from_seed([9; 32]);
    let raw: Vec<Transaction> = (0..n)
        .map(|i| {
            Transaction::sign(
                CHAIN_ID,
                &client,
                salt * 1000 + i as u64,
                Op::Put { key: format!("k{i}"), value: "v".into() },
            )
        })
        .collect();
    TxRules::new(CHAIN_ID).verify_many(raw).into_iter().map(|r| r.unwrap()).collect()
}

/// Goes through the real wire path: encode, decode, verify.
fn verified(m: Message) -> Verified<Message> {
    decode_and_verify(&ctx(), &m.encode()).expect("valid message")
}

fn reject(m: Message) -> ConsensusError {
    decode_and_verify(&ctx(), &m.encode()).expect_err("message must be rejected")
}

fn feed(r: &mut Replica, m: Message) -> Vec<Action<Message>> {
    r.handle(Input::Message(verified(m)))
}

/// The driver's next tick, a few milliseconds after the inputs just handled (here: no time at
/// all). Progress the core saw since its last tick never lets the request timer expire on the
/// tick right after it (the core cannot tell how long ago it came), so a test that wants a
/// timeout counted from that progress ticks once first, as the driver does every 5 ms.
fn settle(r: &mut Replica) {
    r.handle(Input::Tick { now_ms: 0 });
}

fn batch(height: u64, proposer: usize, t: Vec<VerifiedTx>) -> Batch {
    Batch {
        header: ordo_chain::BatchHeader::for_txs(
            height,
            1000u64.saturating_add(height),
            validator_key(proposer).public(),
            &t,
        ),
        txs: t,
    }
}

fn pp(view: u64, b: Batch) -> PrePrepare {
    PrePrepare::sign(CHAIN_ID, &validator_key((view % N as u64) as usize), view, b)
}

fn broadcasts(actions: &[Action<Message>]) -> Vec<&Message> {
    actions.iter().filter_map(|a| if let Action::Broadcast(m) = a { Some(m) } else { None }).collect()
}

fn commits(actions: &[Action<Message>]) -> Vec<&ordo_consensus::CommittedBatch> {
    actions.iter().filter_map(|a| if let Action::Commit(c) = a { Some(c) } else { None }).collect()
}

fn prepared_proof(view: u64, b: &Batch, backups: &[usize]) -> PreparedProof {
    let d = b.digest(CHAIN_ID);
    let primary = (view % N as u64) as usize;
    PreparedProof {
        view,
        header: b.header,
        primary_signature: pp(view, b.clone()).signature,
        prepares: backups
            .iter()
            .map(|&i| ValidatorSignature {
                validator: validator_key(i).public(),
                signature: Prepare::sign(CHAIN_ID, &validator_key(i), view, b.header.height, d).signature,
            })
            .filter(|s| s.validator != validator_key(primary).public())
            .collect(),
        txs: Some(b.txs.clone()),
    }
}

fn cert(view: u64, b: &Batch, signers: &[usize]) -> Certificate {
    let d = b.digest(CHAIN_ID);
    let msg = pbft_commit_bytes(CHAIN_ID, view, b.header.height, &d);
    Certificate::Pbft(PbftCertificate {
        view,
        height: b.header.height,
        batch_digest: d,
        signatures: signers
            .iter()
            .map(|&i| ValidatorSignature {
                validator: validator_key(i).public(),
                signature: validator_key(i).sign(&msg),
            })
            .collect(),
    })
}

/// Blocks 1..=n of view 0, empty, each certified by validators 0, 2 and 3, chained from genesis.
fn certified_chain(n: u64) -> Vec<Block> {
    let mut prev = genesis();
    (1..=n)
        .map(|h| {
            let b = batch(h, 0, Vec::new());
            let (blk, _) = Block::build(CHAIN_ID, &prev, b.header, &[], &[], Some(cert(0, &b, &[0, 2, 3])));
            prev = blk.clone();
            blk
        })
        .collect()
}

/// `certified_chain(n)`, verified as a fetch would deliver it.
fn synced_chain(n: u64) -> Vec<Verified<ordo_consensus::CommittedBatch>> {
    certified_chain(n).iter().map(|b| verify_block(&ctx(), b).unwrap()).collect()
}

// ------------------------------------------------------------------ normal case, §4.2

#[test]
fn primary_proposes_a_full_batch_at_once() {
    // Castro & Liskov 2002, §4.2: the primary assigns the next sequence number to a batch and
    // multicasts PRE-PREPARE; Ordo proposes early when batch_max_txs are pending.
    let mut r = replica(0);
    let out = r.handle(Input::ClientTxs(txs(4, 1)));
    assert!(matches!(out[0], Action::PersistSafety(_)), "the record precedes the pre-prepare");
    let b = broadcasts(&out);
    assert_eq!(b.len(), 1);
    let Message::PrePrepare(p) = b[0] else { panic!("expected a pre-prepare") };
    assert_eq!((p.view, p.height(), p.batch.txs.len()), (0, 1, 4));
}

#[test]
fn primary_waits_for_the_batch_timeout() {
    // Castro & Liskov 2002, §5.1.4 (batching): a partial batch waits, bounded by batch_timeout_ms.
    let mut r = replica(0);
    assert!(broadcasts(&r.handle(Input::ClientTxs(txs(1, 2)))).is_empty());
    assert!(broadcasts(&r.handle(Input::Tick { now_ms: 2 })).is_empty());
    let out = r.handle(Input::Tick { now_ms: 5 });
    assert!(matches!(broadcasts(&out)[0], Message::PrePrepare(p) if p.height() == 1));
}

#[test]
fn pipelining_stops_at_the_high_watermark() {
    // Castro & Liskov 2002, §4.2: sequence numbers lie between the low and high watermarks
    // (h, h+L]; with L = 8 the primary pipelines heights 1..=8 and no further.
    let mut r = replica(0);
    let out = r.handle(Input::ClientTxs(txs(40, 3)));
    let heights: Vec<u64> = broadcasts(&out)
        .iter()
        .filter_map(|m| if let Message::PrePrepare(p) = m { Some(p.height()) } else { None })
        .collect();
    assert_eq!(heights, (1..=8).collect::<Vec<_>>());
}

#[test]
fn primary_keeps_at_most_max_in_flight_batches_uncommitted() {
    // A backlog is ordered a few batches at a time: with max_in_flight = 3 the primary proposes
    // heights 1..=3, and height 4 only once height 1 committed.
    let g = genesis();
    let cfg = ordo_consensus::PbftConfig { max_in_flight: 3, ..sim_config() };
    let restore = Restore { safety: None, executed_height: 0, executed_hash: g.hash };
    let mut r = Replica::new(cfg, ctx(), validator_key(0), g.hash, restore, 0).unwrap();
    let proposed = |out: &[Action<Message>]| -> Vec<u64> {
        broadcasts(out)
            .iter()
            .filter_map(|m| if let Message::PrePrepare(p) = m { Some(p.height()) } else { None })
            .collect()
    };
    let out = r.handle(Input::ClientTxs(txs(40, 35)));
    assert_eq!(proposed(&out), vec![1, 2, 3]);
    let Some(Message::PrePrepare(first)) = broadcasts(&out).first().map(|m| (*m).clone()) else { panic!() };
    let d = first.batch.digest(CHAIN_ID);
    let mut out = Vec::new();
    for i in [1, 2] {
        out.extend(feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(i), 0, 1, d))));
    }
    assert!(proposed(&out).is_empty(), "prepared is not committed");
    for i in [1, 2] {
        out.extend(feed(&mut r, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(i), 0, 1, d))));
    }
    assert_eq!(commits(&out).len(), 1);
    assert_eq!(proposed(&out), vec![4]);
}

#[test]
fn the_primary_re_sends_a_pre_prepare_only_to_backups_that_have_not_voted_on_it() {
    // Castro & Liskov 2002, §4.2 with lossy links: a replica re-sends its messages for
    // sequences in flight. A PREPARE or COMMIT from a backup for the same view and digest shows
    // that it holds the batch, so the primary's thousand-transaction PRE-PREPARE goes only to
    // the others; re-sent to a backup that committed it meanwhile, it was verified in full again
    // (docs/performance.md, seventh round). Its own votes are still broadcast.
    // (A request timer far off: the ticks below are retransmissions, not a suspected primary.)
    let cfg = ordo_consensus::PbftConfig {
        view_change_timeout_ms: 60_000,
        view_change_timeout_max_ms: 60_000,
        ..sim_config()
    };
    let mut r = replica_with(0, cfg);
    let out = r.handle(Input::ClientTxs(txs(4, 40)));
    let Message::PrePrepare(p) = broadcasts(&out)[0].clone() else { panic!("expected a pre-prepare") };
    let b = p.batch.clone();
    let d = b.digest(CHAIN_ID);
    let re_sent = |out: &[Action<Message>]| -> Vec<PublicKey> {
        assert!(!broadcasts(out).iter().any(|m| matches!(m, Message::PrePrepare(_))), "never broadcast again");
        let mut to: Vec<PublicKey> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send { to, msg: Message::PrePrepare(q) } if q.height() == 1 => Some(*to),
                _ => None,
            })
            .collect();
        to.sort();
        to
    };
    let keys = |is: &[usize]| -> Vec<PublicKey> {
        let mut k: Vec<PublicKey> = is.iter().map(|i| validator_key(*i).public()).collect();
        k.sort();
        k
    };
    let interval = sim_config().retransmit_interval_ms;
    assert_eq!(re_sent(&r.handle(Input::Tick { now_ms: interval })), keys(&[1, 2, 3]), "nobody voted yet");
    feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(1), 0, 1, d)));
    // A vote for another digest proves nothing about this batch.
    feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(2), 0, 1, Hash([7; 32]))));
    assert_eq!(re_sent(&r.handle(Input::Tick { now_ms: 2 * interval })), keys(&[2, 3]));
    feed(&mut r, commit(3, 0, &b));
    assert_eq!(re_sent(&r.handle(Input::Tick { now_ms: 3 * interval })), keys(&[2]));
}

#[test]
fn backup_persists_then_prepares() {
    // Castro & Liskov 2002, §4.2: a backup accepting a PRE-PREPARE multicasts PREPARE; Ordo's
    // safety record (§4.5 assumption of stable storage) is persisted before the vote leaves.
    let mut r = replica(1);
    let out = feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(2, 4)))));
    assert!(matches!(out[0], Action::PersistSafety(_)));
    assert!(matches!(out[1], Action::Broadcast(Message::Prepare(ref p)) if p.height == 1 && p.view == 0));
}

#[test]
fn prepared_certificate_triggers_commit() {
    // Castro & Liskov 2002, §4.2: prepared = PRE-PREPARE + 2f matching PREPAREs from distinct
    // backups; a prepared replica multicasts COMMIT.
    let mut r = replica(1);
    let b = batch(1, 0, txs(2, 5));
    let d = b.digest(CHAIN_ID);
    feed(&mut r, Message::PrePrepare(pp(0, b)));
    // A PREPARE from the primary does not count.
    assert!(broadcasts(&feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(0), 0, 1, d)))).is_empty());
    let out = feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(2), 0, 1, d)));
    assert!(matches!(out[0], Action::PersistSafety(_)));
    assert!(matches!(broadcasts(&out)[0], Message::Commit(c) if c.digest == d));
}

#[test]
fn commit_needs_2f_plus_1_commits_and_carries_the_certificate() {
    // Castro & Liskov 2002, §4.2: committed-local needs 2f+1 matching COMMITs; protocol §6: they
    // form the block certificate as they stand.
    let mut r = replica(1);
    let b = batch(1, 0, txs(3, 6));
    let d = b.digest(CHAIN_ID);
    feed(&mut r, Message::PrePrepare(pp(0, b)));
    feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(2), 0, 1, d)));
    // Own COMMIT + one more = 2f: not enough.
    let out = feed(&mut r, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(2), 0, 1, d)));
    assert!(commits(&out).is_empty(), "2f commits must not commit");
    let out = feed(&mut r, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(3), 0, 1, d)));
    let c = commits(&out);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].header.height, 1);
    c[0].certificate.verify(CHAIN_ID, &committee(N), CertKind::Pbft, 1, &d).expect("a valid protocol §6 certificate");
}

#[test]
fn commits_are_handed_over_in_height_order() {
    // Castro & Liskov 2002, §4.2: a replica executes requests in sequence-number order, after
    // all lower sequence numbers.
    let mut r = replica(1);
    let b1 = batch(1, 0, txs(1, 7));
    let b2 = batch(2, 0, txs(1, 8));
    for b in [&b2, &b1] {
        feed(&mut r, Message::PrePrepare(pp(0, b.clone())));
    }
    let commit_all = |r: &mut Replica, b: &Batch| {
        let mut out = Vec::new();
        for i in [0, 2, 3] {
            out.extend(feed(
                r,
                Message::Commit(Commit::sign(CHAIN_ID, &validator_key(i), 0, b.header.height, b.digest(CHAIN_ID))),
            ));
        }
        out
    };
    assert!(commits(&commit_all(&mut r, &b2)).is_empty(), "height 2 waits for height 1");
    let out = commit_all(&mut r, &b1);
    let hs: Vec<u64> = commits(&out).iter().map(|c| c.header.height).collect();
    assert_eq!(hs, vec![1, 2]);
}

// ------------------------------------------------------------------ checkpoints, §4.3

#[test]
fn checkpoint_becomes_stable_at_2f_plus_1_and_garbage_collects() {
    // Castro & Liskov 2002, §4.3: a checkpoint with 2f+1 matching CHECKPOINT messages is stable;
    // the replica discards everything at or below it and moves the low watermark.
    let mut r = replica(1);
    let hash = Hash([4; 32]);
    // Pretend heights 1..=4 were committed by feeding certified blocks.
    // Asking for blocks first is what a lagging replica does; here they arrive unasked.
    let out = r.handle(Input::SyncedBlocks(synced_chain(4)));
    assert_eq!(commits(&out).len(), 4);
    let out = r.handle(Input::Executed { height: 4, block_hash: hash });
    assert!(matches!(broadcasts(&out)[0], Message::Checkpoint(c) if c.height == 4 && c.block_hash == hash));
    feed(&mut r, Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(2), 4, hash)));
    assert_eq!(r.status().stable_height, 0, "2f checkpoints are not stable");
    feed(&mut r, Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(3), 4, hash)));
    assert_eq!(r.status().stable_height, 4);
    let d = batch(3, 0, Vec::new()).digest(CHAIN_ID);
    feed(&mut r, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(2), 0, 3, d)));
    assert!(matches!(r.last_drop(), Some(ConsensusError::OutsideWatermarks { height: 3, low: 4, .. })));
}

#[test]
fn a_replica_re_sends_its_newest_checkpoint_until_it_is_stable() {
    // Castro & Liskov 2002, §4.3: a checkpoint becomes stable with 2f+1 CHECKPOINT messages;
    // replicas re-send what others may have missed. A replica re-sends its stable checkpoint (a
    // laggard needs 2f+1 of it) and its newest one while that is not stable yet (else replicas
    // that lost its first copies never make it stable, and stay at different stable checkpoints).
    let mut r = replica(1);
    assert_eq!(commits(&r.handle(Input::SyncedBlocks(synced_chain(8)))).len(), 8);
    let (h4, h8) = (Hash([4; 32]), Hash([8; 32]));
    r.handle(Input::Executed { height: 4, block_hash: h4 });
    for i in [2, 3] {
        feed(&mut r, Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(i), 4, h4)));
    }
    assert_eq!(r.status().stable_height, 4);
    r.handle(Input::Executed { height: 8, block_hash: h8 });
    let out = r.handle(Input::Tick { now_ms: 150 });
    let resent: Vec<(u64, Hash)> = broadcasts(&out)
        .iter()
        .filter_map(|m| if let Message::Checkpoint(c) = m { Some((c.height, c.block_hash)) } else { None })
        .collect();
    assert_eq!(resent, vec![(4, h4), (8, h8)]);
}

#[test]
fn replica_behind_a_stable_checkpoint_fetches_certified_blocks() {
    // Castro & Liskov 2002, §4.3 (state transfer): a replica that learns of a stable checkpoint
    // above its state fetches it; Ordo fetches certified blocks and verifies each certificate.
    let mut r = replica(3);
    let hash = Hash([8; 32]);
    let mut out = Vec::new();
    for i in 0..3 {
        out.extend(feed(&mut r, Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(i), 8, hash))));
    }
    let fetch = out.iter().find_map(|a| {
        if let Action::FetchBlocks { from_height, to_height, .. } = a {
            Some((*from_height, *to_height))
        } else {
            None
        }
    });
    assert_eq!(fetch, Some((1, 8)));
    // A block whose certificate has only 2f signatures is refused by verification.
    let b = batch(1, 0, Vec::new());
    let (blk, _) = Block::build(CHAIN_ID, &genesis(), b.header, &[], &[], Some(cert(0, &b, &[0, 2])));
    assert!(matches!(verify_block(&ctx(), &blk), Err(ConsensusError::BadSyncedBlock { height: 1, .. })));
}

// ------------------------------------------------------------------ view change, §4.4–§4.5

#[test]
fn a_replica_fetching_blocks_does_not_ask_again_while_an_answer_is_under_way() {
    // Castro & Liskov 2002, §4.3 (state transfer), as Ordo fetches certified blocks: a replica far
    // behind sees a new stable checkpoint every K heights, each raising its catch-up target. A
    // starved backup asked for the same 64 blocks again at each raise, from another peer, while
    // the first answer was still being verified (`scripts/starved-backup.sh`). The answer under
    // way asks for the rest; the retransmission timer covers an answer that never comes.
    let mut r = replica(3);
    let chain = certified_chain(8);
    let fetches = |out: &[Action<Message>]| -> Vec<(u64, u64)> {
        out.iter()
            .filter_map(|a| match a {
                Action::FetchBlocks { from_height, to_height, .. } => Some((*from_height, *to_height)),
                _ => None,
            })
            .collect()
    };
    let stable_at = |r: &mut Replica, h: u64| -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for i in [0, 1, 2] {
            let hash = chain[h as usize - 1].hash;
            out.extend(feed(r, Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(i), h, hash))));
        }
        fetches(&out)
    };
    assert_eq!(stable_at(&mut r, 4), [(1, 4)]);
    assert_eq!(stable_at(&mut r, 8), [], "the answer for 1..=4 is under way");
    assert_eq!(r.status().stable_height, 8);
    // The answer comes: the rest is asked for at once.
    let synced: Vec<_> = chain[..4].iter().map(|b| verify_block(&ctx(), b).unwrap()).collect();
    let out = r.handle(Input::SyncedBlocks(synced));
    assert_eq!(commits(&out).len(), 4);
    assert_eq!(fetches(&out), [(5, 8)]);
    // A late copy of the answer it already had is not an answer: no request follows it.
    let stale: Vec<_> = chain[..4].iter().map(|b| verify_block(&ctx(), b).unwrap()).collect();
    assert_eq!(fetches(&r.handle(Input::SyncedBlocks(stale))), []);
    // No answer for a retransmission interval: the timer asks again, then waits twice as long
    // for each request left unanswered (the answer may be slow to verify, not lost).
    let interval = sim_config().retransmit_interval_ms;
    let mut asked = Vec::new();
    for now_ms in (1..=16 * interval).step_by(5) {
        if !fetches(&r.handle(Input::Tick { now_ms })).is_empty() {
            asked.push(now_ms);
        }
    }
    assert_eq!(asked, [interval + 1, 3 * interval + 1, 7 * interval + 1, 15 * interval + 1]);
    // An answer resets the wait.
    let now = 16 * interval + 10;
    assert_eq!(fetches(&r.handle(Input::Tick { now_ms: now })), []);
    let synced: Vec<_> = chain[4..6].iter().map(|b| verify_block(&ctx(), b).unwrap()).collect();
    let out = r.handle(Input::SyncedBlocks(synced));
    assert_eq!(fetches(&out), [(7, 8)], "the rest at once");
    assert_eq!(fetches(&r.handle(Input::Tick { now_ms: now + interval - 1 })), []);
    assert_eq!(fetches(&r.handle(Input::Tick { now_ms: now + interval })), [(7, 8)]);
}

#[test]
fn catch_up_asks_each_peer_once_then_waits_for_the_timer_when_nobody_has_the_block() {
    // After a view change, a height may hold COMMITs while no validator has committed it yet:
    // each answer to a fetch is empty. Asking the next peer at once, every round trip, flooded
    // the committee with requests (a release sweep logged ~140 in 1.2 s on one node; docs/
    // performance.md, fourth round).
    // Each peer is asked once; then only the retransmission timer asks again.
    let mut r = replica(3);
    let b = batch(1, 0, txs(2, 90));
    let d = b.digest(CHAIN_ID);
    for i in 0..3 {
        feed(&mut r, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(i), 0, 1, d)));
    }
    let fetches = |out: &[Action<Message>]| -> Vec<PublicKey> {
        out.iter().filter_map(|a| if let Action::FetchBlocks { from, .. } = a { Some(*from) } else { None }).collect()
    };
    // Two retransmission ticks without progress: the replica is stuck and starts fetching.
    let interval = sim_config().retransmit_interval_ms;
    r.handle(Input::Tick { now_ms: interval });
    let first = fetches(&r.handle(Input::Tick { now_ms: 2 * interval }));
    assert_eq!(first.len(), 1, "a stuck replica asks a peer");
    let mut asked = first.clone();
    // Empty answers: the next peer at once, until all three have answered.
    for _ in 0..2 {
        let next = fetches(&r.handle(Input::SyncedBlocks(Vec::new())));
        assert_eq!(next.len(), 1, "an empty answer moves on to the next peer");
        asked.extend(next);
    }
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), 3, "each other validator asked once: {asked:?}");
    assert!(fetches(&r.handle(Input::SyncedBlocks(Vec::new()))).is_empty(), "nobody has it: wait");
    assert!(fetches(&r.handle(Input::Tick { now_ms: 2 * interval + 5 })).is_empty());
    // The timer asks again; then the block, certified, arrives and is committed.
    let again = fetches(&r.handle(Input::Tick { now_ms: 3 * interval }));
    assert_eq!(again.len(), 1, "the retransmission timer asks again");
    let (blk, _) = Block::build(CHAIN_ID, &genesis(), b.header, &b.txs, &[false; 2], Some(cert(0, &b, &[0, 1, 2])));
    let out = r.handle(Input::SyncedBlocks(vec![verify_block(&ctx(), &blk).unwrap()]));
    assert_eq!(commits(&out).len(), 1);
    assert!(fetches(&out).is_empty(), "the target is reached");
}

#[test]
fn backup_with_an_unordered_request_starts_a_view_change() {
    // Castro & Liskov 2002, §4.4: a backup whose timer expires on a pending request moves to
    // view v+1 and multicasts VIEW-CHANGE.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 9)));
    assert!(broadcasts(&r.handle(Input::Tick { now_ms: 299 })).is_empty());
    let out = r.handle(Input::Tick { now_ms: 300 });
    assert!(matches!(out[0], Action::PersistSafety(_)));
    assert!(matches!(broadcasts(&out)[0], Message::ViewChange(vc) if vc.view == 1));
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
}

#[test]
fn request_timer_restarts_when_a_request_executes() {
    // Castro & Liskov 2002, §4.4: the timer stops when the backup is no longer waiting for the
    // request it was started for, "but restarts it if at that point it is waiting to execute
    // some other request". Under a backlog the oldest pending transaction waits longer than the
    // timeout while the primary commits steadily; that must not look like a faulty primary.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 30)));
    r.handle(Input::Tick { now_ms: 250 });
    let b = batch(1, 0, txs(2, 31));
    let d = b.digest(CHAIN_ID);
    feed(&mut r, Message::PrePrepare(pp(0, b)));
    let mut out = Vec::new();
    for i in [0, 2, 3] {
        out.extend(feed(&mut r, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(i), 0, 1, d))));
    }
    assert_eq!(commits(&out).len(), 1, "height 1 commits at 250 ms");
    for now_ms in [300, 549] {
        let out = r.handle(Input::Tick { now_ms });
        assert!(broadcasts(&out).iter().all(|m| !matches!(m, Message::ViewChange(_))), "at {now_ms} ms");
        assert_eq!(r.status().view, 0);
    }
    // No progress for a whole timeout after the last commit: now the primary is suspected.
    r.handle(Input::Tick { now_ms: 550 });
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
}

#[test]
fn view_change_leaves_out_executed_bodies_and_the_new_primary_fetches_them() {
    // Castro & Liskov 2002, §4.4 with bodies by reference: a VIEW-CHANGE carries the body of a
    // prepared batch only above its sender's executed height. A new primary that lacks a chosen
    // body fetches the certified block from the senders that reported it, then sends NEW-VIEW.
    let b1 = batch(1, 0, txs(3, 32));
    let d1 = b1.digest(CHAIN_ID);
    let gen = CheckpointProof::genesis(genesis().hash);
    let mut slim = prepared_proof(0, &b1, &[1, 2, 3]);
    slim.txs = None;
    // Replica 2 executed height 1: its own VIEW-CHANGE leaves the body out.
    let mut r2 = replica(2);
    feed(&mut r2, Message::PrePrepare(pp(0, b1.clone())));
    feed(&mut r2, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(1), 0, 1, d1)));
    for i in [0, 1] {
        feed(&mut r2, Message::Commit(Commit::sign(CHAIN_ID, &validator_key(i), 0, 1, d1)));
    }
    r2.handle(Input::Executed { height: 1, block_hash: Hash([1; 32]) });
    r2.handle(Input::ClientTxs(txs(1, 33)));
    settle(&mut r2);
    let out = r2.handle(Input::Tick { now_ms: 300 });
    let vc2 = broadcasts(&out)
        .into_iter()
        .find_map(|m| if let Message::ViewChange(vc) = m { Some(vc.clone()) } else { None })
        .expect("replica 2 asks for view 1");
    assert_eq!(vc2.prepared.len(), 1);
    assert!(vc2.prepared[0].txs.is_none(), "an executed batch's body is left out");

    // Replica 1, the primary of view 1, never saw batch 1.
    let mut r1 = replica(1);
    r1.handle(Input::ClientTxs(txs(1, 34)));
    r1.handle(Input::Tick { now_ms: 300 });
    assert_eq!((r1.status().view, r1.status().mode), (1, Mode::ViewChange));
    feed(&mut r1, Message::ViewChange(vc2));
    let out = feed(&mut r1, Message::ViewChange(ViewChange::sign(CHAIN_ID, &validator_key(3), 1, gen, vec![slim])));
    assert!(broadcasts(&out).iter().all(|m| !matches!(m, Message::NewView(_))), "no NEW-VIEW without the body");
    let fetch = out.iter().find_map(|a| match a {
        Action::FetchBlocks { from, from_height, to_height } => Some((*from, *from_height, *to_height)),
        _ => None,
    });
    let (from, lo, hi) = fetch.expect("the new primary fetches the missing body");
    assert!([validator_key(2).public(), validator_key(3).public()].contains(&from));
    assert_eq!((lo, hi), (1, 1));
    let (blk, _) = Block::build(CHAIN_ID, &genesis(), b1.header, &b1.txs, &[false; 3], Some(cert(0, &b1, &[0, 1, 2])));
    let synced = verify_block(&ctx(), &blk).expect("a certified block");
    let out = r1.handle(Input::SyncedBlocks(vec![synced]));
    assert_eq!(commits(&out).len(), 1);
    let nv = broadcasts(&out)
        .into_iter()
        .find_map(|m| if let Message::NewView(nv) = m { Some(nv.clone()) } else { None })
        .expect("NEW-VIEW once the body is there");
    assert_eq!(nv.bodies.len(), 1);
    assert_eq!(nv.bodies[0].digest(CHAIN_ID), d1, "the re-proposal is the committed batch");
    assert_eq!((r1.status().view, r1.status().mode), (1, Mode::Normal));
}

#[test]
fn request_timer_measures_the_primary_not_this_backups_backlog() {
    // Castro & Liskov 2002, §4.4: a backup suspects the primary when a request it waits for is not
    // executed in time, and the timer restarts when a request executes. A backup behind on its
    // own work still sees the committee execute: a new height certified in its view (2f+1
    // COMMITs), or a PRE-PREPARE of its view for a new height, restarts the timer, and so does
    // being behind (its next height is certified but it lacks the body, so it cannot execute
    // it yet). Only the primary's silence makes it suspect the primary.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 40)));
    // At 200 ms the committee certifies height 1, whose PRE-PREPARE this backup never got.
    r.handle(Input::Tick { now_ms: 200 });
    let b1 = batch(1, 0, txs(2, 41));
    let mut out = Vec::new();
    for i in [0, 2, 3] {
        out.extend(feed(&mut r, commit(i, 0, &b1)));
    }
    assert!(commits(&out).is_empty(), "no body, no commit here");
    // It is behind the committee for as long as it lacks the body: no suspicion.
    for now_ms in [300, 499, 5_000] {
        let out = r.handle(Input::Tick { now_ms });
        assert!(broadcasts(&out).iter().all(|m| !matches!(m, Message::ViewChange(_))), "suspected at {now_ms} ms");
    }
    // The body arrives at 5 s (height 1 commits), and with it a PRE-PREPARE for the new height 2.
    assert_eq!(commits(&feed(&mut r, Message::PrePrepare(pp(0, b1.clone())))).len(), 1);
    let out = feed(&mut r, Message::PrePrepare(pp(0, batch(2, 0, txs(1, 43)))));
    assert!(matches!(broadcasts(&out)[..], [Message::Prepare(p)] if p.height == 2));
    for now_ms in [5_001, 5_299] {
        let out = r.handle(Input::Tick { now_ms });
        assert!(broadcasts(&out).iter().all(|m| !matches!(m, Message::ViewChange(_))), "suspected at {now_ms} ms");
        assert_eq!((r.status().view, r.status().mode), (0, Mode::Normal));
    }
    // No progress for a whole timeout: now the primary is suspected.
    let out = r.handle(Input::Tick { now_ms: 5_300 });
    assert!(matches!(broadcasts(&out)[0], Message::ViewChange(v) if v.view == 1));
}

#[test]
fn a_replica_behind_a_stable_checkpoint_takes_the_lag_for_its_own() {
    // Castro & Liskov 2002, §4.3 and §4.4: 2f+1 CHECKPOINTs above a replica's committed height say
    // that the committee executed past it; the slots up to the checkpoint are collected, so it
    // can only fetch those blocks, and until it has them it is behind on its own work, not
    // waiting on a faulty primary. A CPU-starved backup of a release testnet suspected its healthy
    // primary in this state in every burst (`scripts/starved-backup.sh`: committed 381, stable
    // 384, no PRE-PREPARE it could accept for 3 s). Once caught up, the timer applies again.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 60)));
    r.handle(Input::Tick { now_ms: 100 });
    let tip = certified_chain(4)[3].hash;
    let mut out = Vec::new();
    for i in [0, 2, 3] {
        out.extend(feed(&mut r, Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(i), 4, tip))));
    }
    assert_eq!(r.status().stable_height, 4);
    assert!(out.iter().any(|a| matches!(a, Action::FetchBlocks { from_height: 1, to_height: 4, .. })));
    // Its fetch is slow (every answer empty, or late): no suspicion, however long.
    for now_ms in [400, 401, 5_000] {
        r.handle(Input::Tick { now_ms });
        assert_eq!((r.status().view, r.status().mode), (0, Mode::Normal), "suspected at {now_ms} ms");
        assert_eq!(r.take_suspicion(), None);
    }
    // The blocks arrive at 5 s; its transaction is still pending and the primary now shows nothing
    // for a whole timeout: the primary is suspected.
    assert_eq!(commits(&r.handle(Input::SyncedBlocks(synced_chain(4)))).len(), 4);
    r.handle(Input::Tick { now_ms: 5_299 });
    assert_eq!(r.status().view, 0);
    r.handle(Input::Tick { now_ms: 5_300 });
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
}

#[test]
fn the_request_timer_never_expires_on_the_first_tick_after_progress() {
    // Castro & Liskov 2002, §4.4: the timer measures how long the primary shows no progress. The
    // core learns the time only from the driver's ticks; progress seen between two ticks happened
    // at some moment between them. A driver busy for seconds between two ticks (a starved backup
    // executing a 64-block catch-up took 6 s) would otherwise count its own stall against the
    // primary, on the very tick that follows the progress it just saw.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 61)));
    r.handle(Input::Tick { now_ms: 100 });
    feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(1, 62)))));
    // The next tick comes 6 s later: the timer restarts there.
    r.handle(Input::Tick { now_ms: 6_000 });
    assert_eq!((r.status().view, r.status().mode), (0, Mode::Normal));
    r.handle(Input::Tick { now_ms: 6_299 });
    assert_eq!(r.status().view, 0);
    // A whole timeout from there without progress: the primary is suspected.
    r.handle(Input::Tick { now_ms: 6_300 });
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    // Without progress between them, a long gap between two ticks is the primary's silence.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 63)));
    r.handle(Input::Tick { now_ms: 100 });
    r.handle(Input::Tick { now_ms: 6_000 });
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
}

#[test]
fn a_pre_prepare_far_ahead_of_the_certified_heights_is_not_progress() {
    // Castro & Liskov 2002, §4.4 (the timer protects against a faulty primary): a PRE-PREPARE
    // restarts the request timer only within max_in_flight heights of what the backup saw
    // certified, as an honest primary never proposes further ahead; a faulty primary proposing
    // batches that never commit postpones its suspicion by at most max_in_flight timeouts.
    let cfg = ordo_consensus::PbftConfig { max_in_flight: 2, ..sim_config() };
    for (height, suspected_at_ms) in [(3, 300), (2, 500)] {
        let mut r = replica_with(1, cfg.clone());
        r.handle(Input::ClientTxs(txs(1, 55)));
        r.handle(Input::Tick { now_ms: 200 });
        let out = feed(&mut r, Message::PrePrepare(pp(0, batch(height, 0, txs(1, 56)))));
        assert!(matches!(broadcasts(&out)[..], [Message::Prepare(p)] if p.height == height), "accepted all the same");
        r.handle(Input::Tick { now_ms: suspected_at_ms - 1 });
        assert_eq!(r.status().view, 0, "height {height}");
        r.handle(Input::Tick { now_ms: suspected_at_ms });
        assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange), "height {height}");
    }
}

#[test]
fn a_replica_whose_timer_expires_says_once_what_it_had_seen() {
    // The node logs why its validator left the view; only the timer's own view change has a
    // suspicion to give, and it is given once.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 77)));
    r.handle(Input::Tick { now_ms: 299 });
    assert_eq!(r.take_suspicion(), None, "nothing suspected before the timeout");
    r.handle(Input::Tick { now_ms: 300 });
    assert_eq!(r.status().mode, Mode::ViewChange);
    let why = r.take_suspicion().expect("the timer's view change says why");
    assert!(why.starts_with("no progress in view 0 for 300 ms: committed 0, executed 0"), "{why}");
    assert!(why.contains("1 transactions pending (oldest 300 ms)"), "{why}");
    assert_eq!(r.take_suspicion(), None, "said once");
    // Joining a view change that others asked for is no suspicion of its own.
    let mut r = replica(2);
    for i in [0, 3] {
        feed(&mut r, Message::ViewChange(vc(i, 1)));
    }
    assert_eq!(r.status().mode, Mode::ViewChange);
    assert_eq!(r.take_suspicion(), None);
}

#[test]
fn escalation_needs_2f_plus_1_view_changes_and_backs_off_exponentially() {
    // Castro & Liskov 2002, §4.5.2: "If the timer of replica i expires after it has received 2f+1
    // VIEW-CHANGE messages for view v+1 [and no valid NEW-VIEW], it starts the view change for
    // view v+2", waiting twice as long (capped at view_change_timeout_max_ms, 600 ms here). A
    // replica alone never holds 2f+1, so it never goes past the view it asked for.
    let cfg = ordo_consensus::PbftConfig { view_change_timeout_max_ms: 600, ..sim_config() };
    let mut r = replica_with(0, cfg);
    r.handle(Input::ClientTxs(txs(1, 10)));
    r.handle(Input::Tick { now_ms: 300 });
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    // Alone, with its transaction still pending, for a long time: it stays in view 1.
    for now_ms in [600, 1200, 2400, 9_999] {
        r.handle(Input::Tick { now_ms });
        assert_eq!(r.status().view, 1, "alone at {now_ms} ms");
    }
    // Each row: at `at` ms two others ask for the view too (2f+1 with its own); it escalates a
    // timeout later, and that timeout doubles, then stays at the cap.
    for (at, view, wait_ms) in [(10_000, 1, 300), (20_000, 2, 600), (30_000, 3, 600)] {
        r.handle(Input::Tick { now_ms: at });
        let others: Vec<usize> = [1, 2, 3].into_iter().filter(|&i| i != view as usize).collect();
        for i in others {
            feed(&mut r, Message::ViewChange(vc(i, view)));
        }
        r.handle(Input::Tick { now_ms: at + wait_ms - 1 });
        assert_eq!(r.status().view, view, "at {} ms", at + wait_ms - 1);
        let out = r.handle(Input::Tick { now_ms: at + wait_ms });
        assert!(matches!(broadcasts(&out)[0], Message::ViewChange(v) if v.view == view + 1));
        assert_eq!((r.status().view, r.status().mode), (view + 1, Mode::ViewChange));
        // Alone again in the new view: no further escalation.
        r.handle(Input::Tick { now_ms: at + 5_000 });
        assert_eq!(r.status().view, view + 1);
    }
}

#[test]
fn lone_replica_rejoins_the_committee_as_a_non_voting_observer() {
    // Castro & Liskov 2002, §4.4/§4.5.2 with Ordo's rejoin rule: a replica that asked alone for
    // view 1 (its backlog made it suspect a healthy primary) learns from a commit certificate of
    // view 0 above its own height that the committee is still committing in view 0. It follows
    // view 0 again, but as an observer: its VIEW-CHANGE promised it would not vote below view 1,
    // and a NEW-VIEW may still use that VIEW-CHANGE, so it stores and commits view 0's batches and
    // signs nothing. The promise is in the persisted record and survives a restart.
    let mut r = replica(3);
    r.handle(Input::ClientTxs(txs(1, 44)));
    let out = r.handle(Input::Tick { now_ms: 300 });
    assert!(matches!(broadcasts(&out)[0], Message::ViewChange(v) if v.view == 1));
    let b1 = batch(1, 0, txs(2, 45));
    let b2 = batch(2, 0, txs(2, 46));
    // While changing view it drops view 0's PRE-PREPARE, and 2f COMMITs are no certificate.
    feed(&mut r, Message::PrePrepare(pp(0, b1.clone())));
    assert!(matches!(r.last_drop(), Some(ConsensusError::StaleView { view: 0, current: 1 })));
    for i in [0, 1] {
        assert!(feed(&mut r, commit(i, 0, &b1)).is_empty());
    }
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    // The third COMMIT completes the certificate: it rejoins view 0 as an observer.
    let out = feed(&mut r, commit(2, 0, &b1));
    let record = persisted(&out).expect("the observer state is persisted");
    assert_eq!((record.view, record.in_view_change, record.observed_view), (1, true, Some(0)));
    assert!(matches!(out.last(), Some(Action::StatusChanged(s)) if s.view == 0 && s.mode == Mode::Normal));
    assert_eq!(votes(&out), 0);
    assert_eq!((r.status().view, r.status().mode, r.promised_view()), (0, Mode::Normal, 1));
    assert!(r.is_observer());
    // The body arrives again: height 1 commits. Height 2 goes through the whole normal case
    // without a single vote from this replica, and commits on the others' certificate.
    let mut out = feed(&mut r, Message::PrePrepare(pp(0, b1.clone())));
    out.extend(feed(&mut r, Message::PrePrepare(pp(0, b2.clone()))));
    for i in [1, 2] {
        out.extend(feed(
            &mut r,
            Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(i), 0, 2, b2.digest(CHAIN_ID))),
        ));
    }
    for i in [0, 1, 2] {
        out.extend(feed(&mut r, commit(i, 0, &b2)));
    }
    assert_eq!(votes(&out), 0, "an observer signs no vote below its promise");
    let heights: Vec<u64> = commits(&out).iter().map(|c| c.header.height).collect();
    assert_eq!(heights, vec![1, 2]);
    // Its own request timer never asks for a view below the promise; at the promise it resumes
    // the view change it promised (a fresh, equally truthful VIEW-CHANGE for view 1).
    r.handle(Input::ClientTxs(txs(1, 47)));
    settle(&mut r);
    let out = r.handle(Input::Tick { now_ms: 10_000 });
    assert!(matches!(broadcasts(&out)[0], Message::ViewChange(v) if v.view == 1));
    assert_eq!((r.status().view, r.status().mode, r.promised_view()), (1, Mode::ViewChange, 1));

    // A restart as an observer keeps the promise.
    let mut r = replica(3);
    r.handle(Input::ClientTxs(txs(1, 44)));
    r.handle(Input::Tick { now_ms: 300 });
    feed(&mut r, commit(0, 0, &b1));
    feed(&mut r, commit(1, 0, &b1));
    let out = feed(&mut r, commit(2, 0, &b1));
    let Some(Action::PersistSafety(w)) = out.first() else { panic!("record first") };
    let mut r = restored(3, stored(w));
    assert_eq!((r.status().view, r.status().mode, r.promised_view()), (0, Mode::Normal, 1));
    let out = feed(&mut r, Message::PrePrepare(pp(0, b1.clone())));
    assert_eq!(votes(&out), 0, "still no vote in view 0 after the restart");
}

#[test]
fn a_lone_replica_rejoins_only_on_news_of_the_committee() {
    // Castro & Liskov 2002, §4.5.2 with Ordo's rejoin rule: COMMITs are re-sent for a long time,
    // so a certificate of a height this replica had already seen certified when it asked is no
    // evidence that the committee still commits. Committing a batch of the lower view above the
    // height it had committed when it asked is: the committee is ahead in that view (this also
    // brings it back once the committee went idle, when no new certificate will come).
    let mut r = replica(3);
    r.handle(Input::ClientTxs(txs(1, 57)));
    let (b1, b2) = (batch(1, 0, Vec::new()), batch(2, 0, Vec::new()));
    // Height 2 is certified (height 1 is not, so it is not behind), bodies unknown.
    for i in [0, 1, 2] {
        feed(&mut r, commit(i, 0, &b2));
    }
    settle(&mut r);
    r.handle(Input::Tick { now_ms: 300 });
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    // The same certificate again is old news.
    for i in [0, 1, 2] {
        feed(&mut r, commit(i, 0, &b2));
    }
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    // Fetched, certified blocks 1 and 2 of view 0 commit here: it rejoins view 0 as an observer.
    let (blk1, _) = Block::build(CHAIN_ID, &genesis(), b1.header, &[], &[], Some(cert(0, &b1, &[0, 1, 2])));
    let (blk2, _) = Block::build(CHAIN_ID, &blk1, b2.header, &[], &[], Some(cert(0, &b2, &[0, 1, 2])));
    let out =
        r.handle(Input::SyncedBlocks(vec![verify_block(&ctx(), &blk1).unwrap(), verify_block(&ctx(), &blk2).unwrap()]));
    assert_eq!(commits(&out).len(), 2);
    assert_eq!(votes(&out), 0);
    assert_eq!((r.status().view, r.status().mode, r.promised_view()), (0, Mode::Normal, 1));
    assert_eq!(r.counters().rejoins, 1);
}

#[test]
fn a_replica_in_a_view_change_that_f_plus_1_asked_for_does_not_rejoin() {
    // Castro & Liskov 2002, §4.5.2: once f+1 replicas asked for view v+1, every other replica
    // joins, so the view change is under way (a late certificate of view v only tells of a batch
    // the NEW-VIEW will carry); only a replica alone in its view change goes back.
    let mut r = replica(3);
    r.handle(Input::ClientTxs(txs(1, 48)));
    r.handle(Input::Tick { now_ms: 300 });
    feed(&mut r, Message::ViewChange(vc(0, 1)));
    let b1 = batch(1, 0, txs(1, 49));
    for i in [0, 1, 2] {
        feed(&mut r, commit(i, 0, &b1));
    }
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
}

#[test]
fn an_observer_votes_again_from_the_committees_next_view_change() {
    // Castro & Liskov 2002, §4.5.2: f+1 VIEW-CHANGEs for a view make a replica join it. For an
    // observer whose promise is that view, joining means resuming its view change; the NEW-VIEW
    // then makes it a full voter again.
    let mut r = replica(3);
    r.handle(Input::ClientTxs(txs(1, 50)));
    r.handle(Input::Tick { now_ms: 300 });
    let b1 = batch(1, 0, txs(1, 51));
    for i in [0, 1, 2] {
        feed(&mut r, commit(i, 0, &b1));
    }
    assert!(r.is_observer());
    // Its own VIEW-CHANGE and one other are not f+1 others.
    assert!(broadcasts(&feed(&mut r, Message::ViewChange(vc(0, 1)))).is_empty());
    let out = feed(&mut r, Message::ViewChange(vc(2, 1)));
    let mine = broadcasts(&out)
        .into_iter()
        .find_map(|m| if let Message::ViewChange(v) = m { Some(v.clone()) } else { None })
        .expect("it resumes its view change");
    assert_eq!(mine.view, 1);
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    let vcs = vec![vc(0, 1), vc(2, 1), mine];
    let plan = compute_plan(CHAIN_ID, &committee(N), 1, 5, &vcs, &|_| None).unwrap();
    let nv = NewView::sign(CHAIN_ID, &validator_key(1), 1, 5, &vcs, &plan);
    feed(&mut r, Message::NewView(nv));
    assert_eq!((r.status().view, r.status().mode, r.promised_view()), (1, Mode::Normal, 1));
    assert!(!r.is_observer());
    let out = feed(&mut r, Message::PrePrepare(pp(1, batch(1, 1, txs(1, 52)))));
    assert!(matches!(broadcasts(&out)[..], [Message::Prepare(p)] if p.view == 1));
}

#[test]
fn a_replica_behind_in_views_gets_the_new_view_it_missed() {
    // Castro & Liskov 2002, §4.5.2 (a replica that missed a view change must learn of the new
    // view): a replica that asks for a view at or below the one the others are in is sent the
    // NEW-VIEW that started it, at most once per retransmission interval; it accepts it and
    // enters that view. A replica alone does not escalate, so this is how it finds the committee.
    let gen = CheckpointProof::genesis(genesis().hash);
    let vcs: Vec<ViewChange> =
        [1, 2, 3].iter().map(|&i| ViewChange::sign(CHAIN_ID, &validator_key(i), 2, gen.clone(), Vec::new())).collect();
    let plan = compute_plan(CHAIN_ID, &committee(N), 2, 5, &vcs, &|_| None).unwrap();
    let nv = NewView::sign(CHAIN_ID, &validator_key(2), 2, 5, &vcs, &plan);
    let mut r3 = replica(3);
    feed(&mut r3, Message::NewView(nv));
    assert_eq!((r3.status().view, r3.status().mode), (2, Mode::Normal));
    // Validator 0 asks for view 1, which the committee passed.
    let mut r0 = replica(0);
    r0.handle(Input::ClientTxs(txs(1, 53)));
    let out = r0.handle(Input::Tick { now_ms: 300 });
    let ask = broadcasts(&out)
        .into_iter()
        .find_map(|m| if let Message::ViewChange(v) = m { Some(v.clone()) } else { None })
        .expect("validator 0 asks for view 1");
    let out = feed(&mut r3, Message::ViewChange(ask.clone()));
    let answer = out
        .iter()
        .find_map(|a| match a {
            Action::Send { to, msg: Message::NewView(nv) } if *to == validator_key(0).public() => Some(nv.clone()),
            _ => None,
        })
        .expect("the NEW-VIEW of view 2 goes back");
    assert!(feed(&mut r3, Message::ViewChange(ask.clone())).is_empty(), "once per retransmission interval");
    r3.handle(Input::Tick { now_ms: 150 });
    assert_eq!(feed(&mut r3, Message::ViewChange(ask)).len(), 1, "and again after it");
    feed(&mut r0, Message::NewView(answer));
    assert_eq!((r0.status().view, r0.status().mode), (2, Mode::Normal));
}

#[test]
fn a_certificate_of_a_higher_view_makes_a_replica_ask_for_that_view() {
    // Castro & Liskov 2002, §4.5.2: f+1 VIEW-CHANGEs for a higher view prove an honest replica
    // left this one; 2f+1 COMMITs of a higher view prove f+1 honest replicas entered it. The
    // replica asks for that view, and the NEW-VIEW comes back in answer.
    let mut r = replica(1);
    let b1 = batch(1, 2, txs(1, 54));
    let mut out = Vec::new();
    for i in [0, 2, 3] {
        out.extend(feed(&mut r, commit(i, 2, &b1)));
    }
    assert!(matches!(broadcasts(&out)[0], Message::ViewChange(v) if v.view == 2));
    assert_eq!((r.status().view, r.status().mode), (2, Mode::ViewChange));
}

#[test]
fn joins_a_higher_view_on_f_plus_1_view_changes() {
    // Castro & Liskov 2002, §4.5.2: a replica receiving f+1 valid VIEW-CHANGEs for views above
    // its own joins, without waiting for its timer.
    let mut r = replica(1);
    let vc = |i: usize| {
        ViewChange::sign(CHAIN_ID, &validator_key(i), 2, CheckpointProof::genesis(genesis().hash), Vec::new())
    };
    assert!(broadcasts(&feed(&mut r, Message::ViewChange(vc(2)))).is_empty(), "f view-changes are not enough");
    let out = feed(&mut r, Message::ViewChange(vc(3)));
    assert!(matches!(broadcasts(&out)[0], Message::ViewChange(v) if v.view == 2));
}

#[test]
fn new_view_reproposes_prepared_batches_and_fills_gaps_with_empty_ones() {
    // Castro & Liskov 2002, §4.4: the O-set holds, for each sequence between min-s and max-s,
    // the highest-view prepared batch of the V-set, or a null request.
    let b2 = batch(2, 0, txs(2, 11));
    let older = batch(2, 0, txs(1, 12));
    let gen = CheckpointProof::genesis(genesis().hash);
    let vcs = vec![
        ViewChange::sign(CHAIN_ID, &validator_key(1), 2, gen.clone(), vec![prepared_proof(1, &b2, &[0, 2, 3])]),
        ViewChange::sign(CHAIN_ID, &validator_key(2), 2, gen.clone(), vec![prepared_proof(0, &older, &[1, 2, 3])]),
        ViewChange::sign(CHAIN_ID, &validator_key(3), 2, gen, Vec::new()),
    ];
    let plan = compute_plan(CHAIN_ID, &committee(N), 2, 777, &vcs, &|_| None).unwrap();
    assert_eq!(plan.batches.len(), 2);
    assert_eq!(plan.batches[0].header.tx_count, 0, "height 1 prepared nowhere: an empty batch");
    assert_eq!(plan.batches[0].header.proposer, validator_key(2).public());
    assert_eq!(plan.batches[1].digest(CHAIN_ID), b2.digest(CHAIN_ID), "the view-1 certificate beats the view-0 one");
    // A backup accepts the NEW-VIEW, enters view 2 and prepares both re-proposals.
    let nv = NewView::sign(CHAIN_ID, &validator_key(2), 2, 777, &vcs, &plan);
    let mut r = replica(3);
    let out = feed(&mut r, Message::NewView(nv));
    assert_eq!((r.status().view, r.status().mode), (2, Mode::Normal));
    let prepared: Vec<u64> = broadcasts(&out)
        .iter()
        .filter_map(|m| if let Message::Prepare(p) = m { Some(p.height) } else { None })
        .collect();
    assert_eq!(prepared, vec![1, 2]);
}

#[test]
fn backups_recompute_the_o_set_and_refuse_a_new_view_that_drops_a_prepared_batch() {
    // Castro & Liskov 2002, §4.4: backups check the NEW-VIEW by recomputing O from V; a primary
    // that ignores a prepared certificate is caught.
    let b1 = batch(1, 0, txs(2, 13));
    let gen = CheckpointProof::genesis(genesis().hash);
    let vcs = vec![
        ViewChange::sign(CHAIN_ID, &validator_key(0), 1, gen.clone(), vec![prepared_proof(0, &b1, &[1, 2, 3])]),
        ViewChange::sign(CHAIN_ID, &validator_key(2), 1, gen.clone(), Vec::new()),
        ViewChange::sign(CHAIN_ID, &validator_key(3), 1, gen, Vec::new()),
    ];
    // The forged plan replaces the prepared batch by an empty one.
    let forged = ordo_consensus::pbft::messages::NewViewPlan {
        checkpoint: CheckpointProof::genesis(genesis().hash),
        batches: vec![Batch::null(1, 5, validator_key(1).public())],
    };
    let nv = NewView::sign(CHAIN_ID, &validator_key(1), 1, 5, &vcs, &forged);
    assert!(matches!(reject(Message::NewView(nv)), ConsensusError::BadNewView { view: 1, .. }));
}

#[test]
fn restarted_replica_never_signs_a_conflicting_prepare() {
    // Castro & Liskov 2002, §4.5 (replicas keep their protocol state across crashes): after a
    // restart from its safety record a backup refuses a second batch at the same view/height.
    let mut r = replica(1);
    let out = feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(1, 14)))));
    let Action::PersistSafety(w) = &out[0] else { panic!("record first") };
    let mut r = restored(1, stored(w));
    let out = feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(2, 15)))));
    assert!(broadcasts(&out).is_empty());
    assert!(matches!(r.last_drop(), Some(ConsensusError::SafetyViolation(_))));
}

#[test]
fn restarted_replica_stays_in_its_view_change() {
    // Castro & Liskov 2002, §4.4: a replica that sent VIEW-CHANGE for v+1 accepts no message of
    // view v, also after a restart.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 16)));
    let out = r.handle(Input::Tick { now_ms: 300 });
    let Action::PersistSafety(w) = &out[0] else { panic!("record first") };
    let mut r = restored(1, stored(w));
    assert_eq!((r.status().view, r.status().mode), (1, Mode::ViewChange));
    feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(1, 17)))));
    assert!(matches!(r.last_drop(), Some(ConsensusError::StaleView { view: 0, current: 1 })));
}

/// Under load the record is rewritten before every vote. The bodies of prepared batches go beside
/// it, each written once and deleted once its block is stored, and a restart puts them back.
#[test]
fn prepared_bodies_are_stored_once_beside_the_record() {
    let key = validator_key(1);
    let mut s = Safety::new(SafetyRecord::new(genesis().hash), key.clone(), CHAIN_ID);
    let store = MemStore::new();
    let (b1, b2) = (batch(1, 0, txs(3, 60)), batch(2, 0, txs(2, 61)));
    let (d1, d2) = (b1.digest(CHAIN_ID), b2.digest(CHAIN_ID));
    let keys = |w: &SafetyWrite| w.put_bodies.iter().map(|(k, _)| *k).collect::<Vec<_>>();
    s.prepare(0, 1, d1).unwrap();
    s.commit(prepared_proof(0, &b1, &[1, 2]), d1).unwrap();
    let w = s.persist(0);
    assert_eq!((keys(&w), w.delete_bodies.clone()), (vec![(1, d1)], vec![]));
    assert!(w.record.len() + 200 < s.encode(0).len(), "the record names the body, it does not hold it");
    store.save_safety(&w).unwrap();
    // The next vote rewrites the record, and writes only the new body.
    s.prepare(0, 2, d2).unwrap();
    s.commit(prepared_proof(0, &b2, &[1, 2]), d2).unwrap();
    let w = s.persist(0);
    assert_eq!((keys(&w), w.delete_bodies.clone()), (vec![(2, d2)], vec![]));
    store.save_safety(&w).unwrap();
    assert!(s.persist(0).put_bodies.is_empty(), "nothing changed, nothing to write again");
    // A restart reads both bodies back, and has nothing to write again either.
    let mut back =
        Safety::restore(store.load_safety().unwrap().as_ref(), genesis().hash, key.clone(), CHAIN_ID).unwrap();
    let body = |s: &Safety, h: u64| s.slots[&h].prepared.as_ref().unwrap().txs.clone().unwrap();
    assert_eq!((body(&back, 1), body(&back, 2)), (b1.txs.clone(), b2.txs.clone()));
    let w = back.persist(0);
    assert!(w.put_bodies.is_empty() && w.delete_bodies.is_empty());
    // Height 1 is executed: its block holds the body, which is deleted; height 2's stays.
    let w = s.persist(1);
    assert_eq!((keys(&w), w.delete_bodies.clone()), (vec![], vec![(1, d1)]));
    store.save_safety(&w).unwrap();
    let stored = store.load_safety().unwrap().unwrap();
    assert_eq!(stored.bodies.keys().copied().collect::<Vec<_>>(), vec![(2, d2)]);
    let slim = SafetyRecord::decode_stored(&stored.record, &stored.bodies).unwrap();
    assert!(slim.slots[&1].prepared.as_ref().unwrap().txs.is_none(), "left to the store's block");
    assert_eq!(body_of(&slim, 2), b2.txs);
    // A record whose named body is missing is corrupt, never a record without the body.
    assert!(matches!(
        SafetyRecord::decode_stored(&stored.record, &Default::default()),
        Err(ConsensusError::CorruptSafetyRecord(_))
    ));
}

fn body_of(r: &SafetyRecord, h: u64) -> Vec<VerifiedTx> {
    r.slots[&h].prepared.as_ref().unwrap().txs.clone().unwrap()
}

#[test]
fn safety_record_round_trips() {
    let mut s = SafetyRecord::new(genesis().hash);
    s.vote_prepare(0, 1, Hash([1; 32])).unwrap();
    let b = batch(1, 0, txs(1, 18));
    s.vote_commit(prepared_proof(0, &b, &[1, 2, 3]), b.digest(CHAIN_ID)).unwrap();
    s.start_view_change(1).unwrap();
    let back = SafetyRecord::decode(&s.encode(0)).unwrap();
    assert_eq!(back.view, 1);
    assert!(back.in_view_change);
    assert_eq!(back.observed_view, None);
    // A record written before observers existed (version 1: no observed view) still loads.
    let v2 = s.encode(0);
    let v1: Vec<u8> = [&[1u8][..], &v2[1..10], &v2[11..]].concat();
    assert_eq!(SafetyRecord::decode(&v1).unwrap(), back);
    // An observer of view 0 keeps its promise of view 1 through the record.
    s.observe(0).unwrap();
    let back = SafetyRecord::decode(&s.encode(0)).unwrap();
    assert_eq!((back.view, back.in_view_change, back.observed_view), (1, true, Some(0)));
    assert!(s.observe(1).is_err(), "only views below the promise are observed");
    let mut forged = s.encode(0);
    forged[11..19].copy_from_slice(&1u64.to_be_bytes());
    assert!(matches!(SafetyRecord::decode(&forged), Err(ConsensusError::CorruptSafetyRecord(_))));
    let mut promise = back.clone();
    assert!(promise.vote_prepare(0, 2, Hash([2; 32])).is_err(), "an observer's record refuses every vote");
    promise.stop_observing();
    assert_eq!(promise.observed_view, None);
    assert_eq!(back.slots[&1].prepare, Some((0, Hash([1; 32]))));
    assert_eq!(back.slots[&1].prepared.as_ref().unwrap().txs.as_ref().map(Vec::len), Some(1));
    // Bodies at or below the executed height are left to the store: the record keeps the proof.
    let slim = SafetyRecord::decode(&s.encode(1)).unwrap();
    assert!(slim.slots[&1].prepared.as_ref().is_some_and(|p| p.txs.is_none()));
    assert!(s.encode(1).len() < s.encode(0).len());
    assert!(matches!(SafetyRecord::decode(&[9, 9]), Err(ConsensusError::CorruptSafetyRecord(_))));
    // The record only moves forward.
    assert!(s.start_view_change(1).is_err());
    assert!(s.enter_view(0).is_err());
}

// ------------------------------------------------------------------ drops in the core

#[test]
fn reject_stale_view() {
    // Castro & Liskov 2002, §4.2: replicas accept normal-case messages only for their view.
    let mut r = replica(1);
    r.handle(Input::ClientTxs(txs(1, 19)));
    r.handle(Input::Tick { now_ms: 300 });
    let d = Hash([3; 32]);
    feed(&mut r, Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(2), 0, 1, d)));
    assert!(matches!(r.last_drop(), Some(ConsensusError::StaleView { view: 0, current: 1 })));
}

#[test]
fn reject_far_future_view() {
    // Castro & Liskov 2002, §4.5.2 (bounding what faulty replicas can make others store):
    // VIEW-CHANGEs more than max_views_ahead above the current view are dropped unread.
    let mut r = replica(1);
    let vc = ViewChange::sign(
        CHAIN_ID,
        &validator_key(2),
        u64::MAX - 1,
        CheckpointProof::genesis(genesis().hash),
        Vec::new(),
    );
    feed(&mut r, Message::ViewChange(vc));
    assert!(matches!(r.last_drop(), Some(ConsensusError::FarFutureView { .. })));
    let peek = ordo_consensus::pbft::messages::peek(
        &Message::<VerifiedTx>::Prepare(Prepare::sign(CHAIN_ID, &validator_key(2), 5000, 1, Hash([0; 32]))).encode(),
    )
    .unwrap();
    assert!(!r.wants(&peek), "the prefix alone is enough to drop it");
    // The largest view and checkpoint heights are refused without arithmetic overflow.
    let vc =
        ViewChange::sign(CHAIN_ID, &validator_key(2), u64::MAX, CheckpointProof::genesis(genesis().hash), Vec::new());
    let peek = ordo_consensus::pbft::messages::peek(&Message::ViewChange(vc.clone()).encode()).unwrap();
    assert!(!r.wants(&peek));
    feed(&mut r, Message::ViewChange(vc));
    assert!(matches!(r.last_drop(), Some(ConsensusError::FarFutureView { .. })));
    let b = batch(u64::MAX, 0, Vec::new());
    let mut p = prepared_proof(0, &b, &[1, 2, 3]);
    p.txs = None;
    let cp = CheckpointProof { height: u64::MAX - 1, block_hash: Hash([1; 32]), signatures: Vec::new() };
    let m = ViewChange::sign(CHAIN_ID, &validator_key(2), 1, cp, vec![p]);
    assert!(matches!(reject(Message::ViewChange(m)), ConsensusError::BadProof { .. }));
}

#[test]
fn reject_sequence_outside_the_watermarks() {
    // Castro & Liskov 2002, §4.2: a backup accepts a PRE-PREPARE only if h < n <= H.
    let mut r = replica(1);
    feed(&mut r, Message::PrePrepare(pp(0, batch(9, 0, txs(1, 20)))));
    assert!(matches!(r.last_drop(), Some(ConsensusError::OutsideWatermarks { height: 9, low: 0, high: 8 })));
}

#[test]
fn reject_conflicting_pre_prepare_in_one_view() {
    // Castro & Liskov 2002, §4.2: a backup accepts a PRE-PREPARE only if it has not accepted one
    // for the same view and sequence with a different digest.
    let mut r = replica(1);
    feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(1, 21)))));
    let out = feed(&mut r, Message::PrePrepare(pp(0, batch(1, 0, txs(2, 22)))));
    assert!(broadcasts(&out).is_empty());
    assert!(matches!(r.last_drop(), Some(ConsensusError::ConflictingPrePrepare { view: 0, height: 1 })));
}

// ------------------------------------------------------------------ verification rejections

#[test]
fn reject_unknown_sender() {
    // Castro & Liskov 2002, §2 (system model): only replicas of the group take part.
    let outsider = validator_key(99);
    let m = Message::Prepare(Prepare::sign(CHAIN_ID, &outsider, 0, 1, Hash([1; 32])));
    assert!(matches!(reject(m), ConsensusError::UnknownSender { kind: "prepare", .. }));
}

#[test]
fn reject_bad_signature() {
    // Castro & Liskov 2002, §2: all messages are signed (Ordo uses signatures, not MACs).
    let mut p = Prepare::sign(CHAIN_ID, &validator_key(2), 0, 1, Hash([1; 32]));
    p.signature.0[0] ^= 1;
    assert!(matches!(reject(Message::Prepare(p)), ConsensusError::BadSignature { kind: "prepare", .. }));
    let mut c = Commit::sign(CHAIN_ID, &validator_key(2), 0, 1, Hash([1; 32]));
    c.view = 1; // Signed over view 0.
    assert!(matches!(reject(Message::Commit(c)), ConsensusError::BadSignature { kind: "commit", .. }));
}

#[test]
fn reject_pre_prepare_not_from_the_primary() {
    // Castro & Liskov 2002, §4.2: only the primary of view v sends PRE-PREPAREs for v.
    let b = batch(1, 1, txs(1, 23));
    let m = PrePrepare::sign(CHAIN_ID, &validator_key(1), 0, b);
    assert!(matches!(reject(Message::PrePrepare(m)), ConsensusError::NotPrimary { view: 0, .. }));
}

#[test]
fn reject_duplicate_transaction_in_a_batch() {
    // Castro & Liskov 2002, §4.2 with protocol §3: a batch naming one request twice is invalid.
    let t = txs(1, 24);
    let m = pp(0, batch(1, 0, vec![t[0].clone(), t[0].clone()]));
    assert!(matches!(reject(Message::PrePrepare(m)), ConsensusError::DuplicateTxInBatch { height: 1, .. }));
}

#[test]
fn reject_invalid_transaction_in_a_batch() {
    // Castro & Liskov 2002, §4.2: backups check the requests in a PRE-PREPARE (client signatures).
    let b = batch(1, 0, txs(2, 25));
    let mut wire: WireMessage = WireMessage::decode(&Message::PrePrepare(pp(0, b)).encode(), usize::MAX).unwrap();
    if let Message::PrePrepare(p) = &mut wire {
        p.batch.txs[1].signature.0[3] ^= 1;
    }
    let err = ordo_consensus::pbft::verify_message(&ctx(), wire).unwrap_err();
    assert!(matches!(err, ConsensusError::BadTransaction { height: 1, index: 1, .. }));
}

#[test]
fn reject_batch_whose_digest_does_not_match_its_transactions() {
    // Castro & Liskov 2002, §4.2: the digest in the PRE-PREPARE must be the batch's digest.
    let mut b = batch(1, 0, txs(2, 26));
    b.txs.pop();
    b.header.tx_count = 1; // Count fixed up, root left over two transactions.
    assert!(matches!(reject(Message::PrePrepare(pp(0, b))), ConsensusError::BatchMismatch { what: "tx_root", .. }));
    let mut b = batch(1, 0, txs(2, 27));
    b.header.tx_count = 3;
    assert!(matches!(reject(Message::PrePrepare(pp(0, b))), ConsensusError::BatchMismatch { what: "tx_count", .. }));
}

#[test]
fn reject_oversized_batch_and_message() {
    // Bounded resources (Castro & Liskov 2002, §5.1.4 batching limits): too many transactions,
    // or too many bytes, are refused before any signature work.
    let m = Message::PrePrepare(pp(0, batch(1, 0, txs(5, 28))));
    assert!(matches!(reject(m.clone()), ConsensusError::BatchTooLarge { count: 5, max: 4, .. }));
    let bytes = m.encode();
    assert!(matches!(WireMessage::decode(&bytes, bytes.len() - 1), Err(ConsensusError::MessageTooLarge { .. })));
}

#[test]
fn reject_view_change_with_an_invalid_prepared_certificate() {
    // Castro & Liskov 2002, §4.4: each P-set entry must be a valid prepared certificate for a
    // view below the new one.
    let b = batch(1, 0, txs(1, 29));
    let gen = CheckpointProof::genesis(genesis().hash);
    let thin = prepared_proof(0, &b, &[1]);
    let m = ViewChange::sign(CHAIN_ID, &validator_key(2), 1, gen.clone(), vec![thin]);
    assert!(matches!(reject(Message::ViewChange(m)), ConsensusError::BadProof { kind: "view-change", .. }));
    let not_below = prepared_proof(1, &b, &[0, 2, 3]);
    let m = ViewChange::sign(CHAIN_ID, &validator_key(2), 1, gen, vec![not_below]);
    assert!(matches!(reject(Message::ViewChange(m)), ConsensusError::BadProof { .. }));
}

#[test]
fn reject_new_view_from_a_non_primary_or_with_too_few_view_changes() {
    // Castro & Liskov 2002, §4.4: NEW-VIEW comes from the new primary with 2f+1 VIEW-CHANGEs.
    let gen = CheckpointProof::genesis(genesis().hash);
    let vcs: Vec<ViewChange> =
        [0, 2].iter().map(|&i| ViewChange::sign(CHAIN_ID, &validator_key(i), 1, gen.clone(), Vec::new())).collect();
    let plan = ordo_consensus::pbft::messages::NewViewPlan { checkpoint: gen.clone(), batches: Vec::new() };
    let nv = NewView::sign(CHAIN_ID, &validator_key(1), 1, 0, &vcs, &plan);
    assert!(matches!(reject(Message::NewView(nv)), ConsensusError::BadNewView { .. }));
    let nv = NewView::sign(CHAIN_ID, &validator_key(2), 1, 0, &vcs, &plan);
    assert!(matches!(reject(Message::NewView(nv)), ConsensusError::NotPrimary { kind: "new-view", .. }));
}

#[test]
fn reject_checkpoint_proof_without_a_quorum() {
    // Castro & Liskov 2002, §4.3/§4.4: a stable checkpoint is proven by 2f+1 signatures.
    let h = Hash([5; 32]);
    let sig = |i: usize| ValidatorSignature {
        validator: validator_key(i).public(),
        signature: Checkpoint::sign(CHAIN_ID, &validator_key(i), 4, h).signature,
    };
    let proof = CheckpointProof { height: 4, block_hash: h, signatures: vec![sig(0), sig(1)] };
    assert!(proof.verify(&ctx()).is_err());
    let m = ViewChange::sign(CHAIN_ID, &validator_key(2), 1, proof, Vec::new());
    assert!(matches!(reject(Message::ViewChange(m)), ConsensusError::BadProof { .. }));
    let good = CheckpointProof { height: 4, block_hash: h, signatures: vec![sig(0), sig(1), sig(3)] };
    good.verify(&ctx()).unwrap();
}

#[test]
fn every_message_kind_round_trips_on_the_wire() {
    let b = batch(1, 0, txs(2, 30));
    let d = b.digest(CHAIN_ID);
    let gen = CheckpointProof::genesis(genesis().hash);
    let vcs = vec![
        ViewChange::sign(CHAIN_ID, &validator_key(0), 1, gen.clone(), vec![prepared_proof(0, &b, &[1, 2, 3])]),
        ViewChange::sign(CHAIN_ID, &validator_key(2), 1, gen.clone(), Vec::new()),
        ViewChange::sign(CHAIN_ID, &validator_key(3), 1, gen, Vec::new()),
    ];
    let plan = compute_plan(CHAIN_ID, &committee(N), 1, 9, &vcs, &|_| None).unwrap();
    let msgs = vec![
        Message::PrePrepare(pp(0, b)),
        Message::Prepare(Prepare::sign(CHAIN_ID, &validator_key(1), 0, 1, d)),
        Message::Commit(Commit::sign(CHAIN_ID, &validator_key(1), 0, 1, d)),
        Message::Checkpoint(Checkpoint::sign(CHAIN_ID, &validator_key(1), 4, d)),
        Message::ViewChange(vcs[0].clone()),
        Message::NewView(NewView::sign(CHAIN_ID, &validator_key(1), 1, 9, &vcs, &plan)),
    ];
    for m in msgs {
        let v = verified(m.clone());
        assert_eq!(v.encode(), m.encode(), "{:?}", m.kind());
        let p = ordo_consensus::pbft::messages::peek(&m.encode()).unwrap();
        assert_eq!(p, m.peek());
        assert!(WireMessage::decode(&m.encode()[..m.encode().len() - 1], usize::MAX).is_err(), "truncated input fails");
    }
}

#[test]
fn reject_pre_prepare_whose_sequence_is_not_its_height() {
    // Castro & Liskov 2002, §4.2: the sequence number is part of what the primary signs; in
    // Ordo it is the block height (protocol §4), so a prefix naming another height is malformed.
    let m = Message::PrePrepare(pp(0, batch(1, 0, txs(1, 31))));
    let mut bytes = m.encode();
    bytes[41..49].copy_from_slice(&2u64.to_be_bytes());
    assert!(matches!(WireMessage::decode(&bytes, usize::MAX), Err(ConsensusError::Decode(_))));
}

#[test]
fn replica_answers_a_lagging_view_change_with_its_tip_certificate() {
    // Castro & Liskov 2002, §4.3/§4.5.2: a replica that is behind must be able to catch up; in
    // Ordo a replica asking alone for a higher view is shown the COMMITs of the other's tip, which
    // prove a certified height it can fetch.
    let b = batch(1, 0, Vec::new());
    let mut r = replica(1);
    let out = r.handle(Input::SyncedBlocks(vec![{
        let (blk, _) = Block::build(CHAIN_ID, &genesis(), b.header, &[], &[], Some(cert(0, &b, &[0, 2, 3])));
        verify_block(&ctx(), &blk).unwrap()
    }]));
    assert_eq!(commits(&out).len(), 1);
    let vc = ViewChange::sign(CHAIN_ID, &validator_key(3), 5, CheckpointProof::genesis(genesis().hash), Vec::new());
    let out = feed(&mut r, Message::ViewChange(vc));
    let sent: Vec<&Message> = out
        .iter()
        .filter_map(|a| {
            if let Action::Send { to, msg } = a {
                (*to == validator_key(3).public()).then_some(msg)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(sent.len(), 3, "the 2f+1 COMMITs of the tip certificate");
    for m in sent {
        assert!(matches!(m, Message::Commit(c) if c.height == 1));
        verified(m.clone());
    }
}
