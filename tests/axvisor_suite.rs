//! AxVisor's three CI cases from `examples/axvisor/suite.toml`, planned against AxVisor's real,
//! unmodified configs (tests/data/axvisor) plus a stand-in manifest: the exact cargo build of
//! its xtask, and the NimbOS case ending skipped (or failed by policy) on this runner — no VT-x
//! — before any image download or build.

pub mod common;

use common::{Scratch, text};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/axvisor/suite.toml");

/// A copy of AxVisor's files with the stand-in Cargo.toml, as the workspace (and cwd).
fn axvisor_checkout(s: &Scratch) -> std::path::PathBuf {
    let ws = s.path().join("axvisor");
    let status = std::process::Command::new("cp")
        .args(["-r", &format!("{DATA}/axvisor"), ws.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(
        format!("{DATA}/axvisor-manifest/Cargo.toml"),
        ws.join("Cargo.toml"),
    )
    .unwrap();
    ws
}

#[test]
fn arceos_case_plans_axvisors_exact_cargo_build() {
    let s = Scratch::new();
    let ws = axvisor_checkout(&s);
    let out = s
        .cmd(&[
            "run",
            "--suite",
            SUITE,
            "--case",
            "arceos-aarch64",
            "--dry-run",
        ])
        .current_dir(&ws)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let out_dir = ws.join("qemu-test-out");
    let patched = out_dir.join("cases/arceos-aarch64/vmconfigs/arceos-aarch64-qemu-smp1.toml");
    let build = stdout
        .lines()
        .find(|l| l.starts_with("# build: "))
        .expect("a build line");
    let expected = format!(
        "# build: cd {ws} && AX_LOG=info AXVISOR_VM_CONFIGS={patched} WORKSPACE_FOLDER={ws} \
         cargo build -p axvisor --target aarch64-unknown-none-softfloat \
         --target-dir '{out}/cargo-target/vmcfg-<hash of the patched configs>' \
         --features ept-level-4,axstd/bus-mmio,dyn-plat,log/release_max_level_info \
         --bin axvisor --release --message-format json",
        ws = ws.display(),
        patched = patched.display(),
        out = out_dir.display(),
    );
    assert_eq!(build, expected);
    assert!(
        stdout.contains("# image: qemu_aarch64_arceos from https://"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-kernel ") && stdout.contains("arceos-aarch64.bin"),
        "{stdout}"
    );
    // The checkout is read only: the dry run wrote nothing, not even the out dir.
    assert!(!out_dir.exists());
}

#[test]
fn nimbos_case_is_skipped_before_any_download_or_build() {
    let s = Scratch::new();
    let ws = axvisor_checkout(&s);
    let cache = s.path().join("cache");
    let out = s
        .cmd(&[
            "run",
            "--suite",
            SUITE,
            "--case",
            "nimbos-x86_64",
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .current_dir(&ws)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("qemu-test-out/results.json")).unwrap())
            .unwrap();
    let case = &results["cases"][0];
    assert_eq!(case["verdict"]["outcome"], "skipped");
    let reason = case["verdict"]["reason"].as_str().unwrap();
    assert!(reason.contains("vmx") && reason.contains("KVM"), "{reason}");
    assert_eq!(
        case["stages"].as_array().unwrap().len(),
        0,
        "a stage ran: {case}"
    );
    // The cache may hold the KVM probe's answer (host/kvm-probe.json), nothing of the image.
    let touched: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        touched.iter().all(|n| n == "host"),
        "the image cache was touched: {touched:?}"
    );
    assert!(
        !ws.join("qemu-test-out/cases").exists(),
        "the case was prepared"
    );
    assert!(stderr.contains("SKIP nimbos-x86_64"), "{stderr}");
}

#[test]
fn nimbos_case_fails_when_the_policy_input_says_so() {
    let s = Scratch::new();
    let ws = axvisor_checkout(&s);
    let out = s
        .cmd(&["run", "--suite", SUITE, "--case", "nimbos-x86_64"])
        .current_dir(&ws)
        .env("INPUT_ON_UNSUPPORTED", "fail")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out).1);
}
