//! YMODEM sender for U-Boot's `loady`: loads a kernel over the serial console when the board
//! has no network.
//!
//! Two levels:
//! - [`send`]: the protocol alone (YMODEM batch of one file: header block 0 with name and size,
//!   1 KiB data blocks with CRC-16, EOT, the empty block 0 that ends the batch) over any tokio
//!   byte stream (`tokio_serial::SerialStream`, a unix socket to QEMU's chardev, a pipe pair).
//! - [`loady`]: U-Boot's side around it: types `loady <addr>`, waits for U-Boot's
//!   `## Ready for binary (ymodem) download` line, sends, then reads U-Boot's
//!   `## Total Size = 0x… = N Bytes` and checks N is the file's size. Every console byte that is
//!   not protocol (the echo, U-Boot's lines before and after) is handed to the caller's `console`
//!   callback, so the run's log and judge see them; nothing read is lost.
//!
//! Limits: each wait for the receiver ends after [`Options::block_timeout`] (a receiver that
//! stops answering fails in seconds, naming the block), the whole load by [`Options::deadline`],
//! and a block the receiver rejects more than [`Options::max_retries`] times fails. On any of
//! these the sender cancels the receiver (CAN × 8, then backspaces, as lrzsz does) so U-Boot
//! returns to its prompt. A receiver that cancels (two CAN in a row) ends the send at once.
//!
//! Hand-written, not a crate: the crates on crates.io that send YMODEM (`ymodem` 0.1, `txmodems`
//! 0.1, `uboot-shell`'s module) are synchronous or futures-io based without per-wait deadlines,
//! ignore a receiver's CAN, print stray bytes to stdout or panic on odd input, and none handles
//! U-Boot's receiver as it is: it answers a bad block with `C` instead of NAK, ACKs the first EOT
//! (no NAK-EOT dance) and sends no `C` after the header block's ACK (see `xyzModem.c`). The CRC
//! is the `crc` crate's CRC-16/XMODEM.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::duration::format as fmt_duration;

const SOH: u8 = 0x01;
const STX: u8 = 0x02;
const EOT: u8 = 0x04;
const ACK: u8 = 0x06;
const BS: u8 = 0x08;
const NAK: u8 = 0x15;
const CAN: u8 = 0x18;
/// CP/M end of file: pads the last data block (the receiver cuts it off by the header's size).
const PAD: u8 = 0x1a;
/// The receiver's request for CRC-16 mode, also U-Boot's "NAK" in that mode.
const WANT_CRC: u8 = b'C';

const BLOCK_1K: usize = 1024;
const BLOCK_128: usize = 128;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// How long a send may take.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The longest wait for one answer of the receiver: its first `C`, the ACK of a block, of
    /// EOT. U-Boot re-asks every ~2.5 s when it gets nothing, so 10 s of silence means it is gone.
    pub block_timeout: Duration,
    /// When the whole send (for [`loady`]: from typing the command to U-Boot's summary) must
    /// have ended.
    pub deadline: Instant,
    /// Times one block may be rejected (NAK, or `C` from U-Boot) and sent again.
    pub max_retries: u32,
}

impl Options {
    /// Defaults (10 s per wait, 10 retries per block) with the whole send bounded by `total`.
    pub fn within(total: Duration) -> Options {
        Options {
            block_timeout: Duration::from_secs(10),
            deadline: Instant::now() + total,
            max_retries: 10,
        }
    }
}

/// The receiver's acknowledged progress, after each data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// File bytes the receiver has acknowledged.
    pub sent: u64,
    pub total: u64,
    /// Blocks sent again so far (NAKs).
    pub retries: u32,
}

/// A finished send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub bytes: u64,
    /// Data blocks (1 KiB, the last one 128 bytes when the rest fits).
    pub blocks: u32,
    /// Blocks the receiver rejected and got again.
    pub retries: u32,
    /// Whether the receiver asked for CRC-16 (`C`) rather than the 8-bit checksum (NAK).
    pub crc16: bool,
    pub elapsed: Duration,
    /// Bytes read after the last ACK (the receiver's own output, for the console).
    pub trailing: Vec<u8>,
}

