#!/usr/bin/env bash
# Installs the Debian packages resolverd needs, only those missing.
#   scripts/install-deps.sh          build/run: libldns-dev, libsqlite3-dev (GRDB), pkg-config
#   scripts/install-deps.sh --test   also the test clients: dig, drill, kdig, getent's netns tools
set -euo pipefail

packages=(libldns-dev libsqlite3-dev pkg-config)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(dnsutils ldnsutils knot-dnsutils iproute2 libc-bin)
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
