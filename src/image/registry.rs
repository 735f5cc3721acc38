//! The axvisor-guest image registry: `[[includes]]` of further registries and `[[images]]`
//! entries, loaded from a URL or a local file, merged, and queried by `name[:version]`.
//!
//! Semantics follow AxVisor's xtask so its registry files mean the same thing here: includes are
//! read breadth-first with a seen-set (cycles are harmless), entries merge on (name, version)
//! with the first seen winning, and a bare name means the entry with the greatest `released_at`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use reqwest::Url;
use toml_edit::{Item, TableLike};

use super::fetch::Fetcher;
use super::timestamp::Timestamp;
use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// The variable naming the registry to read when the configured one cannot be fetched
/// (tgoskits' axbuild setting, see [`super::tgos`]).
pub const FALLBACK_URL_ENV: &str = "TGOS_IMAGE_REGISTRY_FALLBACK_URL";

/// The registry AxVisor's `cargo xtask image` uses by default.
pub const DEFAULT_REGISTRY: &str = "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/default.toml";

/// Registry files are small; anything bigger is not a registry (the same cap as local files).
const MAX_REGISTRY_BYTES: usize = crate::config::source::MAX_INPUT_BYTES as usize;

/// One downloadable guest image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub name: String,
    pub version: String,
    /// Absent in old registry files; such entries count as the oldest.
    pub released_at: Option<Timestamp>,
    pub description: String,
    /// Lower-case hex SHA-256 of the `.tar.gz`; the cache key.
    pub sha256: String,
    pub arch: String,
    /// Absolute URL of the archive (relative `url`s are resolved against their registry).
    pub url: String,
    /// The registry file or URL the entry came from, for messages.
    pub source: String,
}

impl ImageEntry {
    /// `name:version`, the unambiguous way to name an entry.
    pub fn id(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }

    fn same_content(&self, other: &ImageEntry) -> bool {
        (
            &self.released_at,
            &self.description,
            &self.sha256,
            &self.arch,
            &self.url,
        ) == (
            &other.released_at,
            &other.description,
            &other.sha256,
            &other.arch,
            &other.url,
        )
    }
}

/// What the user asks for: `NAME` (the latest release) or `NAME:VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub name: String,
    pub version: Option<String>,
}

impl FromStr for ImageSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (name, version) = match s.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (s.trim(), None),
        };
        let blank = |v: &str| v.is_empty() || v.contains(char::is_whitespace);
        if blank(name) || version.as_deref().is_some_and(blank) {
            return Err(Error::usage(format!("invalid image {s:?}")).help(
                "name one image as NAME or NAME:VERSION, e.g. qemu_aarch64_arceos:0.0.22 (a \
                 suite gives each case its own)",
            ));
        }
        Ok(ImageSpec {
            name: name.to_string(),
            version,
        })
    }
}

impl fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The merged view of a registry and everything it includes.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Sorted by (name, version).
    images: Vec<ImageEntry>,
    /// Every registry file read, in the order read.
    pub sources: Vec<String>,
    /// Conflicting duplicates and similar non-fatal findings, for the reporters.
    pub warnings: Vec<String>,
}

