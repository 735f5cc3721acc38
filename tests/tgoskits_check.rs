//! `qemu-test check --test-suit DIR` over tgoskits' test-suit tree (vendored unmodified in
//! tests/data/tgoskits): every build, QEMU and board TOML loads with every key known — board run
//! configs and the workspace's `.github/workflows/uboot*.toml` through the U-Boot config reader,
//! the board job's unset variables left unchecked with a note — and a misspelt key of the new
//! formats — in a build file, a prompt key, `[[shell_check_steps]]`, `[host_http_server]`, a
//! board file — is an error naming the file, line and the key it meant.

pub mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, text};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tgoskits")
}

/// A copy of the vendored workspace (test-suit and the VM configs it names) in `s`.
fn copy_tree(s: &Scratch) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }
    let ws = s.path().join("tgoskits");
    copy(&data().join("test-suit"), &ws.join("test-suit"));
    copy(&data().join("os"), &ws.join("os"));
    copy(&data().join(".github"), &ws.join(".github"));
    ws
}

/// The variables tgoskits' board jobs set for `.github/workflows/uboot.toml`.
const BOARD_ENV: &[(&str, &str)] = &[
    ("BOARD_COMM_UART_BAUD", "115200"),
    ("BOARD_POWER_OFF", "relay off"),
    ("BOARD_POWER_RESET", "relay on"),
    ("BOARD_DTB", "/srv/board/board.dtb"),
    ("BOARD_COMM_UART_DEV", "/dev/ttyUSB0"),
    ("BOARD_COMM_NET_IFACE", "enp3s0"),
    ("TFTP_DIR", "/srv/tftp"),
];

