//! Real HTTP/1 for the API tests, over hyper's client: a GET with its status, headers and
//! body, and a Server-Sent Events reader. Every wait is bounded. The API bench
//! (benches/api.rs) includes it too.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;

const BOUND: Duration = Duration::from_secs(20);

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(addr: SocketAddr, path: &str, token: Option<&str>) -> hyper::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header("host", addr.to_string());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    sender
        .send_request(req.body(Empty::<Bytes>::new()).expect("request"))
        .await
        .expect("response")
}

/// `GET path`, the whole body read.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    get_with(addr, path, None).await
}

/// `GET path` with `Authorization: Bearer <token>` when one is given.
pub async fn get_with(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    let exchange = async {
        let resp = send(addr, path, token).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(BOUND, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no answer within {BOUND:?}"))
}

/// An open event stream.
pub struct Sse {
    pub status: u16,
    pub content_type: String,
    body: Incoming,
    buf: String,
}

impl Sse {
    pub async fn open(addr: SocketAddr, path: &str) -> Sse {
        let resp = tokio::time::timeout(BOUND, send(addr, path, None))
            .await
            .expect("the stream opens");
        Sse {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event with a name: (event, data). Comments (keep-alives) are skipped.
    pub async fn next(&mut self) -> (String, String) {
        let wait = async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let (mut event, mut data) = (String::new(), Vec::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                        }
                    }
                    if !event.is_empty() {
                        return (event, data.join("\n"));
                    }
                    continue;
                }
                let frame = self
                    .body
                    .frame()
                    .await
                    .expect("the stream went on")
                    .expect("a frame");
                if let Ok(bytes) = frame.into_data() {
                    self.buf.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        };
        tokio::time::timeout(BOUND, wait)
            .await
            .expect("an event within the bound")
    }
}

/// A port that was free a moment ago (for a config the client reads too).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Polls `GET path` (bounded) until `done` holds for the JSON body; returns it.
pub async fn until_json(
    addr: SocketAddr,
    path: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let wait = async {
        loop {
            let r = get(addr, path).await;
            if r.status == 200 {
                let v = r.json();
                if done(&v) {
                    return v;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
}
