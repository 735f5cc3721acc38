//! The build of tgoskits' new-shape build files (`test-suit/axvisor/**/build-<target>.toml`) is
//! axbuild's own: the exact cargo command and environment its `axvisor test qemu` runs, from the
//! workspace root, as `--dry-run` shows it.
//!
//! The facts asserted here are read from rcore-os/tgoskits at 759e69c (the commit of
//! tests/data/tgoskits) and the ostool 0.24.1 crate its axbuild drives:
//! - `scripts/axbuild/src/axvisor/build/mod.rs` (`patch_axvisor_cargo_config`): `-p axvisor`,
//!   `--bin axvisor`, `AX_ARCH`, `AX_TARGET`, `AXVISOR_VM_CONFIGS` only when there are VM configs;
//! - `scripts/axbuild/src/build/info.rs` (`BuildInfo`): `AX_LOG`, `SMP` from `max_cpu_num`
//!   (`smp` feature above one CPU), the file's `env`;
//! - `scripts/axbuild/src/build/std_build.rs`: `--target scripts/targets/std/pie/<musl>.json`,
//!   `-Z json-target-spec`, `CARGO_UNSTABLE_JSON_TARGET_SPEC=true`, `CC_`/`AR_`/`CFLAGS_`/
//!   `CXXFLAGS_<musl>`, the generated `--config` file (build-std, linker wrapper), features
//!   through ax-std (`pass_std_build_nested_features`);
//! - ostool `src/build/cargo_pipeline.rs` (`CargoBuildPlan::render`): the argument order,
//!   `-Z unstable-options`, `--release`, `--message-format json-render-diagnostics`, the
//!   `log/release_max_level_<lvl>` feature last, `WORKSPACE_FOLDER` then the sorted variables.

pub mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, text};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tgoskits")
}

/// `run --test-suit <vendored> --dry-run --arch ARCH --test-group axvisor/normal`: its stdout.
fn dry_run(s: &Scratch, arch: &str) -> String {
    s.dry_run_suite(&data().join("test-suit"), arch, "axvisor/normal")
}

/// The `# build:` line of the case `name`, split at the program into environment and argv.
fn build_line(stdout: &str, name: &str) -> (String, Vec<String>) {
    // One case prints no `# case:` header.
    let section = match stdout.contains("# case: ") {
        true => stdout
            .split("# case: ")
            .find(|c| c.starts_with(name))
            .unwrap_or_else(|| panic!("no case {name}: {stdout}")),
        false => stdout,
    };
    let line = section
        .lines()
        .find_map(|l| l.strip_prefix("# build: "))
        .unwrap_or_else(|| panic!("no build line: {section}"));
    let (env, args) = line
        .split_once(" cargo build ")
        .unwrap_or_else(|| panic!("not a cargo build: {line}"));
    // The one argument with spaces: the target dir, named from configs not yet patched.
    let hashed = "<hash of the patched configs>";
    let args = args
        .replace(hashed, "<HASH>")
        .split(' ')
        .map(|a| a.replace("<HASH>", hashed))
        .collect();
    (env.to_string(), args)
}

/// What axbuild's command is for AxVisor on this target, its features and target dir aside.
fn expected_args(s: &Scratch, musl: &str, features: &str) -> Vec<String> {
    expected_args_of(s, musl, "axvisor", features, Some("axvisor"))
}

/// What axbuild's (ostool's) command is for `package` on this target: `--bin` only when the flow
/// names one (AxVisor's does, ArceOS' test flows do not).
fn expected_args_of(
    s: &Scratch,
    musl: &str,
    package: &str,
    features: &str,
    bin: Option<&str>,
) -> Vec<String> {
    let support = s.out().join("cargo-target/axbuild");
    let config = support.join(format!("config-{musl}-dynamic.toml"));
    let target_dir = format!(
        "'{}/vmcfg-<hash of the patched configs>'",
        s.out().join("cargo-target").display()
    );
    let mut args: Vec<String> = [
        "--config",
        config.to_str().unwrap(),
        "-p",
        package,
        "--target",
        &format!("scripts/targets/std/pie/{musl}.json"),
        "-Z",
        "unstable-options",
        "--target-dir",
        &target_dir,
        "--features",
        features,
        "-Z",
        "json-target-spec",
    ]
    .map(String::from)
    .to_vec();
    if let Some(bin) = bin {
        args.extend(["--bin".to_string(), bin.to_string()]);
    }
    args.extend(["--release", "--message-format", "json-render-diagnostics"].map(String::from));
    args
}

/// The environment axbuild gives cargo: `WORKSPACE_FOLDER` first, then every variable sorted.
fn expected_env(ws: &Path, musl: &str, cflags: &str, rest: &[(&str, String)]) -> String {
    let t = musl.replace('-', "_");
    let prefix = musl.replace("-unknown", "").replace("gc-", "-");
    let mut vars: Vec<(String, String)> = vec![
        (format!("AR_{t}"), format!("{prefix}-ar")),
        (format!("CC_{t}"), format!("{prefix}-cc")),
        (
            format!("CFLAGS_{t}"),
            format!("'{cflags} -fno-stack-protector'"),
        ),
        (
            format!("CXXFLAGS_{t}"),
            format!("'{cflags} -fno-stack-protector'"),
        ),
        ("CARGO_UNSTABLE_JSON_TARGET_SPEC".into(), "true".into()),
        ("AX_LOG".into(), "info".into()),
    ];
    vars.extend(rest.iter().map(|(k, v)| (k.to_string(), v.clone())));
    vars.sort();
    let mut words = vec![format!("cd {}", ws.display()), "&&".into()];
    words.push(format!("WORKSPACE_FOLDER={}", ws.display()));
    words.extend(vars.into_iter().map(|(k, v)| format!("{k}={v}")));
    words.join(" ")
}

fn patched(s: &Scratch, case_dir: &str, file: &str) -> String {
    s.out()
        .join("cases")
        .join(case_dir)
        .join("vmconfigs")
        .join(file)
        .display()
        .to_string()
}

/// The vendored tree's AxVisor aarch64 dry run with the variable `var` set: its output, whatever
/// its exit status.
fn aarch64_dry_run(s: &Scratch, var: (&str, &str)) -> std::process::Output {
    dry_run_with(s, &data().join("test-suit"), Some("axvisor/normal"), &[var])
}

/// `run --test-suit <root> --dry-run --arch aarch64 [--test-group <group>]` with `env` set.
fn dry_run_with(
    s: &Scratch,
    root: &Path,
    group: Option<&str>,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec!["run", "--test-suit", root.to_str().unwrap(), "--dry-run"];
    args.extend(["--arch", "aarch64"]);
    if let Some(g) = group {
        args.extend(["--test-group", g]);
    }
    s.cmd(&args).envs(env.iter().copied()).output().unwrap()
}

/// The environment of AxVisor's aarch64 smoke build, with `bindgen`'s value when there is one.
fn aarch64_env(s: &Scratch, bindgen: Option<&str>) -> String {
    let mut rest = vec![
        (
            "AXVISOR_VM_CONFIGS",
            patched(s, "axvisor.normal.smoke_aarch64", "linux-smp1.toml"),
        ),
        ("AX_ARCH", "aarch64".into()),
        ("AX_TARGET", "aarch64-unknown-none-softfloat".into()),
    ];
    if let Some(v) = bindgen {
        rest.push((
            "BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_musl",
            format!("'{v}'"),
        ));
    }
    expected_env(
        &data(),
        "aarch64-unknown-linux-musl",
        "-mgeneral-regs-only",
        &rest,
    )
}

