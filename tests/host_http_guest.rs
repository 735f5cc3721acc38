//! `[host_http_server]` end to end: a real guest (Debian's arm64 kernel with the fixtures'
//! networking busybox initramfs, virtio-net on QEMU's user network) fetches from the server the
//! case starts, as tgoskits' guest tests do (`wget http://10.0.2.2:<port>/…` at the `~ #`
//! prompt, driven by `shell_prefix` and `test_commands`). Without the table nothing answers;
//! after the run the port is closed again.

pub mod common;

use common::fixtures::fixture;
use common::{Scratch, text};

/// A loopback port that is free right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Boots the networking guest with `judge` (tgoskits' keys) after its machine arguments; a
/// command that echoes `fetch failed` fails the case.
fn boot(s: &Scratch, judge: &str) -> (Option<i32>, serde_json::Value) {
    let cfg = s.write(
        "qemu-aarch64.toml",
        &format!(
            "args = [\"-nographic\", \"-machine\", \"virt\", \"-cpu\", \"cortex-a72\", \"-m\", \"256M\",\n\
             \"-netdev\", \"user,id=n0\", \"-device\", \"virtio-net-device,netdev=n0\",\n\
             \"-initrd\", \"{}\", \"-append\", \"console=ttyAMA0 rdinit=/init\"]\n\
             fail_regex = [\"(?i)kernel panic\", \"(?m)^net: no eth0\", \"(?m)^fetch failed$\"]\ntimeout = 150\n\
             shell_prefix = \"~ #\"\n{judge}",
            fixture("arm64-linux/initramfs-net.cpio.gz").display()
        ),
    );
    let out = s.run_arm64_linux(&cfg, &[]);
    let (_, stderr) = text(&out);
    let case = s.results()["cases"][0].clone();
    assert!(case.is_object(), "{stderr}");
    (out.status.code(), case)
}

/// The judge of a guest that fetches `/hello` from the host's `port` and passes on the text
/// `host says: hello`.
fn fetch_hello(port: u16) -> String {
    format!(
        "success_regex = [\"(?m)^host says: hello$\"]\n\
         test_commands = [\"wget -q -O - http://10.0.2.2:{port}/hello || echo fetch fail''ed\"]\n"
    )
}

#[test]
fn the_guest_fetches_the_text_body_from_the_host_server() {
    let s = Scratch::new();
    let port = free_port();
    let (code, c) = boot(
        &s,
        &format!(
            "{}[host_http_server]\nbind = \"127.0.0.1\"\nport = {port}\nbody = \"host says: hello\\n\"\n",
            fetch_hello(port)
        ),
    );
    assert_eq!(code, Some(0), "{c}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
    assert_eq!(
        c["verdict"]["decided_by"]["line"], "host says: hello",
        "{c}"
    );
    // Stopped with the case: nothing listens on the port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// `body_size` bytes of `body_byte`: the guest counts what arrived, and that it is all that byte.
#[test]
fn the_guest_receives_the_generated_body_whole() {
    let s = Scratch::new();
    let port = free_port();
    let url = format!("http://10.0.2.2:{port}/blob");
    let (code, c) = boot(
        &s,
        &format!(
            "success_regex = [\"(?m)^size=\\\\s*1048576 other=\\\\s*0$\"]\n\
             test_commands = [\"n=$(wget -q -O - {url} | wc -c); o=$(wget -q -O - {url} | tr -d B | wc -c)\", \
             \"echo size=$n other=$o\"]\n\
             [host_http_server]\nport = {port}\nbody_size = 1048576\nbody_byte = 66\n"
        ),
    );
    assert_eq!(code, Some(0), "{c}");
    assert_eq!(c["verdict"]["outcome"], "pass", "{c}");
}

/// The same fetch with no `[host_http_server]`: the guest finds nothing there, so the server of
/// the tests above is what answered.
#[test]
fn without_the_table_nothing_answers() {
    let s = Scratch::new();
    let port = free_port();
    let (code, c) = boot(&s, &fetch_hello(port));
    assert_eq!(code, Some(1), "{c}");
    assert_eq!(c["verdict"]["outcome"], "fail", "{c}");
    assert_eq!(
        c["verdict"]["decided_by"]["pattern"], "(?m)^fetch failed$",
        "{c}"
    );
}
