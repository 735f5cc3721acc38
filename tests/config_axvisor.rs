//! AxVisor's unmodified QEMU TOMLs (tests/data/axvisor) load without warnings and give exactly
//! the QEMU command lines below; broken variants give errors at the right line:column.

use std::path::{Path, PathBuf};

use qemu_test_action::arch::Arch;
use qemu_test_action::config::QemuConfig;
use qemu_test_action::error::ErrorKind;
use qemu_test_action::qemu::{CommandRequest, QemuCommand};

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/axvisor")
        .join(relative)
}

fn load(relative: &str) -> QemuConfig {
    let config = QemuConfig::load(&data(relative)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.warnings.is_empty(),
        "{relative}: {:?}",
        config.warnings
    );
    config
}

fn command(config: &QemuConfig, arch: Arch, kernel: &str) -> QemuCommand {
    QemuCommand::build(&CommandRequest {
        config,
        arch,
        kernel: Some(Path::new(kernel)),
        workspace: Path::new("/ws"),
        work_dir: Path::new("/out/cases/c"),
        firmware: None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn regexes(specs: &[qemu_test_action::config::PatternSpec]) -> Vec<&str> {
    specs.iter().map(|p| p.regex.as_str()).collect()
}

const AARCH64_ARGS: [&str; 16] = [
    "-nographic",
    "-cpu",
    "cortex-a72",
    "-machine",
    "virt,virtualization=on,gic-version=3",
    "-smp",
    "4",
    "-device",
    "virtio-blk-device,drive=disk0",
    "-drive",
    "id=disk0,if=none,format=raw,file=/ws/tmp/rootfs.img",
    "-append",
    "root=/dev/vda rw init=/init",
    "-m",
    "8g",
    "-kernel",
];

#[test]
fn ci_aarch64_config() {
    let config = load(".github/workflows/qemu-aarch64.toml");
    assert!(config.to_bin && !config.uefi && config.no_reboot);
    assert_eq!(
        regexes(&config.success_regex),
        ["Hello, world!", "test pass!"]
    );
    assert_eq!(regexes(&config.fail_regex), ["panicked at"]);
    let drive = config.args[10].location.as_ref().unwrap();
    assert_eq!((drive.line, drive.column), (12, 3));
    let success = config.success_regex[1].location.as_ref().unwrap();
    assert_eq!((success.line, success.column), (21, 5));

    let cmd = command(&config, Arch::Aarch64, "/k/axvisor.bin");
    assert_eq!(cmd.program, "qemu-system-aarch64");
    let mut want: Vec<&str> = AARCH64_ARGS.to_vec();
    want.extend(["/k/axvisor.bin", "-no-reboot"]);
    assert_eq!(cmd.args, want);
    assert_eq!(
        cmd.display(),
        "qemu-system-aarch64 -nographic -cpu cortex-a72 -machine virt,virtualization=on,gic-version=3 \
         -smp 4 -device virtio-blk-device,drive=disk0 -drive id=disk0,if=none,format=raw,file=/ws/tmp/rootfs.img \
         -append 'root=/dev/vda rw init=/init' -m 8g -kernel /k/axvisor.bin -no-reboot"
    );
    assert_eq!(cmd.notes.len(), 1, "{:?}", cmd.notes);
    assert!(cmd.notes[0].starts_with("added `-no-reboot`"));
}

const X86_64_CI_ARGS: [&str; 18] = [
    "-m",
    "128M",
    "-smp",
    "1",
    "-machine",
    "q35",
    "-device",
    "virtio-blk-pci,drive=disk0",
    "-drive",
    "id=disk0,if=none,format=raw,file=/ws/tmp/rootfs.img",
    "-nographic",
    "-accel",
    "kvm",
    "-cpu",
    "host",
    "-kernel",
    "/k/axvisor.elf",
    "-no-reboot",
];

#[test]
fn ci_x86_64_configs() {
    for file in [
        ".github/workflows/qemu-x86_64.toml",
        ".github/workflows/qemu-x86_64-kvm.toml",
    ] {
        let config = load(file);
        assert!(!config.to_bin && !config.uefi, "{file}");
        assert_eq!(
            regexes(&config.success_regex),
            ["usertests passed!"],
            "{file}"
        );
        assert_eq!(
            regexes(&config.fail_regex),
            ["System will reboot, press any key to continue ..."],
            "{file}"
        );
        let cmd = command(&config, Arch::X86_64, "/k/axvisor.elf");
        assert_eq!(cmd.program, "qemu-system-x86_64");
        assert_eq!(cmd.args, X86_64_CI_ARGS, "{file}");
    }
}

#[test]
fn ostool_default_configs() {
    let config = load("scripts/ostool/qemu-aarch64.toml");
    assert!(config.to_bin && config.success_regex.is_empty() && config.fail_regex.is_empty());
    let cmd = command(&config, Arch::Aarch64, "/k/axvisor.bin");
    let mut want: Vec<&str> = AARCH64_ARGS.to_vec();
    want.extend(["/k/axvisor.bin", "-no-reboot"]);
    assert_eq!(cmd.args, want);

    let config = load("scripts/ostool/qemu-x86_64.toml");
    assert!(!config.to_bin && config.success_regex.is_empty() && config.fail_regex.is_empty());
    let cmd = command(&config, Arch::X86_64, "/k/axvisor.elf");
    assert_eq!(
        cmd.args,
        [
            "-nographic",
            "-cpu",
            "host",
            "-machine",
            "q35",
            "-smp",
            "1",
            "-accel",
            "kvm",
            "-device",
            "virtio-blk-pci,drive=disk0",
            "-drive",
            "id=disk0,if=none,format=raw,file=/ws/tmp/rootfs.img",
            "-m",
            "128M",
            "-kernel",
            "/k/axvisor.elf",
            "-no-reboot",
        ]
    );
}

/// The U-Boot config is not a QEMU config: loading it as one warns about each foreign key
/// instead of failing, like ostool ignoring unknown keys.
#[test]
fn uboot_config_as_qemu_config_warns_per_unknown_key() {
    let config = QemuConfig::load(&data(".github/workflows/uboot.toml")).unwrap();
    let keys: Vec<&str> = config
        .warnings
        .iter()
        .map(|w| w.message.split('`').nth(1).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "baud_rate",
            "board_power_off_cmd",
            "board_reset_cmd",
            "dtb_file",
            "serial",
            "net"
        ]
    );
    assert_eq!(config.warnings[0].location.line, 1);
    assert_eq!(config.success_regex.len(), 6);
}

/// Writes the real aarch64 config with one textual change, to check errors on a broken copy.
fn broken_copy(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(data(".github/workflows/qemu-aarch64.toml")).unwrap();
    assert!(text.contains(from), "{from}");
    let path = dir.join("qemu-aarch64.toml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn syntax_error_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = broken_copy(dir.path(), "\"-smp\",", "\"-smp\"");
    let err = QemuConfig::load(&path).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    let loc = err.location.as_ref().unwrap();
    assert_eq!(
        (loc.path.as_path(), loc.line, loc.column),
        (path.as_path(), 8, 3),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("qemu-aarch64.toml:8:3: invalid TOML"),
        "{err}"
    );
}

#[test]
fn wrong_types_name_key_expected_found_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = broken_copy(dir.path(), "to_bin = true", "to_bin = \"true\"");
    let err = QemuConfig::load(&path).unwrap_err();
    assert_eq!(err.message, "`to_bin` must be a boolean; found a string");
    let loc = err.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (23, 10));

    let path = broken_copy(dir.path(), "\"8g\",", "8,");
    let err = QemuConfig::load(&path).unwrap_err();
    assert_eq!(
        err.message,
        "`args` must be an array of strings; element 15 is an integer"
    );
    let loc = err.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (16, 3));
}

#[test]
fn unset_env_var_in_an_argument_is_an_error_at_that_argument() {
    let dir = tempfile::tempdir().unwrap();
    let path = broken_copy(
        dir.path(),
        "${workspaceFolder}",
        "${env:QEMU_TEST_UNSET_ROOTFS_DIR}",
    );
    let config = QemuConfig::load(&path).unwrap();
    let err = QemuCommand::build(&CommandRequest {
        config: &config,
        arch: Arch::Aarch64,
        kernel: Some(Path::new("/k/axvisor.bin")),
        workspace: Path::new("/ws"),
        work_dir: Path::new("/out/cases/c"),
        firmware: None,
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message
            .contains("`QEMU_TEST_UNSET_ROOTFS_DIR` is not set"),
        "{err}"
    );
    let loc = err.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (12, 3));
    assert_eq!(
        err.help.as_deref(),
        Some(
            format!(
                "export QEMU_TEST_UNSET_ROOTFS_DIR or remove ${{env:QEMU_TEST_UNSET_ROOTFS_DIR}} from {}",
                path.display()
            )
            .as_str()
        )
    );
}
