//! A tgosimages registry on a real loopback HTTP server, driven through the `qemu-test` binary:
//! `default.toml` including a versioned list, `.tar.xz` platform bundles and separate rootfs
//! images named `name:version`, `images pull --output-dir` in axbuild's storage layout, hostile
//! archives and a bad checksum (nothing cached, nothing written), tgoskits'
//! `TGOS_IMAGE_REGISTRY_FALLBACK_URL` (used when the registry cannot be fetched) and
//! `TGOS_IMAGE_LOCAL_STORAGE` (an archive already there is used without the network, verified,
//! and the storage is never written), and a real guest booted from a rootfs image that its QEMU
//! config names under `${workspace}/tmp/axbuild/rootfs/`.

pub mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::archives::{Member, noise, sha256_hex, tar_xz};
use common::fixtures::fixture;
use common::http_server::Server;
use common::{Scratch, text};

const BUNDLE: &str = "/releases/download/v0.0.15/qemu-aarch64.tar.xz";
const ROOTFS: &str = "/releases/download/v0.0.15/rootfs-aarch64-alpine.img.tar.xz";

/// One `[[images]]` entry in tgosimages' shape.
fn entry(name: &str, version: &str, archive: &[u8], url: &str, released: &str) -> String {
    format!(
        "[[images]]\nname = \"{name}\"\nversion = \"{version}\"\n\
         description = \"Guest image for QEMU aarch64\"\nsha256 = \"{}\"\narch = \"aarch64\"\n\
         url = \"{url}\"\nreleased_at = \"{released}\"\n\n",
        sha256_hex(archive)
    )
}

/// `archive` served at `path` as image `name:0.0.15`, listed in a registry file in `s`.
fn serve_one(s: &Scratch, server: &Server, name: &str, path: &str, archive: &[u8]) -> PathBuf {
    server.add(path, archive.to_vec());
    let text = entry(
        name,
        "0.0.15",
        archive,
        &server.url(path),
        "2026-09-23T12:23:48Z",
    );
    s.write("registry.toml", &text)
}

/// A tgosimages registry on `server`: `/registry/default.toml` includes `v0.0.15.toml` (by a
/// relative URL, as the real one names the versioned file), which lists a bundle in two
/// versions and a rootfs image.
struct Tgos {
    server: Server,
    bundle: Vec<u8>,
    kernel: Vec<u8>,
    rootfs_archive: Vec<u8>,
    rootfs: Vec<u8>,
}

impl Tgos {
    fn start() -> Tgos {
        let server = Server::start();
        let kernel = noise(120_000, 3);
        let rootfs = noise(200_000, 4);
        let old = tar_xz(&[Member::Dir("./"), Member::File("./qemu-aarch64", b"old")]);
        let bundle = tar_xz(&[
            Member::Dir("./"),
            Member::File("./qemu-aarch64", &kernel),
            Member::Dir("./vms/"),
            Member::File("./vms/linux-aarch64.toml", b"id = 1\n"),
        ]);
        let rootfs_archive = tar_xz(&[Member::File("rootfs-aarch64-alpine.img", &rootfs)]);
        server.add(
            "/releases/download/v0.0.14/qemu-aarch64.tar.xz",
            old.clone(),
        );
        server.add(BUNDLE, bundle.clone());
        server.add(ROOTFS, rootfs_archive.clone());
        let list = [
            entry(
                "qemu-aarch64",
                "0.0.14",
                &old,
                &server.url("/releases/download/v0.0.14/qemu-aarch64.tar.xz"),
                "2026-08-01T00:00:00Z",
            ),
            entry(
                "qemu-aarch64",
                "0.0.15",
                &bundle,
                &server.url(BUNDLE),
                "2026-09-23T12:47:38Z",
            ),
            entry(
                "rootfs-aarch64-alpine.img",
                "0.0.15",
                &rootfs_archive,
                &server.url(ROOTFS),
                "2026-09-23T12:23:48Z",
            ),
        ]
        .concat();
        server.add("/registry/v0.0.15.toml", list.into_bytes());
        server.add(
            "/registry/default.toml",
            b"[[includes]]\nurl = \"v0.0.15.toml\"\n".to_vec(),
        );
        Tgos {
            server,
            bundle,
            kernel,
            rootfs_archive,
            rootfs,
        }
    }

