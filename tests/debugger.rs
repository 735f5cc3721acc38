//! End-to-end: a debugger on the guest, on demand. `run --gdb` starts QEMU paused with a
//! gdbstub and prints the gdb line; the real gdb (Debian's gdb-multiarch, run with exactly the
//! printed line) reads a register and continues, and the boot's deadline counts only the
//! guest's running time. `run --pause-on-fail` keeps a failed QEMU stopped with a gdbstub and a
//! QMP socket until SIGINT, which ends the pause (not the run). Both are refused in GitHub
//! Actions. Real QEMU, real fixtures; the waits are on what the tool prints and on sockets,
//! each with a deadline.

pub mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::fixtures::fixture;
use common::{BAREMETAL_CONFIG, Scratch, assert_no_qemu_left, text};

/// Longest wait for anything the tool or QEMU does.
const WAIT: Duration = Duration::from_secs(60);

/// The debugger the tool names for an aarch64 guest on this host.
fn debugger() -> &'static str {
    if std::env::consts::ARCH == "aarch64" {
        "gdb"
    } else {
        "gdb-multiarch"
    }
}

/// A `qemu-test` in the background whose stderr is read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(s: &Scratch, args: &[&str]) -> Running {
        let mut child = s
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qemu-test");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next stderr line containing `needle`, waiting at most [`WAIT`].
    fn line(&mut self, needle: &str) -> String {
        let until = Instant::now() + WAIT;
        loop {
            match self
                .lines
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "no line with {needle:?} ({e}); stderr so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    /// Waits (at most [`WAIT`]) for the exit; its code and all of stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let until = Instant::now() + WAIT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                self.seen.extend(self.lines.try_iter());
                panic!("qemu-test did not end:\n{}", self.seen.join("\n"));
            }
            // Polling an outside process's exit: nothing can tell us sooner.
            std::thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.iter());
        (status.code(), self.seen.join("\n"))
    }
}

/// `run --kernel <variant>.elf --qemu-config <BAREMETAL_CONFIG> <extra>`: the aarch64
/// bare-metal fixture's arguments, and its kernel.
fn baremetal(s: &Scratch, variant: &str, extra: &[&str]) -> (Vec<String>, std::path::PathBuf) {
    let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
    let kernel = fixture(&format!("aarch64-baremetal/{variant}.elf"));
    let mut args: Vec<String> = ["run", "--kernel", kernel.to_str().unwrap()]
        .into_iter()
        .chain(["--qemu-config", cfg.to_str().unwrap()])
        .map(String::from)
        .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    (args, kernel)
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Polls (at most [`WAIT`]) for `path` to appear: QEMU creates its sockets after it starts.
fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < WAIT, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The gdb command line in a note: from the debugger's name on.
fn gdb_line(note: &str) -> String {
    let at = note
        .find(&format!("{} -ex '", debugger()))
        .unwrap_or_else(|| panic!("no gdb line in {note:?}"));
    note[at..].to_string()
}

/// Runs `line` (the printed gdb command) through sh in batch mode with `commands`; its output.
fn gdb(line: &str, commands: &[&str]) -> String {
    let mut script = format!("timeout 60 {line} -batch -nx");
    for c in commands {
        script.push_str(&format!(" -ex '{c}'"));
    }
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    let (stdout, stderr) = text(&out);
    format!("{stdout}{stderr}")
}

/// One QMP command on a unix socket QEMU listens on (after the greeting and capabilities).
fn qmp(socket: &Path, command: &str) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).expect("connect to QMP");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "{{\"execute\":\"qmp_capabilities\"}}\n{{\"execute\":\"{command}\",\"id\":1}}\n"
    )
    .unwrap();
    let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
    loop {
        let line = lines.next().expect("QMP closed").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["id"] == 1 {
            return v["return"].clone();
        }
    }
}

/// The boot stage's duration in `results.json`'s first case, in seconds.
fn boot_seconds(s: &Scratch) -> f64 {
    let stages = s.results()["cases"][0]["stages"].clone();
    stages
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["stage"] == "boot")
        .and_then(|t| t["duration"].as_f64())
        .unwrap_or_else(|| panic!("no boot stage: {stages}"))
}