/// `check --test-suit DIR` with `vars` set and every other board variable unset.
fn check_with(s: &Scratch, dir: &Path, vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = s.cmd(&["check", "--test-suit", dir.to_str().unwrap()]);
    for (k, _) in BOARD_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

fn check(s: &Scratch, dir: &Path) -> (Option<i32>, String, String) {
    check_with(s, dir, &[])
}

/// Replaces the one occurrence of `from` in `file` by `to`.
fn edit(file: &Path, from: &str, to: &str) {
    let t = std::fs::read_to_string(file).unwrap();
    assert_eq!(t.matches(from).count(), 1, "{}: {from}", file.display());
    std::fs::write(file, t.replace(from, to)).unwrap();
}

#[test]
fn the_vendored_test_suit_checks_clean() {
    let s = Scratch::new();
    // With the board job's variables set, every value of the workflows' U-Boot configs is
    // typed and checked too.
    let (code, stdout, stderr) = check_with(&s, &data().join("test-suit"), BOARD_ENV);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // The vendored excerpt is no workspace cargo can read (it lists members it does not hold):
    // AxVisor's check of features naming a platform is not made, said once, at the first
    // AxVisor build file.
    let metadata_note = "board-asus-nuc15crh/build-x86_64-unknown-none.toml:1:1: note: AxVisor's \
                         check of features that name a platform was not made: `cargo metadata` \
                         over ";
    assert_eq!(stdout.matches(metadata_note).count(), 1, "{stdout}");
    // The same for the ArceOS board build file's `package = "arceos-helloworld"` (a known key,
    // no warning): its package is looked up among the workspace's members, which cargo cannot
    // list here.
    let package_note = format!(
        "arceos/board-orangepi-5-plus/build-aarch64-unknown-none-softfloat.toml:1:1: note: its \
         features were not checked against axbuild's rules: {}:1:11: `package = \
         \"arceos-helloworld\"` names no package of the workspace: `cargo metadata` over ",
        data()
            .join(
                "test-suit/arceos/board-orangepi-5-plus/build-aarch64-unknown-none-softfloat.toml"
            )
            .display()
    );
    assert_eq!(stdout.matches(&package_note).count(), 1, "{stdout}");
    let stdout: String = stdout
        .lines()
        .filter(|l| !l.contains(metadata_note) && !l.contains(&package_note))
        .filter(|l| !l.starts_with("  help: name a package of the workspace's members"))
        .map(|l| format!("{l}\n"))
        .collect();
    // The one finding is the true one: a board file's explicit `fail_regex = []`.
    let findings: Vec<&str> = stdout.lines().collect();
    assert_eq!(findings.len(), 1, "{stdout}");
    assert!(
        findings[0].ends_with(
            "board-orangepi-5-plus/smoke/board-orangepi-5-plus-linux.toml:2:1: warning: no fail \
             patterns: a kernel panic on the console fails nothing (only a reset or QEMU's exit \
             would); remove `fail_regex = []` for the built-in default set"
        ),
        "{stdout}"
    );
    // Without them (any runner but the board's), the same finding, and a note per workflow
    // file naming the values left unchecked; still exit 0.
    let (code, stdout, stderr) = check(&s, &data().join("test-suit"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.contains(metadata_note) && !l.contains(&package_note))
        .filter(|l| !l.starts_with("  help: name a package of the workspace's members"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[1].contains(
            ".github/workflows/uboot-rdk-s100.toml:2:12: note: values using variables not set \
             here were not checked: BOARD_DTB (line 2), BOARD_COMM_UART_DEV (line 6); set the \
             board job's variables and run `qemu-test check --uboot-config"
        ),
        "{stdout}"
    );
    assert!(
        lines[2].contains(
            ".github/workflows/uboot.toml:1:13: note: values using variables not set here were \
             not checked: BOARD_COMM_UART_BAUD (line 1), BOARD_POWER_OFF (line 2), \
             BOARD_POWER_RESET (line 3), BOARD_DTB (line 4), BOARD_COMM_UART_DEV (line 8), \
             BOARD_COMM_NET_IFACE (line 20), TFTP_DIR (line 21)"
        ),
        "{stdout}"
    );
}

/// Board files are read by the U-Boot config reader, with its types: a board run config's
/// `uboot_cmd` must be strings, and the workflows' U-Boot config types its values once the board
/// job's variables are set (a bad rate is an error naming where it came from); a misspelt key of
/// the workflow file is an error at its line.
#[test]
fn board_files_are_read_as_uboot_configs() {
    let s = Scratch::new();
    let ws = copy_tree(&s);
    let board = ws.join("test-suit/axvisor/normal/board-rdk-s100/smoke/board-rdk-s100-linux.toml");
    edit(&board, "\"run avb_boot\",", "1,");
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{}:", board.display()))
            && stderr.contains("`uboot_cmd` must be an array of strings"),
        "{stderr}"
    );
    let s = Scratch::new();
    let ws = copy_tree(&s);
    let mut vars = BOARD_ENV.to_vec();
    vars[0] = ("BOARD_COMM_UART_BAUD", "fast");
    let (code, stdout, stderr) = check_with(&s, &ws.join("test-suit"), &vars);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let uboot = ws.join(".github/workflows/uboot.toml");
    assert!(
        stderr.contains(&format!(
            "{}:1:13: `baud_rate` must be a positive number of bits per second; found `fast` \
             (from `${{env:BOARD_COMM_UART_BAUD}}`)",
            uboot.display()
        )),
        "{stderr}"
    );
    edit(&uboot, "board_reset_cmd =", "board_rest_cmd =");
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:3:1: unknown key `board_rest_cmd`",
            uboot.display()
        )) && stderr.contains("(did you mean `board_reset_cmd`?)"),
        "{stderr}"
    );
}

