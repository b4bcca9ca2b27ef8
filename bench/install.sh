#!/bin/sh
# Installs what the benchmarks need on Debian: the resolvers compared against and dnsperf; then
# scripts/install-deps.sh --test adds dig and NSD (the authoritative servers of
# bench/recursion.py's fake hierarchy, with the packaged NSD kept stopped) and the build's needs.
# Runs apt only for what is missing.
set -eu
missing=""
for pair in unbound:unbound pdns_recursor:pdns-recursor kresd:knot-resolver dnsmasq:dnsmasq-base \
            dnsperf:dnsperf taskset:util-linux; do
    binary=${pair%%:*}
    package=${pair#*:}
    if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$binary" ]; then
        missing="$missing $package"
    fi
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -q
    # The benchmarks start their own instances on loopback ports; the packaged services are not used.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi
"$(dirname "$0")/../scripts/install-deps.sh" --test
