//! Cutting a policy file into pieces that `v6fw check` can read one at a
//! time: its tables (a header and the lines up to the next), and a long
//! table into runs of at most [`CHUNK_LINES`] lines, cut only between two
//! key/value lines (never inside a multi-line string, array or inline
//! table). Reading each piece, with the tables it belongs to as context,
//! keeps `check` linear in the file however many errors it holds.

/// The most lines of one piece (a long table is cut into runs this long).
pub(super) const CHUNK_LINES: usize = 256;

/// One table of the file: lines `start..end` (0-based), the first being its
/// header unless it is the part before any header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Section {
    /// Its first line.
    pub(super) start: usize,
    /// One past its last line.
    pub(super) end: usize,
    /// The header's key path (`[connections.eth0.open]`: `connections`,
    /// `eth0`, `open`); `None` before the first header or for a header that
    /// does not read.
    pub(super) path: Option<Vec<String>>,
    /// Where its runs start, `start` first.
    pub(super) chunks: Vec<usize>,
}

impl Section {
    /// Whether `other` is a table this one is inside of (its path a
    /// proper prefix of this one's).
    pub(super) fn is_inside(&self, other: &Section) -> bool {
        match (&self.path, &other.path) {
            (Some(mine), Some(theirs)) => {
                theirs.len() < mine.len() && mine.iter().zip(theirs).all(|(a, b)| a == b)
            }
            _ => false,
        }
    }

    /// The runs, as line ranges.
    pub(super) fn runs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let ends = self.chunks.iter().skip(1).copied().chain([self.end]);
        self.chunks.iter().copied().zip(ends)
    }
}

/// Whether a line is a table header, as [`super::set_aside`] reads one.
pub(super) fn is_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

/// The sections of `lines` and their runs.
pub(super) fn sections(lines: &[&str]) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut lex = Lex::default();
    for (i, line) in lines.iter().enumerate() {
        let at_rest = lex.at_rest();
        lex.line(line);
        if at_rest && is_header(line) {
            if let Some(last) = out.last_mut() {
                last.end = i;
            }
            out.push(Section {
                start: i,
                end: lines.len(),
                path: header_path(line),
                chunks: vec![i],
            });
            continue;
        }
        if out.is_empty() {
            out.push(Section {
                start: 0,
                end: lines.len(),
                path: None,
                chunks: vec![0],
            });
        }
        if let Some(s) = out.last_mut() {
            let run_start = s.chunks.last().copied().unwrap_or(s.start);
            if at_rest && i - run_start >= CHUNK_LINES {
                s.chunks.push(i);
            }
        }
    }
    out
}

/// The key path of a header line, read by toml itself.
fn header_path(line: &str) -> Option<Vec<String>> {
    let mut table: toml::Table = toml::from_str(line).ok()?;
    let mut path = Vec::new();
    while table.len() == 1 {
        let (key, value) = table.into_iter().next()?;
        path.push(key);
        match value {
            toml::Value::Table(t) => table = t,
            toml::Value::Array(_) => break,
            _ => return None,
        }
    }
    Some(path)
}

/// Where a line ends, as far as cutting goes: inside a multi-line string,
/// or inside brackets or braces.
#[derive(Debug, Default, Clone, Copy)]
struct Lex {
    basic: bool,
    literal: bool,
    depth: u32,
}

impl Lex {
    /// Whether the next line starts outside every string and bracket.
    fn at_rest(self) -> bool {
        !self.basic && !self.literal && self.depth == 0
    }

    /// Reads one line.
    fn line(&mut self, line: &str) {
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            let step = c.len_utf8();
            if self.basic || self.literal {
                let (close, escape) = if self.basic {
                    ("\"\"\"", true)
                } else {
                    ("'''", false)
                };
                if rest.starts_with(close) {
                    (self.basic, self.literal) = (false, false);
                    rest = rest.get(3..).unwrap_or("");
                } else if escape && c == '\\' {
                    rest = skip_chars(rest, 2);
                } else {
                    rest = rest.get(step..).unwrap_or("");
                }
                continue;
            }
            match c {
                '#' => return,
                '"' if rest.starts_with("\"\"\"") => {
                    self.basic = true;
                    rest = rest.get(3..).unwrap_or("");
                    continue;
                }
                '\'' if rest.starts_with("'''") => {
                    self.literal = true;
                    rest = rest.get(3..).unwrap_or("");
                    continue;
                }
                '"' | '\'' => {
                    rest = after_string(rest, c);
                    continue;
                }
                '[' | '{' => self.depth += 1,
                ']' | '}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            rest = rest.get(step..).unwrap_or("");
        }
    }
}

/// `s` after its first `n` characters.
fn skip_chars(s: &str, n: usize) -> &str {
    s.char_indices()
        .nth(n)
        .map_or("", |(i, _)| s.get(i..).unwrap_or(""))
}

/// What follows the one-line string that `s` starts with (quote `q`;
/// backslash escapes in `"` strings).
fn after_string(s: &str, q: char) -> &str {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == '\\' && q == '"' {
            chars.next();
        } else if c == q {
            return s.get(i + c.len_utf8()..).unwrap_or("");
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_runs_are_cut_only_between_lines() {
        let mut text = String::from("state = true\n[globals]\n");
        for p in 1..=600 {
            text.push_str(&format!("\"{p}/tcp\" = \"x\"\n"));
        }
        // A multi-line array across a would-be cut, and a multi-line string.
        text.push_str("[connections.eth0]\nid = \"eth0\"\n[connections.eth0.open]\n");
        let lines: Vec<&str> = text.lines().collect();
        let s = sections(&lines);
        let paths: Vec<Option<Vec<String>>> = s.iter().map(|s| s.path.clone()).collect();
        let p = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            paths,
            [
                None,
                p(&["globals"]),
                p(&["connections", "eth0"]),
                p(&["connections", "eth0", "open"])
            ]
        );
        assert_eq!(s[1].chunks, [1, 1 + CHUNK_LINES, 1 + 2 * CHUNK_LINES]);
        assert!(s[3].is_inside(&s[2]) && !s[2].is_inside(&s[3]) && !s[1].is_inside(&s[0]));
        let runs: Vec<(usize, usize)> = s[1].runs().collect();
        assert_eq!(runs.last(), Some(&(1 + 2 * CHUNK_LINES, 602)));

        let mut long = String::from("[globals]\n\"1/tcp\" = { name = \"x\", from = [\n");
        for _ in 0..300 {
            long.push_str("  \"fd00::/8\", # ] a comment\n");
        }
        long.push_str("] }\n\"2/tcp\" = \"\"\"\n[not a header]\n\"\"\"\n\"3/tcp\" = 'it''s'\n");
        let lines: Vec<&str> = long.lines().collect();
        let s = sections(&lines);
        assert_eq!(s.len(), 1, "{s:?}");
        // The first cut waits for the array's end (line 302), none falls
        // in the multi-line string after it.
        assert_eq!(s[0].chunks, [0, 303], "never inside the array");
    }
}
