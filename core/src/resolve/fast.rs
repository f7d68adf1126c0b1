//! A scanner for the plain block style most manifests are written in, an order of magnitude
//! faster than the full parser. It reads one document at a time and either returns exactly the
//! references the parser would find, or declines and leaves the document to the parser.
//!
//! The subset: printable ASCII and `\n` only (no tab, CR, or non-ASCII); block mappings whose keys
//! are plain words (`[A-Za-z0-9_][A-Za-z0-9_./-]*`); block sequences, compact ones included;
//! single-line plain, single-quoted and double-quoted scalars (no backslash escapes); flow
//! collections on one line; comments. Anything else declines: anchors, aliases, tags, block
//! scalars, multi-line scalars, complex keys, directives, `...`, anything after `---` on its line,
//! and every indentation this model cannot place. Declining is always safe, so each rule errs that
//! way; `agrees_with_the_parser` (tests, fuzz target) checks acceptance against the parser.

use super::scan::{Quoting, RefSpan};

/// Deeper nesting declines; both are far below the parser's limits.
const MAX_BLOCK_DEPTH: usize = 64;
const MAX_FLOW_DEPTH: usize = 16;
/// Longer keys decline (the parser allows a simple key up to 1024 characters).
const MAX_KEY_LEN: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

/// An open block collection and the column its keys or dashes sit at.
#[derive(Clone, Copy)]
struct Level {
    kind: Kind,
    col: usize,
}

/// A line that ended before its node's value: the value, if any, is on the following lines.
#[derive(Clone, Copy)]
enum Pending {
    None,
    /// `key:` at this column.
    MapValue(usize),
    /// `-` at this column.
    SeqItem(usize),
}