/// What the sender was waiting for when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The receiver's first `C` (or NAK).
    Start,
    /// The ACK of block 0, the file's name and size.
    Header,
    /// The ACK of data block `n` (1-based) of `of`.
    Block { n: u32, of: u32 },
    /// The ACK of the end of file (EOT).
    Eot,
    /// The receiver's request for the next file, or the ACK of the empty block 0 ending the batch.
    EndOfBatch,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Start => f.write_str("the receiver's start (C or NAK)"),
            Stage::Header => f.write_str("the header block (name and size)"),
            Stage::Block { n, of } => write!(f, "data block {n} of {of}"),
            Stage::Eot => f.write_str("the end of file (EOT)"),
            Stage::EndOfBatch => f.write_str("the end of the batch (empty block 0)"),
        }
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum YmodemError {
    #[error(
        "no YMODEM receiver: nothing asked for the file (C or NAK) within {}",
        fmt_duration(*.waited)
    )]
    NoReceiver { waited: Duration },
    #[error("the receiver cancelled the transfer (CAN CAN) at {stage}")]
    Cancelled { stage: Stage },
    #[error("the receiver rejected {stage} {} times (NAK): the line corrupts data", .retries)]
    TooManyRetries { stage: Stage, retries: u32 },
    #[error("no answer from the receiver to {stage} within {}", fmt_duration(*.waited))]
    Timeout { stage: Stage, waited: Duration },
    #[error(
        "the transfer did not end within its deadline ({} from the start) at {stage}: {sent} of {total} bytes acknowledged",
        fmt_duration(*.limit)
    )]
    Deadline {
        stage: Stage,
        /// From the start of the send to the deadline.
        limit: Duration,
        sent: u64,
        total: u64,
    },
    #[error("the serial line closed while waiting for {stage}")]
    Closed { stage: Stage },
    #[error("serial I/O failed at {stage}: {source}")]
    Io {
        stage: Stage,
        #[source]
        source: std::io::Error,
    },
    #[error("file name '{name}' is too long for the YMODEM header block (1 KiB with the size)")]
    NameTooLong { name: String },
}

/// Sends `data` as the file `name` to a YMODEM receiver on `port` (which must already be
/// waiting: U-Boot after `loady`, `rb`). `progress` is called after each acknowledged block.
/// Bytes before the receiver's first `C`/NAK are skipped.
pub async fn send<S>(
    port: &mut S,
    name: &str,
    data: &[u8],
    opts: &Options,
    progress: impl FnMut(Progress),
) -> Result<Sent, YmodemError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut link = Link::new(port);
    let mut sender = Sender::new(&mut link, opts, data.len() as u64);
    let res = sender.run(name, data, progress).await;
    let res = match res {
        Ok(sent) => Ok(sent),
        Err(e) => {
            sender.abort_for(&e).await;
            Err(e)
        }
    };
    res.map(|mut sent| {
        sent.trailing = link.take_buffered();
        sent
    })
}

/// What [`loady`] loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub addr: u64,
    /// The size U-Boot reported (`## Total Size`), equal to the file's.
    pub size: u64,
    pub sent: Sent,
}

/// Why [`loady`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadyError {
    #[error(
        "U-Boot did not start a YMODEM download after `{command}` within {}{}",
        fmt_duration(*.waited),
        last_line_suffix(.last_line)
    )]
    NotReady {
        command: String,
        waited: Duration,
        last_line: String,
    },
    #[error("loady: {0}")]
    Transfer(#[from] YmodemError),
    #[error("U-Boot aborted the download: {line}")]
    Aborted { line: String },
    #[error("U-Boot loaded {reported} bytes but the file has {expected}: {line}")]
    SizeMismatch {
        reported: u64,
        expected: u64,
        line: String,
    },
    #[error(
        "U-Boot did not report the loaded size (## Total Size) within {} after the transfer",
        fmt_duration(*.waited)
    )]
    NoSummary { waited: Duration },
    #[error("serial I/O failed around `{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

fn last_line_suffix(line: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!(" (last line: {line})")
    }
}

/// U-Boot's line before it starts asking for the file.
const READY: &[u8] = b"## Ready for binary (ymodem) download";
/// U-Boot's line with the loaded size: `## Total Size      = 0x00000152 = 338 Bytes`.
const TOTAL_SIZE: &str = "## Total Size";
/// U-Boot's line when storing failed (a flash write error): `## Binary (ymodem) download aborted`.
const ABORTED: &str = "download aborted";