    fn registry(&self) -> String {
        self.server.url("/registry/default.toml")
    }
}

/// `qemu-test images <args> --cache-dir <s>/cache` with `env` set (and the tgoskits variables
/// cleared otherwise).
fn images(s: &Scratch, args: &[&str], env: &[(&str, &Path)]) -> (Output, String, String) {
    let cache = s.path().join("cache");
    let mut cmd = s.cmd(&[&["images"], args, &["--cache-dir", cache.to_str().unwrap()]].concat());
    cmd.env_remove("TGOS_IMAGE_LOCAL_STORAGE")
        .env_remove("TGOS_IMAGE_REGISTRY_FALLBACK_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    (out, stdout, stderr)
}

/// `images pull <args>` that must succeed: the directory it printed.
fn pulled(s: &Scratch, args: &[&str], env: &[(&str, &Path)]) -> PathBuf {
    let (out, stdout, stderr) = images(s, &[&["pull"], args].concat(), env);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    PathBuf::from(stdout.trim())
}

/// Every file under `dir` with its bytes (empty when `dir` does not exist).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(list) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in list.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

/// A port nothing listens on: connections are refused at once.
fn closed_port_url(path: &str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}{path}")
}

#[test]
fn bundle_and_rootfs_are_pulled_separately_into_axbuilds_layout() {
    let t = Tgos::start();
    let s = Scratch::new();
    let out_dir = s.path().join("storage");
    let o = out_dir.to_str().unwrap();
    let reg = t.registry();
    let printed = pulled(
        &s,
        &["qemu-aarch64:0.0.15", "--registry", &reg, "-o", o],
        &[],
    );
    let bundle_dir = out_dir.join("qemu-aarch64-0.0.15");
    assert_eq!(printed, bundle_dir);
    let files = [
        ("qemu-aarch64-0.0.15/qemu-aarch64", t.kernel.clone()),
        (
            "qemu-aarch64-0.0.15/vms/linux-aarch64.toml",
            b"id = 1\n".to_vec(),
        ),
        (
            "qemu-aarch64-0.0.15/.archive.sha256",
            sha256_hex(&t.bundle).into_bytes(),
        ),
        ("qemu-aarch64.tar.xz", t.bundle.clone()),
    ];
    for (rel, want) in &files {
        assert_eq!(&std::fs::read(out_dir.join(rel)).unwrap(), want, "{rel}");
    }
    // A bare name is the latest release; its directory is axbuild's `<name>`, and the rootfs
    // file sits where axbuild's QEMU configs reach it: <storage>/<name>/<name>.
    let rootfs = [
        "rootfs-aarch64-alpine.img",
        "--registry",
        &reg,
        "--output-dir",
        o,
    ];
    let rootfs_dir = out_dir.join("rootfs-aarch64-alpine.img");
    assert_eq!(pulled(&s, &rootfs, &[]), rootfs_dir);
    let files = [
        (
            "rootfs-aarch64-alpine.img/rootfs-aarch64-alpine.img",
            t.rootfs.clone(),
        ),
        ("rootfs-aarch64-alpine.img.tar.xz", t.rootfs_archive.clone()),
    ];
    for (rel, want) in &files {
        assert_eq!(&std::fs::read(out_dir.join(rel)).unwrap(), want, "{rel}");
    }
    // Two images, two downloads, and nothing else in the output dir (no staging left).
    assert_eq!((t.server.hits(BUNDLE), t.server.hits(ROOTFS)), (1, 1));
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        names,
        [
            "qemu-aarch64-0.0.15",
            "qemu-aarch64.tar.xz",
            "rootfs-aarch64-alpine.img",
            "rootfs-aarch64-alpine.img.tar.xz"
        ]
    );
    // The kept .tar.xz archives verify (re-read with the xz decoder).
    let (out, stdout, stderr) = images(&s, &["verify"], &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{stdout}"
    );
    // The cache keeps each archive under its real format's name.
    let archives = s.path().join("cache/archives");
    let kept: Vec<PathBuf> = tree(&archives).into_keys().collect();
    let mut want = vec![
        PathBuf::from(format!("{}.tar.xz", sha256_hex(&t.bundle))),
        PathBuf::from(format!("{}.tar.xz", sha256_hex(&t.rootfs_archive))),
    ];
    want.sort();
    assert_eq!(kept, want);
    // Pulling again replaces the extract dir from the cache, without the network.
    std::fs::write(rootfs_dir.join("stale"), b"x").unwrap();
    pulled(&s, &rootfs, &[]);
    assert!(!rootfs_dir.join("stale").exists());
    assert_eq!(t.server.hits(ROOTFS), 1);
    // A cache written by an earlier version kept the xz archive as `<sha>.tar.gz`: it is still
    // verified (as xz, the format its URL names) and exported, without the network.
    let xz = archives.join(format!("{}.tar.xz", sha256_hex(&t.rootfs_archive)));
    let legacy = archives.join(format!("{}.tar.gz", sha256_hex(&t.rootfs_archive)));
    std::fs::rename(&xz, &legacy).unwrap();
    let (out, stdout, stderr) = images(&s, &["verify"], &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{stdout}"
    );
    std::fs::remove_file(out_dir.join("rootfs-aarch64-alpine.img.tar.xz")).unwrap();
    pulled(&s, &rootfs, &[]);
    assert_eq!(
        std::fs::read(out_dir.join("rootfs-aarch64-alpine.img.tar.xz")).unwrap(),
        t.rootfs_archive
    );
    assert_eq!(t.server.hits(ROOTFS), 1);
    // `images rm` removes it under either name.
    let (out, _, stderr) = images(&s, &["rm", "--all"], &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(tree(&archives).is_empty(), "{:?}", tree(&archives).keys());
}

