//! tgoskits' test-suit tree (vendored unmodified in tests/data/tgoskits): every file loads with
//! every key known, the tree is discovered and named as axbuild does, and each case plans.

mod common;

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
    assert_eq!(files.len(), 16, "{files:?}");
    for f in files {
        let out = s.run(&["check", "--qemu-config", f.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", f.display());
        assert!(
            stdout.trim_end().ends_with("ok: no findings") && !stderr.contains("warning"),
            "{}: {stdout}{stderr}",
            f.display()
        );
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
    let c = QemuConfig::load(&board).unwrap();
    assert_eq!(c.board_type.as_deref(), Some("RDK-S100"));
    assert_eq!(c.uboot_cmd, ["run ab_select_cmd", "run avb_boot"]);
}

#[test]
fn misspelt_new_keys_get_did_you_mean() {
    let s = Scratch::new();
    let f = s.write(
        "typo.toml",
        "shell_prefx = \"~ #\"\ntest_comands = [\"ls\"]\n",
    );
    let out = s.run(&["check", "--qemu-config", f.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("did you mean `shell_prefix`"), "{all}");
    assert!(all.contains("did you mean `test_commands`"), "{all}");
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
