//! The value-added methods through the client against the local gate
//! (docs/ValueAdded.md), asserting the gate's documented rules: translate tags
//! the text with the target language, the word list is masked and flagged,
//! speech2text gives the fixed transcript; unsupported languages are 200050.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rtm_client::{blocking, error_code, CheckResult, ProfanityResult, Transcript, Translation};

const UNSUPPORTED: i32 = error_code::RTM_EC_UNSUPPORTED_LANGUAGE;

#[test]
fn translate_tags_the_text_and_applies_the_profanity_mode() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let t = blocking(|cb| a.translate("hello", None, "fr", None, None, 0, cb)).unwrap();
    assert_eq!(
        t,
        Translation {
            source: "en".into(),
            target: "fr".into(),
            source_text: "hello".into(),
            target_text: "[fr] hello".into(),
        }
    );
    let t = blocking(|cb| {
        a.translate(
            "damn it",
            Some("en"),
            "de",
            Some("chat"),
            Some("censor"),
            0,
            cb,
        )
    });
    assert_eq!(t.unwrap().target_text, "[de] **** it");
    let e =
        blocking(|cb| a.translate("damn it", None, "de", None, Some("stop"), 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_SENSITIVE_WORDS);
    let e = blocking(|cb| a.translate("hi", None, "xx", None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, UNSUPPORTED);
    let e = blocking(|cb| a.translate("", None, "en", None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let sent = gate.received("translate");
    assert_eq!(sent.len(), 4, "the empty text was not sent");
    assert_eq!(
        keys(&sent[0]),
        ["text", "dst"],
        "None leaves src, type, profanity out"
    );
    assert_eq!(keys(&sent[1]), ["text", "dst", "src", "type", "profanity"]);
}

/// An empty source language is detected, as `None` is: the JavaScript SDK sends
/// `originalLanguage: ""` as it is, and ours does too (docs/ValueAdded.md).
#[test]
fn translate_with_an_empty_source_language_detects_it() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let t = blocking(|cb| a.translate("\u{4f60}\u{597d}", Some(""), "en", None, None, 0, cb));
    let t = t.expect("an empty src is detected, not refused");
    assert_eq!((t.source.as_str(), t.target.as_str()), ("zh-CN", "en"));
    assert_eq!(t.target_text, "[en] \u{4f60}\u{597d}");
    let sent = gate.received("translate");
    assert_eq!(
        keys(&sent[0]),
        ["text", "dst", "src"],
        "Some(\"\") is sent as \"\""
    );
    // Only the empty string means "detect": any other unknown source is 200050.
    let e = blocking(|cb| a.translate("hi", Some(" "), "en", None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, UNSUPPORTED);
}

#[test]
fn profanity_masks_and_classifies() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let p = blocking(|cb| a.profanity("oh crap, a badword", Some(true), 0, cb)).unwrap();
    assert_eq!(
        p,
        ProfanityResult {
            text: "oh ****, a *******".into(),
            classification: Some(vec!["abuse".into(), "vulgar".into()]),
        }
    );
    let p = blocking(|cb| a.profanity("all fine", None, 0, cb)).unwrap();
    assert_eq!((p.text.as_str(), p.classification), ("all fine", None));
    let e = blocking(|cb| a.profanity("", None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
}

#[test]
fn checks_pass_clean_content_and_flag_listed_words() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let clean = CheckResult::default();
    assert_eq!(
        blocking(|cb| a.text_check("nice day", Some("s1"), 0, cb)).unwrap(),
        clean
    );
    let c = blocking(|cb| a.text_check("damn, crap", None, 0, cb)).unwrap();
    assert_eq!(
        c,
        CheckResult {
            result: 2,
            text: Some("****, ****".into()),
            tags: Some(vec![2]),
            wlist: Some(vec!["damn".into(), "crap".into()]),
        }
    );
    let flagged = CheckResult {
        result: 2,
        tags: Some(vec![1]),
        ..CheckResult::default()
    };
    let i = blocking(|cb| a.image_check("https://x/badword.png", 1, None, 0, cb)).unwrap();
    assert_eq!(i, flagged);
    let i = blocking(|cb| a.image_check("https://x/cat.png", 1, None, 0, cb)).unwrap();
    assert_eq!(i, clean);
    let au =
        blocking(|cb| a.audio_check("badword", 2, "en", Some("AMR_WB"), Some(16000), None, 0, cb));
    assert_eq!(au.unwrap(), flagged);
    let e = blocking(|cb| a.audio_check("x", 2, "xx", None, None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, UNSUPPORTED);
    let v = blocking(|cb| a.video_check("https://x/v", 1, "badword.mp4", Some("s"), 0, cb));
    assert_eq!(v.unwrap(), flagged);
    let v = blocking(|cb| a.video_check("https://x/v", 1, "cat.mp4", None, 0, cb));
    assert_eq!(v.unwrap(), clean);

    for e in [
        blocking(|cb| a.text_check("", None, 0, cb)).unwrap_err(),
        blocking(|cb| a.image_check("x", 3, None, 0, cb)).unwrap_err(),
        blocking(|cb| a.audio_check("x", 0, "en", None, None, None, 0, cb)).unwrap_err(),
        blocking(|cb| a.video_check("x", 1, "", None, 0, cb)).unwrap_err(),
    ] {
        assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER, "{e}");
    }
    assert_eq!(gate.received("tcheck").len(), 2);
    assert_eq!(gate.received("icheck").len(), 2);
    assert_eq!(gate.received("acheck").len(), 2);
    assert_eq!(gate.received("vcheck").len(), 2);
    assert_eq!(
        keys(&gate.received("vcheck")[0]),
        ["video", "type", "videoName", "strategyId"]
    );
}

#[test]
fn speech2_text_gives_the_fixed_transcript() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let t = blocking(|cb| a.speech2_text("https://x/a.amr", 1, "ja", None, None, 0, cb)).unwrap();
    assert_eq!(
        t,
        Transcript {
            text: "hello from the rtm gate".into(),
            lang: "ja".into(),
        }
    );
    let e = blocking(|cb| a.speech2_text("x", 1, "xx", None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, UNSUPPORTED);
    let e = blocking(|cb| a.speech2_text("x", 1, "", None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let sent = gate.received("speech2text");
    assert_eq!(sent.len(), 2);
    assert_eq!(keys(&sent[0]), ["audio", "type", "lang"]);
}
