#!/usr/bin/env bash
# Print the source fingerprint of a checkout: the SHA-256 of the sorted `sha256sum` lines of every
# file the qemu-test binary is built from (Cargo.toml, Cargo.lock, build.rs, src/, configs/).
#   usage: scripts/action/fingerprint.sh [DIR]      (default: the checkout holding this script)
# The release workflow records it in dist/source.sha256; install.sh recomputes it to tell a release
# checkout (its binary may be downloaded) from a branch or commit pin (it must be built).
# No git needed: the runner's copy of an action has no .git directory.
set -euo pipefail
dir=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$dir"
export LC_ALL=C
{
    for f in Cargo.toml Cargo.lock build.rs; do
        if [ -f "$f" ]; then printf '%s\0' "$f"; fi
    done
    for d in src configs; do
        if [ -d "$d" ]; then find "$d" -type f -print0; fi
    done
} | sort -z | xargs -0 --no-run-if-empty sha256sum -- | sha256sum | cut -d' ' -f1
