//! JavaScript and TypeScript constants, read over the tokens of [`code`](super::code).
//!
//! Grammar, for statements outside any brackets (everything else is skipped):
//! - `export const|let|var NAME (: Type)? = VALUE (, NAME2 = VALUE2)*`: a token per name;
//! - `export default { ... }` and `module.exports = { ... }`: the object's entries are
//!   tokens, with no prefix;
//! - a VALUE is an expression (ending at `;`, `,`, a line break that does not continue
//!   it, or a closing bracket it did not open). An object literal `{ ... }` is
//!   flattened: each `key: value` entry (key a word, number or string) is a token named
//!   `NAME.key`, nested objects adding their keys; spreads, shorthands, methods and
//!   computed keys are skipped. Otherwise the value is the expression's text with a
//!   trailing `as const` dropped: a single string literal without interpolation reads
//!   without its quotes, anything else as written (comments dropped, whitespace
//!   collapsed). What follows an object (`as const`, `satisfies T`) is ignored.
//!
//! The context is empty. Object literals nested deeper than [`MAX_DEPTH`] are an error;
//! any other bracket nesting is only counted.

use super::code::{Kind, Lexer, expression, unquote};
use super::text::{Syntax, collapse};
use super::{FileTokens, MAX_DEPTH, ReadError, too_deep};

pub(super) fn read(text: &str) -> Result<FileTokens, ReadError> {
    let mut lx = Lexer::new(text);
    let mut tokens = FileTokens::default();
    let mut depth = 0usize;
    while let Some(tok) = lx.next() {
        match tok.kind {
            Kind::Punct(b'{' | b'(' | b'[') => depth += 1,
            Kind::Punct(b'}' | b')' | b']') => depth = depth.saturating_sub(1),
            Kind::Word if depth == 0 => match lx.text(tok) {
                "export" => export(&mut lx, &mut tokens)?,
                "module" => module_exports(&mut lx, &mut tokens)?,
                _ => {}
            },
            _ => {}
        }
    }
    Ok(tokens)
}

