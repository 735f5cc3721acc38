//! tgoskits' test-suit tree (vendored unmodified in tests/data/tgoskits): every file loads with
//! every key known, the tree is discovered and named as axbuild does, and each case plans.

pub mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, text};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tgoskits")
}

/// Every TOML under `dir`, sorted.
fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn is_build_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("build-"))
}

#[test]
fn every_qemu_and_board_run_config_checks_clean() {
    let s = Scratch::new();
    let files: Vec<PathBuf> = tomls(&data().join("test-suit"))
        .into_iter()
        .filter(|p| !is_build_file(p) && !p.ends_with("Cargo.toml"))
        .collect();
    assert_eq!(files.len(), 21, "{files:?}");
    for f in files {
        // Board run configs are U-Boot configs (board::uboot), QEMU configs are QEMU configs.
        let board = f
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("board-"));
        let flag = if board {
            "--uboot-config"
        } else {
            "--qemu-config"
        };
        let out = s.run(&["check", flag, f.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", f.display());
        // The only finding allowed is the true one about an explicit `fail_regex = []` (a board
        // file that relies on U-Boot's own checks): nothing unknown, nothing else.
        let findings: Vec<&str> = stdout
            .lines()
            .filter(|l| {
                !l.contains("no fail patterns: a kernel panic on the console fails nothing")
            })
            .collect();
        assert!(
            findings == ["ok: no findings"] || findings.is_empty(),
            "{}: {stdout}{stderr}",
            f.display()
        );
        assert!(!stderr.contains("warning"), "{}: {stderr}", f.display());
    }
}

#[test]
fn the_new_keys_drive_the_grammar() {
    use qemu_test_action::config::QemuConfig;
    let smoke = data().join("test-suit/axvisor/normal/qemu/smoke");
    let c = QemuConfig::load(&smoke.join("qemu-aarch64.toml")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let steps: Vec<(&str, Option<&str>)> = c
        .grammar
        .steps
        .iter()
        .map(|s| (s.expect.regex.as_str(), s.send.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [("\\~ \\#", Some("pwd && echo 'guest test pass!'\n"))]
    );
    let c = QemuConfig::load(&smoke.join("qemu-x86_64-svm.toml")).unwrap();
    assert_eq!(c.grammar.timeout, Some(std::time::Duration::from_secs(600)));
    assert_eq!(c.success_regex[0].regex, "(?m)^guest linux test pass!\\s*$");
    let board =
        data().join("test-suit/axvisor/normal/board-rdk-s100/smoke/board-rdk-s100-linux.toml");
    let c = qemu_test_action::board::UbootConfig::load(&board, &data()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.board_type.unwrap().value, "RDK-S100");
    let cmds: Vec<&str> = c.uboot_cmd.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(cmds, ["run ab_select_cmd", "run avb_boot"]);
}

#[test]
fn misspelt_new_keys_get_did_you_mean() {
    let s = Scratch::new();
    // A key close to a known one is an error (exit 2), each at its own line.
    for (text_, meant) in [
        ("shell_prefx = \"~ #\"\n", "shell_prefix"),
        ("test_comands = [\"ls\"]\n", "test_commands"),
    ] {
        let f = s.write("typo.toml", text_);
        let out = s.run(&["check", "--qemu-config", f.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains(&format!("did you mean `{meant}`")),
            "{stdout}{stderr}"
        );
    }
    // A command with no prompt to type it at is an error at the command.
    let f = s.write("orphan.toml", "args = []\nshell_init_cmd = \"pwd\"\n");
    let out = s.run(&["check", "--qemu-config", f.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("orphan.toml:2:18: `shell_init_cmd` needs `shell_prefix`"),
        "{stderr}"
    );
}

/// Case ids of a `matrix --test-suit` run, with their runners.
fn matrix(s: &Scratch, extra: &[&str]) -> Vec<(String, String, serde_json::Value)> {
    let root = data().join("test-suit");
    let mut args = vec!["matrix", "--test-suit", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    m["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["case"].as_str().unwrap().to_string(),
                r["arch"].as_str().unwrap().to_string(),
                r["runner"].clone(),
            )
        })
        .collect()
}

#[test]
fn the_tree_is_discovered_and_named_as_axbuild_does() {
    let s = Scratch::new();
    let all = matrix(&s, &[]);
    let ids: Vec<&str> = all.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(
        ids,
        [
            "arceos.axtest.smoke@aarch64",
            "arceos.axtest.smoke@riscv64",
            "arceos.axtest.smoke@x86_64",
            "arceos.axtest.smoke@loongarch64",
            "axvisor.normal.smoke@aarch64",
            "axvisor.normal.smoke@riscv64",
            "axvisor.normal.smoke-svm@x86_64",
            "axvisor.normal.smoke-vmx@x86_64",
            "axvisor.normal.smoke@loongarch64",
            "axvisor.uefi.qemu-nimbos@x86_64",
            "starryos.qemu.system@aarch64",
            "starryos.qemu.system@riscv64",
            "starryos.qemu.system@x86_64",
            "starryos.qemu.system@loongarch64",
        ]
    );
    // The runners tgoskits' ci.yml names for these jobs.
    assert_eq!(
        all[6].2,
        serde_json::json!(["self-hosted", "linux", "amd", "kvm"])
    );
    assert_eq!(
        all[7].2,
        serde_json::json!(["self-hosted", "linux", "intel", "kvm"])
    );
    assert_eq!(all[4].2, serde_json::json!("ubuntu-latest"));
    // axbuild's filters: `--arch x86_64 --test-case smoke-svm`, the group, a display name.
    let one = matrix(&s, &["--arch", "x86_64", "--test-case", "smoke-svm"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, "axvisor.normal.smoke-svm@x86_64");
    let uefi = matrix(&s, &["--test-group", "uefi"]);
    assert_eq!(uefi[0].0, "axvisor.uefi.qemu-nimbos@x86_64");
    assert_eq!(uefi.len(), 1);
    // Its only tgoskits job is "Test axvisor self-hosted x86_64(vmx) UEFI" on the intel runner.
    assert_eq!(
        uefi[0].2,
        serde_json::json!(["self-hosted", "linux", "intel", "kvm"])
    );
    // A group named with its os (axbuild's `axvisor test qemu` runs `normal` by default).
    let axvisor = matrix(&s, &["--test-group", "axvisor/normal", "--arch", "aarch64"]);
    let ids: Vec<&str> = axvisor.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["axvisor.normal.smoke@aarch64"]);
    let by_display = matrix(&s, &["--test-case", "qemu-vmx/smoke-vmx"]);
    assert_eq!(by_display[0].0, "axvisor.normal.smoke-vmx@x86_64");
    // An unknown case names the ones there are.
    let root = data().join("test-suit");
    let out = s.run(&[
        "matrix",
        "--test-suit",
        root.to_str().unwrap(),
        "--test-case",
        "smoke-sev",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no test case 'smoke-sev'"), "{stderr}");
    assert!(
        stderr.contains("cases: qemu-nimbos, smoke, smoke-svm, smoke-vmx"),
        "{stderr}"
    );
    // A filter that keeps nothing says which part of it, not that the tree has no cases.
    for (args, want) in [
        (
            &["--test-group", "nrmal"][..],
            format!(
                "error: no test group 'nrmal' under {}; groups: arceos/axtest, \
                 arceos/board-orangepi-5-plus, axvisor/normal, axvisor/uefi, starryos/qemu\n  help: did you mean `normal`?",
                root.display()
            ),
        ),
        (
            &["--test-group", "uefi", "--arch", "aarch64"][..],
            format!(
                "error: no QEMU test cases for aarch64 under {} in test group uefi: its cases \
                 are for x86_64",
                root.display()
            ),
        ),
    ] {
        let out = s.run(&[&["matrix", "--test-suit", root.to_str().unwrap()], args].concat());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
}

/// `run --test-suit <vendored> --dry-run --arch ARCH --test-group normal`: its stdout (exit 0).
fn dry_run_normal(s: &Scratch, arch: &str) -> String {
    s.dry_run_suite(&data().join("test-suit"), arch, "normal")
}

/// `run --test-suit … --dry-run` from anywhere: the workspace is the tree's parent, the cargo
/// build is axbuild's (from the workspace root, the patched VM configs), the QEMU command has `${workspace}` substituted and the prompt steps are shown.
#[test]
fn dry_run_shows_each_cases_build_and_qemu_command() {
    let s = Scratch::new();
    let ws = data();
    let stdout = dry_run_normal(&s, "riscv64");
    let ws = ws.to_str().unwrap();
    let work = s.out().join("cases/axvisor.normal.smoke_riscv64");
    let work = work.to_str().unwrap();
    // The build itself is axbuild's std build (tests/axbuild_build.rs checks it per arch).
    assert!(
        stdout.contains(&format!(
            "# build: cd {ws} && WORKSPACE_FOLDER={ws} AR_riscv64gc_unknown_linux_musl="
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "AXVISOR_VM_CONFIGS={work}/vmconfigs/linux-smp1.toml AX_ARCH=riscv64"
        )),
        "{stdout}"
    );
    // The rootfs the config names under ${workspace}/tmp/axbuild/rootfs/ is shown as the run
    // gives it: the per-run copy of the image's, in the case's work dir.
    assert!(
        stdout.contains(&format!(
            "qemu-system-riscv64 -nographic -cpu rv64 -machine virt -bios default -smp 4 \
         -device virtio-blk-device,drive=disk0 \
         -drive id=disk0,if=none,format=raw,file={work}/rootfs.img -append"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "# note: -drive id=disk0 now uses the per-run rootfs copy {work}/rootfs.img. The \
             image's rootfs is copied there when the case runs (the file the config names is \
             neither read nor written); an image without one drops the drive.\n"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("tmp/axbuild/rootfs"), "{stdout}");
    assert!(stdout.contains("# image: rootfs-riscv64-alpine.img from https://raw.githubusercontent.com/rcore-os/tgosimages/"), "{stdout}");
    assert!(
        stdout.contains(
            "# step 1: send 'pwd && echo \\'guest test pass!\\'\\n' (once '\\~ \\#' matched)"
        ),
        "{stdout}"
    );
    assert!(!ws.is_empty() && !std::path::Path::new(ws).join("tmp").exists());
}

/// The x86_64 svm/vmx cases need KVM with that extension: no host has both, so at least one
/// is skipped, each with the reason naming its own extension.
#[test]
fn x86_svm_and_vmx_cases_skip_with_their_own_reason() {
    let s = Scratch::new();
    let stdout = dry_run_normal(&s, "x86_64");
    let mut skipped = 0;
    for (variant, other) in [("svm", "vmx"), ("vmx", "svm")] {
        let section = stdout
            .split("# case: ")
            .find(|c| c.starts_with(&format!("axvisor.normal.smoke-{variant}@x86_64")))
            .unwrap_or_else(|| panic!("no {variant} case: {stdout}"));
        if let Some(line) = section.lines().find(|l| l.starts_with("# skipped: ")) {
            skipped += 1;
            assert!(
                line.contains(&format!("the case requires {variant}")),
                "{line}"
            );
            assert!(!line.contains(&format!("requires {other}")), "{line}");
        }
    }
    assert!(skipped >= 1, "{stdout}");
}

/// The uefi group's case names a VM config axbuild generates under tmp/ (tgoskits' own CI job
/// for it runs a script first): not there, the case is skipped with that reason, before
/// anything is fetched or built, and the whole tree's run is not stopped by it (exit 0).
#[test]
fn a_case_whose_generated_vm_config_is_missing_is_skipped_saying_so() {
    let s = Scratch::new();
    let root = data().join("test-suit");
    let out = s.run(&[
        "run",
        "--test-suit",
        root.to_str().unwrap(),
        "--test-group",
        "uefi",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let case = &s.results()["cases"][0];
    assert_eq!(case["name"], "axvisor.uefi.qemu-nimbos@x86_64", "{case}");
    assert_eq!(case["verdict"]["outcome"], "skipped", "{case}");
    let build = root.join("axvisor/uefi/qemu-nimbos/build-x86_64-unknown-none.toml");
    let reason = case["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "the VM config os/axvisor/tmp/vmconfigs/nimbos-x86_64-qemu-uefi-smp1.generated.toml \
             ({}:7:15) is one tgoskits' axbuild generates under tmp/ before it builds, and it is \
             not there",
            build.display()
        )),
        "{reason}"
    );
    assert!(case["stages"].as_array().unwrap().is_empty(), "{case}");
}

/// The uefi case's QEMU config says `-accel kvm -cpu host` but not which extension; tgoskits runs
/// it only as "x86_64(vmx) UEFI" on its intel KVM runner, so it requires `kvm` and `vmx`: once
/// its generated VM config is there, a host without them skips it for that reason (naming vmx,
/// never svm), a host with them plans it.
#[test]
fn the_uefi_case_requires_kvm_and_vmx_as_tgoskits_runs_it() {
    let s = Scratch::new();
    let ws = s.path().join("ws");
    let root = data();
    for rel in [
        "Cargo.toml",
        "os/axvisor/Cargo.toml",
        "test-suit/axvisor/uefi/qemu-nimbos/build-x86_64-unknown-none.toml",
        "test-suit/axvisor/uefi/qemu-nimbos/qemu-x86_64.toml",
    ] {
        let to = ws.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(rel), to).unwrap();
    }
    let generated = ws.join("os/axvisor/tmp/vmconfigs/nimbos-x86_64-qemu-uefi-smp1.generated.toml");
    std::fs::create_dir_all(generated.parent().unwrap()).unwrap();
    std::fs::write(&generated, "").unwrap();
    let out = s.run(&[
        "run",
        "--test-suit",
        ws.join("test-suit").to_str().unwrap(),
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(!stdout.contains("generates under tmp/"), "{stdout}{stderr}");
    let vmx = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" vmx"));
    match stdout.lines().find(|l| l.starts_with("# skipped: ")) {
        Some(line) => {
            // (A VT-x host may still lack the UEFI firmware.)
            assert!(vmx || line.contains("the case requires vmx"), "{line}");
            assert!(!line.contains("svm"), "{line}");
        }
        // Only a host whose CPU has VT-x can run it.
        None => assert!(vmx, "{stdout}"),
    }
}

#[test]
fn every_build_file_loads_in_the_axbuild_shape() {
    use qemu_test_action::build::board::BoardConfig;
    let files: Vec<PathBuf> = tomls(&data().join("test-suit"))
        .into_iter()
        .filter(|p| is_build_file(p))
        .collect();
    assert_eq!(files.len(), 22, "{files:?}");
    for f in &files {
        let b = BoardConfig::load(f).unwrap();
        assert!(
            b.axbuild && b.warnings.is_empty(),
            "{}: {:?}",
            f.display(),
            b.warnings
        );
        // ArceOS' board and sg2002 builds name their package, the others none.
        let package = b.package.as_ref().map(|p| p.name.as_str());
        let named = match f.parent().unwrap().file_name().unwrap().to_str().unwrap() {
            "board-orangepi-5-plus" if f.to_str().unwrap().contains("/arceos/") => {
                Some("arceos-helloworld")
            }
            "sg2002-usb-msc" => Some("arceos-axtest-sg2002-usb-msc"),
            _ => None,
        };
        assert_eq!(package, named, "{}", f.display());
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(&format!("build-{}", b.target)),
            "{name}: {}",
            b.target
        );
    }
    // The workspace's own board configs are of the same shape.
    for f in tomls(&data().join("os/axvisor/configs/board")) {
        let b = BoardConfig::load(&f).unwrap();
        assert!(
            b.axbuild && b.warnings.is_empty(),
            "{}: {:?}",
            f.display(),
            b.warnings
        );
    }
    let asus =
        data().join("test-suit/axvisor/normal/board-asus-nuc15crh/build-x86_64-unknown-none.toml");
    let b = BoardConfig::load(&asus).unwrap();
    let env: Vec<(&str, &str)> = b
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("AX_IP", "10.0.2.15"),
            ("AX_GW", "10.0.2.2"),
            ("RDRIVE_ACPI_LOAD_AML", "0")
        ]
    );
    let la =
        data().join("test-suit/axvisor/normal/qemu/build-loongarch64-unknown-none-softfloat.toml");
    let b = BoardConfig::load(&la).unwrap();
    assert_eq!(b.env[0].0, "KERNEL_BUILTIN_CMDLINE");
    assert_eq!((b.max_cpu_num, b.features.len()), (Some(1), 2));
}

/// `[host_http_server]` as axbuild writes it is known; a bind beyond loopback is refused with
/// the fix, unless the config says `allow_non_loopback = true`.
#[test]
fn host_http_server_keys_and_the_loopback_rule() {
    let s = Scratch::new();
    let ok = s.write(
        "ok.toml",
        "args = []\nfail_regex = [\"panic\"]\n[host_http_server]\nbind = \"127.0.0.1\"\nport = 18281\nbody = \"fixture\\n\"\n",
    );
    let out = s.run(&["check", "--qemu-config", ok.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "ok: no findings");
    let wide = s.write(
        "wide.toml",
        "[host_http_server]\nbind = \"0.0.0.0\"\nport = 18281\n",
    );
    let out = s.run(&["check", "--qemu-config", wide.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wide.toml:2:8: `bind = \"0.0.0.0\"` would serve the host HTTP server beyond this machine"), "{stderr}");
    assert!(stderr.contains("allow_non_loopback = true"), "{stderr}");
}

/// StarryOS' system case names two images under `${workspace}/tmp/axbuild/rootfs/`: alpine (its
/// rootfs, on NVMe) and busybox (on USB, `snapshot=on`). Both are fetched from tgosimages and
/// each drive gets its own image's per-run copy — pointing both at one copy booted the wrong
/// disk and QEMU refused the second ("write" lock).
#[test]
fn each_image_a_config_names_is_fetched_for_its_own_drive() {
    let s = Scratch::new();
    let root = data().join("test-suit");
    let out = s.run(&[
        "run",
        "--test-suit",
        root.to_str().unwrap(),
        "--dry-run",
        "--arch",
        "riscv64",
        "--test-group",
        "starryos/qemu",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let work = s.out().join("cases/starryos.qemu.system_riscv64");
    for want in [
        format!(
            "-drive id=nvm,if=none,format=raw,file={}/rootfs.img ",
            work.display()
        ),
        format!(
            "-drive id=usbdisk,if=none,format=raw,snapshot=on,file={}/rootfs-riscv64-busybox.img ",
            work.display()
        ),
        "# image: rootfs-riscv64-alpine.img from https://raw.githubusercontent.com/rcore-os/tgosimages/".to_string(),
        "# image: rootfs-riscv64-busybox.img from https://raw.githubusercontent.com/rcore-os/tgosimages/".to_string(),
    ] {
        assert!(stdout.contains(&want), "{want}\n{stdout}");
    }
    assert!(!stdout.contains("tmp/axbuild/rootfs"), "{stdout}");
}
