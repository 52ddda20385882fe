//! The offline commands of the real `ordo` binary: `keygen`, `genesis` and
//! `verify-chain --data-dir`, run as a user would run them.

use std::path::Path;
use std::process::{Command, Output};

use ordo_chain::block::BatchHeader;
use ordo_chain::cert::{pbft_commit_bytes, PbftCertificate, ValidatorSignature};
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{Block, Certificate, Keypair, Op, Transaction, VerifiedTx};
use ordo_genesis::{Genesis, KeyFile};

fn ordo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordo")).args(args).output().expect("ordo runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn keygen_prints_or_writes_a_key() {
    let o = ordo(&["keygen"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["public_key"].as_str().unwrap().len(), 64);
    assert_eq!(v["secret_key"].as_str().unwrap().len(), 64);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("me.key");
    let o = ordo(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let key = KeyFile::read(&path).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), key.public().to_hex());
    // A second keygen never overwrites a key.
    let o = ordo(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
}

#[test]
fn genesis_writes_the_layout_with_ports_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let o = ordo(&[
        "genesis",
        "--validators",
        "7",
        "--consensus",
        "raft",
        "--chain-id",
        "acme",
        "--out",
        out.to_str().unwrap(),
        "--host",
        "127.0.0.2",
        "--p2p-port",
        "9100",
        "--api-port",
        "9200",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let g = Genesis::load(&out.join("genesis.json")).unwrap();
    assert_eq!(g.chain_id, "acme");
    assert_eq!(g.validators.len(), 7);
    assert_eq!(g.validators[6].p2p_addr, "/ip4/127.0.0.2/tcp/9106");
    assert_eq!(g.validators[6].api_addr, "http://127.0.0.2:9206");
    for i in 0..7 {
        assert!(out.join(format!("node{i}/node.key")).exists());
        assert!(out.join(format!("node{i}/config.toml")).exists());
    }
    let bad = ordo(&["genesis", "--validators", "2", "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("at least 4 validators"), "{}", text(&bad));
}

/// Builds a chain in node0's store, certified by the genesis validators' real keys.
fn write_chain(net: &Path, g: &Genesis, blocks: u64, forge_at: Option<u64>) {
    let keys: Vec<Keypair> = (0..4).map(|i| KeyFile::read(&net.join(format!("node{i}/node.key"))).unwrap()).collect();
    let store = RocksStore::open(&net.join("node0/data")).unwrap();
    let (b0, w0) = g.block();
    store.commit(&b0, &w0).unwrap();
    let client = Keypair::from_seed([3; 32]);
    let rules = g.tx_rules();
    for h in 1..=blocks {
        let prev = store.latest_block().unwrap().unwrap();
        let txs: Vec<VerifiedTx> = (0..10)
            .map(|i| {
                let op = Op::Put { key: format!("k{i}"), value: format!("v{h}") };
                rules.verify(Transaction::sign(&g.chain_id, &client, h * 100 + i, op)).unwrap()
            })
            .collect();
        let header = BatchHeader::for_txs(h, h, keys[0].public(), &txs);
        let d = header.digest(&g.chain_id);
        // A forged block is "certified" by one validator signing three times under three names
        // it does not own: the signatures of the other two keys do not verify.
        let signers: Vec<(usize, usize)> =
            if forge_at == Some(h) { vec![(0, 0), (0, 1), (0, 2)] } else { vec![(0, 0), (1, 1), (2, 2)] };
        let msg = pbft_commit_bytes(&g.chain_id, 0, h, &d);
        let cert = Certificate::Pbft(PbftCertificate {
            view: 0,
            height: h,
            batch_digest: d,
            signatures: signers
                .iter()
                .map(|&(signer, name)| ValidatorSignature {
                    validator: keys[name].public(),
                    signature: keys[signer].sign(&msg),
                })
                .collect(),
        });
        let committed = store.committed(&txs.iter().map(|t| t.id()).collect::<Vec<_>>()).unwrap();
        let (block, exec) = Block::build(&g.chain_id, &prev, header, &txs, &committed, Some(cert));
        store.commit(&block, &exec.writes).unwrap();
    }
}

#[test]
fn verify_chain_accepts_a_good_store_and_names_a_forged_block() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    assert!(ordo(&["genesis", "--validators", "4", "--out", net.to_str().unwrap()]).status.success());
    let g = Genesis::load(&net.join("genesis.json")).unwrap();
    write_chain(&net, &g, 20, None);
    // Both forms: the node directory (config.toml) and the data directory itself.
    for target in [net.join("node0"), net.join("node0/data")] {
        let o = ordo(&["verify-chain", "--data-dir", target.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("ok: 21 blocks"), "{}", text(&o));
    }

    let net2 = dir.path().join("net2");
    assert!(ordo(&["genesis", "--validators", "4", "--out", net2.to_str().unwrap()]).status.success());
    let g2 = Genesis::load(&net2.join("genesis.json")).unwrap();
    write_chain(&net2, &g2, 10, Some(7));
    let o = ordo(&["verify-chain", "--data-dir", net2.join("node0").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("block 7 does not verify"), "{}", text(&o));

    // The store checked against another consortium's genesis fails at block 0.
    let o = ordo(&[
        "verify-chain",
        "--data-dir",
        net.join("node0/data").to_str().unwrap(),
        "--genesis",
        net2.join("genesis.json").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("genesis"), "{}", text(&o));
}
