//! Running a [`Recipe`]: the command in its own process group under a deadline, its output
//! streamed to the caller, and the result turned into the kernel's path or an error that names
//! the first compiler error.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::build::cargo::CargoMessages;
use crate::build::recipe::{Artifact, BuildCommand, GeneratedFile, Recipe};
use crate::error::Error;
use crate::qemu::process::QemuProcess;

/// How long a build gets to stop after SIGTERM before the group is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Runs the recipe and returns the kernel's path. `on_output` gets the build's output as the user
/// should see it (cargo's diagnostics rendered, JSON lines consumed), chunk by chunk.
pub async fn run_build(
    recipe: &Recipe,
    deadline: Duration,
    on_output: &mut dyn FnMut(&[u8]),
) -> Result<PathBuf, Error> {
    let Some(cmd) = &recipe.command else {
        return prebuilt(&recipe.artifact);
    };
    write_generated(&recipe.generated)?;
    let program = Path::new(&cmd.program);
    let mut process =
        QemuProcess::spawn_with_env(program, &cmd.args, &cmd.cwd, &cmd.env, &cmd.unset)
            .map_err(|e| spawn_error(cmd, &e))?;
    process.stdin.take();
    let mut watcher = Watcher::new(&recipe.artifact, &cmd.cwd);
    let outcome =
        tokio::time::timeout(deadline, stream(&mut process, &mut watcher, on_output)).await;
    match outcome {
        Ok(Ok(status)) => watcher.finish(status, cmd),
        Ok(Err(e)) => {
            let _ = process.stop(STOP_GRACE).await;
            Err(Error::infra(format!(
                "lost the output of `{}`: {e}",
                cmd.program
            )))
        }
        Err(_) => {
            let _ = process.stop(STOP_GRACE).await;
            Err(Error::infra(format!(
                "build timed out after {} s: `{}` was still running",
                deadline.as_secs(),
                cmd.program
            ))
            .help("raise the build timeout, or look in the build output above for what hangs"))
        }
    }
}

/// Writes the files the command needs (planned under the out dir), replacing older copies.
fn write_generated(files: &[GeneratedFile]) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let fail = |e: std::io::Error| {
            Error::infra(format!(
                "cannot write the build file {}: {e}",
                f.path.display()
            ))
        };
        if let Some(dir) = f.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        // As every writer into the out dir: a new file renamed into place, never a write
        // through a symlink planted at the path.
        crate::prepare::workdir::write_file(&f.path, f.contents.as_bytes())?;
        if f.executable {
            std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o755))
                .map_err(fail)?;
        }
    }
    Ok(())
}

fn prebuilt(artifact: &Artifact) -> Result<PathBuf, Error> {
    match artifact {
        Artifact::File(path) if path.is_file() => Ok(path.clone()),
        Artifact::File(path) => Err(Error::usage(format!(
            "kernel file {} does not exist",
            path.display()
        ))
        .help("check the --kernel path; relative paths are resolved from the current directory")),
        Artifact::CargoBin(bin) => Err(Error::usage(format!(
            "no build command for the cargo bin `{bin}`"
        ))),
    }
}

fn spawn_error(cmd: &BuildCommand, e: &std::io::Error) -> Error {
    let err = Error::infra(format!(
        "cannot start `{}` in {}: {e}",
        cmd.program,
        cmd.cwd.display()
    ));
    match (e.kind(), cmd.program.as_str()) {
        (std::io::ErrorKind::NotFound, "cargo") => err
            .help("install Rust with rustup (https://rustup.rs) and make sure `cargo` is on PATH"),
        (std::io::ErrorKind::NotFound, _) => {
            err.help("check that the program and the directory exist")
        }
        _ => err,
    }
}