/// After `export`.
fn export(lx: &mut Lexer<'_>, tokens: &mut FileTokens) -> Result<(), ReadError> {
    match lx.peek_word() {
        Some("const" | "let" | "var") => {
            lx.next();
            loop {
                let Some(name) = lx.peek_word() else {
                    return Ok(());
                };
                lx.next();
                // `skip_type` reads through the `=`.
                let assigned = if lx.eat(b':') {
                    skip_type(lx)
                } else {
                    lx.eat(b'=')
                };
                if !assigned {
                    return Ok(());
                }
                value(lx, name, 1, tokens)?;
                if !lx.eat(b',') {
                    return Ok(());
                }
            }
        }
        Some("default") => {
            lx.next();
            if lx.eat(b'{') {
                object(lx, "", 1, tokens)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// After `module`: `.exports = { ... }`.
fn module_exports(lx: &mut Lexer<'_>, tokens: &mut FileTokens) -> Result<(), ReadError> {
    if lx.eat(b'.') && lx.peek_word() == Some("exports") {
        lx.next();
        if lx.eat(b'=') && lx.eat(b'{') {
            object(lx, "", 1, tokens)?;
        }
    }
    Ok(())
}

/// Skips a type annotation up to and including the `=` after it; `false` when there is
/// none (a declaration without a value, or something else).
fn skip_type(lx: &mut Lexer<'_>) -> bool {
    let mut depth = 0usize;
    while let Some(tok) = lx.next() {
        match tok.kind {
            // `<` opens a generic and `>` closes it.
            Kind::Punct(b'(' | b'[' | b'{' | b'<') => depth += 1,
            Kind::Punct(b')' | b']' | b'}') if depth == 0 => return false,
            Kind::Punct(b')' | b']' | b'}') => depth -= 1,
            Kind::Punct(b'>') => depth = depth.saturating_sub(1),
            Kind::Punct(b';') if depth == 0 => return false,
            Kind::Punct(b'=') => match lx.peek() {
                // `=>` in a function type is no assignment.
                Some(next) if next.is(b'>') && next.start == tok.end => {
                    lx.next();
                }
                _ if depth == 0 => return true,
                _ => {}
            },
            _ => {}
        }
    }
    false
}

/// The value of `name`, starting at the next token; `depth`: objects around it.
fn value(
    lx: &mut Lexer<'_>,
    name: &str,
    depth: usize,
    tokens: &mut FileTokens,
) -> Result<(), ReadError> {
    if lx.eat(b'{') {
        return object(lx, name, depth, tokens);
    }
    if let Some((start, end)) = expression(lx) {
        let text = collapse(lx.slice(start, end), Syntax::Code);
        let text = text.strip_suffix(" as const").unwrap_or(&text);
        let text = unquote(text).unwrap_or_else(|| text.to_owned());
        tokens.insert("", name, text);
    }
    Ok(())
}

/// The entries of an object literal whose `{` was just read, through its `}`.
fn object(
    lx: &mut Lexer<'_>,
    prefix: &str,
    depth: usize,
    tokens: &mut FileTokens,
) -> Result<(), ReadError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    while let Some(tok) = lx.next() {
        let key = match tok.kind {
            Kind::Punct(b'}') => return Ok(()),
            Kind::Punct(b',') => continue,
            Kind::Word => Some(lx.text(tok).to_owned()),
            Kind::Str => unquote(lx.text(tok)),
            Kind::Punct(_) => None,
        };
        match key {
            Some(key) if lx.eat(b':') => {
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                value(lx, &name, depth + 1, tokens)?;
            }
            _ => {
                let opened = matches!(tok.kind, Kind::Punct(b'(' | b'[' | b'{'));
                skip_entry(lx, usize::from(opened));
            }
        }
    }
    Ok(())
}

/// Skips the rest of an object entry: through its `,`, or up to the object's `}`.
fn skip_entry(lx: &mut Lexer<'_>, mut depth: usize) {
    while let Some(tok) = lx.peek() {
        match tok.kind {
            Kind::Punct(b',') if depth == 0 => {
                lx.next();
                return;
            }
            Kind::Punct(b'}' | b')' | b']') if depth == 0 => return,
            Kind::Punct(b'(' | b'[' | b'{') => depth += 1,
            Kind::Punct(b'}' | b')' | b']') => depth -= 1,
            _ => {}
        }
        lx.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::read::testing::{pairs, plain};

    fn tokens(text: &str) -> Vec<(String, String)> {
        plain(read(text))
    }

    #[test]
    fn exported_constants() {
        let ts = r##"
            // generated
            import { x } from "./x";
            export const ColorPrimary = "#0969DA";
            export const SpaceSm: number = 4;
            export const Shadow = `0 1px 2px ${black}`;
            export const fontWeight = 600 as const
            export let a = 'x', b = 2;
            export const ratio: Record<string, (a: number) => string> = fn(1,
              2)
            export type Foo = { a: string };
            const notExported = 1;
            function f() { export const inner = 1; }
        "##;
        assert_eq!(
            tokens(ts),
            pairs(&[
                ("ColorPrimary", "#0969DA"),
                ("Shadow", "`0 1px 2px ${black}`"),
                ("SpaceSm", "4"),
                ("a", "x"),
                ("b", "2"),
                ("fontWeight", "600"),
                ("ratio", "fn(1, 2)"),
            ])
        );
    }

    #[test]
    fn objects_are_flattened() {
        let ts = r##"
            export const colors = {
              primary: { 500: "#0969DA", "600": '#0550AE' },
              'on-primary': "#fff", // comment
              ...rest,
              [computed]: 1,
              shorthand,
              method() { return { x: 1 }; },
              get g() { return 2 },
              list: [1, 2],
            } as const;
            export default { radius: { sm: "2px" } };
            module.exports = { z: 0 }
        "##;
        assert_eq!(
            tokens(ts),
            pairs(&[
                ("colors.list", "[1, 2]"),
                ("colors.on-primary", "#fff"),
                ("colors.primary.500", "#0969DA"),
                ("colors.primary.600", "#0550AE"),
                ("radius.sm", "2px"),
                ("z", "0"),
            ])
        );
    }

    #[test]
    fn unparseable_statements_are_skipped() {
        let js = "export const = 1; export const a = ; export const b = 2\nexport {c}; \
                  export default foo; export const e = {";
        assert_eq!(tokens(js), pairs(&[("b", "2")]));
    }

    #[test]
    fn object_nesting_is_bounded() {
        let nested = |n: usize| format!("export const t = {}1{}", "{a:".repeat(n), "}".repeat(n));
        assert_eq!(read(&nested(MAX_DEPTH)).unwrap().len(), 1);
        assert_eq!(read(&nested(MAX_DEPTH + 1)), Err(too_deep()));
        assert!(
            read(&format!("export const t = {}", "{".repeat(10_000)))
                .unwrap()
                .is_empty()
        );
        assert!(read(&"(".repeat(10_000)).unwrap().is_empty());
    }
}