#[test]
fn hostile_archives_and_a_bad_checksum_leave_nothing_behind() {
    let oversized = Member::Oversized("rootfs-aarch64-alpine.img", 64 << 30, 4096);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            tar_xz(&[Member::File("./ok", b"1"), Member::File("../../x", b"evil")]),
            "\"../../x\": contains a '..' component",
        ),
        (
            tar_xz(&[Member::Symlink("./up", "../../..")]),
            "symlink target \"../../..\" leads outside",
        ),
        (
            tar_xz(&[Member::Symlink("./passwd", "/etc/passwd")]),
            "is absolute",
        ),
        (
            tar_xz(&[
                Member::Dir("./sub"),
                Member::Symlink("./d", "sub"),
                Member::File("./d/x", b"through the link"),
            ]),
            "written through a symlink",
        ),
        (tar_xz(&[oversized]), "archive too big"),
    ];
    for (archive, why) in cases {
        let (server, s) = (Server::start(), Scratch::new());
        let reg = serve_one(&s, &server, "rootfs-aarch64-alpine.img", ROOTFS, &archive);
        let out_dir = s.path().join("storage");
        let (out, _, stderr) = images(
            &s,
            &[
                "pull",
                "rootfs-aarch64-alpine.img:0.0.15",
                "--registry",
                reg.to_str().unwrap(),
                "-o",
                out_dir.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(3), "{why}: {stderr}");
        assert!(stderr.contains(why), "{why}: {stderr}");
        assert!(tree(&s.path().join("cache/images")).is_empty(), "{why}");
        assert!(tree(&s.path().join("cache/archives")).is_empty(), "{why}");
        assert!(!out_dir.exists(), "{why}");
        assert!(!s.path().parent().unwrap().join("x").exists());
    }

    // The registry's checksum does not match what the server sends.
    let t = Tgos::start();
    let tampered = tar_xz(&[Member::File("./qemu-aarch64", b"tampered")]);
    t.server.add(BUNDLE, tampered.clone());
    let s = Scratch::new();
    let out_dir = s.path().join("storage");
    let (out, _, stderr) = images(
        &s,
        &[
            "pull",
            "qemu-aarch64:0.0.15",
            "--registry",
            &t.registry(),
            "-o",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "expected {}, got {}",
            sha256_hex(&t.bundle),
            sha256_hex(&tampered)
        )),
        "{stderr}"
    );
    assert!(tree(&s.path().join("cache/images")).is_empty());
    assert!(!out_dir.exists());
}