/// Runs U-Boot's `loady <addr>` on `port` (U-Boot must be at its prompt) and sends `data` as
/// `name`: types the command, waits for U-Boot's ready line, sends with [`send`], and reads
/// U-Boot's summary through the `## Total Size` line. `console` gets every non-protocol byte
/// read (the echo, U-Boot's lines; what follows the size line in the same read too), in order.
pub async fn loady<S>(
    port: &mut S,
    addr: u64,
    name: &str,
    data: &[u8],
    opts: &Options,
    mut console: impl FnMut(&[u8]),
    progress: impl FnMut(Progress),
) -> Result<Loaded, LoadyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let command = format!("loady {addr:#x}");
    let io_err = |source| LoadyError::Io {
        command: command.clone(),
        source,
    };
    let started = Instant::now();
    let mut link = Link::new(port);
    link.write(format!("{command}\r").as_bytes(), opts.deadline)
        .await
        .map_err(io_err)?;

    // Up to the end of U-Boot's ready line: the next bytes are its `C`s.
    let ready_until = opts.deadline.min(started + opts.block_timeout);
    let mut seen = Vec::new();
    let mut lines = LineTail::default();
    loop {
        match link.byte(ready_until).await.map_err(io_err)? {
            Some(b) => {
                seen.push(b);
                lines.push(b);
                if b == b'\n' && lines.prev_contains(READY) {
                    break;
                }
            }
            None => {
                console(&seen);
                return Err(LoadyError::NotReady {
                    command,
                    waited: ready_until.saturating_duration_since(started),
                    last_line: lines.last_text(),
                });
            }
        }
    }
    console(&seen);

    let mut sender = Sender::new(&mut link, opts, data.len() as u64);
    let sent = match sender.run(name, data, progress).await {
        Ok(sent) => sent,
        Err(e) => {
            sender.abort_for(&e).await;
            console(&link.take_buffered());
            return Err(e.into());
        }
    };

    // U-Boot's summary: `xyzModem - CRC mode, …`, `## Total Size = 0x… = N Bytes`.
    let summary_from = Instant::now();
    let summary_until = opts.deadline.min(summary_from + opts.block_timeout);
    let mut lines = LineTail::default();
    let mut seen = Vec::new();
    loop {
        let b = match link.byte(summary_until).await.map_err(io_err)? {
            Some(b) => b,
            None => {
                console(&seen);
                return Err(LoadyError::NoSummary {
                    waited: summary_until.saturating_duration_since(summary_from),
                });
            }
        };
        seen.push(b);
        lines.push(b);
        if b != b'\n' {
            continue;
        }
        let line = lines.last_text();
        if line.contains(ABORTED) {
            seen.extend(link.take_buffered());
            console(&seen);
            return Err(LoadyError::Aborted { line });
        }
        if let Some(reported) = total_size(&line) {
            seen.extend(link.take_buffered());
            console(&seen);
            let expected = data.len() as u64;
            if reported != expected {
                return Err(LoadyError::SizeMismatch {
                    reported,
                    expected,
                    line,
                });
            }
            return Ok(Loaded {
                addr,
                size: reported,
                sent: Sent {
                    trailing: Vec::new(),
                    ..sent
                },
            });
        }
    }
}

/// N from U-Boot's `## Total Size      = 0x00000152 = 338 Bytes`.
fn total_size(line: &str) -> Option<u64> {
    let rest = &line[line.find(TOTAL_SIZE)? + TOTAL_SIZE.len()..];
    let mut parts = rest.split('=').map(str::trim);
    parts.next()?; // before the first '='
    let hex = parts.next()?;
    let dec = parts.next()?.strip_suffix("Bytes")?.trim();
    let n: u64 = dec.parse().ok()?;
    let h = u64::from_str_radix(hex.strip_prefix("0x")?, 16).ok()?;
    (h == n).then_some(n)
}

/// The current and the previous console line, for matching U-Boot's lines byte by byte.
#[derive(Default)]
struct LineTail {
    cur: Vec<u8>,
    prev: Vec<u8>,
}

impl LineTail {
    const MAX: usize = 512;

    fn push(&mut self, b: u8) {
        if b == b'\n' {
            self.prev = std::mem::take(&mut self.cur);
        } else if self.cur.len() < Self::MAX {
            self.cur.push(b);
        }
    }

