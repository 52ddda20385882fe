#!/usr/bin/env python3
"""Where the validators' CPU goes, by path: a budget table from a call-graph profile.

    perf record -F 499 --call-graph dwarf,16384 -p PID0,PID1,PID2,PID3 -o all.perf   # during a burst
    perf script -i all.perf > all.script         # or -F comm,pid,tid,ip,sym: either format
    scripts/profile-budget.py all.script [--us-per-tx 96.8]

Each sample is counted once, in the first path below whose pattern matches a frame anywhere in its
call chain; so the order is a priority (transaction signatures before the gossip path that calls
them, the safety record before the store writes). With --us-per-tx (`node_cpu_us_per_tx` of the
`ordo bench` report of the same burst), each share is also given in microseconds of committee CPU
per committed transaction. Prints a Markdown table, largest first (docs/performance.md, round 14).
"""

import argparse
import collections
import re
import sys

PATHS = [
    ("sender keys decompressed (key cache misses)", r"PublicKey::to_verifying_key"),
    ("transaction signatures (batch verification)", r"ordo_chain::crypto::verify_batch|ed25519_dalek::batch"),
    ("consensus message signatures (sign, verify)", r"verify_strict|ed25519_dalek::signing|Keypair::sign$"),
    ("PBFT safety record (synced write)", r"save_safety"),
    ("block commit: RocksDB write (memtable, WAL, sync)", r"RocksStore as ordo_chain::store::Store>::commit$"),
    ("committed-id lookups (RocksDB MultiGet)", r"RocksStore as ordo_chain::store::Store>::committed$"),
    ("RocksDB background (flush, compaction)", r"rocksdb::(FlushJob|CompactionJob|DBImpl::Background)"),
    ("mempool and consensus pool bookkeeping", r"ordo_consensus::pool::TxPool|ordo_chain::mempool::Mempool::|Ledger::admit"),
    ("block build, execution, tx_root", r"Block::build|merkle::tx_root|state::execute|state_hash"),
    ("HTTP API (hyper, axum, JSON, hex)", r"hyper|axum|ordo_api::"),
    ("p2p (libp2p tasks: yamux, Noise, gossipsub)", r"libp2p|yamux|snow::|multistream"),
    ("decoding transactions and consensus messages", r"decode_txs|Transaction::decode|codec::"),
    ("gossip admission, other (staging, ids, in-flight claims)", r"ordo::inbound::"),
    ("consensus core and driver, other", r"ordo_consensus::|ordo::driver"),
    ("tokio runtime (scheduling, timers, I/O polling)", r"tokio::runtime"),
]
KERNEL = re.compile(r"entry_SYSCALL_64|asm_exc_page_fault|asm_sysvec|ret_from_fork")
COMPILED = [(name, re.compile(p)) for name, p in PATHS]


# `perf script`'s default frame: "ADDR SYMBOL+0xOFF (DSO)"; with `-F ...,ip,sym`: "ADDR SYMBOL".
# Inlined frames end in " (inlined)" in both.
FRAME_TAIL = re.compile(r"(\+0x[0-9a-f]+)?( \([^()]*\))?$")


def frame(text):
    """The symbol of one stack line, without its offset, DSO or inlining mark."""
    return FRAME_TAIL.sub("", text.removesuffix(" (inlined)"), count=1)


def samples(lines):
    """Yields each sample's call chain (innermost frame first), as bare symbols."""
    stack = []
    for line in lines:
        if line.startswith("\t"):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                stack.append(frame(parts[1]))
        else:
            if stack:
                yield stack
            stack = []
    if stack:
        yield stack


def classify(stack):
    for name, pattern in COMPILED:
        if any(pattern.search(frame) for frame in stack):
            return name
    return "kernel, other" if any(KERNEL.search(f) for f in stack) else "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("script", help="output of `perf script -F comm,pid,tid,ip,sym` (- for stdin)")
    ap.add_argument("--us-per-tx", type=float, help="the burst's node_cpu_us_per_tx, to give each share in microseconds")
    a = ap.parse_args()
    f = sys.stdin if a.script == "-" else open(a.script, errors="replace")
    counts = collections.Counter(classify(s) for s in samples(f))
    total = sum(counts.values())
    if total == 0:
        sys.exit("profile-budget: no samples with call chains in the input")
    print(f"{total} samples")
    print("| path | share of node CPU |" + (" µs per committed tx |" if a.us_per_tx else ""))
    print("| --- | --- |" + (" --- |" if a.us_per_tx else ""))
    for name, n in counts.most_common():
        us = f" {a.us_per_tx * n / total:.1f} |" if a.us_per_tx else ""
        print(f"| {name} | {100 * n / total:.1f}% |{us}")


if __name__ == "__main__":
    main()