/// Where a registry lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Source {
    Url(Url),
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(u) => f.write_str(u.as_str()),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Source {
    /// Resolves `reference` (an absolute URL or a path/URL relative to `base`).
    /// A registry fetched over the network may not reach into local files.
    fn resolve(reference: &str, base: Option<&Source>) -> Result<Source, String> {
        let resolved = Source::resolve_unchecked(reference, base)?;
        if let (Some(Source::Url(_)), Source::File(_)) = (base, &resolved) {
            return Err("a registry fetched over the network may not point at local files".into());
        }
        Ok(resolved)
    }

    fn resolve_unchecked(reference: &str, base: Option<&Source>) -> Result<Source, String> {
        if reference.contains("://") {
            let url = Url::parse(reference).map_err(|e| format!("invalid URL: {e}"))?;
            return Source::from_url(url);
        }
        match base {
            Some(Source::Url(b)) => b
                .join(reference)
                .map_err(|e| format!("invalid relative URL: {e}"))
                .and_then(Source::from_url),
            Some(Source::File(b)) => {
                let dir = b.parent().unwrap_or(Path::new(""));
                Ok(Source::File(dir.join(reference)))
            }
            None => Ok(Source::File(PathBuf::from(reference))),
        }
    }

    fn from_url(url: Url) -> Result<Source, String> {
        match url.scheme() {
            "http" | "https" => Ok(Source::Url(url)),
            "file" => url
                .to_file_path()
                .map(Source::File)
                .map_err(|_| format!("{url} is not a local file path")),
            other => Err(format!(
                "unsupported URL scheme \"{other}\" (use http, https or file)"
            )),
        }
    }

    /// The seen-set key: the same file reached by two spellings is read once.
    fn key(&self) -> String {
        match self {
            Source::Url(u) => u.to_string(),
            Source::File(p) => std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
        }
    }

    /// An absolute URL for an entry's archive; relative URLs are taken relative to the registry.
    fn archive_url(&self, reference: &str) -> Result<String, String> {
        let resolved = Source::resolve(reference, Some(self))?;
        match resolved {
            Source::Url(u) => Ok(u.to_string()),
            Source::File(p) => {
                let abs = std::path::absolute(&p).map_err(|e| e.to_string())?;
                Url::from_file_path(&abs)
                    .map(|u| u.to_string())
                    .map_err(|_| format!("cannot express {} as a file URL", abs.display()))
            }
        }
    }
}

/// An include not yet read, and where it was named (for errors).
struct Pending {
    source: Source,
    named_at: Option<Location>,
}

/// The last good copy of each registry file fetched over the network, kept in the image cache
/// (`registries/<hash>.toml` and its `.json` with the URL and fetch time): when the network
/// fails, the registry is read from these copies with a warning, so a job whose images were
/// restored from the cache runs offline.
#[derive(Debug, Clone)]
pub struct RegistryCopies {
    dir: PathBuf,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CopyMeta {
    url: String,
    /// Seconds since the epoch.
    fetched_at: i64,
}

impl RegistryCopies {
    pub fn new(dir: impl Into<PathBuf>) -> RegistryCopies {
        RegistryCopies { dir: dir.into() }
    }

    /// Where the copy of `url` lives (without extension).
    fn stem(&self, url: &Url) -> PathBuf {
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
            url.as_str().as_bytes(),
        ));
        self.dir.join(&super::stream::hex(&digest)[..32])
    }

    /// Stores `text` as the last good copy of `url` (text first, then its metadata; each by
    /// rename, so a reader sees whole files only).
    fn save(&self, url: &Url, text: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let stem = self.stem(url);
        let meta = CopyMeta {
            url: url.to_string(),
            fetched_at: Timestamp::now().unix_seconds(),
        };
        let meta = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
        for (ext, bytes) in [("toml", text.as_bytes()), ("json", &meta[..])] {
            let path = stem.with_extension(ext);
            let tmp = stem.with_extension(format!("{ext}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }

    /// Forgets every copy (`images rm --all`).
    pub fn clear(&self) -> Result<(), Error> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(&self.dir, "remove", &e))
            }
            _ => Ok(()),
        }
    }

    /// The last good copy of `url` and when it was fetched, if there is one.
    fn load(&self, url: &Url) -> Option<(String, Timestamp)> {
        let stem = self.stem(url);
        let meta = crate::config::source::read_input(&stem.with_extension("json"), "registry copy");
        let meta: CopyMeta = serde_json::from_str(&meta.ok()?).ok()?;
        if meta.url != url.as_str() {
            return None;
        }
        let text = crate::config::source::read_input(&stem.with_extension("toml"), "registry copy");
        Some((text.ok()?, Timestamp::from_unix(meta.fetched_at)))
    }
}

impl Registry {
    /// Reads the registry at `location` (URL or file path) and all it includes.
    pub async fn load(location: &str, fetcher: &Fetcher) -> Result<Registry, Error> {
        Registry::load_with(location, fetcher, None).await
    }

