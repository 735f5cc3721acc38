//! A fake QEMU: a shell script first on PATH, for the emulator misbehaving in ways the real one
//! cannot be made to.

use super::scratch::Scratch;

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
