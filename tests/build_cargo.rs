//! The real build path: the fixture cargo package built from an AxVisor-format board config with
//! embedded VM configs, its ELF found in cargo's JSON messages and booted under QEMU.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_test_action::build::board::BoardConfig;
use qemu_test_action::build::cargo::{CargoRequest, PackageInfo, cargo_recipe};
use qemu_test_action::build::run_build;
use qemu_test_action::error::{Error, ErrorKind};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cargo-kernel");
const VMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/axvisor/configs/vms"
);
const BUILD_DEADLINE: Duration = Duration::from_secs(300);
const BOOT_DEADLINE: Duration = Duration::from_secs(60);

fn board(extra_features: &[&str]) -> BoardConfig {
    let mut board = BoardConfig::load(&Path::new(FIXTURE).join("board.toml")).unwrap();
    board
        .features
        .extend(extra_features.iter().map(|f| f.to_string()));
    board
}

async fn build(
    board: &BoardConfig,
    configs: &[PathBuf],
    target_root: &Path,
) -> Result<PathBuf, Error> {
    let workspace = Path::new(FIXTURE);
    let package = PackageInfo::read(workspace).unwrap();
    let req = CargoRequest {
        board,
        package: &package,
        vm_configs: configs,
        workspace,
        target_root,
        release: true,
    };
    let plan = cargo_recipe(&req).unwrap();
    let mut output = Vec::new();
    let result = run_build(&plan, BUILD_DEADLINE, &mut |b| output.extend_from_slice(b)).await;
    eprintln!("{}", String::from_utf8_lossy(&output));
    result
}

/// Boots `kernel` under TCG and returns its console output (the kernel powers off by itself).
async fn boot(kernel: &Path) -> String {
    let child = tokio::process::Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-nographic",
            "-no-reboot",
            "-m",
            "64M",
            "-kernel",
        ])
        .arg(kernel)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("qemu-system-x86_64 must be installed");
    let out = tokio::time::timeout(BOOT_DEADLINE, child.wait_with_output())
        .await
        .expect("the fixture kernel powers off well within the deadline")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vm(name: &str) -> PathBuf {
    Path::new(VMS).join(name)
}

#[tokio::test(flavor = "current_thread")]
async fn built_kernel_boots_and_prints_its_embedded_configs() {
    let root = tempfile::tempdir().unwrap();
    let set_a = [
        vm("arceos-aarch64-qemu-smp1.toml"),
        vm("linux-aarch64-qemu-smp1.toml"),
    ];
    let set_b = [vm("nimbos-x86_64-qemu-smp1.toml")];
    let elf_a = build(&board(&[]), &set_a, root.path()).await.unwrap();
    let elf_b = build(&board(&[]), &set_b, root.path()).await.unwrap();
    assert!(elf_a.starts_with(root.path()), "{}", elf_a.display());
    assert_ne!(elf_a, elf_b, "two VM-config sets must not share one ELF");

    let console_a = boot(&elf_a).await;
    assert!(console_a.contains("Hello from cargo-kernel"), "{console_a}");
    assert!(console_a.contains("AX_LOG=info\n"), "{console_a}");
    assert!(
        console_a.contains("vm config: arceos-qemu\nvm config: linux-qemu\ntest pass!"),
        "{console_a}"
    );
    // Building set B did not overwrite set A's kernel.
    let console_b = boot(&elf_b).await;
    assert!(
        console_b.contains("vm config: nimbos\ntest pass!"),
        "{console_b}"
    );
    assert!(!console_b.contains("arceos"), "{console_b}");
}

#[tokio::test(flavor = "current_thread")]
async fn compile_error_names_the_first_compiler_error() {
    let root = tempfile::tempdir().unwrap();
    let e = build(&board(&["broken"]), &[], root.path())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Infra);
    assert!(
        e.message
            .starts_with("cargo build failed: error[E0308]: mismatched types at "),
        "{e}"
    );
    let source = std::fs::read_to_string(Path::new(FIXTURE).join("src/main.rs")).unwrap();
    let line = source
        .lines()
        .position(|l| l.contains("\"this is not a number\""))
        .unwrap()
        + 1;
    let at = e.location.expect("the error points into the source");
    assert_eq!(at.path, Path::new(FIXTURE).join("src/main.rs"));
    assert_eq!(at.line, line);
}