#[test]
fn aarch64_build_is_axbuilds_std_build() {
    let s = Scratch::new();
    let stdout = dry_run(&s, "aarch64");
    let (env, args) = build_line(&stdout, "axvisor.normal.smoke@aarch64");
    let musl = "aarch64-unknown-linux-musl";
    assert_eq!(env, aarch64_env(&s, None));
    // `ax-driver/virtio-blk` through ax-std, `fs` on both (AxVisor declares it too), no smp.
    let features = "ax-std/fs,ax-std/virtio-blk,fs,log/release_max_level_info";
    assert_eq!(args, expected_args(&s, musl, features));
    // The files the build writes first, all under the out dir.
    let support = s.out().join("cargo-target/axbuild");
    for f in [
        format!("config-{musl}-dynamic.toml"),
        format!("linker-{musl}-dynamic.sh"),
        format!("std-libs/{musl}/release/libc.a"),
        format!("std-libs/{musl}/release/libunwind.a"),
    ] {
        let line = format!("# build writes: {} (", support.join(f).display());
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }
    assert!(!data().join("tmp").exists() && !data().join("target").exists());
}

#[test]
fn riscv64_build_has_smp_from_max_cpu_num_and_sstc() {
    let s = Scratch::new();
    let stdout = dry_run(&s, "riscv64");
    let (env, args) = build_line(&stdout, "axvisor.normal.smoke@riscv64");
    let musl = "riscv64gc-unknown-linux-musl";
    let vm = patched(&s, "axvisor.normal.smoke_riscv64", "linux-smp1.toml");
    assert_eq!(
        env,
        expected_env(
            &data(),
            musl,
            "-march=rv64gc -mabi=lp64d -mcmodel=medany",
            &[
                ("AXVISOR_VM_CONFIGS", vm),
                ("AX_ARCH", "riscv64".into()),
                ("AX_TARGET", "riscv64gc-unknown-none-elf".into()),
                ("SMP", "4".into()),
            ]
        )
    );
    // max_cpu_num = 4: `smp`, which AxVisor does not declare, goes to ax-std only.
    let features = "ax-std/fs,ax-std/smp,ax-std/virtio-blk,fs,sstc,log/release_max_level_info";
    assert_eq!(args, expected_args(&s, musl, features));
}

/// The loongarch64 file has `vm_configs = []`, `max_cpu_num = 1` and an `[env]`: no
/// `AXVISOR_VM_CONFIGS` at all (removed from the inherited environment: AxVisor's build.rs
/// reads an empty value as one empty path), `SMP=1` without the `smp` feature, the file's
/// variable in sorted place.
#[test]
fn loongarch64_build_without_vm_configs_unsets_the_variable() {
    let s = Scratch::new();
    let stdout = dry_run(&s, "loongarch64");
    let (env, args) = build_line(&stdout, "axvisor.normal.smoke@loongarch64");
    let musl = "loongarch64-unknown-linux-musl";
    let expected = expected_env(
        &data(),
        musl,
        "-mabi=lp64s -msoft-float",
        &[
            ("AX_ARCH", "loongarch64".into()),
            ("AX_TARGET", "loongarch64-unknown-none-softfloat".into()),
            (
                "KERNEL_BUILTIN_CMDLINE",
                "'root=/dev/vda earlycon=uart8250,mmio,0x1fe001e0,115200'".into(),
            ),
            ("SMP", "1".into()),
        ],
    )
    .replacen("&& ", "&& env -u AXVISOR_VM_CONFIGS ", 1);
    assert_eq!(env, expected);
    let features = "ax-std/fs,ax-std/virtio-blk,fs,log/release_max_level_info";
    assert_eq!(args, expected_args(&s, musl, features));
}

/// `FEATURES` in the environment (axbuild's `apply_makefile_features`, every flow): its
/// features join the build file's before anything else reads them — `ax-std/irq` as `irq`, then
/// through ax-std like the file's; `sstc`, which ax-std does not provide, on the package — and
/// the dry run says so; one axbuild refuses is refused naming the variable.
#[test]
fn features_from_the_environment_join_the_build_files() {
    let s = Scratch::new();
    let out = aarch64_dry_run(&s, ("FEATURES", "ax-std/irq, sstc fs"));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let (_, argv) = build_line(&stdout, "axvisor.normal.smoke@aarch64");
    let features = "ax-std/fs,ax-std/irq,ax-std/virtio-blk,fs,sstc,log/release_max_level_info";
    assert_eq!(
        argv,
        expected_args(&s, "aarch64-unknown-linux-musl", features)
    );
    assert!(
        stdout.contains(
            "# build note: FEATURES='ax-std/irq, sstc fs' (environment) adds irq, sstc to the \
             build file's features, as axbuild does\n"
        ),
        "{stdout}"
    );

    let out = aarch64_dry_run(&s, ("FEATURES", "vmx"));
    let (stdout, stderr) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("# build: cannot plan: "))
        .unwrap_or_else(|| panic!("{stdout}{stderr}"));
    assert!(
        line.contains("feature `vmx` in the FEATURES environment variable: AxVisor selects"),
        "{line}"
    );
}

/// A musl cross compiler `aarch64-linux-musl-cc` in the scratch dir's `bin/` (laid out as
/// musl.cc's toolchains: the sysroot `<root>/aarch64-linux-musl`, gcc's headers under
/// `<root>/lib/gcc/…`); the value axbuild derives from it for `BINDGEN_EXTRA_CLANG_ARGS_<musl>`.
fn fake_musl_cc(s: &Scratch) -> (PathBuf, String) {
    let root = s.path().canonicalize().unwrap();
    let sysroot = root.join("aarch64-linux-musl");
    std::fs::create_dir_all(sysroot.join("include")).unwrap();
    let gcc = root.join("lib/gcc/aarch64-linux-musl/11.2.1/include");
    std::fs::create_dir_all(&gcc).unwrap();
    let bin = common::fake_qemu::script(
        s,
        "aarch64-linux-musl-cc",
        &format!("[ \"$1\" = -print-sysroot ] && echo {}", sysroot.display()),
    );
    let value = format!(
        "--target=aarch64-linux-musl --sysroot={} --gcc-toolchain={} -isystem {}/include \
         -isystem {} -mgeneral-regs-only",
        sysroot.display(),
        root.display(),
        sysroot.display(),
        gcc.display()
    );
    (bin, value)
}

/// `BINDGEN_EXTRA_CLANG_ARGS_<musl>` (axbuild's `std_c_toolchain_env`): derived from the musl
/// cross compiler on PATH as axbuild derives it, in its sorted place; without one the variable is
/// left out, as axbuild does, and the dry run says so.
#[test]
fn bindgen_args_come_from_the_hosts_musl_cross_compiler() {
    let s = Scratch::new();
    let (bin, value) = fake_musl_cc(&s);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = aarch64_dry_run(&s, ("PATH", &path));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let (env, _) = build_line(&stdout, "axvisor.normal.smoke@aarch64");
    assert_eq!(env, aarch64_env(&s, Some(&value)));
    assert!(!stdout.contains("# build note: BINDGEN"), "{stdout}");

    // Without the compiler (none on this PATH): left out, and said.
    let bare = s.path().join("empty");
    std::fs::create_dir_all(&bare).unwrap();
    let out = aarch64_dry_run(&s, ("PATH", bare.to_str().unwrap()));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "# build note: BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_musl is not set: no \
             aarch64-linux-musl-cc on PATH (axbuild derives it from that compiler's \
             -print-sysroot and leaves it out without one too;"
        ),
        "{stdout}"
    );
    let (env, _) = build_line(&stdout, "axvisor.normal.smoke@aarch64");
    assert!(!env.contains("BINDGEN"), "{env}");
}

