//! The crate dependency rules of ARCHITECTURE.md, checked from `cargo metadata` so that a change
//! that breaks them fails the suite instead of waiting for a reader to notice:
//! - the workspace crates depend on each other only along the documented graph;
//! - only `p2p` depends on libp2p, only `api` (and the binary that serves it) on axum, and
//!   `consensus` on no IO crate at all (no tokio, no RocksDB, no networking);
//! - only the binary turns on `ordo-chain`'s `rocksdb` feature, so the crates that need only
//!   types never compile RocksDB.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each workspace crate and the workspace crates it may depend on (normal dependencies).
const GRAPH: &[(&str, &[&str])] = &[
    ("ordo-chain", &[]),
    ("ordo-genesis", &["ordo-chain"]),
    ("ordo-consensus", &["ordo-chain"]),
    ("ordo-p2p", &["ordo-chain"]),
    ("ordo-api", &["ordo-chain", "ordo-genesis"]),
    ("ordo-node", &["ordo-chain", "ordo-genesis", "ordo-consensus", "ordo-p2p", "ordo-api"]),
];

/// Outside crates only some workspace crates may name, and which.
const CONFINED: &[(&str, &[&str])] = &[
    ("libp2p", &["ordo-p2p"]),
    ("axum", &["ordo-api"]),
    ("rocksdb", &["ordo-chain"]),
    ("tokio", &["ordo-p2p", "ordo-api", "ordo-node"]),
];

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Normal (non-dev, non-build) dependencies of each workspace package: name → features asked.
fn dependencies(meta: &Value) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut all = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        let mut deps = BTreeMap::new();
        for d in p["dependencies"].as_array().expect("dependencies") {
            if !d["kind"].is_null() {
                continue; // "dev" or "build"
            }
            let features: BTreeSet<String> =
                d["features"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(str::to_string)).collect();
            deps.insert(d["name"].as_str().expect("dependency name").to_string(), features);
        }
        all.insert(name, deps);
    }
    all
}

#[test]
fn workspace_crates_follow_the_documented_graph() {
    let deps = dependencies(&metadata());
    let workspace: BTreeSet<&str> = GRAPH.iter().map(|(n, _)| *n).collect();
    assert_eq!(deps.keys().map(String::as_str).collect::<BTreeSet<_>>(), workspace, "the workspace's crates changed");
    for (name, allowed) in GRAPH {
        let uses: BTreeSet<&str> =
            deps[*name].keys().map(String::as_str).filter(|d| d.starts_with("ordo-") && *d != *name).collect();
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        assert!(
            uses.is_subset(&allowed),
            "{name} depends on {:?}, outside the graph {allowed:?}",
            uses.difference(&allowed).collect::<Vec<_>>()
        );
    }
}

#[test]
fn io_crates_stay_in_their_crate() {
    let deps = dependencies(&metadata());
    for (outside, owners) in CONFINED {
        for (name, d) in &deps {
            if d.contains_key(*outside) {
                assert!(owners.contains(&name.as_str()), "{name} depends on {outside}, which only {owners:?} may");
            }
        }
    }
    // The consensus core does no IO: nothing async, no store, no network.
    let consensus = &deps["ordo-consensus"];
    for io in ["tokio", "rocksdb", "libp2p", "axum", "reqwest", "ureq", "hyper"] {
        assert!(!consensus.contains_key(io), "ordo-consensus depends on {io}");
    }
}

#[test]
fn only_the_binary_compiles_rocksdb() {
    let deps = dependencies(&metadata());
    for (name, d) in &deps {
        if let Some(features) = d.get("ordo-chain") {
            let rocks = features.contains("rocksdb");
            assert_eq!(rocks, name == "ordo-node", "{name} asks ordo-chain for features {features:?}");
        }
    }
}
