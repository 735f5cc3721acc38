//! The content-addressed image cache, shared safely by concurrent processes.
//!
//! Layout under the root:
//! - `images/<sha256>/`: the unpacked archive plus [`MARKER`], published by one `rename` of a
//!   complete, verified directory — a reader never sees a partial image;
//! - `archives/<sha256>.tar.gz` or `.tar.xz` (the archive's format, from its URL): the verified
//!   archive (renamed in after the hash matched); an xz archive kept by an older version under
//!   the `.tar.gz` name is still read ([`Cache::kept_archive`]) and replaced when refetched;
//! - `partial/<sha256>.tar.gz.part` (or `.tar.xz.part`): an interrupted download, resumed by
//!   the next run;
//! - `tmp/`: staging directories; `locks/<sha256>.lock`: one `flock` per image.
//!
//! A hit reads the marker and stats the files it lists: no network, and no re-hash unless a
//! file's inode, mtime or ctime changed since it was hashed (then it is re-hashed before use,
//! so a file rewritten in place with the same size is caught).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::LocalImage;
use super::fetch::{ArchiveJob, FetchOptions, Fetcher};
use super::kind::ArchiveKind;
use super::progress::Progress;
use super::registry::ImageEntry;
use super::stream::{Target, hex};
use crate::error::Error;

/// Name of the completion marker inside `images/<sha256>/`; archives may not use it.
pub const MARKER: &str = ".qemu-test-image.json";

/// What the marker records: written only after the archive verified and unpacked.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    sha256: String,
    archive_bytes: u64,
    arch: String,
    url: String,
    /// Every `name:version` this archive was fetched as (registries reuse archives).
    names: Vec<String>,
    files: Vec<MarkedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MarkedFile {
    path: PathBuf,
    size: u64,
    /// SHA-256 of the unpacked file (absent in markers of older versions: size-only checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// The file's identity and times when it was last hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stamp: Option<Stamp>,
    /// The wall clock (ns since the epoch) just before that hash began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hashed_at_ns: Option<i128>,
}

/// File times come from a clock that lags by up to a tick: a stamp whose ctime is this close to
/// the moment of hashing could be repeated by a write right after it, so it is not trusted
/// ("racy", as git calls it) and the file is re-hashed until its stamp is older.
const RACY_NS: i128 = 100_000_000;

fn wall_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// What changes when a file is replaced or written to: device, inode, mtime and ctime (the
/// latter cannot be set back by `touch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// How a cached image's files compare with its marker.
enum Check {
    /// As hashed.
    Intact,
    /// Same content, but some stamps changed (e.g. restored by actions/cache): the marker
    /// should record the new ones.
    Restamp(Marker),
    /// A file is missing, has another size or other content.
    Broken,
}

/// A complete entry of the cache.
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub sha256: String,
    pub dir: PathBuf,
    /// `name:version` aliases it was pulled as.
    pub names: Vec<String>,
    pub arch: String,
    pub archive_bytes: u64,
    /// Relative paths of the unpacked files.
    pub files: Vec<PathBuf>,
}

/// The cache root plus the download policy used to fill it.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    options: FetchOptions,
    /// axbuild's image storage (`TGOS_IMAGE_LOCAL_STORAGE`): read on a miss, never written.
    local_storage: Option<PathBuf>,
}

