#!/usr/bin/env bash
# Step 1 of action.yml: obtain the qemu-test binary that matches this action checkout.
#
# Order (the log says which path was taken, and why):
#   1. QEMU_TEST_BINARY=<path>: use that binary (local runs and tests).
#   2. A release checkout: dist/VERSION names a version, dist/sha256sums.txt has the SHA-256 of
#      qemu-test-<version>-<target>.tar.gz for this runner, and dist/source.sha256 matches this
#      checkout's sources (scripts/action/fingerprint.sh). Then the tarball comes from the tool cache
#      ($RUNNER_TOOL_CACHE/qemu-test-action/<version>/<target>/) or is downloaded from the release,
#      verified against the committed SHA-256 (a mismatch fails the step: it is never used) and cached.
#   3. Otherwise (no release yet, a branch or commit pin, no binary for this runner, the download
#      failed): `cargo build --locked --release` in the action checkout.
#   usage: install.sh [key] [--version VERSION] [--cache-build BOOL]
# VERSION is the `version` input (action.yml passes it; this script reads no input variable): x.y.z
# asks for that release (its sum must be committed; no fallback), `source` forces the build, empty
# means the release this checkout ships. Anything else fails the step naming the input, by the
# pattern the binary's definition of the input uses (RELEASE_VERSION in src/cli.rs;
# tests/action_install.rs keeps the two in step). QEMU_TEST_DOWNLOAD_URL overrides the release
# download base (tests serve tarballs from loopback).
# Outputs: binary (absolute path), source (override|cache|download|build|build-cache), version
# (--version line).
#
# `install.sh key` (the step before, so actions/cache can restore the build first): when this
# checkout will be built from source and the `cache-build` input (--cache-build; checked here as
# @actions/core's getBooleanInput reads it, because the binary does not exist yet:
# tests/action_install.rs keeps this in step with src/cli.rs's parse_boolean) is true, outputs dir (the cargo target dir), key
# (qemu-test-bin-v1-<RUNNER_OS>-<RUNNER_ARCH>-<source fingerprint>) and restore-keys (the key
# without the fingerprint); otherwise an empty key. A target dir whose stamp
# (.qemu-test-source.sha256) names this checkout's fingerprint holds its binary already: the build
# step uses it without running cargo (source build-cache).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/action/lib.sh
. "$HERE/lib.sh"

ACTION_DIR=${GITHUB_ACTION_PATH:-$(cd "$HERE/../.." && pwd)}
DIST=$ACTION_DIR/dist
BASE_URL=${QEMU_TEST_DOWNLOAD_URL:-https://github.com/axvisor/qemu-test-action/releases/download}
BASE_URL=${BASE_URL%/}

# host_target: the release target triple for this runner, or nothing when none is published.
host_target() {
    local os=${RUNNER_OS:-$(uname -s)} arch=${RUNNER_ARCH:-$(uname -m)}
    [ "$os" = Linux ] || return 0
    case "$arch" in
        X64 | x86_64 | amd64) echo x86_64-unknown-linux-musl ;;
        ARM64 | aarch64 | arm64) echo aarch64-unknown-linux-musl ;;
        *) ;;
    esac
}

# tool_cache: where verified release binaries are kept between jobs on one runner.
tool_cache() {
    if [ -n "${RUNNER_TOOL_CACHE:-}" ]; then
        echo "$RUNNER_TOOL_CACHE/qemu-test-action"
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/qemu-test-action"
    fi
}

# committed_sum ASSET: the SHA-256 dist/sha256sums.txt records for ASSET (empty when none).
committed_sum() {
    [ -f "$DIST/sha256sums.txt" ] || return 0
    awk -v a="$1" '$2 == a || $2 == "*" a { print $1; exit }' "$DIST/sha256sums.txt"
}

# is_release_checkout VERSION: whether this checkout's sources are the ones VERSION was built from.
is_release_checkout() {
    local recorded actual
    [ -f "$DIST/source.sha256" ] || return 1
    recorded=$(tr -d ' \n' < "$DIST/source.sha256")
    actual=$("$HERE/fingerprint.sh" "$ACTION_DIR")
    [ -n "$recorded" ] && [ "$recorded" = "$actual" ]
}

# use_binary PATH HOW: check that it runs, put its directory on PATH, write the step outputs.
use_binary() {
    local bin how=$2 version
    bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    [ -x "$bin" ] || qt_die "$bin is not an executable file"
    version=$("$bin" --version 2>&1 | head -n1) || qt_die "$bin --version failed: $version"
    qt_log "using $version ($how): $bin"
    if [ -n "${GITHUB_PATH:-}" ]; then dirname "$bin" >> "$GITHUB_PATH"; fi
    qt_output binary "$bin"
    qt_output source "$how"
    qt_output version "$version"
}