#[test]
fn the_fallback_registry_is_read_when_the_registry_cannot_be_fetched() {
    let t = Tgos::start();
    let s = Scratch::new();
    let dead = closed_port_url("/registry/default.toml");
    let fallback = t.server.url("/registry/v0.0.15.toml");
    let fb = [("TGOS_IMAGE_REGISTRY_FALLBACK_URL", Path::new(&fallback))];
    let (out, stdout, stderr) = images(
        &s,
        &["pull", "qemu-aarch64:0.0.15", "--registry", &dead],
        &fb,
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: registry {dead} could not be fetched ("))
            && stderr.contains(&format!(
                "using TGOS_IMAGE_REGISTRY_FALLBACK_URL {fallback}"
            )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(Path::new(stdout.trim()).join("qemu-aarch64")).unwrap(),
        t.kernel
    );
    // A registry that answers is used: the fallback is not even read.
    let before = t.server.hits("/registry/v0.0.15.toml");
    let other = Scratch::new();
    let (out, _, stderr) = images(&other, &["ls", "--registry", &t.registry()], &fb);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("FALLBACK"), "{stderr}");
    assert_eq!(t.server.hits("/registry/v0.0.15.toml"), before + 1);
    // Without the variable, or with a fallback as dead as the registry: an error that says so.
    let fresh = Scratch::new();
    let (out, _, stderr) = images(&fresh, &["ls", "--registry", &dead], &[]);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let dead_fb = closed_port_url("/v.toml");
    let (out, _, stderr) = images(
        &fresh,
        &["ls", "--registry", &dead],
        &[("TGOS_IMAGE_REGISTRY_FALLBACK_URL", Path::new(&dead_fb))],
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "TGOS_IMAGE_REGISTRY_FALLBACK_URL {dead_fb} could not be fetched either"
        )),
        "{stderr}"
    );
}

#[test]
fn an_archive_in_the_local_storage_is_used_without_the_network_and_never_written() {
    let t = Tgos::start();
    let s = Scratch::new();
    // axbuild's storage, as `cargo xtask image pull` leaves it: the archive by its URL's name.
    let storage = s.path().join("tgos-storage");
    std::fs::create_dir_all(storage.join("qemu-aarch64")).unwrap();
    std::fs::write(storage.join("qemu-aarch64.tar.xz"), &t.bundle).unwrap();
    std::fs::write(storage.join("qemu-aarch64/.archive.sha256"), "x").unwrap();
    let before = tree(&storage);
    // The registry is a local file, so the archive is the only thing the network could give.
    let reg = serve_one(&s, &t.server, "qemu-aarch64", BUNDLE, &t.bundle);
    let env = [("TGOS_IMAGE_LOCAL_STORAGE", storage.as_path())];
    let pull = ["pull", "qemu-aarch64", "--registry", reg.to_str().unwrap()];
    let (out, stdout, stderr) = images(&s, &pull, &env);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(t.server.hits(BUNDLE), 0, "{stderr}");
    assert_eq!(
        std::fs::read(Path::new(stdout.trim()).join("qemu-aarch64")).unwrap(),
        t.kernel
    );
    assert_eq!(tree(&storage), before);

    // A copy there that does not match the registry is not used (nor touched): downloaded.
    let tampered = tar_xz(&[Member::File("./qemu-aarch64", b"tampered")]);
    std::fs::write(storage.join("qemu-aarch64.tar.xz"), &tampered).unwrap();
    let before = tree(&storage);
    let other = Scratch::new();
    let (out, stdout, stderr) = images(&other, &pull, &env);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("(from TGOS_IMAGE_LOCAL_STORAGE)")
            && stderr.contains("was not used: SHA-256 mismatch"),
        "{stderr}"
    );
    assert_eq!(t.server.hits(BUNDLE), 1);
    assert_eq!(
        std::fs::read(Path::new(stdout.trim()).join("qemu-aarch64")).unwrap(),
        t.kernel
    );
    assert_eq!(tree(&storage), before);
}

