//! The results and arguments of the file API (docs/Files.md).

use serde::Deserialize;

/// A file to send: its name and its bytes.
///
/// Stands in for the browser `File` object that JavaScript `sendFile`, `sendGroupFile` and
/// `sendRoomFile` take in their `file` argument: the name gives the extension sent in the
/// message's attrs (`{"rtm":{"sign":...,"ext":...}}`), the bytes are uploaded. A Rust
/// addition (JavaScript reads both from its `File`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RtmFile {
    /// The file name, e.g. `"photo.jpg"`; the text after its last `.` is the extension
    /// (none when it has no `.` or ends with one).
    pub name: String,
    /// The file's content.
    pub data: Vec<u8>,
}

impl RtmFile {
    /// A file named `name` holding `data`. A Rust addition, like [`RtmFile`] itself.
    pub fn new(name: impl Into<String>, data: impl Into<Vec<u8>>) -> RtmFile {
        RtmFile {
            name: name.into(),
            data: data.into(),
        }
    }
}

/// A token to upload a file through the file proxy.
///
/// Mirrors the `data` (`{token, endpoint}`) of JavaScript `fileToken`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct FileToken {
    /// The upload token; the file sends sign the file with it.
    pub token: String,
    /// `host:port` of the file gate behind the proxy.
    pub endpoint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_its_name_and_bytes() {
        let f = RtmFile::new("a.txt", b"hi".as_slice());
        assert_eq!((f.name.as_str(), f.data.as_slice()), ("a.txt", &b"hi"[..]));
        assert_eq!(FileToken::default().token, "");
    }
}
