#!/usr/bin/env bash
# Guest-image cache steps of action.yml (runs in the working-directory).
#   images.sh key    before the run: outputs `dir` (the image cache the binary uses through
#                    QEMU_TEST_CACHE) and `key` for actions/cache — "qemu-test-images-" + the
#                    SHA-256 of the sorted image SHA-256s that `qemu-test images key` prints.
#                    `key` is empty when cache-images is false, when no image is involved, or when
#                    the key cannot be computed (then the run goes on without actions/cache).
#   images.sh filled after the run: outputs `filled=true` when the cache dir holds files (only then
#                    is there something for actions/cache/save to store).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/action/lib.sh
. "$HERE/lib.sh"

cache_dir() {
    if [ -n "${QEMU_TEST_CACHE:-}" ]; then
        echo "$QEMU_TEST_CACHE"
    elif [ -n "${RUNNER_TOOL_CACHE:-}" ]; then
        echo "$RUNNER_TOOL_CACHE/qemu-test-images"
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/qemu-test/images"
    fi
}

# key_args: the flags of `qemu-test images key` for the selected suite cases or images.
key_args() {
    local item
    if [ -n "${INPUT_SUITE:-}" ]; then printf '%s\0' --suite "$INPUT_SUITE"; fi
    while IFS= read -r item; do
        item=$(qt_trim "$item")
        if [ -n "$item" ]; then printf '%s\0' --case "$item"; fi
    done < <(tr ',' '\n' <<< "${INPUT_CASE:-}")
    while IFS= read -r item; do
        item=$(qt_trim "$item")
        if [ -n "$item" ]; then printf '%s\0' --image "$item"; fi
    done <<< "${INPUT_IMAGE:-}"
    if [ -n "${INPUT_REGISTRY:-}" ]; then printf '%s\0' --registry "$INPUT_REGISTRY"; fi
}

cache_key() {
    local args=() out digests
    if ! qt_is_true "${INPUT_CACHE_IMAGES:-true}"; then
        qt_log "cache-images is false: guest images are not saved with actions/cache"
        return 0
    fi
    if [ -z "${INPUT_SUITE:-}" ] && [ -z "${INPUT_IMAGE:-}" ]; then
        qt_log "no suite or image: no guest images to cache"
        return 0
    fi
    mapfile -d '' args < <(key_args)
    if ! out=$(env -u GITHUB_OUTPUT "$QEMU_TEST_BIN" images key "${args[@]}" 2>&1); then
        qt_log "cannot compute the guest image cache key now ($(head -n1 <<< "$out")); continuing without actions/cache"
        return 0
    fi
    digests=$(grep -E '^[0-9a-f]{64}$' <<< "$out" | sort -u || true)
    if [ -z "$digests" ]; then
        qt_log "the selected cases use no registry images: nothing to cache"
        return 0
    fi
    qt_log "guest images: $(tr '\n' ' ' <<< "$digests")"
    echo "qemu-test-images-$(sha256sum <<< "$digests" | cut -d' ' -f1)"
}

main() {
    local dir
    dir=$(cache_dir)
    case "${1:-}" in
        key)
            qt_output dir "$dir"
            qt_output key "$(cache_key)"
            ;;
        filled)
            if [ -d "$dir" ] && [ -n "$(find "$dir" -mindepth 1 -print -quit)" ]; then
                qt_output filled true
            else
                qt_output filled false
            fi
            ;;
        *) qt_die "usage: images.sh key|filled" ;;
    esac
}

main "$@"
