//! Downloads against a real HTTP/1.1 server on loopback: retries, resume, redirects, deadlines,
//! checksum and the cache they fill.

mod support;

use std::time::Duration;

use qemu_test_action::image::{Cache, FetchOptions, ImageSpec, ensure_image};
use support::archives::{guest_image, noise, sha256_hex};
use support::http_server::{Fault, Server};
use support::{Recorder, cache_files, fast_options, one_image};

const PATH: &str = "/releases/download/v0.0.22/qemu_aarch64_arceos.tar.gz";
const SPEC: &str = "qemu_aarch64_arceos";

struct Case {
    server: Server,
    archive: Vec<u8>,
    kernel: Vec<u8>,
    rootfs: Vec<u8>,
    cache_dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let kernel = noise(100_000, 1);
        let rootfs = noise(200_000, 2);
        let archive = guest_image("aarch64", &kernel, &rootfs);
        let server = Server::start();
        server.add(PATH, archive.clone());
        Case {
            server,
            archive,
            kernel,
            rootfs,
            cache_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cache(&self) -> Cache {
        Cache::new(self.cache_dir.path()).with_options(fast_options())
    }

    async fn pull_with(
        &self,
        cache: &Cache,
        sha: &str,
        progress: &mut Recorder,
    ) -> Result<qemu_test_action::image::LocalImage, qemu_test_action::Error> {
        let reg = one_image(SPEC, "0.0.22", sha, &self.server.url(PATH));
        let spec: ImageSpec = SPEC.parse().unwrap();
        ensure_image(&reg, &spec, cache, progress).await
    }

    async fn pull(&self) -> Result<qemu_test_action::image::LocalImage, qemu_test_action::Error> {
        let sha = sha256_hex(&self.archive);
        self.pull_with(&self.cache(), &sha, &mut Recorder::default())
            .await
    }

    fn assert_complete(&self, img: &qemu_test_action::image::LocalImage) {
        assert_eq!(std::fs::read(img.kernel().unwrap()).unwrap(), self.kernel);
        assert_eq!(std::fs::read(img.rootfs().unwrap()).unwrap(), self.rootfs);
        let archive = self.cache().archive_path(&img.sha256);
        assert_eq!(std::fs::read(archive).unwrap(), self.archive);
    }
}

#[tokio::test]
async fn pulls_unpacks_and_then_hits_the_cache_without_network() {
    let case = Case::new();
    let img = case.pull().await.unwrap();
    case.assert_complete(&img);
    assert_eq!(
        img.files,
        ["qemu-aarch64", "rootfs.img"]
            .iter()
            .map(Into::into)
            .collect::<Vec<std::path::PathBuf>>()
    );
    assert_eq!(img.dir, case.cache().image_dir(&sha256_hex(&case.archive)));
    assert_eq!(case.server.hits(PATH), 1);

    // A hit needs no server at all: the entry now points at a closed port.
    let reg = one_image(
        SPEC,
        "0.0.22",
        &img.sha256,
        "http://127.0.0.1:9/unreachable.tar.gz",
    );
    let again = ensure_image(
        &reg,
        &SPEC.parse().unwrap(),
        &case.cache(),
        &mut Recorder::default(),
    )
    .await
    .unwrap();
    assert_eq!(again, img);
    assert_eq!(case.server.hits(PATH), 1);
}

#[tokio::test]
async fn server_errors_429_and_408_are_retried() {
    let case = Case::new();
    case.server.fault(PATH, Fault::Status(500));
    case.server.fault(PATH, Fault::Status(429));
    case.server.fault(PATH, Fault::Status(503));
    case.server.fault(PATH, Fault::Status(408));
    let mut rec = Recorder::default();
    let opts = FetchOptions {
        attempts: 5,
        ..fast_options()
    };
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let img = case
        .pull_with(&cache, &sha256_hex(&case.archive), &mut rec)
        .await
        .unwrap();
    case.assert_complete(&img);
    assert_eq!(case.server.hits(PATH), 5);
    let notes = rec.notes().join("\n");
    assert!(
        notes.contains("HTTP 500") && notes.contains("HTTP 429"),
        "{notes}"
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let case = Case::new();
    for _ in 0..10 {
        case.server.fault(PATH, Fault::Status(500));
    }
    let err = case.pull().await.unwrap_err();
    assert!(err.message.contains("gave up after 4 attempts"), "{err}");
    assert_eq!(case.server.hits(PATH), 4);
    assert_eq!(err.exit_code(), 3);
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let case = Case::new();
    let reg = one_image(
        SPEC,
        "1",
        &sha256_hex(&case.archive),
        &case.server.url("/missing.tar.gz"),
    );
    let err = ensure_image(
        &reg,
        &SPEC.parse().unwrap(),
        &case.cache(),
        &mut Recorder::default(),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("HTTP 404"), "{err}");
    assert!(err.help.unwrap().contains("url"));
    assert_eq!(case.server.hits("/missing.tar.gz"), 1);
}

#[tokio::test]
async fn a_truncated_body_is_resumed_with_range() {
    let case = Case::new();
    let half = case.archive.len() / 2;
    case.server.fault(PATH, Fault::Truncate(half));
    let img = case.pull().await.unwrap();
    case.assert_complete(&img);
    let reqs = case.server.requests(PATH);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].range, None);
    assert_eq!(
        reqs[1].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
}

#[tokio::test]
async fn a_server_without_range_support_restarts_from_zero() {
    let case = Case::new();
    case.server.add_without_ranges(PATH, case.archive.clone());
    case.server
        .fault(PATH, Fault::Truncate(case.archive.len() / 3));
    let mut rec = Recorder::default();
    let img = case
        .pull_with(&case.cache(), &sha256_hex(&case.archive), &mut rec)
        .await
        .unwrap();
    case.assert_complete(&img);
    let reqs = case.server.requests(PATH);
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].range.is_some());
    assert!(
        rec.notes()
            .iter()
            .any(|n| n.contains("restarting from byte 0")),
        "{:?}",
        rec.notes()
    );
}

