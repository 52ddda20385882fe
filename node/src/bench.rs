//! `ordo bench` (SPEC §8): a load generator that speaks only the REST API, like any client, and a
//! report people can trust.
//!
//! A run is one step, or one step per rate of a sweep (`--rates`). Before any clock starts, it
//! makes many sender keys and signs every transaction of the step on every core, and measures
//! this machine's signature ceiling (`ceiling`). Then submitters offer the requests at the
//! offered rate, round-robin over the nodes, moving a refused request on to the next node and
//! honouring `Retry-After` for the node that sent it (`submit`), while a follower reads the chain
//! block by block to see when each transaction committed (`watch`). The report (`report`) gives
//! committed throughput as a fraction of the ceiling, HDR latency percentiles, refusals per node
//! and each node's view before and after, and the CPU time the nodes spent per committed
//! transaction (from their `ordo_process_cpu_seconds_total`). The throughput is a result only
//! when every transaction committed; otherwise the command says how many did not and exits
//! non-zero.
//!
//! Layout: `sign` (keys, signing, request bodies), `ceiling`, `http` (answers sorted into taken,
//! refused, rejected), `submit`, `watch`, `report`.

mod ceiling;
mod http;
mod report;
mod sign;
mod submit;
mod subscribe;
mod watch;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ordo_chain::limits::{BATCH_MAX_TXS, BATCH_REQUEST_MAX_BYTES, VALUE_MAX_BYTES};
use ordo_chain::{Hash, TxRules};
use rand::RngCore;

use crate::cli::BenchArgs;
use ceiling::{Ceiling, CEILING_MEASURE_MS, CEILING_SAMPLE_TXS};
use http::{get_json, get_text, READ_TIMEOUT_MS};
use report::{Latencies, NodeReport, StepReport};
use sign::{Plan, STEP_MAX_TXS};
use submit::Offer;

/// How many `tx_id`s a report lists for spot checks.
const SAMPLE_TX_IDS: usize = 8;

/// One step of a run: how many transactions, offered at what rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    rate: u64,
    txs: usize,
}

/// The steps the arguments ask for, or the reason they make no sense.
fn steps(a: &BenchArgs) -> anyhow::Result<Vec<Step>> {
    if a.batch == 0 || a.clients == 0 || a.senders == 0 || a.txs == 0 {
        bail!("--txs, --batch, --clients and --senders must be at least 1");
    }
    if a.batch > BATCH_MAX_TXS {
        bail!("--batch {} is over the batch limit of {BATCH_MAX_TXS} transactions (SPEC §3)", a.batch);
    }
    if a.value_size > VALUE_MAX_BYTES {
        bail!("--value-size {} is over the value limit of {VALUE_MAX_BYTES} bytes (SPEC §3)", a.value_size);
    }
    if a.timeout == 0 {
        bail!("--timeout must be at least 1 second");
    }
    if a.rates.contains(&0) {
        bail!("every rate of --rates must be at least 1 tx/s (a sweep steps through offered loads)");
    }
    let rates: Vec<u64> = if a.rates.is_empty() { vec![a.rate] } else { a.rates.clone() };
    let steps: Vec<Step> = match a.duration {
        Some(0) => bail!("--duration must be at least 1 second"),
        Some(_) if rates == [0] => bail!("--duration needs --rate or --rates: a steady load has a rate"),
        Some(secs) => {
            rates.iter().map(|&rate| Step { rate, txs: (rate as usize).saturating_mul(secs as usize) }).collect()
        }
        None => rates.iter().map(|&rate| Step { rate, txs: a.txs }).collect(),
    };
    if let Some(s) = steps.iter().find(|s| s.txs > STEP_MAX_TXS) {
        bail!("a step of {} transactions is over the {STEP_MAX_TXS} the bench signs ahead; lower --rate, --duration or --txs", s.txs);
    }
    Ok(steps)
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let steps = steps(&a)?;
    let urls: Vec<String> = if a.nodes.is_empty() {
        (0..4).map(|i| format!("http://127.0.0.1:{}", 8080 + i)).collect()
    } else {
        a.nodes.iter().map(|n| n.trim_end_matches('/').to_string()).collect()
    };
    let reader = http::agent(READ_TIMEOUT_MS);
    let status = urls.iter().find_map(|u| get_json(&reader, u, "/v1/status").ok().flatten()).with_context(|| {
        format!("no node answered GET /v1/status at {}: is `ordo testnet` running?", urls.join(", "))
    })?;
    let chain_id = status["chain_id"].as_str().context("status has no chain_id")?.to_string();
    let validators = status["validators"].as_u64().context("status has no validators")? as usize;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

    let mut run_seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut run_seed);
    let run_tag: String = run_seed.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let total_txs: usize = steps.iter().map(|s| s.txs).sum();
    let sender_count = a.senders.min(total_txs);
    eprintln!("making {sender_count} sender keys for {chain_id} ...");
    let senders = sign::senders(sender_count, &run_seed, cores);
    let plan = Plan { chain_id: &chain_id, senders: &senders, run_tag: &run_tag, value_size: a.value_size };

    eprintln!("measuring the signature ceiling on {cores} cores ...");
    let sample: Vec<_> =
        sign::par_map(0..CEILING_SAMPLE_TXS.min(total_txs.max(a.batch)), cores, |i| plan.transaction("ceiling/", i));
    let ceiling = ceiling::measure(&TxRules::new(&chain_id), &sample, a.batch, cores, validators, CEILING_MEASURE_MS)?;
    drop(sample);

    let sweep = !a.rates.is_empty();
    if !a.json {
        println!("{}", report::ceiling_line(&ceiling));
        if sweep {
            println!("{}", report::sweep_header());
        }
    }
    let mut reports: Vec<StepReport> = Vec::new();
    let mut first_index = 0usize;
    for step in &steps {
        let r = run_step(&a, &urls, *step, first_index, &plan, &ceiling, cores)?;
        first_index += step.txs;
        if !a.json {
            if sweep {
                println!("{}", report::sweep_row(&r));
            } else {
                report::step_text(&r).iter().for_each(|l| println!("{l}"));
            }
        }
        let done = r.all_committed;
        reports.push(r);
        if !done {
            // A step that left transactions behind would muddle the next one's figures.
            break;
        }
    }
    if a.json {
        let doc =
            if sweep { serde_json::to_string_pretty(&reports)? } else { serde_json::to_string_pretty(&reports[0])? };
        println!("{doc}");
    }
    if let Some(e) = reports.iter().filter_map(|r| r.event_subscribers.as_ref()).find(|e| e.out_of_order > 0) {
        bail!(
            "the event streams broke their promise: {} block events out of order (a gap or a repeat)",
            e.out_of_order
        );
    }
    if let Some(r) = reports.iter().find(|r| !r.all_committed) {
        // The per-node refusals are "above": in the text report, or on stderr beside the JSON.
        if a.json || sweep {
            report::node_lines(r).iter().for_each(|l| eprintln!("{l}"));
        }
        bail!(
            "not every transaction committed: {} of {} committed, {} failed; see refusals per node above",
            r.committed,
            r.txs,
            r.failed
        );
    }
    Ok(())
}

