//! The rtm-client quickstart: two users chatting, history, unread counts and
//! pushes, against a local RTM gate started in this process.
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart -- --endpoint HOST:PORT --pid N --uid N --token T [--ssl]
//!                                   [--peer-uid N --peer-token T]
//! ```
//! With no arguments it starts the local gate itself. With `--endpoint` it
//! runs the same story against a real gate as `--uid`; the parts that need a
//! second user run only when `--peer-uid` and `--peer-token` are given.
//! `RUST_LOG=debug` shows the SDK's logging.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use rtm_client::gate::Gate;
use rtm_client::{blocking, mtype, PushEvent, RtmClient, RtmError, RtmOptions};

struct Args {
    endpoint: Option<String>,
    ssl: bool,
    pid: i64,
    uid: i64,
    token: String,
    peer: Option<(i64, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        endpoint: None,
        ssl: false,
        pid: 1,
        uid: 1001,
        token: "alice-token".into(),
        peer: Some((1002, "bob-token".into())),
    };
    let mut peer_uid = None;
    let mut peer_token = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => a.endpoint = Some(val()?),
            "--ssl" => a.ssl = true,
            "--pid" => a.pid = val()?.parse().map_err(|e| format!("--pid: {e}"))?,
            "--uid" => a.uid = val()?.parse().map_err(|e| format!("--uid: {e}"))?,
            "--token" => a.token = val()?,
            "--peer-uid" => {
                peer_uid = Some(
                    val()?
                        .parse::<i64>()
                        .map_err(|e| format!("--peer-uid: {e}"))?,
                )
            }
            "--peer-token" => peer_token = Some(val()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.endpoint.is_some() {
        a.peer = peer_uid.zip(peer_token);
    }
    Ok(a)
}

/// `login` with the callback turned into a return value.
fn login(client: &RtmClient, uid: i64, token: &str) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    client.login(
        uid,
        token,
        move |ok, code| {
            let _ = tx.send((ok, code));
        },
        10_000,
    );
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok((true, _)) => Ok(()),
        Ok((false, 0)) => Err(format!("uid {uid}: token rejected")),
        Ok((false, code)) => Err(format!("uid {uid}: login failed with code {code}")),
        Err(_) => Err(format!("uid {uid}: no login answer")),
    }
}

