//! The `[host_http_server]` of a case: a loopback HTTP server the guest's tests fetch from
//! (QEMU's user network reaches the host's 127.0.0.1 as 10.0.2.2), started before the boot and
//! stopped when the [`HostHttpServer`] is dropped after it.
//!
//! Hand-written on tokio rather than a server crate: the guest sends one `GET` per connection
//! and reads one response, which is a request line, a bounded header read and a
//! `Content-Length` reply — what axbuild's own server does too — and hyper's server side would
//! add more code to the binary than this whole module. Bounds: the request head is read up to
//! [`MAX_HEAD`] bytes and [`READ_TIMEOUT`]; a generated body is streamed in chunks, never held.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::host_http::{HostHttpSpec, HttpBody};
use crate::error::Error;

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CHUNK: usize = 16 * 1024;

/// A running server; dropping it stops accepting and ends open connections.
pub struct HostHttpServer {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl HostHttpServer {
    /// Binds `spec.bind:spec.port` (port 0 = any free port) and serves until dropped. A `dir`
    /// body is relative to `workspace`.
    pub async fn start(spec: &HostHttpSpec, workspace: &Path) -> Result<HostHttpServer, Error> {
        let addr = SocketAddr::new(spec.bind, spec.port);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::infra(format!("cannot start the host HTTP server on {addr}: {e}"))
                .at(spec.location.clone())
                .help("free the port, or change `port` in [host_http_server]")
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::infra(format!("host HTTP server on {addr}: {e}")))?;
        let body = match &spec.body {
            HttpBody::Dir(d) => HttpBody::Dir(workspace.join(d)),
            other => other.clone(),
        };
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                connections.spawn(async move {
                    let _ = serve(stream, &body).await;
                });
                // Reap finished connections so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(HostHttpServer {
            addr,
            task: Some(task),
        })
    }

    /// Where it listens (the real port when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it and waits until the listener is closed.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for HostHttpServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops the listener and the JoinSet, which aborts every
        // connection task: nothing outlives the case (also when the boot is cancelled).
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One connection: read the request head, answer, close.
async fn serve(mut stream: TcpStream, body: &HttpBody) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return reply(&mut stream, "405 Method Not Allowed", b"only GET\n").await;
    }
    let send_body = method == "GET";
    match body {
        HttpBody::Text(t) => respond(&mut stream, t.as_bytes(), send_body).await,
        HttpBody::Generated { size, byte } => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(header.as_bytes()).await?;
            if send_body {
                let chunk = vec![*byte; CHUNK];
                let mut left = *size;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    stream.write_all(&chunk[..n]).await?;
                    left -= n as u64;
                }
            }
            stream.shutdown().await
        }
        HttpBody::Dir(dir) => match file_under(dir, target) {
            Some(p) if p.is_file() => {
                let bytes = tokio::fs::read(&p).await?;
                respond(&mut stream, &bytes, send_body).await
            }
            Some(p) if p.is_dir() => {
                let mut names = Vec::new();
                let mut rd = tokio::fs::read_dir(&p).await?;
                while let Some(e) = rd.next_entry().await? {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
                names.sort();
                let index: String = names.iter().map(|n| format!("{n}\n")).collect();
                respond(&mut stream, index.as_bytes(), send_body).await
            }
            _ => reply(&mut stream, "404 Not Found", b"not found\n").await,
        },
    }
}

/// The file a request path names under `dir`; `None` for anything that would leave it.
fn file_under(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let mut out = dir.to_path_buf();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

async fn respond(stream: &mut TcpStream, body: &[u8], send_body: bool) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if send_body {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

async fn reply(stream: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> HostHttpSpec {
        let src = crate::config::source::SourceText::new(Path::new("q.toml"), text.to_string());
        let doc = toml_edit::Document::parse(text.to_string()).unwrap();
        HostHttpSpec::read(doc.get("host_http_server").unwrap(), &src).unwrap()
    }

    async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn serves_the_body_while_running_and_stops_when_dropped() {
        let server = HostHttpServer::start(
            &spec("[host_http_server]\nport = 0\nbody = \"fixture\\n\"\n"),
            Path::new("/"),
        )
        .await
        .unwrap();
        let addr = server.addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let r = get(addr, "/anything").await.unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nfixture\n"), "{r}");
        server.stop().await;
        let e = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn generated_bodies_and_directories_stay_inside() {
        let server = HostHttpServer::start(
            &spec("[host_http_server]\nport = 0\nbody_size = 40000\nbody_byte = 90\n"),
            Path::new("/"),
        )
        .await
        .unwrap();
        let r = get(server.addr(), "/").await.unwrap();
        assert!(r.contains("Content-Length: 40000\r\n"), "{r}");
        assert_eq!(r.matches('Z').count(), 40000);
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("pub")).unwrap();
        std::fs::write(d.path().join("pub/a.whl"), "wheel").unwrap();
        std::fs::write(d.path().join("secret"), "no").unwrap();
        let server = HostHttpServer::start(
            &spec("[host_http_server]\nport = 0\ndir = \"pub\"\n"),
            d.path(),
        )
        .await
        .unwrap();
        assert!(
            get(server.addr(), "/a.whl")
                .await
                .unwrap()
                .ends_with("\r\n\r\nwheel")
        );
        assert!(
            get(server.addr(), "/")
                .await
                .unwrap()
                .ends_with("\r\n\r\na.whl\n")
        );
        let escape = get(server.addr(), "/../secret").await.unwrap();
        assert!(escape.starts_with("HTTP/1.1 404"), "{escape}");
    }

    #[tokio::test]
    async fn a_busy_port_is_an_infrastructure_error_at_the_table() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = HostHttpServer::start(
            &spec(&format!("[host_http_server]\nport = {port}\n")),
            Path::new("/"),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.kind, crate::error::ErrorKind::Infra);
        assert!(
            e.message.starts_with(&format!(
                "cannot start the host HTTP server on 127.0.0.1:{port}"
            )),
            "{e}"
        );
        assert_eq!(e.location.unwrap().line, 1);
    }
}
