//! SCSS (`$name: value;`) and Less (`@name: value;`) variables, read by a hand-written
//! scanner: one pass over the bytes, no recursion.
//!
//! Grammar (`$` for SCSS, `@` for Less, the sigil below):
//! - the text is a sequence of statements; between them, whitespace, `;`, `/* */` and
//!   `//` comments are skipped;
//! - a statement starting `<sigil>name` then `:` (whitespace and comments allowed before
//!   the colon) is a variable, at any nesting level; its value runs to the next `;` or
//!   to the `}` closing the enclosing block; strings, comments, unquoted `url(...)` and
//!   `#{...}` / `@{...}` interpolations are skipped over whole while looking for that
//!   end, so a map `(key: value, ...)` over several lines is one value; a Less detached
//!   ruleset `@r: { ... }` ends at its own `}`. The value keeps `!default` and
//!   `!global`, drops comments and has its whitespace collapsed;
//! - any other statement (`@use`, `@import`, `@include`, a declaration, a mixin call)
//!   runs to `;`, `{` or `}` and is skipped; when it ends at `{`, it is a block's
//!   prelude: the block's variables have it (comments dropped, whitespace collapsed) as
//!   context, after the enclosing blocks' preludes joined with a space (`.card`,
//!   `@media (prefers-color-scheme: dark) :root`); at the top level the context is empty;
//! - `}` closes the innermost block; a stray one is ignored.
//!
//! Blocks nested deeper than [`MAX_DEPTH`] are an error.

use super::text::{Atom, Syntax, atom_at, collapse, is_ident_byte};
use super::{FileTokens, MAX_DEPTH, ReadError, too_deep};

/// SCSS `$name: value;` variables.
pub(super) fn read_scss(text: &str) -> Result<FileTokens, ReadError> {
    read(text, b'$')
}

/// Less `@name: value;` variables.
pub(super) fn read_less(text: &str) -> Result<FileTokens, ReadError> {
    read(text, b'@')
}

fn read(text: &str, sigil: u8) -> Result<FileTokens, ReadError> {
    let b = text.as_bytes();
    let mut tokens = FileTokens::default();
    // The enclosing blocks' preludes, and its length before each was entered.
    let mut context = String::new();
    let mut outer: Vec<usize> = Vec::new();
    let mut i = 0;
    loop {
        i = skip_space(b, i);
        let Some(&c) = b.get(i) else {
            break;
        };
        match c {
            b'}' => {
                if let Some(len) = outer.pop() {
                    context.truncate(len);
                }
                i += 1;
            }
            b';' => i += 1,
            _ => {
                if let Some((name_end, value_start)) = variable(b, i, sigil) {
                    let end = value_end(b, value_start);
                    // Ending at `{`, it was a block's prelude after all (`a:hover {`).
                    if b.get(end) != Some(&b'{') {
                        let value = collapse(&text[value_start..end], Syntax::Scss);
                        tokens.insert(&context, &text[i + 1..name_end], value);
                        i = end;
                        continue;
                    }
                }
                let end = statement_end(b, i);
                if b.get(end) == Some(&b'{') {
                    if outer.len() >= MAX_DEPTH {
                        return Err(too_deep());
                    }
                    outer.push(context.len());
                    let prelude = collapse(&text[i..end], Syntax::Scss);
                    if !context.is_empty() && !prelude.is_empty() {
                        context.push(' ');
                    }
                    context.push_str(&prelude);
                    i = end + 1;
                } else {
                    // At `;` or `}`, which the next turn handles, or at the end.
                    i = end;
                }
            }
        }
    }
    Ok(tokens)
}

/// Past whitespace and comments from `i`.
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if let Some((Atom::Comment, end)) = atom_at(b, i, Syntax::Scss) {
            i = end;
        } else {
            break;
        }
    }
    i
}

/// For `<sigil>name:` at `i`: where the name ends and the value starts.
fn variable(b: &[u8], i: usize, sigil: u8) -> Option<(usize, usize)> {
    if b[i] != sigil {
        return None;
    }
    let mut end = i + 1;
    while end < b.len() && is_ident_byte(b[end]) {
        end += 1;
    }
    if end == i + 1 {
        return None;
    }
    let colon = skip_space(b, end);
    (b.get(colon) == Some(&b':')).then_some((end, colon + 1))
}

