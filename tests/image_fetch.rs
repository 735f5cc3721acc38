//! Downloads against a real HTTP/1.1 server on loopback: retries, resume, redirects, deadlines,
//! checksum and the cache they fill.

pub mod common;

use std::time::Duration;

use common::archives::{guest_image, noise, sha256_hex};
use common::http_server::{Fault, Server};
use common::images::{Recorder, cache_files, fast_options, one_image};
use qemu_test_action::image::{Cache, FetchOptions, ImageSpec, ensure_image};

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

    /// Pulls the archive with hash `sha` from `url` (any path or scheme) into `cache`.
    async fn pull_from(
        &self,
        cache: &Cache,
        url: &str,
        sha: &str,
    ) -> Result<qemu_test_action::image::LocalImage, qemu_test_action::Error> {
        let reg = one_image(SPEC, "1", sha, url);
        ensure_image(
            &reg,
            &SPEC.parse().unwrap(),
            cache,
            &mut Recorder::default(),
        )
        .await
    }

    async fn pull(&self) -> Result<qemu_test_action::image::LocalImage, qemu_test_action::Error> {
        let sha = sha256_hex(&self.archive);
        self.pull_with(&self.cache(), &sha, &mut Recorder::default())
            .await
    }

    fn assert_complete(&self, img: &qemu_test_action::image::LocalImage) {
        assert_eq!(std::fs::read(img.kernel().unwrap()).unwrap(), self.kernel);
        assert_eq!(std::fs::read(img.rootfs().unwrap()).unwrap(), self.rootfs);
        let archive = self.cache().archive_path(
            &img.sha256,
            qemu_test_action::image::kind::ArchiveKind::TarGz,
        );
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

/// Options whose unpack limits are `f` applied to the fast ones.
fn with_limits(f: impl FnOnce(&mut FetchOptions)) -> FetchOptions {
    let mut opts = fast_options();
    f(&mut opts);
    opts
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_any_byte_is_stored() {
    let case = Case::new();
    let opts = with_limits(|o| o.limits.max_archive_bytes = 10_000);
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let err = case
        .pull_with(&cache, &sha256_hex(&case.archive), &mut Recorder::default())
        .await
        .unwrap_err();
    let expected = format!(
        "is {} bytes (Content-Length), more than the limit of 10000 bytes",
        case.archive.len()
    );
    assert!(err.message.contains(&expected), "{err}");
    assert_eq!(case.server.hits(PATH), 1, "a refusal is not retried");
    assert_eq!(
        cache_files(case.cache_dir.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn a_local_archive_growing_past_the_limit_is_cut_off() {
    // No Content-Length to judge by: the bytes are counted as they arrive.
    let case = Case::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("image.tar.gz");
    std::fs::write(&file, &case.archive).unwrap();
    let url = reqwest::Url::from_file_path(&file).unwrap().to_string();
    let opts = with_limits(|o| o.limits.max_archive_bytes = 50_000);
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let err = case
        .pull_from(&cache, &url, &sha256_hex(&case.archive))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("the download is larger than the limit of 50000 bytes"),
        "{err}"
    );
    assert_eq!(
        cache_files(case.cache_dir.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn a_body_that_is_not_gzip_is_refused_at_its_first_bytes() {
    let case = Case::new();
    let page = b"<html><body>Sign in to continue</body></html>".repeat(20_000);
    case.server.add("/login.tar.gz", page.clone());
    // After 100 bytes the server goes silent: only a refusal on the first bytes ends this
    // before the (long) read deadline.
    case.server.fault("/login.tar.gz", Fault::Stall(100));
    let opts = with_limits(|o| {
        o.deadlines.read = Duration::from_secs(60);
        o.deadlines.total = Duration::from_secs(120);
    });
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let url = case.server.url("/login.tar.gz");
    let err = case
        .pull_from(&cache, &url, &sha256_hex(&page))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("the data is not gzip (it starts with \"<html><body>Sign"),
        "{err}"
    );
    assert!(
        err.help.as_deref().unwrap().contains("error or login page"),
        "{err}"
    );
    assert_eq!(case.server.hits("/login.tar.gz"), 1);
    assert_eq!(
        cache_files(case.cache_dir.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_before_it_fills_the_disk() {
    let case = Case::new();
    let zeros = vec![0u8; 8 << 20];
    let bomb = guest_image("aarch64", b"kernel", &zeros);
    assert!(bomb.len() < 100_000, "zeros compress well: {}", bomb.len());
    case.server.add("/bomb.tar.gz", bomb.clone());
    let (url, sha) = (case.server.url("/bomb.tar.gz"), sha256_hex(&bomb));
    let opts = with_limits(|o| {
        o.limits.max_ratio = Some(50);
        o.limits.ratio_floor = 1 << 20;
    });
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let err = case.pull_from(&cache, &url, &sha).await.unwrap_err();
    assert!(err.message.contains("expand more than 50x"), "{err}");
    assert!(err.message.contains("decompression bomb"), "{err}");
    assert_eq!(
        cache_files(case.cache_dir.path()),
        Vec::<std::path::PathBuf>::new()
    );

    // the same archive within a generous ratio is fine: the rule measures, it does not guess
    let opts = with_limits(|o| o.limits.ratio_floor = 1 << 20);
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let img = case.pull_from(&cache, &url, &sha).await.unwrap();
    assert_eq!(
        std::fs::metadata(img.rootfs().unwrap()).unwrap().len(),
        8 << 20
    );
}

#[tokio::test]
async fn a_trickling_server_fails_the_minimum_throughput_rule() {
    let case = Case::new();
    // 200 bytes every 40 ms: never silent for the 2 s read deadline, but ~5 KB/s
    case.server
        .fault(PATH, Fault::Trickle(200, Duration::from_millis(40)));
    case.server
        .fault(PATH, Fault::Trickle(200, Duration::from_millis(40)));
    let opts = with_limits(|o| {
        o.attempts = 2;
        o.min_throughput = qemu_test_action::image::fetch::Throughput {
            bytes: 100_000,
            window: Duration::from_millis(500),
        };
    });
    let cache = Cache::new(case.cache_dir.path()).with_options(opts);
    let err = case
        .pull_with(&cache, &sha256_hex(&case.archive), &mut Recorder::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("the transfer stalled"), "{err}");
    assert!(
        err.message
            .contains("slower than the minimum of 100000 bytes per 0.5 s"),
        "{err}"
    );
    assert_eq!(
        case.server.hits(PATH),
        2,
        "a stall is retried like other transient failures"
    );
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_named_as_such() {
    let case = Case::new();
    case.server
        .redirect("/ftp", 302, "ftp://127.0.0.1/qemu_aarch64_arceos.tar.gz");
    let err = case
        .pull_from(
            &case.cache(),
            &case.server.url("/ftp"),
            &sha256_hex(&case.archive),
        )
        .await
        .unwrap_err();
    assert!(
        err.message.contains("redirects to another scheme (ftp:"),
        "{err}"
    );
    assert_eq!(
        case.server.hits("/ftp"),
        1,
        "a refused redirect is not retried"
    );
}

#[tokio::test]
async fn a_refused_connection_gives_up_within_seconds_with_the_default_policy() {
    let case = Case::new();
    // a port nobody listens on: bind, note it, close
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/x.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()); // the default FetchOptions, as a run uses them
    let started = std::time::Instant::now();
    let err = case
        .pull_from(&cache, &url, &sha256_hex(b"x"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.message.contains("cannot connect"), "{err}");
    assert!(err.message.contains("gave up after 2 attempts"), "{err}");
    // 1 s backoff between the two attempts; 8 attempts with backoff would take ~90 s
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn a_partial_file_that_is_not_gzip_is_discarded_and_downloaded_again() {
    let case = Case::new();
    let sha = sha256_hex(&case.archive);
    let cache = case.cache();
    let part = case
        .cache_dir
        .path()
        .join("partial")
        .join(format!("{sha}.tar.gz.part"));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, b"<html>stale</html>").unwrap();
    let mut progress = Recorder::default();
    let img = case.pull_with(&cache, &sha, &mut progress).await.unwrap();
    case.assert_complete(&img);
    assert!(
        progress
            .notes()
            .iter()
            .any(|n| n.contains("was stale; starting over")),
        "{:?}",
        progress.notes()
    );
}
