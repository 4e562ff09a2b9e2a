//! The value-added API: the methods of the JavaScript docs' ValueAdded page
//! (docs/ValueAdded.md), plus `profanity` of the JavaScript SDK. JavaScript's
//! `speech2Text` is `speech2_text` (the crate's snake_case rule, docs/porting.md).

use super::decode::{answer, Answer};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::types::{CheckResult, ProfanityResult, Transcript, Translation};
use crate::value::{Encoded, MapBuilder};

specs! {
    TRANSLATE = "translate", Safe;
    PROFANITY = "profanity", Safe;
    TEXT_CHECK = "tcheck", Safe;
    IMAGE_CHECK = "icheck", Safe;
    AUDIO_CHECK = "acheck", Safe;
    VIDEO_CHECK = "vcheck", Safe;
    SPEECH_TO_TEXT = "speech2text", Safe;
}

answer!(Translation, ProfanityResult, CheckResult, Transcript);

/// The request of the audio methods (`acheck`, `speech2text`), or why it cannot be
/// sent.
fn audio_request(
    audio: &str,
    audio_type: u8,
    lang: &str,
    codec: Option<&str>,
    srate: Option<i32>,
) -> Result<MapBuilder, &'static str> {
    if audio.is_empty() || lang.is_empty() {
        return Err("audio and lang must not be empty");
    }
    media_type(audio_type)?;
    Ok(MapBuilder::new()
        .put("audio", audio)
        .put("type", audio_type)
        .put("lang", lang)
        .put_opt("codec", codec)
        .put_opt("srate", srate))
}

/// A media `type`: 1 (a URL) or 2 (the content).
fn media_type(t: u8) -> Result<(), &'static str> {
    match t {
        1 | 2 => Ok(()),
        _ => Err("type must be 1 (url) or 2 (content)"),
    }
}

impl RtmClient {
    /// Sends `request` with its answer decoded through `W`, or completes
    /// with 200033 when it could not be built.
    fn quest_or_reject<W: Answer>(
        &self,
        spec: &'static Spec,
        request: Result<Encoded, &'static str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<W::Out>) + Send + 'static,
    ) {
        match request {
            Ok(payload) => self.quest::<W>(spec, payload, timeout, callback),
            Err(ex) => self.reject(ex, |e| e, callback),
        }
    }

