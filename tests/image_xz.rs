//! tgosimages' `.tar.xz` archives through the same one-pass pipeline as `.tar.gz` (hash, keep,
//! unxz, untar), against a real loopback HTTP server: a platform bundle and a separate rootfs
//! image named `name:version`, a hostile archive and a wrong checksum.

pub mod common;

use common::archives::{Member, noise, sha256_hex, tar_xz};
use common::http_server::Server;
use common::images::{Recorder, cache_files, fast_options};
use qemu_test_action::image::{Cache, ImageSpec, Registry, ensure_image};

/// A registry in tgosimages' shape: a bundle and a rootfs image, two versions of the bundle.
fn registry(server: &Server, entries: &[(&str, &str, &[u8])]) -> Registry {
    let mut text = String::new();
    for (name, version, archive) in entries {
        let path = format!("/releases/download/v{version}/{name}.tar.xz");
        server.add(&path, archive.to_vec());
        text.push_str(&format!(
            "[[images]]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"t\"\n\
             sha256 = \"{}\"\narch = \"aarch64\"\nurl = \"{}\"\n\n",
            sha256_hex(archive),
            server.url(&path)
        ));
    }
    Registry::from_text("tgosimages.toml", &text).expect("registry parses")
}

/// Pulls `spec` from `reg` into `cache`.
async fn pull(
    reg: &Registry,
    spec: &str,
    cache: &Cache,
) -> Result<qemu_test_action::image::LocalImage, qemu_test_action::Error> {
    let spec: ImageSpec = spec.parse().unwrap();
    ensure_image(reg, &spec, cache, &mut Recorder::default()).await
}

#[tokio::test]
async fn bundle_and_rootfs_images_are_pulled_by_name_and_version() {
    let server = Server::start();
    let (kernel, vmconfig, rootfs) = (noise(150_000, 3), b"id = 1\n".to_vec(), noise(300_000, 4));
    let bundle_old = tar_xz(&[Member::Dir("./"), Member::File("./qemu-aarch64", b"old")]);
    let bundle = tar_xz(&[
        Member::Dir("./"),
        Member::File("./qemu-aarch64", &kernel),
        Member::File("./linux-aarch64.toml", &vmconfig),
    ]);
    let rootfs_archive = tar_xz(&[Member::File("rootfs-aarch64-alpine.img", &rootfs)]);
    assert_eq!(&bundle[..6], b"\xfd7zXZ\0");
    let reg = registry(
        &server,
        &[
            ("qemu-aarch64", "0.0.14", &bundle_old),
            ("qemu-aarch64", "0.0.15", &bundle),
            ("rootfs-aarch64-alpine.img", "0.0.15", &rootfs_archive),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_options(fast_options());
    let img = pull(&reg, "qemu-aarch64:0.0.15", &cache).await.unwrap();
    assert_eq!(img.sha256, sha256_hex(&bundle));
    assert_eq!(std::fs::read(img.dir.join("qemu-aarch64")).unwrap(), kernel);
    assert_eq!(
        std::fs::read(img.dir.join("linux-aarch64.toml")).unwrap(),
        vmconfig
    );
    // The kept archive is the .tar.xz, byte for byte.
    assert_eq!(
        std::fs::read(cache.archive_path(
            &img.sha256,
            qemu_test_action::image::kind::ArchiveKind::TarXz
        ))
        .unwrap(),
        bundle
    );
    let root = pull(&reg, "rootfs-aarch64-alpine.img:0.0.15", &cache)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(root.dir.join("rootfs-aarch64-alpine.img")).unwrap(),
        rootfs
    );
    assert_ne!(root.dir, img.dir);
}

#[tokio::test]
async fn a_hostile_xz_archive_is_refused_and_leaves_nothing() {
    let server = Server::start();
    let hostile = tar_xz(&[
        Member::File("./ok", b"1"),
        Member::File("../../../x", b"evil"),
    ]);
    let reg = registry(&server, &[("qemu-aarch64", "0.0.15", &hostile)]);
    let dir = tempfile::tempdir().unwrap();
    let cache_root = dir.path().join("cache");
    let cache = Cache::new(&cache_root).with_options(fast_options());
    let err = pull(&reg, "qemu-aarch64:0.0.15", &cache)
        .await
        .expect_err("hostile archive must be refused");
    let text = err.to_string();
    assert!(
        text.contains("\"../../../x\": contains a '..' component"),
        "{text}"
    );
    assert_eq!(cache_files(&cache_root), Vec::<std::path::PathBuf>::new());
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn a_wrong_checksum_on_an_xz_archive_is_an_error_and_caches_nothing() {
    let server = Server::start();
    let archive = tar_xz(&[Member::File("./qemu-aarch64", b"kernel")]);
    let reg = registry(&server, &[("qemu-aarch64", "0.0.15", &archive)]);
    // The server now sends other bytes than the registry's checksum describes.
    let tampered = tar_xz(&[Member::File("./qemu-aarch64", b"tampered")]);
    server.add(
        "/releases/download/v0.0.15/qemu-aarch64.tar.xz",
        tampered.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_options(fast_options());
    let err = pull(&reg, "qemu-aarch64:0.0.15", &cache).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("expected {}", sha256_hex(&archive))),
        "{text}"
    );
    assert!(
        text.contains(&format!("got {}", sha256_hex(&tampered))),
        "{text}"
    );
    assert_eq!(cache_files(dir.path()), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_corrupt_xz_stream_with_a_matching_checksum_names_the_format() {
    let server = Server::start();
    let mut broken = tar_xz(&[Member::File("./qemu-aarch64", &noise(50_000, 9))]);
    let mid = broken.len() / 2;
    broken[mid] ^= 0xff;
    let reg = registry(&server, &[("qemu-aarch64", "0.0.15", &broken)]);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_options(fast_options());
    let err = pull(&reg, "qemu-aarch64:0.0.15", &cache).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not a valid .tar.gz or .tar.xz"), "{text}");
    assert_eq!(cache_files(dir.path()), Vec::<std::path::PathBuf>::new());
}
