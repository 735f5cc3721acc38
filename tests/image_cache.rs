//! The shared cache: concurrent pulls download once and never expose a partial image; and the
//! `images ls|pull|verify|rm` commands on top of it.

pub mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use common::archives::{guest_image, noise, registry_text, sha256_hex};
use common::http_server::Server;
use common::images::{Recorder, cache_files, fast_options, one_image};
use qemu_test_action::cli::{ImagesCmd, ImagesCommon};
use qemu_test_action::cmd::images::execute;
use qemu_test_action::image::kind::ArchiveKind;
use qemu_test_action::image::{Cache, ensure_image};

const PATH: &str = "/img.tar.gz";

#[test]
fn four_concurrent_pulls_download_once_and_never_expose_a_partial_image() {
    let kernel = noise(1 << 20, 3);
    let rootfs = noise(2 << 20, 4);
    let archive = guest_image("aarch64", &kernel, &rootfs);
    let sha = sha256_hex(&archive);
    let server = Server::start();
    server.add(PATH, archive.clone());
    let url = server.url(PATH);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();

    let done = Arc::new(AtomicBool::new(false));
    // the watcher joins the start barrier, so its first look is before any download began
    let start = Arc::new(Barrier::new(5));
    let watcher = {
        let (done, cache, start) = (done.clone(), Cache::new(&root), start.clone());
        let (sha, archive_len) = (sha.clone(), archive.len() as u64);
        let sizes = (kernel.len() as u64, rootfs.len() as u64);
        std::thread::spawn(move || {
            let first = look(&cache, &sha, archive_len, sizes);
            start.wait();
            let mut seen = watch(&cache, &sha, archive_len, sizes, &done);
            seen.absent += u64::from(!first);
            seen
        })
    };
    let pullers: Vec<_> = (0..4)
        .map(|_| {
            let (start, root, url, sha) = (start.clone(), root.clone(), url.clone(), sha.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let cache = Cache::new(root).with_options(fast_options());
                let reg = one_image("img", "1", &sha, &url);
                start.wait();
                rt.block_on(ensure_image(
                    &reg,
                    &"img".parse().unwrap(),
                    &cache,
                    &mut Recorder::default(),
                ))
            })
        })
        .collect();
    let images: Vec<_> = pullers
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    done.store(true, Ordering::SeqCst);
    let seen = watcher.join().unwrap();

    assert_eq!(server.hits(PATH), 1, "exactly one download");
    for img in &images {
        assert_eq!(img, &images[0]);
        assert_eq!(std::fs::read(img.kernel().unwrap()).unwrap(), kernel);
        assert_eq!(std::fs::read(img.rootfs().unwrap()).unwrap(), rootfs);
    }
    // The watcher really looked: before the download (nothing there) and after it (the complete
    // image, checked file by file), and however often the scheduler let it in between.
    assert!(
        seen.absent >= 1,
        "the watcher never saw the cache empty: {seen:?}"
    );
    assert!(
        seen.complete >= 1,
        "the watcher never checked a published image: {seen:?}"
    );
    println!("watcher looks: {seen:?}");
}

/// What the watcher saw at the final paths.
#[derive(Debug, Default)]
struct Seen {
    /// Looks that found no image published.
    absent: u64,
    /// Looks that found the image and checked it complete.
    complete: u64,
}

/// Until `done`, and once more after it, checks that whatever is visible at the final paths is
/// complete.
fn watch(cache: &Cache, sha: &str, archive_len: u64, sizes: (u64, u64), done: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    loop {
        let finished = done.load(Ordering::SeqCst);
        if look(cache, sha, archive_len, sizes) {
            seen.complete += 1;
        } else {
            seen.absent += 1;
        }
        if finished {
            return seen;
        }
        std::thread::yield_now();
    }
}

/// One look: panics on anything partial; `true` when the image is published (and complete).
fn look(cache: &Cache, sha: &str, archive_len: u64, sizes: (u64, u64)) -> bool {
    let dir = cache.image_dir(sha);
    if let Ok(meta) = std::fs::metadata(cache.archive_path(sha, ArchiveKind::TarGz)) {
        assert_eq!(meta.len(), archive_len, "partial archive at the final path");
    }
    if !dir.exists() {
        return false;
    }
    assert!(
        dir.join(".qemu-test-image.json").exists(),
        "image dir without marker"
    );
    assert_eq!(
        std::fs::metadata(dir.join("qemu-aarch64")).unwrap().len(),
        sizes.0
    );
    assert_eq!(
        std::fs::metadata(dir.join("rootfs.img")).unwrap().len(),
        sizes.1
    );
    true
}

