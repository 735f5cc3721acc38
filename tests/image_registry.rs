//! The registry against AxVisor's real axvisor-guest files (copied under tests/data), served
//! from loopback, plus include semantics (relative URLs and paths, cycles, first-seen merge).

pub mod common;

use std::path::Path;

use common::archives::registry_text;
use common::http_server::Server;
use common::images::fast_options;
use qemu_test_action::image::{Fetcher, Registry};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/axvisor/axvisor-guest-registry"
);

fn real(file: &str) -> Vec<u8> {
    std::fs::read(Path::new(DATA).join(file)).unwrap()
}

fn fetcher() -> Fetcher {
    Fetcher::new(fast_options()).unwrap()
}

fn version_of(reg: &Registry, spec: &str) -> String {
    reg.resolve(&spec.parse().unwrap()).unwrap().version.clone()
}

/// A root registry that includes the real versioned files by *relative* URL, like default.toml
/// does by absolute GitHub URL.
fn serve_real(server: &Server, versions: &[&str]) {
    let mut root = String::new();
    for v in versions {
        server.add(&format!("/registry/v{v}.toml"), real(&format!("v{v}.toml")));
        root.push_str(&format!("[[includes]]\nurl = \"v{v}.toml\"\n\n"));
    }
    server.add("/registry/default.toml", root.into_bytes());
}

#[tokio::test]
async fn real_registry_files_merge_and_pick_the_latest_release() {
    let server = Server::start();
    serve_real(&server, &["0.0.20", "0.0.22", "0.0.23", "0.0.24", "0.0.25"]);
    let reg = Registry::load(&server.url("/registry/default.toml"), &fetcher())
        .await
        .unwrap();
    assert_eq!(reg.sources.len(), 6);
    assert!(reg.warnings.is_empty(), "{:?}", reg.warnings);
    for name in [
        "qemu_aarch64_arceos",
        "qemu_aarch64_linux",
        "qemu_x86_64_nimbos",
    ] {
        assert_eq!(version_of(&reg, name), "0.0.25", "{name}");
    }
    let nimbos = reg
        .resolve(&"qemu_x86_64_nimbos:0.0.22".parse().unwrap())
        .unwrap();
    assert_eq!(
        nimbos.sha256,
        "dddfa6067af453d49f2925fe75514779549041ba78bb390a54aab1c836ed6c63"
    );
    assert_eq!(nimbos.arch, "x86_64");
    assert_eq!(
        nimbos.url,
        "https://github.com/arceos-hypervisor/axvisor-guest/releases/download/v0.0.22/qemu_x86_64_nimbos.tar.gz"
    );
    let ids: Vec<String> = reg.images().iter().map(|e| e.id()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "entries are sorted by (name, version)");
    for v in ["0.0.20", "0.0.22", "0.0.25"] {
        assert_eq!(server.hits(&format!("/registry/v{v}.toml")), 1);
    }
}

#[tokio::test]
async fn at_the_axvisor_snapshot_the_latest_was_0_0_22() {
    let server = Server::start();
    serve_real(&server, &["0.0.20", "0.0.22"]);
    let reg = Registry::load(&server.url("/registry/default.toml"), &fetcher())
        .await
        .unwrap();
    assert_eq!(version_of(&reg, "qemu_aarch64_linux"), "0.0.22");
    let sha = &reg
        .resolve(&"qemu_aarch64_linux".parse().unwrap())
        .unwrap()
        .sha256;
    assert_eq!(
        sha,
        "9e2a19e00a72962c4aac53ad8d6172ca473a93d321e3bb3f49a979264754e397"
    );
}

#[test]
fn every_real_registry_file_parses() {
    for (file, images) in [
        ("default.toml", 0),
        ("v0.0.20.toml", 19),
        ("v0.0.22.toml", 21),
        ("v0.0.23.toml", 23),
        ("v0.0.24.toml", 23),
        ("v0.0.25.toml", 23),
        ("v0.0.26.toml", 29),
    ] {
        let text = String::from_utf8(real(file)).unwrap();
        let reg = Registry::from_text(file, &text).unwrap();
        assert_eq!(reg.images().len(), images, "{file}");
    }
}

