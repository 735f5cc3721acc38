//! tgoskits' five QEMU archs: riscv64 boots end to end with its smoke case's QEMU config
//! (vendored unmodified in tests/data/tgoskits) and the hypervisor requirement answered by the
//! real QEMU (the H extension); loongarch64's hypervisor case is skipped with the reason QEMU
//! gives (no LVZ), while a plain loongarch64 guest boots under TCG; the x86_64 svm/vmx cases each
//! name their own extension. The riscv64 guest is the bare-metal fixture, a tiny shell at `~ # `
//! that also reports whether its CPU has H; the loongarch64 one prints and powers off (or panics).

pub mod common;

use std::path::{Path, PathBuf};

use common::fixtures::fixture;
use common::{Scratch, text};
use qemu_test_action::arch::Arch;
use qemu_test_action::host::{CpuFeature, Status};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tgoskits")
}

fn smoke(name: &str) -> PathBuf {
    data()
        .join("test-suit/axvisor/normal/qemu/smoke")
        .join(name)
}

/// The rootfs the riscv64 config's `-drive` names, as an empty disk in the scratch workspace
/// (the stand-in guest never reads it; QEMU must find it).
fn rootfs(s: &Scratch) {
    let dir = s.path().join("tmp/axbuild/rootfs");
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("rootfs-riscv64-alpine.img")).unwrap();
    f.set_len(1 << 20).unwrap();
}

/// `run` of the riscv64 shell fixture with `config` and `extra` flags; (exit code, case JSON).
fn boot(s: &Scratch, config: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    rootfs(s);
    let kernel = fixture("riscv64-baremetal/shell.elf");
    let mut args = vec![
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        config.to_str().unwrap(),
        "--timeout",
        "120s",
    ];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let (stdout, stderr) = text(&out);
    let case = s.results()["cases"][0].clone();
    assert!(case.is_object(), "{stdout}{stderr}");
    (out.status.code(), case, format!("{stdout}{stderr}"))
}

/// `run --test-suit <vendored> --dry-run --test-group normal --arch ARCH` plus `extra`:
/// (exit code, stdout, stderr).
fn dry_run(s: &Scratch, arch: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let root = data().join("test-suit");
    let mut args = vec!["run", "--test-suit", root.to_str().unwrap(), "--dry-run"];
    args.extend(["--test-group", "normal", "--arch", arch]);
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// The dry run's `# skipped: …` line.
fn skipped_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("# skipped: "))
        .unwrap_or_else(|| panic!("{stdout}"))
}

fn notes(case: &serde_json::Value) -> String {
    case["command"]["notes"].to_string()
}

/// AxVisor's riscv64 smoke config as tgoskits has it (`-cpu rv64 -machine virt -bios default
/// -smp 4`, virtio-blk rootfs under `${workspace}/tmp/axbuild/rootfs/`, `to_bin`, the `~ #`
/// prompt driven by `shell_prefix` + `shell_init_cmd`): OpenSBI boots the guest, the typed
/// command's output passes it, and the hypervisor requirement is met because QEMU says `rv64`
/// has h=on, which the guest confirms from inside.
#[test]
fn riscv64_boots_with_the_tgoskits_smoke_config_and_h_is_asked_of_qemu() {
    let s = Scratch::new();
    let (code, c, all) = boot(
        &s,
        &smoke("qemu-riscv64.toml"),
        &["--requires", "hypervisor"],
    );
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(c["arch"], "riscv64", "{c}");
    assert_eq!(
        c["verdict"]["decided_by"]["line"], "guest test pass!",
        "{c}"
    );
    let tail = c["console_tail"].to_string();
    assert!(
        tail.contains("Runtime SBI Version"),
        "-bios default is OpenSBI: {tail}"
    );
    assert!(tail.contains("H extension: yes"), "{tail}");
    assert!(
        notes(&c).contains("qemu-system-riscv64 asked: its CPU `rv64` has h=on"),
        "{}",
        notes(&c)
    );
    // to_bin: the flat binary is what QEMU loaded.
    let args = c["command"]["args"].to_string();
    assert!(args.contains(".bin"), "{args}");
}

