//! ostool's U-Boot config and tgoskits' board run configs: the real files (unmodified copies in
//! tests/data) load and check clean with the variables their workflows set; a misspelt key, an
//! unset variable and a bad pattern are config errors (exit 2) at file:line:col with the fix.

pub mod common;

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use common::{Scratch, text};
use qemu_test_action::board::uboot::{Env, UbootConfig};

/// The variables AxVisor's test-board.yml and tgoskits' board jobs give ostool.
const BOARD_ENV: &[(&str, &str)] = &[
    ("BOARD_COMM_UART_BAUD", "115200"),
    ("BOARD_POWER_OFF", "mbpoll -a 1 -r 1 -t 0 /dev/ttyUSB1 0"),
    ("BOARD_POWER_RESET", "mbpoll -a 1 -r 1 -t 0 /dev/ttyUSB1 1"),
    ("BOARD_DTB", "/srv/board/phytiumpi.dtb"),
    ("BOARD_COMM_UART_DEV", "/dev/ttyUSB0"),
    ("BOARD_COMM_NET_IFACE", "enp3s0"),
    ("TFTP_DIR", "/srv/tftp"),
];

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn load(path: &Path, vars: &[(&str, &str)]) -> Result<UbootConfig, qemu_test_action::Error> {
    let text = std::fs::read_to_string(path).unwrap();
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| OsString::from(v))
    };
    UbootConfig::parse(
        path,
        &text,
        &Env {
            workspace: Path::new("/ws"),
            lookup: &lookup,
        },
    )
}

/// The ostool U-Boot configs and every board run config of the tgoskits copy.
fn real_files() -> Vec<PathBuf> {
    let mut files = vec![
        data("axvisor/.github/workflows/uboot.toml"),
        data("tgoskits/.github/workflows/uboot.toml"),
        data("tgoskits/.github/workflows/uboot-rdk-s100.toml"),
    ];
    files.extend(board_run_configs(&data("tgoskits/test-suit")));
    files
}

