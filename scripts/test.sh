#!/usr/bin/env bash
# The one command that runs every test: set-up, static checks, unit,
# integration (real brokers) and compat (real peers) tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The set-up above installs and starts every broker and peer, so a missing one is a failure, not a skip.
export SIOBRIDGE_REQUIRE_BROKERS=1 SIOBRIDGE_REQUIRE_PEERS=1
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/siobridge-test.log
echo "== 10,000 WebSocket clients (without the race detector, which caps live goroutines at 8128)"
go test -count=1 -run 'TestManyWebSocketClients' ./server/engineio 2>&1 | tee -a /tmp/siobridge-test.log
passed=$(grep -c '^ok ' /tmp/siobridge-test.log || true)
failed=$(grep -c '^FAIL' /tmp/siobridge-test.log || true)
echo "packages: $passed passed, $failed failed"
