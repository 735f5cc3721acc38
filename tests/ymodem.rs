//! YMODEM to Debian's real U-Boot (`u-boot-qemu`, qemu_arm64) on QEMU's `virt`: `loady` loads a
//! bare-metal fixture, U-Boot's reported size, `filesize` and `crc32` of the loaded range match
//! ours; and the failures: U-Boot cancelling (a flash write fails), a line that corrupts
//! blocks (U-Boot rejects them: resent, or too many), no receiver, the deadline.
//!
//! And lrzsz's `rb`, a receiver that follows the YMODEM spec where U-Boot does not.
//!
//! U-Boot's serial is a unix socket this test listens on and QEMU connects to (no polling).
//! The only stand-in is [`Noisy`], which flips one byte of chosen blocks on their way to U-Boot,
//! as a bad line would; U-Boot's own CRC check then rejects them.

pub mod common;

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::archives::noise;
use qemu_test_action::board::ymodem::{
    self, Loaded, LoadyError, Options, Progress, Stage, YmodemError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::time::Instant;

const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// Where the bare-metal fixtures are linked.
const LOAD_ADDR: u64 = 0x4008_0000;
/// U-Boot's prompt at the start of a line (`crc32` prints `==> `).
const PROMPT: &[u8] = b"\n=> ";

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// QEMU running U-Boot, its serial on `console`, what it printed and no wait consumed yet in
/// `seen`.
struct Board {
    qemu: Child,
    console: Noisy,
    seen: Vec<u8>,
    dir: tempfile::TempDir,
}

impl Board {
    /// Boots U-Boot and stops its autoboot; returns at the `=> ` prompt.
    async fn at_prompt() -> Board {
        assert!(
            Path::new(UBOOT).exists(),
            "{UBOOT} missing: install Debian's u-boot-qemu (scripts/install-deps.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("qtest-ymodem-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("serial.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let qemu = Command::new("qemu-system-aarch64")
            .args(["-M", "virt", "-cpu", "cortex-a57", "-m", "256M"])
            .args(["-display", "none", "-monitor", "none", "-nic", "none"])
            .args(["-bios", UBOOT])
            .arg("-chardev")
            .arg(format!("socket,id=ser,path={}", sock.display()))
            .args(["-serial", "chardev:ser"])
            .kill_on_drop(true)
            .spawn()
            .expect("spawn qemu-system-aarch64");
        let (stream, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .expect("QEMU connects to the serial socket")
            .unwrap();
        let mut board = Board {
            qemu,
            console: Noisy::clean(stream),
            seen: Vec::new(),
            dir,
        };
        board.wait_for(b"Hit any key to stop autoboot").await;
        board.type_text(" ").await;
        board.wait_for(PROMPT).await;
        board
    }

    /// Reads until `needle` appears in what is not consumed yet (60 s at most); consumes and
    /// returns the text through it.
    async fn wait_for(&mut self, needle: &[u8]) -> String {
        let until = Instant::now() + Duration::from_secs(60);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.seen.windows(needle.len()).position(|w| w == needle) {
                let through: Vec<u8> = self.seen.drain(..i + needle.len()).collect();
                return String::from_utf8_lossy(&through).into_owned();
            }
            let n = tokio::time::timeout_at(until, self.console.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "U-Boot did not print {:?}; it printed:\n{}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&self.seen)
                    )
                })
                .unwrap();
            assert!(
                n > 0,
                "serial closed; U-Boot printed:\n{}",
                String::from_utf8_lossy(&self.seen)
            );
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    async fn type_text(&mut self, text: &str) {
        self.console.write_all(text.as_bytes()).await.unwrap();
    }

    /// Types `cmd` at the prompt and returns its output up to the next prompt.
    async fn command(&mut self, cmd: &str) -> String {
        self.type_text(&format!("{cmd}\r")).await;
        self.wait_for(PROMPT).await
    }

    /// `loady` of `data` at `addr`, and U-Boot's console through the next prompt.
    async fn loady(
        &mut self,
        addr: u64,
        data: &[u8],
        opts: &Options,
        progress: impl FnMut(Progress),
    ) -> (Result<Loaded, LoadyError>, String) {
        let seen = &mut self.seen;
        let res = ymodem::loady(
            &mut self.console,
            addr,
            "kernel.bin",
            data,
            opts,
            |b| seen.extend_from_slice(b),
            progress,
        )
        .await;
        let console = self.wait_for(PROMPT).await;
        (res, console)
    }

    /// U-Boot's `crc32 <addr> <len>` of the loaded range.
    async fn crc32(&mut self, addr: u64, len: usize) -> u32 {
        let out = self.command(&format!("crc32 {addr:#x} {len:#x}")).await;
        // crc32 for 40080000 ... 40080151 ==> 8f6c2e1b
        let hex = out
            .split("==>")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no crc32 result in: {out}"));
        u32::from_str_radix(hex, 16).unwrap()
    }

    async fn stop(mut self) {
        let _ = self.qemu.kill().await;
        common::assert_no_qemu_left(self.dir.path());
    }
}

/// Panics unless each of `lines` is in `console`, in this order.
fn assert_in_order(console: &str, lines: &[&str]) {
    let mut at = 0;
    for line in lines {
        match console[at..].find(line) {
            Some(i) => at += i + line.len(),
            None => panic!("{line:?} not in order in:\n{console}"),
        }
    }
}

fn hello_bin() -> Vec<u8> {
    std::fs::read(common::fixtures::fixture("aarch64-baremetal/hello.bin")).unwrap()
}

fn opts(total: Duration) -> Options {
    Options {
        block_timeout: Duration::from_secs(10),
        ..Options::within(total)
    }
}

#[tokio::test]
async fn loady_loads_a_kernel_that_uboot_checks() {
    let data = hello_bin();
    let mut board = Board::at_prompt().await;
    let mut progress: Vec<Progress> = Vec::new();
    let (loaded, console) = board
        .loady(LOAD_ADDR, &data, &opts(Duration::from_secs(60)), |p| {
            progress.push(p)
        })
        .await;
    let loaded = loaded.unwrap_or_else(|e| panic!("loady failed: {e}\nconsole:\n{console}"));
    assert_eq!(loaded.addr, LOAD_ADDR);
    assert_eq!(loaded.size, data.len() as u64);
    assert_eq!(loaded.sent.bytes, data.len() as u64);
    assert!(loaded.sent.crc16, "U-Boot asks for CRC-16");
    assert_eq!(loaded.sent.retries, 0);
    assert_eq!(progress.last().unwrap().sent, data.len() as u64);
    assert_eq!(progress.len() as u32, loaded.sent.blocks);
    // Every console line came through the `console` callback, in order.
    assert_in_order(
        &console,
        &[
            "loady 0x40080000",
            "## Ready for binary (ymodem) download to 0x40080000",
            &format!(
                "## Total Size      = {:#010x} = {} Bytes",
                data.len(),
                data.len()
            ),
        ],
    );

    let filesize = board.command("printenv filesize").await;
    assert!(
        filesize.contains(&format!("filesize={:x}\r", data.len())),
        "{filesize}"
    );
    assert_eq!(
        board.crc32(LOAD_ADDR, data.len()).await,
        CRC32.checksum(&data),
        "the loaded range differs from the file"
    );
    // Not run with `go`: Debian 12's U-Boot (2023.01) flushes the console before jumping and its
    // PL011 driver reports output pending whenever the TX FIFO is not full, so `go` never
    // jumps (on any PL011 board); `crc32` above is the check that the bytes arrived.
    board.stop().await;
}

#[tokio::test]
async fn multi_block_file_with_a_short_last_block() {
    // 5 × 1 KiB + 100 bytes: data blocks 1–5 STX, block 6 SOH, padding cut by the header's size.
    let data = noise(5 * 1024 + 100, 7);
    let mut board = Board::at_prompt().await;
    let loaded = board
        .loady(0x4040_0000, &data, &opts(Duration::from_secs(60)), |_| {})
        .await
        .0
        .unwrap();
    assert_eq!(loaded.sent.blocks, 6);
    assert_eq!(loaded.size, data.len() as u64);
    assert_eq!(
        board.crc32(0x4040_0000, data.len()).await,
        CRC32.checksum(&data)
    );
    board.stop().await;
}

/// The serial line as the board sees it: flips byte 10 of the frames of data block `seq` (their
/// CRC then fails at U-Boot) `times` times; passes everything else through.
struct Noisy {
    inner: UnixStream,
    seq: u8,
    times: u32,
    flipped: u32,
}

impl Noisy {
    fn clean(inner: UnixStream) -> Noisy {
        Noisy {
            inner,
            seq: 0,
            times: 0,
            flipped: 0,
        }
    }

    /// From now on, corrupt block `seq` `times` times.
    fn corrupt(&mut self, seq: u8, times: u32) {
        self.seq = seq;
        self.times = times;
        self.flipped = 0;
    }
}

impl AsyncRead for Noisy {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Noisy {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let frame = buf.len() > 10 && buf[0] == 0x02 && buf[1] == self.seq && buf[2] == !self.seq;
        if frame && self.flipped < self.times {
            let mut bad = buf.to_vec();
            bad[10] ^= 0x40;
            let res = Pin::new(&mut self.inner).poll_write(cx, &bad);
            if let Poll::Ready(Ok(n)) = res
                && n > 10
            {
                self.flipped += 1;
            }
            return res;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn corrupted_blocks_are_sent_again_or_fail_after_the_retries() {
    let data = noise(4 * 1024, 11);
    let mut board = Board::at_prompt().await;

    // Block 2 corrupted twice: U-Boot rejects it (C), the sender resends, the load is intact.
    board.console.corrupt(2, 2);
    let (loaded, console) = board
        .loady(0x4040_0000, &data, &opts(Duration::from_secs(60)), |_| {})
        .await;
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}\n{console}"));
    assert_eq!(board.console.flipped, 2);
    assert_eq!(loaded.sent.retries, 2);
    assert_eq!(
        board.crc32(0x4040_0000, data.len()).await,
        CRC32.checksum(&data)
    );

    // Block 3 always corrupted: after max_retries resends the sender gives up and cancels
    // U-Boot, which is back at its prompt.
    board.console.corrupt(3, u32::MAX);
    let started = Instant::now();
    let few_retries = Options {
        max_retries: 3,
        ..opts(Duration::from_secs(60))
    };
    let (res, console) = board.loady(0x4040_0000, &data, &few_retries, |_| {}).await;
    let err = res.unwrap_err();
    // U-Boot saw our CANs.
    assert_in_order(
        &console,
        &["\nCancelled\r", "## Binary (ymodem) download aborted"],
    );
    assert!(
        matches!(
            err,
            LoadyError::Transfer(YmodemError::TooManyRetries {
                stage: Stage::Block { n: 3, of: 4 },
                retries: 4
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "loady: the receiver rejected data block 3 of 4 4 times (NAK): the line corrupts data"
    );
    assert_eq!(board.console.flipped, 4);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        board
            .command("echo still here")
            .await
            .contains("still here")
    );
    board.stop().await;
}

#[tokio::test]
async fn uboot_cancelling_ends_the_send_at_once() {
    // 0x0 is the virt machine's flash (U-Boot itself, protected): U-Boot's flash write of the
    // first 1 KiB fails and it cancels the transfer (CAN ×4) before it ACKs block 1.
    let data = noise(4 * 1024, 13);
    let mut board = Board::at_prompt().await;
    let started = Instant::now();
    let (res, console) = board
        .loady(0, &data, &opts(Duration::from_secs(60)), |_| {})
        .await;
    let err = res.unwrap_err();
    assert_in_order(
        &console,
        &[
            "Can't write to protected Flash sectors",
            "## Binary (ymodem) download aborted",
        ],
    );
    assert!(
        matches!(
            err,
            LoadyError::Transfer(YmodemError::Cancelled {
                stage: Stage::Block { n: 1, of: 4 }
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "loady: the receiver cancelled the transfer (CAN CAN) at data block 1 of 4"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A file of one block is all sent (U-Boot reads on to EOT before storing): U-Boot's
    // failure comes after the transfer, in its summary.
    let err = board
        .loady(0, &hello_bin(), &opts(Duration::from_secs(60)), |_| {})
        .await
        .0
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "U-Boot aborted the download: ## Binary (ymodem) download aborted"
    );
    board.stop().await;
}

/// `send` that must fail, with its block timeout and a deadline `deadline_ms` away; the error
/// and how long it took.
async fn send_failing(
    board: &mut Board,
    data: &[u8],
    block_timeout: Duration,
    deadline_ms: u64,
) -> (YmodemError, Duration) {
    let started = Instant::now();
    let opts = Options {
        block_timeout,
        ..Options::within(Duration::from_millis(deadline_ms))
    };
    let err = ymodem::send(&mut board.console, "hello.bin", data, &opts, |_| {})
        .await
        .unwrap_err();
    (err, started.elapsed())
}

#[tokio::test]
async fn no_receiver_fails_within_the_block_timeout_and_the_deadline() {
    let data = hello_bin();
    let mut board = Board::at_prompt().await;

    // U-Boot at its prompt, no loady: nothing asks for the file.
    let (err, took) = send_failing(&mut board, &data, Duration::from_secs(2), 60_000).await;
    assert!(matches!(err, YmodemError::NoReceiver { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no YMODEM receiver: nothing asked for the file (C or NAK) within 2s"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // The deadline comes before the block timeout: it is the deadline that is reported.
    let (err, took) = send_failing(&mut board, &data, Duration::from_secs(30), 800).await;
    assert!(
        matches!(
            err,
            YmodemError::Deadline {
                stage: Stage::Start,
                sent: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("the transfer did not end within its deadline (") // 799ms from the start)
            && text.ends_with(" at the receiver's start (C or NAK): 0 of 338 bytes acknowledged"),
        "{text}"
    );

    // Nothing was typed at U-Boot's prompt: it still answers.
    assert!(board.command("echo ok").await.contains("ok"));
    board.stop().await;
}

/// lrzsz's `rb` (a standard YMODEM batch receiver) on pipes, in `dir`.
fn rb(dir: &Path) -> (Child, impl AsyncRead + AsyncWrite + Unpin) {
    let mut child = Command::new("rb")
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rb (Debian's lrzsz, scripts/install-deps.sh)");
    let io = tokio::io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap());
    (child, io)
}

#[tokio::test]
async fn a_standard_receiver_gets_the_same_file() {
    // lrzsz's rb answers as the YMODEM spec says, where U-Boot does not: `C` after the header's
    // ACK, a second look for data after EOT. It writes the file under the header's name, cut to
    // its size. (rb itself takes ~3 s a file: a 1 s purge at the start and 2 after EOT.)
    let dir = tempfile::tempdir().unwrap();
    for (name, size) in [("exact.bin", 3 * 1024), ("many.bin", 40 * 1024 + 129)] {
        let data = noise(size, 3);
        let (mut child, mut io) = rb(dir.path());
        let mut progress = Vec::new();
        let sent = ymodem::send(&mut io, name, &data, &opts(Duration::from_secs(60)), |p| {
            progress.push(p.sent)
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{name}: rb exited {status}");
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            data,
            "{name}"
        );
        assert_eq!(sent.retries, 0, "{name}");
        assert_eq!(sent.blocks as usize, size.div_ceil(1024), "{name}");
        assert_eq!(progress.last().copied(), Some(size as u64), "{name}");
    }
}

#[tokio::test]
async fn a_console_without_uboot_is_not_ready() {
    // A board that booted past U-Boot into a shell: `loady` is not a command there. (`tr` does
    // what a tty's ICRNL would: the Enter typed is a CR.)
    let mut child = Command::new("sh")
        .args(["-c", "stdbuf -o0 tr '\\r' '\\n' | sh 2>&1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut io = tokio::io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let mut console = Vec::new();
    let started = Instant::now();
    let err = ymodem::loady(
        &mut io,
        LOAD_ADDR,
        "kernel.bin",
        &hello_bin(),
        &Options {
            block_timeout: Duration::from_secs(1),
            ..Options::within(Duration::from_secs(60))
        },
        |b| console.extend_from_slice(b),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, LoadyError::NotReady { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "U-Boot did not start a YMODEM download after `loady 0x40080000` within 1s (last line: "
        ) && text.contains("loady: not found"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&console).contains("loady: not found"));
}