/// A CPU without H: the probe's answer (from QEMU) skips the hypervisor case with the reason,
/// and without the requirement the same guest runs and finds no H itself — probe and guest agree.
#[test]
fn riscv64_without_h_skips_a_hypervisor_case_and_the_guest_agrees() {
    let s = Scratch::new();
    let text_ = std::fs::read_to_string(smoke("qemu-riscv64.toml")).unwrap();
    let no_h = text_.replace("\"rv64\"", "\"rv64,h=false\"");
    assert_ne!(no_h, text_);
    let cfg = s.write("qemu-riscv64.toml", &no_h);
    let (code, c, all) = boot(&s, &cfg, &["--requires", "hypervisor"]);
    assert_eq!(code, Some(0), "a skip is not a failure: {all}");
    assert_eq!(c["verdict"]["outcome"], "skipped", "{c}");
    let reason = c["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the case requires a hypervisor, which on riscv64 needs the H extension, but QEMU's CPU `rv64,h=false` has h=off"),
        "{reason}"
    );
    let (code, c, all) = boot(&s, &cfg, &[]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert!(
        c["console_tail"].to_string().contains("H extension: no"),
        "{c}"
    );
}

/// The `qemu` key names the binary that runs the case and that the probe asks.
#[test]
fn the_qemu_the_config_names_runs_the_case_and_is_asked() {
    let s = Scratch::new();
    let path = std::env::var_os("PATH").unwrap();
    let qemu = std::env::split_paths(&path)
        .map(|d| d.join("qemu-system-riscv64"))
        .find(|p| p.is_file())
        .expect("qemu-system-riscv64 on PATH (scripts/install-deps.sh)");
    let text_ = std::fs::read_to_string(smoke("qemu-riscv64.toml")).unwrap();
    let cfg = s.write(
        "qemu-riscv64.toml",
        &format!("qemu = \"{}\"\n{text_}", qemu.display()),
    );
    let (code, c, all) = boot(&s, &cfg, &["--requires", "hypervisor"]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(c["command"]["program"], qemu.to_str().unwrap(), "{c}");
    let n = notes(&c);
    assert!(
        n.contains(&format!(
            "{} asked: its CPU `rv64` has h=on",
            qemu.display()
        )),
        "{n}"
    );
    assert!(n.contains("as the config's `qemu` key names"), "{n}");
    // check knows the key; a misspelling gets did-you-mean.
    let out = s.run(&["check", "--qemu-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let typo = s.write("typo.toml", "qemuu = \"/usr/bin/qemu-system-riscv64\"\n");
    let out = s.run(&["check", "--qemu-config", typo.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("did you mean `qemu`"), "{stderr}");
}

/// The QEMU-CPU facts, asked of the real binaries.
#[test]
fn qemu_says_which_cpus_have_h_and_that_la464_has_no_lvz() {
    let ask = |arch, bin, cpu, f| CpuFeature::ask(arch, bin, cpu, f).status;
    assert_eq!(
        ask(Arch::Riscv64, "qemu-system-riscv64", "rv64", "h"),
        Status::Yes
    );
    assert_eq!(
        ask(Arch::Riscv64, "qemu-system-riscv64", "max", "h"),
        Status::Yes
    );
    let off = ask(Arch::Riscv64, "qemu-system-riscv64", "rv64,h=off", "h");
    assert!(matches!(off, Status::No { .. }), "{off:?}");
    let lvz = ask(Arch::Loongarch64, "qemu-system-loongarch64", "la464", "lvz");
    assert!(
        lvz.reason()
            .is_some_and(|r| r.contains("`la464` has no `lvz` property")),
        "{lvz:?}"
    );
    let bad = ask(Arch::Riscv64, "qemu-system-riscv64", "no-such-cpu", "h");
    assert!(matches!(bad, Status::NotChecked { .. }), "{bad:?}");
}

/// `qemu-test probe` says what QEMU offers a guest hypervisor on the archs where QEMU is asked.
#[test]
fn probe_shows_the_hypervisor_extensions_qemu_offers() {
    let s = Scratch::new();
    let out = s.run(&["probe"]);
    let (stdout, stderr) = text(&out);
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Hypervisor"))
        .take(3)
        .collect();
    assert!(
        rows[0].starts_with("Hypervisor riscv64")
            && rows[0].contains("yes")
            && rows[0].contains("-cpu rv64 has h=on (qemu-system-riscv64)"),
        "{stdout}{stderr}"
    );
    let la = rows
        .iter()
        .find(|r| r.contains("loongarch64"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        la.contains(" no ")
            && la.contains("-cpu la464: QEMU's CPU model `la464` has no `lvz` property"),
        "{la}"
    );
    let out = s.run(&["probe", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let features = json["cpu_features"].as_array().unwrap();
    assert!(
        features.iter().any(|f| f["arch"] == "riscv64"
            && f["feature"] == "h"
            && f["status"]["status"] == "yes"),
        "{features:?}"
    );
}

/// tgoskits' loongarch64 AxVisor case (unmodified) is a hypervisor case: upstream QEMU has no
/// LVZ, so it is skipped with QEMU's answer and where to get a QEMU that has it. Its `uefi =
/// true` needs firmware Debian 12 does not ship, hence `--firmware` (stand-ins of Debian 13's
/// pair: the code and its variable store beside it) to plan it here.
#[test]
fn loongarch64_axvisor_case_skips_without_lvz_saying_why() {
    let s = Scratch::new();
    let fw = s.write("QEMU_EFI.fd", "stand-in");
    s.write("QEMU_VARS.fd", "stand-in");
    let (code, stdout, stderr) = dry_run(&s, "loongarch64", &["--firmware", fw.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let skipped = skipped_line(&stdout);
    assert!(
        skipped.contains("on loongarch64 needs LVZ (the LoongArch virtualization extension), but QEMU's CPU model `la464` has no `lvz` property"),
        "{skipped}"
    );
    assert!(
        skipped.contains("`qemu = \"/path/to/qemu-system-loongarch64\"` in the QEMU config"),
        "{skipped}"
    );
    if qemu_test_action::qemu::firmware::find_pflash(Arch::Loongarch64).is_ok() {
        return; // this host has the firmware: the case is planned with it (as with --firmware)
    }
    // Without the firmware the case is skipped too, saying first which firmware is missing and
    // how to provide it, then (also) the missing LVZ.
    let (code, stdout, stderr) = dry_run(&s, "loongarch64", &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let skipped = skipped_line(&stdout);
    assert!(
        skipped.starts_with(
            "# skipped: `uefi = true` needs UEFI firmware for loongarch64, but none was found \
             (looked for /usr/share/qemu-efi-loongarch64/QEMU_EFI.fd with \
             /usr/share/qemu-efi-loongarch64/QEMU_VARS.fd, /usr/share/qemu/edk2-loongarch64-code.fd \
             with /usr/share/qemu/edk2-loongarch64-vars.fd): install it with \
             `apt-get install qemu-efi-loongarch64` (Debian 13 (trixie) and later; not in Debian \
             12 or its backports), or pass --firmware FILE"
        ),
        "{skipped}"
    );
    let also = skipped.split_once("; also, ").map(|(_, more)| more);
    assert!(
        also.is_some_and(|more| more.contains("on loongarch64 needs LVZ")),
        "{skipped}"
    );
}

/// A real run of tgoskits' loongarch64 cases (unmodified) on a host without LoongArch UEFI
/// firmware: both `uefi = true` cases (ArceOS' axtest, AxVisor's smoke) are skipped before
/// anything is fetched or built, each saying which firmware is missing; exit 0. With
/// `--on-unsupported fail` the same cases are errors (exit 3) with the same reason.
#[test]
fn loongarch64_uefi_cases_skip_without_firmware() {
    if qemu_test_action::qemu::firmware::find_pflash(Arch::Loongarch64).is_ok() {
        return; // the firmware is installed here: nothing is missing
    }
    let s = Scratch::new();
    let root = data().join("test-suit");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--test-suit", root.to_str().unwrap()];
        args.extend(["--arch", "loongarch64"]);
        args.extend_from_slice(extra);
        let out = s.run(&args);
        let (stdout, stderr) = text(&out);
        (out.status.code(), s.results(), format!("{stdout}{stderr}"))
    };
    let (code, results, all) = run(&[]);
    assert_eq!(code, Some(0), "{all}");
    let cases = results["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "arceos.axtest.smoke@loongarch64",
            "axvisor.normal.smoke@loongarch64",
            "starryos.qemu.system@loongarch64"
        ],
        "{all}"
    );
    for c in cases {
        assert_eq!(c["verdict"]["outcome"], "skipped", "{c}");
        let reason = c["verdict"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("`uefi = true` needs UEFI firmware for loongarch64")
                && reason.contains("apt-get install qemu-efi-loongarch64")
                && reason.contains("--firmware FILE"),
            "{reason}"
        );
        assert!(c["stages"].as_array().unwrap().is_empty(), "{c}");
    }
    assert!(
        all.contains("SKIP arceos.axtest.smoke@loongarch64"),
        "{all}"
    );
    let (code, results, all) = run(&["--on-unsupported", "fail"]);
    assert_eq!(code, Some(3), "{all}");
    let c = &results["cases"][0];
    assert_eq!(c["verdict"]["outcome"], "error", "{c}");
    assert!(
        c["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains("needs UEFI firmware for loongarch64"),
        "{c}"
    );
}

/// A loongarch64 guest (the fixture encoded from the ISA manual) boots under TCG on Debian's QEMU
/// with the machine and CPU of tgoskits' loongarch64 case; the arch comes from the ELF. The same
/// guest as a hypervisor case is skipped: la464 has no LVZ.
#[test]
fn loongarch64_boots_under_tcg_and_its_hypervisor_case_is_skipped() {
    let s = Scratch::new();
    let cfg = s.write(
        "qemu-loongarch64.toml",
        "args = [\"-machine\", \"virt\", \"-cpu\", \"la464\", \"-m\", \"256M\", \"-smp\", \"1\", \
         \"-nographic\", \"-serial\", \"mon:stdio\", \"-no-reboot\"]\n\
         success_regex = [\"Hello, world!\"]\nfail_regex = [\"(?i)\\\\bpanic(?:ked)?\\\\b\"]\n",
    );
    let run = |variant: &str, extra: &[&str]| {
        let kernel = fixture(&format!("loongarch64-baremetal/{variant}.elf"));
        let mut args = vec!["run", "--kernel", kernel.to_str().unwrap()];
        args.extend(["--qemu-config", cfg.to_str().unwrap(), "--timeout", "60s"]);
        args.extend_from_slice(extra);
        let out = s.run(&args);
        let (stdout, stderr) = text(&out);
        let case = s.results()["cases"][0].clone();
        (out.status.code(), case, format!("{stdout}{stderr}"))
    };
    let (code, c, all) = run("hello", &[]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(c["arch"], "loongarch64", "{c}");
    assert_eq!(c["accel"], "tcg", "{c}");
    assert_eq!(c["verdict"]["decided_by"]["line"], "Hello, world!", "{c}");
    let (code, c, all) = run("panic", &[]);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(c["verdict"]["outcome"], "fail", "{c}");
    assert_eq!(
        c["verdict"]["decided_by"]["line"], "panicked at src/main.rs:1:1",
        "{c}"
    );
    let (code, c, all) = run("hello", &["--requires", "hypervisor"]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(c["verdict"]["outcome"], "skipped", "{c}");
    assert!(
        c["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains("needs LVZ (the LoongArch virtualization extension), but QEMU's CPU model `la464` has no `lvz` property"),
        "{c}"
    );
}

/// The x86_64 cases name their own extension and nothing about "hypervisor" (the named one
/// decides); riscv64's hypervisor case is planned to run under TCG here.
#[test]
fn each_arch_of_the_normal_group_is_decided_by_its_own_rule() {
    let s = Scratch::new();
    let (code, stdout, stderr) = dry_run(&s, "x86_64", &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let skipped: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("# skipped: "))
        .collect();
    assert!(
        !skipped.is_empty(),
        "no host here has both svm and vmx: {stdout}"
    );
    for line in skipped {
        assert!(!line.contains("hypervisor"), "{line}");
    }
    let (code, stdout, stderr) = dry_run(&s, "riscv64", &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("# skipped"), "{stdout}");
    assert!(stdout.contains("-accel tcg"), "{stdout}");
    assert!(
        stdout.contains("qemu-system-riscv64 asked: its CPU `rv64` has h=on"),
        "{stdout}"
    );
}
