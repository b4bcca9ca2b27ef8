#!/usr/bin/env bash
# Installs the Debian packages resolverd needs, only those missing.
#   scripts/install-deps.sh          build/run: libldns-dev, libsqlite3-dev (GRDB), pkg-config
#   scripts/install-deps.sh --test   also the test clients (dig, drill, kdig, getent's netns tools,
#                                    dnsperf for the load under worker kills), NSD (the real
#                                    authoritative server of the recursion tests) and etcd (the
#                                    shared registry's tests start a cluster of their own, with
#                                    certificates made by openssl and checked with curl)
set -euo pipefail

packages=(libldns-dev libsqlite3-dev pkg-config)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(dnsutils ldnsutils knot-dnsutils iproute2 libc-bin nsd dnsperf etcd-server openssl curl)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

# The nsd and etcd-server packages start system services when an init system lets them (NSD on
# port 53 of every address, etcd on 127.0.0.1:2379); the tests run their own, so the packaged ones
# are stopped and kept from starting again.
for service in nsd etcd; do
    package=$service
    [[ $service == etcd ]] && package=etcd-server
    [[ " ${missing[*]} " == *" $package "* ]] || continue
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        $sudo systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/$service ]]; then
        $sudo "/etc/init.d/$service" stop >/dev/null 2>&1 || true
        $sudo update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
done
