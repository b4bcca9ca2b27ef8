#!/bin/sh
# Installs what the benchmarks need on Debian: the resolvers compared against, dnsperf, and NSD
# (the authoritative servers of bench/recursion.py's fake hierarchy).
# Runs apt only for what is missing.
set -eu
missing=""
for pair in unbound:unbound pdns_recursor:pdns-recursor kresd:knot-resolver dnsmasq:dnsmasq-base \
            dnsperf:dnsperf taskset:util-linux nsd:nsd dig:dnsutils; do
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
    # nsd's package starts a system nsd on port 53 of every address; bench/recursion.py needs
    # 127.53.0.x:53 for its own instances, so the packaged one is stopped and kept from starting.
    case "$missing" in
    *" nsd"*)
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            $sudo systemctl disable --now nsd.service >/dev/null 2>&1 || true
        elif [ -x /etc/init.d/nsd ]; then
            $sudo /etc/init.d/nsd stop >/dev/null 2>&1 || true
            $sudo update-rc.d nsd disable >/dev/null 2>&1 || true
        fi
        ;;
    esac
fi
"$(dirname "$0")/../scripts/install-deps.sh"
