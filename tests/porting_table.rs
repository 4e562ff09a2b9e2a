//! docs/porting.md's table of every JavaScript method against the code, so
//! that it cannot drift: each row names a public method of `RtmClient` with
//! the snake_case of the JavaScript name and the callback's `data` type the
//! row states, and every public method of `RtmClient` is in one of the two
//! tables. The sources are read from `src/` (every `impl RtmClient` block).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How many methods the JavaScript client has (docs/porting.md).
const JS_METHODS: usize = 91;

struct Row {
    js: String,
    rust: String,
    data: String,
    pending: bool,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The table rows (`| ... |` lines) of the section headed `heading`.
fn section_rows<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/porting.md has no `{heading}`"));
    let body = &doc[start + heading.len() + 2..];
    let end = body.find("\n## ").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

/// The text between the first pair of backticks of a cell.
fn ticked(cell: &str) -> &str {
    cell.split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `code` in cell {cell:?}"))
}

/// snake_case by the rule docs/porting.md states: a word starts at a capital
/// after a lowercase letter (skipping digits), and at the last capital of a
/// run of capitals followed by a lowercase letter.
fn snake(js: &str) -> String {
    let cs: Vec<char> = js.chars().collect();
    let mut out = String::new();
    for (i, &c) in cs.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = cs[..i].iter().rev().find(|p| !p.is_ascii_digit());
            let next_lower = cs.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let after_lower = prev.is_some_and(|p| p.is_ascii_lowercase());
            let ends_run = prev.is_some_and(|p| p.is_ascii_uppercase()) && next_lower;
            if after_lower || ends_run {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `src` with comments, string and char literals blanked (so that braces
/// and `pub fn` in them do not count), same length.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for x in &mut out[from..to] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            i + 2
                + rest[2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(rest.len() - 2, |p| p + 2)
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat(b'#').take(hashes))
                .collect();
            let body = 2 + hashes;
            i + body
                + rest[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(rest.len() - body, |p| p + close.len())
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            i + (j + 1).min(rest.len())
        } else if rest[0] == b'\'' && (rest.get(1) == Some(&b'\\') || rest.get(2) == Some(&b'\'')) {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'\'' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            i + (j + 1).min(rest.len())
        } else {
            i += 1;
            continue;
        };
        blank(&mut out, i, end.min(b.len()));
        i = end.max(i + 1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every `pub fn` directly inside an `impl RtmClient` block under `dir`:
/// name -> signature (from `pub fn` to the body's `{`, whitespace removed).
fn rtm_client_methods(dir: &Path, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rtm_client_methods(&path, found);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let code = code_only(&read(&path));
        let mut from = 0;
        while let Some(at) = code[from..].find("impl RtmClient {") {
            let open = from + at + "impl RtmClient ".len();
            let mut depth = 0;
            let mut i = open;
            let bytes = code.as_bytes();
            loop {
                match bytes[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    // `#[doc(hidden)]` methods (test hooks) are not part of the API.
                    b'p' if depth == 1
                        && code[i..].starts_with("pub fn ")
                        && !attributes_before(&code[..i]).contains("#[doc(hidden)]") =>
                    {
                        let sig = &code[i..];
                        let sig = &sig[..sig.find('{').expect("a body")];
                        let name: String = sig["pub fn ".len()..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        let flat: String = sig.chars().filter(|c| !c.is_whitespace()).collect();
                        let previous = found.insert(name.clone(), flat);
                        assert!(previous.is_none(), "RtmClient::{name} twice");
                    }
                    _ => {}
                }
                i += 1;
            }
            from = i;
        }
    }
}

/// The text between the previous item's end (`;` or `}`) and `at`: the
/// attributes of the item starting there.
fn attributes_before(code: &str) -> &str {
    let start = code.rfind([';', '}']).map_or(0, |p| p + 1);
    &code[start..]
}

/// `(E, T)` of `callback: impl FnOnce(Option<E>, Option<T>)`, or the raw
/// argument list when the callback is not of that shape; `None` without a
/// callback.
fn callback_types(sig: &str) -> Option<(String, String)> {
    let at = sig.find("callback:implFnOnce(")? + "callback:implFnOnce(".len();
    let mut depth = 0;
    let mut split = None;
    let mut end = at;
    for (i, c) in sig[at..].char_indices() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' if depth == 0 => {
                end = at + i;
                break;
            }
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => split = Some(at + i),
            _ => {}
        }
    }
    let args = &sig[at..end];
    let unwrap = |s: &str| s["Option<".len()..s.len() - 1].to_string();
    Some(match split {
        Some(s) if args.starts_with("Option<") && sig[s + 1..].starts_with("Option<") => {
            (unwrap(&sig[at..s]), unwrap(&sig[s + 1..end]))
        }
        _ => (String::new(), args.to_string()),
    })
}

#[test]
fn the_porting_table_matches_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = read(&root.join("docs/porting.md"));
    let mut methods = BTreeMap::new();
    rtm_client_methods(&root.join("src"), &mut methods);
    assert!(
        methods.contains_key("send_message"),
        "the source scan found {methods:?}"
    );

    let rows: Vec<Row> = section_rows(&doc, "## Every JavaScript method")
        .into_iter()
        .map(|cells| {
            assert_eq!(cells.len(), 4, "row {cells:?}");
            Row {
                js: ticked(cells[0]).to_string(),
                rust: ticked(cells[1]).to_string(),
                data: if cells[2].contains('`') {
                    ticked(cells[2])
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect()
                } else {
                    cells[2].to_string()
                },
                pending: cells[1].contains("(pending)"),
            }
        })
        .collect();
    let js: BTreeSet<&str> = rows.iter().map(|r| r.js.as_str()).collect();
    assert_eq!(js.len(), rows.len(), "a JavaScript method is listed twice");
    assert_eq!(
        rows.len(),
        JS_METHODS,
        "the table lists every JavaScript method"
    );

    let mut problems = Vec::new();
    for r in &rows {
        if r.rust != snake(&r.js) {
            problems.push(format!(
                "{}: Rust name {} is not {}",
                r.js,
                r.rust,
                snake(&r.js)
            ));
        }
        let sig = methods.get(&r.rust);
        match (sig, r.pending) {
            (Some(_), true) => problems.push(format!(
                "{}: marked pending but RtmClient::{} exists; remove the marker",
                r.js, r.rust
            )),
            (None, false) => problems.push(format!("{}: no RtmClient::{}", r.js, r.rust)),
            (None, true) => {}
            (Some(sig), false) => {
                let got = match callback_types(sig) {
                    None => "(no callback)".to_string(),
                    Some((e, t)) if e.is_empty() => format!("({t})"),
                    Some((e, t)) => {
                        let want_e = if t == "SendAnswer" {
                            "SendError"
                        } else {
                            "RtmError"
                        };
                        if e != want_e {
                            problems.push(format!("{}: error type {e}, not {want_e}", r.js));
                        }
                        t
                    }
                };
                if got != r.data {
                    problems.push(format!(
                        "{}: the table says {}, the code {got}",
                        r.js, r.data
                    ));
                }
            }
        }
    }

    let others: BTreeSet<String> = section_rows(&doc, "## Other public methods of RtmClient")
        .into_iter()
        .map(|cells| ticked(cells[0]).to_string())
        .collect();
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.rust.as_str()).collect();
    for name in methods.keys() {
        if !listed.contains(name.as_str()) && !others.contains(name) {
            problems.push(format!(
                "RtmClient::{name} is in neither table of docs/porting.md"
            ));
        }
    }
    for name in &others {
        if !methods.contains_key(name) {
            problems.push(format!(
                "`{name}` is listed but RtmClient has no such method"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/porting.md:\n{}",
        problems.join("\n")
    );

    let ported = rows.iter().filter(|r| !r.pending).count();
    let claim = format!("{ported} of the JavaScript SDK's {JS_METHODS} client methods");
    let readme = read(&root.join("README.md"));
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        readme.contains(&claim),
        "README.md's \"What it is\" should say \"{claim}\""
    );
}

#[test]
fn snake_case_rule() {
    for (js, rust) in [
        ("getP2PMessage", "get_p2p_message"),
        ("getP2PUnreadMessageNum", "get_p2p_unread_message_num"),
        ("speech2Text", "speech2_text"),
        ("startAutoReconnect", "start_auto_reconnect"),
        ("translate", "translate"),
        ("getRoomsOpenInfo", "get_rooms_open_info"),
    ] {
        assert_eq!(snake(js), rust);
    }
}

#[test]
fn the_scanner_ignores_comments_and_strings() {
    let src = "impl RtmClient {\n    // pub fn commented() {\n    /* { */\n    pub fn a(&self, s: &str) { let _ = \"}{\"; let _ = '{'; }\n    fn private(&self) {}\n    pub fn b<'a>(&'a self,\n        callback: impl FnOnce(Option<RtmError>, Option<HashMap<i64, i32>>) + Send + 'static) {}\n}\nimpl Other { pub fn c() {} }\n";
    let code = code_only(src);
    assert_eq!(code.len(), src.len());
    let dir = std::env::temp_dir().join(format!("porting_table_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x.rs"), src).unwrap();
    let mut found = BTreeMap::new();
    rtm_client_methods(&dir, &mut found);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(callback_types(&found["a"]), None);
    assert_eq!(
        callback_types(&found["b"]),
        Some(("RtmError".into(), "HashMap<i64,i32>".into()))
    );
}
