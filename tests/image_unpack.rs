//! Hostile archives, served from loopback with a *matching* SHA-256 so that only the content
//! decides: each must be refused with a clear error, write nothing outside the cache, and leave
//! nothing in it.

pub mod common;

use std::path::Path;

use common::archives::{Member, guest_image, sha256_hex, tar_gz};
use common::http_server::Server;
use common::images::{Recorder, cache_files, fast_options, one_image};
use qemu_test_action::image::{Cache, ensure_image};
use tar::EntryType;

/// Pulls `archive` into a cache nested two levels inside a scratch dir, so escapes have
/// somewhere to land; returns the error text and asserts nothing stayed or escaped.
async fn refused(archive: Vec<u8>) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let cache_root = scratch.path().join("a/b/cache");
    let server = Server::start();
    server.add("/img.tar.gz", archive.clone());
    let reg = one_image(
        "img",
        "1",
        &sha256_hex(&archive),
        &server.url("/img.tar.gz"),
    );
    let cache = Cache::new(&cache_root).with_options(fast_options());
    let err = ensure_image(
        &reg,
        &"img".parse().unwrap(),
        &cache,
        &mut Recorder::default(),
    )
    .await
    .expect_err("hostile archive must be refused");
    assert_eq!(
        cache_files(&cache_root),
        Vec::<std::path::PathBuf>::new(),
        "{err}"
    );
    assert_only_cache_exists(scratch.path());
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.help
            .as_deref()
            .unwrap_or("")
            .contains("nothing was cached"),
        "{err}"
    );
    err.to_string()
}

fn assert_only_cache_exists(scratch: &Path) {
    let mut found = Vec::new();
    for entry in walk(scratch) {
        if !entry.starts_with(scratch.join("a/b/cache"))
            && entry != scratch.join("a")
            && entry != scratch.join("a/b")
        {
            found.push(entry);
        }
    }
    assert!(found.is_empty(), "written outside the cache: {found:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).unwrap().flatten() {
        let p = item.path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[tokio::test]
async fn parent_components_are_refused() {
    let err = refused(tar_gz(&[
        Member::File("./ok", b"1"),
        Member::File("../../../x", b"evil"),
    ]))
    .await;
    assert!(
        err.contains("\"../../../x\": contains a '..' component"),
        "{err}"
    );
}

#[tokio::test]
async fn absolute_paths_are_refused() {
    let err = refused(tar_gz(&[Member::File("/tmp/qemu-test-abs-evil", b"evil")])).await;
    assert!(err.contains("is an absolute path"), "{err}");
    assert!(!Path::new("/tmp/qemu-test-abs-evil").exists());
}

#[tokio::test]
async fn symlinks_leading_outside_are_refused() {
    let err = refused(tar_gz(&[Member::Symlink("./up", "../../../..")])).await;
    assert!(
        err.contains("symlink target \"../../../..\" leads outside"),
        "{err}"
    );
    let err = refused(tar_gz(&[Member::Symlink("./passwd", "/etc/passwd")])).await;
    assert!(err.contains("is absolute"), "{err}");
}

#[tokio::test]
async fn a_chain_of_harmless_looking_symlinks_is_refused() {
    // a/s -> .. is the destination itself; b -> a/s/.. is lexically inside but really outside.
    let err = refused(tar_gz(&[
        Member::Dir("./a"),
        Member::Symlink("./b", "a/s/.."),
        Member::Symlink("./a/s", ".."),
    ]))
    .await;
    assert!(err.contains("symlink resolves outside or dangles"), "{err}");
}

#[tokio::test]
async fn writing_through_a_symlink_is_refused() {
    let err = refused(tar_gz(&[
        Member::Dir("./sub"),
        Member::Symlink("./d", "sub"),
        Member::File("./d/x", b"through the link"),
    ]))
    .await;
    assert!(err.contains("written through a symlink"), "{err}");
}

#[tokio::test]
async fn hardlinks_outside_are_refused() {
    let err = refused(tar_gz(&[Member::Hardlink("./h", "../../../etc/passwd")])).await;
    assert!(err.contains("hard link target"), "{err}");
    let err = refused(tar_gz(&[Member::Hardlink("./h", "/etc/passwd")])).await;
    assert!(err.contains("is an absolute path"), "{err}");
    let err = refused(tar_gz(&[Member::Hardlink("./h", "not-extracted")])).await;
    assert!(
        err.contains("not a regular file extracted earlier"),
        "{err}"
    );
}

#[tokio::test]
async fn device_nodes_and_fifos_are_refused() {
    let err = refused(tar_gz(&[Member::Special("./console", EntryType::Char)])).await;
    assert!(err.contains("character device"), "{err}");
    let err = refused(tar_gz(&[Member::Special("./sda", EntryType::Block)])).await;
    assert!(err.contains("block device"), "{err}");
    let err = refused(tar_gz(&[Member::Special("./pipe", EntryType::Fifo)])).await;
    assert!(err.contains("fifos are not allowed"), "{err}");
}

#[tokio::test]
async fn an_oversized_header_is_refused_before_writing() {
    let err = refused(tar_gz(&[Member::Oversized("./rootfs.img", 64 << 30, 4096)])).await;
    assert!(err.contains("archive too big"), "{err}");
    assert!(err.contains("68719476736 bytes"), "{err}");
}

#[tokio::test]
async fn the_cache_marker_name_is_reserved() {
    let err = refused(tar_gz(&[Member::File("./.qemu-test-image.json", b"{}")])).await;
    assert!(err.contains("reserved"), "{err}");
}

#[tokio::test]
async fn entry_count_and_total_size_limits_apply() {
    let server = Server::start();
    let archive = guest_image("aarch64", &[1; 3000], &[2; 3000]);
    server.add("/img.tar.gz", archive.clone());
    let reg = one_image(
        "img",
        "1",
        &sha256_hex(&archive),
        &server.url("/img.tar.gz"),
    );
    for (max_bytes, max_entries, expect) in [
        (5000, 100, "5000 byte limit"),
        (1 << 20, 2, "more than 2 members"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = fast_options();
        opts.limits.max_bytes = max_bytes;
        opts.limits.max_entries = max_entries;
        let cache = Cache::new(dir.path()).with_options(opts);
        let err = ensure_image(
            &reg,
            &"img".parse().unwrap(),
            &cache,
            &mut Recorder::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        assert!(cache_files(dir.path()).is_empty());
    }
}

#[tokio::test]
async fn harmless_links_and_top_level_members_unpack() {
    let server = Server::start();
    let archive = tar_gz(&[
        Member::File("./qemu-aarch64", b"kernel"),
        Member::Dir("./boot"),
        Member::Symlink("./boot/Image", "../qemu-aarch64"),
        Member::Hardlink("./kernel.bin", "qemu-aarch64"),
        Member::File("rootfs.img", b"disk"),
    ]);
    server.add("/img.tar.gz", archive.clone());
    let reg = one_image(
        "img",
        "1",
        &sha256_hex(&archive),
        &server.url("/img.tar.gz"),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_options(fast_options());
    let img = ensure_image(
        &reg,
        &"img".parse().unwrap(),
        &cache,
        &mut Recorder::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(img.dir.join("boot/Image")).unwrap(),
        b"kernel"
    );
    assert_eq!(
        std::fs::read(img.dir.join("kernel.bin")).unwrap(),
        b"kernel"
    );
    assert_eq!(std::fs::read(img.rootfs().unwrap()).unwrap(), b"disk");
    let names: Vec<String> = img.files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        ["boot/Image", "kernel.bin", "qemu-aarch64", "rootfs.img"]
    );
}
