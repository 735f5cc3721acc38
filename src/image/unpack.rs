//! Safe extraction of an untrusted tar stream into a fresh directory.
//!
//! Archive entries are untrusted bytes (design principle 4): nothing may land outside the
//! destination, no device or fifo is created, links may not lead out, and the total size and
//! entry count are bounded *before* the bytes are written.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

/// Bounds on what one archive may unpack to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Sum of the sizes of all regular files.
    pub max_bytes: u64,
    /// Number of archive members (files, directories, links).
    pub max_entries: u64,
    /// Size of the compressed archive as downloaded (checked against `Content-Length` before the
    /// first byte, and again as bytes arrive).
    pub max_archive_bytes: u64,
    /// Most decompressed bytes per archive byte; `None`: the archive kind's own bound
    /// ([`super::kind::KindSpec::max_ratio`]).
    pub max_ratio: Option<u64>,
    /// The ratio is judged only once this many bytes were decompressed.
    pub ratio_floor: u64,
}

impl Default for UnpackLimits {
    /// Generous: the biggest axvisor-guest images are a few hundred MiB.
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 8 << 30,
            max_entries: 100_000,
            max_archive_bytes: 4 << 30,
            max_ratio: None,
            ratio_floor: super::kind::RATIO_FLOOR,
        }
    }
}

/// Why extraction stopped.
#[derive(Debug)]
pub enum UnpackError {
    /// A member breaks the safety rules (escape, link, device, reserved name).
    Refused { entry: String, reason: String },
    /// The archive is bigger than [`UnpackLimits`] allow.
    TooBig(String),
    /// The stream is not a valid tar (or gzip) stream.
    Format(io::Error),
    /// The first bytes are not the compression's magic number (an HTML error page, say).
    NotArchive(String),
    /// Writing the destination failed.
    Io { path: PathBuf, err: io::Error },
}

impl UnpackError {
    /// Refusals and limits are decided by the archive's content, not by a damaged transfer.
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            UnpackError::Refused { .. } | UnpackError::TooBig(_) | UnpackError::NotArchive(_)
        )
    }
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpackError::Refused { entry, reason } => {
                write!(f, "refused archive member \"{entry}\": {reason}")
            }
            UnpackError::TooBig(what) => write!(f, "archive too big: {what}"),
            UnpackError::Format(e) => write!(f, "not a valid .tar.gz or .tar.xz archive: {e}"),
            UnpackError::NotArchive(why) => f.write_str(why),
            UnpackError::Io { path, err } => write!(f, "cannot write {}: {err}", path.display()),
        }
    }
}

/// Unpacks the tar stream `tar` into `dest` (an existing, empty directory) and returns the
/// relative paths of every non-directory member, sorted. `reserved` names top-level members the
/// caller keeps for itself (e.g. a cache marker); an archive containing one is refused.
pub fn unpack(
    tar: impl Read,
    dest: &Path,
    limits: &UnpackLimits,
    reserved: &[&str],
) -> Result<Vec<PathBuf>, UnpackError> {
    // The tar stream itself is bounded too: GNU long names are read into memory by the parser.
    let stream_cap = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_mul(4096));
    let mut archive = tar::Archive::new(CappedReader {
        inner: tar,
        left: stream_cap,
    });
    let mut state = Unpacker {
        dest,
        limits,
        reserved,
        bytes: 0,
        entries: 0,
        files: BTreeSet::new(),
        symlinks: Vec::new(),
        buf: vec![0; 128 * 1024],
    };
    for entry in archive.entries().map_err(UnpackError::Format)? {
        let mut entry = entry.map_err(UnpackError::Format)?;
        state.entry(&mut entry)?;
    }
    state.check_symlinks()?;
    Ok(state.files.into_iter().collect())
}

/// Fails the read once more than `left` bytes were asked for.
struct CappedReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "tar stream exceeds the size limit",
            )
        })?;
        Ok(n)
    }
}

