//! The action's install step (`scripts/action/install.sh`) on a copy of the action: a release
//! tarball served from a real HTTP server on loopback is verified against the committed SHA-256,
//! cached and reused; a mismatch fails and installs nothing; a branch checkout, an empty `dist/`
//! and a failed download build from source with real cargo (a tiny stand-in crate, so the build
//! takes a second). Nothing reaches GitHub: the download base URL points at the loopback server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const VERSION: &str = "9.9.9";
const RELEASE_VERSION_LINE: &str = "qemu-test 9.9.9 (release tarball)";
const SOURCE_VERSION_LINE: &str = "qemu-test 0.0.1 (built from source)";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release target install.sh picks on this machine, and the RUNNER_ARCH that selects it.
fn host_target() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("x86_64-unknown-linux-musl", "X64"),
        "aarch64" => ("aarch64-unknown-linux-musl", "ARM64"),
        other => panic!("no release target for host arch {other}"),
    }
}

fn asset_name() -> String {
    format!("qemu-test-{VERSION}-{}.tar.gz", host_target().0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A release tarball in the layout release.yml produces: `<stem>/qemu-test` (+ LICENSE).
fn release_tarball() -> Vec<u8> {
    let stem = asset_name().trim_end_matches(".tar.gz").to_string();
    let script = format!("#!/bin/sh\necho '{RELEASE_VERSION_LINE}'\n");
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (name, body, mode) in [
        ("qemu-test", script.as_bytes(), 0o755),
        ("LICENSE", b"Apache-2.0\n".as_slice(), 0o644),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{stem}/{name}"), body)
            .expect("append to tarball");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish tarball")
}

/// A minimal HTTP/1.1 file server on 127.0.0.1 that records the paths asked for.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(files: BTreeMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &files, &seen);
                }
            }
        });
        Server {
            url: format!("http://{addr}"),
            requests,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, files: &BTreeMap<String, Vec<u8>>, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    seen.lock().expect("requests lock").push(path.clone());
    let mut out = &stream;
    let _ = match files.get(&path) {
        Some(body) => out
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| out.write_all(body)),
        None => out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
    };
}

/// A copy of the action (its install scripts and a tiny crate standing in for qemu-test) plus a
/// runner's temp and tool-cache directories.
struct ActionCopy {
    root: TempDir,
}

impl ActionCopy {
    fn new() -> ActionCopy {
        let root = tempfile::tempdir().expect("tempdir");
        let action = root.path().join("action");
        let scripts = action.join("scripts/action");
        std::fs::create_dir_all(&scripts).expect("mkdir scripts");
        for f in ["install.sh", "lib.sh", "fingerprint.sh"] {
            std::fs::copy(repo().join("scripts/action").join(f), scripts.join(f))
                .expect("copy script");
        }
        write(
            &action.join("Cargo.toml"),
            "[package]\nname = \"qemu-test-action\"\nversion = \"0.0.1\"\nedition = \"2021\"\n\n\
             [[bin]]\nname = \"qemu-test\"\npath = \"src/main.rs\"\n\n[workspace]\n",
        );
        write(
            &action.join("Cargo.lock"),
            "version = 4\n\n[[package]]\nname = \"qemu-test-action\"\nversion = \"0.0.1\"\n",
        );
        write(
            &action.join("src/main.rs"),
            &format!("fn main() {{ println!(\"{SOURCE_VERSION_LINE}\"); }}\n"),
        );
        for d in ["temp", "tool-cache", "home"] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        ActionCopy { root }
    }

    fn action(&self) -> PathBuf {
        self.root.path().join("action")
    }

    fn tool_cache(&self) -> PathBuf {
        self.root.path().join("tool-cache")
    }

    /// Fills dist/ as the release workflow does; `source` overrides the recorded fingerprint.
    fn release(&self, version: &str, sums: &str, source: Option<&str>) {
        let dist = self.action().join("dist");
        write(&dist.join("VERSION"), &format!("{version}\n"));
        write(&dist.join("sha256sums.txt"), sums);
        let fingerprint = match source {
            Some(s) => s.to_string(),
            None => self.fingerprint(),
        };
        write(&dist.join("source.sha256"), &format!("{fingerprint}\n"));
    }

