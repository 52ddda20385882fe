//! Prints Ordo's deterministic test vectors as pretty JSON, the content of `docs/test-vectors.json`.
//!
//! Run from the workspace root:
//! `cargo run -p ordo-chain --no-default-features --example test_vectors > docs/test-vectors.json`

fn main() {
    let vectors = ordo_chain::vectors::generate();
    let text = serde_json::to_string_pretty(&vectors).expect("a serde_json::Value always serializes");
    // The trailing newline keeps the committed file friendly to editors and diffs.
    println!("{text}");
}
