//! A streaming lexer for the programming languages read here (JavaScript/TypeScript,
//! Swift, Kotlin), and how far an expression runs. Tokens are words, string literals
//! and single punctuation bytes, with spans into the text; comments and whitespace are
//! skipped, remembering whether a line ended (these languages end statements there).

use super::text::{Atom, Syntax, atom_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Identifiers, keywords and numbers: `[A-Za-z0-9_$]` and any non-ASCII.
    Word,
    /// A string or template literal, quotes included.
    Str,
    /// One ASCII punctuation byte.
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Tok {
    pub(super) kind: Kind,
    pub(super) start: usize,
    pub(super) end: usize,
    /// A line ended between the previous token and this one.
    pub(super) newline_before: bool,
}

impl Tok {
    pub(super) fn is(&self, punct: u8) -> bool {
        self.kind == Kind::Punct(punct)
    }
}

pub(super) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    peeked: Option<Option<Tok>>,
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            peeked: None,
        }
    }

    pub(super) fn text(&self, tok: Tok) -> &'a str {
        &self.text[tok.start..tok.end]
    }

    pub(super) fn slice(&self, start: usize, end: usize) -> &'a str {
        &self.text[start..end]
    }

    pub(super) fn peek(&mut self) -> Option<Tok> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex());
        }
        self.peeked.flatten()
    }

    pub(super) fn next(&mut self) -> Option<Tok> {
        match self.peeked.take() {
            Some(tok) => tok,
            None => self.lex(),
        }
    }

    /// The next token if it is the punctuation `punct`.
    pub(super) fn eat(&mut self, punct: u8) -> bool {
        let found = self.peek().is_some_and(|t| t.is(punct));
        if found {
            self.next();
        }
        found
    }

    /// The next token's text if it is a word.
    pub(super) fn peek_word(&mut self) -> Option<&'a str> {
        let tok = self.peek().filter(|t| t.kind == Kind::Word)?;
        Some(self.text(tok))
    }

    fn lex(&mut self) -> Option<Tok> {
        let b = self.text.as_bytes();
        let mut newline_before = false;
        loop {
            let c = *b.get(self.pos)?;
            if c.is_ascii_whitespace() {
                newline_before |= c == b'\n';
                self.pos += 1;
            } else if let Some((Atom::Comment, end)) = atom_at(b, self.pos, Syntax::Code) {
                newline_before |= b[self.pos..end].contains(&b'\n');
                self.pos = end;
            } else {
                break;
            }
        }
        let start = self.pos;
        let (kind, end) = match atom_at(b, start, Syntax::Code) {
            Some((_, end)) => (Kind::Str, end),
            None if is_word_byte(b[start]) => {
                let mut end = start + 1;
                while end < b.len() && is_word_byte(b[end]) {
                    end += 1;
                }
                (Kind::Word, end)
            }
            None => (Kind::Punct(b[start]), start + 1),
        };
        self.pos = end;
        Some(Tok {
            kind,
            start,
            end,
            newline_before,
        })
    }
}

/// Consumes the expression that starts at the next token and returns its span: it runs
/// until, outside brackets, a `;` or `,`, a closing bracket it did not open, the end, or
/// a line break that does not continue it (the line ends with an operator, or the next
/// one starts with `.`, `?`, `:`, an operator or `else`). `None`: it is empty.
pub(super) fn expression(lx: &mut Lexer<'_>) -> Option<(usize, usize)> {
    let start = lx.peek()?.start;
    let mut end = start;
    let mut depth = 0usize;
    let mut prev: Option<Tok> = None;
    while let Some(tok) = lx.peek() {
        if depth == 0 {
            if matches!(tok.kind, Kind::Punct(b';' | b',' | b')' | b']' | b'}')) {
                break;
            }
            if tok.newline_before
                && let Some(prev) = prev
                && !continues(lx, prev, tok)
            {
                break;
            }
        }
        match tok.kind {
            Kind::Punct(b'(' | b'[' | b'{') => depth += 1,
            Kind::Punct(b')' | b']' | b'}') => depth -= 1,
            _ => {}
        }
        lx.next();
        end = tok.end;
        prev = Some(tok);
    }
    (end > start).then_some((start, end))
}

/// Whether a line break between `prev` and `next` continues an expression.
fn continues(lx: &Lexer<'_>, prev: Tok, next: Tok) -> bool {
    let operator = |tok: Tok, set: &[u8]| matches!(tok.kind, Kind::Punct(c) if set.contains(&c));
    operator(prev, b"=+-*/%.?:&|<^")
        || operator(next, b".?:+-*/%&|=^<")
        || (next.kind == Kind::Word && lx.text(next) == "else")
}

/// A string literal's content when `text` is exactly one literal with no interpolation;
/// `\` escapes of quotes and backslashes are undone, other escapes kept as written.
pub(super) fn unquote(text: &str) -> Option<String> {
    let quote = *text.as_bytes().first()?;
    if !matches!(quote, b'"' | b'\'' | b'`') || text.len() < 2 {
        return None;
    }
    let (_, end) = atom_at(text.as_bytes(), 0, Syntax::Code)?;
    if end != text.len() || text.as_bytes()[end - 1] != quote {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if quote == b'`' && inner.contains("${") {
        return None;
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('"' | '\'' | '`' | '\\')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> Option<&str> {
        let mut lx = Lexer::new(text);
        expression(&mut lx).map(|(s, e)| &text[s..e])
    }

    #[test]
    fn lexes_words_strings_and_punctuation() {
        let text = "let a = \"x // y\" // c\n/* d */ b.c";
        let mut lx = Lexer::new(text);
        let mut seen = Vec::new();
        while let Some(tok) = lx.next() {
            seen.push((lx.text(tok).to_owned(), tok.newline_before));
        }
        let expected = [
            ("let", false),
            ("a", false),
            ("=", false),
            ("\"x // y\"", false),
            ("b", true),
            (".", false),
            ("c", false),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(t, n)| ((*t).to_owned(), *n))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn expressions_end_where_statements_do() {
        assert_eq!(expr("1; 2"), Some("1"));
        assert_eq!(expr("f(1, 2), b"), Some("f(1, 2)"));
        assert_eq!(expr("Color(0xFF)\nval b = 2"), Some("Color(0xFF)"));
        assert_eq!(
            expr("Color(0xFF)\n  .copy(alpha = 0.5f)\nval b"),
            Some("Color(0xFF)\n  .copy(alpha = 0.5f)")
        );
        assert_eq!(expr("1 +\n 2\nx"), Some("1 +\n 2"));
        assert_eq!(expr("{\n a: 1,\n}\nexport"), Some("{\n a: 1,\n}"));
        assert_eq!(expr("x }"), Some("x"));
        assert_eq!(expr("; x"), None);
        assert_eq!(expr(""), None);
    }

    #[test]
    fn unquotes_plain_literals_only() {
        assert_eq!(unquote("\"#0969DA\"").as_deref(), Some("#0969DA"));
        assert_eq!(unquote("'it\\'s \\n'").as_deref(), Some("it's \\n"));
        assert_eq!(unquote("`a`").as_deref(), Some("a"));
        assert_eq!(unquote("`a ${b}`"), None);
        assert_eq!(unquote("\"a\" + \"b\""), None);
        assert_eq!(unquote("\"open"), None);
        assert_eq!(unquote("x"), None);
    }
}
