//! The debug and trace logs tell a user what happened (connect, auth,
//! relogin attempts with their wait, the session's end, each quest's method,
//! seq and latency), and the token never appears in them at any level.
//!
//! The logger is process-wide, so this binary holds this one test.
#![cfg(feature = "gate")]

mod common;

use parking_lot::Mutex;

use common::*;
use rtm_client::{blocking, RtmClient};

const TOKEN: &str = "s3cr3t-t0ken-never-logged";

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, r: &log::Record) {
        LINES
            .lock()
            .push(format!("{} {}: {}", r.level(), r.target(), r.args()));
    }

    fn flush(&self) {}
}

#[test]
fn logs_tell_the_session_story_and_never_contain_the_token() {
    log::set_logger(&Capture).expect("the only logger");
    log::set_max_level(log::LevelFilter::Trace);

    let gate = rtm_client::gate::Gate::builder()
        .token(1001, TOKEN)
        .start()
        .unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, TOKEN, 0), (true, 0));
    blocking(|cb| client.send_message(1002, 30, "hi", "", 0, 0, cb)).unwrap();
    gate.drop_user(PID, 1001);
    assert!(ev.relogin().0);
    ev.fence(&gate, 1001);
    client.close();
    assert_eq!(ev.closed(), 0);
    client.destroy();
    drop(gate);

    let lines = LINES.lock().clone();
    let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(TOKEN)).collect();
    assert!(leaked.is_empty(), "the token was logged: {leaked:#?}");
    for expected in [
        "connecting to 127.0.0.1:",
        "auth of uid 1001 answered: Accepted",
        "relogin attempt 1 now",
        "session closed with code 0",
        "quest sendmsg seq ",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(expected)),
            "no log line contains {expected:?}: {lines:#?}"
        );
    }
    let answered = lines
        .iter()
        .find(|l| l.contains("quest sendmsg seq") && l.contains("answered in"))
        .expect("the sendmsg answer is logged at trace");
    assert!(answered.starts_with("TRACE"), "{answered}");
}
