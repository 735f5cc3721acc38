#!/usr/bin/env python3
"""Side-by-side end-to-end benchmarks of qemu-test against raw QEMU (and ostool 0.8 when
installed), measured in ONE interleaved run so machine noise hits every variant alike.

  python3 benches/bench.py [--runs N] [--qemu-test PATH] [--fixtures DIR]

Prints medians and ratios; never asserts. See BENCHMARKS.md for results and how to read them.

Sections (--only, repeatable; default all): boot (overhead and verdict latency), flood (peak RSS),
pull-xz (tgosimages' .tar.xz: `qemu-test images pull` from a loopback HTTP server against
`curl | tee | sha256sum` then `tar xJf` of the same archive from the same server).
"""
import argparse, functools, hashlib, http.server, json, os, shutil, statistics, subprocess, sys
import socket, tempfile, threading, time

ARGS = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt,virtualization=on,gic-version=3", "-m", "128M"]
CONFIG = """args = {args}
success_regex = ["Hello, world!"]
fail_regex = ["panicked at"]
to_bin = false
uefi = false
""".format(args=json.dumps(ARGS))


def launch_to_exit(cmd, cwd):
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def match_to_exit(cmd, cwd, needle):
    """Seconds from the moment `needle` appears on the command's stdout to its exit."""
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen, t_match = b"", None
    fd = p.stdout.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if t_match is None:
            seen += chunk
            if needle in seen:
                t_match = time.perf_counter()
            seen = seen[-len(needle):]
    p.wait()
    t_exit = time.perf_counter()
    return None if t_match is None else t_exit - t_match


def launch_to_exit_qmp(cmd, cwd):
    """`cmd` started paused with QMP on an inherited socket pair, as qemu-test starts QEMU:
    `qmp_capabilities` and `cont` queued on our end, QEMU's end passed as `-chardev
    socket,fd=N`; seconds from launch to exit."""
    ours, qemus = socket.socketpair()
    ours.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"cont"}\n')
    fd = qemus.fileno()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd + ["-chardev", f"socket,id=qmp,fd={fd}", "-mon", "chardev=qmp,mode=control", "-S"],
                         cwd=cwd, pass_fds=[fd],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    qemus.close()
    p.wait()
    t = time.perf_counter() - t0
    ours.close()
    return t


def median_ms(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) * 1000 if xs else float("nan")