    /// [`Registry::load`] that keeps the last good copy of every file fetched over the network
    /// in `copies`, and falls back to it (with a warning) when the network fails.
    pub async fn load_with(
        location: &str,
        fetcher: &Fetcher,
        copies: Option<&RegistryCopies>,
    ) -> Result<Registry, Error> {
        Registry::load_from(location, None, fetcher, copies).await
    }

    /// [`Registry::load_with`] with a fallback registry (tgoskits'
    /// `TGOS_IMAGE_REGISTRY_FALLBACK_URL`): when the registry at `location` cannot be fetched,
    /// `fallback` is read instead (with a warning); only when both fail is the last good copy
    /// used (the configured registry's, then the fallback's).
    pub async fn load_from(
        location: &str,
        fallback: Option<&str>,
        fetcher: &Fetcher,
        copies: Option<&RegistryCopies>,
    ) -> Result<Registry, Error> {
        let root = Source::resolve(location, None).map_err(|e| {
            Error::usage(format!("invalid registry \"{location}\": {e}"))
                .help("pass --registry an http(s) URL or the path of a registry .toml file")
        })?;
        let mut warnings = Vec::new();
        let (root, text) = read_root(root, fallback, fetcher, copies, &mut warnings).await?;
        let mut queue = VecDeque::new();
        let mut seen = HashSet::from([root.key()]);
        let mut files = Vec::new();
        let mut file = RegistryFile::parse(&root, text)?;
        loop {
            queue.extend(file.includes.iter().cloned().map(|(source, at)| Pending {
                source,
                named_at: Some(at),
            }));
            files.push(file);
            let unseen = std::iter::from_fn(|| queue.pop_front())
                .find(|p: &Pending| seen.insert(p.source.key()));
            let Some(pending) = unseen else { break };
            let text = read_source(&pending, fetcher, copies, &mut warnings).await?;
            file = RegistryFile::parse(&pending.source, text)?;
        }
        let mut reg = Registry::merge(files);
        warnings.append(&mut reg.warnings);
        reg.warnings = warnings;
        Ok(reg)
    }

    /// Parses one registry text with no includes followed (for tests and offline use).
    pub fn from_text(origin: &str, text: &str) -> Result<Registry, Error> {
        let source = Source::File(PathBuf::from(origin));
        let file = RegistryFile::parse(&source, text.to_string())?;
        Ok(Registry::merge(vec![file]))
    }

    fn merge(files: Vec<RegistryFile>) -> Registry {
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut reg = Registry::default();
        for file in files {
            reg.sources.push(file.origin);
            for entry in file.images {
                let key = (entry.name.clone(), entry.version.clone());
                match index.get(&key) {
                    Some(&i) if !reg.images[i].same_content(&entry) => {
                        reg.warnings.push(format!(
                            "image {} in {} differs from the one in {}; keeping the first",
                            entry.id(),
                            entry.source,
                            reg.images[i].source
                        ));
                    }
                    Some(_) => {}
                    None => {
                        index.insert(key, reg.images.len());
                        reg.images.push(entry);
                    }
                }
            }
        }
        reg.images
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        reg
    }

    /// Every image, sorted by (name, version).
    pub fn images(&self) -> &[ImageEntry] {
        &self.images
    }

    /// The entry `spec` names: exact for `name:version`, else the latest by `released_at`
    /// (undated entries are oldest; on a tie the last in sorted order wins, as in AxVisor).
    pub fn resolve(&self, spec: &ImageSpec) -> Result<&ImageEntry, Error> {
        let mut same_name = self
            .images
            .iter()
            .filter(|e| e.name == spec.name)
            .peekable();
        if same_name.peek().is_none() {
            return Err(self.unknown_name(&spec.name));
        }
        let found = match &spec.version {
            Some(v) => same_name.find(|e| &e.version == v),
            None => same_name.max_by(|a, b| a.released_at.cmp(&b.released_at)),
        };
        found.ok_or_else(|| {
            let versions: Vec<&str> = self
                .images
                .iter()
                .filter(|e| e.name == spec.name)
                .map(|e| e.version.as_str())
                .collect();
            Error::usage(format!("image {spec} not found")).help(format!(
                "available versions of {}: {}",
                spec.name,
                versions.join(", ")
            ))
        })
    }