#[tokio::test]
async fn a_partial_file_left_by_an_earlier_run_is_resumed() {
    let case = Case::new();
    let sha = sha256_hex(&case.archive);
    let part = case
        .cache_dir
        .path()
        .join("partial")
        .join(format!("{sha}.tar.gz.part"));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    let third = case.archive.len() / 3;
    std::fs::write(&part, &case.archive[..third]).unwrap();
    let img = case.pull().await.unwrap();
    case.assert_complete(&img);
    let reqs = case.server.requests(PATH);
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].range.as_deref(),
        Some(format!("bytes={third}-").as_str())
    );
    assert!(!part.exists());
}

#[tokio::test]
async fn a_stale_partial_file_is_discarded_and_downloaded_again() {
    let case = Case::new();
    let sha = sha256_hex(&case.archive);
    let part = case
        .cache_dir
        .path()
        .join("partial")
        .join(format!("{sha}.tar.gz.part"));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    let mut stale = case.archive[..1000].to_vec();
    stale[500] ^= 0xff;
    std::fs::write(&part, &stale).unwrap();
    let img = case.pull().await.unwrap();
    case.assert_complete(&img);
    let reqs = case.server.requests(PATH);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].range, None);
}

#[tokio::test]
async fn redirects_are_followed() {
    let case = Case::new();
    case.server.redirect("/a", 302, "/b");
    case.server.redirect("/b", 301, PATH);
    let reg = one_image(
        SPEC,
        "1",
        &sha256_hex(&case.archive),
        &case.server.url("/a"),
    );
    let img = ensure_image(
        &reg,
        &SPEC.parse().unwrap(),
        &case.cache(),
        &mut Recorder::default(),
    )
    .await
    .unwrap();
    case.assert_complete(&img);
    assert_eq!(
        (
            case.server.hits("/a"),
            case.server.hits("/b"),
            case.server.hits(PATH)
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_redirect_loop_is_an_error() {
    let case = Case::new();
    case.server.redirect("/x", 302, "/y");
    case.server.redirect("/y", 302, "/x");
    let reg = one_image(
        SPEC,
        "1",
        &sha256_hex(&case.archive),
        &case.server.url("/x"),
    );
    let err = ensure_image(
        &reg,
        &SPEC.parse().unwrap(),
        &case.cache(),
        &mut Recorder::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("redirect"), "{err}");
    assert!(case.server.hits("/x") <= 4, "a loop is not retried");
}

#[tokio::test]
async fn a_wrong_checksum_leaves_nothing_in_the_cache() {
    let case = Case::new();
    let wrong = sha256_hex(b"something else");
    let err = case
        .pull_with(&case.cache(), &wrong, &mut Recorder::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("expected {wrong}")), "{text}");
    assert!(
        text.contains(&format!("got {}", sha256_hex(&case.archive))),
        "{text}"
    );
    assert_eq!(
        cache_files(case.cache_dir.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn a_server_slower_than_the_read_deadline_times_out() {
    let case = Case::new();
    case.server.fault(PATH, Fault::Stall(1000));
    case.server.fault(PATH, Fault::Stall(0));
    let mut opts = fast_options();
    opts.deadlines.read = Duration::from_millis(400);
    opts.attempts = 2;
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let err = case
        .pull_with(&cache, &sha256_hex(&case.archive), &mut Recorder::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("no data for 0.4 s"), "{err}");
    assert_eq!(case.server.hits(PATH), 2);
    let left = cache_files(case.cache_dir.path());
    assert!(
        left.iter().all(|p| p.starts_with("partial")),
        "only a resumable partial may stay: {left:?}"
    );
}

#[tokio::test]
async fn the_total_deadline_bounds_all_attempts() {
    let case = Case::new();
    for _ in 0..3 {
        case.server.fault(PATH, Fault::Stall(10));
    }
    let mut opts = fast_options();
    opts.deadlines.total = Duration::from_millis(600);
    opts.deadlines.read = Duration::from_secs(30);
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let err = case
        .pull_with(&cache, &sha256_hex(&case.archive), &mut Recorder::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("total deadline of 0.6 s"), "{err}");
    assert_eq!(case.server.hits(PATH), 1);
}