impl Cache {
    /// A cache at `root` (created on first use) with the default download policy.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            options: FetchOptions::default(),
            local_storage: None,
        }
    }

    /// Looks for an archive in axbuild's image storage `dir` before downloading it (see
    /// [`super::tgos`]); `None` downloads only.
    pub fn with_local_storage(mut self, dir: Option<PathBuf>) -> Cache {
        self.local_storage = dir;
        self
    }

    /// Replaces the download policy (deadlines, retries, unpack limits).
    pub fn with_options(mut self, options: FetchOptions) -> Cache {
        self.options = options;
        self
    }

    /// The cache root: `explicit` (`--cache-dir`), else `$QEMU_TEST_CACHE`, else
    /// `$RUNNER_TOOL_CACHE/qemu-test-action` (kept between jobs on self-hosted runners), else
    /// `$XDG_CACHE_HOME/qemu-test-action`, else `~/.cache/qemu-test-action`.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, Error> {
        use crate::environment::{Lookup, Runner};
        let tool_cache = Runner::from_env().tool_cache;
        locate_with(explicit, tool_cache, |k| {
            crate::environment::process()
                .get_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// The directory everything lives under (for messages and `probe`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The last good copies of remote registry files, for offline runs.
    pub fn registry_copies(&self) -> super::registry::RegistryCopies {
        super::registry::RegistryCopies::new(self.root.join("registries"))
    }

    /// The download policy used on a miss.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Where the unpacked image with this hash lives (whether or not it is there yet).
    pub fn image_dir(&self, sha256: &str) -> PathBuf {
        self.root.join("images").join(sha256)
    }

    /// Where the verified archive with this hash and format is kept (`<sha256>.tar.xz`).
    pub fn archive_path(&self, sha256: &str, kind: ArchiveKind) -> PathBuf {
        self.root.join("archives").join(format!("{sha256}{kind}"))
    }

    /// The kept archive to read for this hash and format: its own name, else the `.tar.gz` name
    /// under which earlier versions of qemu-test kept every archive, xz ones too (a cache restored from
    /// an older run); the archive's format comes from its URL, never from this name.
    pub fn kept_archive(&self, sha256: &str, kind: ArchiveKind) -> PathBuf {
        let own = self.archive_path(sha256, kind);
        let legacy = self.archive_path(sha256, ArchiveKind::TarGz);
        if !own.exists() && legacy.is_file() {
            return legacy;
        }
        own
    }

    fn part_path(&self, sha256: &str, kind: ArchiveKind) -> PathBuf {
        self.root
            .join("partial")
            .join(format!("{sha256}{kind}.part"))
    }

    /// The complete cached image with this hash: checked by `stat`, and re-hashed where a
    /// file's stamp changed since it was hashed.
    pub fn lookup(&self, sha256: &str) -> Option<CachedImage> {
        self.find(sha256, false)
    }

    /// [`Cache::lookup`] by the holder of the image's lock, which may record new stamps.
    fn lookup_locked(&self, sha256: &str) -> Option<CachedImage> {
        self.find(sha256, true)
    }

    fn find(&self, sha256: &str, locked: bool) -> Option<CachedImage> {
        let dir = self.image_dir(sha256);
        let marker = read_marker(&dir).ok()?;
        if marker.sha256 != sha256 {
            return None;
        }
        match check(&dir, &marker) {
            Check::Intact => Some(cached(dir, marker)),
            Check::Broken => None,
            Check::Restamp(restamped) => {
                // Record the new stamps only under the lock (a writer would otherwise lose its
                // update); if it is busy, the next lookup re-hashes again.
                let lock = if locked { None } else { self.try_lock(sha256) };
                if locked || lock.is_some() {
                    let _ = write_marker(&dir, &restamped);
                }
                Some(cached(dir, restamped))
            }
        }
    }

    /// The per-image lock if it is free right now.
    fn try_lock(&self, sha: &str) -> Option<Lock> {
        let path = self.root.join("locks").join(format!("{sha}.lock"));
        let file = OpenOptions::new().write(true).open(path).ok()?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        taken.then_some(Lock { _file: file })
    }

    /// The image of `entry`, from the cache or downloaded, verified and unpacked into it.
    /// Concurrent callers (threads or processes) download it once; the others wait.
    pub async fn ensure(
        &self,
        entry: &ImageEntry,
        progress: &mut dyn Progress,
    ) -> Result<LocalImage, Error> {
        let id = entry.id();
        if let Some(hit) = self.lookup(&entry.sha256).filter(|h| h.names.contains(&id)) {
            return Ok(local(entry, hit));
        }
        let _lock = self.lock(&entry.sha256, progress).await?;
        if self.lookup_locked(&entry.sha256).is_none() {
            self.fill(entry, progress).await?;
        }
        self.add_name(&entry.sha256, &id)?;
        let hit = self.lookup_locked(&entry.sha256).ok_or_else(|| {
            Error::infra(format!(
                "cache entry {} vanished after it was written",
                entry.sha256
            ))
        })?;
        Ok(local(entry, hit))
    }

    /// Downloads into a staging directory and publishes it. Caller holds the lock.
    async fn fill(&self, entry: &ImageEntry, progress: &mut dyn Progress) -> Result<(), Error> {
        let sha = &entry.sha256;
        for dir in ["images", "archives", "partial", "tmp"] {
            let path = self.root.join(dir);
            fs::create_dir_all(&path).map_err(|e| cache_io(&path, "create", &e))?;
        }
        self.clear_stale(sha)?;
        let tmp = self.root.join("tmp");
        let staging = tempfile::Builder::new()
            .prefix(&format!("{sha}-"))
            .tempdir_in(&tmp)
            .map_err(|e| cache_io(&tmp, "create a directory in", &e))?;
        let dest = staging.path().join("files");
        fs::create_dir(&dest).map_err(|e| cache_io(&dest, "create", &e))?;
        let kind = ArchiveKind::of_name(&entry.url);
        // An interrupted download of an earlier version, kept under the `.tar.gz` name: the
        // same bytes, so it is resumed under the archive's own name.
        let (part, legacy_part) = (
            self.part_path(sha, kind),
            self.part_path(sha, ArchiveKind::TarGz),
        );
        if part != legacy_part && !part.exists() && legacy_part.is_file() {
            let _ = fs::rename(&legacy_part, &part);
        }
        let job = ArchiveJob {
            label: entry.id(),
            url: entry.url.clone(),
            sha256: sha.clone(),
            target: Target {
                part,
                dest: dest.clone(),
                limits: self.options.limits.clone(),
                reserved: vec![MARKER.to_string()],
                kind,
            },
        };
        let fetcher = Fetcher::new(self.options.clone())?;
        let stored = self
            .local_storage
            .as_deref()
            .and_then(|dir| super::tgos::stored_archive(dir, entry));
        let verified = match stored {
            Some(path) => match fetch_stored(&fetcher, &job, &path, progress).await {
                Ok(v) => v,
                Err(e) => {
                    // Stale or tampered: nothing of it is kept; the registry's url is used.
                    progress.note(&format!(
                        "{}: the archive in {} ({}) was not used: {}; downloading it",
                        job.label,
                        super::tgos::LOCAL_STORAGE_ENV,
                        path.display(),
                        e.message
                    ));
                    let _ = fs::remove_dir_all(&dest);
                    fs::create_dir(&dest).map_err(|e| cache_io(&dest, "create", &e))?;
                    fetcher.archive(&job, progress).await?
                }
            },
            None => fetcher.archive(&job, progress).await?,
        };
        let archive = self.archive_path(sha, kind);
        fs::rename(&job.target.part, &archive).map_err(|e| cache_io(&archive, "create", &e))?;
        // An older version's copy of the same archive under another format's name.
        for other in ArchiveKind::all().filter(|k| *k != kind) {
            let _ = fs::remove_file(self.archive_path(sha, other));
        }
        let marker = Marker {
            sha256: sha.clone(),
            archive_bytes: verified.bytes,
            arch: entry.arch.clone(),
            url: entry.url.clone(),
            names: Vec::new(),
            files: sizes(&dest, verified.files)?,
        };
        write_marker(&dest, &marker)?;
        let final_dir = self.image_dir(sha);
        fs::rename(&dest, &final_dir).map_err(|e| cache_io(&final_dir, "create", &e))
    }

    /// Removes leftovers of crashed runs for `sha` (staging dirs, an incomplete image dir).
    fn clear_stale(&self, sha: &str) -> Result<(), Error> {
        let tmp = self.root.join("tmp");
        if let Ok(list) = fs::read_dir(&tmp) {
            for item in list.flatten() {
                if item
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{sha}-"))
                {
                    let _ = fs::remove_dir_all(item.path());
                }
            }
        }
        self.unpublish(sha).map(|_| ())
    }

    /// Takes `images/<sha>` away by renaming it into `tmp/` first, so no half-deleted image is
    /// ever visible at the final path.
    fn unpublish(&self, sha: &str) -> Result<bool, Error> {
        let dir = self.image_dir(sha);
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(false);
        }
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| cache_io(&tmp, "create", &e))?;
        let doomed = tmp.join(format!("{sha}-removed-{}", std::process::id()));
        fs::rename(&dir, &doomed).map_err(|e| cache_io(&dir, "remove", &e))?;
        fs::remove_dir_all(&doomed).map_err(|e| cache_io(&doomed, "remove", &e))?;
        Ok(true)
    }

    fn add_name(&self, sha: &str, id: &str) -> Result<(), Error> {
        let dir = self.image_dir(sha);
        let mut marker = read_marker(&dir)?;
        if !marker.names.iter().any(|n| n == id) {
            marker.names.push(id.to_string());
            write_marker(&dir, &marker)?;
        }
        Ok(())
    }

    /// Every hash with anything in the cache: complete images, archives, partial downloads.
    pub fn all_hashes(&self) -> Vec<String> {
        let mut out: Vec<String> = ["images", "archives", "partial"]
            .iter()
            .filter_map(|dir| fs::read_dir(self.root.join(dir)).ok())
            .flat_map(|list| list.flatten())
            .filter_map(|item| {
                let name = item.file_name().to_string_lossy().into_owned();
                let sha = name.split('.').next()?.to_string();
                let is_hash = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
                is_hash.then_some(sha)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every complete image in the cache, sorted by hash.
    pub fn list(&self) -> Result<Vec<CachedImage>, Error> {
        let images = self.root.join("images");
        let list = match fs::read_dir(&images) {
            Ok(list) => list,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(cache_io(&images, "read", &e)),
        };
        let mut out: Vec<CachedImage> = list
            .flatten()
            .filter_map(|item| {
                let dir = item.path();
                read_marker(&dir).ok().map(|m| cached(dir, m))
            })
            .collect();
        out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(out)
    }

    /// Deletes the image with this hash (unpacked files, archive, partial download).
    /// Returns whether anything was there.
    pub async fn remove(&self, sha256: &str, progress: &mut dyn Progress) -> Result<bool, Error> {
        let _lock = self.lock(sha256, progress).await?;
        let mut removed = self.unpublish(sha256)?;
        let files = ArchiveKind::all()
            .flat_map(|k| [self.archive_path(sha256, k), self.part_path(sha256, k)]);
        for file in files {
            match fs::remove_file(&file) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(cache_io(&file, "remove", &e)),
            }
        }
        Ok(removed)
    }

    /// Re-hashes the cached archive and compares every unpacked file with it, byte for byte.
    /// `Ok(problems)`: empty when the entry is intact.
    pub async fn verify(
        &self,
        sha256: &str,
        progress: &mut dyn Progress,
    ) -> Result<Vec<String>, Error> {
        let _lock = self.lock(sha256, progress).await?;
        let dir = self.image_dir(sha256);
        let marker = read_marker(&dir)?;
        let archive = self.kept_archive(sha256, ArchiveKind::of_name(&marker.url));
        let expected = sha256.to_string();
        tokio::task::spawn_blocking(move || compare(&archive, &dir, &marker, &expected))
            .await
            .map_err(|e| Error::infra(format!("verification failed: {e}")))?
    }

    /// Waits for the per-image lock, bounded by the total download deadline.
    async fn lock(&self, sha: &str, progress: &mut dyn Progress) -> Result<Lock, Error> {
        let dir = self.root.join("locks");
        fs::create_dir_all(&dir).map_err(|e| cache_io(&dir, "create", &e))?;
        let path = dir.join(format!("{sha}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| cache_io(&path, "open", &e))?;
        let deadline = Instant::now() + self.options.deadlines.total;
        let mut pause = Duration::from_millis(5);
        let mut told = false;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Lock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock && err.kind() != io::ErrorKind::Interrupted {
                return Err(cache_io(&path, "lock", &err));
            }
            if Instant::now() >= deadline {
                return Err(Error::infra(format!(
                    "timed out waiting for the cache lock {}",
                    path.display()
                ))
                .help("another qemu-test process holds it; wait for it to finish or stop it"));
            }
            if !told {
                progress.note(&format!(
                    "waiting for another process fetching the same image (lock {})",
                    path.display()
                ));
                told = true;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// The archive at `path` in the local storage, through the same verifying pipeline as a
/// download into `job`'s target.
async fn fetch_stored(
    fetcher: &Fetcher,
    job: &ArchiveJob,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<super::fetch::Verified, Error> {
    let abs = std::path::absolute(path).map_err(|e| cache_io(path, "read", &e))?;
    let url = reqwest::Url::from_file_path(&abs)
        .map_err(|()| Error::usage(format!("{} is not a usable file path", abs.display())))?;
    let local = ArchiveJob {
        label: format!("{} (from {})", job.label, super::tgos::LOCAL_STORAGE_ENV),
        url: url.to_string(),
        ..job.clone()
    };
    fetcher.archive(&local, progress).await
}

/// Held while filling, removing or verifying one image; the kernel drops the `flock` when the
/// file closes, also when the process dies.
struct Lock {
    _file: File,
}

/// The cache root from `--cache-dir`, the runner's tool cache and the variables in `env`.
fn locate_with(
    explicit: Option<&Path>,
    tool_cache: Option<PathBuf>,
    env: impl Fn(&str) -> Option<PathBuf>,
) -> Result<PathBuf, Error> {
    const APP: &str = "qemu-test-action";
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = env("QEMU_TEST_CACHE") {
        return Ok(p);
    }
    let under = |dir: Option<PathBuf>, sub: &str| {
        dir.filter(|p| p.is_absolute())
            .map(|p| p.join(sub).join(APP))
    };
    under(tool_cache, "")
        .or_else(|| under(env("XDG_CACHE_HOME"), ""))
        .or_else(|| under(env("HOME"), ".cache"))
        .map(|p| p.components().collect())
        .ok_or_else(|| {
            Error::usage("cannot choose an image cache directory: HOME is not set")
                .help("pass --cache-dir DIR or set QEMU_TEST_CACHE")
        })
}

fn read_marker(dir: &Path) -> Result<Marker, Error> {
    let path = dir.join(MARKER);
    let text = fs::read(&path).map_err(|e| cache_io(&path, "read", &e))?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::infra(format!("corrupt cache marker {}: {e}", path.display()))
            .help("remove the entry with `qemu-test images rm` and pull it again")
    })
}

/// Writes the marker to a temporary name and renames it over the old one.
fn write_marker(dir: &Path, marker: &Marker) -> Result<(), Error> {
    let path = dir.join(MARKER);
    let tmp = dir.join(format!("{MARKER}.{}.tmp", std::process::id()));
    let text = serde_json::to_vec_pretty(marker)
        .map_err(|e| Error::infra(format!("cannot encode cache marker: {e}")))?;
    fs::write(&tmp, text).map_err(|e| cache_io(&tmp, "write", &e))?;
    fs::rename(&tmp, &path).map_err(|e| cache_io(&path, "write", &e))
}

/// Size, hash and stamp of each unpacked file, for the marker.
fn sizes(dir: &Path, files: Vec<PathBuf>) -> Result<Vec<MarkedFile>, Error> {
    files
        .into_iter()
        .map(|path| {
            let abs = dir.join(&path);
            let hashed_at_ns = wall_ns();
            let sha256 = hash_file(&abs).map_err(|e| cache_io(&abs, "read", &e))?;
            let meta = fs::metadata(&abs).map_err(|e| cache_io(&abs, "stat", &e))?;
            Ok(MarkedFile {
                path,
                size: meta.len(),
                sha256: Some(sha256),
                stamp: Some(Stamp::of(&meta)),
                hashed_at_ns: Some(hashed_at_ns),
            })
        })
        .collect()
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut hashing = HashingReader {
        inner: File::open(path)?,
        hasher: <sha2::Sha256 as sha2::Digest>::new(),
    };
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(hex(&sha2::Digest::finalize(hashing.hasher)))
}

/// Compares the files in `dir` with `marker`: sizes always, content where the stamp moved.
fn check(dir: &Path, marker: &Marker) -> Check {
    let mut restamped = marker.clone();
    let mut moved = false;
    for f in &mut restamped.files {
        let path = dir.join(&f.path);
        let Ok(meta) = fs::metadata(&path) else {
            return Check::Broken;
        };
        if meta.len() != f.size {
            return Check::Broken;
        }
        let now = Stamp::of(&meta);
        let (Some(stamp), Some(sha)) = (f.stamp, &f.sha256) else {
            continue; // an older marker: size only
        };
        let racy = f
            .hashed_at_ns
            .is_none_or(|at| stamp.ctime_ns.max(stamp.mtime_ns) + RACY_NS >= at);
        if stamp != now || racy {
            let hashed_at_ns = wall_ns();
            if hash_file(&path).ok().as_ref() != Some(sha) {
                return Check::Broken;
            }
            f.stamp = Some(Stamp::of(&meta));
            f.hashed_at_ns = Some(hashed_at_ns);
            moved = true;
        }
    }
    if moved {
        Check::Restamp(restamped)
    } else {
        Check::Intact
    }
}

fn cached(dir: PathBuf, m: Marker) -> CachedImage {
    CachedImage {
        sha256: m.sha256,
        dir,
        names: m.names,
        arch: m.arch,
        archive_bytes: m.archive_bytes,
        files: m.files.into_iter().map(|f| f.path).collect(),
    }
}

fn local(entry: &ImageEntry, hit: CachedImage) -> LocalImage {
    LocalImage {
        name: entry.name.clone(),
        version: entry.version.clone(),
        arch: entry.arch.clone(),
        sha256: hit.sha256,
        dir: hit.dir,
        files: hit.files,
    }
}

fn cache_io(path: &Path, action: &str, e: &io::Error) -> Error {
    Error::io(path, action, e)
        .help("check that the cache directory is writable (--cache-dir, QEMU_TEST_CACHE)")
}

/// The full check behind `images verify`.
fn compare(
    archive: &Path,
    dir: &Path,
    marker: &Marker,
    sha256: &str,
) -> Result<Vec<String>, Error> {
    let mut problems = Vec::new();
    for f in &marker.files {
        let ok = fs::metadata(dir.join(&f.path)).is_ok_and(|m| m.len() == f.size);
        if !ok {
            problems.push(format!(
                "{} is missing or has the wrong size",
                f.path.display()
            ));
        }
    }
    let file = match File::open(archive) {
        Ok(f) => f,
        Err(e) => {
            problems.push(format!("archive {}: {e}", archive.display()));
            return Ok(problems);
        }
    };
    let mut hashing = HashingReader {
        inner: file,
        hasher: <sha2::Sha256 as sha2::Digest>::new(),
    };
    let kind = super::kind::ArchiveKind::of_name(&marker.url);
    let mut tar = tar::Archive::new(kind.decoder(&mut hashing));
    if let Err(e) = compare_members(&mut tar, dir, &mut problems) {
        problems.push(format!("cannot read archive {}: {e}", archive.display()));
    }
    drop(tar);
    let _ = io::copy(&mut hashing, &mut io::sink());
    let got = hex(&sha2::Digest::finalize(hashing.hasher));
    if got != sha256 {
        problems.push(format!("archive SHA-256 is {got}, expected {sha256}"));
    }
    Ok(problems)
}

fn compare_members<R: Read>(
    tar: &mut tar::Archive<R>,
    dir: &Path,
    problems: &mut Vec<String>,
) -> io::Result<()> {
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let rel: PathBuf = entry
            .path()?
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        let same = File::open(dir.join(&rel)).and_then(|mut f| same_bytes(&mut entry, &mut f));
        if !same.unwrap_or(false) {
            problems.push(format!("{} differs from the archive", rel.display()));
        }
    }
    Ok(())
}

fn same_bytes(a: &mut impl Read, b: &mut impl Read) -> io::Result<bool> {
    let (mut x, mut y) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y[..1])? == 0);
        }
        b.read_exact(&mut y[..n])
            .map_err(|_| io::Error::other("shorter"))?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| PathBuf::from(v))
        }
    }

    #[test]
    fn cache_root_follows_the_documented_precedence() {
        let all = [
            ("QEMU_TEST_CACHE", "/q"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        let tool = || Some(PathBuf::from("/opt/hostedtoolcache"));
        let explicit = Path::new("/cli");
        let root = locate_with(Some(explicit), tool(), env(&all)).unwrap();
        assert_eq!(root, explicit);
        assert_eq!(
            locate_with(None, tool(), env(&all)).unwrap(),
            Path::new("/q")
        );
        let root = locate_with(None, tool(), env(&all[1..])).unwrap();
        assert_eq!(root, Path::new("/opt/hostedtoolcache/qemu-test-action"));
        let relative = Some(PathBuf::from("hostedtoolcache"));
        assert_eq!(
            locate_with(None, relative, env(&all[1..])).unwrap(),
            Path::new("/x/qemu-test-action"),
            "a relative tool cache is passed over"
        );
        assert_eq!(
            locate_with(None, None, env(&all[1..])).unwrap(),
            Path::new("/x/qemu-test-action")
        );
        let home = locate_with(None, None, env(&all[2..])).unwrap();
        assert_eq!(home, Path::new("/home/u/.cache/qemu-test-action"));
        let err = locate_with(None, None, env(&[])).unwrap_err();
        assert!(err.message.contains("HOME is not set"), "{err}");
    }
}
