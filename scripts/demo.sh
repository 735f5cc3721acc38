#!/usr/bin/env bash
# The demo: boots bundled real guests (built from our sources and Debian packages) in QEMU and
# shows each verdict. First a suite that passes (power-off, stop-after-match, Debian arm64
# Linux), then one whose guests fail on purpose (fail pattern, timeout, exit without success).
# Installs the host packages first (Debian 12; uses sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi
bash fixtures/build.sh
cargo build --locked --release --quiet
QT=target/release/qemu-test

echo "== passing guests"
"$QT" run --quiet --suite examples/demo/suite.toml --out-dir qemu-test-out/demo

echo "== guests that fail on purpose (exit code 1 expected)"
code=0
"$QT" run --quiet --suite examples/demo/failing.toml --out-dir qemu-test-out/demo-failing || code=$?
if [ "$code" -ne 1 ]; then echo "unexpected exit code $code"; exit 1; fi
echo "demo complete: logs and results.json under qemu-test-out/"