struct Unpacker<'a> {
    dest: &'a Path,
    limits: &'a UnpackLimits,
    reserved: &'a [&'a str],
    bytes: u64,
    entries: u64,
    files: BTreeSet<PathBuf>,
    symlinks: Vec<PathBuf>,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let shown = show(&raw);
        let refuse = |reason: &str| UnpackError::Refused {
            entry: shown.clone(),
            reason: reason.to_string(),
        };
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(UnpackError::TooBig(format!(
                "more than {} members",
                self.limits.max_entries
            )));
        }
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let rel = member_path(&raw).map_err(&refuse)?;
        let Some(rel) = rel else {
            return Ok(()); // "./" itself: the destination
        };
        if let Some(name) = rel.to_str()
            && self.reserved.contains(&name)
        {
            return Err(refuse("this name is reserved for the cache's own marker"));
        }
        match kind {
            EntryType::Directory => self.directory(&rel, entry.header().mode().unwrap_or(0o755)),
            EntryType::Regular | EntryType::Continuous => self.regular(&rel, entry, &shown),
            EntryType::Symlink => self.symlink(&rel, entry, &shown),
            EntryType::Link => self.hardlink(&rel, entry, &shown),
            EntryType::Char => Err(refuse("character device nodes are not allowed")),
            EntryType::Block => Err(refuse("block device nodes are not allowed")),
            EntryType::Fifo => Err(refuse("fifos are not allowed")),
            EntryType::GNUSparse => Err(refuse("sparse files are not supported")),
            other => Err(refuse(&format!("unsupported member type {:?}", other))),
        }
    }

    fn directory(&mut self, rel: &Path, mode: u32) -> Result<(), UnpackError> {
        let path = self.parent_ready(rel)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refused(rel, "a directory would replace a file or link")),
            Err(_) => fs::create_dir(&path).map_err(|err| io_err(&path, err))?,
        }
        let perm = fs::Permissions::from_mode((mode & 0o777) | 0o700);
        fs::set_permissions(&path, perm).map_err(|err| io_err(&path, err))
    }

    fn regular<R: Read>(
        &mut self,
        rel: &Path,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let size = entry.header().size().map_err(UnpackError::Format)?;
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.limits.max_bytes {
            return Err(UnpackError::TooBig(format!(
                "member \"{shown}\" ({size} bytes) takes the total past the {} byte limit",
                self.limits.max_bytes
            )));
        }
        let path = self.replaceable(rel)?;
        let mode = (entry.header().mode().unwrap_or(0o644) & 0o777) | 0o600;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|err| io_err(&path, err))?;
        loop {
            let n = entry.read(&mut self.buf).map_err(UnpackError::Format)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(|err| io_err(&path, err))?;
        }
        self.files.insert(rel.to_path_buf());
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        rel: &Path,
        entry: &tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| refused(rel, "symlink without a target"))?
            .into_owned();
        let target_path = Path::new(OsStr::from_bytes(&target));
        if target.is_empty() || target_path.has_root() {
            return Err(refused(
                rel,
                &format!("symlink target \"{}\" is absolute or empty", show(&target)),
            ));
        }
        let base = rel.parent().unwrap_or(Path::new(""));
        if lexically_escapes(base, target_path) {
            return Err(UnpackError::Refused {
                entry: shown.to_string(),
                reason: format!("symlink target \"{}\" leads outside", show(&target)),
            });
        }
        let path = self.replaceable(rel)?;
        std::os::unix::fs::symlink(target_path, &path).map_err(|err| io_err(&path, err))?;
        self.symlinks.push(rel.to_path_buf());
        self.files.insert(rel.to_path_buf());
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        rel: &Path,
        entry: &tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| refused(rel, "hard link without a target"))?
            .into_owned();
        let reason = |why: &str| UnpackError::Refused {
            entry: shown.to_string(),
            reason: format!("hard link target \"{}\" {why}", show(&raw)),
        };
        let target = member_path(&raw)
            .map_err(&reason)?
            .ok_or_else(|| reason("is the destination itself"))?;
        let target_abs = self.dest.join(&target);
        let is_extracted_file = !self.through_symlink(&target)
            && fs::symlink_metadata(&target_abs).is_ok_and(|m| m.is_file());
        if !is_extracted_file {
            return Err(reason("is not a regular file extracted earlier"));
        }
        let path = self.replaceable(rel)?;
        fs::hard_link(&target_abs, &path).map_err(|err| io_err(&path, err))?;
        self.files.insert(rel.to_path_buf());
        Ok(())
    }

    /// Creates the parent directories of `rel` (never through a symlink) and returns its path.
    fn parent_ready(&self, rel: &Path) -> Result<PathBuf, UnpackError> {
        let mut cur = self.dest.to_path_buf();
        if let Some(parent) = rel.parent() {
            for comp in parent.components() {
                cur.push(comp);
                match fs::symlink_metadata(&cur) {
                    Ok(m) if m.is_dir() => {}
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(refused(rel, "it would be written through a symlink"));
                    }
                    Ok(_) => return Err(refused(rel, "a parent path is a file")),
                    Err(_) => fs::create_dir(&cur).map_err(|err| io_err(&cur, err))?,
                }
            }
        }
        Ok(self.dest.join(rel))
    }

    /// Like [`Self::parent_ready`], and removes an earlier member of the same name (tar semantics:
    /// the last one wins), refusing to replace a directory.
    fn replaceable(&self, rel: &Path) -> Result<PathBuf, UnpackError> {
        let path = self.parent_ready(rel)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Err(refused(rel, "it would replace a directory")),
            Ok(_) => fs::remove_file(&path)
                .map(|_| path.clone())
                .map_err(|err| io_err(&path, err)),
            Err(_) => Ok(path),
        }
    }

    fn through_symlink(&self, rel: &Path) -> bool {
        let mut cur = self.dest.to_path_buf();
        rel.parent().is_some_and(|parent| {
            parent.components().any(|c| {
                cur.push(c);
                fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink())
            })
        })
    }

    /// Symlinks are checked lexically as they come, and once more when the tree is complete:
    /// a chain of links that each look harmless can still resolve outside.
    fn check_symlinks(&self) -> Result<(), UnpackError> {
        let root = fs::canonicalize(self.dest).map_err(|err| io_err(self.dest, err))?;
        for rel in &self.symlinks {
            let resolved = fs::canonicalize(self.dest.join(rel));
            if !resolved.is_ok_and(|p| p.starts_with(&root)) {
                return Err(refused(rel, "symlink resolves outside or dangles"));
            }
        }
        Ok(())
    }
}

