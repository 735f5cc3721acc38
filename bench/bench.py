#!/usr/bin/env python3
"""Side-by-side end-to-end benchmarks of qemu-test against raw QEMU (and ostool 0.8 when
installed), measured in ONE interleaved run so machine noise hits every variant alike.

  python3 bench/bench.py [--runs N] [--qemu-test PATH] [--fixtures DIR]

Prints medians and ratios; never asserts. See BENCHMARKS.md for results and how to read them.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

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


def median_ms(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) * 1000 if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--qemu-test", default="target/release/qemu-test")
    ap.add_argument("--fixtures", default=os.environ.get("QEMU_TEST_FIXTURES", "target/fixtures"))
    ap.add_argument("--flood-mib", type=int, default=110,
                    help="console volume for the peak-RSS measurement (the flood guest prints 1 MiB per round)")
    ap.add_argument("--ostool", default=shutil.which("ostool"),
                    help="ostool 0.8 binary (cargo install ostool --version ^0.8); default: on PATH")
    a = ap.parse_args()
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

    def qt_cmd(kernel, extra=()):
        return [qt, "run", "--quiet", "--kernel", os.path.join(bm, kernel), "--qemu-config", cfg,
                "--out-dir", os.path.join(work, "out"), *extra]

    def qt_echo_cmd(kernel):
        return [qt, "run", "--kernel", os.path.join(bm, kernel), "--qemu-config", cfg,
                "--out-dir", os.path.join(work, "out")]

    raw = [qemu, *ARGS, "-no-reboot", "-kernel", os.path.join(bm, "hello.elf")]
    variants = {
        "raw QEMU, hello (launch->exit)": lambda: launch_to_exit(raw, work),
        "qemu-test, hello (launch->exit)": lambda: launch_to_exit(qt_cmd("hello.elf"), work),
    }
    latency = {
        "qemu-test, hello_noexit (match->exit)": lambda: match_to_exit(qt_echo_cmd("hello_noexit.elf"), work, b"Hello, world!"),
        "qemu-test, panic (match->exit)": lambda: match_to_exit(qt_echo_cmd("panic.elf"), work, b"panicked at"),
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
    if ostool:
        o = median_ms(samples["ostool 0.8, hello (launch->exit)"])
        print(f"ostool 0.8 overhead vs raw QEMU: median {o - base:+.1f} ms, ratio {o / base:.3f}")

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
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
