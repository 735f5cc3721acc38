//! Downloads with deadlines, bounded retries and `Range` resume; archives stream through the
//! one-pass [`Pipeline`] (hash + store + gunzip + untar) and are accepted only if the SHA-256
//! matches the registry's.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

use super::progress::Progress;
use super::stream::{Outcome, Pipeline, Stopped, Target};
use super::unpack::{UnpackError, UnpackLimits};
use crate::error::Error;
use crate::http::{self, Deadlines};

/// How hard to try: deadlines, retries, redirects and unpack bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    pub deadlines: Deadlines,
    /// Attempts per download, the first included.
    pub attempts: u32,
    /// First pause between attempts; doubled after each failure.
    pub backoff: Duration,
    /// Longest pause between attempts (also caps a server's `Retry-After`).
    pub max_backoff: Duration,
    pub max_redirects: usize,
    pub limits: UnpackLimits,
    /// Attempts when the server cannot be reached at all (refused, no route, DNS): a host that
    /// refuses now is unlikely to accept in a minute, so give up within seconds.
    pub connect_attempts: u32,
    /// The slowest transfer accepted: fewer bytes than this in one window is a stall.
    pub min_throughput: Throughput,
}

impl Default for FetchOptions {
    /// TuxRun-like: 8 attempts with exponential backoff from 1 s; 2 for an unreachable host.
    fn default() -> Self {
        FetchOptions {
            deadlines: Deadlines::default(),
            attempts: 8,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_redirects: 10,
            limits: UnpackLimits::default(),
            connect_attempts: 2,
            min_throughput: Throughput::default(),
        }
    }
}

/// A minimum transfer rate, judged over whole windows (like curl's `--speed-limit` and
/// `--speed-time`): a server that trickles bytes just often enough to beat the read deadline
/// still fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    pub bytes: u64,
    pub window: Duration,
}

impl Default for Throughput {
    /// 10 KiB/s over a minute: far below any working link, far above a stalled one.
    fn default() -> Self {
        Throughput {
            bytes: 10 * 1024 * 60,
            window: Duration::from_secs(60),
        }
    }
}

/// Measures one response's body against [`Throughput`].
struct RateWindow {
    rule: Throughput,
    start: Instant,
    bytes: u64,
}

impl RateWindow {
    fn new(rule: Throughput) -> Self {
        RateWindow {
            rule,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `n` more bytes; a transient failure when a whole window passed below the rate.
    fn add(&mut self, n: usize) -> Result<(), Failure> {
        self.bytes += n as u64;
        let elapsed = self.start.elapsed();
        if elapsed < self.rule.window {
            return Ok(());
        }
        let needed = (self.rule.bytes as f64 * elapsed.as_secs_f64()
            / self.rule.window.as_secs_f64()) as u64;
        if self.bytes < needed {
            return Err(Failure::Transient(
                format!(
                    "the transfer stalled: {} bytes in {:.1} s, slower than the minimum of {} \
                     bytes per {} s",
                    self.bytes,
                    elapsed.as_secs_f64(),
                    self.rule.bytes,
                    self.rule.window.as_secs_f64()
                ),
                None,
            ));
        }
        *self = RateWindow::new(self.rule);
        Ok(())
    }
}

/// A verified, unpacked archive.
#[derive(Debug)]
pub struct Verified {
    pub bytes: u64,
    /// Relative paths of the unpacked non-directory members.
    pub files: Vec<std::path::PathBuf>,
}

/// One archive to fetch and where its bytes go.
#[derive(Debug, Clone)]
pub struct ArchiveJob {
    /// `name:version`, for progress and messages.
    pub label: String,
    /// http(s) or file URL.
    pub url: String,
    /// Expected lower-case hex SHA-256.
    pub sha256: String,
    pub target: Target,
}

/// An HTTP client plus the policy for using it.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    opts: FetchOptions,
}

/// How one attempt went wrong.
enum Failure {
    /// Worth another attempt (after the pause, or the server's `Retry-After`).
    Transient(String, Option<Duration>),
    /// No connection at all: retried only [`FetchOptions::connect_attempts`] times.
    Unreachable(String),
    Fatal(Error),
    /// The total deadline passed.
    Deadline,
    /// The consumer stopped; its reason is collected from the pipeline.
    Consumer,
}

impl Fetcher {
    /// Builds the client once; reuse the fetcher for every request of a run.
    pub fn new(opts: FetchOptions) -> Result<Fetcher, Error> {
        let client = http::http_client(&opts.deadlines, opts.max_redirects)?;
        Ok(Fetcher { client, opts })
    }

