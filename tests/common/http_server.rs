//! A real HTTP/1.1 server on 127.0.0.1 for image tests, with per-path fault injection and
//! request logging. One thread per connection, `Connection: close` on every response.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// What the next request to a path gets instead of (or before) the normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After: 0` for 429/503).
    Status(u16),
    /// Send the headers with the full `Content-Length` but only this many body bytes, then close.
    Truncate(usize),
    /// Send the headers and this many body bytes, then go silent until the server is dropped.
    Stall(usize),
    /// Send the body `n` bytes at a time with a pause after each: a slow but never silent server.
    Trickle(usize, std::time::Duration),
}

#[derive(Default)]
struct Route {
    body: Vec<u8>,
    ranges: bool,
    redirect: Option<(u16, String)>,
    faults: VecDeque<Fault>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Logged>,
}

/// The running server; dropping it stops accepting and releases stalled connections.
pub struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stopped: Arc<(Mutex<bool>, Condvar)>,
    stop_flag: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stopped = Arc::new((Mutex::new(false), Condvar::new()));
        let stop_flag = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (state, stopped, stop_flag) = (state.clone(), stopped.clone(), stop_flag.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop_flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, stopped) = (state.clone(), stopped.clone());
                    std::thread::spawn(move || serve(conn, &state, &stopped));
                }
            })
        };
        Server {
            addr,
            state,
            stopped,
            stop_flag,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` at `path`, honouring `Range: bytes=N-`.
    pub fn add(&self, path: &str, body: Vec<u8>) {
        self.route(path, body, true);
    }

    /// Serves `body` at `path`, ignoring `Range` (always 200 with the whole body).
    pub fn add_without_ranges(&self, path: &str, body: Vec<u8>) {
        self.route(path, body, false);
    }

    fn route(&self, path: &str, body: Vec<u8>, ranges: bool) {
        let mut st = self.state.lock().unwrap();
        let route = st.routes.entry(path.to_string()).or_default();
        route.body = body;
        route.ranges = ranges;
    }

    /// Answers `path` with a redirect to `to` (a path on this server).
    pub fn redirect(&self, path: &str, status: u16, to: &str) {
        let mut st = self.state.lock().unwrap();
        st.routes.entry(path.to_string()).or_default().redirect = Some((status, to.to_string()));
    }

    /// Queues a fault for the next request to `path`.
    pub fn fault(&self, path: &str, fault: Fault) {
        let mut st = self.state.lock().unwrap();
        st.routes
            .entry(path.to_string())
            .or_default()
            .faults
            .push_back(fault);
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    /// The requests that reached `path`, in order.
    pub fn requests(&self, path: &str) -> Vec<Logged> {
        let st = self.state.lock().unwrap();
        st.log.iter().filter(|l| l.path == path).cloned().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_flag.store(true, Ordering::SeqCst);
        let (lock, cv) = &*self.stopped;
        *lock.lock().unwrap() = true;
        cv.notify_all();
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, stopped: &(Mutex<bool>, Condvar)) {
    let Some((path, range)) = read_head(&conn) else {
        return;
    };
    let mut out = conn;
    let (route, fault) = {
        let mut st = state.lock().unwrap();
        st.log.push(Logged {
            path: path.clone(),
            range: range.clone(),
        });
        match st.routes.get_mut(&path) {
            None => (None, None),
            Some(r) => {
                let fault = r.faults.pop_front();
                (Some((r.body.clone(), r.ranges, r.redirect.clone())), fault)
            }
        }
    };
    let Some((body, ranges, redirect)) = route else {
        let _ = respond(&mut out, "404 Not Found", &[], b"not found");
        return;
    };
    if let Some((status, to)) = redirect {
        let _ = respond(&mut out, &reason(status), &[("Location", to)], b"");
        return;
    }
    let (status, headers, start) = match (ranges, range_start(range.as_deref())) {
        (true, Some(n)) if n >= body.len() => {
            let cr = format!("bytes */{}", body.len());
            let _ = respond(
                &mut out,
                "416 Range Not Satisfiable",
                &[("Content-Range", cr)],
                b"",
            );
            return;
        }
        (true, Some(n)) => {
            let cr = format!("bytes {n}-{}/{}", body.len() - 1, body.len());
            ("206 Partial Content", vec![("Content-Range", cr)], n)
        }
        _ => ("200 OK", vec![], 0),
    };
    let body = &body[start..];
    match fault {
        None => {
            let _ = respond(&mut out, status, &headers, body);
        }
        Some(Fault::Status(code)) => {
            let retry = vec![("Retry-After", "0".to_string())];
            let _ = respond(&mut out, &reason(code), &retry, b"injected failure");
        }
        Some(Fault::Truncate(n)) => {
            let _ = head(&mut out, status, &headers, body.len());
            let _ = out.write_all(&body[..n.min(body.len())]);
        }
        Some(Fault::Stall(n)) => {
            let _ = head(&mut out, status, &headers, body.len());
            let _ = out.write_all(&body[..n.min(body.len())]);
            let _ = out.flush();
            let (lock, cv) = stopped;
            let guard = lock.lock().unwrap();
            let _unused = cv.wait_while(guard, |s| !*s).unwrap();
        }
        Some(Fault::Trickle(n, pause)) => {
            let _ = head(&mut out, status, &headers, body.len());
            let (lock, cv) = stopped;
            for piece in body.chunks(n.max(1)) {
                if out.write_all(piece).and_then(|_| out.flush()).is_err() {
                    return;
                }
                let guard = lock.lock().unwrap();
                let (guard, _) = cv.wait_timeout_while(guard, pause, |s| !*s).unwrap();
                if *guard {
                    return;
                }
            }
        }
    }
}

/// The request path and `Range` header; the head is bounded to 64 lines.
fn read_head(conn: &TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(conn.try_clone().ok()?).take(64 * 1024);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut range = None;
    for _ in 0..64 {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    Some((path, range))
}

fn range_start(range: Option<&str>) -> Option<usize> {
    range?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

fn reason(code: u16) -> String {
    let text = match code {
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    format!("{code} {text}")
}

fn head(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    len: usize,
) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    out.write_all(text.as_bytes())
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    head(out, status, headers, body.len())?;
    out.write_all(body)?;
    out.flush()
}