fn board_run_configs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            out.extend(board_run_configs(&path));
        } else if name.starts_with("board-") && name.ends_with(".toml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `qemu-test check --uboot-config FILE` with the board variables set (and `unset` removed).
fn check(s: &Scratch, file: &Path, unset: &[&str]) -> std::process::Output {
    let mut cmd = s.cmd(&["check", "--uboot-config", file.to_str().unwrap()]);
    for (k, v) in BOARD_ENV {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.output().unwrap()
}

#[test]
fn axvisor_uboot_toml_reads_every_key_with_its_variables() {
    let c = load(&data("axvisor/.github/workflows/uboot.toml"), BOARD_ENV).unwrap();
    assert_eq!(c.serial.as_ref().unwrap().value, "/dev/ttyUSB0");
    assert_eq!(c.baud_rate.as_ref().unwrap().value, 115_200);
    assert_eq!(
        c.dtb_file.as_ref().unwrap().value,
        Path::new("/srv/board/phytiumpi.dtb")
    );
    assert_eq!(
        c.board_reset_cmd.as_ref().unwrap().value,
        "mbpoll -a 1 -r 1 -t 0 /dev/ttyUSB1 1"
    );
    assert_eq!(
        c.board_power_off_cmd.as_ref().unwrap().value,
        "mbpoll -a 1 -r 1 -t 0 /dev/ttyUSB1 0"
    );
    let success: Vec<&str> = c.success_regex.iter().map(|p| p.regex.as_str()).collect();
    assert_eq!(success[0], "Welcome to AxVisor Shell!");
    assert_eq!(success.len(), 6);
    let at = c.success_regex[4].location.as_ref().unwrap();
    assert_eq!((at.line, at.column), (14, 5), "^Phytium Pi is on line 14");
    assert_eq!(c.fail_regex[0].regex, "panicked at");
    let net = c.net.as_ref().unwrap();
    assert_eq!(net.interface.value, "enp3s0");
    assert_eq!(net.tftp_dir.as_ref().unwrap().value, Path::new("/srv/tftp"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn tgoskits_uboot_tomls_read_timeout_and_uboot_cmd() {
    let c = load(&data("tgoskits/.github/workflows/uboot.toml"), BOARD_ENV).unwrap();
    assert_eq!(c.grammar.timeout, Some(std::time::Duration::from_secs(300)));
    let c = load(
        &data("tgoskits/.github/workflows/uboot-rdk-s100.toml"),
        BOARD_ENV,
    )
    .unwrap();
    assert_eq!(c.baud_rate.unwrap().value, 921_600);
    let cmds: Vec<&str> = c.uboot_cmd.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(cmds, ["run ab_select_cmd", "run avb_boot"]);
    assert!(c.net.is_none() && c.board_reset_cmd.is_none());
}

#[test]
fn board_run_configs_read_board_type_and_shell_keys() {
    let files = board_run_configs(&data("tgoskits/test-suit"));
    assert_eq!(files.len(), 7, "{files:?}");
    for f in &files {
        let c = load(f, &[]).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(c.board_type.is_some(), "{}", f.display());
        assert!(c.warnings.is_empty(), "{}: {:?}", f.display(), c.warnings);
    }
    let nuc = data(
        "tgoskits/test-suit/axvisor/normal/board-asus-nuc15crh/smoke/board-asus-nuc15crh-linux.toml",
    );
    let c = load(&nuc, &[]).unwrap();
    assert_eq!(c.board_type.unwrap().value, "Asus-nuc15-x86_64-vmx");
    assert_eq!(c.grammar.steps.len(), 1, "shell_prefix + shell_init_cmd");
    assert_eq!(c.grammar.steps[0].send.as_deref(), Some("echo 'hello'\n"));
}

#[test]
fn every_real_file_checks_clean_with_its_variables() {
    let s = Scratch::new();
    for f in real_files() {
        let out = check(&s, &f, &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", f.display());
        if f.ends_with("board-orangepi-5-plus/smoke/board-orangepi-5-plus-linux.toml") {
            // The file really has `fail_regex = []`: check says what that turns off.
            assert_eq!(stdout.lines().count(), 1, "{stdout}");
            assert!(
                stdout.contains("-linux.toml:2:1: warning: no fail patterns"),
                "{stdout}"
            );
        } else {
            assert_eq!(stdout.trim(), "ok: no findings", "{}", f.display());
        }
    }
}

#[test]
fn an_unset_variable_is_named_with_its_place_and_fix() {
    let s = Scratch::new();
    let f = data("axvisor/.github/workflows/uboot.toml");
    let out = check(&s, &f, &["BOARD_COMM_UART_DEV"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:8:10: environment variable `BOARD_COMM_UART_DEV` is not set (used as \
             ${{env:BOARD_COMM_UART_DEV}})",
            f.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: export BOARD_COMM_UART_DEV or remove ${env:BOARD_COMM_UART_DEV}"),
        "{stderr}"
    );
    // Inside [net] too.
    let err = load(
        &f,
        &BOARD_ENV
            .iter()
            .copied()
            .filter(|(k, _)| *k != "TFTP_DIR")
            .collect::<Vec<_>>(),
    )
    .unwrap_err();
    let at = err.location.unwrap();
    assert_eq!((at.line, at.column), (20, 12));
    assert!(err.message.contains("`TFTP_DIR` is not set"));
}

#[test]
fn a_misspelt_key_is_an_error_with_did_you_mean_and_its_line() {
    let s = Scratch::new();
    let real = std::fs::read_to_string(data("axvisor/.github/workflows/uboot.toml")).unwrap();
    for (from, to, meant, line) in [
        (
            "board_reset_cmd =",
            "board_rest_cmd =",
            "board_reset_cmd",
            3,
        ),
        ("success_regex =", "sucess_regex =", "success_regex", 9),
        ("tftp_dir =", "tftpdir =", "tftp_dir", 20),
    ] {
        let f = s.write("typo.toml", &real.replacen(from, to, 1));
        let out = check(&s, &f, &[]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let key = to.trim_end_matches(" =");
        assert!(
            stderr.contains(&format!("typo.toml:{line}:"))
                && stderr.contains(&format!(
                    "unknown key `{key}` in {} (did you mean `{meant}`?)",
                    if meant == "tftp_dir" {
                        "[net]"
                    } else {
                        "the U-Boot config"
                    }
                )),
            "{stderr}"
        );
    }
    // A key of nothing we know is a warning, not silently dropped.
    let f = s.write("other.toml", &format!("tftp_server = \"x\"\n{real}"));
    let out = check(&s, &f, &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("other.toml:1:1: warning: unknown key `tftp_server` in the U-Boot config"),
        "{stdout}"
    );
}

#[test]
fn a_bad_pattern_is_an_error_at_its_place() {
    let s = Scratch::new();
    let real =
        std::fs::read_to_string(data("tgoskits/.github/workflows/uboot-rdk-s100.toml")).unwrap();
    let f = s.write(
        "bad.toml",
        &real.replace("\"ubuntu login:\"", "\"ubuntu (login:\""),
    );
    let out = check(&s, &f, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:13:5: invalid success pattern 'ubuntu (login:'"),
        "{stderr}"
    );
    // A look-around is refused the same way as in a QEMU config, from a variable too.
    let f = s.write("look.toml", "fail_regex = [\"${env:FAIL}\"]\n");
    let mut cmd = s.cmd(&["check", "--uboot-config", f.to_str().unwrap()]);
    let out = cmd.env("FAIL", "(?<!no )panic").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("look.toml:1:15: invalid fail pattern"),
        "{stderr}"
    );
}

#[test]
fn net_addresses_and_defaults_are_typed() {
    let s = Scratch::new();
    let f = s.write(
        "net.toml",
        "serial = \"${env:QT_UNSET_DEV_81:-/dev/ttyS1}\"\nkernel_load_addr = \"0x40200000\"\n\
         [net]\ninterface = \"eth0\"\nboard_ip = \"10.0.2.15\"\ngatewayip = \"10.0.2.2\"\n\
         netmask = \"255.255.255.0\"\n",
    );
    let c = load(&f, &[]).unwrap();
    assert_eq!(c.serial.unwrap().value, "/dev/ttyS1");
    assert_eq!(c.kernel_load_addr.unwrap().value, 0x4020_0000);
    let net = c.net.unwrap();
    assert_eq!(net.gatewayip.unwrap().value, Ipv4Addr::new(10, 0, 2, 2));
    assert_eq!(net.netmask.unwrap().value, Ipv4Addr::new(255, 255, 255, 0));
    let out = s.run(&[
        "check",
        "--uboot-config",
        f.to_str().unwrap(),
        "--qemu-config",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "one file kind at a time");
}