/// Both x86_64 variants build the same (the backend is chosen at run time; a `vmx`/`svm`
/// feature is refused, see the unit tests), whether or not the case is skipped on this host.
#[test]
fn x86_64_svm_and_vmx_builds_are_the_same_std_build() {
    let s = Scratch::new();
    let stdout = dry_run(&s, "x86_64");
    let musl = "x86_64-unknown-linux-musl";
    let flags = "-mno-mmx -mno-sse -mno-sse2 -mno-sse3 -mno-ssse3 -mno-sse4.1 -mno-sse4.2 \
                 -mno-avx -mno-avx2 -msoft-float";
    for variant in ["svm", "vmx"] {
        let (env, args) = build_line(&stdout, &format!("axvisor.normal.smoke-{variant}@x86_64"));
        let dir = format!("axvisor.normal.smoke-{variant}_x86_64");
        assert_eq!(
            env,
            expected_env(
                &data(),
                musl,
                flags,
                &[
                    ("AXVISOR_VM_CONFIGS", patched(&s, &dir, "linux-smp1.toml")),
                    ("AX_ARCH", "x86_64".into()),
                    ("AX_TARGET", "x86_64-unknown-none".into()),
                ]
            )
        );
        let features = "ax-std/fs,ax-std/virtio-blk,fs,log/release_max_level_info";
        assert_eq!(args, expected_args(&s, musl, features));
    }
}

/// A workspace without axbuild's target spec cannot be built the way axbuild builds it: the
/// case's build does not plan, naming the file and the build file.
#[test]
fn a_workspace_without_the_target_spec_is_refused() {
    let s = Scratch::new();
    let ws = s.path().join("ws");
    copy_tree(&data(), &ws, &|p| !p.starts_with(data().join("scripts")));
    let build = ws.join("test-suit/axvisor/normal/qemu/build-aarch64-unknown-none-softfloat.toml");
    let out = s.run(&[
        "run",
        "--test-suit",
        ws.join("test-suit").to_str().unwrap(),
        "--dry-run",
        "--arch",
        "aarch64",
        "--test-group",
        "axvisor/normal",
    ]);
    let (stdout, stderr) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("# build: cannot plan: "))
        .unwrap_or_else(|| panic!("{stdout}{stderr}"));
    assert!(
        line.contains(
            "the workspace has no scripts/targets/std/pie/aarch64-unknown-linux-musl.json"
        ) && line.contains(&format!("{}:1:1", build.display())),
        "{line}"
    );
}