    fn fingerprint(&self) -> String {
        let out = Command::new("bash")
            .arg(self.action().join("scripts/action/fingerprint.sh"))
            .arg(self.action())
            .output()
            .expect("run fingerprint.sh");
        assert!(
            out.status.success(),
            "fingerprint.sh: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    /// Runs install.sh as the composite step would, in a cleared environment.
    fn install(&self, base_url: &str, extra: &[(&str, &str)]) -> Install {
        self.step(&[], base_url, extra)
    }

    /// Runs `install.sh ARGS…` (the install step, or with `key` the build cache key step).
    fn step(&self, args: &[&str], base_url: &str, extra: &[(&str, &str)]) -> Install {
        let step = self.root.path().join("step");
        let _ = std::fs::remove_dir_all(&step);
        std::fs::create_dir_all(&step).expect("mkdir step");
        let (output_file, path_file) = (step.join("output"), step.join("path"));
        for f in [&output_file, &path_file] {
            write(f, "");
        }
        let (_, runner_arch) = host_target();
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(self.action().join("scripts/action/install.sh"))
            .args(args)
            .env_clear()
            .envs(toolchain_env())
            .env("HOME", self.root.path().join("home"))
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION_PATH", self.action())
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_PATH", &path_file)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", runner_arch)
            .env("RUNNER_TEMP", self.root.path().join("temp"))
            .env("RUNNER_TOOL_CACHE", self.tool_cache())
            .env("CARGO_NET_OFFLINE", "true")
            .env("QEMU_TEST_DOWNLOAD_URL", base_url)
            .envs(extra.iter().copied())
            .current_dir(self.root.path());
        let out = cmd.output().expect("run install.sh");
        Install {
            outputs: parse_outputs(&read(&output_file)),
            path: read(&path_file),
            log: format!("{}{}", text(&out.stdout), text(&out.stderr)),
            out,
        }
    }
}

struct Install {
    out: Output,
    outputs: BTreeMap<String, String>,
    path: String,
    log: String,
}

impl Install {
    fn ok(&self) -> bool {
        self.out.status.success()
    }

    fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output {name}; log:\n{}", self.log))
    }
}

/// PATH and the rustup/cargo homes, so the cleared environment still finds the toolchain.
fn toolchain_env() -> Vec<(String, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut env = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    )];
    for (name, fallback) in [
        ("RUSTUP_HOME", format!("{home}/.rustup")),
        ("CARGO_HOME", format!("{home}/.cargo")),
    ] {
        env.push((name.to_string(), std::env::var(name).unwrap_or(fallback)));
    }
    if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN".to_string(), t));
    }
    env
}

fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
            map.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            map.insert(name.to_string(), value.to_string());
        }
    }
    map
}

fn write(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir parent");
    }
    std::fs::write(path, contents).expect("write file");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn served_release() -> (Server, String) {
    let tarball = release_tarball();
    let sum = sha256_hex(&tarball);
    let files = BTreeMap::from([(format!("/v{VERSION}/{}", asset_name()), tarball)]);
    (Server::start(files), sum)
}

#[test]
fn release_download_is_verified_cached_and_reused() {
    let copy = ActionCopy::new();
    let (server, sum) = served_release();
    copy.release(VERSION, &format!("{sum}  {}\n", asset_name()), None);

    let first = copy.install(&server.url, &[]);
    assert!(first.ok(), "install failed:\n{}", first.log);
    assert_eq!(first.output("source"), "download", "{}", first.log);
    assert!(first.log.contains("SHA-256 verified"), "{}", first.log);
    let cached = copy.tool_cache().join(format!(
        "qemu-test-action/{VERSION}/{}/qemu-test",
        host_target().0
    ));
    assert_eq!(Path::new(first.output("binary")), cached);
    assert_eq!(first.output("version"), RELEASE_VERSION_LINE);
    assert_eq!(
        first.path.trim(),
        cached.parent().expect("dir").to_string_lossy()
    );
    assert_eq!(
        server.requests(),
        vec![format!("/v{VERSION}/{}", asset_name())]
    );

    let second = copy.install(&server.url, &[]);
    assert!(second.ok(), "second install failed:\n{}", second.log);
    assert_eq!(second.output("source"), "cache", "{}", second.log);
    assert_eq!(server.requests().len(), 1, "a cache hit must not download");
}

#[test]
fn sha256_mismatch_fails_loudly_and_installs_nothing() {
    let copy = ActionCopy::new();
    let (server, sum) = served_release();
    let wrong = sha256_hex(b"not the tarball");
    assert_ne!(wrong, sum);
    copy.release(VERSION, &format!("{wrong}  {}\n", asset_name()), None);

    let run = copy.install(&server.url, &[]);
    assert!(!run.ok(), "a mismatching download must fail:\n{}", run.log);
    assert!(
        run.log.contains("::error") && run.log.contains("SHA-256 mismatch"),
        "{}",
        run.log
    );
    assert!(
        run.log.contains(&wrong) && run.log.contains(&sum),
        "{}",
        run.log
    );
    assert!(!run.outputs.contains_key("binary"), "{:?}", run.outputs);
    assert!(run.path.is_empty(), "nothing may be put on PATH");
    let version_dir = copy
        .tool_cache()
        .join(format!("qemu-test-action/{VERSION}"));
    let leftovers: Vec<_> = std::fs::read_dir(&version_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "tool cache not empty: {leftovers:?}");
    assert!(
        !run.log.contains("building qemu-test from source"),
        "no fallback after a mismatch"
    );
}

