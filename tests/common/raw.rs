//! A scripted FPNN-over-WebSocket server, built from the crate's public
//! `ws` and `fpnn::packet` modules, for what the gate does not expose: the
//! client's answers to pushes, and exact packet-level timing.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rmpv::Value;
use rtm_client::fpnn::packet::{self, Kind, Packet};
use rtm_client::ws::frame::{encode_frame, FrameParser, Opcode, Role};
use rtm_client::ws::{handshake, Incoming, WsReader};

use super::WAIT;

pub struct RawServer {
    listener: TcpListener,
}

impl RawServer {
    pub fn bind() -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        RawServer { listener }
    }

    pub fn endpoint(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Options for a client of this server: its endpoint, pid [`super::PID`].
    pub fn options(&self) -> rtm_client::RtmOptions {
        rtm_client::RtmOptions {
            endpoint: Some(self.endpoint()),
            pid: super::PID,
            ..Default::default()
        }
    }

    /// Accepts one connection and completes the WebSocket upgrade.
    pub fn accept(&self) -> RawConn {
        RawConn::upgrade(self.accept_tcp())
    }

    /// Accepts one TCP connection and says nothing yet: the WebSocket
    /// upgrade is the caller's ([`RawConn::upgrade`]), when it chooses.
    pub fn accept_tcp(&self) -> TcpStream {
        let deadline = Instant::now() + WAIT;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no connection to the raw server");
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
    }
}

impl RawConn {
    /// Completes the WebSocket upgrade of a connection accepted by
    /// [`RawServer::accept_tcp`].
    pub fn upgrade(stream: TcpStream) -> RawConn {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut s = stream.try_clone().unwrap();
        let up = handshake::server_handshake(&mut s).expect("handshake");
        let parser = FrameParser::new(Role::Server, packet::DEFAULT_MAX_PACKET, false);
        RawConn {
            reader: WsReader::new(s, &up.leftover, parser),
            stream,
            seq: 0,
        }
    }
}

pub struct RawConn {
    stream: TcpStream,
    reader: WsReader<TcpStream>,
    seq: u32,
}

impl RawConn {
    /// The next FPNN packet from the client (WebSocket control frames are
    /// skipped); fails the test after [`WAIT`].
    pub fn read(&mut self) -> Packet {
        loop {
            match self.reader.read().expect("read from the client") {
                Incoming::Binary(d) => {
                    return Packet::decode(&d, packet::DEFAULT_MAX_PACKET).expect("packet")
                }
                Incoming::Close(_) => panic!("the client closed the connection"),
                _ => continue,
            }
        }
    }

    /// The next packet's payload decoded.
    pub fn payload(p: &Packet) -> Value {
        packet::decode_payload(&p.payload).expect("msgpack payload")
    }

    fn frame(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Binary, true, bytes, None, false);
        out
    }

    pub fn answer_bytes(&mut self, seq: u32, payload: &Value) -> Vec<u8> {
        let mut body = Vec::new();
        packet::encode_payload(payload, &mut body);
        let mut p = Vec::new();
        packet::encode_answer(&mut p, seq, 0, &body);
        self.frame(&p)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the client");
    }

    /// Sends a quest; returns its seq (0 for oneway).
    pub fn quest(&mut self, method: &str, payload: &Value, twoway: bool) -> u32 {
        let seq = if twoway {
            self.seq += 1;
            self.seq
        } else {
            0
        };
        let mut body = Vec::new();
        packet::encode_payload(payload, &mut body);
        let mut p = Vec::new();
        packet::encode_quest(&mut p, twoway, seq, method, &body);
        let f = self.frame(&p);
        self.write(&f);
        seq
    }

    /// Reads the client's `auth` quest and answers `{ok: true}`; with `then`
    /// the given bytes go out in the same write as the answer.
    pub fn accept_auth(&mut self, then: &[u8]) -> Value {
        let p = self.read();
        assert_eq!((p.kind, p.method.as_str()), (Kind::Twoway, "auth"));
        let mut out = self.answer_bytes(
            p.seq,
            &Value::Map(vec![(Value::from("ok"), Value::from(true))]),
        );
        out.extend_from_slice(then);
        self.write(&out);
        Self::payload(&p)
    }

    /// Drops the TCP connection abruptly.
    pub fn kill(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
