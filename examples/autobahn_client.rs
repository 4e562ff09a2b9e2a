//! The Autobahn TestSuite client loop over this crate's own WebSocket layer
//! (`rtm_client::ws`), not over a stock WebSocket library. `ws` is public for
//! this example, the tests and the fuzz targets, but hidden from the API docs
//! and not part of the API promise. Needs no cargo feature.
//!
//! Start the fuzzing server (see docs/conformance.md), then:
//!
//! ```text
//! cargo run --release --example autobahn_client [ws://127.0.0.1:9001]
//! ```
//!
//! It asks the server for the number of cases, runs each one (echoing every
//! text and binary message, answering pings, answering closes) and finally
//! asks the server to write its reports.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use rtm_client::ws::frame::{encode_frame, FrameParser, Opcode, Role};
use rtm_client::ws::handshake::client_handshake;
use rtm_client::ws::{Incoming, MaskRng, WsError, WsReader};

const AGENT: &str = "rtm-client";
/// Cases 9.x send messages of up to 16 MiB.
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// One open WebSocket connection: a reader over one handle of the socket and
/// a writer over the other.
struct Conn {
    reader: WsReader<TcpStream>,
    writer: TcpStream,
    rng: MaskRng,
    out: Vec<u8>,
}

impl Conn {
    fn open(host: &str, path: &str) -> Result<Conn, WsError> {
        let mut tcp = TcpStream::connect(host)?;
        tcp.set_nodelay(true)?;
        let leftover = client_handshake(&mut tcp, host, path)?;
        let writer = tcp.try_clone()?;
        let parser = FrameParser::new(Role::Client, MAX_PAYLOAD, false);
        Ok(Conn {
            reader: WsReader::new(tcp, &leftover, parser),
            writer,
            rng: MaskRng::new(),
            out: Vec::new(),
        })
    }

    fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        self.out.clear();
        let mask = self.rng.mask();
        encode_frame(&mut self.out, opcode, true, payload, Some(mask), false);
        self.writer.write_all(&self.out)?;
        // Keep no 16 MiB buffer around after a large echo.
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::new();
        }
        Ok(())
    }

    fn send_close(&mut self, code: Option<u16>) -> io::Result<()> {
        let payload = code.map(u16::to_be_bytes);
        self.send(Opcode::Close, payload.as_ref().map_or(&[][..], |p| &p[..]))
    }

    /// After our close frame went out: the server closes TCP first (RFC 6455
    /// section 7.1.1), so wait for that, bounded, then close our side.
    fn finish(mut self) {
        let _ = self.writer.set_read_timeout(Some(Duration::from_secs(2)));
        loop {
            match self.reader.read() {
                Ok(Incoming::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = self.writer.shutdown(Shutdown::Both);
    }

    /// Echoes until the conversation ends. Returns the text messages it saw
    /// (only used for `/getCaseCount`).
    fn echo(mut self, echo: bool) -> Vec<String> {
        let mut texts = Vec::new();
        loop {
            let res = match self.reader.read() {
                Ok(Incoming::Text(t)) => {
                    let r = if echo {
                        self.send(Opcode::Text, t.as_bytes())
                    } else {
                        Ok(())
                    };
                    texts.push(t);
                    r
                }
                Ok(Incoming::Binary(b)) => {
                    if echo {
                        self.send(Opcode::Binary, &b)
                    } else {
                        Ok(())
                    }
                }
                Ok(Incoming::Ping(p)) => self.send(Opcode::Pong, &p),
                Ok(Incoming::Pong(_)) => Ok(()),
                Ok(Incoming::Close(c)) => {
                    let _ = self.send_close(c.map(|(code, _)| code));
                    self.finish();
                    return texts;
                }
                Err(WsError::Eof { .. }) | Err(WsError::Io(_)) => {
                    let _ = self.writer.shutdown(Shutdown::Both);
                    return texts;
                }
                Err(e) => {
                    let _ = self.send_close(e.close_code());
                    self.finish();
                    return texts;
                }
            };
            if res.is_err() {
                let _ = self.writer.shutdown(Shutdown::Both);
                return texts;
            }
        }
    }
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let host = url
        .strip_prefix("ws://")
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_owned();

    let count: u32 = match Conn::open(&host, "/getCaseCount") {
        Ok(c) => c
            .echo(false)
            .first()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| fail("no case count from the server")),
        Err(e) => fail(&format!("cannot reach {url}: {e}")),
    };
    eprintln!("{count} cases");

    for case in 1..=count {
        let path = format!("/runCase?case={case}&agent={AGENT}");
        match Conn::open(&host, &path) {
            Ok(c) => {
                c.echo(true);
            }
            Err(e) => eprintln!("case {case}: {e}"),
        }
        if case % 50 == 0 {
            eprintln!("{case}/{count}");
        }
    }

    match Conn::open(&host, &format!("/updateReports?agent={AGENT}")) {
        Ok(c) => {
            c.echo(false);
        }
        Err(e) => fail(&format!("updateReports: {e}")),
    }
    eprintln!("done");
}

fn fail(msg: &str) -> ! {
    eprintln!("autobahn_client: {msg}");
    std::process::exit(1);
}
