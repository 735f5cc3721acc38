//! `qemu-test images …`: the parsed subcommand to the image stage's request ([`ImagesArgs`]), or
//! for `key` to the action's image keys.

use crate::cli::ImagesCmd;
use crate::error::exit;
use crate::image::cli::{ImagesArgs, ImagesCommand, cli_images};
use crate::image::tgos::TgosEnv;

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
            return match crate::action::images::image_keys(
                suite.as_deref(),
                &cases,
                &images,
                common.registry.as_deref(),
                common.cache_dir.as_deref(),
            )
            .await
            {
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