    fn unknown_name(&self, name: &str) -> Error {
        let mut names: Vec<&str> = self.images.iter().map(|e| e.name.as_str()).collect();
        names.dedup();
        let meant = crate::config::source::did_you_mean(name, &names);
        let (label, list) = match &meant {
            Some(m) => ("did you mean", std::slice::from_ref(m)),
            None => ("available", names.as_slice()),
        };
        let shown: Vec<&str> = list.iter().copied().take(12).collect();
        let more = if list.len() > shown.len() {
            ", …"
        } else {
            ""
        };
        Error::usage(format!(
            "image {name} not found in registry {}",
            self.sources.first().map_or("(empty)", String::as_str)
        ))
        .help(format!("{label}: {}{more}", shown.join(", ")))
    }
}

/// Only a failure to fetch (network, server) falls back, not a registry that arrived and is bad.
fn unreachable(e: &Error) -> bool {
    e.kind == crate::error::ErrorKind::Infra
}

/// The root registry file and where it was read from: `root`, else (when it cannot be fetched)
/// `fallback`, else the last good copy of either.
async fn read_root(
    root: Source,
    fallback: Option<&str>,
    fetcher: &Fetcher,
    copies: Option<&RegistryCopies>,
    warnings: &mut Vec<String>,
) -> Result<(Source, String), Error> {
    let pending = Pending {
        source: root.clone(),
        named_at: None,
    };
    let (Source::Url(url), Some(fallback)) = (&root, fallback) else {
        let text = read_source(&pending, fetcher, copies, warnings).await?;
        return Ok((root, text));
    };
    let err = match fetch_and_keep(url, fetcher, copies, warnings).await {
        Ok(text) => return Ok((root, text)),
        Err(e) if unreachable(&e) => e,
        Err(e) => return Err(e),
    };
    let env = FALLBACK_URL_ENV;
    let fb = Source::resolve(fallback, None).map_err(|e| {
        Error::usage(format!("invalid {env} \"{fallback}\": {e}")).help(format!(
            "set {env} to an http(s) URL of a registry .toml file"
        ))
    })?;
    let fb_result = match &fb {
        Source::Url(fb_url) => fetch_and_keep(fb_url, fetcher, copies, warnings).await,
        Source::File(path) => read_file(path),
    };
    let fb_err = match fb_result {
        Ok(text) => {
            warnings.push(format!(
                "registry {root} could not be fetched ({}); using {env} {fb}",
                err.message
            ));
            return Ok((fb, text));
        }
        Err(e) if unreachable(&e) => e,
        Err(e) => return Err(e),
    };
    let either = kept_copy(url, copies, err, warnings).map(|text| (root, text));
    match (either, &fb) {
        (Ok(found), _) => Ok(found),
        (Err(e), Source::Url(fb_url)) => kept_copy(fb_url, copies, e, warnings)
            .map(|text| (fb.clone(), text))
            .map_err(|e| {
                e.help(format!(
                    "{env} {fb} could not be fetched either ({})",
                    fb_err.message
                ))
            }),
        (Err(e), Source::File(_)) => Err(e),
    }
}

/// `url`'s text from the network, kept in `copies` for offline runs.
async fn fetch_and_keep(
    url: &Url,
    fetcher: &Fetcher,
    copies: Option<&RegistryCopies>,
    warnings: &mut Vec<String>,
) -> Result<String, Error> {
    let text = fetcher.text(url, MAX_REGISTRY_BYTES).await?;
    if let Some(Err(e)) = copies.map(|c| c.save(url, &text)) {
        warnings.push(format!(
            "cannot keep a copy of registry {url} for offline use: {e}"
        ));
    }
    Ok(text)
}

