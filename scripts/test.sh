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
# Four phases, so that load from one kind of test does not break another's timed expectations
# (2 cores): everything else in parallel; then the suites that make load of their own — the attack
# suites (tens of thousands of packets at one daemon), the etcd clusters, the 6 MiB watch line —
# together; then the workers' suite (dnsperf while workers are killed) alone; then the
# timing-sensitive suites (SelectionTiming, HedgeTransactionTests) alone, so that no other load
# blurs the latencies they measure.
heavy='IntegrationTests\.(StreamLimitsTests|RecursionLimitsTests|EtcdRegistryTests|RegistryFaultsTests)|EtcdWatchTests|ControlChannelStreamingTests'
workers='IntegrationTests\.WorkersTests'
timing='SelectionTiming|HedgeTransactionTests'
swift test --skip-build --skip "$timing|$heavy|$workers"
swift test --skip-build --filter "$heavy"
swift test --skip-build --filter "$workers"
swift test --skip-build --filter "$timing"
