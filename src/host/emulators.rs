//! Which `qemu-system-*` are on `PATH` and their versions. All `--version` runs start at once
//! and share one deadline; a binary that does not answer in time is killed and reaped.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::arch::Arch;

use super::model::QemuBinary;

/// Looks for every known architecture's emulator on `path` (a `PATH`-style list).
pub fn find_all(path: &OsStr, timeout: Duration) -> Vec<QemuBinary> {
    let mut found: Vec<QemuBinary> = Arch::ALL
        .iter()
        .map(|&arch| QemuBinary {
            arch,
            binary: arch.qemu_binary(),
            package: arch.debian_package().to_string(),
            path: which(path, &arch.qemu_binary()),
            version: None,
            version_line: None,
            error: None,
        })
        .collect();
    let targets: Vec<(usize, PathBuf)> = found
        .iter()
        .enumerate()
        .filter_map(|(i, q)| q.path.clone().map(|p| (i, p)))
        .collect();
    for (i, answer) in versions(&targets, timeout) {
        match answer {
            Ok(line) => {
                found[i].version = parse_version(&line);
                found[i].version_line = Some(line);
            }
            Err(err) => found[i].error = Some(err),
        }
    }
    found
}

/// The first executable file called `name` in the `PATH`-style list.
pub fn which(path: &OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `<binary> --version` for every target concurrently; answers keyed by target index.
fn versions(
    targets: &[(usize, PathBuf)],
    timeout: Duration,
) -> Vec<(usize, Result<String, String>)> {
    let deadline = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel();
    let mut children: Vec<(usize, Child)> = Vec::new();
    let mut answers = Vec::new();
    for (i, path) in targets {
        match spawn_version(path) {
            Ok(mut child) => {
                let stdout = child.stdout.take();
                let tx = tx.clone();
                let i = *i;
                std::thread::spawn(move || {
                    let mut text = String::new();
                    if let Some(out) = stdout {
                        let _ = out.take(4096).read_to_string(&mut text);
                    }
                    let _ = tx.send((i, text));
                });
                children.push((i, child));
            }
            Err(err) => answers.push((*i, Err(format!("cannot run {}: {err}", path.display())))),
        }
    }
    drop(tx);
    let mut outputs = std::collections::HashMap::new();
    while outputs.len() < children.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, text)) => {
                outputs.insert(i, text);
            }
            Err(_) => break,
        }
    }
    for (i, mut child) in children {
        answers.push((i, finish(&mut child, outputs.remove(&i), timeout)));
    }
    answers
}

fn spawn_version(path: &Path) -> std::io::Result<Child> {
    Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

/// Reaps the child (killing it first when it never answered) and judges its output.
fn finish(child: &mut Child, output: Option<String>, timeout: Duration) -> Result<String, String> {
    let Some(text) = output else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "no answer to --version within {} ms",
            timeout.as_millis()
        ));
    };
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for --version: {e}"))?;
    let first = text.lines().next().unwrap_or("").trim().to_string();
    if !status.success() {
        return Err(format!("--version failed ({status}): {first}"));
    }
    if first.is_empty() {
        return Err("--version printed nothing".to_string());
    }
    Ok(first)
}

/// `QEMU emulator version 10.0.2 (Debian …)` → `10.0.2`.
pub fn parse_version(line: &str) -> Option<String> {
    let rest = line.split("version").nth(1)?;
    let number = rest.split_whitespace().next()?;
    number
        .chars()
        .next()?
        .is_ascii_digit()
        .then(|| number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn versions_are_parsed_from_the_first_line() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)")
                .as_deref(),
            Some("10.0.2")
        );
        assert_eq!(
            parse_version("QEMU emulator version 7.2.19").as_deref(),
            Some("7.2.19")
        );
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn finds_answers_times_out_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "qemu-system-x86_64",
            "echo 'QEMU emulator version 9.1.0'",
        );
        script(dir.path(), "qemu-system-aarch64", "exec sleep 30");
        script(dir.path(), "qemu-system-riscv64", "echo broken >&2; exit 1");
        std::fs::write(dir.path().join("qemu-system-arm"), "not executable").unwrap();
        let started = Instant::now();
        let found = find_all(dir.path().as_os_str(), Duration::from_millis(500));
        let get = |arch| found.iter().find(|q| q.arch == arch).unwrap();
        assert_eq!(get(Arch::X86_64).version.as_deref(), Some("9.1.0"));
        assert!(
            get(Arch::Aarch64)
                .error
                .as_deref()
                .unwrap()
                .contains("no answer")
        );
        assert!(
            get(Arch::Riscv64)
                .error
                .as_deref()
                .unwrap()
                .contains("failed")
        );
        assert_eq!(
            get(Arch::Arm).path,
            None,
            "non-executable files are not emulators"
        );
        assert_eq!(get(Arch::Loongarch64).path, None);
        println!("probe of fake emulators took {:?}", started.elapsed());
    }
}
