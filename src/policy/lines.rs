//! Locates a JSON pointer in a document's text, so errors can name the line a policy author edits.

/// The 1-based line where the value at `pointer` starts in `text`, if it can be found.
pub fn line_of(text: &str, pointer: &str) -> Option<usize> {
    let target: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        line: 1,
    };
    s.ws();
    s.find(&target, 0)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
        }
        self.i += 1;
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.bump();
        }
    }

    /// At the start of a value: returns its line when `path[depth..]` is empty, else descends.
    fn find(&mut self, path: &[String], depth: usize) -> Option<usize> {
        let Some(want) = path.get(depth) else {
            return Some(self.line);
        };
        match self.peek()? {
            b'{' => {
                self.bump();
                loop {
                    self.ws();
                    if self.peek()? == b'}' {
                        return None;
                    }
                    let key = self.string()?;
                    self.ws();
                    self.bump(); // ':'
                    self.ws();
                    if &key == want {
                        return self.find(path, depth + 1);
                    }
                    self.skip()?;
                    self.ws();
                    if self.peek()? == b',' {
                        self.bump();
                    }
                }
            }
            b'[' => {
                self.bump();
                let index: usize = want.parse().ok()?;
                let mut n = 0;
                loop {
                    self.ws();
                    if self.peek()? == b']' {
                        return None;
                    }
                    if n == index {
                        return self.find(path, depth + 1);
                    }
                    self.skip()?;
                    self.ws();
                    if self.peek()? == b',' {
                        self.bump();
                    }
                    n += 1;
                }
            }
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.skip_string()?;
        let raw = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        crate::scim::strict_json::parse(raw.as_bytes(), 1)
            .ok()?
            .as_str()
            .map(str::to_string)
    }

    fn skip_string(&mut self) -> Option<()> {
        self.bump();
        loop {
            match self.peek()? {
                b'\\' => {
                    self.bump();
                    self.bump();
                }
                b'"' => {
                    self.bump();
                    return Some(());
                }
                _ => self.bump(),
            }
        }
    }

    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.bump();
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.bump();
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.bump();
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::line_of;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"a\": 1,\n  \"rules\": [\n    {\"id\": \"x\"},\n    {\n      \"id\": \"y\",\n      \"when\": {\"op\": [1, 2]}\n    }\n  ]\n}";
        assert_eq!(line_of(text, "/a"), Some(2));
        assert_eq!(line_of(text, "/rules/1/id"), Some(6));
        assert_eq!(line_of(text, "/rules/1/when/op/1"), Some(7));
        assert_eq!(line_of(text, "/rules/0"), Some(4));
        assert_eq!(line_of(text, "/nope"), None);
        assert_eq!(line_of(text, ""), Some(1));
    }
}
