//! The one pass over an archive's bytes (design principle 5): every byte that arrives is hashed,
//! appended to the partial archive file and fed to gunzip → untar, in a blocking thread, while
//! the network side keeps receiving. A resumed download first replays the bytes already on disk
//! through the same hasher and unpacker, so a resume never re-downloads nor re-reads twice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::kind::ArchiveKind;
use super::unpack::{UnpackError, UnpackLimits, unpack};

/// What the consumer made of the complete stream.
#[derive(Debug)]
pub struct Outcome {
    /// Lower-case hex SHA-256 of every byte of the archive.
    pub sha256: String,
    /// Archive length in bytes.
    pub bytes: u64,
    /// The unpacked files, or why unpacking failed on a malformed stream (the hash decides
    /// which error the user sees: a corrupt transfer is a checksum mismatch).
    pub files: Result<Vec<PathBuf>, UnpackError>,
}

/// Why the consumer stopped before the end of the stream.
#[derive(Debug)]
pub enum Stopped {
    /// The archive's content is refused (hostile member, size limit) or the disk failed.
    Unpack(UnpackError),
    /// The producer went away without finishing (restart, deadline, cancellation).
    Aborted,
    /// The partial archive file could not be read or written.
    Io(PathBuf, io::Error),
}

enum Msg {
    Data(Bytes),
    End,
}

/// A running consumer: the producer side sends chunks, then [`Pipeline::finish`]es.
pub struct Pipeline {
    target: Target,
    running: Option<Running>,
}

struct Running {
    tx: mpsc::Sender<Msg>,
    task: JoinHandle<Result<Outcome, Stopped>>,
}

/// Everything the consumer needs to know about where bytes go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The partial archive; its existing bytes are replayed first.
    pub part: PathBuf,
    /// The empty directory to unpack into.
    pub dest: PathBuf,
    pub limits: UnpackLimits,
    /// Top-level names the archive may not use.
    pub reserved: Vec<String>,
    /// The format: its magic number is checked before the first byte is stored.
    pub kind: ArchiveKind,
}

impl Pipeline {
    /// Starts a consumer; returns it and the number of bytes replayed from `target.part`
    /// (the offset to resume the download at).
    pub fn start(target: Target) -> (Pipeline, u64) {
        let replay = fs::metadata(&target.part).map_or(0, |m| m.len());
        let mut pipeline = Pipeline {
            target,
            running: None,
        };
        pipeline.spawn();
        (pipeline, replay)
    }

    fn spawn(&mut self) {
        let (tx, rx) = mpsc::channel(16);
        let target = self.target.clone();
        let task = tokio::task::spawn_blocking(move || consume(rx, &target));
        self.running = Some(Running { tx, task });
    }

    /// Hands a chunk to the consumer; `false` when it has stopped (call [`Pipeline::abort`]
    /// to learn why).
    pub async fn send(&mut self, chunk: Bytes) -> bool {
        match &self.running {
            Some(r) => r.tx.send(Msg::Data(chunk)).await.is_ok(),
            None => false,
        }
    }

    /// Resolves once the consumer has stopped on its own (it refused the stream), so a producer
    /// waiting on a slow server learns of it at once instead of at its next chunk.
    pub async fn closed(&self) {
        if let Some(r) = &self.running {
            r.tx.closed().await;
        }
    }

    /// Starts over from byte 0 (the server ignored our `Range`): the consumer is stopped, and the
    /// partial archive and everything unpacked so far are discarded.
    pub async fn restart(&mut self) -> Result<(), Stopped> {
        self.stop().await;
        let dest = &self.target.dest;
        let clear = fs::remove_dir_all(dest).and_then(|_| fs::create_dir(dest));
        clear.map_err(|e| Stopped::Io(dest.clone(), e))?;
        File::create(&self.target.part).map_err(|e| Stopped::Io(self.target.part.clone(), e))?;
        self.spawn();
        Ok(())
    }

    /// Marks the end of the stream and waits for the verdict.
    pub async fn finish(mut self) -> Result<Outcome, Stopped> {
        let Some(running) = self.running.take() else {
            return Err(Stopped::Aborted);
        };
        let _ = running.tx.send(Msg::End).await;
        drop(running.tx);
        join(running.task).await
    }

    /// Stops the consumer without completing, waits until it no longer touches the disk, and
    /// says why it had stopped (if it stopped on its own).
    pub async fn abort(mut self) -> Stopped {
        self.stop().await
    }

