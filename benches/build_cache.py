#!/usr/bin/env python3
"""Cold vs warm `qemu-test run --build-config` with the fixture cargo kernel: what the action's
build cache (input `cache-build`) saves a job. Each round:

  cold  a fresh checkout (a copy of fixtures/cargo-kernel) and an empty out dir: cargo builds
        everything into <out>/cargo-target;
  save  <out>/cargo-target is kept aside, as actions/cache/save keeps it;
  wipe  the checkout and the out dir are deleted and the checkout copied afresh (new mtimes, as
        actions/checkout gives every job), only the kept target dir is put back, as
        actions/cache/restore puts it back;
  warm  the same run again;
  other the same after another wipe, with another VM config (a restore-key hit: the run takes
        the restored target dir over under its new VM-config-set name).

Two workspaces: the fixture as it is (no dependencies: only its own crate, which a fresh
checkout always rebuilds), and the fixture with crates.io dependencies standing in for
AxVisor's dependency tree (serde with derive, so syn/quote/proc-macro2 build for the host, and
log, which also turns on the log feature as for AxVisor). The dependencies come from this
machine's cargo registry cache (--offline), so no network is used.

  python3 benches/build_cache.py [--rounds N] [--qemu-test PATH]

Prints the build stage's time (from results.json) per run and the warm/cold ratio of medians;
never asserts. See BENCHMARKS.md.
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURE = os.path.join(REPO, "fixtures", "cargo-kernel")

# The fixture's own VM and QEMU configs (vms/guest.toml, qemu.toml), as the tests use them.
VM_NAME = 'name = "cargo-kernel-guest"'

DEPS = """
[dependencies]
serde = { version = "1", default-features = false, features = ["derive"] }
log = "0.4"
"""


def checkout(ws, deps, vm_name=None):
    """A fresh copy of the fixture with new mtimes (as actions/checkout gives every job: cargo
    rebuilds the checkout's own crate), with its VM and QEMU configs; `vm_name` renames the
    guest of its VM config (another VM-config set)."""
    shutil.copytree(FIXTURE, ws, ignore=shutil.ignore_patterns("target"), copy_function=shutil.copy)
    if vm_name:
        vm = os.path.join(ws, "vms", "guest.toml")
        text = open(vm).read()
        if VM_NAME not in text:
            raise SystemExit(f"{vm} has no `{VM_NAME}` to rename")
        open(vm, "w").write(text.replace(VM_NAME, f'name = "{vm_name}"'))
    if deps:
        with open(os.path.join(ws, "Cargo.toml"), "a") as f:
            f.write(DEPS)
        shutil.copy(deps, os.path.join(ws, "Cargo.lock"))


def lock_with_deps(work):
    """The Cargo.lock of the fixture with DEPS, resolved offline from the registry cache."""
    ws = os.path.join(work, "lock")
    checkout(ws, None)
    with open(os.path.join(ws, "Cargo.toml"), "a") as f:
        f.write(DEPS)
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=ws, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(ws, "Cargo.lock")


def run(qt, ws, out):
    """One `qemu-test run` of the build; (build stage seconds, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(
        [qt, "run", "--quiet", "--build-config", "board.toml", "--qemu-config", "qemu.toml",
         "--vmconfigs", "vms/guest.toml", "--accel", "tcg", "--timeout", "60s", "--out-dir", out],
        cwd=ws, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"qemu-test run failed ({p.returncode}):\n{p.stderr}")
    results = json.load(open(os.path.join(out, "results.json")))
    stages = results["cases"][0]["stages"]
    build = next(s["duration"] for s in stages if s["stage"] == "build")
    return float(build), wall


def size_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            fp = os.path.join(root, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total / (1 << 20)


def round_trip(qt, work, deps):
    ws, out, kept = (os.path.join(work, d) for d in ("ws", "out", "kept"))
    for d in (ws, out, kept):
        shutil.rmtree(d, ignore_errors=True)
    checkout(ws, deps)
    cold = run(qt, ws, out)
    shutil.copytree(os.path.join(out, "cargo-target"), kept, symlinks=True)
    mib = size_mib(kept)
    shutil.rmtree(ws)
    shutil.rmtree(out)
    checkout(ws, deps)
    os.makedirs(out)
    shutil.copytree(kept, os.path.join(out, "cargo-target"), symlinks=True)
    warm = run(qt, ws, out)
    shutil.rmtree(ws)
    shutil.rmtree(out)
    checkout(ws, deps, "cargo-kernel-guest-2")
    os.makedirs(out)
    shutil.copytree(kept, os.path.join(out, "cargo-target"), symlinks=True)
    other = run(qt, ws, out)
    return cold, warm, other, mib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    default_qt = os.path.join(REPO, "target", "release", "qemu-test")
    if not os.path.exists(default_qt):
        default_qt = os.path.join(REPO, "target", "debug", "qemu-test")
    ap.add_argument("--qemu-test", default=default_qt)
    a = ap.parse_args()
    qt = os.path.abspath(a.qemu_test)
    work = tempfile.mkdtemp(prefix="qt-build-cache-")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, cwd=FIXTURE).stdout.strip()
    print(f"qemu-test: {qt}; {rustc}; cpus: {os.cpu_count()}; rounds: {a.rounds}")
    variants = {"fixture (no dependencies)": None, "fixture + serde(derive) + log": lock_with_deps(work)}
    rows = {name: [] for name in variants}
    for r in range(a.rounds):
        for name, deps in variants.items():
            cold, warm, other, mib = round_trip(qt, work, deps)
            rows[name].append((cold, warm, other, mib))
            print(f"round {r + 1} {name}: build cold {cold[0]:.2f}s, warm {warm[0]:.2f}s, "
                  f"other VM config {other[0]:.2f}s (run wall {cold[1]:.2f}s / {warm[1]:.2f}s / "
                  f"{other[1]:.2f}s; cached target dir {mib:.1f} MiB)")
    print()
    print("| workspace | build cold (median s) | warm, same inputs | warm/cold "
          "| warm, other VM config | other/cold | cached dir |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in rows.items():
        cold = statistics.median(c[0] for c, _, _, _ in rs)
        warm = statistics.median(w[0] for _, w, _, _ in rs)
        other = statistics.median(o[0] for _, _, o, _ in rs)
        mib = statistics.median(m for _, _, _, m in rs)
        print(f"| {name} | {cold:.2f} | {warm:.2f} | {warm / cold:.2f} | {other:.2f} "
              f"| {other / cold:.2f} | {mib:.1f} MiB |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