/// Scans one document, `text`, which starts `base` bytes into the whole text on its 1-based line
/// `first_line`. `None` means the document is outside the subset (valid YAML or not).
pub fn scan_document(
    text: &str,
    base: usize,
    first_line: usize,
    import_path: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<RefSpan>> {
    let bytes = text.as_bytes();
    if !bytes.iter().all(|&b| b == b'\n' || (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut doc = Document { refs: Vec::new(), stack: Vec::new(), pending: Pending::None, rooted: false };
    let mut start = 0;
    let mut line_no = first_line;
    while start < bytes.len() {
        let end = bytes[start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| start + i);
        let line = Line { text: &text[start..end], at: base + start, line: line_no };
        if start == 0 && line.text.starts_with("---") {
            let rest = line.text[3..].trim_start_matches(' ');
            if !(rest.is_empty() || rest.starts_with('#') && rest.len() < line.text.len() - 3) {
                return None;
            }
        } else {
            doc.line(&line, import_path)?;
        }
        start = end + 1;
        line_no += 1;
    }
    Some(doc.refs)
}

struct Line<'a> {
    text: &'a str,
    /// Byte offset of the line in the whole text.
    at: usize,
    line: usize,
}

struct Document {
    refs: Vec<RefSpan>,
    stack: Vec<Level>,
    pending: Pending,
    /// The root collection has begun (a second root is an error).
    rooted: bool,
}

impl Document {
    fn line(&mut self, line: &Line, import_path: &dyn Fn(&str) -> Option<String>) -> Option<()> {
        let b = line.text.as_bytes();
        let col = b.iter().take_while(|&&c| c == b' ').count();
        let Some(&first) = b.get(col) else { return Some(()) };
        if first == b'#' {
            return Some(());
        }
        if col == 0 && (line.text.starts_with("---") || line.text.starts_with("...") || first == b'%') {
            return None;
        }
        let dash = is_dash(&b[col..]);
        let opens = match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::MapValue(k) => col > k || (col == k && dash),
            Pending::SeqItem(c) => col > c,
            Pending::None => !self.rooted,
        };
        if opens {
            self.rooted = true;
            open(&mut self.stack, if dash { Kind::Seq } else { Kind::Map }, col)?;
        } else {
            while let Some(top) = self.stack.last() {
                if top.col > col || (top.col == col && top.kind == Kind::Seq && !dash) {
                    self.stack.pop();
                } else {
                    break;
                }
            }
            let top = self.stack.last()?;
            if top.col != col || (top.kind == Kind::Seq) != dash {
                return None;
            }
        }
        let mut scan = LineScan { line, import_path, refs: &mut self.refs };
        let mut at = col;
        loop {
            if !is_dash(&b[at..]) {
                if self.stack.last()?.kind != Kind::Map {
                    // A scalar item after `- `.
                    return scan.value_to_end(at);
                }
                return match scan.key(at)? {
                    None => {
                        self.pending = Pending::MapValue(at);
                        Some(())
                    }
                    Some(value_at) => scan.value_to_end(value_at),
                };
            }
            let dash_col = at;
            at += 1;
            while b.get(at) == Some(&b' ') {
                at += 1;
            }
            match b.get(at) {
                None | Some(b'#') => {
                    self.pending = Pending::SeqItem(dash_col);
                    return Some(());
                }
                _ if is_dash(&b[at..]) => open(&mut self.stack, Kind::Seq, at)?,
                _ if scan.is_key(at) => open(&mut self.stack, Kind::Map, at)?,
                _ => return scan.value_to_end(at),
            }
        }
    }
}

fn open(stack: &mut Vec<Level>, kind: Kind, col: usize) -> Option<()> {
    if stack.len() >= MAX_BLOCK_DEPTH {
        return None;
    }
    stack.push(Level { kind, col });
    Some(())
}

/// `-` followed by a space or the line's end: a block sequence entry.
fn is_dash(b: &[u8]) -> bool {
    b.first() == Some(&b'-') && matches!(b.get(1), None | Some(b' '))
}

fn is_key_start(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

/// The characters of a plain scalar inside a flow collection.
fn is_flow_plain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-' | b'=' | b'+')
}

/// The scalars of one line, recorded as the parser reports them.
struct LineScan<'a, 'b> {
    line: &'a Line<'a>,
    import_path: &'a dyn Fn(&str) -> Option<String>,
    refs: &'b mut Vec<RefSpan>,
}

impl<'a> LineScan<'a, '_> {
    fn bytes(&self) -> &'a [u8] {
        self.line.text.as_bytes()
    }

    fn record(&mut self, start: usize, end: usize, value: &str, quoting: Quoting, in_flow: bool) {
        if let Some(import_path) = (self.import_path)(value) {
            self.refs.push(RefSpan {
                range: self.line.at + start..self.line.at + end,
                quoting,
                in_flow,
                import_path,
                line: self.line.line,
                column: start + 1,
            });
        }
    }

    /// The end of a plain key starting at `at`, when `:` and a space or the line's end follow it.
    fn key_end(&self, at: usize) -> Option<usize> {
        let b = self.bytes();
        if !b.get(at).is_some_and(|&c| is_key_start(c)) {
            return None;
        }
        let end = at + b[at..].iter().take_while(|&&c| is_key_char(c)).count();
        (end - at <= MAX_KEY_LEN && b.get(end) == Some(&b':') && matches!(b.get(end + 1), None | Some(b' ')))
            .then_some(end)
    }

    fn is_key(&self, at: usize) -> bool {
        self.key_end(at).is_some()
    }

    /// Records the key at `at`; returns where its value starts on this line, `None` when it ends
    /// the line (a comment at most). Declines (outer `None`) when there is no key at `at`.
    fn key(&mut self, at: usize) -> Option<Option<usize>> {
        let end = self.key_end(at)?;
        let value = &self.line.text[at..end];
        self.record(at, end, value, Quoting::Plain, false);
        let b = self.bytes();
        let mut next = end + 1;
        while b.get(next) == Some(&b' ') {
            next += 1;
        }
        Some(match b.get(next) {
            None | Some(b'#') => None,
            Some(_) => Some(next),
        })
    }

    /// A block-context value that must be the rest of the line, a comment aside.
    fn value_to_end(&mut self, at: usize) -> Option<()> {
        let b = self.bytes();
        let end = match b[at] {
            b'"' | b'\'' => self.quoted(at, false)?,
            b'[' | b'{' => self.flow(at, 0)?,
            b'-' if matches!(b.get(at + 1), None | Some(b' ')) => return None,
            b'?' | b':' | b',' | b']' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' => {
                return None;
            }
            _ => return self.plain_to_end(at),
        };
        self.only_comment_after(end)
    }

    /// After a node: nothing but spaces, then the line's end or a comment after a space.
    fn only_comment_after(&self, end: usize) -> Option<()> {
        let rest = &self.line.text[end..];
        let trimmed = rest.trim_start_matches(' ');
        (trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())).then_some(())
    }

    /// A plain scalar from `at` to a ` #` comment or the line's end, trailing spaces excluded.
    fn plain_to_end(&mut self, at: usize) -> Option<()> {
        let text = self.line.text;
        let stop = text[at..].find(" #").map_or(text.len(), |i| at + i);
        let value = text[at..stop].trim_end_matches(' ');
        if value.contains(": ") || value.ends_with(':') {
            return None;
        }
        self.record(at, at + value.len(), value, Quoting::Plain, false);
        Some(())
    }

    /// A quoted scalar starting at `at` and closed on this line; returns the byte after it.
    fn quoted(&mut self, at: usize, in_flow: bool) -> Option<usize> {
        let text: &'a str = self.line.text;
        let b = self.bytes();
        if b[at] == b'"' {
            let close = at + 1 + text[at + 1..].find('"')?;
            let value = &text[at + 1..close];
            if value.contains('\\') {
                return None;
            }
            self.record(at, close + 1, value, Quoting::Double, in_flow);
            return Some(close + 1);
        }
        let mut i = at + 1;
        loop {
            i += text[i..].find('\'')?;
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
            } else {
                break;
            }
        }
        let value = text[at + 1..i].replace("''", "'");
        self.record(at, i + 1, &value, Quoting::Single, in_flow);
        Some(i + 1)
    }

    /// A flow collection starting at `at` and closed on this line; returns the byte after it.
    fn flow(&mut self, at: usize, depth: usize) -> Option<usize> {
        if depth >= MAX_FLOW_DEPTH {
            return None;
        }
        let b = self.bytes();
        let (close, mapping) = if b[at] == b'[' { (b']', false) } else { (b'}', true) };
        let mut i = skip_spaces(b, at + 1);
        if b.get(i) == Some(&close) {
            return Some(i + 1);
        }
        loop {
            if mapping {
                let key = i;
                i = self.flow_scalar(i)?;
                if i - key > MAX_KEY_LEN || b.get(i) != Some(&b':') || b.get(i + 1) != Some(&b' ') {
                    return None;
                }
                i = skip_spaces(b, i + 1);
            }
            i = match b.get(i)? {
                b'[' | b'{' => self.flow(i, depth + 1)?,
                _ => self.flow_scalar(i)?,
            };
            i = skip_spaces(b, i);
            match b.get(i)? {
                b',' => {
                    i = skip_spaces(b, i + 1);
                    if b.get(i) == Some(&close) {
                        return None;
                    }
                }
                &c if c == close => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// A quoted scalar or a plain word inside a flow collection; returns the byte after it.
    fn flow_scalar(&mut self, at: usize) -> Option<usize> {
        let b = self.bytes();
        match *b.get(at)? {
            b'"' | b'\'' => self.quoted(at, true),
            c if is_flow_plain_char(c) && (c != b'-' || b.get(at + 1).is_some_and(u8::is_ascii_alphanumeric)) => {
                let end = at + b[at..].iter().take_while(|&&c| is_flow_plain_char(c)).count();
                let value = &self.line.text[at..end];
                self.record(at, end, value, Quoting::Plain, true);
                Some(end)
            }
            _ => None,
        }
    }
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}
