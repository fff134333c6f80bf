//! A raw TCP server that breaks HTTP in ways a framework won't let a handler: never answering,
//! trickling, closing mid-body, lying about Content-Length, speaking garbage. Each connection is
//! a thread that ends by itself within 30 s.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

const FEED: &str = "<rss version=\"2.0\"><channel><title>t</title><item><title>ok</title><guid>1</guid></item></channel></rss>";

pub struct EvilServer {
    pub addr: SocketAddr,
}

impl EvilServer {
    pub fn start() -> EvilServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || serve(stream));
            }
        });
        EvilServer { addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

fn read_head(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn serve(mut s: TcpStream) {
    let Some(head) = read_head(&mut s) else {
        return;
    };
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n";
    let _ = match path.as_str() {
        // Accepts, reads the request, never answers.
        "/never" => {
            thread::sleep(Duration::from_secs(30));
            Ok(())
        }
        // One byte every half second, forever (30 s).
        "/trickle" => (|| {
            s.write_all(format!("{ok}\r\n").as_bytes())?;
            for b in FEED.bytes().cycle().take(60) {
                s.write_all(&[b])?;
                thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        })(),
        // Promises 5000 bytes, sends 40, hangs up.
        "/close-mid-body" => {
            s.write_all(format!("{ok}Content-Length: 5000\r\n\r\n{}", &FEED[..40]).as_bytes())
        }
        // Says 20 bytes, sends the whole feed: the client must not read past 20.
        "/short-length" => s.write_all(format!("{ok}Content-Length: 20\r\n\r\n{FEED}").as_bytes()),
        "/empty" => s.write_all(format!("{ok}Content-Length: 0\r\n\r\n").as_bytes()),
        "/garbage" => s.write_all(b"SPEAKING NONSENSE\r\n\r\n\x00\x01\x02"),
        // Headers that never end.
        "/endless-headers" => (|| {
            s.write_all(b"HTTP/1.1 200 OK\r\n")?;
            for i in 0..60 {
                s.write_all(format!("X-Filler-{i}: {}\r\n", "a".repeat(100)).as_bytes())?;
                thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        })(),
        "/ok" => {
            s.write_all(format!("{ok}Content-Length: {}\r\n\r\n{FEED}", FEED.len()).as_bytes())
        }
        _ => {
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
    };
    let _ = s.flush();
}
