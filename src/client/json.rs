//! Just enough JSON to read `excludedUids` out of a push's `attrs`
//! (PROTOCOL.md section 6). Bounded depth; never panics.

/// The ids listed under the top-level `excludedUids` key of a JSON object,
/// whether written as numbers or as decimal strings. `None` when `text` is
/// not a JSON object or has no such array.
pub(crate) fn excluded_uids(text: &str) -> Option<Vec<i64>> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.peek()? != b'{' {
        return None;
    }
    p.i += 1;
    let mut found = None;
    loop {
        p.ws();
        match p.peek()? {
            b'}' => return found,
            b',' => {
                p.i += 1;
                continue;
            }
            _ => {}
        }
        let key = p.string()?;
        p.ws();
        if p.peek()? != b':' {
            return None;
        }
        p.i += 1;
        p.ws();
        if key == "excludedUids" && p.peek()? == b'[' {
            p.i += 1;
            let mut ids = Vec::new();
            loop {
                p.ws();
                match p.peek()? {
                    b']' => {
                        p.i += 1;
                        break;
                    }
                    b',' => p.i += 1,
                    b'"' => {
                        if let Ok(v) = p.string()?.trim().parse() {
                            ids.push(v);
                        }
                    }
                    _ => {
                        let start = p.i;
                        p.skip_value()?;
                        let raw = std::str::from_utf8(&p.s[start..p.i]).ok()?;
                        if let Ok(v) = raw.trim().parse::<i64>() {
                            ids.push(v);
                        } else if let Ok(f) = raw.trim().parse::<f64>() {
                            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                                ids.push(f as i64);
                            }
                        }
                    }
                }
            }
            found = Some(ids);
        } else {
            p.skip_value()?;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4)?;
                            self.i += 4;
                            let cp =
                                u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > 64 {
                    return None;
                }
                let close = if self.peek()? == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek()? {
                        c if c == close => {
                            self.i += 1;
                            self.depth -= 1;
                            return Some(());
                        }
                        b',' | b':' => self.i += 1,
                        _ => self.skip_value()?,
                    }
                }
            }
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b':') {
                        break;
                    }
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_strings() {
        assert_eq!(
            excluded_uids(
                r#"{"a":{"b":[1,"x"]},"excludedUids":[1, "2", 3.0, "z", 9007199254740993]}"#
            ),
            Some(vec![1, 2, 3, 9007199254740993])
        );
    }

    #[test]
    fn anything_else_is_none() {
        for t in [
            "",
            "x",
            "[1]",
            "{",
            r#"{"excludedUids":5}"#,
            "{\"a\":",
            "\"s\"",
        ] {
            assert_eq!(excluded_uids(t), None, "{t}");
        }
        assert_eq!(excluded_uids("{}"), None);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(excluded_uids(&deep), None);
    }
}