#[tokio::test]
async fn two_versions_sharing_one_archive_download_it_once() {
    let archive = guest_image("aarch64", b"k", b"r");
    let sha = sha256_hex(&archive);
    let server = Server::start();
    server.add(PATH, archive);
    let text = registry_text(&[
        ("img", "0.0.23", &sha, &server.url(PATH)),
        ("img", "0.0.24", &sha, &server.url(PATH)),
    ]);
    let reg = qemu_test_action::image::Registry::from_text("r.toml", &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_options(fast_options());
    for spec in ["img:0.0.23", "img:0.0.24"] {
        let img = ensure_image(
            &reg,
            &spec.parse().unwrap(),
            &cache,
            &mut Recorder::default(),
        )
        .await
        .unwrap();
        assert_eq!(format!("{}:{}", img.name, img.version), spec);
    }
    assert_eq!(server.hits(PATH), 1);
    let listed = cache.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].names, ["img:0.0.23", "img:0.0.24"]);
}

#[tokio::test]
async fn a_damaged_entry_is_not_a_hit_and_is_fetched_again() {
    let archive = guest_image("aarch64", b"kernel", b"rootfs");
    let sha = sha256_hex(&archive);
    let server = Server::start();
    server.add(PATH, archive);
    let reg = one_image("img", "1", &sha, &server.url(PATH));
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
    std::fs::write(img.rootfs().unwrap(), b"short").unwrap();
    assert!(cache.lookup(&sha).is_none());
    let again = ensure_image(
        &reg,
        &"img".parse().unwrap(),
        &cache,
        &mut Recorder::default(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(again.rootfs().unwrap()).unwrap(), b"rootfs");
    assert_eq!(server.hits(PATH), 2);
}

struct Cli {
    server: Server,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let server = Server::start();
        let archive = guest_image("aarch64", b"kernel", &noise(50_000, 9));
        let text = registry_text(&[(
            "qemu_aarch64_linux",
            "0.0.22",
            &sha256_hex(&archive),
            "img.tar.gz",
        )]);
        server.add("/registry.toml", text.into_bytes());
        server.add(PATH, archive);
        Cli {
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn common(&self) -> ImagesCommon {
        ImagesCommon {
            registry: Some(self.server.url("/registry.toml")),
            cache_dir: Some(self.dir.path().to_path_buf()),
        }
    }

    /// `qemu-test images …` as parsed, run through the command's own dispatch.
    async fn run(&self, command: ImagesCmd) -> (i32, String) {
        let mut out = Vec::new();
        let code = match execute(
            command,
            fast_options(),
            Default::default(),
            &mut out,
            &mut Recorder::default(),
        )
        .await
        {
            Ok(code) => code,
            Err(e) => {
                out.extend_from_slice(e.to_string().as_bytes());
                e.exit_code()
            }
        };
        (code, String::from_utf8(out).unwrap())
    }
}

#[tokio::test]
async fn images_commands_list_pull_verify_and_remove() {
    let cli = Cli::new();
    let (code, out) = cli.run(ImagesCmd::Ls(cli.common())).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "NAME                VERSION  ARCH     RELEASED              CACHED\n\
         qemu_aarch64_linux  0.0.22   aarch64  2026-01-06T03:08:54Z  no\n"
    );

    let (code, out) = cli
        .run(ImagesCmd::Pull {
            image: "qemu_aarch64_linux".into(),
            output_dir: None,
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 0, "{out}");
    let dir = PathBuf::from(out.trim());
    assert_eq!(std::fs::read(dir.join("qemu-aarch64")).unwrap(), b"kernel");
    assert!(
        cli.run(ImagesCmd::Ls(cli.common()))
            .await
            .1
            .contains("  yes\n")
    );

    let (code, out) = cli
        .run(ImagesCmd::Verify {
            image: None,
            common: cli.common(),
        })
        .await;
    assert_eq!((code, out.starts_with("ok ")), (0, true), "{out}");
    let mut rootfs = std::fs::read(dir.join("rootfs.img")).unwrap();
    rootfs[100] ^= 1;
    std::fs::write(dir.join("rootfs.img"), rootfs).unwrap();
    let (code, out) = cli
        .run(ImagesCmd::Verify {
            image: Some("qemu_aarch64_linux:0.0.22".into()),
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BAD") && out.contains("rootfs.img differs from the archive"),
        "{out}"
    );

    let (code, out) = cli
        .run(ImagesCmd::Rm {
            image: Some("qemu_aarch64_linx".into()),
            all: false,
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 2);
    assert!(
        out.contains("no cached image matches qemu_aarch64_linx")
            && out.contains("cached: qemu_aarch64_linux:0.0.22"),
        "{out}"
    );
    let (code, out) = cli
        .run(ImagesCmd::Rm {
            image: Some("qemu_aarch64_linux".into()),
            all: false,
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("removed "), "{out}");
    // only the registry copy kept for offline runs stays (`rm --all` removes it too)
    let left = cache_files(cli.dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|p| p.starts_with("registries")), "{left:?}");
    assert_eq!(cli.server.hits(PATH), 1);
}

#[tokio::test]
async fn pull_of_an_unknown_image_suggests_close_names() {
    let cli = Cli::new();
    let (code, out) = cli
        .run(ImagesCmd::Pull {
            image: "qemu_aarch64_linx".into(),
            output_dir: None,
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 2);
    assert!(
        out.contains("image qemu_aarch64_linx not found in registry"),
        "{out}"
    );
    assert!(out.contains("did you mean: qemu_aarch64_linux"), "{out}");
}

#[tokio::test]
async fn rm_all_empties_the_cache() {
    let cli = Cli::new();
    assert_eq!(
        cli.run(ImagesCmd::Pull {
            image: "qemu_aarch64_linux:0.0.22".into(),
            output_dir: None,
            common: cli.common(),
        })
        .await
        .0,
        0
    );
    let partial = cli
        .dir
        .path()
        .join("partial")
        .join(format!("{}.tar.gz.part", "c".repeat(64)));
    std::fs::write(&partial, b"interrupted download").unwrap();
    let (code, out) = cli
        .run(ImagesCmd::Rm {
            image: None,
            all: true,
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(cache_files(cli.dir.path()), Vec::<PathBuf>::new());
    let (code, _) = cli
        .run(ImagesCmd::Rm {
            image: None,
            all: false,
            common: cli.common(),
        })
        .await;
    assert_eq!(code, 2);
}

#[tokio::test]
async fn a_local_registry_with_relative_archive_paths_needs_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let archive = guest_image("aarch64", b"local kernel", b"local rootfs");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/img.tar.gz"), &archive).unwrap();
    let text = registry_text(&[("img", "1", &sha256_hex(&archive), "out/img.tar.gz")]);
    std::fs::write(dir.path().join("registry.toml"), text).unwrap();
    let fetcher = qemu_test_action::image::Fetcher::new(fast_options()).unwrap();
    let location = dir.path().join("registry.toml");
    let reg = qemu_test_action::image::Registry::load(location.to_str().unwrap(), &fetcher)
        .await
        .unwrap();
    let cache = Cache::new(dir.path().join("cache")).with_options(fast_options());
    let img = ensure_image(
        &reg,
        &"img".parse().unwrap(),
        &cache,
        &mut Recorder::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(img.kernel().unwrap()).unwrap(),
        b"local kernel"
    );
    assert_eq!(
        std::fs::read(cache.archive_path(&img.sha256, ArchiveKind::TarGz)).unwrap(),
        archive
    );
}

#[tokio::test]
async fn a_cached_file_rewritten_with_the_same_size_is_caught_before_use() {
    let archive = guest_image("aarch64", b"kernel", b"rootfs");
    let sha = sha256_hex(&archive);
    let server = Server::start();
    server.add(PATH, archive);
    let reg = one_image("img", "1", &sha, &server.url(PATH));
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).with_options(fast_options());
    let pull = || async {
        ensure_image(
            &reg,
            &"img".parse().unwrap(),
            &cache,
            &mut Recorder::default(),
        )
        .await
        .unwrap()
    };
    let img = pull().await;
    let rootfs = img.rootfs().unwrap();

    // the same content written again (new mtime/ctime): re-hashed, still a hit, no download
    std::fs::write(&rootfs, b"rootfs").unwrap();
    assert!(cache.lookup(&sha).is_some());
    assert_eq!(
        std::fs::read(pull().await.rootfs().unwrap()).unwrap(),
        b"rootfs"
    );
    assert_eq!(server.hits(PATH), 1);

    // other bytes, same size, in place (same inode): not a hit, fetched again
    std::fs::write(&rootfs, b"ROOTFS").unwrap();
    assert!(
        cache.lookup(&sha).is_none(),
        "a same-size rewrite went unnoticed"
    );
    assert_eq!(
        std::fs::read(pull().await.rootfs().unwrap()).unwrap(),
        b"rootfs"
    );
    assert_eq!(server.hits(PATH), 2);
}