/// Each file kind is read by its own reader: a typo in any of them is found, at its line.
#[test]
fn a_misspelt_key_in_any_file_of_the_tree_is_an_error_at_its_line() {
    let cases = [
        (
            "test-suit/axvisor/normal/qemu/build-riscv64gc-unknown-none-elf.toml",
            "vm_configs =",
            "vm_config =",
            "vm_configs",
        ),
        (
            "test-suit/axvisor/normal/qemu/build-x86_64-unknown-none-svm.toml",
            "features =",
            "featurs =",
            "features",
        ),
        (
            "test-suit/axvisor/normal/qemu/smoke/qemu-aarch64.toml",
            "shell_init_cmd =",
            "shell_init_cdm =",
            "shell_init_cmd",
        ),
        (
            "test-suit/axvisor/normal/qemu/smoke/qemu-x86_64-vmx.toml",
            "timeout =",
            "timout =",
            "timeout",
        ),
        (
            "test-suit/arceos/board-orangepi-5-plus/build-aarch64-unknown-none-softfloat.toml",
            "package =",
            "pakage =",
            "package",
        ),
        (
            "test-suit/axvisor/normal/board-rdk-s100/smoke/board-rdk-s100-linux.toml",
            "board_type =",
            "bord_type =",
            "board_type",
        ),
    ];
    for (rel, from, to, meant) in cases {
        let s = Scratch::new();
        let ws = copy_tree(&s);
        let file = ws.join(rel);
        let line = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .position(|l| l.starts_with(from))
            .unwrap()
            + 1;
        edit(&file, from, to);
        let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
        assert_eq!(code, Some(2), "{rel}: {stdout}{stderr}");
        let typo = to.trim_end_matches(" =");
        let want = format!("{}:{line}:1: unknown key `{typo}`", file.display());
        assert!(stderr.contains(&want), "{want}\n{stderr}");
        assert!(
            stderr.contains(&format!("(did you mean `{meant}`?)")),
            "{rel}: {stderr}"
        );
    }
}

/// The keys no vendored file uses yet: ostool 0.29's steps and the host HTTP server, in a case
/// added to the tree.
#[test]
fn misspelt_step_and_host_http_keys_in_a_case_are_errors_at_their_line() {
    for (body, want, meant) in [
        (
            "[[shell_check_steps]]\nshell_prefix = \"~ #\"\nshell_cmd = \"true\"\n\
             success_regex = \"ok\"\n[[shell_check_steps]]\nshell_cmdd = \"ls\"\n",
            ":7:1: unknown key `shell_cmdd`",
            "shell_cmd",
        ),
        (
            "[host_http_server]\nport = 18281\nbody_sise = 1024\n",
            ":4:1: unknown key `body_sise`",
            "body_size",
        ),
        (
            "shell_prefix = \"~ #\"\ntest_comands = [\"ls\"]\n",
            ":3:1: unknown key `test_comands`",
            "test_commands",
        ),
    ] {
        let s = Scratch::new();
        let ws = copy_tree(&s);
        let case = ws.join("test-suit/axvisor/normal/qemu/http");
        std::fs::create_dir_all(&case).unwrap();
        let file = case.join("qemu-aarch64.toml");
        std::fs::write(&file, format!("args = []\n{body}")).unwrap();
        let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
        assert_eq!(code, Some(2), "{body}: {stdout}{stderr}");
        let want = format!("{}{want}", file.display());
        assert!(stderr.contains(&want), "{want}\n{stderr}");
        assert!(
            stderr.contains(&format!("did you mean `{meant}`")),
            "{stderr}"
        );
    }
}

/// A VM config a build file names must exist in the workspace (an error at the array element),
/// except those under tmp/, which axbuild generates before it builds.
#[test]
fn named_vm_configs_must_exist_unless_axbuild_generates_them() {
    let s = Scratch::new();
    let ws = copy_tree(&s);
    // The vendored uefi case names a generated one: clean (see the first test); a missing
    // checked-in one is an error at its line.
    let vm = ws.join("os/axvisor/configs/vms/qemu/riscv64/linux-smp1.toml");
    std::fs::remove_file(&vm).unwrap();
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let build = ws.join("test-suit/axvisor/normal/qemu/build-riscv64gc-unknown-none-elf.toml");
    let line = std::fs::read_to_string(&build)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("vm_configs"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "{}:{line}:15: VM config file 'os/axvisor/configs/vms/qemu/riscv64/linux-smp1.toml' \
             does not exist",
            build.display()
        )),
        "{stderr}"
    );
}

