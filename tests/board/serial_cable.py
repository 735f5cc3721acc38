#!/usr/bin/env python3
"""A null-modem cable between two pseudo-terminals, for the U-Boot board tests.

Prints `<host end> <board end>` (two /dev/pts paths) on one line, then copies bytes both ways
until stdin closes (the test ends). The tool opens the host end as its serial device; the QEMU
that plays the board opens the board end (`-serial /dev/pts/N`) each time it is powered on.
Both slave ends stay open here too, so a side that is closed (the board powered off, the tool
not started yet) never makes the other side see a hang-up: like a real cable, the line just
stays quiet.
"""
import os
import select
import sys
import termios
import tty


def end():
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    return master, slave, os.ttyname(slave)


def main():
    a_master, a_slave, a_name = end()
    b_master, b_slave, b_name = end()
    print(a_name, b_name, flush=True)
    peer = {a_master: b_master, b_master: a_master}
    stdin = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([a_master, b_master, stdin], [], [])
        if stdin in ready and not os.read(stdin, 4096):
            return
        for fd in (a_master, b_master):
            if fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    continue
                if data:
                    os.write(peer[fd], data)


if __name__ == "__main__":
    main()
