//! What the service tries to fetch from the internet. The binary's HTTPS clients honour
//! `HTTPS_PROXY`, so pointing it here makes every outbound request visible: this proxy
//! records each `CONNECT host:port` and refuses it (so a fetch fails as with no egress).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

pub(crate) struct Egress {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Egress {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        return;
                    }
                    // Read the rest of the request head.
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    record.lock().expect("lock").push(first.trim().to_owned());
                    let _ =
                        (&stream).write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
                });
            }
        });
        Self { addr, seen }
    }

    /// For `HTTPS_PROXY`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request line seen, e.g. `CONNECT sns.us-east-1.amazonaws.com:443 HTTP/1.1`.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}