/// Reads stdout and stderr line by line until both close, then reaps the process.
async fn stream(
    process: &mut QemuProcess,
    watcher: &mut Watcher<'_>,
    on_output: &mut dyn FnMut(&[u8]),
) -> std::io::Result<ExitStatus> {
    let mut out = process.stdout.take().map(BufReader::new);
    let mut err = process.stderr.take().map(BufReader::new);
    let (mut out_line, mut err_line) = (Vec::new(), Vec::new());
    while out.is_some() || err.is_some() {
        tokio::select! {
            more = next_line(&mut out, &mut out_line), if out.is_some() => {
                if !more? { out = None; }
                if !out_line.is_empty() { watcher.stdout_line(&out_line, on_output); }
                out_line.clear();
            }
            more = next_line(&mut err, &mut err_line), if err.is_some() => {
                if !more? { err = None; }
                if !err_line.is_empty() { watcher.stderr_line(&err_line, on_output); }
                err_line.clear();
            }
        }
    }
    process.wait().await
}

/// Reads one line into `buf` (which keeps any part read by a cancelled call); `false` at EOF.
async fn next_line<R: AsyncRead + Unpin>(
    reader: &mut Option<BufReader<R>>,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    match reader {
        Some(r) => Ok(r.read_until(b'\n', buf).await? > 0),
        None => Ok(false),
    }
}

/// Follows the output for what decides the result: cargo's messages, or plain error lines.
struct Watcher<'a> {
    artifact: &'a Artifact,
    cwd: &'a Path,
    cargo: CargoMessages,
    first_error_line: Option<String>,
    last_line: Option<String>,
}

impl<'a> Watcher<'a> {
    fn new(artifact: &'a Artifact, cwd: &'a Path) -> Self {
        Watcher {
            artifact,
            cwd,
            cargo: CargoMessages::default(),
            first_error_line: None,
            last_line: None,
        }
    }

    fn stdout_line(&mut self, line: &[u8], on_output: &mut dyn FnMut(&[u8])) {
        let Artifact::CargoBin(bin) = self.artifact else {
            return self.stderr_line(line, on_output);
        };
        if let Some(text) = self.cargo.take_line(line.trim_ascii_end(), bin, self.cwd) {
            on_output(&text);
            if !text.ends_with(b"\n") {
                on_output(b"\n");
            }
        }
    }

    fn stderr_line(&mut self, line: &[u8], on_output: &mut dyn FnMut(&[u8])) {
        on_output(line);
        let text = String::from_utf8_lossy(line).trim().to_string();
        if text.is_empty() {
            return;
        }
        if self.first_error_line.is_none() && text.to_ascii_lowercase().contains("error") {
            self.first_error_line = Some(text.clone());
        }
        self.last_line = Some(text);
    }

    fn finish(self, status: ExitStatus, cmd: &BuildCommand) -> Result<PathBuf, Error> {
        match self.artifact {
            Artifact::CargoBin(bin) => self.finish_cargo(status, bin),
            Artifact::File(path) => self.finish_command(status, cmd, path),
        }
    }

    fn finish_cargo(self, status: ExitStatus, bin: &str) -> Result<PathBuf, Error> {
        if status.success() {
            return self.cargo.executable.ok_or_else(|| {
                Error::infra(format!(
                    "cargo build succeeded but reported no executable for the bin `{bin}`"
                ))
                .help("check that the package has a bin target of that name")
            });
        }
        let help = "fix the first error; the full compiler output is in the build log";
        if let Some(first) = self.cargo.first_error {
            let place = first
                .location
                .as_ref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let e =
                Error::infra(format!("cargo build failed: {}{place}", first.message)).help(help);
            return Err(match first.location {
                Some(at) => e.at(at),
                None => e,
            });
        }
        let detail = self
            .first_error_line
            .unwrap_or_else(|| format!("cargo exited with {}", describe(status)));
        Err(Error::infra(format!("cargo build failed: {detail}")).help(help))
    }

    fn finish_command(
        self,
        status: ExitStatus,
        cmd: &BuildCommand,
        artifact: &Path,
    ) -> Result<PathBuf, Error> {
        if !status.success() {
            let detail = self
                .first_error_line
                .or(self.last_line)
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            return Err(Error::infra(format!(
                "build command failed ({}){detail}",
                describe(status)
            ))
            .help(format!(
                "run it yourself to see the whole output: {}",
                cmd.args.last().map(String::as_str).unwrap_or_default()
            )));
        }
        if artifact.is_file() {
            return Ok(artifact.to_path_buf());
        }
        Err(Error::infra(format!(
            "build command succeeded but {} does not exist",
            artifact.display()
        ))
        .help("point the artifact path at the kernel the command writes"))
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str, artifact: &Path, cwd: &Path) -> Recipe {
        Recipe::shell(
            script,
            artifact,
            cwd,
            vec![("AX_LOG".into(), "warn".into())],
        )
    }

