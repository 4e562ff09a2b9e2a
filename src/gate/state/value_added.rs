//! The value-added area: `translate`, `profanity`, the content checks (`tcheck`,
//! `icheck`, `acheck`, `vcheck`) and `speech2text`, answered by fixed, documented rules
//! (docs/gate.md, "Value-added services") so that tests can assert on them:
//!
//! - Languages: [`LANGS`], in any case; any other `src`, `dst` or `lang` is 200050.
//! - Sensitive words: [`WORDS`], matched case-insensitively as whole words (runs of
//!   letters and digits); a match is masked with one `*` per character.
//! - `translate`: `source` is `src`, or detected ([`detect`]) when `src` is absent or
//!   `""`; `targetText` is
//!   `"[dst] text"`, or the text itself when `source == dst`; `profanity` `"censor"`
//!   masks the target text, `"stop"` fails with 200054 when a word is found.
//! - The checks: 0 for clean content; 2 with `tags` (and for `tcheck`, the masked `text`
//!   and the `wlist` of words found) when the text, URL or content, or the video name,
//!   contains a listed word.
//! - `speech2text`: always [`TRANSCRIPT`], in the requested `lang`.
//!
//! Empty or mistyped required keys, a media `type` other than 1 or 2, a `translate` `type`
//! other than chat/mail and a `profanity` other than off/stop/censor are 200033.

use std::collections::BTreeSet;

use rmpv::Value;

use super::{obj, text, Args, GateError, Route};

/// The languages the gate "supports".
pub(super) const LANGS: &[&str] = &[
    "ar", "de", "en", "es", "fr", "id", "it", "ja", "ko", "pt", "ru", "th", "vi", "zh-CN", "zh-TW",
];

/// The sensitive words: (word, tag, class).
pub(super) const WORDS: &[(&str, i32, &str)] = &[
    ("badword", 1, "abuse"),
    ("crap", 2, "vulgar"),
    ("damn", 2, "vulgar"),
];

/// What `speech2text` recognises in any audio.
pub(super) const TRANSCRIPT: &str = "hello from the rtm gate";

/// 200050: unsupported language.
const UNSUPPORTED_LANGUAGE: i32 = 200050;
/// 200054: the text has sensitive words (`translate` with `profanity: "stop"`).
const SENSITIVE_WORDS: i32 = 200054;

pub(super) const ROUTES: &[Route] = &[
    Route::user("translate", |_, _, a| translate(a)),
    Route::user("profanity", |_, _, a| {
        let s = Scan::of(a.req("text", text)?);
        let classify = a.opt("classify", Value::as_bool)?.unwrap_or(false);
        let mut answer = vec![("text", Value::from(s.masked.as_str()))];
        if classify {
            let classes: BTreeSet<&str> = s.found.iter().map(|w| w.2).collect();
            let list = classes.into_iter().map(Value::from).collect();
            answer.push(("classification", Value::Array(list)));
        }
        Ok(obj(answer))
    }),
    Route::user("tcheck", |_, _, a| {
        let (t, _) = (a.req("text", text)?, strategy(a)?);
        Ok(Scan::of(t).verdict(true))
    }),
    Route::user("icheck", |_, _, a| {
        let image = media(a, "image")?;
        strategy(a)?;
        Ok(Scan::of(image).verdict(false))
    }),
    Route::user("acheck", |_, _, a| {
        let (audio, _) = audio(a)?;
        strategy(a)?;
        Ok(Scan::of(audio).verdict(false))
    }),
    Route::user("vcheck", |_, _, a| {
        let video = media(a, "video")?;
        let name = a.req("videoName", text)?;
        strategy(a)?;
        Ok(Scan::of(&format!("{video} {name}")).verdict(false))
    }),
    Route::user("speech2text", |_, _, a| {
        let (_, lang) = audio(a)?;
        Ok(obj([("text", TRANSCRIPT.into()), ("lang", lang.into())]))
    }),
];

/// `translate {text, dst, src?, type?, profanity?}`.
fn translate(a: Args) -> Result<Value, GateError> {
    let t = a.req("text", text)?;
    let dst = lang(a.req("dst", text)?)?;
    // An empty `src` means "detect", as an absent one does: the JavaScript SDK sends
    // `originalLanguage: ""` as it is (docs/gate.md, "Value-added services").
    let src = a
        .opt("src", Value::as_str)?
        .filter(|s| !s.is_empty())
        .map(lang)
        .transpose()?;
    a.opt("type", |v| {
        v.as_str().filter(|s| ["chat", "mail"].contains(s))
    })?;
    let mode = a.opt("profanity", |v| {
        v.as_str().filter(|s| ["off", "stop", "censor"].contains(s))
    })?;
    let scan = Scan::of(t);
    let target = match mode {
        Some("stop") if !scan.found.is_empty() => {
            return Err(GateError::new(SENSITIVE_WORDS, "sensitive words"))
        }
        Some("censor") => scan.masked.as_str(),
        _ => t,
    };
    let source = src.unwrap_or_else(|| detect(t));
    let target_text = if source == dst {
        target.to_owned()
    } else {
        format!("[{dst}] {target}")
    };
    Ok(obj([
        ("source", source.into()),
        ("target", dst.into()),
        ("sourceText", t.into()),
        ("targetText", target_text.into()),
    ]))
}

