//! Cross-checks `ordo-chain` against `scripts/spec_check.py`, an independent implementation of
//! protocol §3–§6 in Python (standard library plus the `cryptography` package).
//!
//! The acceptance rule of the tracker: a transaction signed by an independent implementation
//! verifies in `chain`, and the reverse; a tampered transaction is rejected by both; and the
//! Python implementation re-derives every value of `docs/test-vectors.json`.
//!
//! Python and `cryptography` are required, not optional: without them these tests fail with the
//! command that installs them, so a missing interpreter can never pass for agreement.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use ordo_chain::crypto::{PublicKey, SigError, Signature};
use ordo_chain::vectors::{client_key, CHAIN_ID};
use ordo_chain::{ChainError, Keypair, Op, Transaction, TxRules};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The interpreter: `$PYTHON` if set, else `python3` from `PATH`.
fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails the calling test, once per process, when Python or `cryptography` is missing.
fn require_python() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let py = python();
        match Command::new(&py).args(["-c", "import cryptography"]).output() {
            Err(e) => Err(format!("cannot run `{py}`: {e}")),
            Ok(o) if !o.status.success() => {
                Err(format!("`{py}` cannot import cryptography: {}", String::from_utf8_lossy(&o.stderr).trim()))
            }
            Ok(_) => Ok(()),
        }
    });
    if let Err(why) = result {
        panic!(
            "{why}.\nThe SPEC cross-check needs Python 3.11+ with the `cryptography` package; install it with\n    \
             python3 -m pip install cryptography\n(CI installs it; set $PYTHON to use another interpreter)."
        );
    }
}