#[test]
fn gdb_attaches_reads_a_register_continues_and_the_paused_time_is_not_the_guests() {
    let s = Scratch::new();
    let (args, kernel) = baremetal(&s, "hello", &["--timeout", "2s", "--gdb"]);
    let mut run = Running::start(&s, &strs(&args));
    let line = gdb_line(&run.line(" -ex 'target remote "));
    let socket = s.out().join("cases/hello/gdb.sock");
    assert_eq!(
        line,
        format!(
            "{} -ex 'target remote {}' {}",
            debugger(),
            socket.display(),
            kernel.display()
        )
    );
    wait_for_file(&socket);
    // Held longer than the boot's whole deadline before the debugger continues: a deadline
    // counting this wait would end the boot as a timeout.
    let held = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    let out = gdb(&line, &["info registers pc", "continue"]);
    // QEMU starts an aarch64 `-kernel` ELF at its entry point, `_start`.
    assert!(
        out.contains("0x40080000") && out.contains("<_start>"),
        "{out}"
    );
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(held.elapsed() > Duration::from_secs(2));
    assert_eq!(s.verdict()["outcome"], "pass", "{stderr}");
    let boot = boot_seconds(&s);
    assert!(
        boot < 2.0,
        "the boot counted the wait for the debugger: {boot}s"
    );
    assert_no_qemu_left(s.path());
    assert!(!socket.exists(), "the gdbstub's socket is removed");
}

/// AxVisor-shaped: a VM config boots a guest kernel ELF (here the `wfi` fixture, at a path
/// with a blank). The printed line adds its symbols to the hypervisor's, and the real gdb, run
/// with exactly that line, knows a function only the guest has and still starts the boot.
#[test]
fn the_gdb_line_loads_the_guest_kernels_the_vm_configs_boot() {
    let s = Scratch::new();
    let guest = s.path().join("guest dir/wfi guest.elf");
    std::fs::create_dir_all(guest.parent().unwrap()).unwrap();
    std::fs::copy(fixture("aarch64-baremetal/wfi.elf"), &guest).unwrap();
    let vm = s.write(
        "vm.toml",
        "[base]\nid = 1\n[kernel]\nimage_location = \"memory\"\n\
         kernel_path = \"guest dir/wfi guest.elf\"\n[devices]\n",
    );
    let (args, kernel) = baremetal(
        &s,
        "hello",
        &[
            "--timeout",
            "20s",
            "--gdb",
            "--vmconfigs",
            vm.to_str().unwrap(),
        ],
    );
    let mut run = Running::start(&s, &strs(&args));
    let line = gdb_line(&run.line(" -ex 'target remote "));
    let socket = s.out().join("cases/hello/gdb.sock");
    assert_eq!(
        line,
        format!(
            "{} -ex 'set confirm off' -ex 'add-symbol-file \"{}\"' -ex 'set confirm on' \
             -ex 'target remote {}' {}",
            debugger(),
            guest.display(),
            socket.display(),
            kernel.display()
        )
    );
    wait_for_file(&socket);
    let out = gdb(&line, &["info address sleep_forever", "continue"]);
    assert!(
        out.contains("Symbol \"sleep_forever\" is a function at address 0x"),
        "gdb has the guest's symbols: {out}"
    );
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(s.verdict()["outcome"], "pass", "{stderr}");
    assert_no_qemu_left(s.path());
}

#[test]
fn ctrl_c_while_qemu_waits_on_a_loopback_port_ends_the_run_and_reaps_qemu() {
    let s = Scratch::new();
    // A loopback port this time: a free one, as the system hands it out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (args, kernel) = baremetal(&s, "hello", &["--timeout", "1s", "--gdb", &addr]);
    let mut run = Running::start(&s, &strs(&args));
    let line = gdb_line(&run.line(" -ex 'target remote "));
    assert_eq!(
        line,
        format!(
            "{} -ex 'target remote {addr}' {}",
            debugger(),
            kernel.display()
        )
    );
    // QEMU listens there once it runs; the guest still waits (no deadline passes meanwhile).
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < WAIT, "QEMU never listened on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.signal(libc::SIGINT);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(s.verdict()["outcome"], "cancelled", "{stderr}");
    assert_no_qemu_left(s.path());
}

