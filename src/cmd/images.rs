//! `qemu-test images …`: the parsed subcommand ([`ImagesCmd`], the one definition of the
//! subcommands) to the image stage's operations ([`Images`]), or for `key` to the action's
//! image keys.

use std::io::Write;

use crate::cli::{ImagesCmd, ImagesCommon};
use crate::error::{Error, exit};
use crate::image::FetchOptions;
use crate::image::manage::Images;
use crate::image::progress::{self, Progress};
use crate::image::tgos::TgosEnv;
use crate::plan::{CaseInputs, ImageRequest, Suite};

/// Runs `qemu-test images …` as parsed, output on stdout, progress and errors on stderr;
/// returns the exit code.
pub async fn command(cmd: ImagesCmd) -> i32 {
    let mut progress = progress::for_stderr();
    let mut out = std::io::stdout();
    let tgos = TgosEnv::from_env();
    match execute(
        cmd,
        FetchOptions::default(),
        tgos,
        &mut out,
        progress.as_mut(),
    )
    .await
    {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

/// [`command`] with the download policy, tgoskits' settings, the output and the progress
/// supplied (tests).
pub async fn execute(
    cmd: ImagesCmd,
    fetch: FetchOptions,
    tgos: TgosEnv,
    out: &mut (dyn Write + Send),
    progress: &mut dyn Progress,
) -> Result<i32, Error> {
    let images = |common: ImagesCommon| Images {
        registry: common.registry,
        cache_dir: common.cache_dir,
        fetch,
        tgos,
    };
    match cmd {
        ImagesCmd::Ls(common) => images(common).ls(out).await,
        ImagesCmd::Pull {
            image,
            output_dir,
            common,
        } => {
            images(common)
                .pull(&image, output_dir.as_deref(), out, progress)
                .await
        }
        ImagesCmd::Verify { image, common } => {
            images(common).verify(image.as_deref(), out, progress).await
        }
        ImagesCmd::Rm { image, all, common } => {
            images(common)
                .rm(image.as_deref(), all, out, progress)
                .await
        }
        ImagesCmd::Key {
            suite,
            cases,
            images,
            common,
        } => {
            let requests = key_requests(suite.as_deref(), &cases, &images, &common.registry)?;
            let keys =
                crate::cmd::action::images::image_keys(&requests, common.cache_dir.as_deref())
                    .await?;
            for k in keys {
                writeln!(out, "{k}").map_err(crate::image::manage::stdout_err)?;
            }
            Ok(exit::PASS)
        }
    }
}

/// What `images key` resolves: the images of the suite's selected cases (layered as the run
/// layers them, `--registry` over theirs) and each `--image`.
fn key_requests(
    suite: Option<&std::path::Path>,
    cases: &[String],
    images: &[String],
    registry: &Option<String>,
) -> Result<Vec<ImageRequest>, Error> {
    let cwd = crate::cmd::run::current_dir()?;
    let suite = suite.map(|p| Suite::load(&cwd.join(p))).transpose()?;
    let top = CaseInputs {
        registry: registry.clone(),
        ..CaseInputs::default()
    };
    let mut requests = Vec::new();
    if suite.is_some() || !cases.is_empty() {
        requests = crate::plan::layered_images(&top, suite.as_ref(), cases, &cwd)?;
    }
    for image in images {
        let one = CaseInputs {
            image: Some(image.clone()),
            ..top.clone()
        };
        requests.extend(ImageRequest::of(&one)?);
    }
    Ok(requests)
}