/// What `images pull --output-dir` writes is a storage that a later run (ours, or axbuild's via
/// the same variable) takes without the network.
#[test]
fn an_output_dir_serves_as_local_storage_afterwards() {
    let t = Tgos::start();
    let s = Scratch::new();
    let storage = s.path().join("storage");
    let registry = t.registry();
    let pull = |s: &Scratch, extra: &[&str], env: &[(&str, &Path)]| {
        let args = [
            &["pull", "rootfs-aarch64-alpine.img:0.0.15", "--registry"][..],
            &[registry.as_str()][..],
            extra,
        ]
        .concat();
        images(s, &args, env)
    };
    let (out, _, stderr) = pull(&s, &["-o", storage.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let fresh = Scratch::new();
    let (out, stdout, stderr) = pull(
        &fresh,
        &[],
        &[("TGOS_IMAGE_LOCAL_STORAGE", storage.as_path())],
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(t.server.hits(ROOTFS), 1);
    assert_eq!(
        std::fs::read(Path::new(stdout.trim()).join("rootfs-aarch64-alpine.img")).unwrap(),
        t.rootfs
    );
}

/// A real guest whose QEMU config names `${workspace}/tmp/axbuild/rootfs/<image>` as tgoskits'
/// do: the rootfs image comes from the loopback tgosimages registry through the cache into the
/// per-run work dir, the kernel's loader mounts it and its /init passes; the workspace gets no
/// `tmp/` and the cache's copy is not what QEMU wrote to.
#[test]
fn a_rootfs_named_under_axbuilds_directory_boots_from_the_per_run_copy() {
    let s = Scratch::new();
    let server = Server::start();
    let rootfs = std::fs::read(fixture("arm64-linux/rootfs.img")).unwrap();
    let archive = tar_xz(&[Member::File("rootfs-aarch64-alpine.img", &rootfs)]);
    let reg = serve_one(&s, &server, "rootfs-aarch64-alpine.img", ROOTFS, &archive);
    let ws = s.path().join("tgoskits");
    std::fs::create_dir_all(&ws).unwrap();
    let cfg = s.write(
        "qemu-aarch64.toml",
        &format!(
            "args = [\"-nographic\", \"-machine\", \"virt\", \"-cpu\", \"cortex-a72\", \"-m\", \"256M\",\n\
             \"-device\", \"virtio-blk-device,drive=disk0\",\n\
             \"-drive\", \"id=disk0,if=none,format=raw,file=${{workspace}}/tmp/axbuild/rootfs/rootfs-aarch64-alpine.img\",\n\
             \"-initrd\", \"{}\", \"-append\", \"console=ttyAMA0 rdinit=/init\"]\n\
             success_regex = [\"(?m)^test pass!\\\\s*$\"]\nfail_regex = [\"(?i)kernel panic\"]\ntimeout = 150\n",
            fixture("arm64-linux/loader.cpio.gz").display()
        ),
    );
    let cache = s.path().join("cache");
    let out = s.run_arm64_linux(
        &cfg,
        &[
            "--workspace",
            ws.to_str().unwrap(),
            "--image",
            "rootfs-aarch64-alpine.img:0.0.15",
            "--registry",
            reg.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--name",
            "rootfs",
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let case = &s.results()["cases"][0];
    assert_eq!(case["verdict"]["outcome"], "pass", "{case}");
    assert!(
        case["console_tail"]
            .to_string()
            .contains("rootfs: /dev/vda / ext4"),
        "{case}"
    );
    let args = case["command"]["args"].to_string();
    assert!(!args.contains("tmp/axbuild"), "{args}");
    assert!(args.contains("cases/rootfs"), "{args}");
    assert!(!ws.join("tmp").exists());
    // The cached file is the archive's, byte for byte: QEMU wrote to the copy.
    let sha = sha256_hex(&archive);
    let cached = cache
        .join("images")
        .join(&sha)
        .join("rootfs-aarch64-alpine.img");
    assert_eq!(std::fs::read(cached).unwrap(), rootfs);
}
