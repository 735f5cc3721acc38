//! A fake QEMU: a shell script first on PATH, for the emulator misbehaving in ways the real one
//! cannot be made to.

use std::path::PathBuf;

use super::scratch::Scratch;

impl Scratch {
    /// Puts a fake `qemu-system-aarch64` first on the PATH of this scratch dir's later commands
    /// (`cmd`, `run`, `run_baremetal`, …): it answers `--version` as QEMU 10.0.2 does and
    /// otherwise runs the shell `body`.
    pub fn fake_qemu(&mut self, body: &str) {
        let bin = script(
            self,
            "qemu-system-aarch64",
            &format!(
                "case \"$1\" in --version|-version) echo 'QEMU emulator version 10.0.2'; exit 0;; esac\n\
                 {body}"
            ),
        );
        self.path_env = Some(format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ));
    }
}

/// Writes the executable shell script `<scratch>/bin/<name>` running `body`; returns that
/// directory.
pub fn script(s: &Scratch, name: &str, body: &str) -> PathBuf {
    let bin = s.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(
        &path,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    bin
}