#[tokio::test]
async fn include_cycles_are_read_once() {
    let server = Server::start();
    let a = format!(
        "[[includes]]\nurl = \"{}\"\n[[includes]]\nurl = \"a.toml\"\n",
        server.url("/r/b.toml")
    );
    let b = "[[includes]]\nurl = \"/r/a.toml\"\n".to_string()
        + &registry_text(&[("x", "1", &"a".repeat(64), "x.tar.gz")]);
    server.add("/r/a.toml", a.into_bytes());
    server.add("/r/b.toml", b.into_bytes());
    let reg = Registry::load(&server.url("/r/a.toml"), &fetcher())
        .await
        .unwrap();
    assert_eq!((server.hits("/r/a.toml"), server.hits("/r/b.toml")), (1, 1));
    let x = reg.resolve(&"x".parse().unwrap()).unwrap();
    assert_eq!(
        x.url,
        server.url("/r/x.tar.gz"),
        "relative entry urls resolve against their registry"
    );
}

#[tokio::test]
async fn breadth_first_and_the_first_seen_entry_wins() {
    let server = Server::start();
    // root -> [deep, near]; deep -> [deeper]. Breadth-first reads root, deep, near, deeper.
    let (s1, s2, s3) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
    server.add(
        "/root.toml",
        b"[[includes]]\nurl = \"deep.toml\"\n[[includes]]\nurl = \"near.toml\"\n".to_vec(),
    );
    server.add(
        "/deep.toml",
        b"[[includes]]\nurl = \"deeper.toml\"\n".to_vec(),
    );
    server.add(
        "/near.toml",
        registry_text(&[
            ("img", "1", &s2, "n.tar.gz"),
            ("img", "2", &s3, "n2.tar.gz"),
        ])
        .into_bytes(),
    );
    server.add(
        "/deeper.toml",
        registry_text(&[("img", "1", &s1, "d.tar.gz")]).into_bytes(),
    );
    let reg = Registry::load(&server.url("/root.toml"), &fetcher())
        .await
        .unwrap();
    let one = reg.resolve(&"img:1".parse().unwrap()).unwrap();
    assert_eq!(one.sha256, s2, "near.toml is read before deeper.toml");
    assert_eq!(reg.warnings.len(), 1);
    assert!(
        reg.warnings[0].contains("img:1") && reg.warnings[0].contains("deeper.toml"),
        "{:?}",
        reg.warnings
    );
    assert_eq!(reg.sources.len(), 4);
}

#[tokio::test]
async fn local_files_include_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("root.toml"),
        "[[includes]]\nurl = \"sub/v.toml\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sub/v.toml"), real("v0.0.22.toml")).unwrap();
    let root = dir.path().join("root.toml");
    let reg = Registry::load(root.to_str().unwrap(), &fetcher())
        .await
        .unwrap();
    assert_eq!(reg.images().len(), 21);
    assert_eq!(version_of(&reg, "qemu_aarch64_arceos"), "0.0.22");
}