    async fn run(recipe: &Recipe, deadline: Duration) -> (Result<PathBuf, Error>, String) {
        let mut out = Vec::new();
        let r = run_build(recipe, deadline, &mut |b| out.extend_from_slice(b)).await;
        (r, String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn command_gets_env_and_its_artifact_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = shell(
            "echo \"log=$AX_LOG\"; echo k > k.elf",
            Path::new("k.elf"),
            dir.path(),
        );
        let (r, out) = run(&recipe, Duration::from_secs(30)).await;
        assert_eq!(r.unwrap(), dir.path().join("k.elf"));
        assert_eq!(out, "log=warn\n");
        let recipe = shell("true", Path::new("missing.elf"), dir.path());
        let e = run(&recipe, Duration::from_secs(30)).await.0.unwrap_err();
        assert!(e.message.contains("missing.elf does not exist"), "{e}");
    }

    /// `generated` files are written (with their mode) before the command starts.
    #[tokio::test(flavor = "current_thread")]
    async fn generated_files_are_there_first() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut plan = shell("./gen/w.sh > k.elf", Path::new("k.elf"), dir.path());
        let wrapper = dir.path().join("gen/w.sh");
        plan.generated = vec![GeneratedFile {
            path: wrapper.clone(),
            contents: "#!/bin/sh\necho built\n".into(),
            executable: true,
            purpose: "test".into(),
        }];
        let (r, _) = run(&plan, Duration::from_secs(30)).await;
        assert_eq!(r.unwrap(), dir.path().join("k.elf"));
        let mode = std::fs::metadata(&wrapper).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("k.elf")).unwrap(),
            "built\n"
        );
    }

    /// A symlink planted where a generated file goes is replaced; its target (outside the out
    /// dir) is neither written nor made executable.
    #[test]
    fn generated_files_replace_a_planted_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.sh");
        std::fs::write(&outside, "precious").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        let wrapper = dir.path().join("gen/w.sh");
        std::fs::create_dir(dir.path().join("gen")).unwrap();
        std::os::unix::fs::symlink(&outside, &wrapper).unwrap();
        write_generated(&[GeneratedFile {
            path: wrapper.clone(),
            contents: "#!/bin/sh\n".into(),
            executable: true,
            purpose: "test".into(),
        }])
        .unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!wrapper.is_symlink());
        assert_eq!(std::fs::read_to_string(&wrapper).unwrap(), "#!/bin/sh\n");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn failed_command_names_its_first_error_line() {
        let dir = tempfile::tempdir().unwrap();
        let script =
            "echo compiling; echo 'main.c:3: error: expected ;' >&2; echo 'Error 1' >&2; exit 2";
        let recipe = shell(script, Path::new("k.elf"), dir.path());
        let e = run(&recipe, Duration::from_secs(30)).await.0.unwrap_err();
        assert_eq!(
            e.message,
            "build command failed (exit code 2): main.c:3: error: expected ;"
        );
        assert_eq!(e.exit_code(), crate::error::exit::INFRA);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hanging_build_is_stopped_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = shell(
            "echo $$ > pid; exec sleep 60",
            Path::new("k.elf"),
            dir.path(),
        );
        let e = run(&recipe, Duration::from_secs(2)).await.0.unwrap_err();
        assert!(e.message.starts_with("build timed out"), "{e}");
        let pid: i32 = std::fs::read_to_string(dir.path().join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !crate::qemu::process::group_alive(pid),
            "build group {pid} survived"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn prebuilt_kernel_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("k.elf");
        let e = run(&Recipe::prebuilt(&k), Duration::from_secs(1))
            .await
            .0
            .unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Usage);
        std::fs::write(&k, b"x").unwrap();
        assert_eq!(
            run(&Recipe::prebuilt(&k), Duration::from_secs(1))
                .await
                .0
                .unwrap(),
            k
        );
    }
}
