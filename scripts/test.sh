#!/usr/bin/env bash
# Runs every test: unit tests and the integration suite, which starts the real resolverd binary
# on loopback against fake upstream servers and queries it with dig, drill, kdig, dig-lite and
# glibc (getent in a network namespace; this one needs root, or sudo without a password).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
if [[ $# -gt 0 ]]; then
    exec swift test --skip-build "$@"
fi
# Everything in parallel, then the timing-sensitive suite alone, so that other tests' load does
# not blur the latencies it measures.
swift test --skip-build --skip SelectionTiming
swift test --skip-build --filter SelectionTiming
