//! The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 section 4).
//!
//! FPNN servers match header names case-sensitively, so the client request is
//! spelled exactly as `docs/protocol.md` (section "WebSocket handshake") gives
//! it. The server side is what the local gate uses; like an FPNN server it
//! refuses other spellings.
//!
//! The key and accept hash are computed here (SHA-1 from `sha1_smol`, a
//! dependency-free crate, and a small base64 encoder) rather than by a
//! WebSocket library: the rest of the layer is the crate's own anyway (see
//! `docs/architecture.md`, "Why the WebSocket layer is the crate's own").

use std::io::{Read, Write};

use super::{MaskRng, WsError};

/// The GUID RFC 6455 section 1.3 appends to the key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest HTTP head either side accepts.
const MAX_HEAD: usize = 16 * 1024;

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455
/// section 4.1), from the same unpredictable source as the frame masks.
pub fn generate_key(rng: &mut MaskRng) -> String {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    nonce[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    base64(&nonce)
}

/// The `Sec-WebSocket-Accept` value for a key: base64 of the SHA-1 of the key
/// followed by the RFC 6455 GUID (section 4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    base64(&sha.digest().bytes())
}

/// Standard base64 with padding (RFC 4648 section 4): all a handshake needs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The client's upgrade request, byte for byte.
pub fn client_request(host_header: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Sends the upgrade request and checks the answer. Returns the bytes read
/// past the end of the HTTP head: they belong to the first frame.
pub fn client_handshake<S: Read + Write>(
    stream: &mut S,
    host_header: &str,
    path: &str,
) -> Result<Vec<u8>, WsError> {
    let key = generate_key(&mut MaskRng::new());
    stream.write_all(client_request(host_header, path, &key).as_bytes())?;
    stream.flush()?;
    let (head, leftover) = read_head(stream)?;
    let head = std::str::from_utf8(&head).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") || code != "101" {
        return Err(bad(&format!("server answered {status:?}")));
    }
    let headers: Vec<(&str, &str)> = lines.filter_map(split_header).collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    if !get("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(bad("missing Upgrade: websocket"));
    }
    if !get("Connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(bad("missing Connection: Upgrade"));
    }
    let expected = accept_key(key.as_bytes());
    if get("Sec-WebSocket-Accept") != Some(expected.as_str()) {
        return Err(bad("wrong Sec-WebSocket-Accept"));
    }
    if get("Sec-WebSocket-Extensions").is_some() {
        return Err(bad("server chose an extension the client did not offer"));
    }
    // RFC 6455 section 4.1: a subprotocol the client did not offer (it
    // offers none) fails the connection.
    if get("Sec-WebSocket-Protocol").is_some() {
        return Err(bad("server chose a subprotocol the client did not offer"));
    }
    Ok(leftover)
}

/// What the server side learned from a successful upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The request path.
    pub path: String,
    /// Bytes read past the HTTP head: the start of the first frame.
    pub leftover: Vec<u8>,
}

/// What [`server_handshake_or_serve`] did with a request.
#[cfg(feature = "gate")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// The connection is a WebSocket now.
    Upgrade(Upgrade),
    /// A plain GET was answered (200 or 404); the connection is done.
    Served,
}

/// Reads an upgrade request the way an FPNN server does and answers it: the
/// path must be `/service/<segment>` (otherwise the connection is dropped
/// with no answer) and the header names spelled exactly (otherwise HTTP 500).
pub fn server_handshake<S: Read + Write>(stream: &mut S) -> Result<Upgrade, WsError> {
    let (head, leftover) = read_get(stream)?;
    upgrade(stream, &head, leftover)
}