/// Copies `from` to `to`, the files `keep` accepts.
pub fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) {
    for e in walk(from) {
        if !keep(&e) {
            continue;
        }
        let dest = to.join(e.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&e, &dest).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The `cargo` stand-in of the real-build test (the pinned nightly, `build-std` and the
/// bare-metal targets cannot be installed here): records its argv, environment and directory
/// under `rec`, links through the `--config` file's linker wrapper with a recording `rust-lld`,
/// then "builds" the kernel by copying the fixture where cargo would put it and reports it in
/// cargo's JSON messages.
/// cargo's output dir is `triple` (the std build's musl one, the freestanding build's the kernel
/// target's own); it links only when `--config` names a file (the std build's). `cargo metadata`
/// is the real cargo's.
fn cargo_shim_for(rec: &Path, fixture: &Path, bin: &str, triple: &str) -> String {
    format!(
        r#"[ "$1" = metadata ] && exec {cargo} "$@"
rec={rec}
mkdir -p "$rec"
printf '%s\n' "$@" > "$rec/argv"
env > "$rec/env"
pwd > "$rec/cwd"
[ -z "${{AXVISOR_VM_CONFIGS+x}}" ] && echo unset > "$rec/vm-configs-unset"
config= ; td=
while [ $# -gt 0 ]; do
  case "$1" in --config) config=$2; shift;; --target-dir) td=$2; shift;; esac
  shift
done
if [ -f "$config" ]; then
  linker=$(sed -n 's/^linker = "\(.*\)"$/\1/p' "$config")
  objs="$rec/objs"; mkdir -p "$objs"; : > "$objs/linker.x"
  "$linker" -flavor gnu "$rec/crt1.o" main.o "-L$objs" -lc -lgcc_s -static-pie -Tlinker.x -o "$objs/k" || exit 9
fi
out="$td/{triple}/release"
mkdir -p "$out"
cp {fixture} "$out/{bin}"
printf '{{"reason":"compiler-artifact","package_id":"{bin} 0.5.22","target":{{"kind":["bin"],"name":"{bin}"}},"executable":"%s"}}\n' "$out/{bin}"
echo '{{"reason":"build-finished","success":true}}'
"#,
        rec = rec.display(),
        fixture = fixture.display(),
        cargo = env!("CARGO"),
    )
}

/// A workspace of the vendored tgoskits files axbuild's aarch64 build reads, the build file
/// unmodified, and a QEMU config that boots the fixture kernel the stand-in produces.
fn aarch64_workspace(s: &Scratch) -> PathBuf {
    vendored_workspace(
        s,
        &[
            "os/axvisor/Cargo.toml",
            "os/arceos/ulib/axstd/Cargo.toml",
            "os/axvisor/configs/vms/qemu/aarch64/linux-smp1.toml",
            "scripts/targets/std/pie/aarch64-unknown-linux-musl.json",
            "test-suit/axvisor/normal/qemu/build-aarch64-unknown-none-softfloat.toml",
        ],
        "test-suit/axvisor/normal/qemu/smoke/qemu-aarch64.toml",
    )
}

/// `<scratch>/ws`: the vendored workspace's `Cargo.toml`, `rust-toolchain.toml` and `files`
/// copied unmodified, and the fixture-booting QEMU config written at `qemu_config`.
fn vendored_workspace(s: &Scratch, files: &[&str], qemu_config: &str) -> PathBuf {
    let ws = s.path().join("ws");
    let keep = |p: &Path| {
        ["Cargo.toml", "rust-toolchain.toml"]
            .iter()
            .chain(files)
            .any(|k| p == data().join(k))
    };
    copy_tree(&data(), &ws, &keep);
    let config = ws.join(qemu_config);
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(config, common::BAREMETAL_CONFIG).unwrap();
    ws
}

/// `qemu-test run --test-suit <ws>/test-suit --arch aarch64` with the stand-in `cargo` and a
/// recording `rust-lld` first on PATH, and `extra_env`.
fn run_with_shim(
    s: &Scratch,
    ws: &Path,
    rec: &Path,
    extra_env: &[(&str, &str)],
) -> std::process::Output {
    run_with_shim_of(
        s,
        ws,
        rec,
        "axvisor",
        "aarch64-unknown-linux-musl",
        extra_env,
    )
}

/// [`run_with_shim`] for a package whose bin target is `bin`, built into cargo's `triple` dir.
fn run_with_shim_of(
    s: &Scratch,
    ws: &Path,
    rec: &Path,
    bin: &str,
    triple: &str,
    extra_env: &[(&str, &str)],
) -> std::process::Output {
    // The kernel the stand-in "builds": `<scratch>/kernel.elf` when a test made one.
    let own = s.path().join("kernel.elf");
    let fixture = match own.is_file() {
        true => own,
        false => common::fixtures::fixture("aarch64-baremetal/hello.elf"),
    };
    let bin = common::fake_qemu::script(s, "cargo", &cargo_shim_for(rec, &fixture, bin, triple));
    common::fake_qemu::script(
        s,
        "rust-lld",
        &format!("printf '%s\\n' \"$@\" > {}/lld-argv", rec.display()),
    );
    let mut cmd = s.cmd(&[
        "run",
        "--test-suit",
        ws.join("test-suit").to_str().unwrap(),
        "--arch",
        "aarch64",
        "--timeout",
        "60s",
    ]);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    cmd.envs(extra_env.iter().copied());
    let out = cmd.output().unwrap();
    common::assert_no_qemu_left(s.path());
    out
}

/// Runs the suite of `ws` through the stand-in (bin `bin`, cargo's `triple` dir) and checks the
/// case built, booted and passed; the recording dir and the run's output.
fn builds_and_passes(s: &Scratch, ws: &Path, bin: &str, triple: &str) -> (PathBuf, String) {
    let rec = s.path().join("rec");
    let out = run_with_shim_of(s, ws, &rec, bin, triple, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(s.verdict()["outcome"], "pass", "{}", s.results());
    (rec, format!("{stdout}{stderr}"))
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(String::from)
        .collect()
}

/// The real build path: the run writes axbuild's generated files under the out dir, runs
/// `cargo` in the workspace root with exactly the planned arguments and environment, cargo's
/// linker is the generated wrapper (which runs `rust-lld -flavor gnu` with the rewritten
/// arguments), the ELF cargo reports is booted and passes; the workspace is not written to.
#[test]
fn the_build_runs_axbuilds_command_and_boots_what_it_built() {
    let s = Scratch::new();
    let ws = aarch64_workspace(&s);
    let before = walk(&ws);
    let rec = s.path().join("rec");
    // A musl cross compiler beside the stand-ins: cargo gets the bindgen variable from it.
    let (_, bindgen) = fake_musl_cc(&s);
    let out = run_with_shim(&s, &ws, &rec, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(s.verdict()["outcome"], "pass", "{}", s.results());
    let case = "axvisor.normal.smoke@aarch64";
    let log = std::fs::read_to_string(s.out().join(format!("{case}.log"))).unwrap();
    assert!(log.contains("Hello, world!"), "{log}");

    // cargo ran in the workspace root with the dry run's arguments (the hash now known).
    assert_eq!(lines(&rec.join("cwd")), [ws.display().to_string()]);
    let argv = lines(&rec.join("argv"));
    let td = argv[argv.iter().position(|a| a == "--target-dir").unwrap() + 1].clone();
    assert!(
        td.starts_with(&format!("{}/cargo-target/vmcfg-", s.out().display())),
        "{td}"
    );
    let mut expected = vec!["build".to_string()];
    expected.extend(expected_args(
        &s,
        "aarch64-unknown-linux-musl",
        "ax-std/fs,ax-std/virtio-blk,fs,log/release_max_level_info",
    ));
    let i = expected.iter().position(|a| a.contains("<hash")).unwrap();
    expected[i] = td;
    assert_eq!(argv, expected);
    let env = lines(&rec.join("env"));
    let patched = patched(&s, "axvisor.normal.smoke_aarch64", "linux-smp1.toml");
    for var in [
        format!("WORKSPACE_FOLDER={}", ws.display()),
        format!("AXVISOR_VM_CONFIGS={patched}"),
        "AX_ARCH=aarch64".into(),
        "AX_TARGET=aarch64-unknown-none-softfloat".into(),
        "AX_LOG=info".into(),
        "CARGO_UNSTABLE_JSON_TARGET_SPEC=true".into(),
        "CC_aarch64_unknown_linux_musl=aarch64-linux-musl-cc".into(),
        format!("BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_musl={bindgen}"),
    ] {
        assert!(env.contains(&var), "{var} not in {env:?}");
    }
    assert!(Path::new(&patched).is_file());

    // The generated files: the --config file names the wrapper, which linked through rust-lld.
    let support = s.out().join("cargo-target/axbuild");
    let config =
        std::fs::read_to_string(support.join("config-aarch64-unknown-linux-musl-dynamic.toml"))
            .unwrap();
    assert!(
        config.contains(r#"build-std = ["std", "panic_abort"]"#),
        "{config}"
    );
    let wrapper = support.join("linker-aarch64-unknown-linux-musl-dynamic.sh");
    assert!(
        config.contains(&format!("linker = \"{}\"", wrapper.display())),
        "{config}"
    );
    let fake = support.join("std-libs/aarch64-unknown-linux-musl/release");
    assert_eq!(std::fs::read(fake.join("libc.a")).unwrap(), b"!<arch>\n");
    let objs = rec.join("objs");
    assert_eq!(
        lines(&rec.join("lld-argv")),
        [
            "-flavor".to_string(),
            "gnu".into(),
            "-m".into(),
            "aarch64elf".into(),
            "main.o".into(),
            format!("-L{}", objs.display()),
            "--start-group".into(),
            fake.join("libc.a").display().to_string(),
            "--end-group".into(),
            "-pie".into(),
            "-o".into(),
            objs.join("k").display().to_string(),
            format!("-L{}", fake.display()),
            format!("-T{}", objs.join("linker.x").display()),
        ]
    );
    // Nothing was written in the user's tree.
    assert_eq!(walk(&ws), before);
}

/// With `vm_configs = []` the variable is not passed, not even from the caller's environment
/// (AxVisor's build.rs fails on an empty value; axbuild leaves it out).
#[test]
fn a_build_without_vm_configs_gets_no_axvisor_vm_configs() {
    let s = Scratch::new();
    let ws = aarch64_workspace(&s);
    let build = ws.join("test-suit/axvisor/normal/qemu/build-aarch64-unknown-none-softfloat.toml");
    let written = std::fs::read_to_string(&build).unwrap().replace(
        r#"vm_configs = ["os/axvisor/configs/vms/qemu/aarch64/linux-smp1.toml"]"#,
        "vm_configs = []",
    );
    std::fs::write(&build, written).unwrap();
    let rec = s.path().join("rec");
    let out = run_with_shim(&s, &ws, &rec, &[("AXVISOR_VM_CONFIGS", "/from/the/shell")]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        rec.join("vm-configs-unset").is_file(),
        "{:?}",
        lines(&rec.join("env"))
    );
}

// ArceOS' test-suit packages: `cargo xtask arceos test qemu` builds each case's own package
// through the same std build (`arceos/test/rust_qemu.rs` `prepare_rust_qemu_cases` →
// `arceos/build/cargo_config.rs` → `BuildInfo::into_prepared_std_cargo_config_with_metadata`),
// without AxVisor's `--bin`, `AX_ARCH` and `AXVISOR_VM_CONFIGS` (`patch_axvisor_cargo_config`).
// The axtest group (`arceos/test/axtest_qemu.rs`) then appends `--cfg axtest --check-cfg
// cfg(axtest)` through `append_encoded_rustflags`, which for a std build (no inline `--config
// target.….rustflags=`) is `CARGO_ENCODED_RUSTFLAGS`; its build files set `AXTEST_COVERAGE = "y"`,
// so `support/axtest_coverage.rs` `prepare_cargo` adds the `axtest/coverage` feature (after the
// sorted ones) and its own rustflags to that variable.

/// `CARGO_ENCODED_RUSTFLAGS` of the axtest group with coverage on, as the dry run quotes it.
const AXTEST_ENCODED: &str = r"$'--cfg\x1faxtest\x1f--check-cfg\x1fcfg(axtest)\x1f--cfg\x1faxtest_coverage\x1f--check-cfg\x1fcfg(axtest_coverage)\x1f-Cinstrument-coverage\x1f-Zno-profiler-runtime'";

/// The environment of the axtest smoke case's build on `target` (`musl`, its C flags).
fn axtest_env(musl: &str, cflags: &str, target: &str) -> String {
    expected_env(
        &data(),
        musl,
        cflags,
        &[
            ("AXTEST_COVERAGE", "y".into()),
            ("AX_TARGET", target.into()),
            ("CARGO_ENCODED_RUSTFLAGS", AXTEST_ENCODED.into()),
            ("SMP", "1".into()),
        ],
    )
}

#[test]
fn arceos_axtest_builds_its_package_with_axbuilds_test_flags_on_every_arch() {
    let x86 = "-mno-mmx -mno-sse -mno-sse2 -mno-sse3 -mno-ssse3 -mno-sse4.1 -mno-sse4.2 \
               -mno-avx -mno-avx2 -msoft-float";
    for (arch, musl, cflags) in [
        (
            "aarch64",
            "aarch64-unknown-linux-musl",
            "-mgeneral-regs-only",
        ),
        (
            "riscv64",
            "riscv64gc-unknown-linux-musl",
            "-march=rv64gc -mabi=lp64d -mcmodel=medany",
        ),
        ("x86_64", "x86_64-unknown-linux-musl", x86),
        (
            "loongarch64",
            "loongarch64-unknown-linux-musl",
            "-mabi=lp64s -msoft-float",
        ),
    ] {
        let s = Scratch::new();
        let stdout = s.dry_run_suite(&data().join("test-suit"), arch, "arceos/axtest");
        let (env, args) = build_line(&stdout, &format!("arceos.axtest.smoke@{arch}"));
        let target = qemu_test_action::plan::testsuit::ARCHS
            .iter()
            .find(|(a, _)| a.name() == arch)
            .unwrap()
            .1;
        assert_eq!(env, axtest_env(musl, cflags, target), "{arch}");
        // No `log` dependency: no log feature; `features = []`: only coverage's.
        assert_eq!(
            args,
            expected_args_of(&s, musl, "arceos-axtest-suit", "axtest/coverage", None),
            "{arch}"
        );
        // The --config file keeps the target's own (here: no) rustflags.
        let support = s.out().join("cargo-target/axbuild");
        let line = format!(
            "# build writes: {} (",
            support
                .join(format!("config-{musl}-dynamic.toml"))
                .display()
        );
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }
}

/// A workspace of the vendored tgoskits files axbuild's build of the axtest smoke package reads
/// on aarch64, that build file unmodified, and a QEMU config that boots the fixture kernel.
fn axtest_workspace(s: &Scratch) -> PathBuf {
    vendored_workspace(
        s,
        &[
            "os/arceos/ulib/axstd/Cargo.toml",
            "scripts/targets/std/pie/aarch64-unknown-linux-musl.json",
            "test-suit/arceos/axtest/smoke/Cargo.toml",
            "test-suit/arceos/axtest/smoke/build-aarch64-unknown-none-softfloat.toml",
        ],
        "test-suit/arceos/axtest/smoke/qemu-aarch64.toml",
    )
}

/// The real build path of an ArceOS axtest case: cargo runs in the workspace root with the dry
/// run's arguments and the test rustflags in its environment (the 0x1f separators as bytes),
/// the kernel it reports boots and passes, the workspace is not written to.
#[test]
fn arceos_axtest_build_runs_axbuilds_command_and_boots_what_it_built() {
    let s = Scratch::new();
    let ws = axtest_workspace(&s);
    let before = walk(&ws);
    let (rec, _) = builds_and_passes(&s, &ws, "arceos-axtest-suit", "aarch64-unknown-linux-musl");

    assert_eq!(lines(&rec.join("cwd")), [ws.display().to_string()]);
    let argv = lines(&rec.join("argv"));
    let td = argv[argv.iter().position(|a| a == "--target-dir").unwrap() + 1].clone();
    let mut expected = vec!["build".to_string()];
    expected.extend(expected_args_of(
        &s,
        "aarch64-unknown-linux-musl",
        "arceos-axtest-suit",
        "axtest/coverage",
        None,
    ));
    let i = expected.iter().position(|a| a.contains("<hash")).unwrap();
    expected[i] = td;
    assert_eq!(argv, expected);
    let env = lines(&rec.join("env"));
    for var in [
        format!("WORKSPACE_FOLDER={}", ws.display()),
        "AXTEST_COVERAGE=y".into(),
        "AX_TARGET=aarch64-unknown-none-softfloat".into(),
        "SMP=1".into(),
        "CARGO_ENCODED_RUSTFLAGS=--cfg\x1faxtest\x1f--check-cfg\x1fcfg(axtest)\x1f--cfg\x1f\
         axtest_coverage\x1f--check-cfg\x1fcfg(axtest_coverage)\x1f-Cinstrument-coverage\x1f\
         -Zno-profiler-runtime"
            .into(),
    ] {
        assert!(env.contains(&var), "{var:?} not in {env:?}");
    }
    assert!(
        !env.iter()
            .any(|v| v.starts_with("AX_ARCH=") || v.starts_with("AXVISOR_VM_CONFIGS=")),
        "{env:?}"
    );
    assert_eq!(walk(&ws), before);
}

// StarryOS' test-suit packages: `cargo xtask starry test qemu` builds the package `starryos` for
// the case's build file as a freestanding PIE (`starry/test/qemu_run.rs` →
// `starry/build.rs` `load_cargo_config` → `build/info.rs`
// `into_prepared_no_std_cargo_config_with_metadata(…, BareKernelLinkMode::Pie)` →
// `patch_starry_cargo_config`): no std target spec, `--config` file, C variables or ax-std
// pass-through; the `smp` feature always; `-Z build-std=core,alloc` and the rustflags as one
// inline `--config target.<target>.rustflags=[…]` after the features (ostool puts the build's
// own arguments there), `--bin starryos` (the package has that bin and an `xtask` one);
// `AX_ARCH`, `AX_LOG`, `AX_TARGET`, `SMP`; no log feature (starryos does not depend on `log`).

/// The PIE link flags of `BareKernelLinkMode::Pie` (`--no-relax` only on riscv64).
fn pie_flags(arch: &str) -> Vec<&'static str> {
    let mut f = vec!["-Crelocation-model=pic", "-Clink-args=-pie"];
    if arch == "riscv64" {
        f.push("-Clink-args=--no-relax");
    }
    f.extend([
        "-Clink-args=--gc-sections",
        "-Clink-args=-znorelro",
        "-Clink-args=-znostart-stop-gc",
        "-Clink-args=-Tlinker.x",
        "-Clink-args=-u _head",
    ]);
    f
}

/// The inline `--config` argument as axbuild renders it (a TOML array).
fn rustflags_arg(target: &str, flags: &[&str]) -> String {
    let quoted: Vec<String> = flags.iter().map(|f| format!("\"{f}\"")).collect();
    format!("target.{target}.rustflags=[{}]", quoted.join(", "))
}

/// The argv after `cargo` of StarryOS' build, the target dir as the dry run shows it.
fn starry_args(s: &Scratch, target: &str, features: &str, flags: &[&str]) -> Vec<String> {
    let target_dir = format!(
        "{}/vmcfg-<hash of the patched configs>",
        s.out().join("cargo-target").display()
    );
    [
        "build",
        "-p",
        "starryos",
        "--target",
        target,
        "-Z",
        "unstable-options",
        "--target-dir",
        &target_dir,
        "--features",
        features,
        "-Z",
        "build-std=core,alloc",
        "--config",
        &rustflags_arg(target, flags),
        "--bin",
        "starryos",
        "--release",
        "--message-format",
        "json-render-diagnostics",
    ]
    .map(String::from)
    .to_vec()
}

/// The `# build:` line axbuild's StarryOS build makes, as the dry run quotes it.
fn starry_line(ws: &Path, arch: &str, target: &str, args: &[String]) -> String {
    let q = |v: &str| qemu_test_action::shell::quote(v);
    let mut words = vec![
        format!("cd {}", q(&ws.to_string_lossy())),
        "&&".into(),
        format!("WORKSPACE_FOLDER={}", q(&ws.to_string_lossy())),
        format!("AX_ARCH={arch}"),
        "AX_LOG=warn".into(),
        format!("AX_TARGET={target}"),
        "SMP=4".into(),
        "cargo".into(),
    ];
    words.extend(args.iter().map(|a| q(a)));
    words.join(" ")
}

#[test]
fn starryos_builds_its_package_freestanding_as_axbuild_does_on_every_arch() {
    let common = "ax-driver/nvme,ax-driver/virtio-gpu,ax-driver/virtio-input,ax-driver/virtio-net,\
                  ax-driver/virtio-socket";
    for (arch, target, features) in [
        (
            "aarch64",
            "aarch64-unknown-none-softfloat",
            format!(
                "{common},ax-driver/xhci-pci,ax-runtime/display,ax-runtime/rtc,smp,\
                 starry-kernel/input,starry-kernel/vsock"
            )
            .replace("ax-driver/nvme,", "ax-driver/nvme,ax-driver/serial,"),
        ),
        (
            "riscv64",
            "riscv64gc-unknown-none-elf",
            format!("{common},ax-driver/xhci-pci,ax-runtime/rtc,smp,starry-kernel/input")
                .replace("ax-driver/nvme,", "ax-driver/nvme,ax-driver/serial,"),
        ),
        (
            "x86_64",
            "x86_64-unknown-none",
            format!("{common},ax-driver/xhci-pci,smp,starry-kernel/input"),
        ),
        (
            "loongarch64",
            "loongarch64-unknown-none-softfloat",
            format!("{common},smp,starry-kernel/input")
                .replace("ax-driver/nvme,", "ax-driver/nvme,ax-driver/virtio-blk,"),
        ),
    ] {
        let s = Scratch::new();
        let stdout = s.dry_run_suite(&data().join("test-suit"), arch, "starryos/qemu");
        let mut flags = pie_flags(arch);
        if arch == "loongarch64" {
            flags.push("-Ctarget-feature=-ual");
        }
        let args = starry_args(&s, target, &features, &flags);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("# build: "))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert_eq!(line, starry_line(&data(), arch, target, &args), "{arch}");
        // No std build's generated files; what is not reproduced is said.
        assert!(!stdout.contains("# build writes:"), "{stdout}");
        for note in [
            "# build then writes: the kernel's symbol table into its .kallsyms section, as \
             axbuild does (rust-nm -n <elf> | gen_ksym, padded to the section, rust-objcopy \
             --update-section .kallsyms=<table> <elf>)",
            "# build note: axbuild builds a case's own programs",
        ] {
            assert!(stdout.contains(note), "{note}\n{stdout}");
        }
    }
}

/// A StarryOS build file's `env`: `AXTEST` adds `--cfg axtest` to the inline rustflags (there is
/// no `CARGO_ENCODED_RUSTFLAGS`), `AXTEST_COVERAGE` coverage's flags and feature, and
/// `AXBUILD_STARRY_BIN` names the bin instead of `starryos`; `std-compat` is refused.
#[test]
fn starryos_build_env_turns_on_axtest_coverage_and_another_bin() {
    let s = Scratch::new();
    let ws = s.path().join("ws");
    let wrapper = "test-suit/starryos/qemu";
    copy_tree(&data(), &ws, &|p| {
        p == data().join("Cargo.toml")
            || p.starts_with(data().join("os/StarryOS"))
            || p.starts_with(data().join(wrapper))
    });
    let build = ws.join(wrapper).join("build-x86_64-unknown-none.toml");
    let original = std::fs::read_to_string(&build).unwrap();
    std::fs::write(
        &build,
        format!("{original}\n[env]\nAXTEST = \"y\"\nAXTEST_COVERAGE = \"1\"\nAXBUILD_STARRY_BIN = \"xtask\"\n"),
    )
    .unwrap();
    let stdout = s.dry_run_suite(&ws.join("test-suit"), "x86_64", "starryos/qemu");
    let mut flags = pie_flags("x86_64");
    flags.extend(["--cfg", "axtest", "--check-cfg", "cfg(axtest)"]);
    flags.extend([
        "--cfg",
        "axtest_coverage",
        "--check-cfg",
        "cfg(axtest_coverage)",
        "-Cinstrument-coverage",
        "-Zno-profiler-runtime",
    ]);
    let features = "ax-driver/nvme,ax-driver/virtio-gpu,ax-driver/virtio-input,\
                    ax-driver/virtio-net,ax-driver/virtio-socket,ax-driver/xhci-pci,smp,\
                    starry-kernel/input,axtest/coverage";
    let mut args = starry_args(&s, "x86_64-unknown-none", features, &flags);
    let at = args.iter().rposition(|a| a == "starryos").unwrap();
    assert_eq!(args[at - 1], "--bin");
    args[at] = "xtask".into();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# build: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let expected = starry_line(&ws, "x86_64", "x86_64-unknown-none", &args).replace(
        "AX_ARCH=x86_64 ",
        "AXBUILD_STARRY_BIN=xtask AXTEST=y AXTEST_COVERAGE=1 AX_ARCH=x86_64 ",
    );
    assert_eq!(line, expected);

    std::fs::write(
        &build,
        "target = \"x86_64-unknown-none\"\nlog = \"Warn\"\nfeatures = [\"ax-std/std-compat\"]\n",
    )
    .unwrap();
    let out = s.run(&[
        "run",
        "--test-suit",
        ws.join("test-suit").to_str().unwrap(),
        "--dry-run",
        "--arch",
        "x86_64",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains(
            "build-x86_64-unknown-none.toml:1:1: feature `ax-std/std-compat` in \
                         `features`: StarryOS is built freestanding (no std)"
        ),
        "{stdout}{stderr}"
    );
}

/// A workspace of the vendored tgoskits files axbuild's StarryOS build reads on aarch64, that
/// build file unmodified, and a QEMU config (for the `system` case) that boots the fixture.
fn starry_workspace(s: &Scratch) -> PathBuf {
    vendored_workspace(
        s,
        &[
            "os/StarryOS/starryos/Cargo.toml",
            "test-suit/starryos/qemu/build-aarch64-unknown-none-softfloat.toml",
        ],
        "test-suit/starryos/qemu/system/qemu-aarch64.toml",
    )
}

/// The real build path of a StarryOS case: cargo runs in the workspace root with the dry run's
/// arguments (the inline rustflags one argument, as cargo gets it) and environment, the kernel it
/// reports in the kernel target's own dir boots and passes, the workspace is not written to.
#[test]
fn starryos_build_runs_axbuilds_command_and_boots_what_it_built() {
    let s = Scratch::new();
    let ws = starry_workspace(&s);
    let before = walk(&ws);
    let target = "aarch64-unknown-none-softfloat";
    // The kernel has StarryOS' .kallsyms reserve (4 KiB here); rust-nm and rust-objcopy are
    // binutils' for aarch64, gen_ksym a stand-in that records its input and writes a table.
    let reserve = s.path().join("reserve");
    std::fs::write(&reserve, vec![0u8; 4096]).unwrap();
    let objcopy = std::process::Command::new("aarch64-linux-gnu-objcopy")
        .arg(format!("--add-section=.kallsyms={}", reserve.display()))
        .arg(common::fixtures::fixture("aarch64-baremetal/hello.elf"))
        .arg(s.path().join("kernel.elf"))
        .status()
        .expect("aarch64-linux-gnu-objcopy (binutils-aarch64-linux-gnu)");
    assert!(objcopy.success());
    common::fake_qemu::script(&s, "rust-nm", "exec aarch64-linux-gnu-nm \"$@\"");
    common::fake_qemu::script(&s, "rust-objcopy", "exec aarch64-linux-gnu-objcopy \"$@\"");
    let ksym_in = s.path().join("ksym-in");
    common::fake_qemu::script(
        &s,
        "gen_ksym",
        &format!("cat > {}; printf KSYMTABLE", ksym_in.display()),
    );
    let (rec, output) = builds_and_passes(&s, &ws, "starryos", target);
    // The symbols axbuild keeps went in; the booted kernel carries the table, padded.
    let symbols = std::fs::read_to_string(&ksym_in).unwrap();
    assert!(symbols.contains("0000000040080000 T _start\n"), "{symbols}");
    assert!(!symbols.contains("__image_size"), "{symbols}");
    let kernel = s
        .out()
        .join("cases/starryos.qemu.system_aarch64/kernel.elf");
    let data = std::fs::read(&kernel).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    use object::{Object, ObjectSection};
    let table = elf
        .section_by_name(".kallsyms")
        .unwrap()
        .data()
        .unwrap()
        .to_vec();
    let mut expected = b"KSYMTABLE".to_vec();
    expected.resize(4096, 0);
    assert_eq!(table, expected);

    assert_eq!(lines(&rec.join("cwd")), [ws.display().to_string()]);
    let argv = lines(&rec.join("argv"));
    let td = argv[argv.iter().position(|a| a == "--target-dir").unwrap() + 1].clone();
    let features = "ax-driver/nvme,ax-driver/serial,ax-driver/virtio-gpu,ax-driver/virtio-input,\
                    ax-driver/virtio-net,ax-driver/virtio-socket,ax-driver/xhci-pci,\
                    ax-runtime/display,ax-runtime/rtc,smp,starry-kernel/input,starry-kernel/vsock";
    let mut expected = starry_args(&s, target, features, &pie_flags("aarch64"));
    let i = expected.iter().position(|a| a.contains("<hash")).unwrap();
    expected[i] = td;
    assert_eq!(argv, expected);
    let env = lines(&rec.join("env"));
    for var in [
        format!("WORKSPACE_FOLDER={}", ws.display()),
        "AX_ARCH=aarch64".into(),
        format!("AX_TARGET={target}"),
        "AX_LOG=warn".into(),
        "SMP=4".into(),
    ] {
        assert!(env.contains(&var), "{var:?} not in {env:?}");
    }
    assert!(
        !env.iter()
            .any(|v| v.starts_with("CARGO_UNSTABLE_JSON_TARGET_SPEC=")
                || v.starts_with("CC_aarch64")),
        "{env:?}"
    );
    // The run says what it does not reproduce, before the build.
    assert!(
        output.contains("build then writes: the kernel's symbol table"),
        "{output}"
    );
    assert_eq!(walk(&ws), before);

    // Without gen_ksym the case is an error saying how to install it (axbuild installs it).
    std::fs::remove_file(s.path().join("bin/gen_ksym")).unwrap();
    let out = run_with_shim_of(&s, &ws, &rec, "starryos", target, &[]);
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}{}", s.results()).contains("gen_ksym is not on PATH"),
        "{stdout}{stderr}"
    );
}

// AxVisor's refusal of features that name a platform (`axvisor/build/mod.rs` `to_cargo_config`
// → `features.rs` `reject_unsupported_nested_platform_features` with `metadata.rs`
// `platform_feature_names` over `cargo metadata --no-deps` of the workspace): a feature
// `ax-std/<p>` or `<p>` for a `[package.metadata.axplat] platform = "<p>"` of a workspace package.
// In tgoskits at 759e69c the one such package is `platforms/axplat-dyn` (`platform = "dyn"`).

/// A small real cargo workspace of axbuild's shape (`cargo metadata` answers for it): AxVisor,
/// ax-std, tgoskits' `axplat-dyn` platform package (its `[package.metadata.axplat]` as
/// tgoskits writes it), the aarch64 std target spec, and one AxVisor case whose build file has
/// `features`.
fn platform_workspace(s: &Scratch, features: &str) -> PathBuf {
    let ws = s.path().join("pws");
    let write = |rel: &str, text: &str| {
        let p = ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"os/axvisor\", \"os/arceos/ulib/axstd\", \
         \"platforms/axplat-dyn\"]\n\n[workspace.dependencies]\n\
         ax-std = { path = \"os/arceos/ulib/axstd\" }\n",
    );
    let package = |name: &str, extra: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}")
    };
    write(
        "os/axvisor/Cargo.toml",
        &package("axvisor", "\n[features]\nfs = []\n"),
    );
    write("os/axvisor/src/main.rs", "fn main() {}\n");
    write(
        "os/arceos/ulib/axstd/Cargo.toml",
        &package("ax-std", "\n[features]\nfs = []\nsmp = []\n"),
    );
    write("os/arceos/ulib/axstd/src/lib.rs", "");
    write(
        "platforms/axplat-dyn/Cargo.toml",
        &package(
            "axplat-dyn",
            "\n[package.metadata.axplat]\nplatform = \"dyn\"\narch = \"aarch64\"\n\
             crate = \"axplat_dyn\"\ndynamic = true\n",
        ),
    );
    write("platforms/axplat-dyn/src/lib.rs", "");
    let spec = "scripts/targets/std/pie/aarch64-unknown-linux-musl.json";
    write(spec, &std::fs::read_to_string(data().join(spec)).unwrap());
    write(
        "test-suit/axvisor/normal/qemu/build-aarch64-unknown-none-softfloat.toml",
        &format!("features = [{features}]\nlog = \"Info\"\nvm_configs = []\n"),
    );
    write(
        "test-suit/axvisor/normal/qemu/smoke/qemu-aarch64.toml",
        common::BAREMETAL_CONFIG,
    );
    ws
}

