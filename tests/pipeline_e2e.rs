//! The whole pipeline against a real HTTP server on loopback: registry → verified image
//! download → VM config patched in the work dir → the fixture kernel built by cargo from an
//! AxVisor-format board config with the patched config embedded → QEMU with the per-run rootfs
//! copy → verdict. The user's workspace is byte-for-byte unchanged afterwards.

pub mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::archives::{guest_image, noise, sha256_hex};
use common::http_server::Server;
use common::{Scratch, text};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cargo-kernel");

/// The fixture kernel's package with its VM config (`vms/guest.toml`, a memory-mode guest as
/// AxVisor's `configs/vms/*.toml`) and a QEMU config that attaches the image's rootfs.
fn workspace(s: &Scratch) -> PathBuf {
    let ws = s.path().join("ws");
    copy_tree(Path::new(FIXTURE), &ws);
    std::fs::write(
        ws.join("qemu-x86_64.toml"),
        r#"args = ["-nographic", "-accel", "tcg", "-m", "64M",
        "-device", "virtio-blk-pci,drive=disk0",
        "-drive", "id=disk0,if=none,format=raw,file=${workspaceFolder}/tmp/rootfs.img"]
success_regex = ["test pass!"]
fail_regex = ["panicked at"]
"#,
    )
    .unwrap();
    ws
}

#[test]
fn builds_and_boots_with_an_image_from_a_loopback_registry() {
    let s = Scratch::new();
    let ws = workspace(&s);
    let before = hash_tree(&ws);

    let server = Server::start();
    let kernel_bytes = noise(64 * 1024, 7);
    let rootfs = vec![0u8; 1 << 20];
    let archive = guest_image("x86_64", &kernel_bytes, &rootfs);
    let sha = sha256_hex(&archive);
    server.add("/images/guest_x86.tar.gz", archive);
    let registry = format!(
        "[[images]]\nname = \"guest_x86\"\nversion = \"0.1.0\"\ndescription = \"test\"\n\
         sha256 = \"{sha}\"\narch = \"x86_64\"\nurl = \"{}\"\nreleased_at = \"2026-01-06T03:08:54Z\"\n",
        server.url("/images/guest_x86.tar.gz")
    );
    server.add("/registry.toml", registry.into_bytes());

    let cache = s.path().join("cache");
    // As the action runs it (in Actions, with JUnit), so the out dir holds every report.
    let out = s
        .actions_cmd(&[
            "run",
            "--workspace",
            ws.to_str().unwrap(),
            "--build-config",
            ws.join("board.toml").to_str().unwrap(),
            "--qemu-config",
            ws.join("qemu-x86_64.toml").to_str().unwrap(),
            "--vmconfigs",
            ws.join("vms/guest.toml").to_str().unwrap(),
            "--image",
            "guest_x86:0.1.0",
            "--registry",
            &server.url("/registry.toml"),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--name",
            "pipeline",
            "--timeout",
            "120s",
            "--junit",
            "true",
        ])
        .output()
        .unwrap();
    common::assert_no_qemu_left(s.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let r = s.results();
    let case = &r["cases"][0];
    let stages: Vec<&str> = case["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["image", "prepare", "build", "boot"]);
    assert_eq!(case["image"]["sha256"], sha.as_str());
    assert_eq!(case["image"]["version"], "0.1.0");

    // The kernel cargo built embeds the *patched* copy of the VM config.
    let log = std::fs::read_to_string(s.out().join("pipeline.log")).unwrap();
    assert!(log.contains("vm config: cargo-kernel-guest"), "{log}");
    assert!(log.contains("AX_LOG=info"), "{log}");
    let patched = s.out().join("cases/pipeline/vmconfigs");
    let copy = std::fs::read_dir(&patched)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(copy).unwrap();
    assert!(
        text.contains("# A memory-mode guest"),
        "comments kept: {text}"
    );
    assert!(!text.contains("\"guest.bin\""), "{text}");
    let image_kernel = cache.join("images").join(&sha).join("qemu-x86_64");
    assert!(
        text.contains(&format!("kernel_path = \"{}\"", image_kernel.display())),
        "{text}"
    );

    // QEMU wrote to a per-run copy of the image's rootfs, not to the workspace or the cache.
    let args = case["command"]["args"].to_string();
    assert!(!args.contains("/ws/tmp/rootfs.img"), "{args}");
    assert!(args.contains("cases/pipeline"), "{args}");

    // The checkout is unchanged.
    assert_eq!(hash_tree(&ws), before, "the run modified the workspace");
    assert_eq!(server.hits("/images/guest_x86.tar.gz"), 1);

    // What the action uploads after this AxVisor-shaped run: the upload list from
    // `qemu-test action prepare`, expanded by @actions/glob as actions/upload-artifact does —
    // console logs, results, JUnit and the summary only, never the cargo target dir, rootfs
    // copies or images.
    let prep = s
        .cmd(&["action", "prepare"])
        .env("INPUT_LOG_DIR", s.out())
        .env("INPUT_JUNIT", "true")
        .env("GITHUB_OUTPUT", s.path().join("gh-output"))
        .output()
        .unwrap();
    assert!(prep.status.success(), "{}", common::text(&prep).1);
    let outputs = std::fs::read_to_string(s.path().join("gh-output")).unwrap();
    let paths = heredoc_value(&outputs, "upload-paths");
    let uploaded = upload_artifact_files(&paths);
    let mut names: Vec<String> = uploaded
        .iter()
        .map(|p| p.strip_prefix(s.out()).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["junit.xml", "pipeline.log", "results.json", "summary.md"],
        "{paths}"
    );
    assert!(s.out().join("cargo-target").is_dir() && s.out().join("cases/pipeline").is_dir());
    let summary = std::fs::read_to_string(s.out().join("summary.md")).unwrap();
    assert_eq!(
        summary,
        std::fs::read_to_string(s.path().join("summary.md")).unwrap(),
        "the uploaded summary is the step summary"
    );
    let in_dir: u64 = walk_size(&s.out());
    let up: u64 = uploaded.iter().map(|p| p.metadata().unwrap().len()).sum();
    assert!(
        up * 10 < in_dir,
        "the upload ({up} B) must be a small part of the out dir ({in_dir} B)"
    );
}

/// A multi-line `name<<DELIM … DELIM` value from a GITHUB_OUTPUT file.
fn heredoc_value(file: &str, name: &str) -> String {
    let mut lines = file.lines();
    while let Some(l) = lines.next() {
        if let Some(delim) = l.strip_prefix(&format!("{name}<<")) {
            return lines
                .by_ref()
                .take_while(|l| *l != delim)
                .collect::<Vec<_>>()
                .join("\n");
        }
    }
    panic!("no {name} in {file}");
}

/// The files actions/upload-artifact would upload for `paths`, through the real @actions/glob
/// (tests/tools/node, installed by scripts/test.sh).
fn upload_artifact_files(paths: &str) -> Vec<PathBuf> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/node");
    assert!(
        tools.join("node_modules/@actions/glob").is_dir(),
        "missing test tools: run `npm ci --prefix tests/tools/node` (scripts/test.sh does)"
    );
    let out = std::process::Command::new("node")
        .arg(tools.join("upload-files.mjs"))
        .arg(paths)
        .output()
        .expect("node (apt-get install nodejs)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("::"))
        .map(PathBuf::from)
        .collect()
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk_size(&e.path())
            } else if t.is_file() {
                e.metadata().unwrap().len()
            } else {
                0
            }
        })
        .sum()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_name() == "target" {
            continue;
        }
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn hash_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
                out.insert(rel, "dir".into());
            } else {
                out.insert(rel, sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}
