//! Boards through U-Boot, for real: the "board" is QEMU's virt machine running Debian's real
//! U-Boot (`u-boot-qemu`), powered on and off by `tests/board/qemu-board.sh` (the configs'
//! `board_reset_cmd` / `board_power_off_cmd`), its UART on one end of a null-modem cable
//! between two pseudo-terminals (`tests/board/serial_cable.py`) whose other end the tool opens
//! as its serial device, its network QEMU's user networking (U-Boot reaches the host's
//! loopback through the gateway 10.0.2.2, so the tool's TFTP server on `lo` serves it).
//!
//! Every run goes through `qemu-test run --uboot-config`; after each, no board QEMU may be
//! left (the power-off command ran).

pub mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fixtures::fixture;
use common::{Scratch, text};

/// The runs whose TFTP server binds 127.0.0.1:69, one at a time: in this process, and across
/// processes (other test runs on the same host, e.g. two checkouts' suites at once).
static TFTP_PORT: Mutex<()> = Mutex::new(());

struct PortGuard {
    _in_process: std::sync::MutexGuard<'static, ()>,
    _across: std::fs::File,
}

fn tftp_port() -> PortGuard {
    let in_process = TFTP_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join("qemu-test-action-tftp-port-69.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: flock on a descriptor this guard owns; released when it is closed.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    PortGuard {
        _in_process: in_process,
        _across: file,
    }
}

fn board_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/board")
}

/// The null-modem cable: (the tool's end, the board's end).
struct Cable {
    child: Child,
    host: String,
    board: String,
}