/// Runs one step: signs its transactions, offers them, follows the chain, and reports.
fn run_step(
    a: &BenchArgs,
    urls: &[String],
    step: Step,
    first_index: usize,
    plan: &Plan<'_>,
    ceiling: &Ceiling,
    cores: usize,
) -> anyhow::Result<StepReport> {
    eprintln!("signing {} transactions on {cores} cores ...", step.txs);
    let requests = sign::requests(plan, first_index..first_index + step.txs, a.batch, cores);
    let all: Vec<usize> = (0..a.batch).collect();
    if let Some(big) = requests.iter().map(|r| r.body(&all[..r.ids.len()]).len()).max() {
        if big > BATCH_REQUEST_MAX_BYTES {
            bail!(
                "a request of {} transactions is {big} bytes, over the batch body limit of {BATCH_REQUEST_MAX_BYTES} \
                 (SPEC §3); lower --batch or --value-size",
                a.batch
            );
        }
    }
    let wanted: HashMap<Hash, usize> =
        requests.iter().flat_map(|r| r.ids.iter().copied()).enumerate().map(|(i, id)| (id, i)).collect();
    if wanted.len() != step.txs {
        bail!("the bench signed {} distinct transactions for {} (a bug in the bench)", wanted.len(), step.txs);
    }

    let reader = http::agent(READ_TIMEOUT_MS);
    let before = read_nodes(&reader, urls);
    // Our transactions can only be in blocks after the highest height any node has now.
    let from_height = urls
        .iter()
        .filter_map(|u| get_json(&reader, u, "/v1/status").ok().flatten())
        .filter_map(|s| s["height"].as_u64())
        .max()
        .context("no node answered GET /v1/status")?;

    let bar = progress_bar(step.txs as u64);
    let bench_cpu_before = ordo_api::metrics::process_cpu_seconds();
    let started = Instant::now();
    let offer_secs = if step.rate > 0 { step.txs as f64 / step.rate as f64 } else { 0.0 };
    let deadline = started + Duration::from_secs_f64(offer_secs) + Duration::from_secs(a.timeout);
    let offer = Offer::new(&requests, a.batch, urls, step.rate, started, deadline, a.clients, bar.clone());
    let stop_subscribers = AtomicBool::new(false);
    let subscribers_until = AtomicU64::new(0);
    let (seen, tallies) = std::thread::scope(|s| {
        let subscribers: Vec<_> = (0..a.subscribers)
            .map(|i| {
                let url = &urls[i % urls.len()];
                let (stop, until) = (&stop_subscribers, &subscribers_until);
                let headers_only = a.subscribers_headers_only;
                s.spawn(move || subscribe::follow(url, from_height, headers_only, stop, until))
            })
            .collect();
        for _ in 0..a.clients {
            s.spawn(|| offer.submitter());
        }
        let follower = s.spawn(|| watch::follow(urls, from_height, &wanted, &offer, &bar));
        let seen = follower.join().expect("the chain follower panicked");
        // The subscribers read up to the highest block any node has now, then stop.
        let tip = urls
            .iter()
            .filter_map(|u| get_json(&reader, u, "/v1/status").ok().flatten())
            .filter_map(|s| s["height"].as_u64())
            .max()
            .unwrap_or(from_height);
        subscribers_until.store(tip, Ordering::Release);
        stop_subscribers.store(true, Ordering::Release);
        let tallies: Vec<subscribe::Tally> =
            subscribers.into_iter().map(|h| h.join().expect("an event subscriber panicked")).collect();
        (seen, tallies)
    });
    let submit_seconds = started.elapsed().as_secs_f64();
    let bench_cpu = (ordo_api::metrics::process_cpu_seconds() - bench_cpu_before).max(0.0);
    bar.finish_and_clear();
    let after = read_nodes(&reader, urls);

    let mut latencies = Latencies::new();
    for (tx, at) in seen.commit_at.iter().enumerate() {
        if let (Some(at), Some(offered)) = (at, offer.offered_at(offer.request_of(tx))) {
            latencies.record(at.saturating_duration_since(offered));
        }
    }
    let offers: Vec<(Instant, usize)> =
        (0..requests.len()).filter_map(|r| offer.offered_at(r).map(|t| (t, requests[r].ids.len()))).collect();
    let first_offer = offers.iter().map(|o| o.0).min().unwrap_or(started);
    let last_commit = seen.commit_at.iter().flatten().max().copied().unwrap_or(first_offer);
    let window = last_commit.saturating_duration_since(first_offer).as_secs_f64().max(1e-9);
    let all_committed = seen.committed == step.txs;
    let throughput = all_committed.then(|| report::round(seen.committed as f64 / window, 1));
    let per_node: Vec<NodeReport> = offer
        .node_stats()
        .into_iter()
        .zip(before.into_iter().zip(after))
        .map(|((url, stats), (b, f))| NodeReport {
            url,
            stats,
            view_before: b.view,
            view_after: f.view,
            view_changes_total_before: b.view_changes_total,
            view_changes_total_after: f.view_changes_total,
            cpu_seconds: report::cpu_during(b.cpu_seconds, f.cpu_seconds),
            signature_checks: report::count_during(b.signature_checks, f.signature_checks),
        })
        .collect();
    let node_cpu = report::total_cpu_seconds(&per_node);
    let checks = report::total_signature_checks(&per_node);
    let ids: Vec<&Hash> = requests.iter().flat_map(|r| r.ids.iter()).collect();
    let spacing = (ids.len() / SAMPLE_TX_IDS).max(1);
    Ok(StepReport {
        nodes: urls.to_vec(),
        validators: ceiling.validators,
        txs: step.txs,
        senders: plan.senders.len().min(step.txs),
        offered_rate: step.rate,
        duration_seconds: a.duration,
        batch: a.batch,
        clients: a.clients,
        value_size: a.value_size,
        offered_actual_tx_per_s: report::achieved_rate(&offers),
        requests: per_node.iter().map(|n| n.stats.requests).sum(),
        admitted: offer.admitted(),
        committed: seen.committed,
        failed: step.txs - seen.committed,
        rejected: per_node.iter().flat_map(|n| n.stats.rejected.values()).sum(),
        never_offered: offer.never_offered(),
        all_committed,
        refusals: offer.refused_txs(),
        blocks: seen.blocks,
        first_height: seen.first_height,
        last_height: seen.last_height,
        submit_seconds: report::round(submit_seconds, 2),
        commit_window_seconds: report::round(window, 2),
        throughput_tx_per_s: throughput,
        ceiling_tx_per_s: report::round(ceiling.tx_per_s, 1),
        fraction_of_ceiling: throughput.map(|t| report::round(t / ceiling.tx_per_s, 4)),
        ceiling: ceiling.clone(),
        latency_ms: latencies.percentiles(),
        view_changes: per_node.iter().filter_map(NodeReport::view_changes).max(),
        node_cpu_seconds: node_cpu.map(|c| report::round(c, 3)),
        node_cpu_us_per_tx: node_cpu
            .filter(|_| seen.committed > 0)
            .map(|c| report::round(c * 1e6 / seen.committed as f64, 1)),
        bench_cpu_seconds: report::round(bench_cpu, 3),
        bench_cpu_us_per_tx: (seen.committed > 0).then(|| report::round(bench_cpu * 1e6 / seen.committed as f64, 1)),
        signature_checks: checks,
        signature_checks_per_tx: checks
            .filter(|_| seen.committed > 0)
            .map(|c| report::round(c as f64 / seen.committed as f64, 3)),
        per_node,
        sample_tx_ids: ids.iter().step_by(spacing).take(SAMPLE_TX_IDS).map(|h| h.to_hex()).collect(),
        event_subscribers: subscribe::SubscribersReport::of(&tallies),
    })
}

