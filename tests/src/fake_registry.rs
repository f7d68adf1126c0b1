//! A programmable HTTP server on loopback that plays a misbehaving registry: for each request a
//! handler decides to forward it to a real registry, answer with a given status and headers,
//! trickle the answer one byte at a time, say nothing at all, or send bytes that are not HTTP.
//! Every request is recorded (`METHOD /path`). One request per connection (`Connection: close`),
//! so each answer is read and judged on its own; the listener and every connection thread stop
//! when the server is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Pass the request to the upstream registry and its answer back.
    Forward,
    /// Forward, replacing `from` with `to` in the upstream answer's headers.
    ForwardRewriting { from: String, to: String },
    /// Answer with `status`, `headers` and `body`.
    Respond { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Answer with `status` and a `Content-Length` of `body`, then send the body one byte per
    /// `every`.
    TrickleBody { status: u16, body: Vec<u8>, every: Duration },
    /// Read the request, then say nothing until the client gives up (or the server stops).
    Silent,
    /// Answer with bytes that are not HTTP.
    Garbage(Vec<u8>),
}

impl Reply {
    /// A plain answer with a JSON body.
    pub fn status(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }
}

type Handler = dyn Fn(&str, &str) -> Reply + Send + Sync;

pub struct FakeRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeRegistry {
    /// A server on a free loopback port; `handler(method, path)` decides each request. `upstream`
    /// (`127.0.0.1:PORT`) is where `Forward` goes.
    pub fn start(upstream: Option<String>, handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (stop, requests) = (stop.clone(), requests.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let (stop, requests, handler, upstream) =
                                (stop.clone(), requests.clone(), handler.clone(), upstream.clone());
                            thread::spawn(move || serve(conn, &*handler, upstream.as_deref(), &requests, &stop));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        FakeRegistry { port, stop, requests }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request: its head (through the blank line) and its body (`Content-Length` bytes).
fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn serve(
    mut conn: TcpStream,
    handler: &Handler,
    upstream: Option<&str>,
    requests: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    // A TLS ClientHello (ko trying HTTPS) gets what the handler says for "TLS", or the
    // connection closed, as a plain HTTP server would close it, at once.
    let mut first = [0u8; 1];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    if conn.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        requests.lock().unwrap().push("TLS".into());
        if let Reply::Garbage(bytes) = handler("TLS", "") {
            let _ = conn.write_all(&bytes);
        }
        let _ = conn.shutdown(Shutdown::Both);
        return;
    }
    let Some((head, body)) = read_request(&mut conn) else { return };
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    requests.lock().unwrap().push(format!("{method} {path}"));
    let reply = handler(method, path);
    let _ = match reply {
        Reply::Forward => forward(&mut conn, &head, &body, upstream, None),
        Reply::ForwardRewriting { from, to } => forward(&mut conn, &head, &body, upstream, Some((&from, &to))),
        Reply::Respond { status, headers, body } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            conn.write_all(out.as_bytes()).and_then(|()| conn.write_all(&body))
        }
        Reply::TrickleBody { status, body, every } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reason(status),
                body.len()
            );
            let mut result = conn.write_all(head.as_bytes());
            for b in body {
                if result.is_err() || !wait(every, stop) {
                    break;
                }
                result = conn.write_all(&[b]);
            }
            result
        }
        Reply::Silent => {
            // Until the client closes (a read returns 0 or fails) or the server stops.
            let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
            let mut sink = [0u8; 1024];
            while !stop.load(Ordering::SeqCst) {
                match conn.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            Ok(())
        }
        Reply::Garbage(bytes) => conn.write_all(&bytes),
    };
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

/// Sleeps `d` unless the server stops first; whether it slept the whole time.
fn wait(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Sends the request to `upstream` with `Connection: close` and copies the whole answer back,
/// with `rewrite` applied to its head.
fn forward(
    conn: &mut TcpStream,
    head: &str,
    body: &[u8],
    upstream: Option<&str>,
    rewrite: Option<(&str, &str)>,
) -> std::io::Result<()> {
    let upstream = upstream.expect("a forwarding fake registry needs an upstream");
    let mut server = TcpStream::connect(upstream)?;
    let mut lines: Vec<&str> =
        head.trim_end().split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    lines.push("Connection: close");
    server.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    server.write_all(body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    if let Some((from, to)) = rewrite
        && let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n")
    {
        let head = String::from_utf8_lossy(&answer[..end]).replace(from, to);
        let mut rewritten = head.into_bytes();
        rewritten.extend_from_slice(&answer[end..]);
        answer = rewritten;
    }
    conn.write_all(&answer)
}
