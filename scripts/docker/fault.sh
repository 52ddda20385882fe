#!/usr/bin/env bash
# Faults for the docker testnet, by node index:
#   fault.sh kill I | pause I | unpause I | disconnect I | reconnect I | restart I
set -euo pipefail
action="${1:?usage: fault.sh kill|pause|unpause|disconnect|reconnect|restart I}"
i="${2:?node index}"
c="ordo-node$i"
case "$action" in
  kill) docker kill "$c" >/dev/null ;;
  pause) docker pause "$c" >/dev/null ;;
  unpause) docker unpause "$c" >/dev/null ;;
  disconnect) docker network disconnect ordo-testnet "$c" ;;
  reconnect) docker network connect --ip "172.28.0.$((10+i))" ordo-testnet "$c" ;;
  restart) docker start "$c" >/dev/null ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
echo "$action $c"
