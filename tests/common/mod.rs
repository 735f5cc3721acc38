//! Helpers shared by the end-to-end tests: run the real `qemu-test` binary in a scratch
//! directory, read its results, and prove no QEMU survived it.
#![allow(dead_code)]

pub mod fixtures;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory that is the cwd of the tool under test; everything the tool writes must
/// land inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("qtest-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("qemu-test-out")
    }

    /// Writes a file into the scratch dir and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }

    /// `qemu-test <args>` with the scratch dir as cwd.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qemu-test"));
        c.args(args)
            .current_dir(self.path())
            .env_remove("WORKSPACE_FOLDER");
        c.env_remove("GITHUB_ACTIONS");
        c
    }

    /// `qemu-test <args>` as a step of GitHub Actions runs it: the step summary goes to
    /// `<scratch>/summary.md`, the step outputs to `<scratch>/outputs.txt`.
    pub fn actions_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(args);
        c.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", self.path().join("summary.md"))
            .env("GITHUB_OUTPUT", self.path().join("outputs.txt"));
        c
    }

    /// Runs `qemu-test <args>` to completion and checks no QEMU from this scratch dir is left.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("spawn qemu-test");
        assert_no_qemu_left(self.path());
        out
    }

    /// Boots the aarch64 bare-metal fixture `variant` with the QEMU config text `config` and
    /// the `extra` flags (a 30 s deadline unless they give one).
    pub fn run_baremetal(&self, variant: &str, config: &str, extra: &[&str]) -> Output {
        let cfg = self.write("qemu.toml", config);
        let kernel = fixtures::fixture(&format!("aarch64-baremetal/{variant}.elf"));
        let mut args = vec![
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ];
        if !extra.contains(&"--timeout") {
            args.extend(["--timeout", "30s"]);
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Boots Debian's arm64 kernel of the fixtures with the QEMU config file `cfg` (which names
    /// its initramfs and disks) and the `extra` flags.
    pub fn run_arm64_linux(&self, cfg: &Path, extra: &[&str]) -> Output {
        let kernel = fixtures::fixture("arm64-linux/kernel");
        let args = [
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--arch",
            "aarch64",
            "--qemu-config",
            cfg.to_str().unwrap(),
        ];
        self.run(&[&args[..], extra].concat())
    }

    /// The parsed `results.json` of the default out dir.
    pub fn results(&self) -> serde_json::Value {
        let p = self.out().join("results.json");
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).expect("results.json is JSON")
    }

    /// Every path (relative) under the scratch dir, sorted.
    pub fn tree(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk(self.path(), self.path(), &mut v);
        v.sort();
        v
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        out.push(
            p.strip_prefix(root)
                .expect("under root")
                .display()
                .to_string(),
        );
        if p.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Panics if any process whose command line mentions `marker` is alive (zombies excluded).
pub fn assert_no_qemu_left(marker: &Path) {
    let left = processes_mentioning(&marker.to_string_lossy());
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// (pid, cmdline) of live, non-zombie processes whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit(") ")
            .next()
            .is_some_and(|s| s.starts_with('Z'));
        if cmd.contains(needle) && !zombie && !cmd.contains("cargo") {
            found.push((pid, cmd));
        }
    }
    found
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The QEMU config used for the aarch64 bare-metal guests (AxVisor's machine, small memory).
pub const BAREMETAL_CONFIG: &str = r#"
args = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt,virtualization=on,gic-version=3", "-m", "128M"]
success_regex = ["Hello, world!", "usertests passed!"]
fail_regex = ["panicked at"]
to_bin = false
uefi = false
"#;

/// Only the machine of [`BAREMETAL_CONFIG`] (no patterns), for tests that add their own keys.
pub const BAREMETAL_MACHINE: &str = r#"args = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt,virtualization=on,gic-version=3", "-m", "128M"]
"#;

/// Boot-time baselines: the `prompt` guest (`aarch64-baremetal/prompt`) waits at `>> ` until
/// `usertests` is typed, then prints `usertests passed!` and powers off. Typed at the default
/// pace the milestone `usertests done` comes a few ms after the prompt; with [`TYPED_SLOWLY`]
/// it cannot come before the last of the 10 bytes arrives, 9 × 400 ms = 3.6 s after the first.
/// So the slowdown is the guest waiting for our input — deterministic, and no test sleeps.
pub const TYPED_USERTESTS: &str = r#"success_regex = ["usertests passed!"]
[[steps]]
expect = ">> "
send = "usertests\n"
[[milestones]]
name = "prompt"
pattern = ">> "
[[milestones]]
name = "usertests done"
pattern = "usertests passed!"
"#;

/// Put before [`TYPED_USERTESTS`]: one byte at a time, 400 ms apart.
pub const TYPED_SLOWLY: &str = "send_chunk = 1\nsend_delay = \"400ms\"\n";

/// Writes an executable `qemu-system-aarch64` running `body` into `<scratch>/bin`; returns a
/// PATH with that directory first.
pub fn fake_qemu(s: &Scratch, body: &str) -> String {
    let bin = s.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("qemu-system-aarch64");
    let text = format!(
        "#!/bin/sh\n\
         case \"$1\" in --version|-version) echo 'QEMU emulator version 10.0.2'; exit 0;; esac\n\
         {body}\n"
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(
        &script,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
