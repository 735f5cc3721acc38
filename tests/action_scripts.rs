//! The composite action's steps on their own: what `qemu-test action prepare` resolves (paths,
//! upload list, artifact names, guest arches from real ELF files and AxVisor's board configs),
//! the image cache key switch (`qemu-test action image-cache`), what setup-host.sh says when QEMU
//! is missing and may not be installed and that it takes the prepare step's checked outputs, the
//! source fingerprint, and lib.sh's output and escaping rules.

#[path = "action_runner/env_file.rs"]
mod env_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use env_file::parse_env_file;
use tempfile::TempDir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs scripts/action/<script> with `env` (on a cleared environment) in `wd`.
fn run_script(
    script: &str,
    args: &[&str],
    wd: &Path,
    env: &[(&str, &str)],
) -> (Output, BTreeMap<String, String>) {
    let outputs = tempfile::NamedTempFile::new().expect("output file");
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(repo().join("scripts/action").join(script))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", outputs.path())
        .envs(env.iter().copied())
        .current_dir(wd)
        .output()
        .expect("run script");
    let text = std::fs::read_to_string(outputs.path()).unwrap_or_default();
    (out, parse_env_file(&text))
}

/// Runs `qemu-test action <args>` like a step: cleared environment, GITHUB_ACTIONS, GITHUB_OUTPUT.
fn run_step(args: &[&str], wd: &Path, env: &[(&str, &str)]) -> (Output, BTreeMap<String, String>) {
    let outputs = tempfile::NamedTempFile::new().expect("output file");
    let out = Command::new(env!("CARGO_BIN_EXE_qemu-test"))
        .arg("action")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", wd)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", outputs.path())
        .envs(env.iter().copied())
        .current_dir(wd)
        .output()
        .expect("run qemu-test action");
    let text = std::fs::read_to_string(outputs.path()).unwrap_or_default();
    (out, parse_env_file(&text))
}

fn log(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn prepare(wd: &Path, env: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = vec![("GITHUB_JOB", "boot"), ("GITHUB_RUN_ATTEMPT", "3")];
    all.extend_from_slice(env);
    let (out, outputs) = run_step(&["prepare"], wd, &all);
    assert!(
        out.status.success(),
        "action prepare failed:\n{}",
        log(&out)
    );
    outputs
}

fn fixture(rel: &str) -> PathBuf {
    let dir = std::env::var_os("QEMU_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/fixtures"));
    let path = dir.join(rel);
    assert!(
        path.is_file(),
        "missing fixture {}: run fixtures/build.sh",
        path.display()
    );
    path
}

#[test]
fn prepare_resolves_paths_from_the_working_directory() {
    let wd = TempDir::new().expect("tempdir");
    let o = prepare(wd.path(), &[]);
    let out_dir = wd.path().join("qemu-test-out");
    assert_eq!(o["command"], "run");
    assert_eq!(
        Path::new(&o["log-dir"]),
        out_dir,
        "the binary's default log dir"
    );
    assert_eq!(o["junit"], "", "JUnit only when asked");
    let uploads = |o: &BTreeMap<String, String>| -> Vec<PathBuf> {
        o["upload-paths"].lines().map(PathBuf::from).collect()
    };
    assert_eq!(
        uploads(&o),
        [
            out_dir.join("*.log"),
            out_dir.join("results.json"),
            out_dir.join("summary.md")
        ],
        "console logs, results and the summary, never the whole dir (cargo target, rootfs copies)"
    );

    let o = prepare(
        wd.path(),
        &[("INPUT_LOG_DIR", "logs"), ("INPUT_JUNIT", "true")],
    );
    let logs = wd.path().join("logs");
    assert_eq!(Path::new(&o["junit"]), logs.join("junit.xml"));
    assert_eq!(
        uploads(&o),
        [
            logs.join("*.log"),
            logs.join("results.json"),
            logs.join("summary.md"),
            logs.join("junit.xml")
        ]
    );

    let o = prepare(
        wd.path(),
        &[("INPUT_LOG_DIR", "logs"), ("INPUT_JUNIT", "reports/j.xml")],
    );
    assert_eq!(uploads(&o)[3], wd.path().join("reports/j.xml"));
    // `junit: yes` once wrote a file named `yes` while the upload looked for junit.xml.
    let (out, _) = run_step(&["prepare"], wd.path(), &[("INPUT_JUNIT", "yes")]);
    assert_eq!(out.status.code(), Some(2), "{}", log(&out));
    assert!(
        log(&out).contains("::error") && log(&out).contains("neither a boolean nor a file path"),
        "{}",
        log(&out)
    );
    assert!(
        wd.path().read_dir().expect("read wd").next().is_none(),
        "prepare creates nothing"
    );
}