    fn prev_contains(&self, needle: &[u8]) -> bool {
        self.prev.windows(needle.len()).any(|w| w == needle)
    }

    /// The last complete line (or the partial one when none is complete), printable.
    fn last_text(&self) -> String {
        let line = if self.cur.is_empty() {
            &self.prev
        } else {
            &self.cur
        };
        String::from_utf8_lossy(line)
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .trim()
            .to_string()
    }
}

/// The byte stream with a read buffer, so no byte read past a protocol answer is lost.
struct Link<'a, S> {
    io: &'a mut S,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Link<'a, S> {
    fn new(io: &'a mut S) -> Self {
        Link {
            io,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// The next byte, `None` when `until` passes first; a closed stream is `UnexpectedEof`.
    async fn byte(&mut self, until: Instant) -> std::io::Result<Option<u8>> {
        if self.pos == self.buf.len() {
            self.buf.resize(4096, 0);
            self.pos = 0;
            // tokio's `read` is cancel-safe: a timeout loses no byte.
            let n = match tokio::time::timeout_at(until, self.io.read(&mut self.buf)).await {
                Err(_) => {
                    self.buf.clear();
                    return Ok(None);
                }
                Ok(r) => r.inspect_err(|_| self.buf.clear())?,
            };
            self.buf.truncate(n);
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.pos += 1;
        Ok(Some(self.buf[self.pos - 1]))
    }

    /// Drops what has been read and not used, and what the stream has ready now (stale `C`s a
    /// slow start left queued would otherwise read as NAKs of the header).
    fn discard_pending(&mut self) {
        use futures_util::FutureExt;
        self.buf.clear();
        self.pos = 0;
        let mut scratch = [0u8; 256];
        while let Some(Ok(n)) = self.io.read(&mut scratch).now_or_never() {
            if n == 0 {
                break;
            }
        }
    }

    fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.pos.min(self.buf.len()));
        self.buf.clear();
        self.pos = 0;
        rest
    }

    async fn write(&mut self, bytes: &[u8], until: Instant) -> std::io::Result<()> {
        let w = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout_at(until, w).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// The receiver's answer to a block.
enum Answer {
    Ack,
    Nak,
}

struct Sender<'l, 'a, S> {
    link: &'l mut Link<'a, S>,
    opts: Options,
    started: Instant,
    total: u64,
    acked: u64,
    crc16: bool,
    retries: u32,
}

impl<'l, 'a, S: AsyncRead + AsyncWrite + Unpin> Sender<'l, 'a, S> {
    fn new(link: &'l mut Link<'a, S>, opts: &Options, total: u64) -> Self {
        Sender {
            link,
            opts: *opts,
            started: Instant::now(),
            total,
            acked: 0,
            crc16: true,
            retries: 0,
        }
    }

    async fn run(
        &mut self,
        name: &str,
        data: &[u8],
        mut progress: impl FnMut(Progress),
    ) -> Result<Sent, YmodemError> {
        let header = header_block(name, data.len())?;
        self.crc16 = self.wait_start(Stage::Start).await?;
        self.link.discard_pending();
        self.send_block(Stage::Header, 0, &header, false).await?;

        let of = data.len().div_ceil(BLOCK_1K) as u32;
        let mut blocks = 0;
        for (i, chunk) in data.chunks(BLOCK_1K).enumerate() {
            let n = i as u32 + 1;
            // A standard receiver asks again (`C`, or NAK in checksum mode) after the header's
            // ACK; U-Boot does not. So the first block goes at once, and one such request before
            // its answer is that, not a rejection (resending would earn a second ACK that
            // would then be read as the next block's).
            self.send_block(Stage::Block { n, of }, n as u8, chunk, n == 1)
                .await?;
            blocks += 1;
            self.acked += chunk.len() as u64;
            progress(Progress {
                sent: self.acked,
                total: self.total,
                retries: self.retries,
            });
        }

        // EOT: U-Boot ACKs the first one, lrzsz's rb NAKs it once then ACKs the second.
        let mut naks = 0;
        loop {
            self.write(Stage::Eot, &[EOT]).await?;
            match self.answer(Stage::Eot, false).await? {
                Answer::Ack => break,
                Answer::Nak => naks += 1,
            }
            // The first NAK of EOT is the protocol's, not a rejection.
            if naks > self.opts.max_retries + 1 {
                return Err(YmodemError::TooManyRetries {
                    stage: Stage::Eot,
                    retries: naks,
                });
            }
        }

        self.wait_start(Stage::EndOfBatch).await?;
        self.send_block(Stage::EndOfBatch, 0, &[0u8; BLOCK_128], false)
            .await?;
        Ok(Sent {
            bytes: self.acked,
            blocks,
            retries: self.retries,
            crc16: self.crc16,
            elapsed: self.started.elapsed(),
            trailing: Vec::new(),
        })
    }

    /// Sends one block (padded to 128 or 1024 bytes) until the receiver ACKs it.
    async fn send_block(
        &mut self,
        stage: Stage,
        seq: u8,
        payload: &[u8],
        skip_one_request: bool,
    ) -> Result<(), YmodemError> {
        let frame = frame(seq, payload, self.crc16);
        let mut rejected = 0;
        loop {
            self.write(stage, &frame).await?;
            match self
                .answer(stage, skip_one_request && rejected == 0)
                .await?
            {
                Answer::Ack => return Ok(()),
                Answer::Nak => {
                    rejected += 1;
                    self.retries += 1;
                    if rejected > self.opts.max_retries {
                        return Err(YmodemError::TooManyRetries {
                            stage,
                            retries: rejected,
                        });
                    }
                }
            }
        }
    }

    /// Waits for the receiver's `C` (CRC-16) or NAK (checksum); true for CRC-16.
    async fn wait_start(&mut self, stage: Stage) -> Result<bool, YmodemError> {
        let from = Instant::now();
        let mut cans = 0;
        loop {
            let b = self.byte(stage, from).await.map_err(|e| match e {
                YmodemError::Timeout { waited, .. } if stage == Stage::Start => {
                    YmodemError::NoReceiver { waited }
                }
                e => e,
            })?;
            match b {
                WANT_CRC => return Ok(true),
                NAK => return Ok(false),
                CAN => {
                    cans += 1;
                    if cans >= 2 {
                        return Err(YmodemError::Cancelled { stage });
                    }
                }
                _ => cans = 0,
            }
        }
    }

    /// The receiver's answer to what was just sent: ACK, or NAK (`C` counts as NAK: U-Boot's
    /// receiver asks again with `C` in CRC mode). Other bytes are line noise and skipped.
    /// `skip_one_request`: the first request of the mode (`C` or NAK) is not an answer.
    async fn answer(
        &mut self,
        stage: Stage,
        mut skip_one_request: bool,
    ) -> Result<Answer, YmodemError> {
        let from = Instant::now();
        let request = if self.crc16 { WANT_CRC } else { NAK };
        let mut cans = 0;
        loop {
            let b = self.byte(stage, from).await?;
            match b {
                ACK => return Ok(Answer::Ack),
                b if b == request && skip_one_request => skip_one_request = false,
                NAK | WANT_CRC => return Ok(Answer::Nak),
                CAN => {
                    cans += 1;
                    if cans >= 2 {
                        return Err(YmodemError::Cancelled { stage });
                    }
                    continue;
                }
                _ => {}
            }
            cans = 0;
        }
    }

    /// One byte within the block timeout (counted from `from`) and the deadline.
    async fn byte(&mut self, stage: Stage, from: Instant) -> Result<u8, YmodemError> {
        let until = (from + self.opts.block_timeout).min(self.opts.deadline);
        match self.link.byte(until).await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(self.expired(stage, from)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(YmodemError::Closed { stage })
            }
            Err(source) => Err(YmodemError::Io { stage, source }),
        }
    }

    async fn write(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), YmodemError> {
        let from = Instant::now();
        let until = (from + self.opts.block_timeout).min(self.opts.deadline);
        match self.link.write(bytes, until).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(self.expired(stage, from)),
            Err(source) => Err(YmodemError::Io { stage, source }),
        }
    }

    /// The error for a wait from `from` that ran out: the deadline's when it came first.
    fn expired(&self, stage: Stage, from: Instant) -> YmodemError {
        if from + self.opts.block_timeout >= self.opts.deadline {
            YmodemError::Deadline {
                stage,
                limit: self.opts.deadline.saturating_duration_since(self.started),
                sent: self.acked,
                total: self.total,
            }
        } else {
            YmodemError::Timeout {
                stage,
                waited: self.opts.block_timeout,
            }
        }
    }

    /// Tells the receiver to stop (CAN × 8, then as many backspaces to erase them should they
    /// reach a shell), unless no receiver started, it is the receiver that stopped, or the line
    /// is gone.
    async fn abort_for(&mut self, err: &YmodemError) {
        let receiving = match err {
            YmodemError::Timeout { stage, .. } | YmodemError::Deadline { stage, .. } => {
                *stage != Stage::Start
            }
            YmodemError::TooManyRetries { .. } => true,
            YmodemError::NoReceiver { .. }
            | YmodemError::Cancelled { .. }
            | YmodemError::Closed { .. }
            | YmodemError::Io { .. }
            | YmodemError::NameTooLong { .. } => false,
        };
        if !receiving {
            return;
        }
        let mut bytes = [CAN; 16];
        bytes[8..].fill(BS);
        // Best effort and brief: the deadline may have passed already.
        let until = Instant::now() + Duration::from_millis(500);
        let _ = self.link.write(&bytes, until).await;
    }
}

/// Block 0: the name, NUL, the size in decimal, NUL, zero padding (128 bytes, or 1 KiB when the
/// name needs it).
fn header_block(name: &str, size: usize) -> Result<Vec<u8>, YmodemError> {
    let mut block = Vec::with_capacity(BLOCK_128);
    block.extend_from_slice(name.as_bytes());
    block.push(0);
    block.extend_from_slice(size.to_string().as_bytes());
    block.push(0);
    if block.len() > BLOCK_1K || name.as_bytes().contains(&0) {
        return Err(YmodemError::NameTooLong {
            name: name.to_string(),
        });
    }
    Ok(block)
}

/// A block on the wire: SOH/STX, the sequence number and its complement, the payload padded to
/// 128 or 1024 bytes (block 0 with NUL, data with ^Z), CRC-16 (big-endian) or the 8-bit sum.
fn frame(seq: u8, payload: &[u8], crc16: bool) -> Vec<u8> {
    let (start, len) = if payload.len() > BLOCK_128 {
        (STX, BLOCK_1K)
    } else {
        (SOH, BLOCK_128)
    };
    let pad = if seq == 0 { 0 } else { PAD };
    let mut f = Vec::with_capacity(len + 5);
    f.extend_from_slice(&[start, seq, !seq]);
    f.extend_from_slice(payload);
    f.resize(3 + len, pad);
    let body = &f[3..];
    if crc16 {
        let crc = CRC16.checksum(body);
        f.extend_from_slice(&crc.to_be_bytes());
    } else {
        let sum = body.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        f.push(sum);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_xmodem_ccitt() {
        // The check value of CRC-16/XMODEM, the CRC U-Boot's crc16_ccitt(0, …) computes.
        assert_eq!(CRC16.checksum(b"123456789"), 0x31c3);
    }

    #[test]
    fn frames_pad_and_pick_the_block_size() {
        let f = frame(1, b"abc", true);
        assert_eq!(&f[..3], &[SOH, 1, 0xfe]);
        assert_eq!(f.len(), 3 + 128 + 2);
        assert!(f[6..131].iter().all(|&b| b == PAD));
        let f = frame(2, &[7u8; 129], false);
        assert_eq!(&f[..3], &[STX, 2, 0xfd]);
        assert_eq!(f.len(), 3 + 1024 + 1);
        let sum = (129u32 * 7 + 895 * PAD as u32) as u8;
        assert_eq!(f[1027], sum);
        let h = frame(0, b"a\x0012\x00", true);
        assert!(h[8..131].iter().all(|&b| b == 0));
    }

    #[test]
    fn header_carries_name_and_size() {
        assert_eq!(header_block("k.bin", 338).unwrap(), b"k.bin\x00338\x00");
        assert!(matches!(
            header_block(&"x".repeat(1100), 1),
            Err(YmodemError::NameTooLong { .. })
        ));
    }

    #[test]
    fn reads_uboot_total_size_line() {
        assert_eq!(
            total_size("## Total Size      = 0x00000152 = 338 Bytes"),
            Some(338)
        );
        assert_eq!(
            total_size("## Total Size      = 0x00000152 = 339 Bytes"),
            None
        );
        assert_eq!(total_size("## Start Addr      = 0x40080000"), None);
    }
}
