//! The image stage on its own — list, pull, verify, remove — for warming a cache in CI, checking
//! it, and cleaning it (`qemu-test images ls|pull|verify|rm`; `crate::cmd::images` maps the
//! parsed subcommand to these calls). Output goes to `out`, progress to `progress`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::cache::{Cache, CachedImage};
use super::fetch::{FetchOptions, Fetcher};
use super::progress::Progress;
use super::registry::{DEFAULT_REGISTRY, ImageSpec, Registry};
use super::tgos::TgosEnv;
use crate::error::{Error, exit};

/// The registry and cache every operation works on.
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// `--registry URL|FILE`; `None` is AxVisor's default registry.
    pub registry: Option<String>,
    /// `--cache-dir DIR`; `None` picks the documented default (see [`Cache::locate`]).
    pub cache_dir: Option<PathBuf>,
    /// Download policy; the default is right outside tests.
    pub fetch: FetchOptions,
    /// tgoskits' `TGOS_IMAGE_LOCAL_STORAGE` and `TGOS_IMAGE_REGISTRY_FALLBACK_URL`.
    pub tgos: TgosEnv,
}

impl Images {
    fn cache(&self) -> Result<Cache, Error> {
        let root = Cache::locate(self.cache_dir.as_deref())?;
        Ok(Cache::new(root)
            .with_options(self.fetch.clone())
            .with_local_storage(self.tgos.local_storage.clone()))
    }

    /// Lists the registry's images and whether each is cached.
    pub async fn ls(&self, out: &mut (dyn Write + Send)) -> Result<i32, Error> {
        ls(self, &self.cache()?, out).await
    }

    /// Downloads (if needed) and prints the unpacked directory; with `output_dir`, also copies
    /// the archive and the files there in axbuild's storage layout and prints that directory.
    pub async fn pull(
        &self,
        image: &str,
        output_dir: Option<&Path>,
        out: &mut (dyn Write + Send),
        progress: &mut dyn Progress,
    ) -> Result<i32, Error> {
        pull(self, &self.cache()?, image, output_dir, out, progress).await
    }

    /// Re-hashes cached archives and compares the unpacked files; all when `image` is `None`.
    pub async fn verify(
        &self,
        image: Option<&str>,
        out: &mut (dyn Write + Send),
        progress: &mut dyn Progress,
    ) -> Result<i32, Error> {
        verify(&self.cache()?, image, out, progress).await
    }

    /// Deletes a cached image (`NAME` or `NAME:VERSION`) or, with `all`, the whole cache.
    pub async fn rm(
        &self,
        image: Option<&str>,
        all: bool,
        out: &mut (dyn Write + Send),
        progress: &mut dyn Progress,
    ) -> Result<i32, Error> {
        rm(&self.cache()?, image, all, out, progress).await
    }
}

async fn load_registry(images: &Images, cache: &Cache) -> Result<Registry, Error> {
    let location = images.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let fetcher = Fetcher::new(images.fetch.clone())?;
    let fallback = images.tgos.fallback_url.as_deref();
    let copies = cache.registry_copies();
    let reg = Registry::load_from(location, fallback, &fetcher, Some(&copies)).await?;
    for w in &reg.warnings {
        eprintln!("warning: {w}");
    }
    Ok(reg)
}

