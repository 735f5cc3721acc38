#!/bin/sh
# The "board" of the U-Boot tests: QEMU's virt machine running Debian's real U-Boot
# (u-boot-qemu), its UART on a pseudo-terminal (the board end of tests/board/serial_cable.py),
# its network QEMU's user networking (the host is 10.0.2.2 for U-Boot; DHCP answers 10.0.2.15).
#
#   qemu-board.sh on  STATE_DIR TTY [U-BOOT]   power on: start the board (a running one is
#                                              powered off first); returns at once
#   qemu-board.sh off STATE_DIR                power off: stop it (nothing running is fine)
#   qemu-board.sh dtb OUT BOOTARGS [RAMDISK]   the board's device tree for Linux, as a board
#                                              vendor ships one (see below)
#
# `on` and `off` are the board_reset_cmd and board_power_off_cmd of the tests' U-Boot configs.
#
# BOARD_NETDEV_OPTS is added to the user network's options (benches/board.py: ",tftp=DIR" for
# QEMU's own TFTP server at 10.0.2.2, the peer of the run's server).
#
# The board's storage: with BOARD_RAMDISK set, `on` puts that file in the board's RAM at
# RAMDISK_ADDR (where a real board's rootfs would sit on its eMMC), and `dtb` with the same
# RAMDISK describes it in /chosen (linux,initrd-start/-end), so a kernel booted with that DTB
# finds its initramfs without the U-Boot config naming one (AxVisor's uboot.toml names none).
#
# `dtb` dumps the device tree of exactly the machine `on` starts (same options, U-Boot as its
# firmware), with BOOTARGS in /chosen and without QEMU's per-boot kaslr-seed/rng-seed: a board's
# DTB is built once and carries no seed (the seeds are the bootloader's to add each boot; a
# dumped seed would be the same at every boot).
set -eu
cmd=$1
RAMDISK_ADDR=0x48000000
UBOOT_DEFAULT=/usr/lib/u-boot/qemu_arm64/u-boot.bin

# machine OPTION... : QEMU with the board's machine, devices and firmware ($uboot), plus OPTIONs
machine() {
    qemu-system-aarch64 -M "virt$machine_opts" -cpu cortex-a57 -m 1G -smp 1 \
        -bios "$uboot" -display none -monitor none \
        -netdev "user,id=n0${BOARD_NETDEV_OPTS:-}" -device virtio-net-device,netdev=n0 "$@"
}
machine_opts=

off() {
    pidfile=$1/board.pid
    if [ -f "$pidfile" ]; then
        # QEMU removes its pid file when it exits by itself (a guest that powered off): gone
        # between the test and the read is off already.
        pid=$(cat "$pidfile" 2>/dev/null) || return 0
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
    state=$2 tty=$3
    uboot=${4:-$UBOOT_DEFAULT}
    off "$state"
    echo "board: power on ($uboot on $tty)"
    set --
    if [ -n "${BOARD_RAMDISK:-}" ]; then
        set -- -device "loader,file=$BOARD_RAMDISK,addr=$RAMDISK_ADDR,force-raw=on"
    fi
    # shellcheck disable=SC2086 # BOARD_QEMU_EXTRA is a list of options
    machine -serial "$tty" -daemonize -pidfile "$state/board.pid" "$@" ${BOARD_QEMU_EXTRA:-} \
        >"$state/board-qemu.log" 2>&1
    ;;
off)
    off "$2"
    echo "board: power off"
    ;;
dtb)
    out=$2 bootargs=$3 ramdisk=${4:-}
    uboot=$UBOOT_DEFAULT
    machine_opts=",dtb-randomness=off,dumpdtb=$out"
    # QEMU takes -append only with -kernel; with firmware, the "kernel" only goes to fw_cfg,
    # which U-Boot never reads here: any file does, U-Boot itself.
    machine -serial null -kernel "$uboot" -append "$bootargs"
    if [ -n "$ramdisk" ]; then
        size=$(stat -c %s "$ramdisk")
        fdtput -t x "$out" /chosen linux,initrd-start "$(printf %x $((RAMDISK_ADDR)))"
        fdtput -t x "$out" /chosen linux,initrd-end "$(printf %x $((RAMDISK_ADDR + size)))"
    fi
    echo "board: device tree $out (bootargs: $bootargs${ramdisk:+, ramdisk $ramdisk at $RAMDISK_ADDR})"
    ;;
*)
    echo "usage: $0 on STATE_DIR TTY [U-BOOT] | off STATE_DIR | dtb OUT BOOTARGS [RAMDISK]" >&2
    exit 2
    ;;
esac
