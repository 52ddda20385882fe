#!/usr/bin/env bash
# view-change-checks.sh BIN: a 60k burst, then the leader killed, then 2,000 through the survivors: their
# batched checks across the view change, and the bench's figures.
B=$1
pkill -INT -f "testnet --dir /tmp/user/net" ; sleep 2; rm -rf /tmp/user/net
($B testnet --dir /tmp/user/net > /tmp/user/vc-testnet.log 2>&1 &); sleep 5; $B bench --txs 3000 > /dev/null 2>&1
$B bench --txs 60000 --batch 1000 --json 2>/dev/null | python3 -c "import json,sys;r=json.load(sys.stdin);r=r[0] if isinstance(r,list) else r;print('burst', r['throughput_tx_per_s'], 'blocks', r['first_height'], r['last_height'])"
checks() { for p in 8081 8082 8083; do curl -s localhost:$p/metrics | awk '/^ordo_signature_checks_total\{path="batch"\}/ {printf "%s ", $2}'; done; echo; }
a=$(checks); $B testnet kill leader --dir /tmp/user/net >/dev/null
$B bench --txs 2000 --node http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 --json 2>/dev/null | python3 -c "import json,sys;r=json.load(sys.stdin);r=r[0] if isinstance(r,list) else r;print('after kill: committed', r['committed'], 'window', r['commit_window_seconds'], 's  p50', r['latency_ms']['p50'], 'max', r['latency_ms']['max'], 'view changes', r['view_changes'], 'node cpu s', r['node_cpu_seconds'])"
b=$(checks); echo "checks before: $a"; echo "checks after:  $b"
pkill -INT -f "testnet --dir /tmp/user/net"