/// The last good copy of `url` after fetching it failed with `err`, else `err`.
fn kept_copy(
    url: &Url,
    copies: Option<&RegistryCopies>,
    err: Error,
    warnings: &mut Vec<String>,
) -> Result<String, Error> {
    match copies.and_then(|c| c.load(url)) {
        Some((text, fetched_at)) => {
            warnings.push(format!(
                "registry {url} could not be fetched ({}); using the copy fetched at \
                 {fetched_at} from the image cache",
                err.message
            ));
            Ok(text)
        }
        None => Err(err),
    }
}

async fn read_source(
    pending: &Pending,
    fetcher: &Fetcher,
    copies: Option<&RegistryCopies>,
    warnings: &mut Vec<String>,
) -> Result<String, Error> {
    let result = match &pending.source {
        Source::Url(url) => match fetch_and_keep(url, fetcher, copies, warnings).await {
            Err(e) if unreachable(&e) => kept_copy(url, copies, e, warnings),
            result => result,
        },
        Source::File(path) => read_file(path),
    };
    result.map_err(|e| match &pending.named_at {
        Some(at) => {
            let mut e = e;
            e.message = format!("included registry: {}", e.message);
            e.at(at.clone())
        }
        None => e,
    })
}

fn read_file(path: &Path) -> Result<String, Error> {
    crate::config::source::read_input(path, "registry")
}

/// One parsed registry file.
struct RegistryFile {
    origin: String,
    includes: Vec<(Source, Location)>,
    images: Vec<ImageEntry>,
}

impl RegistryFile {
    fn parse(source: &Source, text: String) -> Result<RegistryFile, Error> {
        let origin = source.to_string();
        let src = SourceText::new(Path::new(&origin), text);
        let doc = toml_edit::Document::parse(src.text.as_str()).map_err(|e| {
            let at = src.location(e.span().map_or(0, |s| s.start));
            Error::config(format!("invalid registry format: {}", e.message().trim()))
                .at(at)
                .help("fix the TOML syntax here; the file must be an axvisor-guest registry")
        })?;
        let reader = Reader { src: &src, source };
        let mut file = RegistryFile {
            origin: origin.clone(),
            includes: Vec::new(),
            images: Vec::new(),
        };
        for (table, span) in reader.tables(doc.get("includes"), "includes")? {
            let (url, at) = reader.string(table, span.clone(), "url")?;
            let target = Source::resolve(&url, Some(source))
                .map_err(|e| reader.error(&at, &format!("include url \"{url}\": {e}")))?;
            file.includes.push((target, at));
        }
        for (table, span) in reader.tables(doc.get("images"), "images")? {
            file.images.push(reader.image(table, span)?);
        }
        Ok(file)
    }
}

/// Field access with positions, so every error names line and column.
struct Reader<'a> {
    src: &'a SourceText,
    source: &'a Source,
}

type Span = Option<Range<usize>>;