/// [`server_handshake`], except that a GET whose path `serve` claims is answered as
/// plain HTTP instead: `Some(Some(bytes))` with 200 and the bytes, `Some(None)` with
/// 404, and either closes the exchange (`Connection: close`). `serve` is asked before
/// the upgrade's rules apply, and `None` leaves the request to them. The local gate's
/// file proxy serves its file URLs so (docs/gate.md, "Files").
#[cfg(feature = "gate")]
pub(crate) fn server_handshake_or_serve<S: Read + Write, B: AsRef<[u8]>>(
    stream: &mut S,
    serve: impl FnOnce(&str) -> Option<Option<B>>,
) -> Result<Accepted, WsError> {
    let (head, leftover) = read_get(stream)?;
    let Some(found) = serve(request_line(&head).1) else {
        return upgrade(stream, &head, leftover).map(Accepted::Upgrade);
    };
    let (status, body) = match &found {
        Some(bytes) => ("200 OK", bytes.as_ref()),
        None => ("404 Not Found", &b""[..]),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(answer.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    Ok(Accepted::Served)
}

/// Reads a request's head, which must be UTF-8 and a GET of HTTP/1.x: the head (without
/// its blank line) and the bytes read past it.
fn read_get<S: Read>(stream: &mut S) -> Result<(String, Vec<u8>), WsError> {
    let (head, leftover) = read_head(stream)?;
    let head = String::from_utf8(head).map_err(|_| bad("request head is not UTF-8"))?;
    let (method, _, version) = request_line(&head);
    if method != "GET" || !version.starts_with("HTTP/1.") {
        let line = first_line(&head);
        return Err(bad(&format!("not a GET request: {line:?}")));
    }
    Ok((head, leftover))
}

/// A head's first line: a request's method, path and version.
fn first_line(head: &str) -> &str {
    head.split("\r\n").next().unwrap_or("")
}

/// The method, path and version of a request head's first line ("" for what is missing).
fn request_line(head: &str) -> (&str, &str, &str) {
    let mut parts = first_line(head).split(' ');
    let mut part = || parts.next().unwrap_or("");
    (part(), part(), part())
}

/// Answers the GET whose head [`read_get`] read as an upgrade, by the rules of
/// [`server_handshake`].
fn upgrade<S: Write>(stream: &mut S, head: &str, leftover: Vec<u8>) -> Result<Upgrade, WsError> {
    let path = request_line(head).1;
    let segment = path.strip_prefix("/service/").unwrap_or("");
    if segment.is_empty() || segment.contains('/') {
        return Err(bad(&format!("path {path:?} is not /service/<name>")));
    }
    let headers: Vec<(&str, &str)> = head
        .split("\r\n")
        .skip(1)
        .filter_map(split_header)
        .collect();
    let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let ok = get("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && get("Connection").is_some_and(|v| v.contains("Upgrade"))
        && get("Sec-WebSocket-Version") == Some("13");
    let key = get("Sec-WebSocket-Key").filter(|_| ok);
    let Some(key) = key else {
        let _ =
            stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
        return Err(bad("missing or misspelled upgrade headers"));
    };
    let accept = accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes())?;
    stream.flush()?;
    Ok(Upgrade {
        path: path.to_owned(),
        leftover,
    })
}

fn bad(s: &str) -> WsError {
    WsError::Handshake(s.to_owned())
}

fn split_header(line: &str) -> Option<(&str, &str)> {
    let (n, v) = line.split_once(':')?;
    Some((n.trim(), v.trim()))
}

/// Reads up to the blank line that ends an HTTP head. Returns the head (without
/// the blank line) and whatever came after it.
fn read_head<S: Read>(stream: &mut S) -> Result<(Vec<u8>, Vec<u8>), WsError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(WsError::Eof { mid_frame: true }),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(WsError::Io(e)),
        };
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[scan_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = scan_from + pos;
            let leftover = buf[end + 4..].to_vec();
            buf.truncate(end);
            return Ok((buf, leftover));
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("HTTP head too long"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory peer: reads come from `input`, writes go to `output`.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn accept_key_matches_the_rfc_6455_example_and_others() {
        // RFC 6455 section 1.3, then the example on the Wikipedia page.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            accept_key(b"x3JJHMbDL1EzLkh9GBhXDw=="),
            "HSmrc0sMlYUkAGmm5OPpG2HaGWk="
        );
    }

    #[test]
    fn generated_keys_are_16_random_bytes_in_base64() {
        let mut rng = MaskRng::new();
        let (a, b) = (generate_key(&mut rng), generate_key(&mut rng));
        for k in [&a, &b] {
            assert_eq!(k.len(), 24, "{k}");
            assert!(k.ends_with("==") && !k[..22].contains('='), "{k}");
            assert!(k[..22]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/'));
        }
        assert_ne!(a, b);
    }

    #[test]
    fn client_request_uses_the_exact_fpnn_spelling() {
        let r = client_request("h:1", "/service/websocket", "KEY");
        for line in [
            "GET /service/websocket HTTP/1.1\r\n",
            "\r\nUpgrade: websocket\r\n",
            "\r\nConnection: Upgrade\r\n",
            "\r\nSec-WebSocket-Key: KEY\r\n",
            "\r\nSec-WebSocket-Version: 13\r\n",
        ] {
            assert!(r.contains(line), "{line:?} missing from {r:?}");
        }
        assert!(r.ends_with("\r\n\r\n"));
    }

    #[test]
    fn server_accepts_the_client_request_and_keeps_leftover_bytes() {
        let mut input =
            client_request("h:1", "/service/websocket", "dGhlIHNhbXBsZSBub25jZQ==").into_bytes();
        input.extend_from_slice(&[0x82, 0x80]);
        let mut d = Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        };
        let up = server_handshake(&mut d).unwrap();
        assert_eq!(up.path, "/service/websocket");
        assert_eq!(up.leftover, vec![0x82, 0x80]);
        let out = String::from_utf8(d.output).unwrap();
        assert!(out.starts_with("HTTP/1.1 101"));
        assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn server_refuses_lower_case_headers_with_500_and_bad_paths_silently() {
        let req = client_request("h", "/service/x", "k").replace("Connection:", "connection:");
        let mut d = Duplex {
            input: Cursor::new(req.into_bytes()),
            output: Vec::new(),
        };
        assert!(server_handshake(&mut d).is_err());
        assert!(d.output.starts_with(b"HTTP/1.1 500"));
        let mut d = Duplex {
            input: Cursor::new(client_request("h", "/other", "k").into_bytes()),
            output: Vec::new(),
        };
        assert!(server_handshake(&mut d).is_err());
        assert!(d.output.is_empty());
    }

    #[test]
    #[cfg(feature = "gate")]
    fn a_get_of_a_path_serve_claims_is_answered_as_plain_http_and_others_upgrade() {
        let serve = |path: &str| {
            path.strip_prefix("/file/")
                .map(|n| (n == "1").then(|| b"abc".to_vec()))
        };
        let get = |path: &str| {
            let mut d = Duplex {
                input: Cursor::new(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes()),
                output: Vec::new(),
            };
            let accepted = server_handshake_or_serve(&mut d, serve);
            (accepted, String::from_utf8(d.output).unwrap())
        };
        let (accepted, out) = get("/file/1");
        assert_eq!(accepted.unwrap(), Accepted::Served);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
        assert!(out.contains("\r\nContent-Length: 3\r\n"), "{out:?}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{out:?}");
        assert!(out.ends_with("\r\n\r\nabc"), "{out:?}");
        let (accepted, out) = get("/file/2");
        assert_eq!(accepted.unwrap(), Accepted::Served);
        assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out:?}");
        assert!(
            out.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"),
            "{out:?}"
        );
        // A path `serve` leaves alone gets the upgrade's rules: dropped with no answer.
        let (accepted, out) = get("/other");
        assert!(accepted.is_err());
        assert!(out.is_empty(), "{out:?}");
        // And an upgrade request still upgrades.
        let mut d = Duplex {
            input: Cursor::new(client_request("h", "/service/x", "k").into_bytes()),
            output: Vec::new(),
        };
        let accepted = server_handshake_or_serve(&mut d, serve).unwrap();
        assert!(matches!(accepted, Accepted::Upgrade(up) if up.path == "/service/x"));
        assert!(d.output.starts_with(b"HTTP/1.1 101"));
    }

    /// A 101 answer that is right for whatever key the client sent.
    struct Server101(Vec<u8>, Vec<u8>, &'static str);
    impl Read for Server101 {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                let req = String::from_utf8_lossy(&self.0).into_owned();
                let key = req
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap_or("");
                let accept = accept_key(key.as_bytes());
                self.1 = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{}\r\n",
                    self.2
                )
                .into_bytes();
            }
            let n = b.len().min(self.1.len());
            b[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }
    impl Write for Server101 {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn client_refuses_a_subprotocol_it_did_not_offer() {
        // Regression: RFC 6455 section 4.1 requires failing the connection
        // when the server picks a subprotocol the client did not offer; the
        // client offers none and accepted any.
        let mut s = Server101(Vec::new(), Vec::new(), "");
        assert!(client_handshake(&mut s, "h", "/service/websocket").is_ok());
        let mut s = Server101(Vec::new(), Vec::new(), "Sec-WebSocket-Protocol: chat\r\n");
        assert!(matches!(
            client_handshake(&mut s, "h", "/service/websocket"),
            Err(WsError::Handshake(_))
        ));
    }

    #[test]
    fn client_checks_the_accept_key() {
        let mut d = Duplex {
            input: Cursor::new(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n".to_vec(),
            ),
            output: Vec::new(),
        };
        assert!(matches!(
            client_handshake(&mut d, "h", "/service/websocket"),
            Err(WsError::Handshake(_))
        ));
        let mut d = Duplex {
            input: Cursor::new(b"HTTP/1.1 500 Oops\r\n\r\n".to_vec()),
            output: Vec::new(),
        };
        assert!(matches!(
            client_handshake(&mut d, "h", "/service/websocket"),
            Err(WsError::Handshake(_))
        ));
    }
}
