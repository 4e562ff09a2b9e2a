//! The file API (docs/Files.md): `fileToken` and the three file sends, which upload
//! through the file proxy on a connection of their own.
//!
//! A file send is three steps under one deadline (the call's timeout, 120 s by default):
//! (1) `filetoken {cmd, to|gid|rid}` on the gate's connection gives `{token, endpoint}`;
//! (2) a new connection to the file proxy ([`proxy_endpoint`]); (3) the quest `cmd`
//! (`sendfile`, `sendgroupfile`, `sendroomfile`) on it with the file and its signed attrs,
//! answered `{mtime}`; the proxy connection is closed after. The steps run on a thread
//! of their own, never on the caller's or on an SDK thread, and watch the gate connection
//! they started on: when it ends (close, a new login, destroy, a lost link) the flow ends
//! with 20002; `destroy` waits for that callback.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use md5::{Digest, Md5};
use parking_lot::Mutex;
use rmpv::Value;
use serde::Serialize;

use super::decode::{answer, decode};
use super::spec::{specs, Spec, FILE_TIMEOUT_MS};
use crate::client::{Detached, Ended, RtmClient};
use crate::error::{error_code, RtmError, SendError};
use crate::fpnn::{
    deadline_from, ConnectCancel, ConnectOptions, Connection, Endpoint, Quest, Responder,
};
use crate::types::{mtype, FileToken, RtmFile, SendAnswer, SendPayload};
use crate::value::{self, Encoded, MapBuilder};

specs! {
    FILE_TOKEN = "filetoken", Safe;
    // Never: a file send runs its own flow (token, proxy connection, upload) on a thread
    // of its own, outside the session's resend list (docs/reliability.md).
    SEND_FILE = "sendfile", Never, timeout FILE_TIMEOUT_MS;
    SEND_GROUP_FILE = "sendgroupfile", Never, timeout FILE_TIMEOUT_MS;
    SEND_ROOM_FILE = "sendroomfile", Never, timeout FILE_TIMEOUT_MS;
}

answer!(FileToken);

/// The file proxy's ports when it is derived from a gate's DNS name: ws, wss.
const PROXY_PORTS: (u16, u16) = (13461, 13462);

/// Lowercase hex MD5 of `data`.
fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sign of an upload: lowercase hex MD5 of (lowercase hex MD5 of the file + ":" +
/// token). The gate's file proxy checks it the same way.
pub(crate) fn file_sign(file: &[u8], token: &str) -> String {
    md5_hex(format!("{}:{token}", md5_hex(file)).as_bytes())
}

/// The extension of a file name: the text after its last `.`; `None` without one or when
/// nothing follows it.
pub(crate) fn file_ext(name: &str) -> Option<&str> {
    name.rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty())
}

/// The attrs of an upload: the JSON text `{"rtm":{"sign":S,"ext":E}}` (E null without an
/// extension), keys in that order, as the JavaScript SDK writes them.
pub(crate) fn file_attrs(sign: &str, ext: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Attrs<'a> {
        rtm: Rtm<'a>,
    }
    #[derive(Serialize)]
    struct Rtm<'a> {
        sign: &'a str,
        ext: Option<&'a str>,
    }
    // Serializing strings into a String cannot fail.
    serde_json::to_string(&Attrs {
        rtm: Rtm { sign, ext },
    })
    .unwrap_or_default()
}

