#!/usr/bin/env bash
# Emitter benchmark, side by side in one run (bench/run_emitter.py):
# redis-benchmark's pipelined PUBLISH ceiling, sioemit --batch, emitter.Batch (Emit and EmitJSON)
# from Go, @socket.io/redis-emitter and python-socketio's write-only
# RedisManager, against a private redis-server, in rotating rounds.
#   bench/run-emitter.sh [-n 200000] [-rounds 3] [-url redis://host:port/0]
# Needs scripts/setup.sh to have run (redis-server, Debian's python3-socketio,
# npm ci in compat_test/node).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/sioemit" ./cmd/sioemit
go build -o "$bin/emitbench" ./bench/emitbench
/usr/bin/python3 bench/run_emitter.py -bin "$bin" "$@"