    /// Sends a check `request` (with `strategyId` when given).
    fn check(
        &self,
        spec: &'static Spec,
        request: Result<MapBuilder, &'static str>,
        strategy_id: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<CheckResult>) + Send + 'static,
    ) {
        let request = request.map(|b| b.put_opt("strategyId", strategy_id).build());
        self.quest_or_reject::<CheckResult>(spec, request, timeout, callback);
    }

    /// Sends a media check (`icheck`, `vcheck`) of `media` under `key`.
    #[allow(clippy::too_many_arguments)]
    fn media_check(
        &self,
        spec: &'static Spec,
        key: &str,
        media: &str,
        media_kind: u8,
        extra: Option<(&str, &str)>,
        strategy_id: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<CheckResult>) + Send + 'static,
    ) {
        let request = if media.is_empty() || extra.is_some_and(|(_, v)| v.is_empty()) {
            Err("the content and its name must not be empty")
        } else {
            media_type(media_kind).map(|()| {
                let b = MapBuilder::new().put(key, media).put("type", media_kind);
                match extra {
                    Some((k, v)) => b.put(k, v),
                    None => b,
                }
            })
        };
        self.check(spec, request, strategy_id, timeout, callback);
    }

    /// Translates a text (`translate {text, dst, src?, type?, profanity?}`,
    /// answer `{source, target, sourceText, targetText}`). Mirrors JavaScript
    /// `translate(originalMessage, originalLanguage, targetLanguage, type,
    /// profanity, timeout, callback)`.
    ///
    /// `original_language` `None` or `Some("")`: detected (`Some("")` is sent as
    /// `""`, as JavaScript sends it, and means the same). `translate_type`: `"chat"` (the
    /// default) or `"mail"`; `profanity`: `"off"` (the default), `"stop"`
    /// (fail with 200054 when the text has sensitive words) or `"censor"`
    /// (mask them). An empty text or target language completes with 200033
    /// without sending; an unsupported language is 200050.
    #[allow(clippy::too_many_arguments)]
    pub fn translate(
        &self,
        original_message: &str,
        original_language: Option<&str>,
        target_language: &str,
        translate_type: Option<&str>,
        profanity: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Translation>) + Send + 'static,
    ) {
        if original_message.is_empty() || target_language.is_empty() {
            return self.reject(
                "text and target language must not be empty",
                |e| e,
                callback,
            );
        }
        let payload = MapBuilder::new()
            .put("text", original_message)
            .put("dst", target_language)
            .put_opt("src", original_language)
            .put_opt("type", translate_type)
            .put_opt("profanity", profanity)
            .build();
        self.quest::<Translation>(&TRANSLATE, payload, timeout, callback);
    }

    /// Masks the sensitive words of a text (`profanity {text, classify?}`,
    /// answer `{text, classification?}`). Mirrors JavaScript
    /// `profanity(text, classify, timeout, callback)`. `classify`
    /// `Some(true)` also asks for the classes found. An empty text completes
    /// with 200033 without sending.
    pub fn profanity(
        &self,
        text: &str,
        classify: Option<bool>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<ProfanityResult>) + Send + 'static,
    ) {
        if text.is_empty() {
            return self.reject("text must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("text", text)
            .put_opt("classify", classify)
            .build();
        self.quest::<ProfanityResult>(&PROFANITY, payload, timeout, callback);
    }

    /// Checks a text (`tcheck {text, strategyId?}`). Mirrors JavaScript
    /// `textCheck(text, strategyId, timeout, callback)`. The answer's
    /// `result` is 0 (passes) or 2 (fails, with `text` masked, `tags` and
    /// `wlist`). An empty text completes with 200033 without sending.
    pub fn text_check(
        &self,
        text: &str,
        strategy_id: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<CheckResult>) + Send + 'static,
    ) {
        let request = match text {
            "" => Err("text must not be empty"),
            t => Ok(MapBuilder::new().put("text", t)),
        };
        self.check(&TEXT_CHECK, request, strategy_id, timeout, callback);
    }

    /// Checks an image (`icheck {image, type, strategyId?}`). Mirrors
    /// JavaScript `imageCheck(image, type, strategyId, timeout, callback)`.
    /// `image_type` 1: `image` is a URL; 2: the content. An empty image or
    /// another type completes with 200033 without sending.
    pub fn image_check(
        &self,
        image: &str,
        image_type: u8,
        strategy_id: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<CheckResult>) + Send + 'static,
    ) {
        self.media_check(
            &IMAGE_CHECK,
            "image",
            image,
            image_type,
            None,
            strategy_id,
            timeout,
            callback,
        );
    }

    /// Checks an audio (`acheck {audio, type, lang, codec?, srate?,
    /// strategyId?}`). Mirrors JavaScript `audioCheck(audio, type, lang,
    /// codec, srate, strategyId, timeout, callback)`. `audio_type` as
    /// [`RtmClient::image_check`]; `codec` defaults to AMR_WB and `srate` to
    /// 16000 on the server. An empty audio or lang, or another type,
    /// completes with 200033 without sending; an unsupported language is
    /// 200050.
    #[allow(clippy::too_many_arguments)]
    pub fn audio_check(
        &self,
        audio: &str,
        audio_type: u8,
        lang: &str,
        codec: Option<&str>,
        srate: Option<i32>,
        strategy_id: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<CheckResult>) + Send + 'static,
    ) {
        let request = audio_request(audio, audio_type, lang, codec, srate);
        self.check(&AUDIO_CHECK, request, strategy_id, timeout, callback);
    }

    /// Checks a video (`vcheck {video, type, videoName, strategyId?}`).
    /// Mirrors JavaScript `videoCheck(video, type, videoName, strategyId,
    /// timeout, callback)`. `video_type` as [`RtmClient::image_check`]. An
    /// empty video or name, or another type, completes with 200033 without
    /// sending.
    #[allow(clippy::too_many_arguments)]
    pub fn video_check(
        &self,
        video: &str,
        video_type: u8,
        video_name: &str,
        strategy_id: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<CheckResult>) + Send + 'static,
    ) {
        let name = Some(("videoName", video_name));
        self.media_check(
            &VIDEO_CHECK,
            "video",
            video,
            video_type,
            name,
            strategy_id,
            timeout,
            callback,
        );
    }

    /// Recognises the speech of an audio (`speech2text {audio, type, lang,
    /// codec?, srate?}`, answer `{text, lang}`). Mirrors JavaScript
    /// `speech2Text(audio, type, lang, codec, srate, timeout, callback)`.
    /// Arguments and errors as [`RtmClient::audio_check`].
    #[allow(clippy::too_many_arguments)]
    pub fn speech2_text(
        &self,
        audio: &str,
        audio_type: u8,
        lang: &str,
        codec: Option<&str>,
        srate: Option<i32>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Transcript>) + Send + 'static,
    ) {
        let request = audio_request(audio, audio_type, lang, codec, srate).map(MapBuilder::build);
        self.quest_or_reject::<Transcript>(&SPEECH_TO_TEXT, request, timeout, callback);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::decode::decode;
    use rmpv::Value;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    #[test]
    fn camel_case_keys_and_optional_fields() {
        let t = map(vec![
            ("source", "en".into()),
            ("target", "fr".into()),
            ("sourceText", "a".into()),
            ("targetText", "b".into()),
        ]);
        let t = decode::<Translation>("translate", t).unwrap();
        assert_eq!((t.source_text.as_str(), t.target_text.as_str()), ("a", "b"));
        let c = decode::<CheckResult>("tcheck", map(vec![("result", 0.into())])).unwrap();
        assert_eq!(c, CheckResult::default());
        let c = map(vec![
            ("result", 2.into()),
            ("tags", Value::Array(vec![1.into()])),
            ("wlist", Value::Array(vec!["w".into()])),
        ]);
        let c = decode::<CheckResult>("tcheck", c).unwrap();
        assert_eq!(
            (c.tags, c.wlist, c.text),
            (Some(vec![1]), Some(vec!["w".into()]), None)
        );
        assert!(decode::<CheckResult>("tcheck", map(vec![])).is_err());
        assert!(decode::<Translation>("translate", map(vec![("source", "en".into())])).is_err());
    }

    #[test]
    fn audio_requests_leave_out_what_is_none() {
        let keys = |b: MapBuilder| -> Vec<String> {
            let v = b.build().to_value();
            let m = v.as_map().unwrap();
            m.iter()
                .map(|(k, _)| k.as_str().unwrap().to_owned())
                .collect()
        };
        let b = audio_request("a", 1, "en", None, Some(8000)).unwrap();
        assert_eq!(keys(b), ["audio", "type", "lang", "srate"]);
        assert!(audio_request("a", 3, "en", None, None).is_err());
        assert!(audio_request("", 1, "en", None, None).is_err());
        assert!(audio_request("a", 1, "", None, None).is_err());
    }
}
