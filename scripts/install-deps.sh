#!/usr/bin/env bash
# Installs the Debian packages resolverd needs, only those missing.
#   scripts/install-deps.sh          build/run: libldns-dev, libsqlite3-dev (GRDB), pkg-config
#   scripts/install-deps.sh --test   also the test clients (dig, drill, kdig, getent's netns tools,
#                                    dnsperf for the load under worker kills) and NSD, the real
#                                    authoritative server of the recursion tests
set -euo pipefail

packages=(libldns-dev libsqlite3-dev pkg-config)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(dnsutils ldnsutils knot-dnsutils iproute2 libc-bin nsd dnsperf)
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

# The nsd package starts a system NSD on port 53 of every address when an init system lets it;
# the tests run their own NSD and fake servers on 127.x.y.z:53, so the packaged one is stopped
# and kept from starting again.
if [[ " ${missing[*]} " == *" nsd "* ]]; then
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        $sudo systemctl disable --now nsd.service >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/nsd ]]; then
        $sudo /etc/init.d/nsd stop >/dev/null 2>&1 || true
        $sudo update-rc.d nsd disable >/dev/null 2>&1 || true
    fi
fi