/// What the bench reads of one node before and after a step; each part `None` where the node
/// did not answer or does not serve it.
#[derive(Default)]
struct NodeReading {
    /// The PBFT view or Raft term.
    view: Option<u64>,
    /// `ordo_consensus_view_changes_total`.
    view_changes_total: Option<u64>,
    /// `ordo_process_cpu_seconds_total`.
    cpu_seconds: Option<f64>,
    /// `ordo_signature_checks_total`, both paths.
    signature_checks: Option<f64>,
}

/// Each node's view or term, view-change count and CPU time. Asked all at once, so a paused node
/// costs one read timeout, not one per node.
fn read_nodes(agent: &ureq::Agent, urls: &[String]) -> Vec<NodeReading> {
    std::thread::scope(|s| {
        let handles: Vec<_> = urls
            .iter()
            .map(|u| {
                s.spawn(move || {
                    let Some(status) = get_json(agent, u, "/v1/status").ok().flatten() else {
                        return NodeReading::default();
                    };
                    let view = status["view"].as_u64().or_else(|| status["term"].as_u64());
                    let metrics = get_text(agent, u, "/metrics");
                    NodeReading {
                        view,
                        view_changes_total: metrics.as_deref().and_then(report::view_changes_total),
                        cpu_seconds: metrics.as_deref().and_then(report::process_cpu_seconds),
                        signature_checks: metrics.as_deref().and_then(report::signature_checks),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a status reader panicked")).collect()
    })
}

/// A progress bar of committed transactions on a terminal; hidden when stderr is not one.
fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} committed, {msg}")
            .expect("the progress template is valid")
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Result<BenchArgs, clap::Error> {
        let cli = crate::cli::Cli::try_parse_from([&["ordo", "bench"], extra].concat())?;
        match cli.command {
            crate::cli::Command::Bench(a) => Ok(a),
            _ => unreachable!("parsed a bench command"),
        }
    }

    #[test]
    fn steps_follow_the_arguments() {
        let s = |extra: &[&str]| steps(&args(extra).unwrap());
        assert_eq!(s(&[]).unwrap(), vec![Step { rate: 0, txs: 20_000 }]);
        assert_eq!(s(&["--txs", "50", "--rate", "10"]).unwrap(), vec![Step { rate: 10, txs: 50 }]);
        assert_eq!(
            s(&["--rates", "200,500", "--txs", "300"]).unwrap(),
            vec![Step { rate: 200, txs: 300 }, Step { rate: 500, txs: 300 }]
        );
        assert_eq!(s(&["--rate", "100", "--duration", "3"]).unwrap(), vec![Step { rate: 100, txs: 300 }]);
        assert_eq!(
            s(&["--rates", "10,20", "--duration", "2"]).unwrap(),
            vec![Step { rate: 10, txs: 20 }, Step { rate: 20, txs: 40 }]
        );
    }

    #[test]
    fn senseless_arguments_are_refused_with_a_reason() {
        let e = |extra: &[&str]| steps(&args(extra).unwrap()).unwrap_err().to_string();
        assert!(e(&["--duration", "5"]).contains("--duration needs --rate"));
        assert!(e(&["--rate", "10", "--duration", "0"]).contains("--duration"));
        assert!(e(&["--rates", "100,0"]).contains("--rates"));
        assert!(e(&["--batch", "1001"]).contains("batch limit"));
        assert!(e(&["--batch", "0"]).contains("at least 1"));
        assert!(e(&["--senders", "0"]).contains("at least 1"));
        assert!(e(&["--timeout", "0"]).contains("--timeout"));
        assert!(e(&["--value-size", "70000"]).contains("value limit"));
        assert!(e(&["--rate", "1000000", "--duration", "10"]).contains("signs ahead"));
        // Exclusive flags are clap's to refuse.
        assert!(args(&["--rate", "5", "--rates", "1,2"]).is_err());
        assert!(args(&["--txs", "5", "--duration", "2", "--rate", "1"]).is_err());
    }
}
