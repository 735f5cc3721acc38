//! `qemu-test action image-cache key|filled`: the guest-image cache steps of the composite
//! action. The directory is the image cache's own location rule ([`Cache::locate`]), so the
//! directory actions/cache saves is the one `qemu-test run` fills; the key is the set of image
//! SHA-256s the selected cases use, so it changes exactly when an image does.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cli::ActionArgs;
use crate::error::Error;
use crate::image::pipeline::hex;
use crate::image::{Cache, DEFAULT_REGISTRY, FetchOptions, Fetcher, ImageSpec, Registry};
use crate::plan::Suite;

/// The SHA-256 of each image used by the selected suite cases and `images`, sorted, unique
/// (`qemu-test images key` prints them).
pub async fn image_keys(
    suite: Option<&Path>,
    cases: &[String],
    images: &[String],
    registry: Option<&str>,
    cache_dir: Option<&Path>,
) -> Result<Vec<String>, Error> {
    let default_registry = registry.unwrap_or(DEFAULT_REGISTRY).to_string();
    let mut wanted: Vec<(String, String)> = images
        .iter()
        .map(|i| (i.clone(), default_registry.clone()))
        .collect();
    if let Some(path) = suite {
        let suite = Suite::load(path)?;
        for c in suite.select(cases)? {
            let merged = c.over(&suite.defaults);
            if let Some(image) = merged.image {
                let r = registry.map(String::from).or(merged.registry);
                wanted.push((image, r.unwrap_or_else(|| default_registry.clone())));
            }
        }
    }
    let fetcher = Fetcher::new(FetchOptions::default())?;
    // Offline, the last good copy of each registry in the image cache answers.
    let copies = Cache::locate(cache_dir)
        .ok()
        .map(|root| Cache::new(root).registry_copies());
    let mut registries: HashMap<String, Registry> = HashMap::new();
    let mut keys = BTreeSet::new();
    for (image, registry) in wanted {
        if !registries.contains_key(&registry) {
            let fallback = crate::image::tgos::TgosEnv::from_env().fallback_url;
            let loaded =
                Registry::load_from(&registry, fallback.as_deref(), &fetcher, copies.as_ref())
                    .await?;
            registries.insert(registry.clone(), loaded);
        }
        let spec: ImageSpec = image.parse()?;
        keys.insert(registries[&registry].resolve(&spec)?.sha256.clone());
    }
    Ok(keys.into_iter().collect())
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
    let run = &args.run;
    let suite = run.suite.as_ref().map(|s| cwd.join(s));
    let images: Vec<String> = run.image.iter().cloned().collect();
    if suite.is_none() && images.is_empty() {
        notes.push("no suite or image: no guest images to cache".into());
        return Ok((dir, String::new(), notes));
    }
    let digests = match image_keys(
        suite.as_deref(),
        &run.cases,
        &images,
        run.registry.as_deref(),
        Some(&dir),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!(
                "cannot compute the guest image cache key now ({e}); continuing without actions/cache"
            ));
            return Ok((dir, String::new(), notes));
        }
    };
    if digests.is_empty() {
        notes.push("the selected cases use no registry images: nothing to cache".into());
        return Ok((dir, String::new(), notes));
    }
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