# build_from_source REASON: cargo build --locked --release in the action checkout, unless the target
# dir (restored by the action's cache) already holds the binary of exactly these sources.
build_from_source() {
    local target_dir=$ACTION_DIR/target fingerprint stamp
    fingerprint=$("$HERE/fingerprint.sh" "$ACTION_DIR")
    stamp=$target_dir/.qemu-test-source.sha256
    if [ -x "$target_dir/release/qemu-test" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
        qt_log "the cached build of these sources (fingerprint $fingerprint) is used; nothing to compile"
        use_binary "$target_dir/release/qemu-test" build-cache
        return
    fi
    qt_log "building qemu-test from source: $1"
    command -v cargo > /dev/null 2>&1 || qt_die "building qemu-test from source needs cargo, \
which is not installed: add a Rust toolchain before this action (e.g. \`rustup toolchain install \
stable\`), or pin the action to a release tag (vX.Y.Z) whose binaries are published"
    rm -f "$stamp"
    # From the action's own directory, so the user's rust-toolchain.toml does not apply to it.
    (cd "$ACTION_DIR" && cargo build --locked --release --bin qemu-test --target-dir "$target_dir") ||
        qt_die "cargo build --locked --release of qemu-test failed in $ACTION_DIR (see the log above)"
    printf '%s\n' "$fingerprint" > "$stamp"
    use_binary "$target_dir/release/qemu-test" build
}

# cached DIR SUM: whether DIR holds a binary extracted from the tarball with SHA-256 SUM.
cached() {
    [ -x "$1/qemu-test" ] && [ -f "$1/.tarball.sha256" ] && [ "$(cat "$1/.tarball.sha256")" = "$2" ]
}

# download ASSET URL SUM DEST_DIR: fetch, verify, unpack and publish into DEST_DIR atomically.
# Returns 1 when the download itself failed (the caller may fall back); a SHA-256 mismatch exits.
download() {
    local asset=$1 url=$2 sum=$3 dest=$4 tmp actual member stage
    command -v curl > /dev/null 2>&1 || { qt_log "curl is not installed"; return 1; }
    DOWNLOAD_TMP=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/qemu-test-download.XXXXXX")
    tmp=$DOWNLOAD_TMP
    qt_log "downloading $url"
    if ! curl --fail --location --silent --show-error --retry 3 --retry-delay 2 \
        --connect-timeout 20 --max-time 300 --output "$tmp/$asset" "$url"; then
        return 1
    fi
    actual=$(sha256sum "$tmp/$asset" | cut -d' ' -f1)
    if [ "$actual" != "$sum" ]; then
        qt_die "SHA-256 mismatch for $url: dist/sha256sums.txt says $sum, the download is $actual. \
Nothing was installed. If the release was re-uploaded, update dist/sha256sums.txt through the \
release workflow; otherwise treat the download as tampered with."
    fi
    qt_log "SHA-256 verified: $actual"
    member=${asset%.tar.gz}/qemu-test
    tar -xzf "$tmp/$asset" -C "$tmp" --no-same-owner --no-same-permissions "$member" ||
        qt_die "$asset does not contain $member"
    mkdir -p "$(dirname "$dest")"
    stage=$(mktemp -d "$dest.partial.XXXXXX")
    mv "$tmp/$member" "$stage/qemu-test"
    chmod 755 "$stage/qemu-test"
    printf '%s\n' "$sum" > "$stage/.tarball.sha256"
    rm -rf "$dest"
    # Another job on this runner may have published it meanwhile: keep theirs if it is valid.
    if ! mv -T "$stage" "$dest" 2> /dev/null; then
        rm -rf "$stage"
        cached "$dest" "$sum" || qt_die "could not publish the binary into $dest"
    fi
}

# decide: how this checkout gets its binary. Sets PLAN (override|build|release|error) and REASON
# (why a build, or the error), and for a release VERSION, EXPLICIT, TARGET, ASSET and SUM.
decide() {
    EXPLICIT=false
    if [ -n "${QEMU_TEST_BINARY:-}" ]; then
        PLAN=override
        return
    fi
    VERSION=${VERSION_INPUT#v}
    PLAN=build
    if [ "$VERSION" = source ]; then
        REASON="the version input asks for it"
        return
    fi
    if [ -n "$VERSION" ]; then
        EXPLICIT=true
    elif [ -f "$DIST/VERSION" ]; then
        VERSION=$(tr -d ' \n' < "$DIST/VERSION")
        VERSION=${VERSION#v}
    fi
    if [ -z "$VERSION" ]; then
        REASON="dist/VERSION is empty (no release has been published from this tree)"
        return
    fi
    TARGET=$(host_target)
    if [ -z "$TARGET" ]; then
        REASON="no release binary for ${RUNNER_OS:-$(uname -s)}/${RUNNER_ARCH:-$(uname -m)}"
        if [ "$EXPLICIT" = true ]; then
            PLAN=error
            REASON="no release binary of qemu-test for ${RUNNER_OS:-$(uname -s)}/${RUNNER_ARCH:-$(uname -m)}; remove the version input to build from source"
        fi
        return
    fi
    ASSET=qemu-test-$VERSION-$TARGET.tar.gz
    SUM=$(committed_sum "$ASSET")
    if [ -z "$SUM" ]; then
        REASON="dist/sha256sums.txt has no entry for $ASSET"
        if [ "$EXPLICIT" = true ]; then
            PLAN=error
            REASON="dist/sha256sums.txt has no SHA-256 for $ASSET, so it cannot be verified; use a version listed there, or version: source"
        fi
        return
    fi
    if [ "$EXPLICIT" = false ] && ! is_release_checkout; then
        REASON="this checkout's sources differ from release $VERSION (dist/source.sha256): a branch or commit pin"
        return
    fi
    PLAN=release
}

# key: the outputs of `install.sh key` (see the top of this file).
key() {
    local fingerprint prefix
    decide
    if [ "$PLAN" != build ]; then
        qt_output key ""
        return
    fi
    if [ "$CACHE_BUILD" = false ]; then
        qt_log "qemu-test will be built from source ($REASON); cache-build is false, so the build is not cached"
        qt_output key ""
        return
    fi
    fingerprint=$("$HERE/fingerprint.sh" "$ACTION_DIR")
    prefix="qemu-test-bin-v1-${RUNNER_OS:-$(uname -s)}-${RUNNER_ARCH:-$(uname -m)}-"
    qt_log "qemu-test will be built from source ($REASON): build cache key $prefix$fingerprint"
    qt_output dir "$ACTION_DIR/target"
    qt_output key "$prefix$fingerprint"
    qt_output restore-keys "$prefix"
}

main() {
    local dest
    decide
    case $PLAN in
        override)
            use_binary "$QEMU_TEST_BINARY" override
            return
            ;;
        error) qt_die "$REASON" ;;
        build)
            build_from_source "$REASON"
            return
            ;;
        *) ;;
    esac
    dest=$(tool_cache)/$VERSION/$TARGET
    if cached "$dest" "$SUM"; then
        use_binary "$dest/qemu-test" cache
        return
    fi
    if download "$ASSET" "$BASE_URL/v$VERSION/$ASSET" "$SUM" "$dest"; then
        use_binary "$dest/qemu-test" download
        return
    fi
    [ "$EXPLICIT" = false ] || qt_die "could not download $ASSET (see above)"
    qt_warn "could not download $ASSET; building qemu-test from source instead"
    build_from_source "the release download failed"
}

