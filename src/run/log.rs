//! The console log file, bounded: a flooding guest must not fill the runner's disk. The head of
//! `max_log_size` goes to the file as it arrives; after that only the latest bytes are kept (a
//! ring in memory of half the size, at most 4 MiB, filled only once the head is full) and, at
//! every flush, written after a marker that says how many bytes were dropped there. The judge and the reporters still see
//! every byte: only the file is bounded.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::config::grammar::MIN_MAX_LOG_SIZE;

/// The most tail kept (in memory until flushed): half of `max_log_size` up to this.
const MAX_TAIL: u64 = 4 << 20;

/// An append-only console log that keeps the head and the tail of what was written.
pub struct ConsoleLog {
    file: File,
    /// Bytes written straight to the file before the ring takes over.
    head: u64,
    written: u64,
    /// The latest bytes once the head is full: a ring of `tail_cap` bytes.
    tail: Vec<u8>,
    tail_cap: usize,
    /// Next write position in `tail` once it is full.
    tail_pos: usize,
    /// Bytes that went into the ring (kept or since overwritten).
    into_tail: u64,
    /// Whether the file holds what the ring holds (nothing written since the last flush).
    synced: bool,
}

impl ConsoleLog {
    /// Creates the log at `path` (a new file; never through a symlink planted there: see
    /// [`crate::prepare::workdir::create_file`]), bounded to about `max_size` bytes.
    pub fn create(path: &Path, max_size: u64) -> Result<ConsoleLog, crate::error::Error> {
        let max_size = max_size.max(MIN_MAX_LOG_SIZE);
        let file = crate::prepare::workdir::create_file(path)?;
        let tail = (max_size / 2).min(MAX_TAIL);
        Ok(ConsoleLog {
            file,
            head: max_size - tail,
            written: 0,
            tail: Vec::new(),
            tail_cap: tail as usize,
            tail_pos: 0,
            into_tail: 0,
            synced: true,
        })
    }

    /// Bytes that are not in the file (dropped between the head and the tail).
    pub fn dropped(&self) -> u64 {
        self.into_tail.saturating_sub(self.tail_cap as u64)
    }

    /// Takes `data`: into the file while the head has room, else into the tail ring.
    fn take(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.written < self.head {
            let room = usize::try_from(self.head - self.written).unwrap_or(usize::MAX);
            let n = room.min(data.len());
            self.file.write_all(&data[..n])?;
            self.written += n as u64;
            data = &data[n..];
        }
        if data.is_empty() {
            return Ok(());
        }
        self.synced = false;
        self.into_tail += data.len() as u64;
        // Only the last tail_cap bytes of `data` can survive.
        if data.len() > self.tail_cap {
            data = &data[data.len() - self.tail_cap..];
        }
        if self.tail.len() < self.tail_cap {
            let n = (self.tail_cap - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        // The ring is full: overwrite the oldest bytes.
        while !data.is_empty() {
            let n = (self.tail_cap - self.tail_pos).min(data.len());
            self.tail[self.tail_pos..self.tail_pos + n].copy_from_slice(&data[..n]);
            self.tail_pos = (self.tail_pos + n) % self.tail_cap;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes the tail after the head: directly when nothing was dropped, else after a marker.
    /// Safe to call again: the part after the head is rewritten each time.
    fn sync(&mut self) -> io::Result<()> {
        if self.synced {
            return self.file.flush();
        }
        self.file.seek(SeekFrom::Start(self.written))?;
        let dropped = self.dropped();
        if dropped > 0 {
            let marker = format!(
                "\n[qemu-test: {dropped} bytes of console output dropped here: the log keeps the \
                 first {} and the last {} bytes (max_log_size); the verdict saw every byte]\n",
                self.head, self.tail_cap
            );
            self.file.write_all(marker.as_bytes())?;
        }
        let (newer, older) = self.tail.split_at(self.tail_pos);
        self.file.write_all(older)?;
        self.file.write_all(newer)?;
        let end = self.file.stream_position()?;
        self.file.set_len(end)?;
        self.file.seek(SeekFrom::Start(self.written))?;
        self.synced = true;
        self.file.flush()
    }
}

impl Drop for ConsoleLog {
    /// An error path that never flushed still leaves head, marker and tail in the file.
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// The writes are plain `write(2)`s to a local file, done in place: a console chunk is at most
/// 64 KiB, so this never blocks the runtime for long (as the log's former `tokio::fs::File` did
/// through a thread, with the same ordering).
impl tokio::io::AsyncWrite for ConsoleLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().take(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().sync())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().sync())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(log: &mut ConsoleLog, chunks: &[&[u8]]) {
        for c in chunks {
            log.take(c).unwrap();
        }
        log.sync().unwrap();
    }

    #[test]
    fn below_the_cap_the_log_is_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = ConsoleLog::create(&path, 8192).unwrap();
        let data: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
        write_all(&mut log, &[&data[..3000], &data[3000..]]);
        assert_eq!(log.dropped(), 0);
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn above_the_cap_head_marker_and_tail_remain_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = ConsoleLog::create(&path, 8192).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        // odd chunk sizes so the ring wraps at arbitrary places; flush midway too
        for (i, c) in data.chunks(777).enumerate() {
            log.take(c).unwrap();
            if i == 50 {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
        assert_eq!(log.dropped(), 100_000 - 8192);
        drop(log);
        let text = std::fs::read(&path).unwrap();
        assert_eq!(&text[..4096], &data[..4096]);
        assert_eq!(&text[text.len() - 4096..], &data[data.len() - 4096..]);
        let marker = String::from_utf8_lossy(&text[4096..text.len() - 4096]).into_owned();
        assert!(
            marker.contains("91808 bytes of console output dropped here"),
            "{marker}"
        );
        assert!(text.len() < 8192 + 300, "{}", text.len());
    }
}
