//! The results of the value-added methods (the JavaScript docs' ValueAdded page,
//! docs/ValueAdded.md): translation, profanity filtering, content checks and speech
//! recognition. Wire keys in camelCase (`sourceText`, ...) become snake_case fields.

use serde::Deserialize;

/// A translation.
///
/// Mirrors the `data` (`{source, target, sourceText, targetText}`) of JavaScript
/// `translate`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Translation {
    /// The language of the original text (the given one, or the detected one).
    pub source: String,
    /// The target language.
    pub target: String,
    /// The original text (`sourceText`).
    pub source_text: String,
    /// The translated text (`targetText`).
    pub target_text: String,
}

/// A text with its sensitive words masked.
///
/// Mirrors the `data` (`{text, classification?}`) of JavaScript `profanity`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct ProfanityResult {
    /// The text, each sensitive word replaced by `*`s.
    pub text: String,
    /// The classes of the sensitive words found, when `classify` was asked for.
    #[serde(default)]
    pub classification: Option<Vec<String>>,
}

/// The verdict of a content check.
///
/// Mirrors the `data` (`{result, text?, tags?, wlist?}`) of JavaScript `textCheck`,
/// `imageCheck`, `audioCheck` and `videoCheck`'s callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct CheckResult {
    /// 0: the content passes; 2: it does not.
    pub result: i32,
    /// `textCheck` only: the text with the sensitive words replaced by `*`s, when any was
    /// found.
    #[serde(default)]
    pub text: Option<String>,
    /// The classes (numbers) the content was flagged for.
    #[serde(default)]
    pub tags: Option<Vec<i32>>,
    /// `textCheck` only: the sensitive words found.
    #[serde(default)]
    pub wlist: Option<Vec<String>>,
}

/// The text recognised in an audio.
///
/// Mirrors the `data` (`{text, lang}`) of JavaScript `speech2Text`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct Transcript {
    /// The recognised text.
    pub text: String,
    /// The recognised language.
    pub lang: String,
}
