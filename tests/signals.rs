//! End-to-end: SIGTERM, SIGINT and SIGHUP sent to a real `qemu-test run` at the download, build
//! and boot stages. Each must end the run with 128 + n, leave no process of the groups it
//! started (QEMU, the build) alive, and write `results.json` saying which signal and when.

pub mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::archives::{guest_image, noise, sha256_hex};
use common::fixtures::fixture;
use common::http_server::{Fault, Server};
use common::{BAREMETAL_CONFIG, Scratch};

const SIGNALS: [(libc::c_int, i32, &str); 3] = [
    (libc::SIGTERM, 143, "SIGTERM"),
    (libc::SIGINT, 130, "SIGINT"),
    (libc::SIGHUP, 129, "SIGHUP"),
];

/// `/proc/<pid>/stat` fields after the command: (state, ppid, pgrp).
fn stat(pid: u32) -> Option<(String, u32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(") ")?.1.split(' ');
    let state = rest.next()?.to_string();
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// The process groups of `parent`'s children (each QEMU or build leads its own).
fn child_groups(parent: u32) -> Vec<i32> {
    let mut groups: Vec<i32> = all_pids()
        .into_iter()
        .filter_map(stat)
        .filter(|(_, ppid, _)| *ppid == parent)
        .map(|(_, _, pgrp)| pgrp)
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Live (non-zombie) processes of the group.
fn alive_in_group(pgrp: i32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|(state, _, g)| g == pgrp && state != "Z" && state != "X"))
        .collect()
}

/// Polls `cond` (an outside event we cannot be told about) until it holds, at most 60 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `stream` until `needle` appeared.
fn read_until(stream: &mut impl Read, needle: &[u8]) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "qemu-test ended before printing {:?}: {}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Sends `sig`, then checks the exit code, that every group it had started is gone, and that
/// `results.json` names the signal and (for `stage`) the stage.
fn signal_and_check(s: &Scratch, mut child: Child, sig: (libc::c_int, i32, &str), stage: &str) {
    let groups = child_groups(child.id());
    // A download runs in-process; a build or a boot has its own process group.
    assert_eq!(groups.is_empty(), stage == "image", "{stage}: {groups:?}");
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, sig.0);
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(sig.1),
        "{stage}: exit code after {}",
        sig.2
    );
    for g in groups {
        // kill(2) returns before a SIGKILLed process has finished exiting; one that was not
        // killed (sleep 300, a hung guest) would still be here long after these 5 s.
        let start = Instant::now();
        while !alive_in_group(g).is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = alive_in_group(g);
        assert!(
            left.is_empty(),
            "{stage}/{}: group {g} left {left:?}",
            sig.2
        );
    }
    common::assert_no_qemu_left(s.path());
    let r = s.results();
    assert_eq!(r["exit_code"], sig.1);
    let v = &r["cases"][0]["verdict"];
    assert_eq!(v["outcome"], "cancelled", "{stage}: {v}");
    assert_eq!(v["cancelled_by"], sig.2, "{stage}: {v}");
    let reason = v["reason"].as_str().unwrap();
    // (The boot's own reason text is run/boot.rs's, reworded on another branch.)
    if stage != "boot" {
        assert!(reason.contains(sig.2), "{stage}: {reason}");
        assert!(
            reason.contains(&format!("during the {stage} stage")),
            "{reason}"
        );
        let stages = r["cases"][0]["stages"].as_array().unwrap();
        let last = stages.last().unwrap();
        assert_eq!(last["stage"], stage, "{stages:?}");
        assert_eq!(last["ok"], false, "{stages:?}");
    }
}