/// Where the file proxy is, as `(host:port, tls)`: `file_endpoint` when set (a `ws://` or
/// `wss://` prefix chooses TLS, else the gate's); when the gate's host is a DNS name,
/// `fileproxy-HOST:13461` (`:13462` with TLS); when it is an IP address, the filetoken
/// answer's `endpoint` (with the gate's TLS). 20012 when the endpoint to use is not
/// `host:port`.
pub(crate) fn proxy_endpoint(
    file_endpoint: Option<&str>,
    gate: &str,
    tls: bool,
    token_endpoint: &str,
) -> Result<(String, bool), RtmError> {
    let parse = |ep: &str| {
        Endpoint::parse(ep, tls).ok_or_else(|| {
            RtmError::new(
                error_code::FPNN_EC_CORE_INVALID_CONNECTION,
                format!("invalid file proxy endpoint {ep:?}: expected \"host:port\""),
            )
        })
    };
    let ep = match file_endpoint {
        Some(ep) => parse(ep)?,
        None => {
            let g = parse(gate)?;
            if g.host.parse::<IpAddr>().is_ok() {
                Endpoint {
                    tls,
                    ..parse(token_endpoint)?
                }
            } else {
                let port = if tls { PROXY_PORTS.1 } else { PROXY_PORTS.0 };
                Endpoint {
                    host: format!("fileproxy-{}", g.host),
                    port,
                    tls,
                }
            }
        }
    };
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host
    };
    Ok((format!("{host}:{}", ep.port), ep.tls))
}

/// One file send, from the token to the answer, on its own thread.
struct Flow {
    gate: Connection,
    uid: i64,
    pid: i64,
    gate_endpoint: String,
    tls: bool,
    file_endpoint: Option<String>,
    roots: Vec<Vec<u8>>,
    connect_timeout: Duration,
    spec: &'static Spec,
    key: &'static str,
    target: i64,
    mtype: u8,
    mid: i64,
    file: RtmFile,
    deadline: Instant,
    ended: Ended,
}

/// `timeout` from now, saturating (a caller's `u64::MAX` ms must not overflow).
fn deadline_after(timeout: Duration) -> Instant {
    deadline_from(Instant::now(), timeout)
}

fn closed() -> RtmError {
    RtmError::new(
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
        "the session ended during the file send",
    )
}

