//! End-to-end: a failing boot says where the guest was. Before QEMU is stopped the vCPUs are
//! stopped and read over QMP (PC, SP, LR, exception level, halted), their addresses named
//! against the booted ELF, and the verdict line and `results.json` carry it. Real QEMU, real
//! guests; a fake QEMU whose QMP goes silent shows the read is bounded.

pub mod common;

use std::time::{Duration, Instant};

use common::{BAREMETAL_CONFIG, BAREMETAL_MACHINE, Scratch, text};

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
    let v = s.verdict();
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
    let v = s.verdict();
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
    let v = s.verdict();
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
    let v = s.verdict();
    assert!(v.get("postmortem").is_none(), "{v}");
}

/// `--core-dump on-fail`: a timed-out boot leaves `<case>.core.gz` beside its log, a gzip'd
/// ELF core (object reads it) holding the guest's memory: the kernel's `.text` is at its load
/// address in it.
#[test]
fn core_dump_on_fail_writes_the_guests_memory_as_an_elf_core() {
    use object::{Object, ObjectKind, ObjectSection, ObjectSegment};
    use std::io::Read;
    let s = Scratch::new();
    // 32 MiB of guest RAM keeps the dump (and its gzip in a debug build) quick.
    let out = s.run_baremetal(
        "hang",
        &BAREMETAL_CONFIG.replace(r#""128M""#, r#""32M""#),
        &["--timeout", "1s", "--core-dump", "on-fail"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "timeout", "{v}");
    let core = std::path::PathBuf::from(v["postmortem"]["core_dump"].as_str().expect("a core"));
    assert_eq!(core, s.out().join("hang.core.gz"), "beside hang.log");
    assert!(
        !s.out().join("cases/hang/core.elf").exists(),
        "the uncompressed dump is gone"
    );
    let gz = std::fs::read(&core).unwrap();
    let mut elf = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut elf)
        .unwrap();
    // -m 32M: the dump is the guest's RAM, and compresses far below it.
    assert!(elf.len() >= 32 << 20, "{} bytes", elf.len());
    assert!(gz.len() < 4 << 20, "{} bytes compressed", gz.len());
    let dump = object::File::parse(&elf[..]).expect("an ELF file");
    assert_eq!(dump.kind(), ObjectKind::Core);
    assert_eq!(dump.architecture(), object::Architecture::Aarch64);
    let kernel_bytes =
        std::fs::read(common::fixtures::fixture("aarch64-baremetal/hang.elf")).unwrap();
    let kernel = object::File::parse(&kernel_bytes[..]).unwrap();
    let text = kernel.section_by_name(".text").unwrap();
    let code = text.data().unwrap();
    let at = dump
        .segments()
        .find_map(|seg| {
            seg.data_range(text.address(), code.len() as u64)
                .ok()
                .flatten()
        })
        .expect("a segment of the core holds the kernel's load address");
    assert!(
        at == code,
        "the kernel's code is in the dump at its address"
    );
}

#[test]
fn core_dump_is_skipped_with_a_note_over_max_core_size_and_never_on_a_pass() {
    let s = Scratch::new();
    let out = s.run_baremetal(
        "hang",
        BAREMETAL_CONFIG,
        &[
            "--timeout",
            "1s",
            "--core-dump",
            "on-fail",
            "--max-core-size",
            "64MiB",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let pm = &s.verdict()["postmortem"];
    assert!(pm.get("core_dump").is_none(), "{pm}");
    let notes = pm["notes"].to_string();
    assert!(
        notes.contains(
            "no core dump: the guest has 128 MiB of RAM, more than max_core_size (64 MiB)"
        ),
        "{notes}"
    );
    assert!(!s.out().join("hang.core.gz").exists());
    assert!(!s.out().join("cases/hang/core.elf").exists());

    let s = Scratch::new();
    let out = s.run_baremetal("hello", BAREMETAL_CONFIG, &["--core-dump", "on-fail"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(!s.out().join("hello.core.gz").exists());
}

/// riscv64 under OpenSBI (the fixture's shell waits at its prompt): the PC, `x2/sp` and
/// `x1/ra` are read and named against the ELF, with the CSRs QEMU prints; QEMU 10's riscv
/// register dump has no current privilege level (`V` only), so no mode is claimed.
#[test]
fn riscv64_vcpu_reads_pc_sp_ra_named_and_no_privilege_level() {
    let s = Scratch::new();
    let cfg = s.write(
        "qemu.toml",
        r#"args = ["-nographic", "-machine", "virt", "-cpu", "rv64", "-bios", "default", "-m", "128M"]
success_regex = ["never printed"]
"#,
    );
    let kernel = common::fixtures::fixture("riscv64-baremetal/shell.elf");
    let out = s.run(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        cfg.to_str().unwrap(),
        "--timeout",
        "4s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
    assert_eq!(v["outcome"], "timeout", "{v}");
    let cpu = &v["postmortem"]["vcpus"][0];
    assert_eq!(cpu["arch"], "riscv64", "{cpu}");
    assert_eq!(cpu["pc"], cpu["registers"]["pc"], "{cpu}");
    assert_eq!(cpu["sp"], cpu["registers"]["x2/sp"], "{cpu}");
    assert_eq!(cpu["lr"], cpu["registers"]["x1/ra"], "{cpu}");
    assert!(cpu["registers"]["mstatus"].is_string(), "{cpu}");
    // The shell polls its UART in S-mode code linked into shell.elf.
    assert_eq!(cpu["pc_at"]["object"], "shell.elf", "{cpu}");
    assert!(cpu.get("mode").is_none(), "QEMU does not print it: {cpu}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("; vCPU0 in "), "{reason}");
}

/// A fake `qemu-system-aarch64`: on the QMP socket it inherits (`-chardev socket,…,fd=N`),
/// greets, accepts the capabilities and `cont`, then never answers again (a wedged QEMU).
/// Killed by the runner's SIGTERM.
const SILENT_QMP: &str = r#"
import json, socket, sys, time
chardev = sys.argv[sys.argv.index("-chardev") + 1]
fd = int(dict(kv.split("=") for kv in chardev.split(",")[1:])["fd"])
conn = socket.socket(fileno=fd)
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
    let mut s = Scratch::new();
    let py = s.write("silent_qmp.py", SILENT_QMP);
    s.fake_qemu(&format!("exec python3 {} \"$@\"", py.display()));
    let started = Instant::now();
    let out = s.run_baremetal("hang", BAREMETAL_CONFIG, &["--timeout", "1s"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
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

#[test]
fn a_tgoskits_backtrace_the_guest_printed_is_named_frame_by_frame() {
    let s = Scratch::new();
    let junit = s.path().join("junit.xml");
    let out = s.run_baremetal(
        "backtrace",
        BAREMETAL_CONFIG,
        &["--junit", junit.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("; vCPU0 at EL2 in fail_deep+0x"),
        "{reason}"
    );
    let bt = &v["postmortem"]["backtraces"][0];
    assert_eq!(bt["format"], "tgoskits", "{v}");
    assert_eq!(bt["kind"], "panic");
    assert_eq!(bt["arch"], "aarch64");
    assert_eq!(bt["errors"][0], "fp_chain_end");
    let frames = bt["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 2, "{bt}");
    assert_eq!(frames[0]["at"]["function"], "report_panic", "{bt}");
    assert_eq!(frames[0]["at"]["file"], "main.c");
    // Frame 1 is the return address: in fail_deep, after its call.
    assert_eq!(frames[1]["at"]["function"], "fail_deep", "{bt}");
    assert!(
        frames[1]["at"]["offset"].as_u64().unwrap() > 0,
        "a return address is past the call: {bt}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("guest backtrace (tgoskits kind=panic arch=aarch64):"),
        "{xml}"
    );
    assert!(xml.contains("BT 1 ip=0x"), "{xml}");
    assert!(xml.contains("fail_deep+0x"), "{xml}");
}

/// `addr T name` lines for every function symbol of `elf`, as a kernel's System.map.
fn system_map(elf: &std::path::Path) -> String {
    use object::{Object, ObjectSymbol, SymbolKind};
    let data = std::fs::read(elf).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let mut lines: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && !s.name().unwrap_or("").is_empty())
        .map(|s| {
            (
                s.address(),
                format!("{:016x} T {}", s.address(), s.name().unwrap()),
            )
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}

#[test]
fn a_flat_binary_is_named_through_a_system_map_given_with_symbols() {
    let s = Scratch::new();
    let map = s.write(
        "System.map",
        &system_map(&common::fixtures::fixture("aarch64-baremetal/hang.elf")),
    );
    let cfg = s.write("qemu.toml", BAREMETAL_MACHINE);
    let bin = common::fixtures::fixture("aarch64-baremetal/hang.bin");
    let out = s.run_kernel(
        &bin,
        &cfg,
        &[
            "--arch",
            "aarch64",
            "--timeout",
            "2s",
            "--symbols",
            map.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let v = s.verdict();
    let reason = v["reason"].as_str().unwrap();
    // A map has names, not lines; the flat binary itself has no symbols and is passed over.
    assert!(reason.contains("vCPU0 at EL2 in main+0x"), "{reason}");
    assert!(!reason.contains("main.c"), "{reason}");
    assert_eq!(v["postmortem"]["vcpus"][0]["pc_at"]["object"], "System.map");
    assert!(v["postmortem"].get("notes").is_none(), "{v}");
}

#[test]
fn a_missing_symbol_file_in_the_config_is_an_error_at_its_line() {
    let s = Scratch::new();
    let out = s.run_baremetal(
        "hang",
        &format!("{BAREMETAL_MACHINE}symbols = [\"no/such.map\"]\n"),
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("symbol file `no/such.map` not found"),
        "{stderr}"
    );
    assert!(stderr.contains("qemu.toml:2:"), "{stderr}");
}

/// Boots Debian's `kernel` for `arch` with the `initramfs-panic` of `dir` (it prints a fail
/// pattern, then its init sleeps) and returns the first vCPU's state from the verdict.
fn linux_after_a_fail_pattern(
    s: &Scratch,
    arch: &str,
    dir: &str,
    kernel: &str,
    machine: &str,
) -> serde_json::Value {
    let initrd = common::fixtures::fixture(&format!("{dir}/initramfs-panic.cpio.gz"));
    let cfg = s.write(
        "linux.toml",
        &format!(
            "args = [\"-nographic\", \"-m\", \"512M\", {machine}, \"-initrd\", \"{}\"]\nfail_regex = [\"panicked at\"]\n",
            initrd.display()
        ),
    );
    let kernel = common::fixtures::fixture(&format!("{dir}/{kernel}"));
    let out = s.run_kernel(&kernel, &cfg, &["--arch", arch, "--timeout", "180s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    s.verdict()
}

#[test]
fn debian_arm64_linux_stopped_after_a_fail_pattern_is_at_el1_without_symbols() {
    let s = Scratch::new();
    let v = linux_after_a_fail_pattern(
        &s,
        "aarch64",
        "arm64-linux",
        "kernel",
        r#""-machine", "virt,gic-version=3", "-cpu", "cortex-a72", "-append", "console=ttyAMA0 rdinit=/init""#,
    );
    let vcpu = &v["postmortem"]["vcpus"][0];
    // The busybox init sleeps: the kernel runs at EL1 (its idle loop or a syscall), or the
    // init itself at EL0; Debian's Image has no symbols and its System.map is a stub.
    let mode = vcpu["mode"].as_str().unwrap();
    let reason = v["reason"].as_str().unwrap();
    match mode {
        "EL1" => {
            let pc = u64::from_str_radix(&vcpu["pc"].as_str().unwrap()[2..], 16).unwrap();
            assert!(pc >= 0xffff_0000_0000_0000, "a kernel address: {vcpu}");
            assert!(reason.contains("(no symbols)"), "{reason}");
        }
        "EL0" => assert!(reason.contains("(user space)"), "{reason}"),
        other => panic!("unexpected mode {other}: {vcpu}"),
    }
}

#[test]
fn debian_amd64_linux_reports_its_privilege_and_long_mode() {
    let s = Scratch::new();
    let v = linux_after_a_fail_pattern(
        &s,
        "x86_64",
        "amd64-linux",
        "vmlinux",
        r#""-append", "console=ttyS0 rdinit=/init""#,
    );
    let vcpu = &v["postmortem"]["vcpus"][0];
    assert_eq!(vcpu["arch"], "x86_64", "{vcpu}");
    let mode = vcpu["mode"].as_str().unwrap();
    assert!(
        mode == "CPL0 long mode" || mode == "CPL3 long mode",
        "{vcpu}"
    );
    assert!(vcpu["registers"]["RIP"].is_string(), "{vcpu}");
    assert!(vcpu["halted"].is_boolean(), "x86 says HLT: {vcpu}");
    // The vmlinux is stripped: no name is guessed for the PC.
    assert!(vcpu.get("pc_at").is_none(), "{vcpu}");
}