    /// The policy this fetcher applies.
    pub fn options(&self) -> &FetchOptions {
        &self.opts
    }

    /// GETs a small text document (a registry file), retrying transient failures.
    pub async fn text(&self, url: &Url, max_len: usize) -> Result<String, Error> {
        let mut retry = Retry::new(&self.opts, url);
        loop {
            match self.text_once(url, max_len, retry.deadline).await {
                Ok(text) => return Ok(text),
                Err(Failure::Transient(why, after)) => retry.pause(&why, after, None).await?,
                Err(Failure::Unreachable(why)) => retry.unreachable(&why, None).await?,
                Err(Failure::Deadline) => return Err(deadline_error(url, &self.opts.deadlines)),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Consumer) => return Err(Error::infra("text download had a consumer")),
            }
        }
    }

    async fn text_once(
        &self,
        url: &Url,
        max_len: usize,
        deadline: Instant,
    ) -> Result<String, Failure> {
        let mut resp = within(deadline, self.client.get(url.clone()).send())
            .await?
            .map_err(|e| classify_error(&e, &self.opts.deadlines))?;
        check_status(&resp, url)?;
        let too_big = || {
            Failure::Fatal(Error::config(format!(
                "{url} is larger than {max_len} bytes; it is not a registry file"
            )))
        };
        if resp.content_length().is_some_and(|n| n > max_len as u64) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        let mut rate = RateWindow::new(self.opts.min_throughput);
        while let Some(chunk) = within(deadline, resp.chunk())
            .await?
            .map_err(|e| classify_error(&e, &self.opts.deadlines))?
        {
            rate.add(chunk.len())?;
            body.extend_from_slice(&chunk);
            if body.len() > max_len {
                return Err(too_big());
            }
        }
        String::from_utf8(body).map_err(|_| {
            Failure::Fatal(Error::config(format!(
                "{url} is not UTF-8 text; it is not a registry file"
            )))
        })
    }

    /// Downloads, verifies and unpacks an archive in one pass. On success the partial file
    /// holds the verified archive and `target.dest` its content. On a checksum mismatch or a
    /// refused archive the partial file is deleted; after a network failure it is kept so the
    /// next run resumes it.
    pub async fn archive(
        &self,
        job: &ArchiveJob,
        progress: &mut dyn Progress,
    ) -> Result<Verified, Error> {
        let url = Url::parse(&job.url)
            .map_err(|e| Error::config(format!("invalid image url {}: {e}", job.url)))?;
        let (pipe, replayed) = Pipeline::start(job.target.clone());
        let result = self.archive_with(job, &url, pipe, replayed, progress).await;
        match result {
            Err(Rejected::Mismatch(_)) if replayed > 0 => {
                progress.note(&format!(
                    "{}: the partial download kept from an earlier run was stale; starting over",
                    job.label
                ));
                let (pipe, _) = Pipeline::start(job.target.clone());
                let again = self.archive_with(job, &url, pipe, 0, progress).await;
                again.map_err(Error::from)
            }
            other => other.map_err(Error::from),
        }
    }