impl Flow {
    /// Waits for `rx` until the deadline (20003) or the end of the session (20002),
    /// whichever comes first: it wakes for either, it does not poll.
    fn wait<T>(&self, rx: &Receiver<T>) -> Result<T, RtmError> {
        loop {
            if self.ended.has_ended() {
                return Err(closed());
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(RtmError::new(
                    error_code::FPNN_EC_CORE_TIMEOUT,
                    format!("{} timed out", self.spec.method),
                ));
            }
            crossbeam_channel::select! {
                recv(rx) -> v => return v.map_err(|_| closed()),
                // Disconnected: the session's connection ended (the loop says so).
                recv(self.ended.signal()) -> _ => {}
                default(self.deadline - now) => {}
            }
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Sends a quest on `conn` with what is left of the deadline and waits for its answer.
    fn ask(&self, conn: &Connection, method: &str, payload: &Encoded) -> Result<Value, RtmError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let callback = Box::new(move |r| {
            let _ = tx.send(r);
        });
        conn.send_quest_bytes(method, payload.bytes(), self.remaining(), callback);
        self.wait(&rx)?
    }

    fn run(mut self) -> Result<SendPayload, RtmError> {
        let request = MapBuilder::new()
            .put("cmd", self.spec.method)
            .put(self.key, self.target)
            .build();
        let answer = self.ask(&self.gate, FILE_TOKEN.method, &request)?;
        let token = decode::<FileToken>(FILE_TOKEN.method, answer)?;
        let (proxy, tls) = proxy_endpoint(
            self.file_endpoint.as_deref(),
            &self.gate_endpoint,
            self.tls,
            &token.endpoint,
        )?;
        let conn = self.connect(&proxy, tls)?;
        let data = std::mem::take(&mut self.file.data);
        let sign = file_sign(&data, &token.token);
        let payload = MapBuilder::new()
            .put("pid", self.pid)
            .put("from", self.uid)
            .put("mid", self.mid)
            .put("endpoint", token.endpoint.as_str())
            .put("token", token.token.as_str())
            .put("attrs", file_attrs(&sign, file_ext(&self.file.name)))
            .put("file", Value::Binary(data))
            .put(self.key, self.target)
            .put("mtype", self.mtype)
            .build();
        let r = self.ask(&conn, self.spec.method, &payload);
        conn.close();
        decode::<SendPayload>(self.spec.method, r?)
    }

    /// Connects to the proxy on a helper thread, so that the wait can still watch the
    /// deadline and the session; a connect given up on is cancelled (and a connection
    /// that comes too late is dropped, which closes it).
    fn connect(&self, proxy: &str, tls: bool) -> Result<Connection, RtmError> {
        let cancel = ConnectCancel::new();
        let options = ConnectOptions {
            connect_timeout: self.connect_timeout.min(self.remaining()),
            extra_roots: self.roots.clone(),
            cancel: Some(cancel.clone()),
            ..ConnectOptions::default()
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let proxy = proxy.to_owned();
        let helper = std::thread::Builder::new()
            .name("rtm-file-connect".into())
            .spawn(move || {
                // The proxy sends no quests; anything it sends is answered `{}`.
                let handler = |_: Quest, _: Responder| {};
                let _ = tx.send(Connection::connect(&proxy, tls, &options, handler, |_| {}));
            })
            .map_err(|e| RtmError::new(error_code::FPNN_EC_CORE_UNKNOWN_ERROR, e.to_string()))?;
        self.wait(&rx).map_err(|e| {
            // A cancelled connect returns at once (from the dial, the TCP connect or the
            // handshake alike), so the helper is joined: nothing of the send outlives it.
            cancel.cancel();
            let _ = helper.join();
            e
        })?
    }
}

impl RtmClient {
    /// The shared path of the three file sends.
    #[allow(clippy::too_many_arguments)]
    fn send_file_to(
        &self,
        spec: &'static Spec,
        key: &'static str,
        target: i64,
        file_mtype: u8,
        file: &RtmFile,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        let mid = if mid == 0 { self.next_mid() } else { mid };
        let err = Self::send_error(mid);
        if !(mtype::FILE_FIRST..=mtype::FILE_LAST).contains(&file_mtype) {
            return self.reject("mtype must be a file type (40..=50)", err, callback);
        }
        if file.data.is_empty() {
            return self.reject("the file must not be empty", err, callback);
        }
        let deadline = deadline_after(Duration::from_millis(spec.resolve(timeout)));
        let Detached {
            session,
            deliver,
            ended,
            owed,
            queue_full,
        } = self.detach();
        if queue_full {
            let e = RtmError::new(
                error_code::FPNN_EC_CORE_WORK_QUEUE_FULL,
                format!("{}: the dispatch queue is full", spec.method),
            );
            return deliver(Box::new(move || callback(Some(err(e)), None)));
        }
        let Some((gate, uid)) = session else {
            let e = RtmError::new(error_code::FPNN_EC_CORE_INVALID_CONNECTION, "not logged in");
            return deliver(Box::new(move || callback(Some(err(e)), None)));
        };
        let o = self.options();
        let (gate_endpoint, tls) = self.endpoint();
        let flow = Flow {
            gate,
            uid,
            pid: o.pid,
            gate_endpoint: gate_endpoint.to_owned(),
            tls,
            file_endpoint: o.file_endpoint.clone(),
            roots: o.tls_root_certificates.clone(),
            connect_timeout: o.connect_timeout(),
            spec,
            key,
            target,
            mtype: file_mtype,
            mid,
            file: file.clone(),
            deadline,
            ended,
        };
        // The callback waits in a slot the thread empties, so that it is still called
        // if the thread cannot be started.
        let slot = Arc::new(Mutex::new(Some((callback, deliver))));
        let thread_slot = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("rtm-file".into())
            .spawn(move || {
                let r = flow.run();
                let taken = thread_slot.lock().take();
                if let Some((callback, deliver)) = taken {
                    // Released once the callback is queued, or as it starts when it runs
                    // right here (`blocking()`), whichever comes first: then a `destroy`
                    // waiting for it may go on (and may be called from the callback).
                    let owed = Arc::new(Mutex::new(Some(owed)));
                    let release = owed.clone();
                    deliver(Box::new(move || {
                        let owed = release.lock().take();
                        drop(owed);
                        match r {
                            Ok(payload) => callback(None, Some(SendAnswer { mid, payload })),
                            Err(e) => callback(Some(err(e)), None),
                        }
                    }));
                    let owed = owed.lock().take();
                    drop(owed);
                }
            });
        // The thread is not joined: it ends at its deadline at the latest, and within
        // moments of the session's end; `destroy` waits for its callback (`owed`).
        if let Err(e) = spawned {
            let taken = slot.lock().take();
            if let Some((callback, deliver)) = taken {
                let e = RtmError::new(error_code::FPNN_EC_CORE_UNKNOWN_ERROR, e.to_string());
                let e = Self::send_error(mid)(e);
                deliver(Box::new(move || callback(Some(e), None)));
            }
        }
    }

    /// Gets a token to upload a file (`filetoken`). Mirrors JavaScript
    /// `fileToken(cmd, tos, to, rid, gid, timeout, callback)`.
    ///
    /// `cmd` is `"sendfile"` (with `to`), `"sendgroupfile"` (with `gid`) or
    /// `"sendroomfile"` (with `rid`); `None` leaves a key out. Another `cmd` completes with
    /// 200033 without sending. The gate refuses a target the user may not send to as the
    /// send would (200041 not a group member, 200040 not in the room). The file sends get
    /// their own token; this is for applications that upload by themselves.
    #[allow(clippy::too_many_arguments)]
    pub fn file_token(
        &self,
        cmd: &str,
        tos: Option<&[i64]>,
        to: Option<i64>,
        rid: Option<i64>,
        gid: Option<i64>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<FileToken>) + Send + 'static,
    ) {
        if ![&SEND_FILE, &SEND_GROUP_FILE, &SEND_ROOM_FILE]
            .iter()
            .any(|s| s.method == cmd)
        {
            return self.reject(
                "cmd must be sendfile, sendgroupfile or sendroomfile",
                |e| e,
                callback,
            );
        }
        let payload = MapBuilder::new()
            .put("cmd", cmd)
            .put_opt("tos", tos.map(value::i64_array))
            .put_opt("to", to)
            .put_opt("rid", rid)
            .put_opt("gid", gid)
            .build();
        self.quest::<FileToken>(&FILE_TOKEN, payload, timeout, callback);
    }

    /// Sends a file to a user through the file proxy (`filetoken`, then `sendfile`).
    /// Mirrors JavaScript `sendFile(mtype, to, file, mid, timeout, callback)`; `file`
    /// gives the name and the bytes of JavaScript's `File`.
    ///
    /// `mtype` must be a file type (40..=50, [`mtype::FILE_IMAGE`] ...) and the file not
    /// empty, else 200033 without sending. `mid` 0 makes the client generate one; the
    /// callback's data and error both carry the mid used. `timeout` 0 is 120 000 ms,
    /// covering the token, the proxy connect and the upload. Errors: the token's (as
    /// [`RtmClient::file_token`]), 20012 when the proxy cannot be reached, 20003 on
    /// timeout, 20002 when the gate connection ends meanwhile (close, login, destroy, a
    /// lost link), and the proxy's (200003 bad token or sign, 200004 attrs without sign
    /// or ext, 200031 file too large). The receivers get a file push (`PushEvent::RecvFile`) whose body is the
    /// file's URL. A resend with the same mid is answered with the first mtime, but its
    /// `filetoken` checks the target as a first send's would (docs/Files.md, "Resending
    /// a file"). See docs/Files.md.
    #[allow(clippy::too_many_arguments)]
    pub fn send_file(
        &self,
        mtype: u8,
        to: i64,
        file: &RtmFile,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_file_to(&SEND_FILE, "to", to, mtype, file, mid, timeout, callback);
    }

    /// Sends a file to a group (`filetoken`, then `sendgroupfile`). Mirrors JavaScript
    /// `sendGroupFile(mtype, gid, file, mid, timeout, callback)`; as
    /// [`RtmClient::send_file`].
    #[allow(clippy::too_many_arguments)]
    pub fn send_group_file(
        &self,
        mtype: u8,
        gid: i64,
        file: &RtmFile,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_file_to(
            &SEND_GROUP_FILE,
            "gid",
            gid,
            mtype,
            file,
            mid,
            timeout,
            callback,
        );
    }

    /// Sends a file to a room (`filetoken`, then `sendroomfile`). Mirrors JavaScript
    /// `sendRoomFile(mtype, rid, file, mid, timeout, callback)`; as
    /// [`RtmClient::send_file`].
    #[allow(clippy::too_many_arguments)]
    pub fn send_room_file(
        &self,
        mtype: u8,
        rid: i64,
        file: &RtmFile,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_file_to(
            &SEND_ROOM_FILE,
            "rid",
            rid,
            mtype,
            file,
            mid,
            timeout,
            callback,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_and_sign_match_known_vectors() {
        // RFC 1321's test suite.
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        // md5("abc") + ":" + "tok", hashed again.
        assert_eq!(
            file_sign(b"abc", "tok"),
            md5_hex(b"900150983cd24fb0d6963f7d28e17f72:tok")
        );
        assert_eq!(file_sign(b"abc", "tok"), "8afebc9b146a01a266ad140d3315fbd5");
    }

    #[test]
    fn attrs_carry_sign_and_extension() {
        assert_eq!(
            file_attrs("s", file_ext("photo.v2.JPG")),
            r#"{"rtm":{"sign":"s","ext":"JPG"}}"#
        );
        assert_eq!(
            file_attrs("s", file_ext("README")),
            r#"{"rtm":{"sign":"s","ext":null}}"#
        );
        assert_eq!(file_ext("a."), None);
        assert_eq!(file_ext(".bashrc"), Some("bashrc"));
        let v: serde_json::Value = serde_json::from_str(&file_attrs("x\"y", None)).unwrap();
        assert_eq!(v["rtm"]["sign"], "x\"y");
    }

    #[test]
    fn proxy_endpoint_rules() {
        let ep = |f: Option<&str>, g: &str, tls: bool, t: &str| proxy_endpoint(f, g, tls, t);
        assert_eq!(
            ep(None, "rtm.example.com:13321", false, "10.0.0.1:1").unwrap(),
            ("fileproxy-rtm.example.com:13461".into(), false)
        );
        assert_eq!(
            ep(None, "rtm.example.com:13322", true, "").unwrap(),
            ("fileproxy-rtm.example.com:13462".into(), true)
        );
        assert_eq!(
            ep(None, "127.0.0.1:13321", false, "127.0.0.1:4000").unwrap(),
            ("127.0.0.1:4000".into(), false)
        );
        assert_eq!(
            ep(None, "[::1]:13321", false, "[::1]:4000").unwrap(),
            ("[::1]:4000".into(), false)
        );
        assert_eq!(
            ep(Some("files.local:99"), "127.0.0.1:1", false, "junk").unwrap(),
            ("files.local:99".into(), false)
        );
        assert_eq!(
            ep(Some("wss://files.local:99"), "h:1", false, "").unwrap(),
            ("files.local:99".into(), true)
        );
        for bad in ["", "nope", "[::1]", "h:0"] {
            let e = ep(None, "127.0.0.1:1", false, bad).unwrap_err();
            assert_eq!(e.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION, "{bad}");
        }
    }
}