/// A suite of a hanging case and a passing one with `--pause-on-fail`: the hang times out and
/// stays, stopped, with a QMP monitor (it answers "paused") and a gdbstub (gdb reads the PC
/// in `main`, where the hang spins); SIGINT ends the pause, QEMU is reaped, the hang reports
/// its timeout and the next case still runs and passes — the signal did not cancel the run.
#[test]
fn pause_on_fail_keeps_the_failed_qemu_stopped_until_ctrl_c_and_the_run_goes_on() {
    let s = Scratch::new();
    let cfg = s.write("qemu.toml", BAREMETAL_CONFIG);
    let suite = s.write(
        "suite.toml",
        &format!(
            "[defaults]\nqemu-config = \"{}\"\n\
             [[case]]\nname = \"hang\"\nkernel = \"{}\"\ntimeout = \"1s\"\n\
             [[case]]\nname = \"hello\"\nkernel = \"{}\"\ntimeout = \"60s\"\n",
            cfg.display(),
            fixture("aarch64-baremetal/hang.elf").display(),
            fixture("aarch64-baremetal/hello.elf").display(),
        ),
    );
    let mut run = Running::start(
        &s,
        &["run", "--suite", suite.to_str().unwrap(), "--pause-on-fail"],
    );
    let paused = run.line("paused on failure");
    assert!(paused.contains("vCPU0 at EL2 in main+0x"), "{paused}");
    let line = gdb_line(&run.line("gdb: "));
    let qmp_line = run.line("QMP: ");
    let qmp_socket = Path::new(qmp_line.split("QMP: ").nth(1).unwrap()).to_path_buf();
    assert_eq!(qmp_socket, s.out().join("cases/hang/qmp-debug.sock"));
    let status = qmp(&qmp_socket, "query-status");
    assert_eq!(status["status"], "paused", "{status}");
    assert_eq!(status["running"], false, "{status}");
    // `disconnect` leaves the guest as it is (`detach`, gdb's default on quit, continues it).
    let out = gdb(&line, &["info registers pc", "disconnect"]);
    assert!(out.contains("<main+"), "gdb reads where it stopped: {out}");
    // Still paused after the debugger left.
    assert_eq!(qmp(&qmp_socket, "query-status")["status"], "paused");
    run.signal(libc::SIGINT);
    let (code, stderr) = run.finish();
    assert_eq!(
        code,
        Some(1),
        "the failure's exit code, not a cancel: {stderr}"
    );
    let results = s.results();
    let cases = results["cases"].as_array().unwrap();
    assert_eq!(cases[0]["verdict"]["outcome"], "timeout", "{results}");
    let reason = cases[0]["verdict"]["reason"].as_str().unwrap();
    assert!(reason.contains("timed out after 1s"), "{reason}");
    assert!(
        cases[0]["verdict"]
            .get("cancelled_by")
            .is_none_or(|c| c.is_null()),
        "{results}"
    );
    assert_eq!(cases[1]["verdict"]["outcome"], "pass", "{results}");
    assert!(stderr.contains("TIMEOUT hang"), "{stderr}");
    assert_no_qemu_left(s.path());
    for sock in ["gdb.sock", "qmp-debug.sock"] {
        assert!(!s.out().join("cases/hang").join(sock).exists(), "{sock}");
    }
}

#[test]
fn debugging_is_refused_in_github_actions_and_with_parallel_jobs() {
    let s = Scratch::new();
    let (base, _) = baremetal(&s, "hello", &[]);
    let base = strs(&base);
    for flag in ["--gdb", "--pause-on-fail"] {
        let out = s
            .actions_cmd(&[&base[..], &[flag]].concat())
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{flag} waits for a person to attach a debugger; refused in GitHub Actions \
                 (GITHUB_ACTIONS=true)"
            )),
            "{stderr}"
        );
        let out = s.run(&[&base[..], &[flag, "--jobs", "2"]].concat());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--jobs 2 asks for more"), "{stderr}");
    }
    for (addr, why) in [
        ("0.0.0.0:1234", "0.0.0.0 is not a loopback address"),
        ("127.0.0.1:0", "port 0"),
    ] {
        let out = s.run(&[&base[..], &["--gdb", addr]].concat());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
    assert!(!s.out().exists(), "nothing ran");
}

/// A board has no gdbstub: the flags on a case that boots through U-Boot are refused before
/// anything runs, not silently dropped.
#[test]
fn debugging_a_board_case_is_refused() {
    let s = Scratch::new();
    let cfg = s.write(
        "uboot.toml",
        "serial = \"/dev/ttyNOSUCHBOARD0\"\nboard_reset_cmd = \"touch powered-on\"\n\
         success_regex = [\"x\"]\n",
    );
    let kernel = fixture("aarch64-baremetal/hello.elf");
    for flag in ["--gdb", "--pause-on-fail"] {
        let out = s.run(&[
            "run",
            "--uboot-config",
            cfg.to_str().unwrap(),
            "--kernel",
            kernel.to_str().unwrap(),
            flag,
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains(&format!(
                "{flag} debugs a guest in QEMU (its gdbstub); case `hello` boots on a board"
            )),
            "{stderr}"
        );
        assert!(!s.path().join("powered-on").exists(), "never powered");
    }
}

/// `gdb = …` in a config is an error naming the flag (`check` reads configs the same way).
#[test]
fn check_names_the_flag_for_a_debugging_key_in_a_config() {
    let s = Scratch::new();
    let cfg = s.write(
        "qemu.toml",
        &format!("{BAREMETAL_CONFIG}pause_on_fail = true\n"),
    );
    let out = s.run(&["check", "--qemu-config", cfg.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}")
            .contains("is a command-line flag only: `qemu-test run --pause-on-fail`"),
        "{stdout}{stderr}"
    );
}
