#!/usr/bin/env python3
"""Boards through U-Boot, measured: the tests' QEMU board (Debian's U-Boot on QEMU virt,
tests/board/) behind the tests' null-modem cable of two pseudo-terminals, in ONE interleaved run.

  python3 benches/board.py [--runs N] [--qemu-test PATH] [--fixtures DIR] [--kib K]

Sections (each round runs every variant once):
  loady  - a bare-metal Image padded to K KiB, loaded by `loady` and booted with `booti`, to its
           "Hello, world!": qemu-test run --uboot-config (no [net]) against a plain script doing
           the same conversation with lrzsz's `sb` as the YMODEM sender; and the line's own
           limit: the same bytes typed into a guest that polls the PL011 in a tight loop (the
           `prompt` fixture), no protocol at all.
  linux  - Debian's arm64 Linux + initramfs over TFTP with booti (the tests' case): qemu-test's
           stage times (power-on -> U-Boot prompt -> image loaded -> kernel started -> verdict),
           and the same files fetched by U-Boot from QEMU's own TFTP server (the link's peer).

Prints medians and ratios; never asserts. Needs root (TFTP on port 69) and lrzsz.
"""
import argparse, fcntl, json, os, select, shutil, socket, statistics, subprocess, sys, tempfile, time, tty

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BOARD = os.path.join(REPO, "tests", "board")
NET = '[net]\ninterface = "lo"\nboard_ip = "10.0.2.15"\ngatewayip = "10.0.2.2"\nnetmask = "255.255.255.0"\n'


