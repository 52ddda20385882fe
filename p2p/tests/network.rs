//! End-to-end tests of the p2p layer: real libp2p swarms on 127.0.0.1 with ephemeral ports.
//! Every wait is bounded, so a broken network fails a test instead of hanging it.

use std::time::Duration;

use ordo_chain::{Keypair, PublicKey};
use ordo_p2p::{peer_id_of, spawn, CancellationToken, P2pConfig, P2pError, P2pEvent, P2pHandle, ValidatorPeer};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

/// The outer bound of every test.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(1500);

struct Node {
    seed: [u8; 32],
    key: PublicKey,
    handle: P2pHandle,
    events: mpsc::Receiver<P2pEvent>,
    shutdown: CancellationToken,
}

impl Node {
    fn addr(&self) -> String {
        self.handle.local_addrs().into_iter().next().expect("a bound address")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        timeout(Duration::from_secs(5), self.handle.stopped()).await.expect("the network task stops on shutdown");
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

fn seed(i: u8) -> [u8; 32] {
    [i.wrapping_mul(29).wrapping_add(3); 32]
}

fn committee(n: u8) -> Vec<ValidatorPeer> {
    (0..n)
        .map(|i| ValidatorPeer {
            key: Keypair::from_seed(seed(i)).public(),
            name: format!("node{i}"),
            p2p_addr: String::new(),
        })
        .collect()
}

/// Fast timings so that discovery and redial fit well inside the test bound.
fn test_config(seed: [u8; 32], validators: Vec<ValidatorPeer>, listen: &str, bootstrap: Vec<String>) -> P2pConfig {
    let mut c = P2pConfig::new("ordo-p2p-test", seed, listen, validators);
    c.bootstrap = bootstrap;
    c.announce_interval_ms = 300;
    c.gossip_heartbeat_ms = 200;
    c.dial_backoff_initial_ms = 100;
    c.dial_backoff_max_ms = 800;
    c.block_request_timeout_ms = 5_000;
    c
}

async fn start(config: P2pConfig) -> Node {
    let seed = config.seed;
    let shutdown = CancellationToken::new();
    let (handle, events) = spawn(config, shutdown.clone()).await.expect("spawn");
    Node { seed, key: Keypair::from_seed(seed).public(), handle, events, shutdown }
}

/// Starts `n` validators; node0 first, every other one knows only node0's address. node1 gets
/// it with `/p2p/<peer id>`, the others bare, so both bootstrap forms are used.
async fn start_network(n: u8, tweak: impl Fn(u8, &mut P2pConfig)) -> Vec<Node> {
    let validators = committee(n);
    let mut c0 = test_config(seed(0), validators.clone(), "/ip4/127.0.0.1/tcp/0", vec![]);
    tweak(0, &mut c0);
    let node0 = start(c0).await;
    let boot = node0.addr();
    let mut nodes = vec![node0];
    for i in 1..n {
        let b = if i == 1 { format!("{boot}/p2p/{}", peer_id_of(&validators[0].key)) } else { boot.clone() };
        let mut c = test_config(seed(i), validators.clone(), "/ip4/127.0.0.1/tcp/0", vec![b]);
        tweak(i, &mut c);
        nodes.push(start(c).await);
    }
    nodes
}

async fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Every node is connected to every other and subscribed to all topics.
fn full_mesh(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| {
        let peers = n.handle.peers();
        peers.len() == nodes.len() - 1 && peers.iter().all(|p| p.connected && p.gossip_ready)
    })
}

/// The next event that is not a PeerUp/PeerDown, within `bound`.
async fn next_message(events: &mut mpsc::Receiver<P2pEvent>, bound: Duration) -> Option<P2pEvent> {
    let deadline = Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, events.recv()).await {
            Ok(Some(P2pEvent::PeerUp(_) | P2pEvent::PeerDown(_))) => continue,
            Ok(Some(ev)) => return Some(ev),
            Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_discover_each_other_from_one_bootstrap() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let nodes = start_network(4, |_, _| {}).await;
        wait_until("a full mesh of 4", Duration::from_secs(20), || full_mesh(&nodes)).await;
        // node2 and node3 only knew node0: they met through signed announcements.
        for n in &nodes[1..] {
            assert!(n.handle.counters().announcements_accepted > 0);
        }
        for n in &nodes {
            assert_eq!(n.handle.outsiders_refused(), 0);
            let names: Vec<String> = n.handle.peers().into_iter().map(|p| p.name).collect();
            assert_eq!(names.len(), 3);
            assert!(n.handle.peers().iter().all(|p| p.key != n.key && p.addr.is_some()));
        }
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_and_direct_messages_reach_the_right_validators() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_network(4, |_, _| {}).await;
        wait_until("a full mesh of 4", Duration::from_secs(20), || full_mesh(&nodes)).await;
        let sender = nodes[1].key;

        nodes[1].handle.publish_tx(b"tx-1".to_vec()).await.unwrap();
        for i in [0, 2, 3] {
            match next_message(&mut nodes[i].events, Duration::from_secs(5)).await {
                Some(P2pEvent::Tx { from, bytes }) => {
                    assert_eq!(from, sender);
                    assert_eq!(bytes, b"tx-1");
                }
                other => panic!("node{i} expected the tx, got {other:?}"),
            }
        }

        nodes[1].handle.broadcast_consensus(b"prepare".to_vec()).await.unwrap();
        for i in [0, 2, 3] {
            match next_message(&mut nodes[i].events, Duration::from_secs(5)).await {
                Some(P2pEvent::Consensus { from, bytes }) => {
                    assert_eq!(from, sender);
                    assert_eq!(bytes, b"prepare");
                }
                other => panic!("node{i} expected the broadcast, got {other:?}"),
            }
        }

        let target = nodes[3].key;
        nodes[1].handle.send_consensus(target, b"view-change".to_vec()).await.unwrap();
        match next_message(&mut nodes[3].events, Duration::from_secs(5)).await {
            Some(P2pEvent::Consensus { from, bytes }) => {
                assert_eq!(from, sender);
                assert_eq!(bytes, b"view-change");
            }
            other => panic!("node3 expected the direct message, got {other:?}"),
        }
        for i in [0, 2] {
            let ev = next_message(&mut nodes[i].events, QUIET).await;
            assert!(ev.is_none(), "node{i} got a message meant for node3: {ev:?}");
        }

        // Sending to a key outside the committee is refused before touching the network.
        let stranger = Keypair::from_seed([200; 32]).public();
        assert_eq!(
            nodes[1].handle.send_consensus(stranger, b"x".to_vec()).await,
            Err(P2pError::UnknownValidator { key: stranger })
        );
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

/// Transactions are not forwarded (the tx topic has no mesh: each validator hears a batch from its
/// author only, docs/p2p.md), so a validator that missed one gets it from gossipsub's lazy repair:
/// at each heartbeat its peers tell it the ids they hold (IHAVE) and it asks for the rest (IWANT).
/// Here node2 joins after node0 published, knowing only node1, and still receives the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_missed_a_transaction_batch_gets_it_through_lazy_repair() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        // A slow heartbeat keeps the batch advertised (the last three heartbeats) while node2
        // starts, however busy the machine.
        let slow = |c: &mut P2pConfig| c.gossip_heartbeat_ms = 1_000;
        let validators = committee(3);
        let mut c0 = test_config(seed(0), validators.clone(), "/ip4/127.0.0.1/tcp/0", vec![]);
        slow(&mut c0);
        let node0 = start(c0).await;
        let mut c1 = test_config(seed(1), validators.clone(), "/ip4/127.0.0.1/tcp/0", vec![node0.addr()]);
        slow(&mut c1);
        let mut nodes = vec![node0, start(c1).await];
        let (key0, key1) = (nodes[0].key, nodes[1].key);
        let linked =
            |n: &Node, k: PublicKey| n.handle.peers().iter().any(|p| p.key == k && p.connected && p.gossip_ready);
        wait_until("node0 and node1 connected", Duration::from_secs(10), || {
            linked(&nodes[0], key1) && linked(&nodes[1], key0)
        })
        .await;
        nodes[0].handle.publish_tx(b"tx-early".to_vec()).await.unwrap();
        match next_message(&mut nodes[1].events, Duration::from_secs(5)).await {
            Some(P2pEvent::Tx { bytes, .. }) => assert_eq!(bytes, b"tx-early"),
            other => panic!("node1 expected the tx, got {other:?}"),
        }

        let mut c2 = test_config(seed(2), validators, "/ip4/127.0.0.1/tcp/0", vec![nodes[1].addr()]);
        slow(&mut c2);
        let mut late = start(c2).await;
        match next_message(&mut late.events, Duration::from_secs(10)).await {
            Some(P2pEvent::Tx { from, bytes }) => {
                assert_eq!(bytes, b"tx-early");
                assert_eq!(from, nodes[0].key, "the author, not the validator that repaired the gap");
            }
            other => panic!("the late validator expected the earlier tx, got {other:?}"),
        }
        nodes.push(late);
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

/// One transaction per client request makes many small gossip messages. Lazy repair then
/// advertises all of them at every heartbeat (IHAVE); with gossipsub's default of 5,000 ids an
/// IHAVE outgrew the receiver's 16 KiB control limit, the receiver dropped the whole inbound
/// stream, and the messages behind it were lost (CI's thousand-transaction test, docs/p2p.md).
/// Here node0 publishes 1,000 messages, heartbeats pass, it publishes 50 more, and both other
/// validators must receive all 1,050.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_transaction_messages_all_arrive_after_lazy_repair_advertised_them() {
    init_tracing();
    const BEFORE: usize = 1_000;
    const AFTER: usize = 50;
    timeout(TEST_TIMEOUT, async {
        let started = Instant::now();
        let mut nodes = start_network(3, |_, _| {}).await;
        wait_until("a full mesh of 3", Duration::from_secs(20), || full_mesh(&nodes)).await;
        // Drain node1's and node2's events while node0 publishes, so that no full channel holds
        // their network back.
        let collectors: Vec<_> = (1..3)
            .map(|i| {
                let mut events = std::mem::replace(&mut nodes[i].events, mpsc::channel(1).1);
                tokio::spawn(async move {
                    let mut seen = std::collections::HashSet::new();
                    let deadline = Instant::now() + Duration::from_secs(22);
                    while seen.len() < BEFORE + AFTER {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match timeout(left, events.recv()).await {
                            Ok(Some(P2pEvent::Tx { bytes, .. })) => {
                                seen.insert(bytes);
                            }
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => break,
                        }
                    }
                    seen.len()
                })
            })
            .collect();
        for i in 0..BEFORE {
            nodes[0].handle.publish_tx(format!("tx-before-{i}").into_bytes()).await.unwrap();
        }
        // Gossipsub's first heartbeat comes 5 s after start (`heartbeat_initial_delay`), then one
        // every 200 ms: wait until several have passed, each sending IHAVEs of all 1,000 ids.
        sleep((started + Duration::from_millis(6_500)).saturating_duration_since(Instant::now())).await;
        for i in 0..AFTER {
            nodes[0].handle.publish_tx(format!("tx-after-{i}").into_bytes()).await.unwrap();
        }
        for (i, c) in (1..3).zip(collectors) {
            let got = c.await.expect("collector");
            assert_eq!(got, BEFORE + AFTER, "node{i} received {got} of {} messages", BEFORE + AFTER);
        }
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_requests_are_answered_through_the_reply_channel() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_network(3, |_, _| {}).await;
        wait_until("a full mesh of 3", Duration::from_secs(20), || full_mesh(&nodes)).await;
        let asker = nodes[2].handle.clone();
        let node0 = nodes[0].key;
        let node2 = nodes[2].key;

        let request = tokio::spawn(async move { asker.request_blocks(node0, 5, 10).await });
        match next_message(&mut nodes[0].events, Duration::from_secs(5)).await {
            Some(P2pEvent::BlockRequest { from, from_height, to_height, reply }) => {
                assert_eq!((from, from_height, to_height), (node2, 5, 10));
                reply.send(b"blocks 5..=10".to_vec()).unwrap();
            }
            other => panic!("node0 expected a block request, got {other:?}"),
        }
        assert_eq!(request.await.unwrap().unwrap(), b"blocks 5..=10");

        // A node that drops the reply channel refuses; the asker gets an error, not a hang.
        let asker = nodes[2].handle.clone();
        let request = tokio::spawn(async move { asker.request_blocks(node0, 11, 12).await });
        match next_message(&mut nodes[0].events, Duration::from_secs(5)).await {
            Some(P2pEvent::BlockRequest { reply, .. }) => drop(reply),
            other => panic!("node0 expected a block request, got {other:?}"),
        }
        let refused = request.await.unwrap();
        assert!(matches!(refused, Err(P2pError::RequestFailed { key, .. }) if key == node0), "{refused:?}");

        assert_eq!(
            nodes[2].handle.request_blocks(node0, 9, 3).await,
            Err(P2pError::BadBlockRange { from_height: 9, to_height: 3 })
        );
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_is_refused_counted_and_never_heard() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_network(2, |_, _| {}).await;
        wait_until("a full mesh of 2", Duration::from_secs(20), || full_mesh(&nodes)).await;

        // The outsider believes itself part of the committee, so its own side admits node0.
        let outsider_seed = [250u8; 32];
        let mut its_view = committee(2);
        its_view.push(ValidatorPeer {
            key: Keypair::from_seed(outsider_seed).public(),
            name: "mallory".into(),
            p2p_addr: String::new(),
        });
        let outsider = start(test_config(outsider_seed, its_view, "/ip4/127.0.0.1/tcp/0", vec![nodes[0].addr()])).await;

        wait_until("node0 to refuse the outsider", Duration::from_secs(10), || {
            nodes[0].handle.outsiders_refused() >= 1
        })
        .await;
        // It keeps trying (with backoff) and keeps being refused.
        let first = nodes[0].handle.outsiders_refused();
        wait_until("a second refusal", Duration::from_secs(10), || nodes[0].handle.outsiders_refused() > first).await;

        // Whatever it tries, nothing reaches a validator.
        let node0 = nodes[0].key;
        for _ in 0..5 {
            let _ = outsider.handle.publish_tx(b"spam".to_vec()).await;
            let _ = outsider.handle.broadcast_consensus(b"fake vote".to_vec()).await;
            let _ = outsider.handle.send_consensus(node0, b"fake direct".to_vec()).await;
            sleep(Duration::from_millis(100)).await;
        }
        assert!(outsider.handle.request_blocks(node0, 1, 2).await.is_err());
        for (i, n) in nodes.iter_mut().enumerate() {
            let ev = next_message(&mut n.events, QUIET).await;
            assert!(ev.is_none(), "node{i} heard from the outsider: {ev:?}");
            assert!(n.handle.peers().iter().all(|p| p.name != "mallory"));
        }
        // The validators stay connected to each other throughout.
        assert!(full_mesh(&nodes));
        outsider.stop().await;
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_validator_is_redialled_by_the_others() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_network(3, |_, _| {}).await;
        wait_until("a full mesh of 3", Duration::from_secs(20), || full_mesh(&nodes)).await;

        let node2 = nodes.pop().expect("three nodes");
        let (seed2, key2, addr2) = (node2.seed, node2.key, node2.addr());
        node2.stop().await;
        wait_until("node0 and node1 to see node2 go", Duration::from_secs(10), || {
            nodes.iter().all(|n| n.handle.peers().iter().any(|p| p.key == key2 && !p.connected))
        })
        .await;
        // Let a few redials fail so that the backoff has grown before the node returns.
        sleep(Duration::from_millis(1500)).await;
        assert!(nodes[0].handle.counters().dials >= 3);

        // Same key, same port, no bootstrap: only the others' redials can bring it back.
        let restarted = start(test_config(seed2, committee(3), &addr2, vec![])).await;
        assert_eq!(restarted.addr(), addr2);
        nodes.push(restarted);
        wait_until("the mesh to heal", Duration::from_secs(15), || full_mesh(&nodes)).await;

        nodes[2].handle.broadcast_consensus(b"back".to_vec()).await.unwrap();
        for i in [0, 1] {
            match next_message(&mut nodes[i].events, Duration::from_secs(5)).await {
                Some(P2pEvent::Consensus { from, bytes }) => assert_eq!((from, bytes.as_slice()), (key2, &b"back"[..])),
                other => panic!("node{i} expected node2's broadcast, got {other:?}"),
            }
        }
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_rejected_not_delivered() {
    init_tracing();
    const SMALL_MAX: usize = 64 * 1024;
    // Over node0's limit, but within the twice-the-limit frame that gossip decodes before rejecting.
    const BIG: usize = 100 * 1024;
    timeout(TEST_TIMEOUT, async {
        // node0 accepts 64 KiB; node1 and node2 accept 1 MiB, so node1 can send node0 too much.
        let mut nodes = start_network(3, |i, c| {
            c.max_message_bytes = if i == 0 { SMALL_MAX } else { 1024 * 1024 };
        })
        .await;
        wait_until("a full mesh of 3", Duration::from_secs(20), || full_mesh(&nodes)).await;

        // The sender's own limit is checked before anything is sent.
        let too_big = nodes[0].handle.publish_tx(vec![1; SMALL_MAX + 1]).await;
        assert_eq!(
            too_big,
            Err(P2pError::MessageTooLarge { kind: "tx", size_bytes: SMALL_MAX + 1, max_bytes: SMALL_MAX })
        );
        let node1 = nodes[1].key;
        let direct = nodes[0].handle.send_consensus(node1, vec![1; SMALL_MAX + 1]).await;
        assert!(matches!(direct, Err(P2pError::MessageTooLarge { .. })), "{direct:?}");

        // A large gossip from node1 reaches node2 (so it really went out) but node0 rejects it.
        nodes[1].handle.publish_tx(vec![7; BIG]).await.unwrap();
        match next_message(&mut nodes[2].events, Duration::from_secs(5)).await {
            Some(P2pEvent::Tx { bytes, .. }) => assert_eq!(bytes.len(), BIG),
            other => panic!("node2 expected the large tx, got {other:?}"),
        }
        wait_until("node0 to reject the large gossip", Duration::from_secs(5), || {
            let c = nodes[0].handle.counters();
            c.gossip_rejected >= 1 && c.oversize_dropped >= 1
        })
        .await;
        // A large direct message to node0 is dropped at its codec.
        let node0 = nodes[0].key;
        let dropped_before = nodes[0].handle.counters().oversize_dropped;
        nodes[1].handle.send_consensus(node0, vec![8; BIG]).await.unwrap();
        wait_until("node0 to drop the large direct message", Duration::from_secs(5), || {
            nodes[0].handle.counters().oversize_dropped > dropped_before
        })
        .await;

        // Small messages still flow afterwards, and they are the first node0 ever sees.
        nodes[1].handle.publish_tx(b"small tx".to_vec()).await.unwrap();
        match next_message(&mut nodes[0].events, Duration::from_secs(5)).await {
            Some(P2pEvent::Tx { from, bytes }) => assert_eq!((from, bytes.as_slice()), (node1, &b"small tx"[..])),
            other => panic!("node0 expected the small tx, got {other:?}"),
        }
        nodes[1].handle.send_consensus(node0, b"small".to_vec()).await.unwrap();
        match next_message(&mut nodes[0].events, Duration::from_secs(5)).await {
            Some(P2pEvent::Consensus { from, bytes }) => assert_eq!((from, bytes.as_slice()), (node1, &b"small"[..])),
            other => panic!("node0 expected the small direct message, got {other:?}"),
        }
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_event_channel_holds_the_network_but_not_the_handle() {
    init_tracing();
    const CAPACITY: usize = 2;
    const TXS: u8 = 20;
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_network(2, |i, c| {
            if i == 0 {
                c.event_channel_capacity = CAPACITY;
            }
        })
        .await;
        wait_until("a full mesh of 2", Duration::from_secs(20), || full_mesh(&nodes)).await;
        // Drain the PeerUp events so the channel starts empty.
        while next_message(&mut nodes[0].events, Duration::from_millis(200)).await.is_some() {}

        for i in 0..TXS {
            nodes[1].handle.publish_tx(vec![i]).await.unwrap();
        }
        sleep(Duration::from_millis(500)).await;
        // node0 is not reading its events: its channel is full, yet its handle still takes
        // commands, so a node that sends from inside its event loop cannot deadlock.
        let node1 = nodes[1].key;
        timeout(Duration::from_secs(2), nodes[0].handle.send_consensus(node1, b"still here".to_vec()))
            .await
            .expect("commands are served while the event channel is full")
            .unwrap();
        // The network itself is held still until node0 catches up: that is the back-pressure.
        let early = next_message(&mut nodes[1].events, Duration::from_millis(300)).await;
        assert!(early.is_none(), "node0's network ran while its node was behind: {early:?}");
        // ... and the counters say so, so that a node can tell why it heard nothing.
        let held = nodes[0].handle.counters();
        assert!(held.holds >= 1 && held.held_since_ms > 0, "the hold is not reported: {held:?}");
        assert_eq!(nodes[1].handle.counters().held_since_ms, 0, "node1 reads its network");

        // Once node0 drains, every tx arrives (held back, not dropped) and its message goes out.
        let mut seen = Vec::new();
        while seen.len() < TXS as usize {
            match next_message(&mut nodes[0].events, Duration::from_secs(5)).await {
                Some(P2pEvent::Tx { bytes, .. }) => seen.push(bytes[0]),
                other => panic!("node0 expected tx {} of {TXS}, got {other:?}", seen.len()),
            }
        }
        match next_message(&mut nodes[1].events, Duration::from_secs(5)).await {
            Some(P2pEvent::Consensus { bytes, .. }) => assert_eq!(bytes, b"still here"),
            other => panic!("node1 expected node0's direct message, got {other:?}"),
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..TXS).collect::<Vec<u8>>());
        let after = nodes[0].handle.counters();
        assert_eq!(after.held_since_ms, 0, "the hold ended once node0 drained: {after:?}");
        assert!(after.held_ms >= 300, "node0 was held at least as long as node1 heard nothing: {after:?}");
        for n in nodes {
            n.stop().await;
        }
    })
    .await
    .expect("test finished in time");
}
