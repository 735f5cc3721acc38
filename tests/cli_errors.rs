//! Bad input: a clear message naming the file and place, the documented exit code, and nothing
//! written at all (the out dir is not even created).

pub mod common;

use common::fixtures::fixture;
use common::{BAREMETAL_CONFIG, Scratch, text};

/// Runs `qemu-test run` with `args`, expects `code`, and returns stderr; asserts that only the
/// files the test itself created exist afterwards.
fn expect_error(s: &Scratch, args: &[&str], code: i32) -> String {
    let before = s.tree();
    let out = s.run(args);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(s.tree(), before, "bad input wrote files");
    stderr
}

fn hello() -> String {
    fixture("aarch64-baremetal/hello.elf").display().to_string()
}

#[test]
fn missing_kernel_is_a_usage_error() {
    let s = Scratch::new();
    let cfg = s.write("q.toml", BAREMETAL_CONFIG);
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            "nope.elf",
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("nope.elf"), "{e}");
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let s = Scratch::new();
    let e = expect_error(
        &s,
        &["run", "--kernel", &hello(), "--qemu-config", "missing.toml"],
        2,
    );
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let s = Scratch::new();
    let cfg = s.write(
        "bad.toml",
        "args = [\"-nographic\"]\nsuccess_regex = [\"a\",\n",
    );
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("bad.toml:"), "{e}");
    assert!(
        e.contains(":2:") || e.contains(":3:"),
        "no line number: {e}"
    );
}

#[test]
fn wrong_value_type_names_the_key() {
    let s = Scratch::new();
    let cfg = s.write("types.toml", "args = [\"-m\", 128]\n");
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("types.toml:1:"), "{e}");
    assert!(e.contains("args"), "{e}");
}

#[test]
fn invalid_regex_names_the_pattern_and_explains_look_around() {
    let s = Scratch::new();
    let cfg = s.write("re.toml", "success_regex = [\"ok(?=!)\"]\n");
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("re.toml:1:"), "{e}");
    assert!(e.contains("ok(?=!)"), "{e}");
    assert!(e.contains("look-around"), "{e}");
    let e = expect_error(
        &s,
        &["run", "--kernel", &hello(), "--fail-regex", "(unclosed"],
        2,
    );
    assert!(e.contains("(unclosed"), "{e}");
}

#[test]
fn unset_env_variable_is_named() {
    let s = Scratch::new();
    let cfg = s.write(
        "env.toml",
        "args = [\"-drive\", \"file=${env:QT_SURELY_UNSET_VAR}\"]\n",
    );
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("QT_SURELY_UNSET_VAR"), "{e}");
    assert!(e.contains("env.toml:1:"), "{e}");
}

#[test]
fn elf_of_an_unknown_machine_asks_for_arch() {
    let s = Scratch::new();
    // A minimal ELF64 header for e_machine 2 (SPARC), which we do not run.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1;
    elf[16] = 2; // ET_EXEC
    elf[18] = 2; // e_machine
    std::fs::write(s.path().join("sparc.elf"), &elf).unwrap();
    let e = expect_error(&s, &["run", "--kernel", "sparc.elf"], 2);
    assert!(e.contains("--arch"), "{e}");
}

#[test]
fn raw_kernel_without_arch_asks_for_arch() {
    let s = Scratch::new();
    std::fs::write(s.path().join("Image"), [0x14u8, 0, 0, 0x94, 0xff, 0x0f]).unwrap();
    let e = expect_error(&s, &["run", "--kernel", "Image"], 2);
    assert!(e.contains("--arch"), "{e}");
}

#[test]
fn missing_qemu_binary_names_the_debian_package() {
    let s = Scratch::new();
    let cfg = s.write("q.toml", BAREMETAL_CONFIG);
    let empty = tempfile::tempdir().unwrap();
    let out = s
        .cmd(&[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("qemu-system-aarch64 not found"), "{stderr}");
    assert!(
        stderr.contains("apt-get install qemu-system-arm"),
        "{stderr}"
    );
    // An infrastructure error still leaves a report in the out dir, and nothing elsewhere.
    let r = s.results();
    assert_eq!(r["cases"][0]["verdict"]["outcome"], "error");
    let stray: Vec<String> = s
        .tree()
        .into_iter()
        .filter(|p| !p.starts_with("qemu-test-out") && p != "q.toml")
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn bad_duration_and_unknown_flag_are_usage_errors() {
    let s = Scratch::new();
    let out = s.run(&["run", "--kernel", &hello(), "--timeout", "5x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("invalid duration '5x'"));
    let out = s.run(&["run", "--kernal", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_exit_codes() {
    let s = Scratch::new();
    let out = s.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    for code in ["130", "143", "infrastructure"] {
        assert!(stdout.contains(code), "{stdout}");
    }
}

#[test]
fn a_missing_rootfs_or_initrd_is_named_at_its_config_line_before_anything_runs() {
    let s = Scratch::new();
    let cfg = s.write(
        "disk.toml",
        "args = [\"-nographic\",\n  \"-drive\", \"id=disk0,if=none,format=raw,file=${workspaceFolder}/tmp/rootfs.img\"]\n",
    );
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("disk.toml:2:"), "{e}");
    assert!(e.contains("tmp/rootfs.img, which does not exist"), "{e}");
    assert!(e.contains("--image"), "{e}");
    let cfg = s.write("initrd.toml", "args = [\"-initrd\", \"missing.cpio.gz\"]\n");
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("initrd.toml:1:"), "{e}");
}

/// `--retries`, `INPUT_RETRIES` and the `retries` key share one range, 0..=10.
#[test]
fn retries_have_one_range_everywhere() {
    let s = Scratch::new();
    let cfg = s.write("q.toml", BAREMETAL_CONFIG);
    let base = [
        "run",
        "--kernel",
        &hello(),
        "--qemu-config",
        cfg.to_str().unwrap(),
    ];
    let mut flag = base.to_vec();
    flag.extend(["--retries", "11"]);
    let e = expect_error(&s, &flag, 2);
    assert!(e.contains("11 is not in 0..=10"), "{e}");

    let before = s.tree();
    let out = s.cmd(&base).env("INPUT_RETRIES", "11").output().unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("input `retries` (INPUT_RETRIES)") && e.contains("11 is not in 0..=10"),
        "{e}"
    );
    assert_eq!(s.tree(), before);

    let cfg11 = s.write("q11.toml", &format!("{BAREMETAL_CONFIG}retries = 11\n"));
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg11.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("q11.toml:") && e.contains("retries"), "{e}");
}

/// Names become file names: a too-long `--name` or suite case name is refused before anything
/// runs (the suite one at its line).
#[test]
fn a_too_long_case_name_is_a_usage_error() {
    let s = Scratch::new();
    let cfg = s.write("q.toml", BAREMETAL_CONFIG);
    let long = "n".repeat(101);
    let e = expect_error(
        &s,
        &[
            "run",
            "--kernel",
            &hello(),
            "--qemu-config",
            cfg.to_str().unwrap(),
            "--name",
            &long,
        ],
        2,
    );
    assert!(
        e.contains("is 101 characters long; at most 100 are allowed"),
        "{e}"
    );
    s.write(
        "suite.toml",
        &format!("[defaults]\nqemu-config = \"q.toml\"\n\n[[case]]\nname = \"{long}\"\nkernel = \"{}\"\n", hello()),
    );
    let e = expect_error(&s, &["run", "--suite", "suite.toml"], 2);
    assert!(
        e.contains("suite.toml:4:1") || e.contains("suite.toml:5:"),
        "{e}"
    );
    assert!(e.contains("at most 100 are allowed"), "{e}");
}
