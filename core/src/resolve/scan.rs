//! Finding what to replace: one pass of a position-reporting YAML parser over the original text
//! yields each document's byte range and each image-reference scalar's exact byte span and quote
//! style. Nothing is re-encoded; the splicer replaces those spans and keeps every other byte.

use std::collections::HashMap;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use super::fast;
use crate::error::{Error, Result};

/// How a scalar was written, which decides how its replacement is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quoting {
    Plain,
    Single,
    Double,
}

/// A scalar to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSpan {
    /// Bytes of the scalar in the source, quotes included.
    pub range: Range<usize>,
    pub quoting: Quoting,
    /// Inside a flow collection (`[…]`, `{…}`), where a plain scalar may not contain `,[]{}`.
    pub in_flow: bool,
    /// The import path, without `ko://`.
    pub import_path: String,
    /// 1-based line and column, for messages.
    pub line: usize,
    pub column: usize,
}

/// What one parse of a YAML text found.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Each document's bytes, covering the whole text: leading comments belong to the first
    /// document, a `---` marker to the document it opens.
    pub documents: Vec<Range<usize>>,
    pub refs: Vec<RefSpan>,
}

/// Below this size a text is scanned on one thread.
const PARALLEL_FROM: usize = 1 << 20;

/// The references in `text`, as [`scan`] finds them, document by document: the fast scanner
/// ([`fast`]) where a document is in its subset, the parser elsewhere. A large text is cut at
/// document markers (`---` at the start of a line, which YAML forbids anywhere else) into pieces
/// scanned at once. A text with directives (`%YAML`, `%TAG`, which reach into the next document)
/// is parsed whole.
pub fn scan_refs(
    text: &str,
    name: &str,
    import_path: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Vec<RefSpan>> {
    let has_directives = text.starts_with('%') || text.contains("\n%");
    if has_directives {
        return Ok(scan(text, name, import_path)?.refs);
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if text.len() < PARALLEL_FROM || threads < 2 {
        return scan_documents(text, 0..text.len(), name, import_path);
    }
    let mut cuts = vec![0];
    for k in 1..threads {
        let from = (text.len() * k / threads).max(*cuts.last().expect("starts with 0"));
        if let Some(at) = next_document_marker(text, from)
            && at > *cuts.last().expect("starts with 0")
        {
            cuts.push(at);
        }
    }
    cuts.push(text.len());
    let results: Vec<Result<Vec<RefSpan>>> = std::thread::scope(|s| {
        let pieces: Vec<_> =
            cuts.windows(2).map(|w| s.spawn(move || scan_documents(text, w[0]..w[1], name, import_path))).collect();
        pieces.into_iter().map(|p| p.join().unwrap_or_else(|_| Err(Error::internal("a YAML scan panicked")))).collect()
    });
    let mut refs = Vec::new();
    for r in results {
        refs.extend(r?);
    }
    Ok(refs)
}

/// The references of `text[piece]`, whole documents, one document at a time.
fn scan_documents(
    text: &str,
    piece: Range<usize>,
    name: &str,
    import_path: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<RefSpan>> {
    let mut refs = Vec::new();
    let mut lines = count_lines(&text[..piece.start]);
    let mut at = piece.start;
    while at < piece.end {
        let next = next_document_marker(text, at).filter(|&m| m < piece.end).unwrap_or(piece.end);
        let document = &text[at..next];
        match fast::scan_document(document, at, lines + 1, import_path) {
            Some(found) => refs.extend(found),
            None => refs.extend(scan_at(document, name, at, lines, import_path)?.refs),
        }
        lines += count_lines(document);
        at = next;
    }
    Ok(refs)
}

fn count_lines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// The byte offset of the first document marker line (`---` then a space, tab or line end) that
/// starts at or after `from`.
fn next_document_marker(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(i) = text.get(at..)?.find("\n---") {
        let start = at + i + 1;
        match bytes.get(start + 3) {
            None | Some(b' ' | b'\t' | b'\r' | b'\n') => return Some(start),
            _ => at = start,
        }
    }
    None
}

/// Parses `text` (named `name` in errors) and collects every scalar for which `import_path`
/// returns an import path. Block scalars (`|`, `>`) are never references.
pub fn scan(text: &str, name: &str, import_path: &dyn Fn(&str) -> Option<String>) -> Result<Scanned> {
    scan_at(text, name, 0, 0, import_path)
}

/// [`scan`] of a piece of a larger text that starts `offset` bytes and `lines` lines into it:
/// byte ranges, lines and error positions are the larger text's.
fn scan_at(
    text: &str,
    name: &str,
    base: usize,
    lines: usize,
    import_path: &dyn Fn(&str) -> Option<String>,
) -> Result<Scanned> {
    let mut scanned = Scanned::default();
    let mut starts = Vec::new();
    let mut ended_at = None;
    let mut flow_depth = 0usize;
    let mut structure = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            Error::invalid(format!("{name}:{}:{}: invalid YAML: {}", m.line() + lines, m.col() + 1, e.info()))
        })?;
        match event {
            // A document's bytes start where the previous one's `...` line ended (so directives
            // before a `---` belong to the document they announce), else at its `---`.
            Event::DocumentStart(..) => starts.push(match ended_at.take() {
                _ if starts.is_empty() => 0,
                Some(end) => end,
                None => offset(&span.start, text),
            }),
            Event::DocumentEnd if span.end.byte_offset() > span.start.byte_offset() => {
                let end = offset(&span.end, text);
                ended_at = Some(text[end..].find('\n').map_or(text.len(), |i| end + i + 1));
            }
            Event::SequenceStart(style, ..) | Event::MappingStart(style, ..) => {
                let flow = style == StructureStyle::Flow;
                flow_depth += usize::from(flow);
                structure.push(flow);
            }
            Event::SequenceEnd | Event::MappingEnd => flow_depth -= usize::from(structure.pop() == Some(true)),
            Event::Scalar(value, style, ..) => {
                let quoting = match style {
                    ScalarStyle::Plain => Quoting::Plain,
                    ScalarStyle::SingleQuoted => Quoting::Single,
                    ScalarStyle::DoubleQuoted => Quoting::Double,
                    _ => continue,
                };
                if let Some(ip) = import_path(&value) {
                    let range = span.byte_range().ok_or_else(|| {
                        Error::invalid(format!("{name}: the YAML parser reported no byte position for {value:?}"))
                    })?;
                    scanned.refs.push(RefSpan {
                        range: range.start + base..range.end + base,
                        quoting,
                        in_flow: flow_depth > 0,
                        import_path: ip,
                        line: span.start.line() + lines,
                        column: span.start.col() + 1,
                    });
                }
            }
            _ => {}
        }
    }
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        scanned.documents.push(start + base..end + base);
    }
    Ok(scanned)
}

