#!/usr/bin/env bash
# Step 2 of action.yml (runs in the working-directory): resolve what the later steps need to know
# before the binary runs, from the same INPUT_* variables the binary reads.
# Outputs:
#   command        run | matrix (the only subcommands the action calls)
#   log-dir        absolute log directory (INPUT_LOG_DIR, default qemu-test-out, as the binary)
#   junit          absolute JUnit path (INPUT_JUNIT: true → <log-dir>/junit.xml; false/empty → none)
#   upload-paths   the log dir and, when outside it, the JUnit file (one per line)
#   artifact-name  unique artifact name (empty when INPUT_UPLOAD_LOGS is false)
#   arches         guest architectures the run needs a qemu-system-<arch> for (space separated)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/action/lib.sh
. "$HERE/lib.sh"

# elf_arch FILE: the QEMU architecture named by an ELF header (nothing for other files).
elf_arch() {
    local magic class machine
    magic=$(od -An -tx1 -N4 "$1" 2> /dev/null | tr -d ' \n')
    [ "$magic" = 7f454c46 ] || return 0
    class=$(od -An -tu1 -j4 -N1 "$1" | tr -d ' \n')
    machine=$(od -An -tu2 -j18 -N2 --endian=little "$1" | tr -d ' \n')
    case "$machine" in
        183) echo aarch64 ;;
        62) echo x86_64 ;;
        3) echo i386 ;;
        40) echo arm ;;
        258) echo loongarch64 ;;
        243) if [ "$class" = 2 ]; then echo riscv64; else echo riscv32; fi ;;
        *) ;;
    esac
}

# board_arch FILE: the architecture of an AxVisor board config's `target = "<arch>-…"`.
board_arch() {
    local arch
    arch=$(sed -n 's/^[[:space:]]*target[[:space:]]*=[[:space:]]*"\([A-Za-z0-9_]*\)-.*/\1/p' "$1" | head -n1)
    case "$arch" in
        riscv64*) echo riscv64 ;;
        i?86) echo i386 ;;
        *) echo "$arch" ;;
    esac
}

# suite_arches: the `arch` of every selected case, from `qemu-test matrix` (which reads INPUT_CASE).
suite_arches() {
    local json
    local source=(--suite "${INPUT_SUITE:-}")
    [ -z "${INPUT_TEST_SUIT:-}" ] || source=(--test-suit "$INPUT_TEST_SUIT")
    if ! json=$(env -u GITHUB_OUTPUT "$QEMU_TEST_BIN" matrix "${source[@]}" 2> /dev/null); then
        qt_log "could not list the suite's cases now; the run step will report why"
        return 0
    fi
    grep -o '"arch":"[A-Za-z0-9_]*"' <<< "$json" | cut -d'"' -f4 | sort -u | tr '\n' ' '
}

guest_arches() {
    if [ -n "${INPUT_ARCH:-}" ]; then
        echo "$INPUT_ARCH"
    elif [ -n "${INPUT_SUITE:-}" ] || [ -n "${INPUT_TEST_SUIT:-}" ]; then
        suite_arches
    elif [ -n "${INPUT_KERNEL:-}" ] && [ -f "$INPUT_KERNEL" ]; then
        elf_arch "$INPUT_KERNEL"
    elif [ -n "${INPUT_BUILD_CONFIG:-}" ] && [ -f "$INPUT_BUILD_CONFIG" ]; then
        board_arch "$INPUT_BUILD_CONFIG"
    fi
}

# label: what the artifact is about — the cases asked for, else the suite or kernel file name.
label() {
    local l=
    if [ -n "${INPUT_CASE:-}" ]; then
        l=$(qt_words "$(tr ',' ' ' <<< "$INPUT_CASE")")
        l=${l// /+}
    elif [ -n "${INPUT_SUITE:-}" ]; then
        l=$(basename "${INPUT_SUITE%.*}")
    elif [ -n "${INPUT_KERNEL:-}" ]; then
        l=$(basename "${INPUT_KERNEL%.*}")
    fi
    l=$(tr -c 'A-Za-z0-9._+-' '_' <<< "${l:-run}")
    l=${l%_}
    echo "${l:0:80}"
}

main() {
    local command=${INPUT_COMMAND:-run} log_dir junit junit_flag paths name=
    case "$command" in
        run | matrix) ;;
        *) qt_die "command must be run or matrix, not '$command'" ;;
    esac
    qt_output command "$command"
    [ "$command" = run ] || return 0

    log_dir=$(realpath -m -- "${INPUT_LOG_DIR:-qemu-test-out}")
    junit_flag=${INPUT_JUNIT:-}
    case "${junit_flag,,}" in
        "" | false | no | off | 0) junit= ;;
        true | yes | on | 1) junit=$log_dir/junit.xml ;;
        *) junit=$(realpath -m -- "$junit_flag") ;;
    esac
    paths=$log_dir
    if [ -n "$junit" ] && [[ $junit != "$log_dir"/* ]]; then
        paths=$paths$'\n'$junit
    fi
    if qt_is_true "${INPUT_UPLOAD_LOGS:-true}"; then
        name="qemu-test-$(label)-${GITHUB_JOB:-job}-${GITHUB_RUN_ATTEMPT:-1}-$(qt_random_hex 3)"
    fi
    qt_output log-dir "$log_dir"
    qt_output junit "$junit"
    qt_output upload-paths "$paths"
    qt_output artifact-name "$name"
    qt_output arches "$(qt_words "$(guest_arches)")"
    qt_log "logs: $log_dir${junit:+, JUnit: $junit}${name:+, artifact: $name}"
}

main "$@"
