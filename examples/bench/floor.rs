//! The bare floor: the least a client can do for each scenario. One socket
//! per connection, packets encoded once and patched (seq, mid), frames read
//! with a few lines of parsing, no SDK code at all (only `std`). The frames
//! are masked with the all-zero key, which makes masking free; the SDK masks
//! with random keys, as RFC 6455 asks of a client.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// A sendmsg quest, encoded once; [`Template::set`] patches seq and mid.
pub struct Template {
    pub bytes: Vec<u8>,
    seq_at: usize,
    mid_at: usize,
}

fn str8(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 32 {
        out.push(0xa0 | s.len() as u8);
    } else if s.len() < 256 {
        out.extend_from_slice(&[0xd9, s.len() as u8]);
    } else if s.len() <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// A masked (zero key) frame around an FPNN twoway quest.
fn quest_frame(method: &str, payload: &[u8]) -> (Vec<u8>, usize) {
    let plen = 16 + method.len() + payload.len();
    let mut f = vec![0x82];
    if plen < 126 {
        f.push(0x80 | plen as u8);
    } else if plen <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(plen as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(plen as u64).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    let start = f.len();
    f.extend_from_slice(b"FPNN");
    f.extend_from_slice(&[1, 0x80, 1, method.len() as u8]);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // seq
    f.extend_from_slice(method.as_bytes());
    f.extend_from_slice(payload);
    (f, start + 12)
}

impl Template {
    /// `sendmsg {to, mid, mtype: 30, msg: "x" * size, attrs: ""}`.
    pub fn sendmsg(to: i64, size: usize) -> Template {
        let mut p = vec![0x85];
        str8(&mut p, b"to");
        p.push(0xd3);
        p.extend_from_slice(&to.to_be_bytes());
        str8(&mut p, b"mid");
        p.push(0xd3);
        let mid_in_payload = p.len();
        p.extend_from_slice(&0i64.to_be_bytes());
        str8(&mut p, b"mtype");
        p.push(30);
        str8(&mut p, b"msg");
        str8(&mut p, &vec![b'x'; size]);
        str8(&mut p, b"attrs");
        str8(&mut p, b"");
        let (bytes, seq_at) = quest_frame("sendmsg", &p);
        let mid_at = seq_at + 4 + "sendmsg".len() + mid_in_payload;
        Template {
            bytes,
            seq_at,
            mid_at,
        }
    }

    pub fn set(&mut self, seq: u32, mid: i64) -> &[u8] {
        self.bytes[self.seq_at..self.seq_at + 4].copy_from_slice(&seq.to_le_bytes());
        self.bytes[self.mid_at..self.mid_at + 8].copy_from_slice(&mid.to_be_bytes());
        &self.bytes
    }
}

/// What the floor needs of a packet from the gate.
pub struct In {
    /// 0 oneway quest, 1 twoway quest, 2 answer.
    pub mtype: u8,
    pub status: u8,
    pub seq: u32,
    /// For a quest: whether the method is `pushmsg`, and the message's mid.
    pub push_mid: Option<i64>,
}

/// One bare connection.
pub struct Bare {
    pub s: TcpStream,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
}

impl Bare {
    /// Connects, upgrades and logs in as `uid` of project 1.
    pub fn login(endpoint: &str, uid: i64) -> io::Result<Bare> {
        let mut s = TcpStream::connect(endpoint)?;
        s.set_nodelay(true)?;
        write!(
            s,
            "GET /service/websocket HTTP/1.1\r\nHost: {endpoint}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut b = Bare {
            s,
            buf: Vec::new(),
            head: 0,
            tail: 0,
        };
        loop {
            b.fill()?;
            if let Some(end) = b.buf[..b.tail].windows(4).position(|w| w == b"\r\n\r\n") {
                if !b.buf.starts_with(b"HTTP/1.1 101") {
                    return Err(io::Error::other("upgrade refused"));
                }
                b.head = end + 4;
                break;
            }
        }
        let mut auth = vec![0x84];
        for (k, v) in [("pid", 1i64), ("uid", uid)] {
            str8(&mut auth, k.as_bytes());
            auth.push(0xd3);
            auth.extend_from_slice(&v.to_be_bytes());
        }
        str8(&mut auth, b"token");
        str8(&mut auth, b"t");
        str8(&mut auth, b"version");
        str8(&mut auth, b"bare");
        let (mut f, seq_at) = quest_frame("auth", &auth);
        f[seq_at..seq_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        b.s.write_all(&f)?;
        loop {
            let p = b.next()?;
            if p.mtype == 2 && p.seq == u32::MAX {
                if b.head == b.tail {
                    // An idle connection keeps no buffer.
                    b.buf = Vec::new();
                    (b.head, b.tail) = (0, 0);
                }
                return if p.status == 0 {
                    Ok(b)
                } else {
                    Err(io::Error::other("auth failed"))
                };
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0; 64 * 1024];
        }
        if self.head > 0 && self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        if self.tail == self.buf.len() {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
            if self.tail == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.s.read(&mut self.buf[self.tail..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.tail += n;
        Ok(())
    }

    /// Whether a whole frame is buffered (so [`Bare::next`] will not block).
    pub fn buffered(&self) -> bool {
        self.frame_at(self.head).is_some()
    }

    /// `(header length, payload length)` of the whole frame at `at`, if buffered.
    fn frame_at(&self, at: usize) -> Option<(usize, usize)> {
        let b = &self.buf[at..self.tail];
        if b.len() < 2 {
            return None;
        }
        let (h, len) = match b[1] & 0x7f {
            126 if b.len() >= 6 && &b[2..6] == b"FPNN" => (2, 126),
            126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
            127 if b.len() >= 10 => (10, u64::from_be_bytes(b[2..10].try_into().ok()?) as usize),
            126 | 127 => return None,
            n => (2, n as usize),
        };
        (b.len() >= h + len).then_some((h, len))
    }

    /// The next FPNN packet (control frames skipped).
    pub fn next(&mut self) -> io::Result<In> {
        loop {
            let Some((h, len)) = self.frame_at(self.head) else {
                self.fill()?;
                continue;
            };
            let opcode = self.buf[self.head] & 0x0f;
            let p = &self.buf[self.head + h..self.head + h + len];
            self.head += h + len;
            if opcode != 2 || p.len() < 12 {
                continue;
            }
            let mtype = p[6];
            let seq = if mtype == 0 {
                0
            } else {
                u32::from_le_bytes([p[12], p[13], p[14], p[15]])
            };
            let push_mid = if mtype != 2 && &p[16..16 + p[7] as usize] == b"pushmsg" {
                find_mid(&p[16 + p[7] as usize..])
            } else {
                None
            };
            return Ok(In {
                mtype,
                status: if mtype == 2 { p[7] } else { 0 },
                seq,
                push_mid,
            });
        }
    }
}

/// The `mid` of a msgpack map (the gate writes small maps with str keys).
fn find_mid(p: &[u8]) -> Option<i64> {
    let at = p.windows(4).position(|w| w == b"\xa3mid")? + 4;
    let v = p.get(at..)?;
    Some(match v[0] {
        0x00..=0x7f => i64::from(v[0]),
        0xcc => i64::from(v[1]),
        0xcd => i64::from(u16::from_be_bytes([v[1], v[2]])),
        0xce | 0xd2 => i64::from(u32::from_be_bytes(v[1..5].try_into().ok()?)),
        0xcf | 0xd3 => i64::from_be_bytes(v[1..9].try_into().ok()?),
        _ => return None,
    })
}

/// The answer to a pushed quest (`{}`), pre-encoded; [`answer`] patches seq.
pub fn empty_answer(seq: u32) -> [u8; 23] {
    let mut a = [0u8; 23];
    a[..6].copy_from_slice(&[0x82, 0x80 | 17, 0, 0, 0, 0]);
    a[6..14].copy_from_slice(&[b'F', b'P', b'N', b'N', 1, 0x80, 2, 0]);
    a[14..18].copy_from_slice(&1u32.to_le_bytes());
    a[18..22].copy_from_slice(&seq.to_le_bytes());
    a[22] = 0x80;
    a
}

/// The quests of a pipelined run: sendmsg `i` has seq `i + 1` and mid
/// `first_mid + i`; when each went out is kept for its round trip.
struct Quests {
    t: Template,
    times: Vec<Instant>,
    sent: usize,
    first_mid: i64,
}

impl Quests {
    fn new(to: i64, size: usize, n: usize, first_mid: i64) -> Quests {
        Quests {
            t: Template::sendmsg(to, size),
            times: vec![Instant::now(); n],
            sent: 0,
            first_mid,
        }
    }

    /// Appends the next quest to `out`, unless all `n` are sent.
    fn send(&mut self, out: &mut Vec<u8>) {
        if self.sent < self.times.len() {
            let i = self.sent;
            out.extend_from_slice(self.t.set(i as u32 + 1, self.first_mid + i as i64));
            self.times[i] = Instant::now();
            self.sent += 1;
        }
    }

    /// The round trip of the quest with `seq`, in microseconds.
    fn round_trip(&self, seq: u32) -> u32 {
        let i = (seq as usize).wrapping_sub(1);
        self.times
            .get(i)
            .map_or(0, |t| t.elapsed().as_micros() as u32)
    }
}

impl Bare {
    /// Handles what one read brings (at least one packet): each answer's seq
    /// goes to `answer` with `out` (an error answer fails the run), and each
    /// twoway quest is answered into `out`.
    fn read_batch(
        &mut self,
        out: &mut Vec<u8>,
        mut answer: impl FnMut(u32, &mut Vec<u8>),
    ) -> io::Result<()> {
        loop {
            let p = self.next()?;
            if p.mtype == 2 {
                if p.status != 0 {
                    return Err(io::Error::other("sendmsg failed"));
                }
                answer(p.seq, out);
            } else if p.mtype == 1 {
                out.extend_from_slice(&empty_answer(p.seq));
            }
            if !self.buffered() {
                return Ok(());
            }
        }
    }
}

/// Sends `n` sendmsg to `to` with at most `window` unanswered; each answer
/// read lets the next go out, and all the sends one read makes possible go
/// out in one write. Returns each round trip in microseconds.
pub fn pipelined(
    c: &mut Bare,
    to: i64,
    size: usize,
    n: usize,
    window: usize,
    first_mid: i64,
) -> io::Result<Vec<u32>> {
    let mut q = Quests::new(to, size, n, first_mid);
    let mut lat = Vec::with_capacity(n);
    let mut out = Vec::new();
    for _ in 0..window.min(n) {
        q.send(&mut out);
    }
    c.s.write_all(&out)?;
    while lat.len() < n {
        out.clear();
        c.read_batch(&mut out, |seq, out| {
            lat.push(q.round_trip(seq));
            q.send(out);
        })?;
        if !out.is_empty() {
            c.s.write_all(&out)?;
        }
    }
    Ok(lat)
}

/// Reads `n` `pushmsg` quests and answers each (the answers to one read
/// go out in one write); `got(mid)` is called for each push.
pub fn receive_pushes(c: &mut Bare, n: usize, mut got: impl FnMut(i64)) -> io::Result<()> {
    let mut seen = 0;
    let mut out = Vec::new();
    while seen < n {
        seen += c.read_pushes(&mut out, &mut got)?;
    }
    Ok(())
}

impl Bare {
    /// Handles what one read brings (at least one packet): each twoway quest
    /// is answered, all in one write, and each push's mid goes to `got`.
    /// Returns how many pushes it read.
    fn read_pushes(&mut self, out: &mut Vec<u8>, mut got: impl FnMut(i64)) -> io::Result<usize> {
        let mut seen = 0;
        out.clear();
        loop {
            let p = self.next()?;
            if p.mtype == 1 {
                out.extend_from_slice(&empty_answer(p.seq));
            }
            if let Some(mid) = p.push_mid {
                got(mid);
                seen += 1;
            }
            if !self.buffered() {
                break;
            }
        }
        if !out.is_empty() {
            self.s.write_all(out)?;
        }
        Ok(seen)
    }
}

/// [`receive_pushes`] split over two threads, `Dispatch::Threads`' shape for
/// pushes: this thread reads, parses and answers the pushes, and after each
/// read hands their mids to a second thread, woken only when it sleeps,
/// which calls `got` for each. The price of the hand-off alone, as
/// [`pipelined_handoff`] for the sending scenarios. The second thread ends
/// by calling `finish` (so a caller can keep it alive until its CPU time has
/// been read).
pub fn receive_pushes_handoff(
    c: &mut Bare,
    n: usize,
    got: impl FnMut(i64) + Send,
    finish: impl FnOnce() + Send,
) -> io::Result<()> {
    let hand = Handoff::new();
    std::thread::scope(|scope| {
        let handler = std::thread::Builder::new()
            .name("bench-bare-handle".into())
            .spawn_scoped(scope, || -> io::Result<()> {
                let mut got = got;
                let mut batch = Vec::new();
                let mut seen = 0;
                while seen < n {
                    hand.take(&mut batch)?;
                    seen += batch.len();
                    batch.drain(..).for_each(&mut got);
                }
                finish();
                Ok(())
            })?;
        let _ended = Ended(&hand);
        let (mut seen, mut mids, mut out) = (0, Vec::new(), Vec::new());
        while seen < n {
            seen += c.read_pushes(&mut out, |mid| mids.push(mid))?;
            hand.give(&mut mids);
        }
        drop(_ended);
        handler.join().expect("the handler thread")
    })
}

/// What the reader of a hand-off floor ([`pipelined_handoff`],
/// [`receive_pushes_handoff`]) hands its second thread: the items of its
/// reads (answers' seqs, pushes' mids), whether that thread is asleep
/// waiting for them, and whether the reader has stopped (so the second
/// thread does not wait for ever).
struct Handoff<T> {
    state: std::sync::Mutex<HandoffState<T>>,
    ready: std::sync::Condvar,
}

struct HandoffState<T> {
    items: Vec<T>,
    waiting: bool,
    ended: bool,
}

impl<T> Handoff<T> {
    fn new() -> Handoff<T> {
        Handoff {
            state: std::sync::Mutex::new(HandoffState {
                items: Vec::new(),
                waiting: false,
                ended: false,
            }),
            ready: std::sync::Condvar::new(),
        }
    }

    /// The reader's side, once per read: hands over `items` under one lock,
    /// and wakes the other thread only if it sleeps.
    fn give(&self, items: &mut Vec<T>) {
        if items.is_empty() {
            return;
        }
        let mut h = self.state.lock().expect("hand-off lock");
        h.items.append(items);
        if std::mem::take(&mut h.waiting) {
            self.ready.notify_one();
        }
    }

    /// The second thread's side: waits until there are items and swaps them
    /// into `batch` (empty); an error once the reader has stopped.
    fn take(&self, batch: &mut Vec<T>) -> io::Result<()> {
        let mut h = self.state.lock().expect("hand-off lock");
        while h.items.is_empty() {
            if h.ended {
                return Err(io::Error::other("the reader stopped"));
            }
            h.waiting = true;
            h = self.ready.wait(h).expect("hand-off lock");
        }
        std::mem::swap(&mut h.items, batch);
        Ok(())
    }
}

/// Tells the second thread of a hand-off floor that the reader has stopped,
/// however it stops.
struct Ended<'a, T>(&'a Handoff<T>);

impl<T> Drop for Ended<'_, T> {
    fn drop(&mut self) {
        if let Ok(mut h) = self.0.state.lock() {
            h.ended = true;
        }
        self.0.ready.notify_one();
    }
}

/// [`pipelined`] split over two threads, the least a client with a hand-off
/// per read does (`Dispatch::Threads`' shape): this thread reads and parses,
/// and after each read hands the answers' seqs to a second thread, woken
/// only when it sleeps, which times them and writes the next quests in one
/// write. Nothing else of the SDK's work: it is the price of the hand-off
/// alone, what no code inside two such threads can take away. The sender
/// thread ends by calling `finish` with the round trips in microseconds
/// (so a caller can keep it alive until its CPU time has been read).
pub fn pipelined_handoff(
    c: &mut Bare,
    to: i64,
    size: usize,
    n: usize,
    window: usize,
    first_mid: i64,
    finish: impl FnOnce(Vec<u32>) + Send,
) -> io::Result<()> {
    let hand = Handoff::new();
    let mut w = c.s.try_clone()?;
    std::thread::scope(|scope| {
        let sender = std::thread::Builder::new()
            .name("bench-bare-send".into())
            .spawn_scoped(scope, || -> io::Result<()> {
                // A failed write ends the reader's wait too.
                let r = (|| {
                    let mut q = Quests::new(to, size, n, first_mid);
                    let mut lat = Vec::with_capacity(n);
                    let mut out = Vec::new();
                    for _ in 0..window.min(n) {
                        q.send(&mut out);
                    }
                    w.write_all(&out)?;
                    let mut batch = Vec::new();
                    while lat.len() < n {
                        hand.take(&mut batch)?;
                        out.clear();
                        for &seq in &batch {
                            lat.push(q.round_trip(seq));
                            q.send(&mut out);
                        }
                        batch.clear();
                        if !out.is_empty() {
                            w.write_all(&out)?;
                        }
                    }
                    Ok(lat)
                })();
                match r {
                    Ok(lat) => {
                        finish(lat);
                        Ok(())
                    }
                    Err(e) => {
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        Err(e)
                    }
                }
            })?;
        let _ended = Ended(&hand);
        let mut read = 0;
        let mut seqs = Vec::new();
        let mut out = Vec::new();
        while read < n {
            c.read_batch(&mut out, |seq, _| {
                seqs.push(seq);
                read += 1;
            })?;
            if !out.is_empty() {
                c.s.write_all(&out)?;
                out.clear();
            }
            hand.give(&mut seqs);
        }
        drop(_ended);
        sender.join().expect("the sender thread")
    })
}
