#!/usr/bin/env bash
# The `run` step of action.yml: hand over to the binary, which reads every INPUT_* variable itself
# and writes the step outputs (verdict, passed, …, or matrix) to $GITHUB_OUTPUT.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/action/lib.sh
. "$HERE/lib.sh"

[ -n "${QEMU_TEST_BIN:-}" ] || qt_die "the install step did not provide a qemu-test binary"
case "${INPUT_COMMAND:-run}" in
    run) exec "$QEMU_TEST_BIN" run ;;
    matrix)
        if [ -n "${INPUT_TEST_SUIT:-}" ]; then
            exec "$QEMU_TEST_BIN" matrix --test-suit "$INPUT_TEST_SUIT"
        fi
        [ -n "${INPUT_SUITE:-}" ] || qt_die "command: matrix needs the suite or test-suit input"
        exec "$QEMU_TEST_BIN" matrix --suite "$INPUT_SUITE"
        ;;
    *) qt_die "command must be run or matrix, not '${INPUT_COMMAND}'" ;;
esac