/// The language of a text: `ja` with kana, `ko` with hangul, `zh-CN` with CJK
/// ideographs, `ru` with Cyrillic, `ar` with Arabic letters (first match in this order);
/// `en` otherwise.
pub(super) fn detect(t: &str) -> &'static str {
    let has = |lo: u32, hi: u32| t.chars().any(|c| (lo..=hi).contains(&(c as u32)));
    [
        (0x3040, 0x30ff, "ja"),
        (0xac00, 0xd7af, "ko"),
        (0x4e00, 0x9fff, "zh-CN"),
        (0x0400, 0x04ff, "ru"),
        (0x0600, 0x06ff, "ar"),
    ]
    .into_iter()
    .find(|&(lo, hi, _)| has(lo, hi))
    .map_or("en", |(_, _, l)| l)
}

/// A supported language, in any case, as [`LANGS`] spells it (`zh-cn` is `zh-CN`), or
/// 200050. `translate` and `setlang` share it, so `setlang` accepts exactly the
/// languages `translate` does.
pub(super) fn lang(l: &str) -> Result<&'static str, GateError> {
    LANGS
        .iter()
        .copied()
        .find(|&x| x.eq_ignore_ascii_case(l))
        .ok_or_else(|| GateError::new(UNSUPPORTED_LANGUAGE, format!("unsupported language {l}")))
}

/// The content under `key` of a media check, with its `type` (1 url, 2 content).
fn media<'a>(a: Args<'a>, key: &str) -> Result<&'a str, GateError> {
    a.req("type", |v| v.as_u64().filter(|t| (1..=2).contains(t)))?;
    a.req(key, text)
}

/// `{audio, type, lang, codec?, srate?}`: the audio and its (supported) language.
fn audio<'a>(a: Args<'a>) -> Result<(&'a str, &'static str), GateError> {
    let audio = media(a, "audio")?;
    let l = lang(a.req("lang", text)?)?;
    a.opt("codec", text)?;
    a.opt("srate", |v| v.as_i64().filter(|&n| n > 0))?;
    Ok((audio, l))
}

/// `strategyId?`: a str when given.
fn strategy(a: Args) -> Result<(), GateError> {
    a.opt("strategyId", Value::as_str).map(|_| ())
}

/// A text scanned for [`WORDS`].
struct Scan {
    /// The text with every listed word masked.
    masked: String,
    /// The listed words found, each once, in order of first appearance.
    found: Vec<(&'static str, i32, &'static str)>,
}

impl Scan {
    fn of(t: &str) -> Scan {
        let mut scan = Scan {
            masked: String::with_capacity(t.len()),
            found: Vec::new(),
        };
        let mut word = String::new();
        for c in t.chars().chain([' ']) {
            if c.is_alphanumeric() {
                word.push(c);
                continue;
            }
            scan.end_word(&mut word);
            scan.masked.push(c);
        }
        scan.masked.pop();
        scan
    }

    fn end_word(&mut self, word: &mut String) {
        let lower = word.to_lowercase();
        match WORDS.iter().find(|w| w.0 == lower) {
            Some(w) => {
                self.masked.extend(word.chars().map(|_| '*'));
                if !self.found.contains(w) {
                    self.found.push(*w);
                }
            }
            None => self.masked.push_str(word),
        }
        word.clear();
    }

