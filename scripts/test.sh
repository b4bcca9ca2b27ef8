#!/usr/bin/env bash
# Runs every test: unit tests and the integration suite, which starts the real resolverd binary
# on loopback against fake upstream servers and queries it with dig, drill, kdig, dig-lite and
# glibc (getent in a network namespace; this one needs root, or sudo without a password).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build "$@"
