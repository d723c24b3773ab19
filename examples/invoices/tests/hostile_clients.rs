//! `serve` under hostile clients, as an attacker would try it: the example binary runs with
//! its open-file limit lowered to 256 (`prlimit`), and the test floods it with more
//! half-open connections than it has descriptors, trickles a request head a byte at a
//! time, and keeps a connection alive and silent. A new client must still be served
//! within a few seconds of the header timeout, the server must never stop accepting, and
//! idle and slow connections must be closed.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roundtrip_test::{ChildGuard, TempDir};

/// The header timeout the server runs with, in seconds.
const HEADER_TIMEOUT: u64 = 2;
/// The idle timeout the server runs with, in seconds.
const IDLE_TIMEOUT: u64 = 1;
/// The open-file limit the server runs with; the default connection cap is 3/4 of it.
const FILE_LIMIT: usize = 256;
/// More half-open connections than the server has file descriptors.
const FLOOD: usize = 300;
/// How long, past a timeout, the test waits for its effect (the machine may be busy).
const SLACK: Duration = Duration::from_secs(6);

/// The server, killed however the test ends, with what it logged.
struct Server {
    _child: ChildGuard,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(dir: &TempDir) -> Server {
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={FILE_LIMIT}:{FILE_LIMIT}"))
            .arg(env!("CARGO_BIN_EXE_example-invoices"))
            .args(["serve", "--port", "0"])
            .args(["--header-timeout", &HEADER_TIMEOUT.to_string()])
            .args(["--idle-timeout", &IDLE_TIMEOUT.to_string()])
            .current_dir(dir.path())
            .env("TMPDIR", dir.path())
            .env("RUST_LOG", "info")
            .env_remove("ROUNDTRIP_DATABASE_URL")
            .env_remove("ROUNDTRIP_MAX_CONNECTIONS")
            .env_remove("ROUNDTRIP_HEADER_TIMEOUT")
            .env_remove("ROUNDTRIP_IDLE_TIMEOUT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prlimit (util-linux) runs the example binary");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(addr) = rest.split_whitespace().next()
                    && let Ok(addr) = addr.parse()
                {
                    let _ = tx.send(addr);
                }
                if let Ok(mut log) = lines.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => panic!(
                "the server did not say where it listens within a minute:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            ),
        };
        Server {
            _child: ChildGuard(child),
            addr,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Reads until the server closes the connection or `within` passes; true if it closed.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // Reset or aborted: closed as well.
            Err(_) => return true,
        }
    }
}

/// Sends one complete request on a new connection and reads the answer's status line.
fn get(addr: SocketAddr, path: &str, within: Duration) -> (TcpStream, String) {
    let mut stream = TcpStream::connect_timeout(&addr, within).expect("the server accepts");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .expect("the request is sent");
    stream
        .set_read_timeout(Some(within))
        .expect("a read timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!("the server closed the connection before answering {path}"),
            Err(e) => panic!("no answer to {path} within {within:?}: {e}"),
        }
    }
    (stream, String::from_utf8_lossy(&head).trim_end().to_owned())
}

#[test]
fn a_flood_of_half_open_connections_does_not_lock_out_a_new_client() {
    let dir = TempDir::new();
    let server = Server::start(&dir);

    // Each sends the start of a request head and nothing more.
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut stream = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connection {i} of the flood: {e}"));
        stream
            .write_all(b"GET / HTTP/1.1\r\n")
            .unwrap_or_else(|e| panic!("connection {i} of the flood: {e}"));
        flood.push(stream);
    }

    let started = Instant::now();
    let within = Duration::from_secs(HEADER_TIMEOUT) + SLACK;
    let (mut client, status) = get(server.addr, "/openapi.json", within);
    assert_eq!(status, "HTTP/1.1 200 OK", "{}", server.log());
    assert!(
        started.elapsed() <= within,
        "served after {:?}",
        started.elapsed()
    );

    // The half-open connections were closed, the first of them at the latest by now.
    assert!(
        closed_within(&mut flood[0], SLACK),
        "a half-open connection is still open after {:?}",
        started.elapsed()
    );

    // The served client's kept-alive connection is closed once idle.
    assert!(
        closed_within(&mut client, Duration::from_secs(IDLE_TIMEOUT) + SLACK),
        "an idle kept-alive connection stayed open"
    );

    let log = server.log();
    assert!(
        !log.contains("Too many open files") && !log.contains("accept error"),
        "the server ran out of file descriptors:\n{log}"
    );
}

#[test]
fn a_request_head_sent_a_byte_at_a_time_is_cut_at_the_header_timeout() {
    let dir = TempDir::new();
    let server = Server::start(&dir);
    let mut slow = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
        .expect("the server accepts");
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: ")
        .expect("the start of the head is sent");
    // A byte every 200 ms: never idle for the idle timeout, never a complete head.
    let limit = Duration::from_secs(HEADER_TIMEOUT) + SLACK;
    let mut cut = false;
    for _ in 0..200 {
        if started.elapsed() > limit {
            break;
        }
        if slow.write_all(b"a").is_err() {
            cut = true;
            break;
        }
        if closed_within(&mut slow, Duration::from_millis(200)) {
            cut = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(cut, "a trickled request head was still read after {took:?}");
    assert!(
        took >= Duration::from_millis(HEADER_TIMEOUT * 1000 - 300),
        "cut after {took:?}: a connection that keeps sending is not idle, only too slow"
    );

    // The server goes on serving.
    let (_, status) = get(server.addr, "/openapi.json", limit);
    assert_eq!(status, "HTTP/1.1 200 OK");
}
