//! `rtm-gate`: the local RTM gate as a program (docs/gate.md).
//!
//! ```text
//! cargo run --release --bin rtm-gate -- [--host H] [--port P] [--token UID:TOKEN]...
//!     [--ping-interval S] [--strict-framing] [--max-packet BYTES] [--no-nodelay]
//! ```
//! Prints `rtm-gate listening on HOST:PORT` first, runs until SIGINT or
//! SIGTERM, and exits 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rtm_client::gate::GateBuilder;

const USAGE: &str = "usage: rtm-gate [--host H] [--port P] [--token UID:TOKEN]... [--ping-interval S] [--strict-framing] [--max-packet BYTES] [--no-nodelay]";

fn parse(args: &[String]) -> Result<GateBuilder, String> {
    let mut b = GateBuilder::default().port(13321);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--host" => b = b.host(&val("--host")?),
            "--port" => b = b.port(val("--port")?.parse().map_err(|e| format!("--port: {e}"))?),
            "--token" => {
                let v = val("--token")?;
                let (uid, token) = v.split_once(':').ok_or("--token takes UID:TOKEN")?;
                let uid: i64 = uid.parse().map_err(|e| format!("--token uid: {e}"))?;
                if token.is_empty() {
                    return Err("--token: empty token".into());
                }
                b = b.token(uid, token);
            }
            "--ping-interval" => {
                let s: u64 = val("--ping-interval")?
                    .parse()
                    .map_err(|e| format!("--ping-interval: {e}"))?;
                b = b.ping_interval(Duration::from_secs(s));
            }
            "--strict-framing" => b = b.strict_framing(true),
            "--no-nodelay" => b = b.nodelay(false),
            "--max-packet" => {
                let n: usize = val("--max-packet")?
                    .parse()
                    .map_err(|e| format!("--max-packet: {e}"))?;
                if n < 16 {
                    return Err("--max-packet must be at least 16".into());
                }
                b = b.max_packet(n);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(b)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let builder = match parse(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    }) {
        eprintln!("cannot install the signal handler: {e}");
        return ExitCode::FAILURE;
    }
    let gate = match builder.start() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("rtm-gate: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("rtm-gate listening on {}", gate.endpoint());
    let _ = std::io::stdout().flush();
    let _ = rx.recv();
    gate.shutdown();
    ExitCode::SUCCESS
}
