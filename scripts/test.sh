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
# Everything in parallel; then the attack suites, which push tens of thousands of packets at one
# daemon and would starve the others' timed expectations (a health check leaving the answers
# within 4 s); then the timing-sensitive suite alone, so that no other load blurs the latencies
# it measures.
heavy="StreamLimitsTests|RecursionLimitsTests"
swift test --skip-build --skip "SelectionTiming|$heavy"
swift test --skip-build --filter "$heavy"
swift test --skip-build --filter SelectionTiming