impl Reader<'_> {
    fn at(&self, span: &Span) -> Location {
        self.src.location(span.as_ref().map_or(0, |s| s.start))
    }

    fn error(&self, at: &Location, message: &str) -> Error {
        Error::config(format!("invalid registry entry: {message}"))
            .at(at.clone())
            .help(
                "each [[images]] needs string fields name, version, sha256 (64 lower-case hex \
                 digits), arch and url; released_at (RFC 3339) and description are optional",
            )
    }

    /// The tables of `[[key]]` (or `key = [{…}]`), each with its span.
    fn tables<'d>(
        &self,
        item: Option<&'d Item>,
        key: &str,
    ) -> Result<Vec<(&'d dyn TableLike, Span)>, Error> {
        let Some(item) = item else {
            return Ok(Vec::new());
        };
        if let Some(aot) = item.as_array_of_tables() {
            return Ok(aot
                .iter()
                .map(|t| (t as &dyn TableLike, t.span()))
                .collect());
        }
        let not_tables = || {
            self.error(
                &self.at(&item.span()),
                &format!("\"{key}\" must be an array of tables ([[{key}]])"),
            )
        };
        let array = item.as_array().ok_or_else(not_tables)?;
        array
            .iter()
            .map(|v| {
                v.as_inline_table()
                    .map(|t| (t as &dyn TableLike, t.span()))
                    .ok_or_else(not_tables)
            })
            .collect()
    }

    fn optional(
        &self,
        table: &dyn TableLike,
        key: &str,
    ) -> Result<Option<(String, Location)>, Error> {
        let Some(item) = table.get(key) else {
            return Ok(None);
        };
        let at = self.at(&item.span());
        match item.as_str() {
            // Registry text is untrusted and ends up on terminals and in CI logs.
            Some(s) if s.chars().any(char::is_control) => {
                Err(self.error(&at, &format!("\"{key}\" contains control characters")))
            }
            Some(s) => Ok(Some((s.to_string(), at))),
            None => Err(self.error(&at, &format!("\"{key}\" must be a string"))),
        }
    }

    fn string(
        &self,
        table: &dyn TableLike,
        span: Span,
        key: &str,
    ) -> Result<(String, Location), Error> {
        self.optional(table, key)?
            .ok_or_else(|| self.error(&self.at(&span), &format!("missing field \"{key}\"")))
    }

    fn image(&self, table: &dyn TableLike, span: Span) -> Result<ImageEntry, Error> {
        let field = |key: &str| self.string(table, span.clone(), key);
        let (name, name_at) = field("name")?;
        let (version, version_at) = field("version")?;
        for (value, at, key) in [
            (&name, &name_at, "name"),
            (&version, &version_at, "version"),
        ] {
            if value.trim().is_empty() || value.contains(':') || value.contains('/') {
                return Err(self.error(
                    at,
                    &format!("\"{key}\" must be non-empty without ':' or '/'"),
                ));
            }
        }
        let (sha256, sha_at) = field("sha256")?;
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(self.error(
                &sha_at,
                &format!("sha256 \"{sha256}\" is not 64 lower-case hex digits"),
            ));
        }
        let (arch, _) = field("arch")?;
        let (url_text, url_at) = field("url")?;
        let url = self
            .source
            .archive_url(&url_text)
            .map_err(|e| self.error(&url_at, &format!("url \"{url_text}\": {e}")))?;
        let released_at = match self.optional(table, "released_at")? {
            Some((text, at)) => Some(text.parse().map_err(|e: String| self.error(&at, &e))?),
            None => None,
        };
        let description = self
            .optional(table, "description")?
            .map(|d| d.0)
            .unwrap_or_default();
        Ok(ImageEntry {
            name,
            version,
            released_at,
            description,
            sha256,
            arch,
            url,
            source: self.source.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "f2422b89de216e595256b1d18b9305cc1f6d1f3b4d3e50016c50ac9126bf804b";

    fn entry(name: &str, version: &str, released: Option<&str>) -> String {
        let released = released.map_or(String::new(), |r| format!("released_at = \"{r}\"\n"));
        format!(
            "[[images]]\nname = \"{name}\"\nversion = \"{version}\"\nsha256 = \"{SHA}\"\n\
             arch = \"aarch64\"\nurl = \"https://example.org/{name}.tar.gz\"\n{released}\n"
        )
    }

    fn pick(reg: &Registry, spec: &str) -> String {
        reg.resolve(&spec.parse().unwrap()).unwrap().version.clone()
    }

    #[test]
    fn latest_is_the_greatest_release_time_and_ties_go_to_the_last() {
        let text = [
            entry("a", "0.0.9", Some("2026-01-01T00:00:00Z")),
            entry("a", "0.0.10", Some("2026-01-01T00:00:00Z")),
            entry("a", "0.0.2", None),
            entry("b", "1", None),
            entry("b", "2", None),
        ]
        .concat();
        let reg = Registry::from_text("r.toml", &text).unwrap();
        // sorted as strings: 0.0.10 < 0.0.2 < 0.0.9; the tie goes to the last, 0.0.9
        assert_eq!(pick(&reg, "a"), "0.0.9");
        assert_eq!(pick(&reg, "a:0.0.2"), "0.0.2");
        assert_eq!(pick(&reg, "b"), "2");
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let reg = Registry::from_text("r.toml", &entry("qemu_aarch64_linux", "1", None)).unwrap();
        let err = reg
            .resolve(&"qemu_aarch64_linx".parse().unwrap())
            .unwrap_err();
        assert!(
            err.message.contains("image qemu_aarch64_linx not found"),
            "{err}"
        );
        assert!(
            err.help
                .unwrap()
                .contains("did you mean: qemu_aarch64_linux")
        );
        // the one "did you mean" rule: `-` for `_`, and a swap of adjacent letters, are close
        for typo in ["qemu-aarch64-linux", "qemu_aarch64_lniux"] {
            let err = reg.resolve(&typo.parse().unwrap()).unwrap_err();
            assert_eq!(
                err.help.as_deref(),
                Some("did you mean: qemu_aarch64_linux"),
                "{typo}"
            );
        }
        let err = reg.resolve(&"arceos".parse().unwrap()).unwrap_err();
        assert_eq!(err.help.as_deref(), Some("available: qemu_aarch64_linux"));
        let err = reg
            .resolve(&"qemu_aarch64_linux:9".parse().unwrap())
            .unwrap_err();
        assert!(
            err.help
                .unwrap()
                .contains("available versions of qemu_aarch64_linux: 1")
        );
    }

    #[test]
    fn bad_fields_are_reported_at_their_line() {
        let text = entry("a", "1", None).replace(SHA, "ABC");
        let err = Registry::from_text("r.toml", &text).unwrap_err();
        let at = err.location.clone().unwrap();
        assert_eq!((at.line, at.column), (4, 10), "{err}");
        assert!(err.message.contains("64 lower-case hex"), "{err}");

        let err = Registry::from_text("r.toml", "[[images]]\nname = \"a\"\n").unwrap_err();
        assert_eq!(err.location.unwrap().line, 1);
        assert!(err.message.contains("missing field \"version\""));

        let err = Registry::from_text("r.toml", "[[images]\n").unwrap_err();
        assert!(err.message.contains("invalid registry format"), "{err}");
        assert_eq!(err.location.unwrap().line, 1);
    }

    #[test]
    fn untrusted_text_is_contained() {
        let text = entry("a", "1", None).replace("aarch64", "aarch64\\u001b[31m");
        let err = Registry::from_text("r.toml", &text).unwrap_err();
        assert!(
            err.message.contains("\"arch\" contains control characters"),
            "{err}"
        );
        let text = entry("a", "1", None).replace("\"a\"", "\"../a\"");
        let err = Registry::from_text("r.toml", &text).unwrap_err();
        assert!(
            err.message
                .contains("\"name\" must be non-empty without ':' or '/'"),
            "{err}"
        );
        let remote = Source::Url(Url::parse("https://example.org/r.toml").unwrap());
        assert_eq!(
            Source::resolve("file:///etc/passwd", Some(&remote)).unwrap_err(),
            "a registry fetched over the network may not point at local files"
        );
        assert!(
            remote
                .archive_url("/etc/passwd")
                .unwrap()
                .starts_with("https://example.org/")
        );
    }

    #[test]
    fn specs_parse_name_and_version() {
        let s: ImageSpec = "qemu_x86_64_nimbos:0.0.22".parse().unwrap();
        assert_eq!(
            (s.name.as_str(), s.version.as_deref()),
            ("qemu_x86_64_nimbos", Some("0.0.22"))
        );
        for bad in ["", "x:", "a\nb", "a b:1", "a:1 2"] {
            let err = bad.parse::<ImageSpec>().unwrap_err();
            assert_eq!(err.message, format!("invalid image {bad:?}"));
        }
        let spec: ImageSpec = " a : 1 ".parse().unwrap();
        assert_eq!(spec.to_string(), "a:1");
    }
}
