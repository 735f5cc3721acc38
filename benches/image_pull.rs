//! Image pull benchmark: a cold pull (download + SHA-256 + gunzip + untar in one pass) from a
//! loopback server against the two-pass baseline AxVisor's tooling amounts to (download to a
//! file, `sha256sum` it, then `tar xzf` it), plus the cost of a cache hit. Prints medians and
//! ratios; no assertions.
//!
//! `cargo bench --bench image_pull`; `IMAGE_BENCH_MIB` sets the archive size (default 32).

// `pub`: the bench uses part of the tests' helpers, the rest is not dead code (see
// tests/common/mod.rs).
#[path = "../tests/common/http_server.rs"]
pub mod http_server;

#[path = "../tests/common/archives.rs"]
pub mod archives;

use std::process::Command;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use qemu_test_action::image::progress::Silent;
use qemu_test_action::image::{Cache, Registry, ensure_image};
use sha2::{Digest, Sha256};

const RUNS: usize = 5;

fn main() {
    let mib: usize = std::env::var("IMAGE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let archive = archive(mib);
    let sha: String = Sha256::digest(&archive)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = http_server::Server::start();
    server.add("/img.tar.gz", archive.clone());
    let url = server.url("/img.tar.gz");
    let text = format!(
        "[[images]]\nname = \"bench\"\nversion = \"1\"\nsha256 = \"{sha}\"\narch = \"aarch64\"\nurl = \"{url}\"\n"
    );
    let reg = Registry::from_text("bench.toml", &text).expect("registry");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scratch = tempfile::tempdir().expect("tempdir");
    println!(
        "archive: {:.1} MiB compressed, {RUNS} runs each, medians",
        archive.len() as f64 / (1 << 20) as f64
    );

    let ours = median(|i| {
        let cache = Cache::new(scratch.path().join(format!("ours-{i}")));
        let t = Instant::now();
        rt.block_on(ensure_image(
            &reg,
            &"bench".parse().unwrap(),
            &cache,
            &mut Silent,
        ))
        .expect("pull");
        t.elapsed()
    });
    println!(
        "qemu-test cold pull (one pass):            {:>8.1} ms",
        ms(ours)
    );

    let baseline = median(|i| {
        let dir = scratch.path().join(format!("base-{i}"));
        std::fs::create_dir_all(dir.join("x")).expect("mkdir");
        let script = format!(
            "curl -sSf -o a.tar.gz '{url}' && sha256sum a.tar.gz >/dev/null && tar xzf a.tar.gz -C x"
        );
        let t = Instant::now();
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&dir)
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "baseline failed");
        t.elapsed()
    });
    println!(
        "curl -o, sha256sum, tar xzf (three passes): {:>8.1} ms",
        ms(baseline)
    );
    println!("speed-up: {:.2}x", ms(baseline) / ms(ours));

    let cache = Cache::new(scratch.path().join("ours-0"));
    let hit = median(|_| {
        let t = Instant::now();
        rt.block_on(ensure_image(
            &reg,
            &"bench".parse().unwrap(),
            &cache,
            &mut Silent,
        ))
        .expect("hit");
        t.elapsed()
    });
    println!(
        "cache hit:                                  {:>8.3} ms",
        ms(hit)
    );
    println!("archive GETs served: {}", server.hits("/img.tar.gz"));
}

fn median(mut run: impl FnMut(usize) -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS).map(&mut run).collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An axvisor-guest-like archive of about `mib` MiB: an incompressible kernel and a rootfs
/// that is half data, half zeros (like a partly filled ext4 image), gzipped at gzip's default
/// level as `tar -czf` makes axvisor-guest's archives (the test archives use the fast level).
fn archive(mib: usize) -> Vec<u8> {
    let kernel = archives::noise(mib << 19, 1);
    let mut rootfs = archives::noise(mib << 19, 2);
    rootfs.resize(mib << 20, 0);
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (name, data) in [("./qemu-aarch64", &kernel), ("./rootfs.img", &rootfs)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, data.as_slice()).expect("tar");
    }
    tar.into_inner().expect("tar").finish().expect("gz")
}