#[test]
fn prepare_names_artifacts_uniquely_and_safely() {
    let wd = TempDir::new().expect("tempdir");
    let env = [("INPUT_CASE", "arceos-aarch64, linux-aarch64\nnimbos/x86:64")];
    let a = prepare(wd.path(), &env)["artifact-name"].clone();
    let b = prepare(wd.path(), &env)["artifact-name"].clone();
    let prefix = "qemu-test-arceos-aarch64+linux-aarch64+nimbos_x86_64-boot-3-";
    assert!(a.starts_with(prefix), "{a}");
    assert_ne!(a, b, "two invocations in one job must not collide");
    assert!(
        !a.contains(['/', ':', '"', '<', '>', '|', '*', '?', '\\', ' ']),
        "{a}"
    );

    let quoted = prepare(wd.path(), &[("INPUT_CASE", "it's \"x\"")])["artifact-name"].clone();
    assert!(quoted.starts_with("qemu-test-it_s__x-boot-3-"), "{quoted}");

    let o = prepare(wd.path(), &[("INPUT_UPLOAD_LOGS", "false")]);
    assert_eq!(o["artifact-name"], "");
    let (out, _) = run_step(&["prepare"], wd.path(), &[("INPUT_UPLOAD_LOGS", "no")]);
    assert_eq!(out.status.code(), Some(2), "getBooleanInput refuses 'no'");
    assert!(
        log(&out).contains("input `upload-logs` (INPUT_UPLOAD_LOGS)")
            && log(&out).contains("'no' is not a boolean"),
        "{}",
        log(&out)
    );
    let o = prepare(wd.path(), &[("INPUT_COMMAND", "matrix")]);
    assert_eq!(o["command"], "matrix");
    assert!(
        !o.contains_key("artifact-name"),
        "matrix mode uploads nothing"
    );
}

