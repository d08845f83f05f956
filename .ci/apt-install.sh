#!/usr/bin/env bash
# Install Debian packages for the tests: idempotent, non-interactive, quiet unless it fails.
# Usage: apt-install.sh WHO PACKAGE...   (WHO names the caller in error messages)
# Never starts services: there is no init system in CI and the test fixtures start private
# instances themselves (invoke-rc.d honours a policy-rc.d exiting 101 = "action forbidden").
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
who=$1
shift

if [ "$(id -u)" -ne 0 ]; then
    echo "$who: must run as root" >&2
    exit 1
fi

missing=()
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

log=$(mktemp)
if ! { apt-get update -qq &&
       apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
           "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$who: installing ${missing[*]} failed" >&2
    exit 1
fi
rm -f "$log"
