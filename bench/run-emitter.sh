#!/usr/bin/env bash
# Emitter benchmark: Go emitter vs @socket.io/redis-emitter vs python-socketio
# vs redis-benchmark pipelined PUBLISH, one run, same Redis.
#   bench/run-emitter.sh [-n 200000] [-rounds 3]
# Needs scripts/setup.sh to have run (Redis, Debian's python3-socketio, npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/siobridge-emitbench ./bench/emitbench
exec /usr/bin/python3 bench/run_emitter.py -emitbench /tmp/siobridge-emitbench "$@"
