//! The KVM probe runs once per host boot: the first `run` writes its answer under the cache dir,
//! later runs read it while the boot id, `/dev/kvm` and QEMU are unchanged. The tests plant a
//! marker answer in the cache file and find it in the next run's decision, so they hold on a
//! host whose KVM works as well as on one where it does not (no timing involved).
//! `--accel kvm` where KVM cannot run guests is a skip (exit 0) or, with `--on-unsupported fail`,
//! an error (exit 3), with the reason.

pub mod common;

use std::path::PathBuf;

use common::fixtures::fixture;
use common::{Scratch, text};

/// A Linux kernel of the host's architecture, so `accel = auto` needs the KVM answer.
fn host_kernel() -> String {
    let rel = match std::env::consts::ARCH {
        "x86_64" => "amd64-linux/kernel",
        "aarch64" => "arm64-linux/kernel",
        other => panic!("no Linux fixture for host architecture {other}"),
    };
    fixture(rel).display().to_string()
}

fn cache_file(s: &Scratch) -> PathBuf {
    s.path().join("cache/host/kvm-probe.json")
}

/// `qemu-test run --dry-run --kernel <host kernel> <extra>` with the scratch cache dir.
fn run(s: &Scratch, extra: &[&str], dry: bool) -> (Option<i32>, String, String) {
    let kernel = host_kernel();
    let mut args = vec!["run", "--kernel", &kernel, "--timeout", "10s"];
    if dry {
        args.push("--dry-run");
    }
    args.extend_from_slice(extra);
    let out = s
        .cmd(&args)
        .env("QEMU_TEST_CACHE", s.path().join("cache"))
        .output()
        .unwrap();
    common::assert_no_qemu_left(s.path());
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

fn read_json(s: &Scratch) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(cache_file(s)).unwrap()).unwrap()
}

/// Replaces the cached answer with "KVM cannot run guests" and a recognisable reason.
fn plant_marker(s: &Scratch, reason: &str) {
    let mut entry = read_json(s);
    entry["kvm"]["runs_guests"] = serde_json::json!({"status": "no", "reason": reason});
    std::fs::write(cache_file(s), serde_json::to_string(&entry).unwrap()).unwrap();
}

#[test]
fn the_second_run_reads_the_probe_from_the_cache_until_the_boot_changes() {
    let s = Scratch::new();
    let (code, stdout, stderr) = run(&s, &[], true);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("read from"), "{stdout}");
    let entry = read_json(&s);
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(entry["key"]["boot_id"], boot_id.trim());
    assert_eq!(entry["key"]["kvm_device"]["path"], "/dev/kvm");

    plant_marker(&s, "MARKER: answer from the cache");
    let (code, stdout, stderr) = run(&s, &[], true);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("# note: tcg: accel=auto")
            && stdout.contains("MARKER: answer from the cache"),
        "the decision must come from the cached answer: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "# note: the KVM answer was probed earlier in this host boot and read from {}",
            cache_file(&s).display()
        )),
        "{stdout}"
    );

    // Another boot: probed again, and the file rewritten with this boot's id.
    let mut entry = read_json(&s);
    entry["key"]["boot_id"] = "another-boot".into();
    std::fs::write(cache_file(&s), entry.to_string()).unwrap();
    let (code, stdout, stderr) = run(&s, &[], true);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("MARKER"), "{stdout}");
    assert!(!stdout.contains("read from"), "{stdout}");
    assert_eq!(read_json(&s)["key"]["boot_id"], boot_id.trim());
}

#[test]
fn accel_kvm_where_kvm_cannot_run_guests_skips_or_errors_per_on_unsupported() {
    let s = Scratch::new();
    let (code, _, stderr) = run(&s, &[], true);
    assert_eq!(code, Some(0), "{stderr}");
    plant_marker(&s, "MARKER: KVM emulates guest code here");

    let (code, stdout, stderr) = run(&s, &["--accel", "kvm"], false);
    let all = format!("{stdout}{stderr}");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("SKIP kernel")
            && all.contains(": accel=kvm requested, but")
            && !all.contains("skipped: skipped")
            && all.contains("MARKER: KVM emulates guest code here"),
        "{all}"
    );
    assert_eq!(s.results()["cases"][0]["verdict"]["outcome"], "skipped");
    let reason = s.results()["cases"][0]["verdict"]["reason"].to_string();
    assert!(reason.starts_with("\"accel=kvm requested, but"), "{reason}");
    let (code, stdout, stderr) = run(&s, &["--accel", "kvm", "--on-unsupported", "fail"], false);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("cannot run on this runner: accel=kvm requested, but")
            && all.contains("MARKER: KVM emulates guest code here"),
        "{all}"
    );
}
