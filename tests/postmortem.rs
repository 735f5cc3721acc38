//! End-to-end: a failing boot says where the guest was. Before QEMU is stopped the vCPUs are
//! stopped and read over QMP (PC, SP, LR, exception level, halted), their addresses named
//! against the booted ELF, and the verdict line and `results.json` carry it. Real QEMU, real
//! guests; a fake QEMU whose QMP goes silent shows the read is bounded.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{BAREMETAL_CONFIG, BAREMETAL_MACHINE, Scratch, text};

fn verdict(s: &Scratch) -> serde_json::Value {
    s.results()["cases"][0]["verdict"].clone()
}

/// The 1-based line of `needle` in the bare-metal fixtures' `main.c`.
fn main_c_line(needle: &str) -> usize {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/aarch64-baremetal/main.c"),
    )
    .unwrap();
    src.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_hang_names_the_function_and_line_each_vcpu_stopped_in() {
    let s = Scratch::new();
    let config = BAREMETAL_MACHINE.replace(r#""128M""#, r#""128M", "-smp", "2""#);
    let out = s.run_baremetal("hang", &config, &["--timeout", "2s"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v = verdict(&s);
    assert_eq!(v["outcome"], "timeout", "{v}");
    let reason = v["reason"].as_str().unwrap();
    // `hang()` is inlined into main(); its line is the spinning `wfe` loop.
    let line = main_c_line("static void hang(void)");
    assert!(reason.contains("; vCPU0 at EL2 in main+0x"), "{reason}");
    assert!(reason.contains(&format!("(main.c:{line})")), "{reason}");
    // The secondary vCPU was never powered on (PSCI): it sits at the entry point.
    assert!(reason.contains("vCPU1 at EL2 in _start"), "{reason}");
    assert!(
        stderr.contains(reason),
        "the terminal says it too: {stderr}"
    );
    let pm = &v["postmortem"];
    let vcpus = pm["vcpus"].as_array().unwrap();
    assert_eq!(vcpus.len(), 2, "{pm}");
    let v0 = &vcpus[0];
    assert_eq!(v0["arch"], "aarch64");
    assert_eq!(v0["mode"], "EL2");
    assert_eq!(v0["halted"], false, "a wfe loop is not halted: {v0}");
    assert_eq!(v0["pc"], v0["registers"]["PC"]);
    assert_eq!(v0["lr"], v0["registers"]["X30"]);
    // start.S: `bl main` is followed by `park:`, so main's return address is park.
    assert_eq!(v0["lr_at"]["function"], "park", "{v0}");
    assert_eq!(v0["pc_at"]["object"], "hang.elf");
    assert!(
        pm["took_ms"].as_u64().unwrap() < 2000,
        "bounded by the QMP limit: {pm}"
    );
}

#[test]
fn a_guest_sleeping_in_wfi_is_reported_halted_in_its_function() {
    let s = Scratch::new();
    let config = format!("{BAREMETAL_MACHINE}success_regex = [\"never printed\"]\n");
    let out = s.run_baremetal("wfi", &config, &["--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = verdict(&s);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("vCPU0 halted at EL2 in sleep_forever+0x"),
        "{reason}"
    );
    assert_eq!(v["postmortem"]["vcpus"][0]["halted"], true, "{v}");
}

#[test]
fn a_fail_pattern_reads_the_vcpus_before_qemu_is_stopped() {
    let s = Scratch::new();
    let out = s.run_baremetal("panic", BAREMETAL_CONFIG, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = verdict(&s);
    assert_eq!(v["outcome"], "fail", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("fail pattern 'panicked at'"), "{reason}");
    assert!(reason.contains("; vCPU0 at EL2 in main+0x"), "{reason}");
}

#[test]
fn a_pass_reads_no_vcpus() {
    let s = Scratch::new();
    let out = s.run_baremetal("hello", BAREMETAL_CONFIG, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let v = verdict(&s);
    assert!(v.get("postmortem").is_none(), "{v}");
}

/// A fake `qemu-system-aarch64`: opens its QMP socket, greets, accepts the capabilities and
/// `cont`, then never answers again (a wedged QEMU). Killed by the runner's SIGTERM.
const SILENT_QMP: &str = r#"
import json, socket, sys, time
arg = sys.argv[sys.argv.index("-qmp") + 1]
path = arg[len("unix:"):].split(",")[0]
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(1)
conn, _ = srv.accept()
conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\n')
f = conn.makefile("r")
for line in f:
    msg = json.loads(line)
    if msg["execute"] in ("qmp_capabilities", "cont"):
        reply = {"return": {}}
        if "id" in msg:
            reply["id"] = msg["id"]
        conn.sendall((json.dumps(reply) + "\n").encode())
    else:
        time.sleep(3600)
"#;

#[test]
fn a_qmp_that_never_answers_delays_the_verdict_by_the_bound_only() {
    let s = Scratch::new();
    let bin = s.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let py = s.write("silent_qmp.py", SILENT_QMP);
    let script = bin.join("qemu-system-aarch64");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in --version|-version) echo 'QEMU emulator version 10.0.2'; exit 0;; esac\nexec python3 {} \"$@\"\n",
            py.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
    let kernel = common::fixtures::fixture("aarch64-baremetal/hang.elf");
    let started = Instant::now();
    let out = s
        .cmd(&[
            "run",
            "--arch",
            "aarch64",
            "--kernel",
            kernel.to_str().unwrap(),
            "--qemu-config",
            cfg.to_str().unwrap(),
            "--timeout",
            "1s",
        ])
        .env("PATH", &path)
        .output()
        .expect("spawn qemu-test");
    let took = started.elapsed();
    common::assert_no_qemu_left(s.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = verdict(&s);
    assert_eq!(v["outcome"], "timeout", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.ends_with("; vCPU state not read: QMP did not answer within 2s"),
        "{reason}"
    );
    let took_ms = v["postmortem"]["took_ms"].as_u64().unwrap();
    assert!((2000..2500).contains(&took_ms), "{took_ms} ms");
    // 1 s deadline + 2 s QMP bound + the stop; far below the next 2 s anything could add.
    assert!(took < Duration::from_secs(8), "{took:?}");
}
