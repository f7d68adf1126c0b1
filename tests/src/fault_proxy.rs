//! A fault-injecting TCP proxy on loopback, between ko and a registry. Per connection it looks at
//! the first bytes (the first request) and may: reset the connection (every Nth one), answer
//! `503 Service Unavailable` (the first K HTTP requests, or all of them), or pass it through.
//! On passed-through connections it counts the bytes ko sends and can stall once mid-upload
//! (after T bytes in all: stop forwarding for a while, then reset), or reset any connection
//! that tries to send more than a limit (uploads that can never succeed). Every fault injected
//! is counted. Bounded: each connection thread ends when either side closes; the listener stops
//! on drop.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Which faults to inject.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Reset every Nth connection (1-based: 3 → connections 3, 6, 9, …) after reading its first bytes.
    pub reset_every: Option<usize>,
    /// Answer 503 (with `Retry-After: 1`) to the first this-many HTTP requests.
    pub first_503s: usize,
    /// Answer 503 to every HTTP request.
    pub always_503: bool,
    /// Once ko has sent this many bytes through the proxy in all, stall that connection for
    /// `stall_for`, then reset it.
    pub stall_after_bytes: Option<u64>,
    pub stall_for: Duration,
    /// Reset any connection on which ko sends more than this many bytes.
    pub max_bytes_per_connection: Option<u64>,
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicUsize,
    pub resets: AtomicUsize,
    pub http_503s: AtomicUsize,
    pub stalls: AtomicUsize,
    pub upload_resets: AtomicUsize,
    pub bytes_up: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub connections: usize,
    pub resets: usize,
    pub http_503s: usize,
    pub stalls: usize,
    pub upload_resets: usize,
}

impl Injected {
    pub fn total(&self) -> usize {
        self.resets + self.http_503s + self.stalls + self.upload_resets
    }
}

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} faults over {} connections: {} connection resets, {} HTTP 503s, {} mid-upload stalls, {} upload resets",
            self.total(),
            self.connections,
            self.resets,
            self.http_503s,
            self.stalls,
            self.upload_resets
        )
    }
}

pub struct FaultProxy {
    port: u16,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let faults = Arc::new(faults);
        {
            let (counters, stop) = (counters.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let n = counters.connections.fetch_add(1, Ordering::SeqCst) + 1;
                            let (counters, faults, upstream, stalled) =
                                (counters.clone(), faults.clone(), upstream.clone(), stalled.clone());
                            thread::spawn(move || handle(conn, n, &upstream, &faults, &counters, &stalled));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        FaultProxy { port, counters, stop }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn injected(&self) -> Injected {
        let c = &self.counters;
        Injected {
            connections: c.connections.load(Ordering::SeqCst),
            resets: c.resets.load(Ordering::SeqCst),
            http_503s: c.http_503s.load(Ordering::SeqCst),
            stalls: c.stalls.load(Ordering::SeqCst),
            upload_resets: c.upload_resets.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn reset(conn: &TcpStream) {
    let _ = socket2::SockRef::from(conn).set_linger(Some(Duration::ZERO));
    let _ = conn.shutdown(Shutdown::Both);
}

/// Reads what the client sends first: up to the end of the request head, or what arrives
/// within a short time (a TLS ClientHello has no head).
fn read_first(conn: &mut TcpStream) -> Vec<u8> {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && buf.len() < 64 * 1024 {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") || !looks_like_http(&buf) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = conn.set_read_timeout(None);
    buf
}

fn looks_like_http(buf: &[u8]) -> bool {
    buf.first().is_some_and(|b| b.is_ascii_uppercase())
}

fn handle(mut client: TcpStream, n: usize, upstream: &str, faults: &Faults, counters: &Counters, stalled: &AtomicBool) {
    let first = read_first(&mut client);
    if first.is_empty() {
        return;
    }
    if let Some(every) = faults.reset_every
        && n.is_multiple_of(every)
    {
        counters.resets.fetch_add(1, Ordering::SeqCst);
        reset(&client);
        return;
    }
    if looks_like_http(&first) {
        let budget_left = faults.always_503 || {
            let used = counters.http_503s.load(Ordering::SeqCst);
            used < faults.first_503s
        };
        if budget_left {
            counters.http_503s.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"injected by the fault proxy"}]}"#;
            let _ = write!(
                client,
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.flush();
            let _ = client.shutdown(Shutdown::Write);
            // Drain what the client still sends (a request body), briefly, then close.
            let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
            let mut sink = [0u8; 65536];
            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
            return;
        }
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        reset(&client);
        return;
    };
    if server.write_all(&first).is_err() {
        return;
    }
    counters.bytes_up.fetch_add(first.len() as u64, Ordering::SeqCst);

    // Downstream: server → client, plainly.
    let (mut s2, mut c2) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let down = thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(Shutdown::Write);
    });

    // Upstream: client → server, counted, with the stall and the per-connection limit.
    let mut sent_here = first.len() as u64;
    let mut buf = [0u8; 16384];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        sent_here += n as u64;
        let total = counters.bytes_up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if let Some(limit) = faults.max_bytes_per_connection
            && sent_here > limit
        {
            counters.upload_resets.fetch_add(1, Ordering::SeqCst);
            reset(&client);
            reset(&server);
            break;
        }
        if let Some(t) = faults.stall_after_bytes
            && total >= t
            && !stalled.swap(true, Ordering::SeqCst)
        {
            counters.stalls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(faults.stall_for);
            reset(&client);
            reset(&server);
            break;
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
    let _ = down.join();
}