#[test]
fn prepare_rejects_unknown_commands() {
    let wd = TempDir::new().expect("tempdir");
    let (out, _) = run_step(&["prepare"], wd.path(), &[("INPUT_COMMAND", "rm -rf")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        log(&out).contains("::error")
            && log(&out).contains("input `command` (INPUT_COMMAND): invalid value 'rm -rf'"),
        "{}",
        log(&out)
    );
}

#[test]
fn prepare_reads_the_guest_arch_from_elf_headers_and_board_configs() {
    let wd = TempDir::new().expect("tempdir");
    let hello = fixture("aarch64-baremetal/hello.elf");
    let o = prepare(
        wd.path(),
        &[("INPUT_KERNEL", hello.to_str().expect("utf-8"))],
    );
    assert_eq!(o["arches"], "aarch64");

    // This test binary is an ELF for the host.
    let me = std::env::current_exe().expect("current exe");
    let o = prepare(wd.path(), &[("INPUT_KERNEL", me.to_str().expect("utf-8"))]);
    assert_eq!(o["arches"], std::env::consts::ARCH);

    let board = wd.path().join("qemu-x86_64.toml");
    std::fs::write(
        &board,
        "cargo_args = []\nfeatures = []\ntarget = \"x86_64-unknown-none\"\nto_bin = false\nvm_configs = []\n",
    )
    .expect("write board config");
    let o = prepare(wd.path(), &[("INPUT_BUILD_CONFIG", "qemu-x86_64.toml")]);
    assert_eq!(o["arches"], "x86_64");

    let o = prepare(
        wd.path(),
        &[
            ("INPUT_ARCH", "riscv64"),
            ("INPUT_KERNEL", hello.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(o["arches"], "riscv64", "the arch input wins");
}

#[test]
fn setup_host_reports_missing_qemu_without_installing_when_told_not_to() {
    let wd = TempDir::new().expect("tempdir");
    let missing = (0..)
        .map(|n| format!("nosucharch{n}"))
        .find(|a| !Path::new(&format!("/usr/bin/qemu-system-{a}")).exists())
        .expect("a missing arch");
    let (out, _) = run_script("setup-host.sh", &["false", "tcg", &missing], wd.path(), &[]);
    let text = log(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "::warning title=qemu-test-action::qemu-system-{missing}"
        )),
        "{text}"
    );
    assert!(text.contains("accel is tcg"), "{text}");
    assert!(
        !text.contains("apt-get install"),
        "nothing installed: {text}"
    );

    let (out, _) = run_script("setup-host.sh", &["auto", "tcg", "aarch64"], wd.path(), &[]);
    assert!(
        log(&out).contains("qemu-system-aarch64: QEMU emulator version"),
        "{}",
        log(&out)
    );
}

/// The host step reads no input itself: it takes `install-qemu`, `accel` and the arches as the
/// prepare step outputs them, and refuses anything else (a broken action.yml).
#[test]
fn setup_host_takes_the_prepare_steps_checked_outputs() {
    let wd = TempDir::new().expect("tempdir");
    let inputs = [
        ("INPUT_INSTALL_QEMU", "FALSE"),
        ("INPUT_ACCEL", "TCG"),
        ("INPUT_ARCH", "arm64"),
    ];
    let o = prepare(wd.path(), &inputs);
    assert_eq!(
        (&o["install-qemu"][..], &o["accel"][..], &o["arches"][..]),
        ("false", "tcg", "aarch64")
    );
    let (out, _) = run_script(
        "setup-host.sh",
        &[&o["install-qemu"], &o["accel"], &o["arches"]],
        wd.path(),
        // what the script used to read itself: now ignored
        &[("INPUT_INSTALL_QEMU", "maybe"), ("INPUT_ACCEL", "bogus")],
    );
    assert!(out.status.success(), "{}", log(&out));
    assert!(log(&out).contains("accel is tcg"), "{}", log(&out));

    // The prepare step refuses what getBooleanInput refuses, naming the input.
    for (var, bad, input) in [
        ("INPUT_INSTALL_QEMU", "yes", "install-qemu"),
        ("INPUT_ACCEL", "fast", "accel"),
    ] {
        let (out, _) = run_step(&["prepare"], wd.path(), &[(var, bad)]);
        assert_eq!(out.status.code(), Some(2), "{}", log(&out));
        assert!(
            log(&out).contains("::error")
                && log(&out).contains(&format!("input `{input}` ({var})")),
            "{}",
            log(&out)
        );
    }
    for args in [
        &["maybe", "tcg"][..],
        &["auto", "KVM"],
        &["auto", "tcg", "aarch64;rm"],
        &["auto"],
    ] {
        let (out, _) = run_script("setup-host.sh", args, wd.path(), &[]);
        assert!(!out.status.success(), "{args:?} must fail: {}", log(&out));
        assert!(log(&out).contains("::error"), "{}", log(&out));
    }
}

#[test]
fn image_cache_key_is_empty_when_caching_is_off_or_nothing_is_cached() {
    let wd = TempDir::new().expect("tempdir");
    let cache = wd.path().join("cache");
    let cache_s = cache.to_str().expect("utf-8");
    let base = [("QEMU_TEST_CACHE", cache_s)];
    let mut off = base.to_vec();
    off.extend([
        ("INPUT_CACHE_IMAGES", "false"),
        ("INPUT_IMAGE", "qemu_aarch64_arceos"),
    ]);
    let (out, o) = run_step(&["image-cache", "key"], wd.path(), &off);
    assert!(out.status.success(), "{}", log(&out));
    assert_eq!(o["key"], "");
    assert_eq!(o["dir"], cache_s);

    let (out, o) = run_step(&["image-cache", "key"], wd.path(), &base);
    assert!(out.status.success(), "{}", log(&out));
    assert_eq!(o["key"], "", "no suite and no image: nothing to cache");

    let mut broken = base.to_vec();
    // a registry that cannot be read (no network here, and none needed for this rule)
    broken.extend([
        ("INPUT_IMAGE", "qemu_aarch64_arceos"),
        ("INPUT_REGISTRY", "/nonexistent/registry.toml"),
    ]);
    let (out, o) = run_step(&["image-cache", "key"], wd.path(), &broken);
    assert!(
        out.status.success(),
        "a failing key command only disables the cache: {}",
        log(&out)
    );
    assert_eq!(o["key"], "");

    let (_, o) = run_step(&["image-cache", "filled"], wd.path(), &base);
    assert_eq!(o["filled"], "false");
    std::fs::create_dir_all(cache.join("sha256")).expect("mkdir cache");
    let (_, o) = run_step(&["image-cache", "filled"], wd.path(), &base);
    assert_eq!(o["filled"], "true");
}

/// The image cache key is made of the images the run will fetch: the suite's cases layered as
/// the run layers them (an `image` input replaces every case's image, `case` selects), the same
/// set `qemu-test images key` prints.
#[test]
fn image_cache_key_layers_the_cases_as_the_run_does() {
    let wd = TempDir::new().expect("tempdir");
    let cache = wd.path().join("cache");
    let cache_s = cache.to_str().expect("utf-8");
    let sums = ["a".repeat(64), "b".repeat(64), "c".repeat(64)];
    let registry: String = ["img-a", "img-b", "img-c"]
        .iter()
        .zip(&sums)
        .map(|(name, sum)| {
            format!(
                "[[images]]\nname = \"{name}\"\nversion = \"1\"\ndescription = \"t\"\n\
                 sha256 = \"{sum}\"\narch = \"aarch64\"\nurl = \"http://127.0.0.1:9/{name}.tar.gz\"\n\
                 released_at = \"2026-01-06T03:08:54Z\"\n\n"
            )
        })
        .collect();
    std::fs::write(wd.path().join("registry.toml"), registry).expect("write registry");
    std::fs::write(
        wd.path().join("suite.toml"),
        "[defaults]\nregistry = \"registry.toml\"\nimage = \"img-c\"\n\n\
         [[case]]\nname = \"one\"\nimage = \"img-a\"\n\n\
         [[case]]\nname = \"two\"\nimage = \"img-b\"\n\n\
         [[case]]\nname = \"three\"\n",
    )
    .expect("write suite");
    let key_of = |digests: &[&String]| {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for d in digests {
            h.update(d.as_bytes());
            h.update(b"\n");
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("qemu-test-images-{hex}")
    };
    let [a, b, c] = &sums;
    for (extra, want) in [
        (&[][..], vec![a, b, c]),
        (&[("INPUT_IMAGE", "img-c")][..], vec![c]),
        (&[("INPUT_CASE", "one")][..], vec![a]),
        (&[("INPUT_CASE", "three")][..], vec![c]),
    ] {
        let mut env = vec![("QEMU_TEST_CACHE", cache_s), ("INPUT_SUITE", "suite.toml")];
        env.extend(extra);
        let (out, o) = run_step(&["image-cache", "key"], wd.path(), &env);
        assert!(out.status.success(), "{extra:?}: {}", log(&out));
        assert_eq!(o["key"], key_of(&want), "{extra:?}: {}", log(&out));
        // `qemu-test images key` names the same images for the same case selection.
        if extra.iter().any(|(var, _)| *var == "INPUT_IMAGE") {
            continue;
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qemu-test"));
        cmd.args([
            "images",
            "key",
            "--suite",
            "suite.toml",
            "--cache-dir",
            cache_s,
        ])
        .current_dir(wd.path());
        for (_, case) in extra {
            cmd.args(["--case", case]);
        }
        let printed = cmd.output().expect("images key");
        let lines: Vec<String> = String::from_utf8_lossy(&printed.stdout)
            .lines()
            .map(String::from)
            .collect();
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(lines, want, "{extra:?}: {}", log(&printed));
    }
}

/// `image` is one image (a suite gives each case its own): several lines are an error naming
/// the input in the first step that reads it, never a lookup of a name with a newline in it.
#[test]
fn the_image_input_names_one_image() {
    let wd = TempDir::new().expect("tempdir");
    let cache = wd.path().join("cache");
    let cache = [("QEMU_TEST_CACHE", cache.to_str().expect("utf-8"))];
    let two = [("INPUT_IMAGE", "qemu_aarch64_arceos\nqemu_aarch64_linux")];
    let (out, o) = run_step(
        &["image-cache", "key"],
        wd.path(),
        &[&cache[..], &two].concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", log(&out));
    assert!(
        log(&out).contains("::error")
            && log(&out).contains("input `image` (INPUT_IMAGE)")
            && log(&out).contains("name one image as NAME or NAME:VERSION"),
        "{}",
        log(&out)
    );
    assert_eq!(o.get("key"), None, "no cache key: {o:?}");
    let (out, _) = run_step(&["run"], wd.path(), &two);
    assert_eq!(out.status.code(), Some(2), "{}", log(&out));
    assert!(log(&out).contains("input `image`"), "{}", log(&out));
}

#[test]
fn fingerprint_follows_the_sources_and_ignores_dist() {
    let dir = TempDir::new().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("src")).expect("mkdir");
    std::fs::write(d.join("Cargo.toml"), "[package]\n").expect("write");
    std::fs::write(d.join("src/main.rs"), "fn main() {}\n").expect("write");
    let print = || {
        let out = Command::new("bash")
            .arg(repo().join("scripts/action/fingerprint.sh"))
            .arg(d)
            .output()
            .expect("fingerprint.sh");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = print();
    assert_eq!(first.len(), 64);
    std::fs::create_dir_all(d.join("dist")).expect("mkdir");
    std::fs::write(d.join("dist/VERSION"), "1.0.0\n").expect("write");
    assert_eq!(print(), first, "dist/ is not a source");
    std::fs::write(d.join("src/main.rs"), "fn main() { }\n").expect("write");
    assert_ne!(print(), first, "a source change changes the fingerprint");
}

#[test]
fn outputs_use_random_heredoc_delimiters_and_annotations_are_escaped() {
    let wd = TempDir::new().expect("tempdir");
    let out_file = wd.path().join("out");
    std::fs::write(&out_file, "").expect("create");
    let script = format!(
        ". '{}'\nqt_output one 'a=b'\nqt_output many $'line 1\\nline 2'\nqt_warn $'50% done\\r\\nnext'\n",
        repo().join("scripts/action/lib.sh").display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &out_file)
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", log(&out));
    let text = std::fs::read_to_string(&out_file).expect("read outputs");
    let parsed = parse_env_file(&text);
    assert_eq!(parsed["one"], "a=b");
    assert_eq!(parsed["many"], "line 1\nline 2");
    let delim = text
        .lines()
        .find_map(|l| l.strip_prefix("many<<"))
        .expect("heredoc form for a multi-line value");
    assert!(
        delim.starts_with("ghadelimiter_") && delim.len() > 40,
        "{delim}"
    );
    assert!(
        log(&out).contains("::warning title=qemu-test-action::50%25 done%0D%0Anext"),
        "{}",
        log(&out)
    );
}
