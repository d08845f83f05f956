#!/usr/bin/env bash
# Install the disk-image tools tests/carve/test_images.py drives to build its own test images:
# e2fsprogs (mkfs.ext4 -d, debugfs), fdisk (sfdisk), ewf-tools (ewfacquire, to make E01 files),
# xfsprogs (mkfs.xfs, for a real XFS superblock). Idempotent, non-interactive, quiet.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
    echo "install-image-tools.sh: must run as root" >&2
    exit 1
fi

packages=(e2fsprogs fdisk ewf-tools xfsprogs)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

# quiet unless something fails: apt's chatter goes to a log shown only then
log=$(mktemp)
if ! { apt-get update -qq &&
       apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
           "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-image-tools.sh: installing ${missing[*]} failed" >&2
    exit 1
fi
rm -f "$log"
