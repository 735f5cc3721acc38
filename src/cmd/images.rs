//! `qemu-test images …`: the parsed subcommand to the image stage's request ([`ImagesArgs`]), or
//! for `key` to the action's image keys.

use crate::cli::ImagesCmd;
use crate::error::{Error, exit};
use crate::image::cli::{ImagesArgs, ImagesCommand, cli_images};
use crate::image::tgos::TgosEnv;
use crate::plan::{CaseInputs, ImageRequest, Suite};

/// Runs `qemu-test images …` as parsed; returns the exit code.
pub async fn command(cmd: ImagesCmd) -> i32 {
    let (common, command) = match cmd {
        ImagesCmd::Ls(c) => (c, ImagesCommand::Ls),
        ImagesCmd::Pull {
            image,
            output_dir,
            common,
        } => (common, ImagesCommand::Pull { image, output_dir }),
        ImagesCmd::Verify { image, common } => (common, ImagesCommand::Verify { image }),
        ImagesCmd::Rm { image, all, common } => (common, ImagesCommand::Rm { image, all }),
        ImagesCmd::Key {
            suite,
            cases,
            images,
            common,
        } => {
            let keys = match key_requests(suite.as_deref(), &cases, &images, &common.registry) {
                Ok(requests) => {
                    crate::cmd::action::images::image_keys(&requests, common.cache_dir.as_deref())
                        .await
                }
                Err(e) => Err(e),
            };
            return match keys {
                Ok(keys) => {
                    for k in keys {
                        println!("{k}");
                    }
                    exit::PASS
                }
                Err(e) => e.report(),
            };
        }
    };
    cli_images(ImagesArgs {
        registry: common.registry,
        cache_dir: common.cache_dir,
        command,
        tgos: TgosEnv::from_env(),
        ..ImagesArgs::default()
    })
    .await
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
        let (_, layered) = crate::plan::layered_cases(&top, suite.as_ref(), cases, &cwd)?;
        for case in &layered {
            requests.extend(ImageRequest::of(case)?);
        }
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
