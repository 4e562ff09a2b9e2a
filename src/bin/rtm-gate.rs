//! `rtm-gate`: the local RTM gate as a program (docs/gate.md).
//!
//! ```text
//! cargo run --release --bin rtm-gate -- [--host H] [--port P] [--token UID:TOKEN]...
//!     [--ping-interval S] [--strict-framing] [--max-packet BYTES] [--no-nodelay]
//!     [--file-port P] [--history-limit N]
//! ```
//! Prints `rtm-gate listening on HOST:PORT` first, then `rtm-gate file proxy
//! on HOST:PORT` (docs/Files.md), runs until SIGINT or SIGTERM, and exits 0.
//! `--help` explains every option. Built with the `cli` feature (a default one).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rtm_client::gate::GateBuilder;

const USAGE: &str = "usage: rtm-gate [--host H] [--port P] [--token UID:TOKEN]... [--ping-interval S] [--strict-framing] [--max-packet BYTES] [--no-nodelay] [--file-port P] [--history-limit N]";

/// `--help`: the usage line, then every option with its default.
const HELP: &str = "\
rtm-gate: a local in-memory RTM gate (FPNN over WebSocket) for tests and development.
Prints `rtm-gate listening on HOST:PORT` first and `rtm-gate file proxy on HOST:PORT`
second, then runs until SIGINT or SIGTERM.

Options:
  --host H             address to listen on (default 127.0.0.1; IPv6 works, e.g. ::1)
  --port P             port to listen on (default 13321); 0 picks a free one, shown in
                       the first line
  --token UID:TOKEN    lets user UID log in with TOKEN; repeat for more users. Once any
                       is given only the given pairs log in; with none, any non-empty
                       token is accepted
  --ping-interval S    seconds between `ping` quests to each logged-in connection
                       (default 20); a connection silent for three intervals is closed;
                       0 turns pings and idle closing off
  --strict-framing     frame 126-byte payloads as RFC 6455 says; without it the gate
                       frames them the way FPNN servers do (see docs/protocol.md)
  --max-packet BYTES   largest packet accepted (default 8388608, 8 MiB; at least 16);
                       a larger one closes the connection
  --no-nodelay         leave TCP_NODELAY off on accepted sockets, as real FPNN servers
                       do, to reproduce their delayed-ACK pauses (see docs/gate.md)
  --file-port P        port of the file proxy (uploads, and the files' URLs over HTTP),
                       the gate's second listener on the same host (default 0: a free
                       one, shown in the second line)
  --history-limit N    messages kept per conversation: at least the newest N, at most
                       2N (default 100000); 0 keeps all
  -h, --help           print this help and exit

Exit status: 0 after SIGINT or SIGTERM (or --help), 1 when it cannot listen,
2 for an unknown option or a bad value.";

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
            "--file-port" => {
                let p = val("--file-port")?;
                b = b.file_port(p.parse().map_err(|e| format!("--file-port: {e}"))?);
            }
            "--no-nodelay" => b = b.nodelay(false),
            "--history-limit" => {
                let n: usize = val("--history-limit")?
                    .parse()
                    .map_err(|e| format!("--history-limit: {e}"))?;
                b = b.history_limit(n);
            }
            "--max-packet" => {
                let n: usize = val("--max-packet")?
                    .parse()
                    .map_err(|e| format!("--max-packet: {e}"))?;
                if n < 16 {
                    return Err("--max-packet must be at least 16".into());
                }
                b = b.max_packet(n);
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(b)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}\n\n{HELP}");
        return ExitCode::SUCCESS;
    }
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
    // One write, errors ignored: a reader that closes the pipe after the first line
    // (scripts only need that one) must not make the gate panic on the second.
    let lines = format!(
        "rtm-gate listening on {}\nrtm-gate file proxy on {}\n",
        gate.endpoint(),
        gate.file_endpoint()
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(lines.as_bytes());
    let _ = out.flush();
    drop(out);
    let _ = rx.recv();
    gate.shutdown();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_explains_every_option_of_the_usage_line() {
        let flags = USAGE.split(['[', ' ']).filter(|w| w.starts_with("--"));
        for flag in flags {
            let flag = flag.trim_end_matches([']', '.']);
            assert!(
                HELP.lines().any(|l| l.trim_start().starts_with(flag)),
                "{flag} is not explained in HELP"
            );
        }
    }

    #[test]
    fn options_parse_and_bad_ones_are_refused() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert!(parse(&args(
            "--port 0 --token 1:a --ping-interval 0 --strict-framing"
        ))
        .is_ok());
        assert!(parse(&args("--max-packet 15")).is_err());
        assert!(parse(&args("--history-limit 0")).is_ok());
        assert!(parse(&args("--history-limit -1")).is_err());
        assert!(parse(&args("--token 1:")).is_err());
        assert!(parse(&args("--port")).is_err());
        assert!(parse(&args("--bogus")).is_err());
    }
}