impl Cable {
    fn new() -> Cable {
        let mut child = Command::new("python3")
            .arg(board_dir().join("serial_cable.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs tests/board/serial_cable.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut ends = line.split_whitespace().map(str::to_string);
        let (host, board) = (ends.next().unwrap(), ends.next().unwrap());
        Cable { child, host, board }
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch dir with a board wired to it.
struct Bench {
    scratch: Scratch,
    cable: Cable,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            scratch: Scratch::new(),
            cable: Cable::new(),
        }
    }

    /// The power commands: the state (QEMU's pid file) lives in the scratch dir, so the
    /// scratch's no-QEMU-left check proves the power-off ran.
    fn power(&self) -> String {
        let script = board_dir().join("qemu-board.sh");
        let dir = self.scratch.path().display();
        format!(
            "board_reset_cmd = \"sh {s} on {dir} {tty}\"\nboard_power_off_cmd = \"sh {s} off {dir}\"\n",
            s = script.display(),
            tty = self.cable.board
        )
    }

    /// A U-Boot config on this bench's serial line with `rest` appended.
    fn config(&self, rest: &str) -> PathBuf {
        let text = format!(
            "serial = \"{}\"\nbaud_rate = \"115200\"\n{}{rest}",
            self.cable.host,
            self.power()
        );
        self.scratch.write("uboot.toml", &text)
    }

    fn run(&self, kernel: &Path, extra: &[&str]) -> (i32, String, serde_json::Value) {
        self.run_env(kernel, extra, &[])
    }

    /// [`Bench::run`] with variables set for the tool (and so for its power commands).
    fn run_env(
        &self,
        kernel: &Path,
        extra: &[&str],
        env: &[(&str, &OsStr)],
    ) -> (i32, String, serde_json::Value) {
        let mut args = vec![
            "run",
            "--uboot-config",
            "uboot.toml",
            "--kernel",
            kernel.to_str().unwrap(),
            "--arch",
            "aarch64",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let out = self
            .scratch
            .cmd(&args)
            .envs(env.iter().copied())
            .output()
            .expect("spawn qemu-test");
        common::assert_no_qemu_left(self.scratch.path());
        let (stdout, stderr) = text(&out);
        let results = std::fs::read_to_string(self.scratch.out().join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        (
            out.status.code().unwrap_or(-1),
            format!("{stdout}\n{stderr}"),
            results,
        )
    }
}

/// The network of the tests' board: static, the host's loopback as the TFTP server.
const NET: &str = "[net]\ninterface = \"lo\"\nboard_ip = \"10.0.2.15\"\ngatewayip = \"10.0.2.2\"\nnetmask = \"255.255.255.0\"\n";

fn linux_config(bench: &Bench, initramfs: &str) -> PathBuf {
    bench.config(&format!(
        "initrd_file = \"{}\"\nuboot_cmd = [\"setenv bootargs console=ttyAMA0 rdinit=/init\"]\n\
         success_regex = [\"test pass!\"]\nfail_regex = [\"panicked at\", \"Kernel panic\"]\n{NET}",
        fixture(&format!("arm64-linux/{initramfs}")).display()
    ))
}

/// The board stages in order, the first `n` reached.
fn reached(n: usize) -> Vec<(String, bool)> {
    [
        "U-Boot prompt",
        "network up",
        "image loaded",
        "kernel started",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| (s.to_string(), i < n))
    .collect()
}

/// Each of `wanted` is in `log`, after the one before it.
fn assert_in_order(log: &str, wanted: &[&str]) {
    let mut rest = log;
    for want in wanted {
        let at = rest
            .find(want)
            .unwrap_or_else(|| panic!("{want:?} not in the console log (in order):\n{log}"));
        rest = &rest[at + want.len()..];
    }
}

/// The stage entries of the case's timeline: (name, reached).
fn stages(results: &serde_json::Value) -> Vec<(String, bool)> {
    results["cases"][0]["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "stage")
        .map(|e| (e["name"].as_str().unwrap().to_string(), !e["at"].is_null()))
        .collect()
}

#[test]
fn debians_arm64_linux_boots_with_its_initramfs_through_u_boot_over_tftp() {
    let _port = tftp_port();
    let bench = Bench::new();
    linux_config(&bench, "initramfs.cpio.gz");
    let (code, out, results) = bench.run(&fixture("arm64-linux/kernel"), &["--timeout", "120s"]);
    assert_eq!(code, 0, "{out}");
    let case = &results["cases"][0];
    assert_eq!(case["verdict"]["outcome"], "pass", "{out}");
    assert_eq!(stages(&results), reached(4), "{out}");
    let log = std::fs::read_to_string(bench.scratch.out().join("kernel.log")).unwrap();
    // Real U-Boot, stopped at its countdown, booting with booti and the initrd.
    assert!(log.contains("Hit any key to stop autoboot"), "{log}");
    assert!(
        log.contains("booti ${qt_kernel} ${qt_initrd}:${qt_initrd_size} ${fdtcontroladdr}"),
        "{log}"
    );
    assert!(log.contains("Starting kernel ..."), "{log}");
    assert!(log.contains("Linux version"), "{log}");
    let power = std::fs::read_to_string(bench.scratch.out().join("kernel.power.log")).unwrap();
    assert!(power.contains("power on: board: power on"), "{power}");
    assert!(power.contains("power off: board: power off"), "{power}");
    // A board case has no QEMU command line.
    assert!(case["command"].is_null(), "{case}");
}

#[test]
fn a_kernel_that_panics_fails_on_its_panic_line() {
    let _port = tftp_port();
    let bench = Bench::new();
    linux_config(&bench, "initramfs-panic.cpio.gz");
    let (code, out, results) = bench.run(&fixture("arm64-linux/kernel"), &["--timeout", "120s"]);
    assert_eq!(code, 1, "{out}");
    let reason = results["cases"][0]["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("fail pattern 'panicked at' matched console line"),
        "{reason}"
    );
    assert!(stages(&results) == reached(4), "{out}");
}

/// A bare-metal kernel with an arm64 `Image` header (as AxVisor's and ArceOS' binaries have)
/// boots by `booti`, with U-Boot's own device tree, and prints its line through U-Boot.
#[test]
fn a_bare_metal_image_boots_by_booti_and_prints_its_line() {
    let _port = tftp_port();
    let bench = Bench::new();
    bench.config(&format!("success_regex = [\"Hello, world!\"]\n{NET}"));
    let (code, out, results) = bench.run(
        &fixture("aarch64-baremetal/hello.img"),
        &["--timeout", "60s"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(results["cases"][0]["verdict"]["outcome"], "pass", "{out}");
    assert!(stages(&results) == reached(4), "{out}");
    let log = std::fs::read_to_string(bench.scratch.out().join("hello.log")).unwrap();
    let booted = log
        .find("booti ${qt_kernel} - ${fdtcontroladdr}")
        .expect(&log);
    let started = log.find("Starting kernel ...").expect(&log);
    let hello = log.find("Hello, world!").expect(&log);
    assert!(booted < started && started < hello, "{log}");
}

/// Without `[net]` the kernel goes over the serial line: `loady` (YMODEM through the tool's
/// own console), then `booti`, through the whole `run`.
#[test]
fn without_a_network_the_kernel_is_loaded_by_loady_and_boots() {
    let bench = Bench::new();
    bench.config("success_regex = [\"Hello, world!\"]\n");
    let kernel = fixture("aarch64-baremetal/hello.img");
    let size = std::fs::metadata(&kernel).unwrap().len();
    let (code, out, results) = bench.run(&kernel, &["--timeout", "60s"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(results["cases"][0]["verdict"]["outcome"], "pass", "{out}");
    let log = std::fs::read_to_string(bench.scratch.out().join("hello.log")).unwrap();
    let total = format!("## Total Size      = {size:#010x} = {size} Bytes");
    let in_order = [
        "loady ${qt_kernel}",
        "## Ready for binary (ymodem) download",
        total.as_str(),
        "booti ${qt_kernel} - ${fdtcontroladdr}",
        "Starting kernel ...",
        "Hello, world!",
    ];
    assert_in_order(&log, &in_order);
    // No network stage: no [net].
    let names: Vec<String> = stages(&results).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["U-Boot prompt", "image loaded", "kernel started"],
        "{out}"
    );
}

/// A kernel that runs, prints, then hangs: the boot times out after "kernel started", on the
/// kernel's last line (not in U-Boot: every stage was reached and the kernel's line is there).
#[test]
fn a_hung_kernel_times_out_after_it_started() {
    let _port = tftp_port();
    let bench = Bench::new();
    bench.config(&format!("success_regex = [\"All tests passed!\"]\n{NET}"));
    let t = Instant::now();
    let (code, out, results) = bench.run(
        &fixture("aarch64-baremetal/hello_noexit.img"),
        &["--timeout", "12s"],
    );
    assert_eq!(code, 1, "{out}");
    let verdict = &results["cases"][0]["verdict"];
    assert_eq!(verdict["outcome"], "timeout", "{out}");
    let reason = verdict["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "timed out after 12s: no success pattern matched (waiting for 'All tests passed!'); \
             last console line "
        ) && reason.ends_with(": 'Hello, world!'"),
        "{reason}"
    );
    assert_eq!(stages(&results), reached(4), "{out}");
    let log = std::fs::read_to_string(bench.scratch.out().join("hello_noexit.log")).unwrap();
    assert!(
        log.contains("booti ${qt_kernel} - ${fdtcontroladdr}"),
        "{log}"
    );
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
}

#[test]
fn a_tftp_file_that_is_not_there_fails_with_u_boots_words() {
    let _port = tftp_port();
    let bench = Bench::new();
    bench.config(&format!(
        "success_regex = [\"Hello, world!\"]\nuboot_cmd = [\
         \"setenv ipaddr 10.0.2.15; setenv netmask 255.255.255.0; setenv gatewayip 10.0.2.2; setenv serverip 127.0.0.1\", \
         \"tftpboot 0x40400000 not-served.img\"]\n{NET}"
    ));
    let (code, out, results) = bench.run(
        &fixture("aarch64-baremetal/hang.elf"),
        &["--timeout", "60s"],
    );
    assert_eq!(code, 3, "{out}");
    let verdict = &results["cases"][0]["verdict"];
    assert_eq!(verdict["outcome"], "error", "{out}");
    assert_eq!(
        verdict["reason"],
        "board: U-Boot command `tftpboot 0x40400000 not-served.img` failed (status 1): TFTP error: 'File not found' (1)",
        "{out}"
    );
    assert_eq!(stages(&results), reached(1), "{out}");
}

#[test]
fn a_board_that_never_reaches_u_boot_fails_within_the_stage_deadline() {
    let bench = Bench::new();
    // Powered by nothing: the board never says a word.
    let text = format!(
        "serial = \"{}\"\nboard_reset_cmd = \"echo relay clicked\"\nboard_power_off_cmd = \"touch powered-off\"\n\
         uboot_timeout = \"3s\"\nsuccess_regex = [\"Hello\"]\n",
        bench.cable.host
    );
    bench.scratch.write("uboot.toml", &text);
    let t = Instant::now();
    let (code, out, results) = bench.run(
        &fixture("aarch64-baremetal/hang.elf"),
        &["--timeout", "60s"],
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(code, 3, "{out}");
    assert_eq!(
        results["cases"][0]["verdict"]["reason"],
        "board: the board did not reach the U-Boot prompt within 3s of power-on (no autoboot countdown and no prompt on the serial console)",
        "{out}"
    );
    assert!(out.contains("power on | relay clicked"), "{out}");
    assert!(
        bench.scratch.path().join("powered-off").exists(),
        "power off ran"
    );
}

#[test]
fn a_serial_device_that_does_not_exist_is_an_infra_error_naming_it() {
    let s = Scratch::new();
    s.write(
        "uboot.toml",
        "serial = \"/dev/ttyNOSUCHBOARD0\"\nboard_reset_cmd = \"touch powered-on\"\nsuccess_regex = [\"x\"]\n",
    );
    let kernel = fixture("aarch64-baremetal/hang.elf");
    let out = s.run(&[
        "run",
        "--uboot-config",
        "uboot.toml",
        "--kernel",
        kernel.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}")
            .contains("the serial device /dev/ttyNOSUCHBOARD0 does not exist"),
        "{stdout}{stderr}"
    );
    assert!(!s.path().join("powered-on").exists(), "never powered");
}

#[test]
fn a_serial_device_locked_by_another_run_is_busy() {
    let bench = Bench::new();
    bench.config("success_regex = [\"x\"]\n");
    // Another job holds the board's console (as a second qemu-test would).
    let held = std::fs::File::open(&bench.cable.host).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let (code, out, _) = bench.run(&fixture("aarch64-baremetal/hang.elf"), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!("the serial device {} is busy", bench.cable.host)),
        "{out}"
    );
    drop(held);
}

/// A board run that stops before the boot (here: `[net] interface` has no address, found after
/// the files were staged) leaves nothing behind in the host's `tftp_dir`, and powers nothing.
#[test]
fn a_run_that_stops_before_the_boot_leaves_nothing_in_tftp_dir() {
    let bench = Bench::new();
    let tftp = bench.scratch.path().join("tftp");
    std::fs::create_dir(&tftp).unwrap();
    bench.config(&format!(
        "success_regex = [\"x\"]\n[net]\ninterface = \"nosuch0\"\ntftp_dir = \"{}\"\n",
        tftp.display()
    ));
    let (code, out, _) = bench.run(&fixture("aarch64-baremetal/hang.elf"), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("the network interface nosuch0 ([net] interface) has no IPv4 address"),
        "{out}"
    );
    let left: Vec<_> = std::fs::read_dir(&tftp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in tftp_dir: {left:?}");
}

/// The board runner's own TFTP server (the tftpd a board host runs, whose root is `[net]
/// tftp_dir`): async-tftp serving `root` read-only on 127.0.0.1:69 until dropped.
struct HostTftpd {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostTftpd {
    fn serve(root: &Path) -> HostTftpd {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, listening) = std::sync::mpsc::channel();
        let root = root.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = async_tftp::server::TftpServerBuilder::with_dir_ro(&root)
                    .unwrap()
                    .bind("127.0.0.1:69".parse().unwrap())
                    .build()
                    .await
                    .expect("bind the host's TFTP server on 127.0.0.1:69");
                ready.send(()).unwrap();
                tokio::select! {
                    _ = server.serve() => {}
                    _ = stopped => {}
                }
            });
        });
        listening.recv().expect("the host's TFTP server started");
        HostTftpd {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for HostTftpd {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.thread.take().unwrap().join();
    }
}

/// AxVisor's board `uboot.toml` exactly as its repository has it, every value from the board
/// runner's variables, pointed at the QEMU board: Debian's arm64 Linux booted with `booti`
/// and the board's device tree (`BOARD_DTB`), fetched by U-Boot after DHCP from the runner's
/// own TFTP server (files copied into `TFTP_DIR`). The kernel finds its bootargs and its
/// initramfs (in the board's RAM) only in that device tree, so reaching AxVisor's "Hello
/// World!" pattern proves the DTB the config names is the one Linux got.
#[test]
fn axvisors_unmodified_uboot_toml_boots_debians_linux_from_the_runners_tftp_dir() {
    let _port = tftp_port();
    let bench = Bench::new();
    let original = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/axvisor/.github/workflows/uboot.toml"),
    )
    .unwrap();
    let config = bench.scratch.path().join("uboot.toml");
    std::fs::write(&config, &original).unwrap();
    let ramdisk = fixture("arm64-linux/initramfs-hello.cpio.gz");
    let dtb = bench.scratch.path().join("board.dtb");
    let made = Command::new("sh")
        .arg(board_dir().join("qemu-board.sh"))
        .args(["dtb", dtb.to_str().unwrap(), "console=ttyAMA0 rdinit=/init"])
        .arg(&ramdisk)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tftp_dir = bench.scratch.path().join("srv-tftp");
    std::fs::create_dir(&tftp_dir).unwrap();
    let _tftpd = HostTftpd::serve(&tftp_dir);
    let script = board_dir().join("qemu-board.sh");
    let dir = bench.scratch.path();
    let reset = format!(
        "sh {} on {} {}",
        script.display(),
        dir.display(),
        bench.cable.board
    );
    let off = format!("sh {} off {}", script.display(), dir.display());
    let (code, out, results) = bench.run_env(
        &fixture("arm64-linux/kernel"),
        &["--timeout", "120s"],
        &[
            ("BOARD_COMM_UART_DEV", OsStr::new(&bench.cable.host)),
            ("BOARD_COMM_UART_BAUD", OsStr::new("115200")),
            ("BOARD_POWER_RESET", OsStr::new(&reset)),
            ("BOARD_POWER_OFF", OsStr::new(&off)),
            ("BOARD_DTB", dtb.as_os_str()),
            ("BOARD_COMM_NET_IFACE", OsStr::new("lo")),
            ("TFTP_DIR", tftp_dir.as_os_str()),
            // The board's storage (qemu-board.sh): the initramfs in its RAM.
            ("BOARD_RAMDISK", ramdisk.as_os_str()),
        ],
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        original,
        "the config is AxVisor's, unmodified"
    );
    assert_eq!(code, 0, "{out}");
    let case = &results["cases"][0];
    assert_eq!(case["verdict"]["outcome"], "pass", "{out}");
    assert!(
        case["verdict"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("success pattern 'Hello World!' matched"),
        "{out}"
    );
    assert!(stages(&results) == reached(4), "{out}");
    let log = std::fs::read_to_string(bench.scratch.out().join("kernel.log")).unwrap();
    let in_order = [
        // DHCP (the config has no board_ip), the runner's server at lo's address.
        "setenv autoload no; dhcp",
        "DHCP client bound to address 10.0.2.15",
        "setenv serverip 127.0.0.1",
        // From TFTP_DIR, under this run's own directory there.
        "tftpboot ${qt_kernel} qemu-test-kernel/kernel",
        "tftpboot ${qt_fdt} qemu-test-kernel/dtb",
        "booti ${qt_kernel} - ${qt_fdt}",
        "Starting kernel ...",
        // The bootargs of BOARD_DTB (U-Boot sets none: bootargs is unset in its environment).
        "Kernel command line: console=ttyAMA0 rdinit=/init",
        "Hello World!",
    ];
    assert_in_order(&log, &in_order);
    // The copies in TFTP_DIR are gone after the run; the runner's directory stays.
    assert_eq!(std::fs::read_dir(&tftp_dir).unwrap().count(), 0);
}