#[test]
fn branch_checkout_builds_from_source_without_downloading() {
    let copy = ActionCopy::new();
    let (server, sum) = served_release();
    let other_sources = "0".repeat(64);
    copy.release(
        VERSION,
        &format!("{sum}  {}\n", asset_name()),
        Some(&other_sources),
    );

    let run = copy.install(&server.url, &[]);
    assert!(run.ok(), "build failed:\n{}", run.log);
    assert!(
        run.log
            .contains("building qemu-test from source: this checkout's sources differ"),
        "{}",
        run.log
    );
    assert_eq!(run.output("source"), "build");
    assert_eq!(run.output("version"), SOURCE_VERSION_LINE);
    assert_eq!(
        Path::new(run.output("binary")),
        copy.action().join("target/release/qemu-test")
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn failed_download_warns_and_falls_back_to_a_source_build() {
    let copy = ActionCopy::new();
    let tarball = release_tarball();
    copy.release(
        VERSION,
        &format!("{}  {}\n", sha256_hex(&tarball), asset_name()),
        None,
    );
    let server = Server::start(BTreeMap::new());

    let run = copy.install(&server.url, &[]);
    assert!(run.ok(), "fallback build failed:\n{}", run.log);
    assert!(run.log.contains("::warning"), "{}", run.log);
    assert!(
        run.log
            .contains("building qemu-test from source: the release download failed"),
        "{}",
        run.log
    );
    assert_eq!(run.output("source"), "build");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn empty_dist_builds_from_source_and_says_why() {
    let copy = ActionCopy::new();
    copy.release("", "", Some(""));
    let run = copy.install("http://127.0.0.1:9", &[]);
    assert!(run.ok(), "build failed:\n{}", run.log);
    assert!(run.log.contains("dist/VERSION is empty"), "{}", run.log);
    assert_eq!(run.output("source"), "build");
}

#[test]
fn explicit_version_needs_a_committed_sum() {
    let copy = ActionCopy::new();
    copy.release("", "", Some(""));
    let run = copy.step(&["--version", "1.2.3"], "http://127.0.0.1:9", &[]);
    assert!(!run.ok(), "an unverifiable version must fail:\n{}", run.log);
    assert!(
        run.log.contains("has no SHA-256 for qemu-test-1.2.3-"),
        "{}",
        run.log
    );
    assert!(
        !run.log.contains("building qemu-test from source"),
        "{}",
        run.log
    );
}

#[test]
fn binary_override_is_used_as_is() {
    let copy = ActionCopy::new();
    copy.release("", "", Some(""));
    let bin = env!("CARGO_BIN_EXE_qemu-test");
    let run = copy.install("http://127.0.0.1:9", &[("QEMU_TEST_BINARY", bin)]);
    assert!(run.ok(), "{}", run.log);
    assert_eq!(run.output("source"), "override");
    assert_eq!(
        std::fs::canonicalize(run.output("binary")).expect("binary exists"),
        std::fs::canonicalize(bin).expect("test binary")
    );
    assert!(
        run.output("version").starts_with("qemu-test "),
        "{}",
        run.log
    );
}

#[test]
fn key_step_names_the_source_fingerprint_only_when_the_checkout_is_built() {
    let copy = ActionCopy::new();
    let (server, sum) = served_release();
    let (_, runner_arch) = host_target();
    // A release checkout downloads: nothing to cache.
    copy.release(VERSION, &format!("{sum}  {}\n", asset_name()), None);
    let key = copy.step(&["key"], &server.url, &[]);
    assert!(key.ok(), "{}", key.log);
    assert_eq!(key.output("key"), "");
    // A branch checkout builds: keyed by the fingerprint of its sources.
    copy.release(
        VERSION,
        &format!("{sum}  {}\n", asset_name()),
        Some(&"0".repeat(64)),
    );
    let key = copy.step(&["key"], &server.url, &[]);
    assert!(key.ok(), "{}", key.log);
    let prefix = format!("qemu-test-bin-v1-Linux-{runner_arch}-");
    assert_eq!(key.output("key"), format!("{prefix}{}", copy.fingerprint()));
    assert_eq!(key.output("restore-keys"), prefix);
    assert_eq!(Path::new(key.output("dir")), copy.action().join("target"));
    assert!(
        key.log.contains("this checkout's sources differ"),
        "{}",
        key.log
    );
    assert!(
        server.requests().is_empty(),
        "the key step downloads nothing"
    );
    // An override or an unverifiable explicit version: no key, and never an error here (the
    // install step reports it).
    let bin = env!("CARGO_BIN_EXE_qemu-test");
    let key = copy.step(&["key"], &server.url, &[("QEMU_TEST_BINARY", bin)]);
    assert!(key.ok() && key.output("key").is_empty(), "{}", key.log);
    let key = copy.step(&["key", "--version", "1.2.3"], &server.url, &[]);
    assert!(key.ok() && key.output("key").is_empty(), "{}", key.log);
    let bad = copy.step(&["keys"], &server.url, &[]);
    assert!(
        !bad.ok() && bad.log.contains("unknown argument 'keys'"),
        "{}",
        bad.log
    );
}

#[test]
fn a_restored_build_of_the_same_sources_is_used_without_cargo() {
    let copy = ActionCopy::new();
    copy.release("", "", Some(""));
    let first = copy.install("http://127.0.0.1:9", &[]);
    assert!(first.ok(), "{}", first.log);
    assert_eq!(first.output("source"), "build");
    let stamp = copy.action().join("target/.qemu-test-source.sha256");
    assert_eq!(read(&stamp).trim(), copy.fingerprint());

    // The next job: the target dir came back from the cache, and no cargo is on PATH, so the
    // binary can only be the cached one.
    let again = copy.install("http://127.0.0.1:9", &[("PATH", "/usr/bin:/bin")]);
    assert!(again.ok(), "{}", again.log);
    assert_eq!(again.output("source"), "build-cache");
    assert_eq!(again.output("version"), SOURCE_VERSION_LINE);
    assert!(
        !again.log.contains("building qemu-test from source"),
        "{}",
        again.log
    );

    // Other sources (a new commit): the restored dir is only a head start, cargo builds.
    write(
        &copy.action().join("src/main.rs"),
        "fn main() { println!(\"qemu-test 0.0.2 (a newer commit)\"); }\n",
    );
    let newer = copy.install("http://127.0.0.1:9", &[]);
    assert!(newer.ok(), "{}", newer.log);
    assert_eq!(newer.output("source"), "build");
    assert_eq!(newer.output("version"), "qemu-test 0.0.2 (a newer commit)");
    assert_eq!(read(&stamp).trim(), copy.fingerprint());
}

/// The `version` input reaches install.sh as its `--version` argument (the binary does not exist
/// yet), and install.sh accepts exactly what the binary's definition of the input accepts; an
/// `INPUT_VERSION` variable is not read.
#[test]
fn install_checks_the_version_input_as_the_binary_does() {
    let copy = ActionCopy::new();
    copy.release("", "", Some(""));
    for value in [
        "",
        " 1.2.3 ",
        "1.2.3",
        "v1.2.3",
        "0.10.0-rc.1",
        "source",
        "latest",
        "1.2",
        "v",
        "1.2.3;x",
        "Source",
        "1.2.3 4.5.6",
        "1.2.3\nsource",
    ] {
        let binary = qemu_test_action::cli::release_version(value.trim());
        let key = copy.step(&["key", "--version", value], "http://127.0.0.1:9", &[]);
        let accepted = value.trim().is_empty() || binary.is_ok();
        assert_eq!(key.ok(), accepted, "{value:?}: {}", key.log);
        if !accepted {
            assert!(
                key.log.contains("::error") && key.log.contains("input `version`"),
                "{value:?}: {}",
                key.log
            );
            assert!(key.outputs.is_empty(), "{value:?}: no outputs");
        }
    }
    // The step ignores the variable the action no longer sets for it.
    let run = copy.step(
        &["key"],
        "http://127.0.0.1:9",
        &[("INPUT_VERSION", "bogus")],
    );
    assert!(run.ok(), "{}", run.log);
}

/// `cache-build` reaches install.sh's key step as `--cache-build` (the binary does not exist yet);
/// install.sh accepts exactly the booleans the binary accepts, and `false` means no key (so
/// neither the restore nor the save step runs).
#[test]
fn key_step_checks_cache_build_as_the_binary_does() {
    let copy = ActionCopy::new();
    copy.release("", "", Some(""));
    for value in [
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        " false ",
        "yes",
        "no",
        "on",
        "1",
        "0",
        "",
        "tRUE",
        "false\ntrue",
    ] {
        let binary = qemu_test_action::cli::parse_boolean(value.trim());
        let key = copy.step(&["key", "--cache-build", value], "http://127.0.0.1:9", &[]);
        assert_eq!(key.ok(), binary.is_some(), "{value:?}: {}", key.log);
        match binary {
            None => {
                assert!(
                    key.log.contains("::error") && key.log.contains("input `cache-build`"),
                    "{value:?}: {}",
                    key.log
                );
                assert!(key.outputs.is_empty(), "{value:?}: no outputs");
            }
            Some(true) => assert!(!key.output("key").is_empty(), "{value:?}: {}", key.log),
            Some(false) => {
                assert_eq!(key.output("key"), "", "{value:?}");
                assert!(key.log.contains("cache-build is false"), "{}", key.log);
            }
        }
    }
}
