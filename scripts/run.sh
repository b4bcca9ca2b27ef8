#!/usr/bin/env bash
# Builds resolverd (release) and runs it with config/resolverd.toml, installing libldns-dev first
# when it is missing. Extra arguments go to resolverd (for example --listen 127.0.0.1:5353).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product resolverd
swift build -c release --product dig-lite
exec .build/release/resolverd --config config/resolverd.toml "$@"