/// Runs `scripts/spec_check.py` with `args`, feeding `stdin` if given.
fn spec_check(args: &[&str], stdin: Option<&str>) -> Output {
    require_python();
    let mut child = Command::new(python())
        .arg(workspace().join("scripts/spec_check.py"))
        .args(args)
        // UTF-8 mode keeps non-ASCII keys and values intact whatever the test machine's locale.
        .env("PYTHONUTF8", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spec_check.py");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    pipe.write_all(stdin.unwrap_or("").as_bytes()).expect("write to spec_check.py");
    drop(pipe);
    child.wait_with_output().expect("wait for spec_check.py")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("spec_check.py prints UTF-8").trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Signs with the Python implementation and returns the printed JSON.
fn python_sign(key: &Keypair, nonce: u64, op: &Op) -> String {
    let seed = hex::encode(key.seed());
    let nonce = nonce.to_string();
    let mut args = vec!["sign", "--seed", &seed, "--chain-id", CHAIN_ID, "--nonce", &nonce];
    match op {
        Op::Put { key, value } => args.extend(["--put", key.as_str(), value.as_str()]),
        Op::Delete { key } => args.extend(["--delete", key.as_str()]),
    }
    let out = spec_check(&args, None);
    assert!(out.status.success(), "spec_check.py sign failed: {}", stderr(&out));
    stdout(&out)
}

/// Asks the Python implementation for the tx_id of a transaction; Err carries its rejection.
fn python_verify(json: &str) -> Result<String, String> {
    let out = spec_check(&["verify-tx", "--chain-id", CHAIN_ID], Some(json));
    if out.status.success() {
        Ok(stdout(&out))
    } else {
        Err(stderr(&out))
    }
}

/// Transactions that exercise each part of the signing bytes: both op tags, the empty value,
/// multi-byte UTF-8 (lengths in bytes), and the extreme nonces.
fn cases() -> Vec<(Keypair, u64, Op)> {
    let put = |k: &str, v: &str| Op::Put { key: k.into(), value: v.into() };
    vec![
        (client_key("alice"), 7, put("user:1", "John Doe")),
        (client_key("alice"), 0, put("flag", "")),
        (client_key("bob"), 42, put("名前/ключ", "héllo wörld 🌍")),
        (client_key("carol"), u64::MAX, Op::Delete { key: "user:1".into() }),
        (client_key("carol"), 1 << 40, Op::Delete { key: "ключ".into() }),
    ]
}

#[test]
fn python_signed_transactions_verify_in_rust() {
    let rules = TxRules::new(CHAIN_ID);
    for (key, nonce, op) in cases() {
        let json = python_sign(&key, nonce, &op);
        let tx = Transaction::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("Rust cannot parse {json}: {e}"));
        let verified = rules.verify(tx.clone()).unwrap_or_else(|e| panic!("Rust rejects Python's {json}: {e}"));
        // Ed25519 is deterministic: both implementations must produce the very same transaction.
        assert_eq!(tx, Transaction::sign(CHAIN_ID, &key, nonce, op), "Python and Rust signed differently");
        let python_id = python_verify(&json).unwrap_or_else(|e| panic!("Python rejects its own {json}: {e}"));
        assert_eq!(python_id, verified.id().to_hex(), "tx_ids disagree for {json}");
    }
}

#[test]
fn rust_signed_transactions_verify_in_python() {
    for (key, nonce, op) in cases() {
        let tx = Transaction::sign(CHAIN_ID, &key, nonce, op);
        let json = serde_json::to_string(&tx).expect("a transaction serializes");
        let python_id = python_verify(&json).unwrap_or_else(|e| panic!("Python rejects Rust's {json}: {e}"));
        assert_eq!(python_id, tx.tx_id().to_hex(), "tx_ids disagree for {json}");
    }
}

#[test]
fn tampered_transactions_are_rejected_by_both() {
    let rules = TxRules::new(CHAIN_ID);

    // Rust signs; the value is changed afterwards.
    let mut tx = Transaction::sign(CHAIN_ID, &client_key("alice"), 7, Op::Put { key: "k".into(), value: "v".into() });
    tx.op = Op::Put { key: "k".into(), value: "w".into() };
    assert!(matches!(rules.verify(tx.clone()), Err(ChainError::BadSignature { reason: SigError::Invalid, .. })));
    let e = python_verify(&serde_json::to_string(&tx).unwrap()).expect_err("Python accepted a changed value");
    assert!(e.contains("bad_signature"), "{e}");

    // Python signs; the nonce is changed afterwards.
    let json = python_sign(&client_key("bob"), 5, &Op::Delete { key: "k".into() });
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["nonce"] = 6.into();
    let tampered = v.to_string();
    let tx = Transaction::from_json(tampered.as_bytes()).unwrap();
    assert!(matches!(rules.verify(tx), Err(ChainError::BadSignature { reason: SigError::Invalid, .. })));
    let e = python_verify(&tampered).expect_err("Python accepted a changed nonce");
    assert!(e.contains("bad_signature"), "{e}");

    // The small-order forgery: OpenSSL's own ed25519 accepts it, so this checks that both sides
    // apply protocol §1's strict verification rather than a library default.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let forged = Transaction {
        chain_id: CHAIN_ID.into(),
        sender: PublicKey(identity),
        nonce: 1,
        op: Op::Put { key: "k".into(), value: "v".into() },
        signature: Signature(sig),
    };
    assert!(matches!(rules.verify(forged.clone()), Err(ChainError::BadSignature { reason: SigError::WeakKey, .. })));
    let e = python_verify(&serde_json::to_string(&forged).unwrap()).expect_err("Python accepted a small-order key");
    assert!(e.contains("small order"), "{e}");

    // A valid signature for another chain.
    let other = Transaction::sign("ordo-devnet", &client_key("carol"), 1, Op::Delete { key: "k".into() });
    assert!(matches!(rules.verify(other.clone()), Err(ChainError::WrongChainId { .. })));
    let e = python_verify(&serde_json::to_string(&other).unwrap()).expect_err("Python accepted another chain's tx");
    assert!(e.contains("wrong_chain_id"), "{e}");
}

#[test]
fn python_rederives_every_test_vector() {
    let file = workspace().join("docs/test-vectors.json");
    let out = spec_check(&["check-vectors", file.to_str().expect("UTF-8 path")], None);
    assert!(
        out.status.success(),
        "scripts/spec_check.py disagrees with docs/test-vectors.json:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("checks passed"), "{}", stdout(&out));
}

#[test]
fn python_check_fails_on_a_tampered_vectors_file() {
    // The Python check is only evidence of agreement if it can disagree: change one state_hash
    // and require a failure that names the field.
    let text = std::fs::read_to_string(workspace().join("docs/test-vectors.json")).expect("read the vectors");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("the vectors are JSON");
    let sh = v["chain"]["blocks"][2]["state_hash"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", &sh[..63], if sh.ends_with('0') { '1' } else { '0' });
    v["chain"]["blocks"][2]["state_hash"] = flipped.into();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tampered.json");
    std::fs::write(&path, v.to_string()).expect("write the tampered copy");
    let out = spec_check(&["check-vectors", path.to_str().unwrap()], None);
    assert!(!out.status.success(), "check-vectors passed a tampered file");
    assert!(stderr(&out).contains("/chain/blocks/2/state_hash"), "the failure should name the field: {}", stderr(&out));
}
