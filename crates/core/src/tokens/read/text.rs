//! Lexical helpers the readers share: string literals and comments skipped in one pass,
//! and a value's text with its whitespace collapsed. All of it works on bytes and splits
//! only at ASCII bytes, so slices of the `&str` stay on character boundaries.

/// The lexical rules of a format, for what counts as a string or a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// `/* */` comments; `'` and `"` strings.
    Css,
    /// As CSS, plus `//` line comments; `url(...)` is raw (`url(http://x)` is no comment).
    Scss,
    /// `/* */` and `//` comments; `'`, `"`, `"""` and `` ` `` strings (JS, Swift, Kotlin).
    Code,
}

/// What starts at a byte: a comment or a string literal, and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Atom {
    Comment,
    Str,
}

/// The comment, string or raw `url(...)` starting at `i`, and the index just past it.
pub(super) fn atom_at(b: &[u8], i: usize, syntax: Syntax) -> Option<(Atom, usize)> {
    let c = *b.get(i)?;
    let next = b.get(i + 1).copied();
    match c {
        b'/' if next == Some(b'*') => {
            let end = find(b, i + 2, b"*/").map_or(b.len(), |j| j + 2);
            Some((Atom::Comment, end))
        }
        b'/' if next == Some(b'/') && syntax != Syntax::Css => {
            let end = memchr(b, i + 2, b'\n').unwrap_or(b.len());
            Some((Atom::Comment, end))
        }
        b'"' if syntax == Syntax::Code && b.get(i + 1..i + 3) == Some(b"\"\"") => {
            let end = find(b, i + 3, b"\"\"\"").map_or(b.len(), |j| j + 3);
            Some((Atom::Str, end))
        }
        b'"' | b'\'' => Some((Atom::Str, string_end(b, i))),
        b'`' if syntax == Syntax::Code => Some((Atom::Str, template_end(b, i))),
        b'u' | b'U' if syntax == Syntax::Scss && is_url_start(b, i) => {
            // Unquoted `url(...)` runs to its `)`; quoted ones are strings inside it.
            let mut j = i + 4;
            while j < b.len() && b[j] != b')' {
                j = match b[j] {
                    b'"' | b'\'' => string_end(b, j),
                    _ => j + 1,
                };
            }
            Some((Atom::Str, (j + 1).min(b.len())))
        }
        _ => None,
    }
}

fn is_url_start(b: &[u8], i: usize) -> bool {
    b.get(i..i + 4)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"url("))
        && (i == 0 || !is_ident_byte(b[i - 1]))
}

/// The index just past the string literal whose quote is at `i` (`\` escapes a byte).
fn string_end(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// The index just past a JS template literal; `${...}` is skipped by counting braces
/// (strings inside it are skipped, a nested template ends at its next backtick).
fn template_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'`' => return j + 1,
            b'$' if b.get(j + 1) == Some(&b'{') => {
                let mut depth = 1usize;
                j += 2;
                while j < b.len() && depth > 0 {
                    match b[j] {
                        b'{' => depth += 1,
                        b'}' => depth -= 1,
                        b'"' | b'\'' | b'`' => {
                            j = string_end(b, j);
                            continue;
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => j += 1,
        }
    }
    b.len()
}

/// Identifier bytes in every format read here; non-ASCII bytes count so that names in
/// any script stay whole.
pub(super) fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c >= 0x80
}

pub(super) fn memchr(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == needle)
        .map(|j| from + j)
}

/// The first index at or after `from` where `needle` starts; linear for the short
/// needles used here (`*/`, `"""`).
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|j| from + j)
}

/// `s` trimmed, comments removed (each counts as whitespace), and whitespace runs outside
/// string literals collapsed to one space: a value as the token diff shows it.
pub(super) fn collapse(s: &str, syntax: Syntax) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        let end = match atom_at(b, i, syntax) {
            Some((Atom::Comment, end)) => {
                space = true;
                i = end;
                continue;
            }
            Some((Atom::Str, end)) => end,
            None => {
                // A run of bytes no atom can start in, copied at once.
                let mut j = i + 1;
                while j < b.len() && !b[j].is_ascii_whitespace() && !may_start_atom(b[j]) {
                    j += 1;
                }
                j
            }
        };
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push_str(&s[i..end]);
        i = end;
    }
    out
}

fn may_start_atom(c: u8) -> bool {
    matches!(c, b'/' | b'"' | b'\'' | b'`' | b'u' | b'U')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_trims_joins_whitespace_and_drops_comments() {
        assert_eq!(collapse("  a \n\t b  ", Syntax::Css), "a b");
        assert_eq!(collapse("a/* x */b", Syntax::Css), "a b");
        assert_eq!(collapse("1px // note", Syntax::Scss), "1px");
        // CSS has no line comments: `//` is text there.
        assert_eq!(collapse("a // b", Syntax::Css), "a // b");
    }

    #[test]
    fn collapse_keeps_strings_and_urls_whole() {
        assert_eq!(
            collapse("\"a  /* b */  c\"  x", Syntax::Css),
            "\"a  /* b */  c\" x"
        );
        assert_eq!(
            collapse("url(http://x.test/a.png)  no-repeat", Syntax::Scss),
            "url(http://x.test/a.png) no-repeat"
        );
        assert_eq!(
            collapse("`a  ${ {b: 1} }  c`", Syntax::Code),
            "`a  ${ {b: 1} }  c`"
        );
        assert_eq!(
            collapse("\"\"\"a\n\n b\"\"\"", Syntax::Code),
            "\"\"\"a\n\n b\"\"\""
        );
        assert_eq!(collapse("'it\\'s'  x", Syntax::Code), "'it\\'s' x");
    }

    #[test]
    fn unterminated_atoms_run_to_the_end() {
        assert_eq!(collapse("a \"b  c", Syntax::Css), "a \"b  c");
        assert_eq!(collapse("a /* b", Syntax::Css), "a");
        assert_eq!(collapse("url(x", Syntax::Scss), "url(x");
    }

    #[test]
    fn non_ascii_text_stays_whole() {
        assert_eq!(collapse("  “Grün”   ü ", Syntax::Code), "“Grün” ü");
    }
}
