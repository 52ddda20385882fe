#!/usr/bin/env bash
# Faults for the docker testnet, by node index:
#   fault.sh kill I | pause I | unpause I | disconnect I | reconnect I | restart I
#   fault.sh partition A B    cut every link between the nodes of group A and those of group B,
#                             e.g. `fault.sh partition 0,1 2,3`; each group still talks inside
#                             itself, and the API ports published on the host stay reachable
#   fault.sh heal             remove every partition rule from every running node
#
# The images are FROM scratch (no shell, no iptables inside), so a partition runs the host's
# iptables inside each container's network namespace (`nsenter -t <pid> -n`), which needs root.
# Rules live in a chain of their own, ORDO-PARTITION, hooked into INPUT and OUTPUT, so `heal`
# removes exactly what `partition` added. They vanish with the container in any case: removing
# a container (scripts/docker/testnet.sh down) removes its network namespace. Set IPTABLES to
# use another binary (e.g. IPTABLES=iptables-legacy) where the default one does not work.
set -euo pipefail
usage="usage: fault.sh kill|pause|unpause|disconnect|reconnect|restart I | partition A B | heal"
action="${1:?$usage}"
chain=ORDO-PARTITION
iptables="${IPTABLES:-iptables}"

ip_of() { echo "172.28.0.$((10+$1))"; }

# The PID of a running container's first process: its network namespace is the container's.
pid_of() {
  local pid
  pid="$(docker inspect -f '{{.State.Pid}}' "ordo-node$1")"
  [ "$pid" != "0" ] || { echo "ordo-node$1 is not running" >&2; exit 1; }
  echo "$pid"
}

# Runs iptables in node $1's network namespace.
ipt() {
  local node="$1"
  shift
  nsenter -t "$(pid_of "$node")" -n "$iptables" "$@"
}

# Creates the partition chain in node $1 and hooks it into INPUT and OUTPUT, once.
ensure_chain() {
  ipt "$1" -N "$chain" 2>/dev/null || true
  ipt "$1" -C INPUT -j "$chain" 2>/dev/null || ipt "$1" -I INPUT -j "$chain"
  ipt "$1" -C OUTPUT -j "$chain" 2>/dev/null || ipt "$1" -I OUTPUT -j "$chain"
}

# Drops everything node $1 exchanges with node $2 (in $1's namespace only).
cut_link() {
  ipt "$1" -A "$chain" -s "$(ip_of "$2")" -j DROP
  ipt "$1" -A "$chain" -d "$(ip_of "$2")" -j DROP
}

# Removes the partition chain from node $1, if it has one.
heal_node() {
  ipt "$1" -L "$chain" -n >/dev/null 2>&1 || return 0
  while ipt "$1" -D INPUT -j "$chain" 2>/dev/null; do :; done
  while ipt "$1" -D OUTPUT -j "$chain" 2>/dev/null; do :; done
  ipt "$1" -F "$chain"
  ipt "$1" -X "$chain"
}

check_tools() {
  command -v nsenter >/dev/null || { echo "nsenter not found (util-linux)" >&2; exit 1; }
  command -v "$iptables" >/dev/null || { echo "$iptables not found" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "partition and heal need root (nsenter into a container's namespace)" >&2; exit 1; }
}

case "$action" in
  partition)
    a="${2:?$usage}"
    b="${3:?$usage}"
    check_tools
    IFS=, read -ra group_a <<< "$a"
    IFS=, read -ra group_b <<< "$b"
    for i in "${group_a[@]}" "${group_b[@]}"; do ensure_chain "$i"; done
    for i in "${group_a[@]}"; do
      for j in "${group_b[@]}"; do
        [ "$i" != "$j" ] || { echo "node $i is in both groups" >&2; exit 2; }
        cut_link "$i" "$j"
        cut_link "$j" "$i"
      done
    done
    echo "partition ${a} | ${b}"
    exit 0
    ;;
  heal)
    check_tools
    for c in $(docker ps --filter name='^ordo-node[0-9]+$' --format '{{.Names}}'); do
      heal_node "${c#ordo-node}"
    done
    echo "heal"
    exit 0
    ;;
esac

i="${2:?node index}"
c="ordo-node$i"
case "$action" in
  kill) docker kill "$c" >/dev/null ;;
  pause) docker pause "$c" >/dev/null ;;
  unpause) docker unpause "$c" >/dev/null ;;
  disconnect) docker network disconnect ordo-testnet "$c" ;;
  reconnect) docker network connect --ip "172.28.0.$((10+i))" ordo-testnet "$c" ;;
  restart) docker start "$c" >/dev/null ;;
  *) echo "unknown action $action" >&2; echo "$usage" >&2; exit 2 ;;
esac
echo "$action $c"