/// Where a variable's value starting at `i` ends: where its statement ends, or past a
/// detached ruleset's closing `}`.
fn value_end(b: &[u8], i: usize) -> usize {
    let first = skip_space(b, i);
    if b.get(first) == Some(&b'{') {
        let mut depth = 0usize;
        let mut k = first;
        while k < b.len() {
            if let Some((_, end)) = atom_at(b, k, Syntax::Scss) {
                k = end;
                continue;
            }
            match b[k] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return k + 1;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        return b.len();
    }
    statement_end(b, i)
}

/// The index of the `;`, `{` or `}` ending the statement at `i` (or the text's length),
/// skipping strings, comments, `url(...)` and `#{...}` / `@{...}` interpolations.
fn statement_end(b: &[u8], i: usize) -> usize {
    let mut interpolations = 0usize;
    let mut k = i;
    while k < b.len() {
        if let Some((_, end)) = atom_at(b, k, Syntax::Scss) {
            k = end;
            continue;
        }
        match b[k] {
            b'{' if k > i && matches!(b[k - 1], b'#' | b'@') => interpolations += 1,
            b'}' if interpolations > 0 => interpolations -= 1,
            b'{' | b'}' | b';' if interpolations == 0 => return k,
            _ => {}
        }
        k += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::read::testing::{flat, triples};

    #[test]
    fn scss_variables_maps_and_defaults() {
        let scss = r#"
            @use "sass:math";
            @import 'base';
            // Colors
            $color-primary: #0969DA !default;
            $font-stack : "Helvetica Neue",  sans-serif; /* trailing */
            $breakpoints: (
              small: 576px, // phones
              medium: 768px,
              large: (min: 992px, max: 1199px)
            );
            $bg: url(http://cdn.test/a.png);
            $icon: url(data:image/svg+xml;base64,AAA=);
            $calc: calc(100% - #{$gutter});
            .card {
              $pad: 8px;
              padding: $pad;
              &:hover { $pad: 12px }
            }
            @media (prefers-color-scheme: dark) { $mode: dark; }
            @mixin theme($accent: red) { color: $accent; }
        "#;
        assert_eq!(
            flat(&read_scss(scss).unwrap()),
            triples(&[
                ("", "bg", "url(http://cdn.test/a.png)"),
                (
                    "",
                    "breakpoints",
                    "( small: 576px, medium: 768px, large: (min: 992px, max: 1199px) )"
                ),
                ("", "calc", "calc(100% - #{$gutter})"),
                ("", "color-primary", "#0969DA !default"),
                ("", "font-stack", "\"Helvetica Neue\", sans-serif"),
                ("", "icon", "url(data:image/svg+xml;base64,AAA=)"),
                (".card", "pad", "8px"),
                (".card &:hover", "pad", "12px"),
                ("@media (prefers-color-scheme: dark)", "mode", "dark"),
            ])
        );
    }

    #[test]
    fn interpolated_selectors_and_values_without_semicolons() {
        let scss = ".btn-#{$name} { $w: 1px } .x { $last: 2 }";
        assert_eq!(
            flat(&read_scss(scss).unwrap()),
            triples(&[(".btn-#{$name}", "w", "1px"), (".x", "last", "2")])
        );
    }

    #[test]
    fn less_variables_skip_at_rules() {
        let less = r#"
            @import (reference) "base.less";
            @primary: #0969DA;
            @spacing-sm:4px;
            @media screen and (min-width: 768px) { @cols: 12; }
            @detached: { background: red; };
            .@{prefix}-card { @radius: 4px; }
            @plugin "plugin";
            .mixin() when (@mode = dark) { @x: ~"escaped"; }
        "#;
        assert_eq!(
            flat(&read_less(less).unwrap()),
            triples(&[
                ("", "detached", "{ background: red; }"),
                ("", "primary", "#0969DA"),
                ("", "spacing-sm", "4px"),
                (".@{prefix}-card", "radius", "4px"),
                (".mixin() when (@mode = dark)", "x", "~\"escaped\""),
                ("@media screen and (min-width: 768px)", "cols", "12"),
            ])
        );
        // `$` means nothing in Less, `@name:` nothing in SCSS.
        assert!(read_scss("@a: 1;").unwrap().is_empty());
        assert!(read_less("$a: 1;").unwrap().is_empty());
    }

    #[test]
    fn junk_is_skipped() {
        let scss = "} } $a: 1; ;; $: 2; $b 3; \"unclosed $c: 4; { $d: 5";
        assert_eq!(flat(&read_scss(scss).unwrap()), triples(&[("", "a", "1")]));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{}$x: 1{}", ".a{".repeat(n), "}".repeat(n));
        assert_eq!(read_scss(&nested(MAX_DEPTH)).unwrap().len(), 1);
        assert_eq!(read_scss(&nested(MAX_DEPTH + 1)), Err(too_deep()));
        assert_eq!(read_scss(&"{".repeat(10_000)), Err(too_deep()));
        assert_eq!(read_less(&"a{".repeat(10_000)), Err(too_deep()));
    }
}