/// A member's path relative to the destination; `None` for the destination itself.
fn member_path(raw: &[u8]) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for comp in Path::new(OsStr::from_bytes(raw)).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains a '..' component"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Whether `target`, taken relative to directory `base` (both relative to the destination),
/// climbs above the destination.
fn lexically_escapes(base: &Path, target: &Path) -> bool {
    let mut depth = base.components().count();
    for comp in target.components() {
        match comp {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// Untrusted names are shown escaped, so control characters cannot reach a terminal or log.
fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).escape_debug().to_string()
}

fn refused(rel: &Path, reason: &str) -> UnpackError {
    UnpackError::Refused {
        entry: show(rel.as_os_str().as_bytes()),
        reason: reason.to_string(),
    }
}

fn io_err(path: &Path, err: io::Error) -> UnpackError {
    UnpackError::Io {
        path: path.to_path_buf(),
        err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_normalised_or_refused() {
        assert_eq!(
            member_path(b"./rootfs.img").unwrap(),
            Some(PathBuf::from("rootfs.img"))
        );
        assert_eq!(member_path(b"./").unwrap(), None);
        assert!(member_path(b"a/../../x").is_err());
        assert!(member_path(b"/etc/passwd").is_err());
    }

    #[test]
    fn symlink_targets_are_checked_lexically() {
        assert!(!lexically_escapes(Path::new("a/b"), Path::new("../c")));
        assert!(lexically_escapes(Path::new("a"), Path::new("../../c")));
        assert!(lexically_escapes(Path::new(""), Path::new("x/../../y")));
    }
}