/// A TOML that is none of axbuild's kinds is said, not silently passed over; a directory with
/// no cases is an error.
#[test]
fn stray_files_are_reported_and_an_empty_tree_is_an_error() {
    let s = Scratch::new();
    let ws = copy_tree(&s);
    let stray = ws.join("test-suit/axvisor/normal/qemu/notes.toml");
    std::fs::write(&stray, "x = 1\n").unwrap();
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "{}:1:1: warning: not a test-suit file axbuild reads",
            stray.display()
        )),
        "{stdout}"
    );
    let empty = s.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = check(&s, &empty);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no QEMU test cases found under"),
        "{stderr}"
    );
    let (code, _, stderr) = check(&s, &s.path().join("missing"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
}

/// ArceOS' `rust` and `c` groups run through axbuild's own flows (tgoskits' full tree has them:
/// build files with `app-c` at the `c` group's root): no case, and their build files are not
/// read as ours — a note per group says so, instead of an error on `app-c`; their QEMU configs
/// are checked as every other. A misspelt key in such a QEMU config is still an error.
#[test]
fn arceos_flow_groups_are_noted_not_refused() {
    let s = Scratch::new();
    let ws = copy_tree(&s);
    let c = ws.join("test-suit/arceos/c");
    std::fs::create_dir_all(&c).unwrap();
    for arch in ["x86_64-unknown-none", "riscv64gc-unknown-none-elf"] {
        std::fs::write(
            c.join(format!("build-{arch}.toml")),
            "app-c = \"c\"\nfeatures = [\"alloc\"]\nlog = \"Info\"\nmax_cpu_num = 4\n",
        )
        .unwrap();
    }
    let qemu = c.join("qemu-x86_64.toml");
    std::fs::write(
        &qemu,
        "args = [\"-machine\", \"q35\"]\nsuccess_regex = [\"ALL C TESTS PASSED\"]\nfail_regex = []\n\
         timeout = 300\n[host_http_server]\nbind = \"127.0.0.1\"\nport = 18285\n\
         body = \"ArceOS C test suite host fixture\\n\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "{}:1:1: note: ArceOS' group {} runs through axbuild's own flow (C apps, `app-c`), \
             which qemu-test does not run: its 2 build file(s) are not read",
            c.join("build-riscv64gc-unknown-none-elf.toml").display(),
            c.display()
        )),
        "{stdout}"
    );
    // Not a case either.
    let out = s.run(&[
        "matrix",
        "--test-suit",
        ws.join("test-suit").to_str().unwrap(),
    ]);
    let (matrix, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!matrix.contains("arceos.c."), "{matrix}");
    std::fs::write(&qemu, "args = []\nsucess_regex = [\"x\"]\n").unwrap();
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:1: unknown key `sucess_regex`",
            qemu.display()
        )),
        "{stderr}"
    );
}

/// A build file whose `package` is not its case's own `Cargo.toml` package: axbuild's QEMU
/// flows build the case's (they pass it as `--package`), its board tests the named one; check
/// says so at the key (a note: both are valid to axbuild).
#[test]
fn a_package_other_than_the_cases_own_is_noted_at_the_key() {
    let s = Scratch::new();
    let ws = copy_tree(&s);
    let file =
        ws.join("test-suit/arceos/axtest/sg2002-usb-msc/build-riscv64gc-unknown-none-elf.toml");
    edit(
        &file,
        "package = \"arceos-axtest-sg2002-usb-msc\"",
        "package = \"arceos-helloworld\"",
    );
    let (code, stdout, stderr) = check(&s, &ws.join("test-suit"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "{}:1:11: note: `package = \"arceos-helloworld\"` is not what the QEMU cases here \
             build: the `Cargo.toml` beside this file is `arceos-axtest-sg2002-usb-msc`",
            file.display()
        )),
        "{stdout}"
    );
    // The vendored file names its own package: no such note.
    let (_, stdout, _) = check(&s, &data().join("test-suit"));
    assert!(
        !stdout.contains("is not what the QEMU cases here build"),
        "{stdout}"
    );
}