    /// `{result: 0}`, or `{result: 2, tags}` (plus the masked `text` and the `wlist`
    /// for a text check).
    fn verdict(&self, text_check: bool) -> Value {
        if self.found.is_empty() {
            return obj([("result", 0.into())]);
        }
        let tags: BTreeSet<i32> = self.found.iter().map(|w| w.1).collect();
        let mut v = vec![
            ("result", Value::from(2)),
            (
                "tags",
                Value::Array(tags.into_iter().map(Value::from).collect()),
            ),
        ];
        if text_check {
            let wlist = self.found.iter().map(|w| Value::from(w.0)).collect();
            v.push(("text", self.masked.as_str().into()));
            v.push(("wlist", Value::Array(wlist)));
        }
        obj(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;
    use super::{detect, TRANSCRIPT};

    #[test]
    fn translate_tags_the_text_with_the_target_language() {
        let mut g = Gate::new();
        let a = g.login(A);
        let t = g.ok(a, "translate", map! {"text": "hello", "dst": "fr"});
        assert_eq!(
            t,
            map! {"source": "en", "target": "fr", "sourceText": "hello", "targetText": "[fr] hello"}
        );
        let t = g.ok(
            a,
            "translate",
            map! {"text": "hi", "dst": "en", "src": "en", "type": "mail"},
        );
        assert_eq!(field(&t, "targetText"), &Value::from("hi"));
        let t = g.ok(a, "translate", map! {"text": "你好", "dst": "en"});
        assert_eq!(field(&t, "source"), &Value::from("zh-CN"));
        let p = |mode: &str| map! {"text": "Damn it", "dst": "de", "profanity": mode};
        assert_eq!(
            field(&g.ok(a, "translate", p("censor")), "targetText"),
            &Value::from("[de] **** it")
        );
        assert_eq!(
            field(&g.ok(a, "translate", p("off")), "targetText"),
            &Value::from("[de] Damn it")
        );
        assert_eq!(g.err(a, "translate", p("stop")), 200054);
        assert_eq!(g.err(a, "translate", p("loud")), EMPTY_PARAMETER);
        assert_eq!(
            g.err(a, "translate", map! {"text": "x", "dst": "xx"}),
            200050
        );
        assert_eq!(
            g.err(
                a,
                "translate",
                map! {"text": "x", "dst": "en", "src": "tlh"}
            ),
            200050
        );
        // An empty src is detected; a src that is not a str is 200033.
        let t = g.ok(
            a,
            "translate",
            map! {"text": "привет", "dst": "en", "src": ""},
        );
        assert_eq!(field(&t, "source"), &Value::from("ru"));
        assert_eq!(
            g.err(a, "translate", map! {"text": "x", "dst": "en", "src": 1}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(a, "translate", map! {"text": "", "dst": "en"}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(
                a,
                "translate",
                map! {"text": "x", "dst": "en", "type": "sms"}
            ),
            EMPTY_PARAMETER
        );
        for (t, l) in [
            ("こんにちは", "ja"),
            ("안녕", "ko"),
            ("привет", "ru"),
            ("مرحبا", "ar"),
            ("hé", "en"),
        ] {
            assert_eq!(detect(t), l, "{t}");
        }
    }

    #[test]
    fn profanity_and_checks_flag_listed_words() {
        let mut g = Gate::new();
        let a = g.login(A);
        let p = g.ok(
            a,
            "profanity",
            map! {"text": "a BADWORD, crap-damn! scrap", "classify": true},
        );
        assert_eq!(
            p,
            map! {"text": "a *******, ****-****! scrap", "classification": Value::Array(vec!["abuse".into(), "vulgar".into()])}
        );
        assert_eq!(
            g.ok(a, "profanity", map! {"text": "fine"}),
            map! {"text": "fine"}
        );
        assert_eq!(g.err(a, "profanity", map! {"text": ""}), EMPTY_PARAMETER);

        assert_eq!(
            g.ok(a, "tcheck", map! {"text": "clean", "strategyId": "s"}),
            map! {"result": 0}
        );
        let c = g.ok(a, "tcheck", map! {"text": "damn crap Damn"});
        let wlist = Value::Array(vec!["damn".into(), "crap".into()]);
        assert_eq!(
            c,
            map! {"result": 2, "tags": Value::Array(vec![2.into()]), "text": "**** **** ****", "wlist": wlist}
        );
        assert_eq!(
            g.err(a, "tcheck", map! {"text": "x", "strategyId": 1}),
            EMPTY_PARAMETER
        );

        let flagged = map! {"result": 2, "tags": Value::Array(vec![1.into()])};
        assert_eq!(
            g.ok(
                a,
                "icheck",
                map! {"image": "http://x/badword.png", "type": 1}
            ),
            flagged
        );
        assert_eq!(
            g.ok(a, "icheck", map! {"image": "http://x/cat.png", "type": 1}),
            map! {"result": 0}
        );
        assert_eq!(
            g.err(a, "icheck", map! {"image": "x", "type": 3}),
            EMPTY_PARAMETER
        );
        let audio =
            map! {"audio": "badword", "type": 2, "lang": "en", "codec": "AMR_WB", "srate": 16000};
        assert_eq!(g.ok(a, "acheck", audio), flagged);
        assert_eq!(
            g.err(a, "acheck", map! {"audio": "x", "type": 2, "lang": "xx"}),
            200050
        );
        assert_eq!(
            g.err(
                a,
                "acheck",
                map! {"audio": "x", "type": 2, "lang": "en", "srate": 0}
            ),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.ok(
                a,
                "vcheck",
                map! {"video": "v", "type": 1, "videoName": "badword.mp4"}
            ),
            flagged
        );
        assert_eq!(
            g.ok(
                a,
                "vcheck",
                map! {"video": "v", "type": 1, "videoName": "cat.mp4"}
            ),
            map! {"result": 0}
        );
        assert_eq!(
            g.err(a, "vcheck", map! {"video": "v", "type": 1}),
            EMPTY_PARAMETER
        );
    }

    #[test]
    fn speech_to_text_is_a_fixed_transcript() {
        let mut g = Gate::new();
        let a = g.login(A);
        let s = g.ok(
            a,
            "speech2text",
            map! {"audio": "anything", "type": 2, "lang": "ja"},
        );
        assert_eq!(s, map! {"text": TRANSCRIPT, "lang": "ja"});
        assert_eq!(
            g.err(
                a,
                "speech2text",
                map! {"audio": "x", "type": 2, "lang": "kl"}
            ),
            200050
        );
        assert_eq!(
            g.err(
                a,
                "speech2text",
                map! {"audio": "", "type": 2, "lang": "en"}
            ),
            EMPTY_PARAMETER
        );
    }
}
