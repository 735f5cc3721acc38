//! `qemu-test images ls|pull|verify|rm|key`: the image stage on its own, for warming a cache in
//! CI, checking it, and cleaning it. clap lives in `crate::cli`; `crate::cmd::images` maps it to
//! these types.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::cache::{Cache, CachedImage};
use super::fetch::{FetchOptions, Fetcher};
use super::progress::{self, Progress};
use super::registry::{DEFAULT_REGISTRY, ImageSpec, Registry};
use super::tgos::TgosEnv;
use crate::error::{Error, exit};

/// Options shared by every `images` subcommand.
#[derive(Debug, Clone, Default)]
pub struct ImagesArgs {
    /// `--registry URL|FILE`; `None` is AxVisor's default registry.
    pub registry: Option<String>,
    /// `--cache-dir DIR`; `None` picks the documented default (see [`Cache::locate`]).
    pub cache_dir: Option<PathBuf>,
    /// Download policy; the default is right outside tests.
    pub fetch: FetchOptions,
    /// tgoskits' `TGOS_IMAGE_LOCAL_STORAGE` and `TGOS_IMAGE_REGISTRY_FALLBACK_URL`.
    pub tgos: TgosEnv,
    pub command: ImagesCommand,
}

/// The subcommand.
#[derive(Debug, Clone, Default)]
pub enum ImagesCommand {
    /// List the registry's images and whether each is cached.
    #[default]
    Ls,
    /// Download (if needed) and print the unpacked directory; with `output_dir`, also copy the
    /// archive and the files there in axbuild's storage layout and print that directory.
    Pull {
        image: String,
        output_dir: Option<PathBuf>,
    },
    /// Re-hash cached archives and compare the unpacked files; all when `image` is `None`.
    Verify { image: Option<String> },
    /// Delete a cached image (`NAME` or `NAME:VERSION`) or, with `all`, the whole cache.
    Rm { image: Option<String>, all: bool },
}

/// Runs an `images` subcommand with output on stdout, progress and errors on stderr; returns
/// the exit code.
pub async fn cli_images(args: ImagesArgs) -> i32 {
    let mut progress = progress::for_stderr();
    let mut out = std::io::stdout();
    match run_images(args, &mut out, progress.as_mut()).await {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

/// [`cli_images`] with the output and progress supplied (for tests and other front-ends).
pub async fn run_images(
    args: ImagesArgs,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let root = Cache::locate(args.cache_dir.as_deref())?;
    let cache = Cache::new(root)
        .with_options(args.fetch.clone())
        .with_local_storage(args.tgos.local_storage.clone());
    match &args.command {
        ImagesCommand::Ls => ls(&args, &cache, out).await,
        ImagesCommand::Pull { image, output_dir } => {
            pull(&args, &cache, image, output_dir.as_deref(), out, progress).await
        }
        ImagesCommand::Verify { image } => verify(&cache, image.as_deref(), out, progress).await,
        ImagesCommand::Rm { image, all } => rm(&cache, image.as_deref(), *all, out, progress).await,
    }
}

async fn load_registry(args: &ImagesArgs, cache: &Cache) -> Result<Registry, Error> {
    let location = args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let fetcher = Fetcher::new(args.fetch.clone())?;
    let fallback = args.tgos.fallback_url.as_deref();
    let copies = cache.registry_copies();
    let reg = Registry::load_from(location, fallback, &fetcher, Some(&copies)).await?;
    for w in &reg.warnings {
        eprintln!("warning: {w}");
    }
    Ok(reg)
}

async fn ls(args: &ImagesArgs, cache: &Cache, out: &mut (dyn Write + Send)) -> Result<i32, Error> {
    let reg = load_registry(args, cache).await?;
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
    args: &ImagesArgs,
    cache: &Cache,
    image: &str,
    output_dir: Option<&Path>,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let spec: ImageSpec = image.parse()?;
    let reg = load_registry(args, cache).await?;
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

fn stdout_err(e: std::io::Error) -> Error {
    Error::infra(format!("cannot write to stdout: {e}"))
}