async fn ls(images: &Images, cache: &Cache, out: &mut (dyn Write + Send)) -> Result<i32, Error> {
    let reg = load_registry(images, cache).await?;
    let rows: Vec<[String; 5]> = reg
        .images()
        .iter()
        .map(|e| {
            let cached = if cache.lookup(&e.sha256).is_some() {
                "yes"
            } else {
                "no"
            };
            let released = e
                .released_at
                .as_ref()
                .map_or("-".to_string(), |t| t.to_string());
            [
                e.name.clone(),
                e.version.clone(),
                e.arch.clone(),
                released,
                cached.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "ARCH", "RELEASED", "CACHED"].map(String::from);
    print_table(out, &header, &rows)?;
    Ok(exit::PASS)
}

async fn pull(
    images: &Images,
    cache: &Cache,
    image: &str,
    output_dir: Option<&Path>,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let spec: ImageSpec = image.parse()?;
    let reg = load_registry(images, cache).await?;
    let entry = reg.resolve(&spec)?;
    let local = cache.ensure(entry, progress).await?;
    let shown = match output_dir {
        Some(dir) => {
            let kind = super::kind::ArchiveKind::of_name(&entry.url);
            let archive = cache.kept_archive(&local.sha256, kind);
            super::tgos::export(&local, entry, &spec, &archive, dir)?
        }
        None => local.dir,
    };
    writeln!(out, "{}", shown.display()).map_err(stdout_err)?;
    Ok(exit::PASS)
}

async fn verify(
    cache: &Cache,
    image: Option<&str>,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let chosen = select(cache, image)?;
    let mut code = exit::PASS;
    for img in &chosen {
        let problems = cache.verify(&img.sha256, progress).await?;
        let names = img.names.join(", ");
        if problems.is_empty() {
            writeln!(out, "ok   {} {names}", img.sha256).map_err(stdout_err)?;
        } else {
            code = exit::FAIL;
            writeln!(out, "BAD  {} {names}: {}", img.sha256, problems.join("; "))
                .map_err(stdout_err)?;
        }
    }
    if code != exit::PASS {
        eprintln!(
            "hint: remove damaged entries with `qemu-test images rm NAME` and pull them again"
        );
    }
    Ok(code)
}

async fn rm(
    cache: &Cache,
    image: Option<&str>,
    all: bool,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let chosen = match (image, all) {
        (Some(_), true) | (None, false) => {
            return Err(Error::usage(
                "images rm needs either NAME[:VERSION] or --all, not both",
            ));
        }
        (None, true) => return rm_all(cache, out, progress).await,
        (Some(_), false) => select(cache, image)?,
    };
    for img in &chosen {
        cache.remove(&img.sha256, progress).await?;
        writeln!(out, "removed {} {}", img.sha256, img.names.join(", ")).map_err(stdout_err)?;
    }
    Ok(exit::PASS)
}

/// Removes everything cached, partial downloads and kept registry copies included, each image
/// under its lock.
async fn rm_all(
    cache: &Cache,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let names: std::collections::HashMap<String, Vec<String>> = cache
        .list()?
        .into_iter()
        .map(|img| (img.sha256, img.names))
        .collect();
    for sha in cache.all_hashes() {
        cache.remove(&sha, progress).await?;
        let aliases = names.get(&sha).map(|n| n.join(", ")).unwrap_or_default();
        writeln!(out, "removed {sha} {aliases}").map_err(stdout_err)?;
    }
    cache.registry_copies().clear()?;
    Ok(exit::PASS)
}

/// The cached images `image` names (by the `name:version` aliases they were pulled as), or all.
fn select(cache: &Cache, image: Option<&str>) -> Result<Vec<CachedImage>, Error> {
    let all = cache.list()?;
    let Some(image) = image else {
        return Ok(all);
    };
    let spec: ImageSpec = image.parse()?;
    let wanted = |n: &String| match &spec.version {
        Some(v) => *n == format!("{}:{v}", spec.name),
        None => n.split_once(':').is_some_and(|(name, _)| name == spec.name),
    };
    let (chosen, others): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|i| i.names.iter().any(wanted));
    if chosen.is_empty() {
        let names: Vec<String> = others.iter().flat_map(|i| i.names.clone()).collect();
        let help = if names.is_empty() {
            "the cache is empty".to_string()
        } else {
            format!("cached: {}", names.join(", "))
        };
        return Err(Error::usage(format!("no cached image matches {spec}")).help(help));
    }
    Ok(chosen)
}

fn print_table(
    out: &mut (dyn Write + Send),
    header: &[String; 5],
    rows: &[[String; 5]],
) -> Result<(), Error> {
    let mut widths = header.each_ref().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end()).map_err(stdout_err)?;
    }
    Ok(())
}

/// A failed write of the output.
pub fn stdout_err(e: std::io::Error) -> Error {
    Error::infra(format!("cannot write to stdout: {e}"))
}