    async fn archive_with(
        &self,
        job: &ArchiveJob,
        url: &Url,
        mut pipe: Pipeline,
        replayed: u64,
        progress: &mut dyn Progress,
    ) -> Result<Verified, Rejected> {
        if replayed > 0 {
            progress.note(&format!("{}: resuming at byte {replayed}", job.label));
        }
        progress.start(&job.label, None);
        let transferred = if url.scheme() == "file" {
            local_file(url, &mut pipe, replayed).await
        } else {
            self.network(url, &mut pipe, replayed, progress).await
        };
        progress.finish();
        if let Err(failure) = transferred {
            let stopped = pipe.abort().await;
            let rejected = fail(job, failure, stopped);
            // A refusal before the first byte leaves an empty partial file: nothing to resume.
            if std::fs::metadata(&job.target.part).is_ok_and(|m| m.len() == 0) {
                discard_part(job);
            }
            return Err(rejected);
        }
        match pipe.finish().await {
            Ok(outcome) => judge(job, outcome),
            Err(stopped) => Err(fail(job, Failure::Consumer, stopped)),
        }
    }

    async fn network(
        &self,
        url: &Url,
        pipe: &mut Pipeline,
        mut offset: u64,
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let mut retry = Retry::new(&self.opts, url);
        loop {
            match self
                .attempt(url, pipe, &mut offset, retry.deadline, progress)
                .await
            {
                Ok(()) => return Ok(()),
                Err(Failure::Transient(why, after)) => retry
                    .pause(&why, after, Some(&mut *progress))
                    .await
                    .map_err(Failure::Fatal)?,
                Err(Failure::Unreachable(why)) => retry
                    .unreachable(&why, Some(&mut *progress))
                    .await
                    .map_err(Failure::Fatal)?,
                Err(Failure::Deadline) => {
                    return Err(Failure::Fatal(deadline_error(url, &self.opts.deadlines)));
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// One GET (with `Range` when bytes are already in), streamed into the pipeline.
    async fn attempt(
        &self,
        url: &Url,
        pipe: &mut Pipeline,
        offset: &mut u64,
        deadline: Instant,
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let mut request = self.client.get(url.clone());
        if *offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let classify = |e: reqwest::Error| classify_error(&e, &self.opts.deadlines);
        let mut resp = within(deadline, request.send()).await?.map_err(classify)?;
        let status = resp.status();
        let resumed =
            status == StatusCode::PARTIAL_CONTENT && content_range_start(&resp) == Some(*offset);
        if *offset > 0
            && !resumed
            && (status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE)
        {
            pipe.restart().await.map_err(|_| Failure::Consumer)?;
            *offset = 0;
            progress.note(&format!(
                "{url}: the server did not resume (HTTP {status}); restarting from byte 0"
            ));
            if status != StatusCode::OK {
                return Err(Failure::Transient(
                    "restart without Range".into(),
                    Some(Duration::ZERO),
                ));
            }
        }
        check_status(&resp, url)?;
        let total = resp.content_length().map(|len| len + *offset);
        let limit = self.opts.limits.max_archive_bytes;
        if let Some(total) = total.filter(|&t| t > limit) {
            return Err(Failure::Fatal(
                Error::infra(format!(
                    "{url} is {total} bytes (Content-Length), more than the limit of {limit} \
                     bytes for an image archive; nothing was downloaded"
                ))
                .help("check the url in the registry; an image this big is not a guest image"),
            ));
        }
        progress.update(*offset, total);
        let mut rate = RateWindow::new(self.opts.min_throughput);
        loop {
            let next = tokio::select! {
                biased;
                () = pipe.closed() => return Err(Failure::Consumer),
                next = within(deadline, resp.chunk()) => next,
            };
            let Some(chunk) = next?.map_err(classify)? else {
                break;
            };
            rate.add(chunk.len())?;
            *offset += chunk.len() as u64;
            if !within(deadline, pipe.send(chunk)).await? {
                return Err(Failure::Consumer);
            }
            progress.update(*offset, total);
        }
        Ok(())
    }
}

/// The attempt budget and total deadline of one download.
struct Retry<'a> {
    opts: &'a FetchOptions,
    url: &'a Url,
    attempt: u32,
    /// Attempts that found no server at all.
    unreachable: u32,
    deadline: Instant,
}

impl<'a> Retry<'a> {
    fn new(opts: &'a FetchOptions, url: &'a Url) -> Self {
        Retry {
            opts,
            url,
            attempt: 1,
            unreachable: 0,
            deadline: Instant::now() + opts.deadlines.total,
        }
    }

    /// Like [`Retry::pause`] within the smaller budget for a server that cannot be reached.
    async fn unreachable(
        &mut self,
        why: &str,
        progress: Option<&mut dyn Progress>,
    ) -> Result<(), Error> {
        self.unreachable += 1;
        if self.unreachable >= self.opts.connect_attempts {
            return Err(self.give_up(why, self.unreachable));
        }
        self.pause(why, None, progress).await
    }

    fn give_up(&self, why: &str, tries: u32) -> Error {
        let tries = match tries {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        let message = format!(
            "failed to download {}: {why} (gave up after {tries})",
            self.url
        );
        Error::infra(message).help(
            "check the network and the URL; bytes already downloaded are kept and resumed next time",
        )
    }

    /// Waits before the next attempt, or fails when the budget or the deadline is spent.
    async fn pause(
        &mut self,
        why: &str,
        retry_after: Option<Duration>,
        progress: Option<&mut dyn Progress>,
    ) -> Result<(), Error> {
        if self.attempt >= self.opts.attempts {
            return Err(self.give_up(why, self.attempt));
        }
        let exponential = self
            .opts
            .backoff
            .saturating_mul(1 << (self.attempt - 1).min(16));
        let wait = retry_after
            .unwrap_or(exponential)
            .min(self.opts.max_backoff);
        if Instant::now() + wait >= self.deadline {
            let mut e = deadline_error(self.url, &self.opts.deadlines);
            e.message = format!("{} (last failure: {why})", e.message);
            return Err(e);
        }
        self.attempt += 1;
        if let Some(p) = progress {
            p.note(&format!(
                "{why}; retrying in {:.1} s (attempt {}/{})",
                wait.as_secs_f64(),
                self.attempt,
                self.opts.attempts
            ));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

fn deadline_error(url: &Url, deadlines: &Deadlines) -> Error {
    Error::infra(format!(
        "download of {url} did not finish within its total deadline of {} s",
        deadlines.total.as_secs_f64()
    ))
    .help("a slow network or server; retry later or raise the download deadline")
}

/// Bounds a step by the total deadline.
async fn within<F: std::future::Future>(deadline: Instant, f: F) -> Result<F::Output, Failure> {
    tokio::time::timeout_at(deadline, f)
        .await
        .map_err(|_| Failure::Deadline)
}

fn check_status(resp: &reqwest::Response, url: &Url) -> Result<(), Failure> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let transient = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if transient {
        let after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(Failure::Transient(format!("{url}: HTTP {status}"), after));
    }
    let help = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => {
            "the server has no file at this URL; check the url in the registry"
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            "the server refuses access; images must be publicly downloadable"
        }
        _ => "check the URL in the registry entry",
    };
    Err(Failure::Fatal(
        Error::infra(format!("failed to download {url}: HTTP {status}")).help(help),
    ))
}

fn content_range_start(resp: &reqwest::Response) -> Option<u64> {
    let value = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn classify_error(e: &reqwest::Error, deadlines: &Deadlines) -> Failure {
    let detail = error_chain(e);
    if e.is_builder() || e.is_redirect() {
        return Failure::Fatal(Error::infra(detail).help("check the URL and its redirects"));
    }
    let what = if e.is_timeout() && e.is_connect() {
        return Failure::Unreachable(format!(
            "no connection within {} s",
            deadlines.connect.as_secs_f64()
        ));
    } else if e.is_timeout() {
        format!("no data for {} s", deadlines.read.as_secs_f64())
    } else if e.is_connect() {
        return Failure::Unreachable(format!("cannot connect: {}", root_cause(e)));
    } else {
        detail
    };
    Failure::Transient(what, None)
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// reqwest's own message is terse ("error sending request"); the cause is in the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(text, ": {c}");
        cause = c.source();
    }
    text
}

/// Streams a local archive (a `file://` entry or the cached copy) through the pipeline.
async fn local_file(url: &Url, pipe: &mut Pipeline, offset: u64) -> Result<(), Failure> {
    let path = url
        .to_file_path()
        .map_err(|_| Failure::Fatal(Error::config(format!("{url} is not a local path"))))?;
    let io_fail = |e: std::io::Error| Failure::Fatal(Error::io(&path, "read", &e));
    let mut file = tokio::fs::File::open(&path).await.map_err(io_fail)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(io_fail)?;
    let mut buf = BytesMut::with_capacity(256 * 1024);
    loop {
        buf.reserve(256 * 1024);
        if file.read_buf(&mut buf).await.map_err(io_fail)? == 0 {
            return Ok(());
        }
        let chunk: Bytes = buf.split().freeze();
        if !pipe.send(chunk).await {
            return Err(Failure::Consumer);
        }
    }
}

/// Why an archive was not accepted.
enum Rejected {
    /// The SHA-256 differs, or the stream does not start like the archive: retried once from
    /// scratch when a stale partial file was replayed.
    Mismatch(Error),
    Other(Error),
}

impl From<Rejected> for Error {
    fn from(r: Rejected) -> Error {
        match r {
            Rejected::Mismatch(e) | Rejected::Other(e) => e,
        }
    }
}

fn judge(job: &ArchiveJob, outcome: Outcome) -> Result<Verified, Rejected> {
    if outcome.sha256 != job.sha256 {
        discard_part(job);
        return Err(Rejected::Mismatch(
            Error::infra(format!(
                "SHA-256 mismatch for {} ({}): expected {}, got {} ({} bytes); nothing was cached",
                job.label, job.url, job.sha256, outcome.sha256, outcome.bytes
            ))
            .help("the download was corrupted or the file changed on the server; retry, and if it persists the registry's sha256 is out of date"),
        ));
    }
    match outcome.files {
        Ok(files) => Ok(Verified {
            bytes: outcome.bytes,
            files,
        }),
        Err(e) => {
            discard_part(job);
            Err(Rejected::Other(refusal(job, &e)))
        }
    }
}

fn fail(job: &ArchiveJob, failure: Failure, stopped: Stopped) -> Rejected {
    match (failure, stopped) {
        (_, Stopped::Unpack(e)) => {
            discard_part(job);
            match e {
                UnpackError::NotArchive(_) => Rejected::Mismatch(refusal(job, &e)),
                _ => Rejected::Other(refusal(job, &e)),
            }
        }
        (_, Stopped::Io(path, e)) => Rejected::Other(Error::io(&path, "write", &e)),
        (Failure::Fatal(e), Stopped::Aborted) => Rejected::Other(e),
        (Failure::Transient(why, _) | Failure::Unreachable(why), Stopped::Aborted) => {
            Rejected::Other(Error::infra(why))
        }
        (Failure::Deadline, Stopped::Aborted) => {
            Rejected::Other(Error::infra(format!("{}: deadline passed", job.label)))
        }
        (Failure::Consumer, Stopped::Aborted) => Rejected::Other(Error::infra(format!(
            "{}: the archive consumer stopped",
            job.label
        ))),
    }
}

fn refusal(job: &ArchiveJob, e: &UnpackError) -> Error {
    let help = if let UnpackError::NotArchive(_) = e {
        "the server sent something else than the archive (an error or login page?); nothing was cached. Check the url in the registry"
    } else if e.is_policy() {
        "the archive is unsafe or too big to unpack; nothing was cached. Report it to the image's publisher"
    } else {
        "the archive matches its SHA-256 but is not a valid .tar.gz or .tar.xz; the registry entry is broken"
    };
    Error::infra(format!("image {} ({}): {e}", job.label, job.url)).help(help)
}

fn discard_part(job: &ArchiveJob) {
    let _ = std::fs::remove_file(&job.target.part);
}
