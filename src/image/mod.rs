//! Guest images: the axvisor-guest registry, verified downloads and the content-addressed cache.
//!
//! [`ensure_image`] is the runner's entry: registry entry → cache hit, or one streaming
//! download that hashes, stores and unpacks at once. [`manage::Images`] backs `qemu-test images`.

pub mod cache;
pub mod fetch;
pub mod kind;
pub mod manage;
pub mod progress;
pub mod registry;
pub mod stream;
pub mod tgos;
pub mod timestamp;
pub mod unpack;

use std::path::{Path, PathBuf};

pub use cache::Cache;
pub use fetch::{FetchOptions, Fetcher};
pub use progress::Progress;
pub use registry::{DEFAULT_REGISTRY, ImageEntry, ImageSpec, Registry, RegistryCopies};
pub use unpack::UnpackLimits;

use crate::error::Error;

/// An image ready on disk: what the prepare stage points QEMU and the VM configs at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub sha256: String,
    /// The unpacked archive (shared by every run: copy files QEMU writes to, like rootfs.img).
    pub dir: PathBuf,
    /// Relative paths of the unpacked files, sorted.
    pub files: Vec<PathBuf>,
}

impl LocalImage {
    /// The absolute path of the unpacked file `rel` (e.g. `axvm-bios.bin`), if the image has it.
    pub fn file(&self, rel: impl AsRef<Path>) -> Option<PathBuf> {
        let rel = rel.as_ref();
        self.files
            .iter()
            .any(|f| f == rel)
            .then(|| self.dir.join(rel))
    }

    /// The guest kernel: axvisor-guest archives name it `qemu-<arch>`.
    pub fn kernel(&self) -> Option<PathBuf> {
        self.file(format!("qemu-{}", self.arch))
    }

    /// The root filesystem image, when the archive ships one: axvisor-guest's `rootfs.img`, or
    /// the file a tgosimages rootfs image is named after (`rootfs-aarch64-alpine.img`).
    pub fn rootfs(&self) -> Option<PathBuf> {
        self.file("rootfs.img").or_else(|| {
            Path::new(&self.name)
                .extension()
                .is_some_and(|e| e == "img")
                .then(|| self.file(&self.name))
                .flatten()
        })
    }
}

/// Resolves `spec` in `reg` and returns the image from `cache`, downloading it on a miss.
pub async fn ensure_image(
    reg: &Registry,
    spec: &ImageSpec,
    cache: &Cache,
    progress: &mut dyn Progress,
) -> Result<LocalImage, Error> {
    let entry = reg.resolve(spec)?;
    cache.ensure(entry, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_and_rootfs_follow_the_axvisor_guest_layout() {
        let img = LocalImage {
            name: "qemu_x86_64_nimbos".into(),
            version: "0.0.22".into(),
            arch: "x86_64".into(),
            sha256: String::new(),
            dir: PathBuf::from("/c/images/x"),
            files: vec!["axvm-bios.bin".into(), "qemu-x86_64".into()],
        };
        assert_eq!(img.kernel(), Some(PathBuf::from("/c/images/x/qemu-x86_64")));
        assert_eq!(img.rootfs(), None);
        assert!(img.file("axvm-bios.bin").is_some());
        let tgos = LocalImage {
            name: "rootfs-aarch64-alpine.img".into(),
            files: vec!["rootfs-aarch64-alpine.img".into()],
            ..img
        };
        assert_eq!(
            tgos.rootfs(),
            Some(PathBuf::from("/c/images/x/rootfs-aarch64-alpine.img"))
        );
    }

    /// The runner may `tokio::spawn` image work, so the futures must be `Send`.
    #[test]
    fn entry_futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let (reg, cache) = (Registry::default(), Cache::new("/nonexistent"));
        let spec: ImageSpec = "x".parse().unwrap();
        let mut quiet = progress::Silent;
        is_send(&ensure_image(&reg, &spec, &cache, &mut quiet));
        let mut out = Vec::new();
        is_send(&manage::Images::default().pull("x", None, &mut out, &mut quiet));
    }
}