/// The `# build:` line (or `# build: cannot plan: …`) of a dry run of `ws` on aarch64 with
/// `env` set, and the whole output.
fn dry_build(s: &Scratch, ws: &Path, env: &[(&str, &str)]) -> (String, String) {
    let out = dry_run_with(s, &ws.join("test-suit"), None, env);
    let (stdout, stderr) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("# build: "))
        .unwrap_or_else(|| panic!("{stdout}{stderr}"))
        .to_string();
    (line, stdout)
}

#[test]
fn features_that_name_a_platform_are_refused_as_axbuild_does() {
    let s = Scratch::new();
    let build = "test-suit/axvisor/normal/qemu/build-aarch64-unknown-none-softfloat.toml";
    for feature in ["ax-std/dyn", "dyn"] {
        let ws = platform_workspace(&s, &format!("\"{feature}\""));
        let (line, _) = dry_build(&s, &ws, &[]);
        let refusal = format!(
            "{}:1:1: feature `{feature}` in `features`: it names the platform `dyn` (package \
             `axplat-dyn`)",
            ws.join(build).display()
        );
        assert!(
            line.starts_with(&format!("# build: cannot plan: {refusal}")),
            "{line}"
        );
        // `check --test-suit` ends there too (exit 2), at the file.
        let out = s.run(&[
            "check",
            "--test-suit",
            ws.join("test-suit").to_str().unwrap(),
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(stderr.contains(&format!("error: {refusal}")), "{stderr}");
    }
    // A platform-free feature list plans, the check made (no note), and FEATURES is checked too.
    let ws = platform_workspace(&s, "\"fs\"");
    let (line, stdout) = dry_build(&s, &ws, &[]);
    assert!(line.contains(" cargo build "), "{stdout}");
    assert!(line.contains("--features ax-std/fs,fs "), "{line}");
    assert!(
        !stdout.contains("check of features that name a platform"),
        "{stdout}"
    );
    let out = s.run(&[
        "check",
        "--test-suit",
        ws.join("test-suit").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("check of features that name"),
        "{stdout}{stderr}"
    );
    let (line, _) = dry_build(&s, &ws, &[("FEATURES", "ax-std/dyn")]);
    assert!(
        line.contains("feature `dyn` in the FEATURES environment variable: it names the platform"),
        "{line}"
    );
    // A workspace cargo cannot read (the vendored excerpt lists members it does not hold): the
    // check is not made, and the dry run says why.
    let stdout = dry_run(&s, "aarch64");
    assert!(
        stdout.contains(&format!(
            "# build note: AxVisor's check of features that name a platform was not made: \
             `cargo metadata` over {}/Cargo.toml failed: error: failed to load manifest for \
             workspace member",
            data().display()
        )),
        "{stdout}"
    );
}

/// The real build path in that workspace: `cargo metadata` (the real cargo's) answers, the check
/// passes, and the stand-in builds and boots as for the vendored files.
#[test]
fn a_platform_checked_build_runs_and_boots() {
    let s = Scratch::new();
    let ws = platform_workspace(&s, "\"fs\"");
    let (rec, output) = builds_and_passes(&s, &ws, "axvisor", "aarch64-unknown-linux-musl");
    assert!(
        !output.contains("check of features that name a platform"),
        "{output}"
    );
    let argv = lines(&rec.join("argv"));
    assert!(argv.contains(&"ax-std/fs,fs".to_string()), "{argv:?}");
}

// ArceOS' build files may name the package they build: `package = "…"` (tgoskits'
// `test-suit/arceos/board-orangepi-5-plus/` and `axtest/sg2002-usb-msc/` build files).
// axbuild reads it as `ArceosBuildFile::package` (`arceos/build/types.rs`); with no `--package`
// the request's package is the build file's (`context/resolve.rs` `prepare_arceos_request`:
// `cli.package.or(config_selectors.package)`), which its board tests always take
// (`arceos/test/board.rs` `test_board_build_args`: `package: Some(group.package)`, "must set
// `package`"), found as the workspace member of that name in `cargo metadata`
// (`context/workspace.rs` `workspace_member_dir`); ostool's command then says `-p <package>`.
// Its QEMU flows pass the case directory's own `Cargo.toml` package as `--package` instead
// (`arceos/test/discovery.rs` `load_rust_qemu_case`).

/// The board group's build file, vendored unmodified from tgoskits.
const ARCEOS_BOARD_BUILD: &str =
    "test-suit/arceos/board-orangepi-5-plus/build-aarch64-unknown-none-softfloat.toml";

/// A small real cargo workspace holding tgoskits' `apps/arceos/helloworld` manifest (vendored),
/// a stand-in ax-std, the aarch64 std target spec and the vendored board build file naming
/// `package = "arceos-helloworld"`; no `Cargo.toml` beside the build file.
fn arceos_board_workspace(s: &Scratch) -> PathBuf {
    let ws = s.path().join("aws");
    let write = |rel: &str, text: &str| {
        let p = ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let vendored = |rel: &str| std::fs::read_to_string(data().join(rel)).unwrap();
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"apps/arceos/helloworld\", \
         \"os/arceos/ulib/axstd\"]\n\n[workspace.package]\nedition = \"2024\"\n\n\
         [workspace.dependencies]\nax-std = { path = \"os/arceos/ulib/axstd\" }\n",
    );
    for rel in [
        "apps/arceos/helloworld/Cargo.toml",
        "scripts/targets/std/pie/aarch64-unknown-linux-musl.json",
        ARCEOS_BOARD_BUILD,
    ] {
        write(rel, &vendored(rel));
    }
    write("apps/arceos/helloworld/src/main.rs", "fn main() {}\n");
    write(
        "os/arceos/ulib/axstd/Cargo.toml",
        "[package]\nname = \"ax-std\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [features]\ndefault = []\narceos = []\n",
    );
    write("os/arceos/ulib/axstd/src/lib.rs", "");
    write("qemu-aarch64.toml", common::BAREMETAL_CONFIG);
    ws
}

/// `run --build-config <ws>/<ARCEOS_BOARD_BUILD> --dry-run` in `ws`: its output.
fn arceos_board_dry_run(s: &Scratch, ws: &Path) -> std::process::Output {
    let build = ws.join(ARCEOS_BOARD_BUILD);
    let qemu = ws.join("qemu-aarch64.toml");
    s.run(&[
        "run",
        "--build-config",
        build.to_str().unwrap(),
        "--qemu-config",
        qemu.to_str().unwrap(),
        "--workspace",
        ws.to_str().unwrap(),
        "--dry-run",
    ])
}

#[test]
fn an_arceos_build_file_builds_the_package_it_names() {
    let s = Scratch::new();
    let ws = arceos_board_workspace(&s);
    let out = arceos_board_dry_run(&s, &ws);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stderr.contains("unknown key"), "{stderr}");
    let (env, args) = build_line(&stdout, "");
    let musl = "aarch64-unknown-linux-musl";
    assert_eq!(
        env,
        expected_env(
            &ws,
            musl,
            "-mgeneral-regs-only",
            &[
                ("AX_TARGET", "aarch64-unknown-none-softfloat".into()),
                ("SMP", "1".into()),
            ],
        )
    );
    // `features = []`, helloworld does not depend on `log`: no `--features` (ostool leaves the
    // flag out for none); the ArceOS flow has no `--bin`.
    let mut expected = expected_args_of(&s, musl, "arceos-helloworld", "", None);
    let at = expected.iter().position(|a| a == "--features").unwrap();
    expected.drain(at..at + 2);
    assert_eq!(args, expected);
    // The kernel is that package's bin.
    assert!(stdout.contains("arceos-helloworld"), "{stdout}");
}

#[test]
fn a_package_the_workspace_does_not_have_is_an_error_at_the_key() {
    let s = Scratch::new();
    let ws = arceos_board_workspace(&s);
    let build = ws.join(ARCEOS_BOARD_BUILD);
    let text_of = std::fs::read_to_string(&build).unwrap();
    std::fs::write(
        &build,
        text_of.replace("\"arceos-helloworld\"", "\"arceos-helloword\""),
    )
    .unwrap();
    let out = arceos_board_dry_run(&s, &ws);
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains(&format!(
            "{}:1:11: `package = \"arceos-helloword\"` names no package of the workspace: the \
             workspace {} has no member package `arceos-helloword` (cargo metadata lists \
             arceos-helloworld, ax-std)",
            build.display(),
            ws.display()
        )),
        "{all}"
    );
    assert!(
        all.contains("help: name a package of the workspace's members"),
        "{all}"
    );
    // A non-string `package` is refused at its value, as axbuild's serde would refuse it.
    std::fs::write(&build, text_of.replace("\"arceos-helloworld\"", "3")).unwrap();
    let out = arceos_board_dry_run(&s, &ws);
    let all = format!("{}{}", text(&out).0, text(&out).1);
    assert!(
        all.contains(&format!(
            "{}:1:11: `package` must be a string, found integer",
            build.display()
        )),
        "{all}"
    );
}