#[tokio::test]
async fn a_missing_include_names_the_including_line() {
    let server = Server::start();
    server.add(
        "/root.toml",
        b"# registry\n\n[[includes]]\nurl = \"gone.toml\"\n".to_vec(),
    );
    let err = Registry::load(&server.url("/root.toml"), &fetcher())
        .await
        .unwrap_err();
    let at = err.location.clone().unwrap();
    assert_eq!(at.path.to_str().unwrap(), server.url("/root.toml"));
    assert_eq!((at.line, at.column), (4, 7), "{err}");
    assert!(
        err.message.contains("included registry") && err.message.contains("HTTP 404"),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_toml_is_reported_with_url_line_and_column() {
    let server = Server::start();
    server.add(
        "/bad.toml",
        b"[[images]]\nname = \"x\"\nversion = 1.2.3\n".to_vec(),
    );
    let err = Registry::load(&server.url("/bad.toml"), &fetcher())
        .await
        .unwrap_err();
    let at = err.location.clone().unwrap();
    assert_eq!(at.path.to_str().unwrap(), server.url("/bad.toml"));
    assert_eq!(at.line, 3, "{err}");
    assert!(err.message.contains("invalid registry format"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn a_missing_local_registry_is_a_usage_error() {
    let err = Registry::load("/nonexistent/registry.toml", &fetcher())
        .await
        .unwrap_err();
    assert!(err.message.contains("/nonexistent/registry.toml"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn the_last_good_copy_resolves_images_when_the_network_fails() {
    let copies_dir = tempfile::tempdir().unwrap();
    let copies = qemu_test_action::image::RegistryCopies::new(copies_dir.path());
    let server = Server::start();
    serve_real(&server, &["0.0.22", "0.0.25"]);
    let url = server.url("/registry/default.toml");
    let online = Registry::load_with(&url, &fetcher(), Some(&copies))
        .await
        .unwrap();
    assert!(online.warnings.is_empty(), "{:?}", online.warnings);
    drop(server); // the network is gone: connections are refused from now on

    let err = Registry::load(&url, &fetcher()).await.unwrap_err();
    assert!(err.message.contains("cannot connect"), "{err}");
    let offline = Registry::load_with(&url, &fetcher(), Some(&copies))
        .await
        .unwrap();
    // the includes were kept too: the latest still comes from v0.0.25.toml
    assert_eq!(version_of(&offline, "qemu_aarch64_linux"), "0.0.25");
    assert_eq!(version_of(&offline, "qemu_aarch64_linux:0.0.22"), "0.0.22");
    assert_eq!(offline.sources, online.sources);
    assert_eq!(offline.warnings.len(), 3, "{:?}", offline.warnings);
    let w = &offline.warnings[0];
    assert!(
        w.contains(&format!("registry {url} could not be fetched")),
        "{w}"
    );
    assert!(w.contains("cannot connect"), "{w}");
    assert!(w.contains("using the copy fetched at 20"), "{w}");
}

#[tokio::test]
async fn a_registry_that_arrives_broken_does_not_fall_back_to_the_copy() {
    let copies_dir = tempfile::tempdir().unwrap();
    let copies = qemu_test_action::image::RegistryCopies::new(copies_dir.path());
    let server = Server::start();
    server.add("/r.toml", real("v0.0.22.toml"));
    let url = server.url("/r.toml");
    Registry::load_with(&url, &fetcher(), Some(&copies))
        .await
        .unwrap();
    server.add("/r.toml", b"[[images]\n".to_vec());
    let err = Registry::load_with(&url, &fetcher(), Some(&copies))
        .await
        .unwrap_err();
    assert!(err.message.contains("invalid registry format"), "{err}");
}

#[test]
fn an_offline_cli_pull_uses_the_kept_registry_and_the_cached_image() {
    use common::archives::{guest_image, noise, sha256_hex};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start();
    let archive = guest_image("aarch64", &noise(10_000, 3), &noise(20_000, 4));
    server.add("/img.tar.gz", archive.clone());
    let text = registry_text(&[(
        "guest",
        "1.0",
        &sha256_hex(&archive),
        &server.url("/img.tar.gz"),
    )]);
    server.add("/registry.toml", text.into_bytes());
    let url = server.url("/registry.toml");
    let pull = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_qemu-test"))
            .args(["images", "pull", "guest", "--registry", &url, "--cache-dir"])
            .arg(&cache)
            .output()
            .unwrap()
    };
    let online = pull();
    assert!(online.status.success(), "{online:?}");
    drop(server);
    let started = std::time::Instant::now();
    let offline = pull();
    let stderr = String::from_utf8_lossy(&offline.stderr);
    assert!(offline.status.success(), "{stderr}");
    assert_eq!(offline.stdout, online.stdout, "the same cached image");
    assert!(stderr.contains("using the copy fetched at"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "offline took {:?}",
        started.elapsed()
    );
}