    async fn stop(&mut self) -> Stopped {
        let Some(running) = self.running.take() else {
            return Stopped::Aborted;
        };
        drop(running.tx);
        match join(running.task).await {
            Err(stopped) => stopped,
            Ok(_) => Stopped::Aborted,
        }
    }
}

async fn join(task: JoinHandle<Result<Outcome, Stopped>>) -> Result<Outcome, Stopped> {
    task.await.unwrap_or_else(|e| {
        Err(Stopped::Io(
            PathBuf::new(),
            io::Error::other(format!("archive consumer failed: {e}")),
        ))
    })
}

/// How many first bytes of a stream a "not an archive" message shows.
const HEAD_SHOWN: usize = 16;

/// The reader the decompressor pulls from: replayed bytes, then received chunks; hashes all,
/// appends the received ones to the partial file. A chunk is admitted (magic number, archive
/// size) before it is written.
struct Tee {
    kind: ArchiveKind,
    max_bytes: u64,
    /// The stream's first bytes, until there are enough to judge the magic number.
    head: Vec<u8>,
    /// Why the stream was refused on its own bytes (not a decompressor's opinion).
    refused: Option<UnpackError>,
    replay: Option<File>,
    rx: mpsc::Receiver<Msg>,
    current: Bytes,
    ended: bool,
    aborted: bool,
    part: File,
    part_path: PathBuf,
    write_error: Option<io::Error>,
    hasher: Sha256,
    bytes: u64,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(file) = &mut self.replay {
            let n = file.read(buf)?;
            if n > 0 {
                self.admit(&buf[..n])?;
                self.account(&buf[..n]);
                return Ok(n);
            }
            self.replay = None;
        }
        while self.current.is_empty() && !self.ended {
            match self.rx.blocking_recv() {
                Some(Msg::Data(chunk)) => {
                    self.admit(&chunk)?;
                    if let Err(e) = self.part.write_all(&chunk) {
                        self.write_error = Some(io::Error::new(e.kind(), e.to_string()));
                        return Err(e);
                    }
                    self.current = chunk;
                }
                Some(Msg::End) => self.ended = true,
                None => {
                    self.aborted = true;
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "download aborted",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        buf[..n].copy_from_slice(&chunk);
        self.account(&chunk);
        Ok(n)
    }
}

impl Tee {
    /// Refuses `data` (the bytes after `self.bytes`) when the stream so far cannot be of its
    /// kind or grows past the archive size limit.
    fn admit(&mut self, data: &[u8]) -> io::Result<()> {
        // Judged while the magic number is incomplete; a few more bytes are kept to show.
        let judged = self.head.len() >= self.kind.spec().magic.len();
        if self.head.len() < HEAD_SHOWN {
            let take = (HEAD_SHOWN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if !judged && let Err(why) = self.kind.check_magic(&self.head) {
            return Err(self.refuse(UnpackError::NotArchive(why)));
        }
        if self.bytes + data.len() as u64 > self.max_bytes {
            return Err(self.refuse(UnpackError::TooBig(format!(
                "the download is larger than the limit of {} bytes",
                self.max_bytes
            ))));
        }
        Ok(())
    }

    fn refuse(&mut self, why: UnpackError) -> io::Error {
        let e = io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        self.refused = Some(why);
        e
    }

    fn account(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }
}

fn consume(rx: mpsc::Receiver<Msg>, target: &Target) -> Result<Outcome, Stopped> {
    let io_err = |e| Stopped::Io(target.part.clone(), e);
    let part = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&target.part)
        .map_err(io_err)?;
    let replay = File::open(&target.part).map_err(io_err)?;
    let mut tee = Tee {
        kind: target.kind,
        max_bytes: target.limits.max_archive_bytes,
        head: Vec::new(),
        refused: None,
        replay: Some(replay),
        rx,
        current: Bytes::new(),
        ended: false,
        aborted: false,
        part,
        part_path: target.part.clone(),
        write_error: None,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let reserved: Vec<&str> = target.reserved.iter().map(String::as_str).collect();
    let files = unpack_compressed(&mut tee, &target.dest, &target.limits, &reserved);
    if tee.aborted {
        return Err(Stopped::Aborted);
    }
    if let Some(why) = tee.refused.take() {
        return Err(Stopped::Unpack(why));
    }
    if let Some(e) = tee.write_error.take() {
        return Err(Stopped::Io(tee.part_path.clone(), e));
    }
    let files = match files {
        Err(e) if !matches!(e, UnpackError::Format(_)) => return Err(Stopped::Unpack(e)),
        other => other,
    };
    drain(&mut tee, &target.limits)?;
    let sha256 = hex(&tee.hasher.finalize());
    Ok(Outcome {
        sha256,
        bytes: tee.bytes,
        files,
    })
}

/// gunzip or unxz (the archive's kind: axvisor-guest's `.tar.gz`, tgosimages' `.tar.xz`, whose
/// magic number the download already checked) → untar, then read the compressed stream to its
/// end so its CRC is checked too. Both decoders sit behind the same ratio guard.
fn unpack_compressed(
    tee: &mut Tee,
    dest: &Path,
    limits: &UnpackLimits,
    reserved: &[&str],
) -> Result<Vec<PathBuf>, UnpackError> {
    let max_ratio = limits.max_ratio.unwrap_or(tee.kind.spec().max_ratio);
    let floor = limits.ratio_floor;
    match tee.kind {
        ArchiveKind::TarGz => untar_to_end(
            RatioGuard::new(
                MultiGzDecoder::new(tee),
                |d: &MultiGzDecoder<&mut Tee>| d.get_ref().bytes,
                max_ratio,
                floor,
            ),
            dest,
            limits,
            reserved,
        ),
        ArchiveKind::TarXz => untar_to_end(
            RatioGuard::new(
                liblzma::read::XzDecoder::new_multi_decoder(tee),
                |d: &liblzma::read::XzDecoder<&mut Tee>| d.get_ref().bytes,
                max_ratio,
                floor,
            ),
            dest,
            limits,
            reserved,
        ),
    }
}

/// Untars the guarded, decompressed stream, then reads it to its end (bounded) for the trailing
/// checks.
fn untar_to_end<D: Read, F: Fn(&D) -> u64>(
    mut gz: RatioGuard<D, F>,
    dest: &Path,
    limits: &UnpackLimits,
    reserved: &[&str],
) -> Result<Vec<PathBuf>, UnpackError> {
    let files = unpack(&mut gz, dest, limits, reserved);
    if let Some(e) = gz.tripped.take() {
        return Err(e);
    }
    let files = files?;
    // After the tar end marker only zero padding may follow; bound it.
    let trailing =
        io::copy(&mut (&mut gz).take(1 << 20), &mut io::sink()).map_err(UnpackError::Format)?;
    if trailing == 1 << 20 {
        return Err(UnpackError::Format(io::Error::new(
            io::ErrorKind::InvalidData,
            "more than 1 MiB of data after the end of the tar archive",
        )));
    }
    if let Some(e) = gz.tripped.take() {
        return Err(e);
    }
    Ok(files)
}

/// Counts what a decompressor yields and fails the read once it expands more than `max_ratio`
/// times the compressed bytes it consumed (after `floor` bytes): a decompression bomb stops
/// before its output reaches the disk.
struct RatioGuard<D, F> {
    inner: D,
    out: u64,
    max_ratio: u64,
    floor: u64,
    /// Compressed bytes consumed so far, read from the decompressor's source.
    compressed: F,
    tripped: Option<UnpackError>,
}

impl<D, F> RatioGuard<D, F> {
    fn new(inner: D, compressed: F, max_ratio: u64, floor: u64) -> Self {
        RatioGuard {
            inner,
            out: 0,
            max_ratio,
            floor,
            compressed,
            tripped: None,
        }
    }
}

impl<D: Read, F: Fn(&D) -> u64> Read for RatioGuard<D, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let compressed = (self.compressed)(&self.inner).max(1);
        if self.out > self.floor && self.out / compressed > self.max_ratio {
            let why = format!(
                "{} bytes decompressed from {compressed} expand more than {}x; refused as a \
                 decompression bomb",
                self.out, self.max_ratio
            );
            self.tripped = Some(UnpackError::TooBig(why.clone()));
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        Ok(n)
    }
}

/// Hashes what the decompressor left unread (a truncated or damaged stream), within bounds.
fn drain(tee: &mut Tee, limits: &UnpackLimits) -> Result<(), Stopped> {
    let cap = limits.max_archive_bytes;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match tee.read(&mut buf) {
            Ok(n) => n,
            Err(_) if tee.aborted => return Err(Stopped::Aborted),
            Err(_) if tee.refused.is_some() => {
                return Err(Stopped::Unpack(tee.refused.take().expect("checked")));
            }
            Err(e) => return Err(Stopped::Io(tee.part_path.clone(), e)),
        };
        if n == 0 {
            return Ok(());
        }
        if tee.bytes > cap {
            return Err(Stopped::Unpack(UnpackError::TooBig(format!(
                "the archive is larger than {cap} bytes"
            ))));
        }
    }
}

/// Lower-case hex (sha2 0.11 digests have no `{:x}`).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_known_digest() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