def pull_xz(qt, fx, work, runs):
    """tgosimages-style .tar.xz bundle (the fixtures' arm64 kernel + ext4 rootfs, `tar -cJf`)
    served by a real HTTP server on 127.0.0.1; each round pulls it cold with both variants."""
    src = os.path.join(work, "xz-src")
    os.makedirs(src)
    for f in ("kernel", "rootfs.img"):
        shutil.copy(os.path.join(fx, "arm64-linux", f), os.path.join(src, f))
    serve = os.path.join(work, "xz-serve")
    os.makedirs(serve)
    archive = os.path.join(serve, "qemu-aarch64.tar.xz")
    subprocess.run(["tar", "-cJf", archive, "-C", src, "."], check=True)
    sha = hashlib.sha256(open(archive, "rb").read()).hexdigest()
    size = os.path.getsize(archive)
    handler = functools.partial(QuietHandler, directory=serve)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/qemu-aarch64.tar.xz"
    reg = os.path.join(work, "xz-registry.toml")
    open(reg, "w").write(
        f'[[images]]\nname = "qemu-aarch64"\nversion = "0.0.15"\nsha256 = "{sha}"\n'
        f'arch = "aarch64"\nurl = "{url}"\n')

    def ours():
        cache = tempfile.mkdtemp(prefix="xz-cache-", dir=work)
        t = launch_to_exit([qt, "images", "pull", "qemu-aarch64:0.0.15", "--registry", reg,
                            "--cache-dir", cache], work)
        ok = os.path.exists(os.path.join(cache, "images", sha, "rootfs.img"))
        shutil.rmtree(cache)
        return t if ok else None

    def peer():
        d = tempfile.mkdtemp(prefix="xz-peer-", dir=work)
        script = (f'[ "$(curl -sSf {url} | tee a.tar.xz | sha256sum | cut -d" " -f1)" = {sha} ] '
                  f'&& mkdir x && tar xJf a.tar.xz -C x')
        t0 = time.perf_counter()
        r = subprocess.run(["sh", "-c", script], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t = time.perf_counter() - t0
        ok = r.returncode == 0 and os.path.exists(os.path.join(d, "x", "rootfs.img"))
        shutil.rmtree(d)
        return t if ok else None

    samples = {"qemu-test images pull (one pass: hash + unxz + untar)": [],
               "curl | tee | sha256sum, then tar xJf": []}
    fns = list(zip(samples, (ours, peer)))
    for _, f in fns:
        f()  # warm-up
    for _ in range(runs):
        for k, f in fns:
            samples[k].append(f())
    httpd.shutdown()
    print()
    print(f"pull-xz: {size / 2**20:.1f} MiB .tar.xz ({sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src)) / 2**20:.1f} MiB unpacked), {runs} interleaved rounds")
    print(f"{'variant':55} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'failed':>6}")
    for k, xs in samples.items():
        ys = [x for x in xs if x is not None]
        print(f"{k:55} {median_ms(ys):10.1f} {min(ys)*1000 if ys else float('nan'):8.1f} "
              f"{max(ys)*1000 if ys else float('nan'):8.1f} {len(xs) - len(ys):6}")
    a, b = (median_ms(v) for v in samples.values())
    print(f"pull-xz speed-up (curl+sha256sum+tar xJf / qemu-test): {b / a:.2f}x")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--qemu-test", default="target/release/qemu-test")
    ap.add_argument("--fixtures", default=os.environ.get("QEMU_TEST_FIXTURES", "target/fixtures"))
    ap.add_argument("--flood-mib", type=int, default=110,
                    help="console volume for the peak-RSS measurement (the flood guest prints 1 MiB per round)")
    ap.add_argument("--ostool", default=shutil.which("ostool"),
                    help="ostool 0.8 binary (cargo install ostool --version ^0.8); default: on PATH")
    ap.add_argument("--qemu-test-before", metavar="PATH",
                    help="another qemu-test build (say, the previous commit's) timed in the same "
                         "interleaved rounds, for a before/after of the overhead")
    ap.add_argument("--only", action="append", choices=["boot", "flood", "pull-xz"],
                    help="run only these sections (repeatable); default: all")
    a = ap.parse_args()
    sections = set(a.only or ["boot", "flood", "pull-xz"])
    qt = os.path.abspath(a.qemu_test)
    fx = os.path.abspath(a.fixtures)
    bm = os.path.join(fx, "aarch64-baremetal")
    work = tempfile.mkdtemp(prefix="qt-bench-")
    cfg = os.path.join(work, "qemu.toml")
    open(cfg, "w").write(CONFIG)
    qemu = shutil.which("qemu-system-aarch64")
    ostool = a.ostool
    print(f"qemu: {subprocess.run([qemu, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
    print(f"qemu-test: {qt}; ostool: {ostool or 'not installed (skipped)'}; runs: {a.runs}; cpus: {os.cpu_count()}")

    def qt_cmd(kernel, extra=(), binary=None):
        return [binary or qt, "run", "--quiet", "--kernel", os.path.join(bm, kernel), "--qemu-config", cfg,
                "--out-dir", os.path.join(work, "out"), *extra]

    def qt_echo_cmd(kernel):
        return [qt, "run", "--kernel", os.path.join(bm, kernel), "--qemu-config", cfg,
                "--out-dir", os.path.join(work, "out")]

    raw = [qemu, *ARGS, "-no-reboot", "-kernel", os.path.join(bm, "hello.elf")]
    raw_qmp = raw + ["-device", "pvpanic-pci"]
    variants = {
        "raw QEMU, hello (launch->exit)": lambda: launch_to_exit(raw, work),
        "raw QEMU + QMP as qemu-test starts it": lambda: launch_to_exit_qmp(raw_qmp, work),
        "qemu-test, hello (launch->exit)": lambda: launch_to_exit(qt_cmd("hello.elf"), work),
    }
    before = os.path.abspath(a.qemu_test_before) if a.qemu_test_before else None
    if before:
        variants["qemu-test before, hello (launch->exit)"] = lambda: launch_to_exit(
            qt_cmd("hello.elf", binary=before), work)
    vcpu_read_ms = []

    def panic_latency():
        t = match_to_exit(qt_echo_cmd("panic.elf"), work, b"panicked at")
        r = json.load(open(os.path.join(work, "out", "results.json")))
        took = r["cases"][0]["verdict"].get("postmortem", {}).get("took_ms")
        if took is not None:
            vcpu_read_ms.append(took)
        return t
    latency = {
        "qemu-test, hello_noexit (match->exit)": lambda: match_to_exit(qt_echo_cmd("hello_noexit.elf"), work, b"Hello, world!"),
        "qemu-test, panic (match->exit)": panic_latency,
    }
    if ostool:
        os_dir = os.path.join(work, "ostool")
        os.makedirs(os_dir)
        for k in ("hello", "hello_noexit", "panic"):
            shutil.copy(os.path.join(bm, f"{k}.elf"), os.path.join(os_dir, f"{k}.elf"))
        def os_cmd(k):
            open(os.path.join(os_dir, ".build.toml"), "w").write(
                f'[system.Custom]\nbuild_cmd = "true"\nelf_path = "{os_dir}/{k}.elf"\nto_bin = false\n')
            return [ostool, "-w", os_dir, "run", "qemu", "-q", cfg]
        variants["ostool 0.8, hello (launch->exit)"] = lambda: launch_to_exit(os_cmd("hello"), os_dir)
        latency["ostool 0.8, hello_noexit (match->exit)"] = lambda: match_to_exit(os_cmd("hello_noexit"), os_dir, b"Hello, world!")
        latency["ostool 0.8, panic (match->exit)"] = lambda: match_to_exit(os_cmd("panic"), os_dir, b"panicked at")

    if "boot" in sections:
        samples = {k: [] for k in [*variants, *latency]}
        for f in [*variants.values(), *latency.values()]:
            f()  # warm-up: page cache, first-run costs
        for _ in range(a.runs):  # interleaved: one of each per round
            for k, f in [*variants.items(), *latency.items()]:
                samples[k].append(f())
        print()
        print(f"{'variant':45} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
        for k, xs in samples.items():
            ys = [x for x in xs if x is not None]
            print(f"{k:45} {median_ms(ys):10.1f} {min(ys)*1000:8.1f} {max(ys)*1000:8.1f}")
        base = median_ms(samples["raw QEMU, hello (launch->exit)"])
        ours = median_ms(samples["qemu-test, hello (launch->exit)"])
        pairs = [q - r for q, r in zip(samples["qemu-test, hello (launch->exit)"], samples["raw QEMU, hello (launch->exit)"])]
        print()
        print(f"overhead vs raw QEMU: median {ours - base:+.1f} ms (paired median {statistics.median(pairs)*1000:+.1f} ms), ratio {ours / base:.3f}")
        if before:
            b = median_ms(samples["qemu-test before, hello (launch->exit)"])
            bpairs = [q - r for q, r in zip(samples["qemu-test before, hello (launch->exit)"], samples["raw QEMU, hello (launch->exit)"])]
            print(f"overhead of {before}: median {b - base:+.1f} ms (paired median {statistics.median(bpairs)*1000:+.1f} ms), ratio {b / base:.3f}")
        qmp = median_ms(samples["raw QEMU + QMP as qemu-test starts it"])
        qpairs = [q - r for q, r in zip(samples["raw QEMU + QMP as qemu-test starts it"], samples["raw QEMU, hello (launch->exit)"])]
        print(f"QMP's share on QEMU's side (paused start, pvpanic, capabilities + cont): median {qmp - base:+.1f} ms (paired median {statistics.median(qpairs)*1000:+.1f} ms)")
        if vcpu_read_ms:
            print(f"failing verdict: vCPU read (results.json postmortem.took_ms) median {statistics.median(vcpu_read_ms):.0f} ms, max {max(vcpu_read_ms)} ms")
        if ostool:
            o = median_ms(samples["ostool 0.8, hello (launch->exit)"])
            print(f"ostool 0.8 overhead vs raw QEMU: median {o - base:+.1f} ms, ratio {o / base:.3f}")

    if "flood" in sections:
        # Peak RSS while the flood guest prints --flood-mib MiB (it numbers its lines: 64 per MiB).
        out = os.path.join(work, "flood")
        t0 = time.perf_counter()
        subprocess.run([qt, "run", "--quiet", "--kernel", os.path.join(bm, "flood.elf"), "--qemu-config", cfg,
                        "--success-regex", f"^flood line {a.flood_mib * 64}$", "--timeout", "30m",
                        "--out-dir", out], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        secs = time.perf_counter() - t0
        r = json.load(open(os.path.join(out, "results.json")))
        mb = r["cases"][0]["console_bytes"] / 1e6
        print(f"flood: {mb:.0f} MB of console in {secs:.0f}s ({mb / secs:.1f} MB/s), "
              f"qemu-test peak RSS {r['max_rss_kib'] / 1024:.1f} MiB "
              f"(verdict {r['cases'][0]['verdict']['outcome']})")
    if "pull-xz" in sections:
        pull_xz(qt, fx, work, a.runs)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
