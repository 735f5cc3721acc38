#!/usr/bin/env bash
# Step 3 of action.yml: the runner's prerequisites are the action's job, not the user's.
#   usage: setup-host.sh INSTALL_QEMU ACCEL [ARCH...]
# The arguments are the prepare step's outputs (`qemu-test action prepare` read and checked the
# inputs install-qemu and accel; this script reads no input itself): INSTALL_QEMU is auto, true or
# false, ACCEL auto, kvm or tcg, ARCH... the guest architectures.
#   - qemu-system-<arch> for every ARCH: reported with its version; when missing and INSTALL_QEMU
#     is auto/true, installed with apt-get (sudo unless root).
#     auto: install when possible, else warn (the run step then fails with the reason);
#     true: install or fail this step; false: never install, only report.
#   - KVM, when ACCEL is auto or kvm: if /dev/kvm exists but this user cannot open it, on a
#     GitHub-hosted runner the usual udev rule is installed and applied (and the log says so); on a
#     self-hosted runner the host is not changed and a warning gives the fix.
# Whether KVM actually runs guests is decided later by the binary's probe, not here.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/action/lib.sh
. "$HERE/lib.sh"

KVM_RULE='KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"'
KVM_RULE_FILE=/etc/udev/rules.d/99-qemu-test-action-kvm.rules

# qemu_package ARCH: the Debian/Ubuntu package that ships qemu-system-ARCH.
qemu_package() {
    case "$1" in
        aarch64 | arm) echo qemu-system-arm ;;
        x86_64 | i386) echo qemu-system-x86 ;;
        riscv64 | riscv32 | loongarch64) echo qemu-system-misc ;;
        ppc | ppc64) echo qemu-system-ppc ;;
        s390x) echo qemu-system-s390x ;;
        mips | mipsel | mips64 | mips64el) echo qemu-system-mips ;;
        sparc | sparc64) echo qemu-system-sparc ;;
        *) ;;
    esac
}

# as_root CMD...: run CMD as root (directly, or through passwordless sudo); fails when neither works.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

can_be_root() {
    [ "$(id -u)" = 0 ] || { command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; }
}

report_qemu() {
    qt_log "$1: $("$1" --version 2> /dev/null | head -n1) ($(command -v "$1"))"
}

# install_packages PKG...: apt-get install, in a log group.
install_packages() {
    command -v apt-get > /dev/null 2>&1 || { qt_log "apt-get is not available on this runner"; return 1; }
    can_be_root || { qt_log "installing needs root or passwordless sudo"; return 1; }
    echo "::group::qemu-test-action: apt-get install $*"
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    if [ "$rc" = 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || rc=$?
    fi
    echo "::endgroup::"
    return "$rc"
}

ensure_qemu() {
    local mode=$INSTALL_QEMU arch bin pkg missing=() packages=()
    if [ "${#ARCHES[@]}" = 0 ]; then
        qt_log "guest architecture not known yet (no arch, suite case arch, ELF kernel or board config); not checking for QEMU"
        return 0
    fi
    for arch in "${ARCHES[@]}"; do
        bin=qemu-system-$arch
        if command -v "$bin" > /dev/null 2>&1; then
            report_qemu "$bin"
            continue
        fi
        missing+=("$bin")
        pkg=$(qemu_package "$arch")
        if [ -n "$pkg" ]; then
            packages+=("$pkg")
        else
            qt_warn "$bin is missing and no package is known for arch '$arch'; install it on the runner"
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    if [ "$mode" = false ]; then
        qt_warn "${missing[*]} not found and install-qemu is false; the run will fail unless QEMU is on PATH"
        return 0
    fi
    [ "${#packages[@]}" -gt 0 ] || return 0
    qt_log "${missing[*]} not found: installing ${packages[*]} with apt-get"
    if ! install_packages "${packages[@]}"; then
        [ "$mode" = auto ] || qt_die "could not install ${packages[*]} (install-qemu: true)"
        qt_warn "could not install ${packages[*]}; install QEMU on this runner or use a runner image that has it"
        return 0
    fi
    for bin in "${missing[@]}"; do
        if command -v "$bin" > /dev/null 2>&1; then
            qt_notice "installed $bin: $("$bin" --version | head -n1)"
        else
            qt_warn "$bin is still missing after installing ${packages[*]}"
        fi
    done
}

kvm_accessible() {
    [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

ensure_kvm_access() {
    local user
    if [ "$ACCEL" = tcg ]; then
        qt_log "accel is tcg: /dev/kvm not needed"
        return 0
    fi
    if [ ! -e /dev/kvm ]; then
        qt_log "/dev/kvm does not exist on this runner: KVM cannot be used (the run step decides what that means for each case)"
        return 0
    fi
    user=$(id -un)
    if kvm_accessible; then
        qt_log "/dev/kvm is accessible to $user"
        return 0
    fi
    if [ "${RUNNER_ENVIRONMENT:-}" != github-hosted ]; then
        qt_warn "/dev/kvm exists but $user cannot open it read-write; this runner is not GitHub-hosted, so the host is left unchanged. Fix: add $user to the kvm group (then restart the runner service), or install the udev rule '$KVM_RULE'"
        return 0
    fi
    qt_notice "/dev/kvm exists but $user cannot open it: installing the udev rule $KVM_RULE_FILE ($KVM_RULE) and re-triggering udev, as usual on GitHub-hosted runners"
    if ! printf '%s\n' "$KVM_RULE" | as_root tee "$KVM_RULE_FILE" > /dev/null; then
        qt_warn "could not write $KVM_RULE_FILE (no root or sudo); KVM stays unavailable"
        return 0
    fi
    as_root udevadm control --reload-rules || true
    as_root udevadm trigger --name-match=kvm || true
    as_root udevadm settle --timeout=10 || true
    if kvm_accessible; then
        qt_log "/dev/kvm is now accessible to $user: $(ls -l /dev/kvm)"
    else
        qt_warn "/dev/kvm is still not accessible to $user after the udev rule: $(ls -l /dev/kvm)"
    fi
}

[ "$#" -ge 2 ] || qt_die "usage: setup-host.sh INSTALL_QEMU ACCEL [ARCH...] (the prepare step's outputs)"
INSTALL_QEMU=$1 ACCEL=$2
shift 2
ARCHES=("$@")
# Checked by the prepare step already; anything else here is a broken action.yml.
case "$INSTALL_QEMU" in
    auto | true | false) ;;
    *) qt_die "setup-host.sh: install-qemu is '$INSTALL_QEMU', not auto, true or false as qemu-test action prepare outputs it" ;;
esac
case "$ACCEL" in
    auto | kvm | tcg) ;;
    *) qt_die "setup-host.sh: accel is '$ACCEL', not auto, kvm or tcg as qemu-test action prepare outputs it" ;;
esac
for arch in "${ARCHES[@]}"; do
    [[ $arch =~ ^[a-z0-9_]+$ ]] || qt_die "setup-host.sh: '$arch' is not an architecture name"
done
ensure_qemu
ensure_kvm_access