# check_version VALUE: VALUE (trimmed, as the toolkit reads an input) when it is a release version
# or `source` or empty; otherwise fail naming the input.
check_version() {
    local v=$1
    v=${v#"${v%%[![:space:]]*}"}
    v=${v%"${v##*[![:space:]]}"}
    if [ -n "$v" ] && [ "$v" != source ] && ! [[ $v =~ ^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
        qt_die "input \`version\`: '$v' is neither a release version (X.Y.Z, e.g. 1.2.0 or v1.2.0) nor \`source\`; fix \`version:\` in the workflow"
    fi
    printf '%s' "$v"
}

# check_boolean INPUT VALUE: true or false for a value @actions/core's getBooleanInput accepts
# (trimmed; true/True/TRUE, false/False/FALSE); otherwise fail naming the input.
check_boolean() {
    local v=$2
    v=${v#"${v%%[![:space:]]*}"}
    v=${v%"${v##*[![:space:]]}"}
    case $v in
        true | True | TRUE) printf true ;;
        false | False | FALSE) printf false ;;
        *) qt_die "input \`$1\`: '$v' is not a boolean (the action accepts true, True, TRUE, false, False or FALSE, as @actions/core's getBooleanInput); write \`$1: true\` or \`$1: false\`" ;;
    esac
}

DOWNLOAD_TMP=
CACHE_BUILD=true
PLAN='' REASON='' VERSION='' EXPLICIT=false TARGET='' ASSET='' SUM=''
VERSION_INPUT='' STEP=main
trap 'if [ -n "$DOWNLOAD_TMP" ]; then rm -rf "$DOWNLOAD_TMP"; fi' EXIT
while [ "$#" -gt 0 ]; do
    case $1 in
        key) STEP=key ;;
        --version)
            [ "$#" -ge 2 ] || qt_die "install.sh: --version needs a value"
            VERSION_INPUT=$(check_version "$2")
            shift
            ;;
        --cache-build)
            [ "$#" -ge 2 ] || qt_die "install.sh: --cache-build needs a value"
            CACHE_BUILD=$(check_boolean cache-build "$2")
            shift
            ;;
        *) qt_die "install.sh: unknown argument '$1' (expected [key] [--version VERSION] [--cache-build BOOL])" ;;
    esac
    shift
done
"$STEP"
