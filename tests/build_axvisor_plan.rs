//! Dry-run planning of AxVisor's build from its real board configs: the cargo command and
//! environment must be those of `cargo xtask qemu` (axvisor.md §3.2), as `cargo build`.

use std::path::{Path, PathBuf};

use qemu_test_action::build::board::BoardConfig;
use qemu_test_action::build::cargo::{CargoRequest, PackageInfo, cargo_recipe};
use qemu_test_action::build::{Artifact, Recipe};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/axvisor");

/// AxVisor's root package as its Cargo.toml declares it: `axvisor`, depending on `log`.
fn axvisor_package() -> PackageInfo {
    let manifest = "[package]\nname = \"axvisor\"\n\n[dependencies]\nlog = \"0.4\"\n";
    PackageInfo::parse(Path::new("Cargo.toml"), manifest).unwrap()
}

fn plan(board: &str, vm_config: &str, target_root: &Path) -> (Recipe, PathBuf) {
    let workspace = PathBuf::from(DATA);
    let board = BoardConfig::load(&workspace.join(board)).unwrap();
    assert!(board.warnings.is_empty(), "{:?}", board.warnings);
    let configs = board
        .resolve_vm_configs(&workspace, &[PathBuf::from(vm_config)])
        .unwrap();
    let package = axvisor_package();
    let req = CargoRequest {
        board: &board,
        package: &package,
        vm_configs: &configs,
        workspace: &workspace,
        target_root,
        release: true,
    };
    (cargo_recipe(&req).unwrap(), workspace)
}

fn expected_args(target: &str, target_dir: &str, features: &str) -> Vec<String> {
    [
        "build",
        "-p",
        "axvisor",
        "--target",
        target,
        "--target-dir",
        target_dir,
        "--features",
        features,
        "--bin",
        "axvisor",
        "--release",
        "--message-format",
        "json",
    ]
    .map(String::from)
    .to_vec()
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn aarch64_board_gives_xtask_features_and_env() {
    let root = Path::new("/out/cargo");
    let vm = "configs/vms/arceos-aarch64-qemu-smp1.toml";
    let (plan, ws) = plan("configs/board/qemu-aarch64.toml", vm, root);
    let cmd = plan.command.clone().unwrap();
    let target_dir = cmd.args[6].clone();
    assert!(target_dir.starts_with("/out/cargo/vmcfg-"), "{target_dir}");
    assert_eq!(cmd.program, "cargo");
    assert_eq!(cmd.cwd, ws);
    assert_eq!(
        cmd.args,
        expected_args(
            "aarch64-unknown-none-softfloat",
            &target_dir,
            "ept-level-4,axstd/bus-mmio,dyn-plat,log/release_max_level_info"
        )
    );
    assert_eq!(
        cmd.env,
        env(&[
            ("AX_LOG", "info".into()),
            ("AXVISOR_VM_CONFIGS", format!("{DATA}/{vm}")),
            ("WORKSPACE_FOLDER", DATA.into()),
        ])
    );
    assert_eq!(plan.artifact, Artifact::CargoBin("axvisor".into()));
    let shown = plan.display();
    assert!(shown.contains("AX_LOG=info AXVISOR_VM_CONFIGS="), "{shown}");
    assert!(shown.contains(" cargo build -p axvisor "), "{shown}");
}

#[test]
fn x86_64_board_gives_xtask_features_and_env() {
    let vm = "configs/vms/nimbos-x86_64-qemu-smp1.toml";
    let (plan, _) = plan("configs/board/qemu-x86_64.toml", vm, Path::new("/t"));
    let cmd = plan.command.unwrap();
    let target_dir = cmd.args[6].clone();
    assert_eq!(
        cmd.args,
        expected_args(
            "x86_64-unknown-none",
            &target_dir,
            "axstd/myplat,ept-level-4,fs,log/release_max_level_info"
        )
    );
    assert_eq!(
        cmd.env,
        env(&[
            ("AX_LOG", "info".into()),
            ("AXVISOR_VM_CONFIGS", format!("{DATA}/{vm}")),
            ("WORKSPACE_FOLDER", DATA.into()),
        ])
    );
}

#[test]
fn each_vm_config_set_gets_its_own_target_dir() {
    let root = Path::new("/t");
    let target_dir = |vm: &str| {
        let (plan, _) = plan("configs/board/qemu-aarch64.toml", vm, root);
        plan.command.unwrap().args[6].clone()
    };
    let arceos = target_dir("configs/vms/arceos-aarch64-qemu-smp1.toml");
    let linux = target_dir("configs/vms/linux-aarch64-qemu-smp1.toml");
    assert_ne!(arceos, linux);
    assert_eq!(
        arceos,
        target_dir("configs/vms/arceos-aarch64-qemu-smp1.toml")
    );
}

#[test]
fn debug_builds_and_log_free_packages_change_the_log_feature() {
    let workspace = PathBuf::from(DATA);
    let board = BoardConfig::load(&workspace.join("configs/board/qemu-aarch64.toml")).unwrap();
    let package = axvisor_package();
    let mut req = CargoRequest {
        board: &board,
        package: &package,
        vm_configs: &[],
        workspace: &workspace,
        target_root: Path::new("/t"),
        release: false,
    };
    let args = cargo_recipe(&req).unwrap().command.unwrap().args;
    assert!(args.contains(&"ept-level-4,axstd/bus-mmio,dyn-plat,log/max_level_info".into()));
    assert!(!args.contains(&"--release".into()));
    let log_free = PackageInfo {
        uses_log: false,
        ..axvisor_package()
    };
    req.package = &log_free;
    req.release = true;
    let args = cargo_recipe(&req).unwrap().command.unwrap().args;
    assert!(
        args.contains(&"ept-level-4,axstd/bus-mmio,dyn-plat".into()),
        "{args:?}"
    );
}
