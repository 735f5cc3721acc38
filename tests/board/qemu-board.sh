#!/bin/sh
# The "board" of the U-Boot tests: QEMU's virt machine running Debian's real U-Boot
# (u-boot-qemu), its UART on a pseudo-terminal (the board end of tests/board/serial_cable.py),
# its network QEMU's user networking (the host is 10.0.2.2 for U-Boot; DHCP answers 10.0.2.15).
#
#   qemu-board.sh on  STATE_DIR TTY [U-BOOT]   power on: start the board (a running one is
#                                              powered off first); returns at once
#   qemu-board.sh off STATE_DIR                power off: stop it (nothing running is fine)
#
# These are the board_reset_cmd and board_power_off_cmd of the tests' U-Boot configs.
set -eu
cmd=$1 state=$2
pidfile=$state/board.pid

off() {
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        # Gone before the next power-on may reuse the pty.
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}

case $cmd in
on)
    tty=$3
    uboot=${4:-/usr/lib/u-boot/qemu_arm64/u-boot.bin}
    off
    echo "board: power on ($uboot on $tty)"
    qemu-system-aarch64 -M virt -cpu cortex-a57 -m 1G -smp 1 \
        -bios "$uboot" -display none -monitor none -serial "$tty" \
        -netdev user,id=n0 -device virtio-net-device,netdev=n0 \
        -daemonize -pidfile "$pidfile" ${BOARD_QEMU_EXTRA:-} >"$state/board-qemu.log" 2>&1
    ;;
off)
    off
    echo "board: power off"
    ;;
*)
    echo "usage: $0 on|off STATE_DIR [TTY]" >&2
    exit 2
    ;;
esac