fn client(endpoint: &str, ssl: bool, pid: i64) -> Result<RtmClient, RtmError> {
    let mut options = RtmOptions {
        pid,
        ..Default::default()
    };
    if ssl {
        options.ssl_endpoint = Some(endpoint.to_owned());
    } else {
        options.endpoint = Some(endpoint.to_owned());
    }
    RtmClient::new(options)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // 1. A gate: the local one, unless --endpoint names a real one.
    let mut local_gate = None;
    let endpoint = match &args.endpoint {
        Some(e) => {
            println!(
                "Using the RTM gate at {e}{}",
                if args.ssl { " (TLS)" } else { "" }
            );
            e.clone()
        }
        None => {
            let gate = Gate::start()?;
            println!("Started a local RTM gate at {}", gate.endpoint());
            let e = gate.endpoint();
            local_gate = Some(gate);
            e
        }
    };

    // 2. Two users log in. Bob listens to pushes first.
    let alice = client(&endpoint, args.ssl, args.pid)?;
    login(&alice, args.uid, &args.token)?;
    println!("alice (uid {}) logged in", args.uid);
    let Some((bob_uid, bob_token)) = args.peer.clone() else {
        println!("(no --peer-uid/--peer-token: the two-user parts are skipped)");
        return solo(&alice, args.uid);
    };
    let bob = client(&endpoint, args.ssl, args.pid)?;
    let (push_tx, push_rx) = mpsc::channel::<String>();
    for event in [
        PushEvent::RecvChat,
        PushEvent::RecvGroupChat,
        PushEvent::RecvRoomChat,
        PushEvent::RecvMessage,
    ] {
        let tx = push_tx.clone();
        bob.processor().on(event, move |m| {
            let where_ = match (m.gid, m.rid) {
                (Some(g), _) => format!(" in group {g}"),
                (_, Some(r)) => format!(" in room {r}"),
                _ => String::new(),
            };
            let text = m
                .msg
                .clone()
                .unwrap_or_else(|| format!("<{} bytes>", m.binary.len()));
            let _ = tx.send(format!(
                "bob got a push ({}) from {}{where_}: {text:?}",
                event.name(),
                m.from
            ));
        });
    }
    login(&bob, bob_uid, &bob_token)?;
    println!("bob (uid {bob_uid}) logged in");
    let expect_push = || match push_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(line) => println!("  {line}"),
        Err(_) => println!("  (no push arrived)"),
    };

    // 3. A p2p chat message: alice -> bob, and bob's push.
    let sent =
        blocking(|cb| alice.send_message(bob_uid, mtype::CHAT_TEXT, "Hi Bob!", "", 0, 0, cb))?;
    println!(
        "alice sent \"Hi Bob!\" to bob: mid {}, mtime {}",
        sent.mid, sent.payload.mtime
    );
    expect_push();

    // 4. A group and a room.
    let (gid, rid) = (5001, 7001);
    blocking(|cb| alice.add_group_members(gid, &[bob_uid], 0, cb))?;
    blocking(|cb| alice.send_group_message(gid, mtype::CHAT_TEXT, "Hello, group!", "", 0, 0, cb))?;
    println!("alice created group {gid} with bob and said hello");
    expect_push();
    blocking(|cb| alice.enter_room(rid, 0, cb))?;
    blocking(|cb| bob.enter_room(rid, 0, cb))?;
    blocking(|cb| {
        alice.send_room_message(rid, mtype::CHAT_TEXT, "Anyone in the room?", "", 0, 0, cb)
    })?;
    println!("alice and bob entered room {rid}; alice spoke there");
    expect_push();

    // 5. History, a page at a time.
    for i in 1..=12 {
        blocking(|cb| {
            bob.send_message(
                args.uid,
                mtype::CHAT_TEXT,
                &format!("message #{i}"),
                "",
                0,
                0,
                cb,
            )
        })?;
    }
    println!("bob sent alice 12 more messages; alice pages through their chat, 5 at a time:");
    let (mut begin, mut lastid, mut page) = (None, None, 1);
    loop {
        let h = blocking(|cb| {
            alice.get_p2p_message(bob_uid, false, 5, begin, None, lastid, None, 0, cb)
        })?;
        if h.msgs.is_empty() {
            break;
        }
        let texts: Vec<String> = h
            .msgs
            .iter()
            .map(|m| {
                format!(
                    "{}{}",
                    if m.direction == 1 { "me: " } else { "bob: " },
                    m.msg.as_deref().unwrap_or("?")
                )
            })
            .collect();
        println!("  page {page}: {}", texts.join(" | "));
        begin = Some(h.begin);
        lastid = Some(h.lastid);
        page += 1;
    }

    // 6. Unread counts: bob goes offline, alice writes, bob comes back.
    bob.close();
    if let Some(gate) = &local_gate {
        // "Since his last logout" counts from when the gate saw him go.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while gate.connections_of(args.pid, bob_uid) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Unread counts are "strictly after the logout" in milliseconds.
        std::thread::sleep(Duration::from_millis(2));
    }
    for text in ["Are you there?", "Call me back", "Never mind!"] {
        blocking(|cb| alice.send_message(bob_uid, mtype::CHAT_TEXT, text, "", 0, 0, cb))?;
    }
    println!("bob logged out; alice sent him 3 messages");
    login(&bob, bob_uid, &bob_token)?;
    let unread = blocking(|cb| bob.get_unread_message(false, 0, cb))?;
    println!(
        "bob is back: unread conversations with users {:?}",
        unread.p2p
    );
    let counts = blocking(|cb| bob.get_p2p_unread_message_num(&[args.uid], None, None, 0, cb))?;
    println!(
        "  {} unread from alice since his last logout",
        counts.p2p.get(&args.uid).copied().unwrap_or(0)
    );
    blocking(|cb| bob.clean_unread_message(0, cb))?;
    let unread = blocking(|cb| bob.get_unread_message(false, 0, cb))?;
    println!("  after clean_unread_message: {:?}", unread.p2p);

    // 7. Deleting a message.
    let oops = blocking(|cb| {
        alice.send_message(bob_uid, mtype::CHAT_TEXT, "oops, wrong chat", "", 0, 0, cb)
    })?;
    let got = blocking(|cb| bob.get_message(args.uid, oops.mid, bob_uid, 1, 0, cb))?;
    println!(
        "alice sent bob one more (mid {}); bob reads it with get_message: {:?}",
        oops.mid,
        got.msg.as_deref().unwrap_or("?")
    );
    blocking(|cb| alice.delete_message(args.uid, oops.mid, bob_uid, 1, 0, cb))?;
    match blocking(|cb| bob.get_message(args.uid, oops.mid, bob_uid, 1, 0, cb)) {
        Err(e) => println!("alice deleted it; bob now gets: {e}"),
        Ok(m) => println!("alice deleted it, but bob still reads {:?}", m.msg),
    }

    alice.bye();
    bob.bye();
    println!("Done: both users said bye.");
    Ok(())
}

/// The story for one user on a real gate.
fn solo(alice: &RtmClient, uid: i64) -> Result<(), Box<dyn std::error::Error>> {
    let unread = blocking(|cb| alice.get_unread_message(false, 0, cb))?;
    println!(
        "unread conversations: users {:?}, groups {:?}",
        unread.p2p, unread.group
    );
    let h = blocking(|cb| alice.get_p2p_message(uid, true, 10, None, None, None, None, 0, cb))?;
    println!(
        "{} messages in the newest page of history with yourself",
        h.num
    );
    alice.bye();
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}