class Cable:
    """tests/board/serial_cable.py: (host end, board end)."""

    def __init__(self):
        self.p = subprocess.Popen([sys.executable, os.path.join(BOARD, "serial_cable.py")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.host, self.board = self.p.stdout.readline().decode().split()

    def close(self):
        self.p.kill()
        self.p.wait()


class Line:
    """The host end opened raw, read with a buffer."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.buf = b""

    def drain(self):
        while select.select([self.fd], [], [], 0)[0]:
            os.read(self.fd, 65536)
        self.buf = b""

    def wait(self, needle, timeout=60):
        end = time.perf_counter() + timeout
        while needle not in self.buf:
            left = end - time.perf_counter()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError(f"no {needle!r} in {self.buf[-300:]!r}")
            self.buf += os.read(self.fd, 65536)
        self.buf = self.buf[self.buf.index(needle) + len(needle):]
        return time.perf_counter()

    def type(self, text):
        os.write(self.fd, text.encode())

    def close(self):
        os.close(self.fd)


def power(state, cable, on):
    args = ["sh", os.path.join(BOARD, "qemu-board.sh")]
    args += ["on", state, cable.board] if on else ["off", state]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def stage_times(results):
    """{stage name: seconds from the start}, plus "verdict" (the case's elapsed)."""
    case = results["cases"][0]
    out = {e["name"]: e["at"] for e in case["timeline"] if e["kind"] == "stage" and e["at"] is not None}
    decided = case["verdict"].get("decided_by") or {}
    at = decided.get("at")
    if isinstance(at, dict):  # {secs, nanos}
        at = at["secs"] + at["nanos"] / 1e9
    out["verdict"] = at
    return out


def ours(qt, work, state, cable, kernel, config_text, timeout="300s"):
    cfg = os.path.join(work, "uboot.toml")
    script = os.path.join(BOARD, "qemu-board.sh")
    with open(cfg, "w") as f:
        f.write(f'serial = "{cable.host}"\nbaud_rate = "115200"\n'
                f'board_reset_cmd = "sh {script} on {state} {cable.board}"\n'
                f'board_power_off_cmd = "sh {script} off {state}"\n{config_text}')
    out = os.path.join(work, "out")
    t0 = time.perf_counter()
    r = subprocess.run([qt, "run", "--quiet", "--uboot-config", cfg, "--kernel", kernel, "--arch", "aarch64",
                        "--timeout", timeout, "--out-dir", out], cwd=work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    res = json.load(open(os.path.join(out, "results.json")))
    if r.returncode != 0:
        raise RuntimeError(f"qemu-test exited {r.returncode}: {res['cases'][0]['verdict']['reason']}")
    st = stage_times(res)
    st["wall"] = wall
    return st


def plain_loady(work, state, cable, kernel):
    """The same boot as `ours` without a [net]: a plain script and lrzsz's sb."""
    line = Line(cable.host)
    line.drain()
    t0 = time.perf_counter()
    power(state, cable, True)
    line.wait(b"Hit any key to stop autoboot")
    line.type(" ")
    prompt = line.wait(b"=> ") - t0
    line.type("loady ${kernel_addr_r}\r")
    line.wait(b"## Ready for binary (ymodem) download")
    subprocess.run(["sb", "-k", "-q", kernel], stdin=line.fd, stdout=line.fd, stderr=subprocess.DEVNULL, check=True)
    line.wait(b"## Total Size")
    line.wait(b"=> ")
    loaded = time.perf_counter() - t0
    line.type("booti ${kernel_addr_r} - ${fdtcontroladdr}\r")
    started = line.wait(b"Starting kernel ...") - t0
    verdict = line.wait(b"Hello, world!") - t0
    power(state, cable, False)
    line.close()
    return {"U-Boot prompt": prompt, "image loaded": loaded, "kernel started": started, "verdict": verdict,
            "wall": time.perf_counter() - t0}


def plain_tftp(work, state, cable, files):
    """Seconds U-Boot takes to tftpboot `files` from QEMU's own TFTP server (the user network's
    `tftp=`, at 10.0.2.2, inside QEMU: the link without the run's server)."""
    root = os.path.join(work, "qemu-tftp")
    os.makedirs(root, exist_ok=True)
    for i, f in enumerate(files):
        shutil.copy(f, os.path.join(root, f"f{i}"))
    line = Line(cable.host)
    line.drain()
    env = dict(os.environ, BOARD_NETDEV_OPTS=f",tftp={root}")
    subprocess.run(["sh", os.path.join(BOARD, "qemu-board.sh"), "on", state, cable.board], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    line.wait(b"Hit any key to stop autoboot")
    line.type(" ")
    line.wait(b"=> ")
    line.type("setenv ipaddr 10.0.2.15; setenv netmask 255.255.255.0; setenv serverip 10.0.2.2\r")
    line.wait(b"=> ")
    t0 = time.perf_counter()
    for i, _ in enumerate(files):
        line.type(f"tftpboot {0x40400000 + i * 0x4000000:#x} f{i}\r")
        line.wait(b"Bytes transferred")
        line.wait(b"=> ")
    took = time.perf_counter() - t0
    power(state, cable, False)
    line.close()
    return took


def raw_rx(fixtures, cable, nbytes):
    """Seconds to move nbytes through the line into a guest polling the PL011 (no protocol)."""
    line = Line(cable.host)
    line.drain()
    q = subprocess.Popen(["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "128M",
                          "-display", "none", "-monitor", "none", "-nic", "none", "-serial", cable.board,
                          "-kernel", os.path.join(fixtures, "aarch64-baremetal", "prompt.elf")])
    try:
        line.wait(b">> ")
        # 100-byte lines, at most WINDOW of them ahead of the guest's answers: the cable's relay
        # is one thread, and a full pty both ways would stall it.
        lines = max(1, nbytes // 100)
        data = [b"a" * (100 - len(str(i))) + str(i).encode() + b"\r" for i in range(lines)]
        window = 8
        t0 = time.perf_counter()
        sent = done = 0
        while done < lines:
            while sent < lines and sent - done < window:
                os.write(line.fd, data[sent])
                sent += 1
            if not select.select([line.fd], [], [], 30)[0]:
                raise TimeoutError("the prompt guest stopped echoing")
            line.buf += os.read(line.fd, 1 << 20)
            done += line.buf.count(b"unknown command: ")
            line.buf = line.buf[line.buf.rfind(b"unknown command: ") + 1:] if b"unknown command: " in line.buf else line.buf
        return sum(map(len, data)), time.perf_counter() - t0
    finally:
        q.kill()
        q.wait()
        line.close()


def wait_port_69(limit=600):
    """Until 127.0.0.1:69 is free (another run on this host that does not take the lock)."""
    end = time.perf_counter() + limit
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", 69))
            return
        except OSError:
            if time.perf_counter() > end:
                raise
            time.sleep(1)
        finally:
            s.close()


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--qemu-test", default="target/release/qemu-test")
    ap.add_argument("--fixtures", default=os.environ.get("QEMU_TEST_FIXTURES", "target/fixtures"))
    ap.add_argument("--kib", type=int, default=64, help="the loady payload's size")
    ap.add_argument("--only", action="append", choices=["loady", "linux"])
    a = ap.parse_args()
    sections = set(a.only or ["loady", "linux"])
    qt = os.path.abspath(a.qemu_test)
    fx = os.path.abspath(a.fixtures)
    work = tempfile.mkdtemp(prefix="qt-board-bench-")
    state = os.path.join(work, "state")
    os.makedirs(state)
    cable = Cable()
    print(f"qemu-test: {qt}; runs: {a.runs}; cpus: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}")
    try:
        if "loady" in sections:
            payload = os.path.join(work, "hello-padded.img")
            img = open(os.path.join(fx, "aarch64-baremetal", "hello.img"), "rb").read()
            with open(payload, "wb") as f:
                f.write(img + b"\0" * (a.kib * 1024 - len(img)))
            size = a.kib * 1024
            rows = {"qemu-test run (loady)": [], "plain script + lrzsz sb": []}
            raw = []
            for _ in range(a.runs):
                rows["qemu-test run (loady)"].append(
                    ours(qt, work, state, cable, payload, 'success_regex = ["Hello, world!"]\n'))
                rows["plain script + lrzsz sb"].append(plain_loady(work, state, cable, payload))
                raw.append(raw_rx(fx, cable, size))
            print(f"\nloady: {a.kib} KiB, booti, to 'Hello, world!' (medians, s from power-on)")
            print(f"{'variant':28} {'prompt':>7} {'loaded':>7} {'started':>8} {'verdict':>8} {'load KiB/s':>10}")
            for k, xs in rows.items():
                load = [x["image loaded"] - x["U-Boot prompt"] for x in xs]
                print(f"{k:28} {med([x['U-Boot prompt'] for x in xs]):7.2f} {med([x['image loaded'] for x in xs]):7.2f} "
                      f"{med([x['kernel started'] for x in xs]):8.2f} {med([x['verdict'] for x in xs]):8.2f} "
                      f"{size / 1024 / med(load):10.1f}")
            rates = [n / s / 1024 for n, s in raw]
            print(f"{'the line itself (no protocol)':28} {'':>7} {'':>7} {'':>8} {'':>8} {med(rates):10.1f}")
            o = [x["image loaded"] - x["U-Boot prompt"] for x in rows["qemu-test run (loady)"]]
            p = [x["image loaded"] - x["U-Boot prompt"] for x in rows["plain script + lrzsz sb"]]
            print(f"load time ratio qemu-test / plain+sb: {med(o) / med(p):.2f}; "
                  f"ours vs the line: {size / 1024 / med(o) / med(rates):.2f} of its rate")
        if "linux" in sections:
            # TFTP binds 127.0.0.1:69: one user at a time on this host (tests/uboot_qemu.rs too).
            lock = open(os.path.join(tempfile.gettempdir(), "qemu-test-action-tftp-port-69.lock"), "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
            kernel = os.path.join(fx, "arm64-linux", "kernel")
            initrd = os.path.join(fx, "arm64-linux", "initramfs.cpio.gz")
            cfg = (f'initrd_file = "{initrd}"\nuboot_cmd = ["setenv bootargs console=ttyAMA0 rdinit=/init"]\n'
                   f'success_regex = ["test pass!"]\n{NET}')
            xs, peer = [], []
            while len(xs) < a.runs:
                wait_port_69()
                try:
                    xs.append(ours(qt, work, state, cable, kernel, cfg))
                except RuntimeError as e:
                    if "Address already in use" not in str(e):
                        raise
                    print("  (port 69 taken by another run on this host: again)")
                    continue
                peer.append(plain_tftp(work, state, cable, [kernel, initrd]))
            size = os.path.getsize(kernel) + os.path.getsize(initrd)
            load = [x["image loaded"] - x["network up"] for x in xs]
            print(f"\nlinux over TFTP (booti + initramfs), medians of {a.runs}, s from power-on:")
            for k in ["U-Boot prompt", "network up", "image loaded", "kernel started", "verdict", "wall"]:
                print(f"  {k:15} {med([x[k] for x in xs]):7.2f}")
            print(f"  TFTP: {size / 1e6:.1f} MB in {med(load):.2f} s = {size / 1e6 / med(load):.1f} MB/s")
            print(f"  QEMU's own TFTP server (user network tftp=), same files: {med(peer):.2f} s = "
                  f"{size / 1e6 / med(peer):.1f} MB/s; ratio ours / QEMU's {med(load) / med(peer):.2f}")
    finally:
        cable.close()
        subprocess.run(["sh", os.path.join(BOARD, "qemu-board.sh"), "off", state], stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
