#!/usr/bin/env bash
# Install the real daemons the integration tests (pytest -m daemon) drive:
# PostgreSQL and rsyslog from Debian's own archive. Idempotent, non-interactive, quiet.
# It does NOT start any service: the test fixtures start private instances themselves.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
    echo "install-daemons.sh: must run as root" >&2
    exit 1
fi

packages=(postgresql postgresql-client rsyslog)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

# No init system in the CI container: keep maintainer scripts from starting services
# (invoke-rc.d honours policy-rc.d exit code 101 = "action forbidden").
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

# quiet unless something fails: apt's and debconf's chatter goes to a log shown only then
log=$(mktemp)
if ! { apt-get update -qq &&
       apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
           "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-daemons.sh: installing ${missing[*]} failed" >&2
    exit 1
fi
rm -f "$log"
