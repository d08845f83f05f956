#!/usr/bin/env bash
# The disk-image tools tests/carve/test_images.py drives to build its own test images:
# e2fsprogs (mkfs.ext4 -d, debugfs), fdisk (sfdisk), ewf-tools (ewfacquire, to make E01 files),
# xfsprogs (mkfs.xfs, for a real XFS superblock).
exec "$(dirname "$0")/apt-install.sh" install-image-tools.sh e2fsprogs fdisk ewf-tools xfsprogs