#[test]
fn a_signal_during_the_build_stops_the_build_group_and_reports() {
    for sig in SIGNALS {
        let s = Scratch::new();
        let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
        // sh forks sleep (it is not the last command): two processes in the build's group.
        // The marker is computed, so the "build: <command>" note cannot match it.
        let mut child = s
            .cmd(&[
                "run",
                "--build-command",
                "echo building-$((6*7)); sleep 300; true",
                "--artifact",
                "kernel.elf",
                "--arch",
                "aarch64",
                "--name",
                "built",
                "--qemu-config",
                cfg.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        read_until(&mut stderr, b"building-42");
        // Keep draining stderr so qemu-test never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        });
        signal_and_check(&s, child, sig, "build");
    }
}

#[test]
fn a_signal_during_a_stalled_download_ends_the_run_and_reports() {
    let server = Server::start();
    let archive = guest_image("aarch64", &noise(4096, 1), &noise(256 * 1024, 2));
    let sha = sha256_hex(&archive);
    server.add("/img.tar.gz", archive);
    let registry =
        common::archives::registry_text(&[("stall", "0.1.0", &sha, &server.url("/img.tar.gz"))]);
    server.add("/registry.toml", registry.into_bytes());
    let kernel = fixture("aarch64-baremetal/hello.elf");
    for sig in SIGNALS {
        let s = Scratch::new();
        let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
        let hits = server.hits("/img.tar.gz");
        server.fault("/img.tar.gz", Fault::Stall(1024));
        let cache = s.path().join("cache");
        let child = s
            .cmd(&[
                "run",
                "--kernel",
                kernel.to_str().unwrap(),
                "--qemu-config",
                cfg.to_str().unwrap(),
                "--image",
                "stall:0.1.0",
                "--registry",
                &server.url("/registry.toml"),
                "--cache-dir",
                cache.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The server saw the image request: the download is under way (and stalled).
        wait_for("the image request", || server.hits("/img.tar.gz") > hits);
        signal_and_check(&s, child, sig, "image");
    }
}

#[test]
fn a_signal_during_the_boot_reaps_qemu_and_reports() {
    let kernel = fixture("aarch64-baremetal/hello_noexit.elf");
    for sig in SIGNALS {
        let s = Scratch::new();
        let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
        let mut child = s
            .cmd(&[
                "run",
                "--kernel",
                kernel.to_str().unwrap(),
                "--qemu-config",
                cfg.to_str().unwrap(),
                "--success-regex",
                "never printed",
                "--timeout",
                "60s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("Hello") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "no console output"
            );
        }
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        signal_and_check(&s, child, sig, "boot");
        let log = std::fs::read_to_string(s.out().join("hello_noexit.log")).unwrap();
        assert!(log.contains("Hello, world!"), "{log}");
    }
}

/// The report stage: check runs are being published to a GitHub API that stalls. The signal
/// stops publishing; the reports written before stay, and the exit code is 128 + n.
#[test]
fn a_signal_while_check_runs_are_published_ends_the_run() {
    let server = Server::start();
    let kernel = fixture("aarch64-baremetal/hello.elf");
    for sig in SIGNALS {
        let s = Scratch::new();
        let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
        let api = "/repos/o/r/check-runs";
        let hits = server.hits(api);
        server.add(api, b"{}".to_vec());
        server.fault(api, Fault::Stall(0));
        let child = s
            .cmd(&[
                "run",
                "--kernel",
                kernel.to_str().unwrap(),
                "--qemu-config",
                cfg.to_str().unwrap(),
            ])
            .env("INPUT_GITHUB_TOKEN", "t0ken")
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_SHA", "feed")
            .env("GITHUB_API_URL", server.url(""))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the check-run request", || server.hits(api) > hits);
        let mut child = child;
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(child.id() as i32, sig.0);
        }
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(sig.1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "cancelled by {}: check runs not (all) published",
                sig.2
            )),
            "{stderr}"
        );
        // The case had passed and its reports were written before publishing began.
        assert_eq!(s.results()["cases"][0]["verdict"]["outcome"], "pass");
        common::assert_no_qemu_left(s.path());
    }
}

/// A signal while the configuration is read and the host probed (before any case exists): the
/// run ends at once with 128+n, says so, and writes nothing. The probe's `--version` call of a
/// fake `qemu-system-x86_64` that answers slowly marks the moment planning is under way.
#[test]
fn a_signal_while_reading_the_configuration_ends_the_run_at_once() {
    use std::os::unix::fs::PermissionsExt;
    for (sig, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGHUP, 129, "SIGHUP"),
    ] {
        let s = Scratch::new();
        let bin = s.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let marker = s.path().join("probing");
        let fake = bin.join("qemu-system-x86_64");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\ncase \"$1\" in --version) : > '{}'; exec sleep 3;; esac\nexit 1\n",
                marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = s.write(
            "qemu.toml",
            "args = [\"-nographic\"]\nsuccess_regex = [\"x\"]\n",
        );
        let kernel = fixture("amd64-linux/kernel");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut child = s
            .cmd(&[
                "run",
                "--kernel",
                kernel.to_str().unwrap(),
                "--qemu-config",
                cfg.to_str().unwrap(),
                "--accel",
                "auto",
                "--cache-dir",
                s.path().join("cache").to_str().unwrap(),
            ])
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the probe to ask QEMU its version", || marker.exists());
        let sent = Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        // (Its few lines of stderr fit in the pipe: wait first, to time the exit alone.)
        let status = child.wait().unwrap();
        let took = sent.elapsed();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(code), "{name}: {stderr}");
        assert!(
            took < Duration::from_secs(2),
            "{name}: the run must not wait for planning to finish ({took:?})"
        );
        assert!(
            stderr.contains(&format!(
                "cancelled by {name} while reading the configuration; nothing ran"
            )),
            "{stderr}"
        );
        assert!(!s.out().exists(), "{name}: nothing may be written");
    }
}