fn offset(marker: &granit_parser::Marker, text: &str) -> usize {
    marker.byte_offset().unwrap_or(text.len()).min(text.len())
}

/// The upstream rule: a string scalar starting with `ko://` names an import path (trimmed).
pub fn strict_reference(value: &str) -> Option<String> {
    value.strip_prefix("ko://").map(|ip| ip.trim().to_string())
}

/// Writes `reference` in place of a scalar written as `quoting`: quoted scalars keep their quotes;
/// a plain scalar stays plain when the reference is plain-safe there, else it is double-quoted.
pub fn render(reference: &str, quoting: Quoting, in_flow: bool) -> String {
    match quoting {
        Quoting::Plain if plain_safe(reference, in_flow) => reference.to_string(),
        Quoting::Single => format!("'{}'", reference.replace('\'', "''")),
        _ => format!("\"{}\"", reference.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// Whether `s` reads back as the same string when written as a plain scalar.
fn plain_safe(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || s.ends_with(':') || s.trim() != s {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control()) {
        return false;
    }
    if in_flow && s.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    !matches!(s, "true" | "false" | "null" | "~" | "yes" | "no" | "on" | "off") && s.parse::<f64>().is_err()
}

/// Replaces each span with its rendering, keeping every other byte. Each import path is asked
/// for and rendered once per quoting: a large input repeats the same few many times.
pub fn splice(text: &str, refs: &[RefSpan], reference_for: &dyn Fn(&str) -> String) -> String {
    let mut spans: Vec<&RefSpan> = refs.iter().collect();
    spans.sort_by_key(|r| r.range.start);
    let mut rendered: HashMap<(&str, Quoting, bool), String> = HashMap::new();
    let mut out = String::with_capacity(text.len() + refs.len() * 64);
    let mut at = 0;
    for r in spans {
        out.push_str(&text[at..r.range.start]);
        let key = (r.import_path.as_str(), r.quoting, r.in_flow);
        out.push_str(
            rendered.entry(key).or_insert_with(|| render(&reference_for(&r.import_path), r.quoting, r.in_flow)),
        );
        at = r.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The splicer's contract, checked by the fuzz target (`fuzz/`) and by tests; panics when broken:
/// scanning any text returns without panicking; splicing changes exactly the reported spans, which
/// do not overlap; and the output parses, with every replacement read back as a whole scalar.
pub fn check_splice_invariant(text: &str) {
    let Ok(scanned) = scan(text, "input", &strict_reference) else { return };
    let reference = |ip: &str| format!("r.example/x-{}@sha256:0a", ip.len());
    let out = splice(text, &scanned.refs, &reference);
    let mut spans: Vec<&RefSpan> = scanned.refs.iter().collect();
    spans.sort_by_key(|r| r.range.start);
    let (mut at_in, mut at_out) = (0, 0);
    for r in &spans {
        assert!(r.range.start >= at_in && r.range.end <= text.len(), "spans overlap or overrun: {:?}", r.range);
        let kept = &text[at_in..r.range.start];
        assert_eq!(&out[at_out..at_out + kept.len()], kept, "bytes outside spans changed");
        at_out += kept.len();
        let written = render(&reference(&r.import_path), r.quoting, r.in_flow);
        assert_eq!(&out[at_out..at_out + written.len()], written);
        at_out += written.len();
        at_in = r.range.end;
    }
    assert_eq!(&out[at_out..], &text[at_in..], "bytes after the last span changed");
    let marked = |v: &str| v.starts_with("r.example/").then(|| v.to_string());
    let before = scan(text, "input", &marked).map(|s| s.refs.len()).unwrap_or_default();
    let again =
        scan(&out, "output", &marked).unwrap_or_else(|e| panic!("the spliced output does not parse: {e}\n{out}"));
    assert_eq!(again.refs.len(), before + spans.len(), "a replacement did not read back as one scalar:\n{out}");
}

/// The fast scanner's contract, checked by the fuzz target (`fuzz/`) and by tests; panics when
/// broken: where it accepts a document, the parser accepts it too and reports the same scalars,
/// every one, with its value, span, style and position, except implicit nulls (`key:` with no
/// value, which the parser reports as an empty `~` and which no import path can be). Returns whether
/// the fast scanner accepted.
pub fn check_fast_scan_agrees(text: &str) -> bool {
    let every = |v: &str| Some(v.to_string());
    let Some(fast) = fast::scan_document(text, 0, 1, &every) else { return false };
    match scan(text, "input", &every) {
        Ok(mut parsed) => {
            parsed.refs.retain(|r| !r.range.is_empty());
            assert_eq!(fast, parsed.refs, "the fast scanner disagrees with the parser on {text:?}")
        }
        Err(e) => panic!("the fast scanner accepted YAML the parser refuses ({e}): {text:?}"),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::fast;

    const REF: &str = "reg.example:5000/app-1@sha256:abc";

    fn resolve(text: &str) -> String {
        let s = scan(text, "t.yaml", &strict_reference).unwrap();
        splice(text, &s.refs, &|ip| format!("{REF}/{ip}"))
    }

    #[test]
    fn replaces_only_reference_spans() {
        let text = "# top\napiVersion: v1 # c\nspec:\n  image: ko://example.com/a   # keep\n  other: 'ko://example.com/b'\n  dq: \"ko://example.com/c\"\n  list: [ko://example.com/d, x]\n  block: |\n    ko://example.com/not\n";
        let want = text
            .replace("ko://example.com/a", &format!("{REF}/example.com/a"))
            .replace("'ko://example.com/b'", &format!("'{REF}/example.com/b'"))
            .replace("\"ko://example.com/c\"", &format!("\"{REF}/example.com/c\""))
            .replace("[ko://example.com/d", &format!("[{REF}/example.com/d"));
        assert_eq!(resolve(text), want);
    }

    #[test]
    fn keeps_crlf_anchors_and_documents() {
        let text = "a: &img ko://x/y\r\nb: *img\r\n---\r\nc: ko://x/z\r\n";
        let s = scan(text, "t", &strict_reference).unwrap();
        assert_eq!(s.documents, vec![0..27, 27..text.len()]);
        assert_eq!(
            resolve(text),
            text.replace("ko://x/y", &format!("{REF}/x/y")).replace("ko://x/z", &format!("{REF}/x/z"))
        );
    }

    #[test]
    fn directives_belong_to_the_document_they_announce() {
        let text = "a: 1\n...\n%YAML 1.2\n---\nb: 2\n";
        let s = scan(text, "t", &strict_reference).unwrap();
        assert_eq!(s.documents, vec![0..9, 9..text.len()]);
        assert!(text[s.documents[1].clone()].starts_with("%YAML"));
    }

    #[test]
    fn errors_name_file_line_column() {
        let err = scan("a: [unclosed\n", "cfg/d.yaml", &strict_reference).unwrap_err();
        assert!(err.to_string().starts_with("cfg/d.yaml:"), "{err}");
    }

    /// The fuzz target's property over generated documents (deterministic; no nightly needed).
    #[test]
    fn a_large_text_scanned_in_pieces_gives_what_one_scan_gives() {
        let find = |v: &str| strict_reference(v);
        let docs = [
            "a: ko://x.io/one  # c\nb:\n  - 'ko://x.io/two'\n",
            "# only a comment ko://x.io/not\nk: v\n",
            "c: |\n  ko://x.io/block\n---x: not a marker\n",
            "d: {e: \"ko://x.io/three\"}\r\n",
        ];
        let mut text = String::new();
        for i in 0..60_000 {
            text.push_str("---\n");
            text.push_str(docs[i % docs.len()]);
        }
        assert!(text.len() > PARALLEL_FROM);
        let whole = scan(&text, "t", &find).unwrap().refs;
        assert_eq!(scan_refs(&text, "t", &find).unwrap(), whole);
        assert_eq!(whole.len(), 60_000 / 4 * 3);
        // An error in a later piece names its line in the whole text.
        text.push_str("---\nbad: [unclosed\n");
        let lines = text.lines().count();
        let err = scan_refs(&text, "t", &find).unwrap_err().to_string();
        assert!(err.starts_with(&format!("t:{}:", lines + 1)) || err.starts_with(&format!("t:{lines}:")), "{err}");
        assert_eq!(scan(&text, "t", &find).unwrap_err().to_string(), err);
    }

    #[test]
    fn splice_invariant_holds_on_generated_yaml() {
        const PIECES: &[&str] = &[
            "a: ko://x.io/c/d",
            "- ko://x.io/e",
            "'ko://x.io/q'",
            "\"ko://x.io/\\u0041\"",
            "{k: ko://x.io/f, j: [ko://x.io/g]}",
            "# ko://comment",
            "b: |\n  ko://x.io/block",
            "? ko://x.io/key\n: v",
            "&a ko://x.io/anchored",
            "*a",
            "---",
            "...",
            "c: !!str ko://x.io/t",
            "d: ko://x.io/multi\n  line",
            "e: 'it''s ko://'",
            "[ko://x.io/h, 'ko://x.io/i']",
            "\r",
            "\t",
            "ko://x.io/k: v",
            "f: \"ko://x.io/esc\\\"q\"",
            ":",
            "- - ko://x.io/nested",
            "é: ko://x.io/ü",
        ];
        let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
        let mut next = move |n: usize| rng.usize(..n);
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..next(8) + 1 {
                text.push_str(&" ".repeat(next(4) * 2));
                text.push_str(PIECES[next(PIECES.len())]);
                text.push_str(if next(5) == 0 { "\r\n" } else { "\n" });
            }
            check_splice_invariant(&text);
        }
    }

    /// Typical manifests are in the fast scanner's subset, with what the parser reports.
    #[test]
    fn the_fast_scanner_takes_typical_manifests() {
        let manifests = [
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: ko://example.com/hello   # the one reference\n        args: [\"--port=8080\", \"--verbose\"]\n",
            "--- # a marker\n# comment\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    app.kubernetes.io/name: 'it''s'\nspec:\n  volumes: []\n  containers:\n    - name: a\n      image: \"ko://example.com/a\"\n      env:\n        - name: X\n          value: \"1\"\n      resources: {}\n    -   name: b\n        image: ko://example.com/b\n  nodeSelector:\n\n  restartPolicy: Never\n",
            "- - ko://x.io/nested\n  - b\n-\n- c: [1, [2, {d: e}]]\n",
            "a:\n- x\n- y:\n  - z\nb: c\n",
        ];
        for text in manifests {
            assert!(check_fast_scan_agrees(text), "declined: {text}");
        }
        let refs = scan_refs(manifests[1], "t", &strict_reference).unwrap();
        assert_eq!(refs.iter().map(|r| r.import_path.as_str()).collect::<Vec<_>>(), ["example.com/a", "example.com/b"]);
        assert_eq!((refs[1].line, refs[1].column), (19, 16));
    }

    /// What the fast scanner must leave to the parser: valid YAML outside its subset, and errors.
    #[test]
    fn the_fast_scanner_declines_what_it_cannot_read_exactly() {
        for text in [
            "a: b\n  c\n",
            "a: &x ko://x.io/a\nb: *x\n",
            "a: |\n  ko://x.io/a\n",
            "a: \"esc\\u0041\"\n",
            "a: [x,\n  y]\n",
            "a: 'multi\n  line'\n",
            "a:\tb\n",
            "a: b\r\n",
            "é: x\n",
            "? k\n: v\n",
            "a: b: c\n",
            "a: - b\n",
            "key : v\n",
            "a: 1\n  b: 2\n",
            "- a\nb: c\n",
            "a: b\n...\n",
            "--- a: b\n",
            "a: [unclosed\n",
            "a: 'x' y\n",
            "scalar document\n",
        ] {
            let every = |v: &str| Some(v.to_string());
            assert!(fast::scan_document(text, 0, 1, &every).is_none(), "accepted: {text:?}");
        }
    }

    /// The fast scanner against the parser over generated near-manifests: wherever it accepts, it
    /// reports every scalar exactly as the parser does; the parser errs on none of them.
    #[test]
    fn the_fast_scanner_agrees_with_the_parser_on_generated_yaml() {
        const KEYS: &[&str] = &["a:", "b.c/d-e:", "8080:", "k_1:", "ko:", "x-:", "-:", "a :"];
        const VALUES: &[&str] = &[
            "",
            " ko://x.io/a",
            " 'ko://x.io/b'",
            " \"ko://x.io/c\"",
            " plain text",
            " b#c",
            " b # c",
            " -1",
            " --v",
            " [a, 'b', \"c\"]",
            " {k: v, 'q': [x]}",
            " []",
            " {}",
            " [a, ]",
            " [-]",
            " [a: b]",
            " {a:b}",
            " x: y",
            " 'it''s'",
            " \"a # b\"",
            " ~",
            " b:",
            " b]",
            " {a: }",
            " :x",
            " ---",
            " '' ",
            " \"\"",
            "   ",
            " #c",
            " [[ko://x.io/f]]",
            " ['ko://x.io/g']",
            " a,b",
            " 'x'#c",
        ];
        let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
        let mut next = move |n: usize| rng.usize(..n);
        let mut accepted = 0;
        for _ in 0..20_000 {
            // Mostly well-placed lines (deeper after an open key, else back to an earlier level),
            // sometimes one or three columns off.
            let mut text = String::new();
            let mut levels = vec![0];
            for _ in 0..next(7) + 1 {
                let mut indent = levels[next(levels.len())];
                if next(8) == 0 {
                    indent += 1 + next(3);
                }
                levels.retain(|&l| l <= indent);
                text.push_str(&" ".repeat(indent));
                let mut column = indent;
                match next(10) {
                    0 => text.push_str("# comment"),
                    1 | 2 => {
                        let dashes = next(2) + 1;
                        text.push_str(&"- ".repeat(dashes));
                        column += 2 * dashes;
                    }
                    _ => {}
                }
                if next(4) > 0 {
                    text.push_str(KEYS[next(KEYS.len())]);
                    let value = VALUES[next(VALUES.len())];
                    text.push_str(value);
                    if value.trim().is_empty() || value.trim_start().starts_with('#') {
                        levels.push(column + 2);
                    } else if column > indent {
                        levels.push(column);
                    }
                } else {
                    text.push_str(VALUES[next(VALUES.len())].trim_start());
                }
                text.push('\n');
            }
            if next(6) == 0 {
                text.insert_str(0, "--- # c\n");
            }
            accepted += usize::from(check_fast_scan_agrees(&text));
        }
        assert!(accepted > 2_000, "only {accepted} of 20000 accepted: the generator no longer tests the subset");
    }

    #[test]
    fn rendering_stays_valid_yaml() {
        assert_eq!(render("r@sha256:1", Quoting::Plain, false), "r@sha256:1");
        assert_eq!(render("a, b", Quoting::Plain, true), "\"a, b\"");
        assert_eq!(render("it's", Quoting::Single, false), "'it''s'");
        assert_eq!(render("a\"b", Quoting::Double, false), "\"a\\\"b\"");
        assert_eq!(render("true", Quoting::Plain, false), "\"true\"");
    }
}
