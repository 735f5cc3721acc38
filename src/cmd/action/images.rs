//! `qemu-test action image-cache key|filled`: the guest-image cache steps of the composite
//! action. The directory is the image cache's own location rule ([`Cache::locate`]), so the
//! directory actions/cache saves is the one `qemu-test run` fills; the key is the set of image
//! SHA-256s the selected cases use, so it changes exactly when an image does.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cli::{ActionArgs, RunArgs};
use crate::error::Error;
use crate::image::stream::hex;
use crate::image::{Cache, FetchOptions, Fetcher, Registry};
use crate::plan::ImageRequest;

/// The SHA-256 of each image the requests name, sorted, unique (`qemu-test images key` prints
/// them; the action's image cache key is made of them).
pub async fn image_keys(
    requests: &[ImageRequest],
    cache_dir: Option<&Path>,
) -> Result<Vec<String>, Error> {
    let fetcher = Fetcher::new(FetchOptions::default())?;
    // Offline, the last good copy of each registry in the image cache answers.
    let copies = Cache::locate(cache_dir)
        .ok()
        .map(|root| Cache::new(root).registry_copies());
    let mut registries: HashMap<&str, Registry> = HashMap::new();
    let mut keys = BTreeSet::new();
    for request in requests {
        let registry = request.registry.as_str();
        if !registries.contains_key(registry) {
            let fallback = crate::image::tgos::TgosEnv::from_env().fallback_url;
            let loaded =
                Registry::load_from(registry, fallback.as_deref(), &fetcher, copies.as_ref())
                    .await?;
            registries.insert(registry, loaded);
        }
        keys.insert(registries[registry].resolve(&request.spec)?.sha256.clone());
    }
    Ok(keys.into_iter().collect())
}

/// The images of the selected cases, layered as the run layers them (the command line's
/// `--image`/`--registry` over each case over the suite's defaults; `--test-suit` cases too).
pub fn case_images(run: &RunArgs, cwd: &Path) -> Result<Vec<ImageRequest>, Error> {
    let (cli, suite) = crate::cmd::run::case_layers(run, cwd)?;
    crate::plan::layered_images(&cli, suite.as_ref(), &run.cases, cwd)
}

/// The `key` step's outputs: `dir` (always) and `key` (empty when there is nothing to cache or
/// the key cannot be computed now — the run then goes on without actions/cache), plus notes.
pub async fn key_step(
    args: &ActionArgs,
    cwd: &Path,
) -> Result<(PathBuf, String, Vec<String>), Error> {
    let dir = Cache::locate(None)?;
    let mut notes = Vec::new();
    if !args.cache_images {
        notes.push("cache-images is false: guest images are not saved with actions/cache".into());
        return Ok((dir, String::new(), notes));
    }
    let requests = match case_images(&args.run, cwd) {
        Ok(r) => r,
        Err(e) => {
            notes.push(format!(
                "cannot read the selected cases now ({e}); continuing without actions/cache"
            ));
            return Ok((dir, String::new(), notes));
        }
    };
    if requests.is_empty() {
        notes.push("the selected cases use no registry images: nothing to cache".into());
        return Ok((dir, String::new(), notes));
    }
    let digests = match image_keys(&requests, Some(&dir)).await {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!(
                "cannot compute the guest image cache key now ({e}); continuing without actions/cache"
            ));
            return Ok((dir, String::new(), notes));
        }
    };
    notes.push(format!("guest images: {}", digests.join(" ")));
    Ok((dir, cache_key(&digests), notes))
}

/// `qemu-test-images-` + the SHA-256 of the sorted digests, one per line.
pub fn cache_key(digests: &[String]) -> String {
    let mut h = Sha256::new();
    for d in digests {
        h.update(d.as_bytes());
        h.update(b"\n");
    }
    format!("qemu-test-images-{}", hex(&h.finalize()))
}

/// Whether the cache dir holds anything (only then does actions/cache/save have work).
pub fn filled(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_image_set() {
        let a = cache_key(&["aa".into(), "bb".into()]);
        assert!(
            a.starts_with("qemu-test-images-") && a.len() == 17 + 64,
            "{a}"
        );
        assert_ne!(a, cache_key(&["aa".into()]));
        assert_eq!(a, cache_key(&["aa".into(), "bb".into()]));
    }

    #[test]
    fn an_empty_or_missing_dir_is_not_filled() {
        let d = tempfile::tempdir().unwrap();
        assert!(!filled(&d.path().join("nope")));
        assert!(!filled(d.path()));
        std::fs::write(d.path().join("x"), "").unwrap();
        assert!(filled(d.path()));
    }
}
