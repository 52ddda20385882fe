//! This machine's signature ceiling, measured in the same run as the load: every validator checks
//! every transaction's ed25519 signature (the API node when it is submitted, the others when it
//! is gossiped), so on one machine running the whole committee no more transactions per second
//! can commit than the machine's cores verify, divided by the validators sharing them.
//!
//! It runs the chain crate's own check (`TxRules::verify_many`: static rules, signing bytes,
//! `tx_id`, one ed25519 batch per request) on transactions the bench signed with its many
//! sender keys, on every core at once for about a second, before the load starts.

use std::time::{Duration, Instant};

use anyhow::bail;
use ordo_chain::{Transaction, TxRules};
use serde::Serialize;

/// How long the measurement runs on every core.
pub const CEILING_MEASURE_MS: u64 = 1_000;
/// How many distinct transactions the measurement cycles through.
pub const CEILING_SAMPLE_TXS: usize = 4_096;

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub cores: usize,
    pub validators: usize,
    /// Transactions per `verify_many` call: the bench's request size, as the API checks a request.
    pub batch: usize,
    pub verified: u64,
    pub seconds: f64,
    pub per_core_verify_per_s: f64,
    /// `per_core_verify_per_s x cores / validators`.
    pub tx_per_s: f64,
}

/// Verifies `sample` in batches of `batch` on `cores` threads for `for_ms`, cycling through it.
/// Fails if any of the bench's own transactions does not verify: a ceiling measured on refused
/// transactions would measure the wrong path.
pub fn measure(
    rules: &TxRules,
    sample: &[Transaction],
    batch: usize,
    cores: usize,
    validators: usize,
    for_ms: u64,
) -> anyhow::Result<Ceiling> {
    if sample.is_empty() || batch == 0 || cores == 0 || validators == 0 {
        bail!(
            "the signature ceiling needs transactions, a batch, cores and validators (got {}, {batch}, {cores}, {validators})",
            sample.len()
        );
    }
    let batch = batch.min(sample.len());
    let budget = Duration::from_millis(for_ms);
    let per_thread: Vec<anyhow::Result<(u64, Duration)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|t| {
                s.spawn(move || {
                    let started = Instant::now();
                    let mut verified = 0u64;
                    // Each thread starts at its own place in the sample, as cores of a node would
                    // be checking different requests.
                    let mut at = (t * batch) % sample.len();
                    while started.elapsed() < budget {
                        let chunk: Vec<Transaction> =
                            (0..batch).map(|k| sample[(at + k) % sample.len()].clone()).collect();
                        at = (at + batch) % sample.len();
                        if let Some(Err(e)) = rules.verify_many(chunk).into_iter().find(Result::is_err) {
                            bail!("the bench's own transaction failed verification: {e}");
                        }
                        verified += batch as u64;
                    }
                    Ok((verified, started.elapsed()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a verifying thread panicked")).collect()
    });
    let mut verified = 0u64;
    let mut longest = Duration::ZERO;
    for r in per_thread {
        let (n, took) = r?;
        verified += n;
        longest = longest.max(took);
    }
    // All cores ran at once; the slowest one's time is the span of the whole measurement.
    let seconds = longest.as_secs_f64().max(1e-9);
    let per_core_verify_per_s = verified as f64 / seconds / cores as f64;
    Ok(Ceiling {
        cores,
        validators,
        batch,
        verified,
        seconds,
        per_core_verify_per_s,
        tx_per_s: per_core_verify_per_s * cores as f64 / validators as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::sign::{senders, Plan};

    fn sample(n: usize) -> Vec<Transaction> {
        let keys = senders(8, &[9; 32], 2);
        let plan = Plan { chain_id: "ordo-test", senders: &keys, run_tag: "c", value_size: 4 };
        (0..n).map(|i| plan.transaction("ceiling/", i)).collect()
    }

    #[test]
    fn the_ceiling_is_the_per_core_rate_times_cores_over_validators() {
        let c = measure(&TxRules::new("ordo-test"), &sample(40), 16, 2, 4, 50).unwrap();
        assert!(c.verified >= 32, "both threads verified at least one batch: {c:?}");
        assert_eq!(c.verified % 16, 0, "whole batches only: {c:?}");
        assert!(c.seconds >= 0.05, "{c:?}");
        let expected = c.verified as f64 / c.seconds / 4.0;
        assert!((c.tx_per_s - expected).abs() < 1e-6 * expected, "{c:?}");
        assert!((c.per_core_verify_per_s * 2.0 - c.verified as f64 / c.seconds).abs() < 1e-6 * c.tx_per_s, "{c:?}");
    }

    #[test]
    fn a_transaction_that_does_not_verify_stops_the_measurement() {
        let mut txs = sample(10);
        txs[3].signature.0[7] ^= 1;
        let e = measure(&TxRules::new("ordo-test"), &txs, 10, 1, 4, 50).unwrap_err();
        assert!(e.to_string().contains("failed verification"), "{e}");
        // Transactions of another chain are refused by the rules, not counted.
        assert!(measure(&TxRules::new("other-chain"), &sample(4), 4, 1, 4, 50).is_err());
        assert!(measure(&TxRules::new("ordo-test"), &sample(4), 4, 1, 0, 50).is_err());
    }
}
