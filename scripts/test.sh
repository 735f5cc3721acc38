#!/usr/bin/env bash
# The test suite, from a fresh Debian 12 machine: host packages (QEMU, cross compiler, tools),
# the fixture guests (built from Debian packages, cached under target/fixtures), then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi
bash fixtures/build.sh
# Test-only tools: real consumers of the action's outputs (@actions/glob, as upload-artifact uses it).
npm ci --prefix tests/tools/node --no-audit --no-fund --loglevel=error
cargo test --locked "$@"
