//! The scratch directory the real `qemu-test` binary runs in: its commands, its results, and
//! what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::processes::assert_no_qemu_left;
use super::{fixtures, gha};

/// A scratch directory that is the cwd of the tool under test; everything the tool writes must
/// land inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    /// The PATH of the tool's commands when not the tests' own (a fake QEMU first on it).
    pub(super) path_env: Option<String>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("qtest-")
                .tempdir()
                .expect("tempdir"),
            path_env: None,
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
        // axbuild's variable, which the builds of tgoskits' files read as axbuild does.
        c.env_remove("FEATURES");
        if let Some(path) = &self.path_env {
            c.env("PATH", path);
        }
        c
    }

    /// `qemu-test <args>` as a step of GitHub Actions runs it (see [`gha::step_env`]).
    pub fn actions_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(args);
        gha::step_env(&mut c, self.path());
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
        let deadline: &[&str] = if extra.contains(&"--timeout") {
            &[]
        } else {
            &["--timeout", "30s"]
        };
        self.run_kernel(&kernel, &cfg, &[deadline, extra].concat())
    }

    /// `qemu-test run --kernel <kernel> --qemu-config <cfg> <extra>` to completion; checks no
    /// QEMU is left.
    pub fn run_kernel(&self, kernel: &Path, cfg: &Path, extra: &[&str]) -> Output {
        let args = [
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--qemu-config",
            cfg.to_str().unwrap(),
        ];
        self.run(&[&args[..], extra].concat())
    }

    /// Boots Debian's arm64 kernel of the fixtures with the QEMU config file `cfg` (which names
    /// its initramfs and disks) and the `extra` flags.
    pub fn run_arm64_linux(&self, cfg: &Path, extra: &[&str]) -> Output {
        let kernel = fixtures::fixture("arm64-linux/kernel");
        self.run_kernel(&kernel, cfg, &[&["--arch", "aarch64"], extra].concat())
    }

    /// `run --test-suit <root> --dry-run --arch ARCH --test-group GROUP`: its stdout, after
    /// checking it exited 0.
    pub fn dry_run_suite(&self, root: &Path, arch: &str, group: &str) -> String {
        let root = root.to_str().unwrap();
        let args = ["run", "--test-suit", root, "--dry-run", "--arch", arch];
        let out = self.run(&[&args[..], &["--test-group", group]].concat());
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        stdout
    }

    /// The parsed `results.json` of the default out dir.
    pub fn results(&self) -> serde_json::Value {
        let p = self.out().join("results.json");
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).expect("results.json is JSON")
    }

    /// The verdict of the first case in `results.json`.
    pub fn verdict(&self) -> serde_json::Value {
        self.results()["cases"][0]["verdict"].clone()
    }

    /// Every path (relative) under the scratch dir, sorted.
    pub fn tree(&self) -> Vec<String> {
        entries(self.path())
            .into_iter()
            .map(|(p, _)| p.display().to_string())
            .collect()
    }
}

/// Every entry under `root` (relative to it, with whether it is a directory), sorted; none when
/// `root` does not exist.
pub fn entries(root: &Path) -> Vec<(PathBuf, bool)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, bool)>) {
        let Ok(list) = std::fs::read_dir(dir) else {
            return;
        };
        for e in list.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            out.push((
                p.strip_prefix(root).expect("under root").to_path_buf(),
                is_dir,
            ));
            if is_dir {
                walk(root, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
