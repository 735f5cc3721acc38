#!/usr/bin/env bash
# The test suite, from a fresh Debian 12 machine: host packages (QEMU, cross compiler, tools),
# the fixture guests (built from Debian packages, cached under target/fixtures), then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi
bash fixtures/build.sh
# Test-only tools: real consumers of the action's outputs (@actions/glob, as upload-artifact uses it;
# test-results-parser, a JUnit reader).
npm ci --prefix tests/tools/node --no-audit --no-fund --loglevel=error
# JUnit consumers from PyPI (junitparser, junit2html), pinned, in a venv under target/tools.
[ -x target/tools/python/bin/python ] || python3 -m venv target/tools/python
target/tools/python/bin/pip install --quiet --disable-pip-version-check \
    -r tests/tools/python/requirements.txt
cargo test --locked "$@"
