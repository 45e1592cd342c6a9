//! Swift `let` and Kotlin `val` constants, read over the tokens of [`code`](super::code).
//!
//! Grammar (Swift keywords first, Kotlin's after the slash):
//! - a type block is `enum|struct|extension|class|protocol|actor NAME ... {` /
//!   `object|class|interface NAME ... {`: the header runs to its `{` (over generics,
//!   inheritance and constructor parameters; a header that ends first, at a line break or
//!   `;`, `=` or a closing bracket, has no block). NAME may be dotted (`extension
//!   Color.Tokens`); a Kotlin `companion object` without a name adds no name;
//! - a constant is `let` / `val` (any modifiers before it: `public static`, `const`)
//!   then NAME, an optional `: Type`, `=` and a value, directly in type blocks or at the
//!   top level; inside anything else (a function body, a closure, a computed property,
//!   parentheses) nothing is read. `let a = 1, b = 2` gives two constants;
//! - the name is prefixed with the enclosing type names joined by `.`
//!   (`Colors.primary500`); backticks around a name are dropped; the context is empty;
//! - the value is the expression's text (see [`expression`]: it may continue on the
//!   next line with `.modifier(...)` or an operator), comments dropped and whitespace
//!   collapsed, string quotes kept: `Color(hex: 0x0969DA)`, `"Inter"`.
//!
//! Brackets nested deeper than [`MAX_DEPTH`] around a point the reader reaches are an
//! error; they are tracked on a stack, not by recursion.

use super::code::{Kind, Lexer, Tok, expression};
use super::text::{Syntax, collapse};
use super::{FileTokens, MAX_DEPTH, ReadError, too_deep};

struct Lang {
    /// The keyword declaring a constant.
    constant: &'static str,
    /// Keywords that open a named type block.
    types: &'static [&'static str],
    /// Words that follow a type keyword used as a modifier (Swift's `class func`).
    not_names: &'static [&'static str],
}

const SWIFT: Lang = Lang {
    constant: "let",
    types: &["enum", "struct", "extension", "class", "protocol", "actor"],
    not_names: &[
        "func",
        "var",
        "let",
        "static",
        "final",
        "override",
        "subscript",
        "init",
    ],
};

const KOTLIN: Lang = Lang {
    constant: "val",
    types: &["object", "class", "interface"],
    not_names: &["fun", "val", "var"],
};

/// Swift `static let` / `let` constants in `enum`, `struct` and `extension` blocks.
pub(super) fn read_swift(text: &str) -> Result<FileTokens, ReadError> {
    read(text, &SWIFT)
}

/// Kotlin `val` / `const val` constants in `object` blocks.
pub(super) fn read_kotlin(text: &str) -> Result<FileTokens, ReadError> {
    read(text, &KOTLIN)
}

fn read(text: &str, lang: &Lang) -> Result<FileTokens, ReadError> {
    let mut lx = Lexer::new(text);
    let mut tokens = FileTokens::default();
    // The open brackets: a type block's name, `None` for any other bracket.
    let mut open: Vec<Option<String>> = Vec::new();
    // How many of them are not type blocks: constants are read only when none is.
    let mut other = 0usize;
    while let Some(tok) = lx.next() {
        match tok.kind {
            Kind::Punct(b'{' | b'(' | b'[') => {
                push(&mut open, None)?;
                other += 1;
            }
            Kind::Punct(b'}' | b')' | b']') => {
                if let Some(None) = open.pop() {
                    other -= 1;
                }
            }
            Kind::Word if other == 0 => {
                let word = lx.text(tok);
                if lang.types.contains(&word) {
                    if let Some(name) = type_header(&mut lx, lang, word) {
                        lx.next();
                        push(&mut open, Some(name))?;
                    }
                } else if word == lang.constant {
                    constants(&mut lx, &open, &mut tokens);
                }
            }
            _ => {}
        }
    }
    Ok(tokens)
}

fn push(open: &mut Vec<Option<String>>, block: Option<String>) -> Result<(), ReadError> {
    if open.len() >= MAX_DEPTH {
        return Err(too_deep());
    }
    open.push(block);
    Ok(())
}

/// After a type keyword: the type's name when a block `{` follows its header (the `{`
/// is the next token then).
fn type_header(lx: &mut Lexer<'_>, lang: &Lang, keyword: &str) -> Option<String> {
    let mut name = String::new();
    match lx.peek_word() {
        Some(word) if !lang.not_names.contains(&word) => {
            lx.next();
            name.push_str(word);
            // `Color.Tokens`
            while lx.peek().is_some_and(|t| t.is(b'.')) {
                lx.next();
                let part = lx.peek_word()?;
                lx.next();
                name.push('.');
                name.push_str(part);
            }
        }
        // A companion or anonymous object.
        None if keyword == "object" => {}
        _ => return None,
    }
    let mut depth = 0usize;
    let mut prev: Option<Tok> = None;
    while let Some(tok) = lx.peek() {
        if depth == 0 {
            match tok.kind {
                Kind::Punct(b'{') => return Some(name),
                Kind::Punct(b';' | b'=' | b'}' | b')' | b']') => return None,
                _ if tok.newline_before && !header_continues(lx, prev, tok) => return None,
                _ => {}
            }
        }
        match tok.kind {
            Kind::Punct(b'(' | b'[') => depth += 1,
            Kind::Punct(b')' | b']') => depth -= 1,
            _ => {}
        }
        lx.next();
        prev = Some(tok);
    }
    None
}

/// Whether a header goes on after a line break: after or before `:` or `,`, or at `where`.
fn header_continues(lx: &Lexer<'_>, prev: Option<Tok>, next: Tok) -> bool {
    let joins = |tok: Tok| tok.is(b':') || tok.is(b',');
    prev.is_some_and(joins) || joins(next) || lx.text(next) == "where"
}

/// After `let` / `val`: one or more `NAME (: Type)? = value`, separated by commas.
fn constants(lx: &mut Lexer<'_>, open: &[Option<String>], tokens: &mut FileTokens) {
    loop {
        let Some(tok) = lx
            .peek()
            .filter(|t| matches!(t.kind, Kind::Word | Kind::Str))
        else {
            return;
        };
        let text = lx.text(tok);
        let name = match tok.kind {
            Kind::Str => match text.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
                Some(name) if !name.is_empty() => name,
                _ => return,
            },
            _ => text,
        };
        lx.next();
        let assigned = if lx.eat(b':') {
            skip_type(lx)
        } else {
            lx.eat(b'=')
        };
        if !assigned {
            return;
        }
        let Some((start, end)) = expression(lx) else {
            return;
        };
        let mut full = String::new();
        for type_name in open.iter().flatten().filter(|n| !n.is_empty()) {
            full.push_str(type_name);
            full.push('.');
        }
        full.push_str(name);
        tokens.insert("", full, collapse(lx.slice(start, end), Syntax::Code));
        if !lx.eat(b',') {
            return;
        }
    }
}

/// Skips a type annotation through the `=` after it; `false` when no `=` follows on the
/// declaration's line (a declaration without a value, a computed property).
fn skip_type(lx: &mut Lexer<'_>) -> bool {
    let mut depth = 0usize;
    let mut first = true;
    while let Some(tok) = lx.peek() {
        if depth == 0 {
            match tok.kind {
                Kind::Punct(b'{' | b'}' | b')' | b']' | b';') => return false,
                Kind::Punct(b'=') => {
                    lx.next();
                    return true;
                }
                _ if tok.newline_before && !first => return false,
                _ => {}
            }
        }
        match tok.kind {
            Kind::Punct(b'(' | b'[' | b'<') => depth += 1,
            Kind::Punct(b')' | b']' | b'>') => depth = depth.saturating_sub(1),
            _ => {}
        }
        lx.next();
        first = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::read::testing::{pairs, plain as tokens};

    #[test]
    fn swift_constants_in_types() {
        let swift = r##"
            import SwiftUI

            // Generated
            public enum Colors {
                public static let primary500 = Color(hex: 0x0969DA)
                static let onPrimary: UIColor = UIColor(red: 0.04, green: 0.41,
                                                        blue: 0.85, alpha: 1)
                static let faded = Color.blue
                    .opacity(0.5) // half
                static var computed: Color { Color.red }
                static func make() -> Color { let inner = 1; return .red }
                enum Dark { static let bg = "#000000" }
            }
            extension Font.Tokens {
                static let `default` = Font.system(size: 16), small = Font.system(size: 12)
            }
            struct Spacing: Equatable
            {
                let sm: CGFloat = 4
                class func f() {}
            }
            let global = 1
        "##;
        assert_eq!(
            tokens(read_swift(swift)),
            pairs(&[
                ("Colors.Dark.bg", "\"#000000\""),
                ("Colors.faded", "Color.blue .opacity(0.5)"),
                (
                    "Colors.onPrimary",
                    "UIColor(red: 0.04, green: 0.41, blue: 0.85, alpha: 1)"
                ),
                ("Colors.primary500", "Color(hex: 0x0969DA)"),
                ("Font.Tokens.default", "Font.system(size: 16)"),
                ("Font.Tokens.small", "Font.system(size: 12)"),
                ("Spacing.sm", "4"),
                ("global", "1"),
            ])
        );
    }

    #[test]
    fn kotlin_vals_in_objects() {
        let kotlin = r#"
            package com.example.tokens

            import androidx.compose.ui.graphics.Color

            object ColorTokens {
                val Primary500 = Color(0xFF0969DA)
                const val SPACING_SM: Int = 4
                private val faded = Color(0xFF000000)
                    .copy(alpha = 0.5f)
                val lazyOne by lazy { Color.Red }
                fun f() { val inner = 1 }
                object Dark { val Background = Color(0xFF000000) }
            }
            data class Pair(val a: Int, val b: Int)
            class Theme {
                companion object {
                    val Default = "light"
                }
            }
        "#;
        assert_eq!(
            tokens(read_kotlin(kotlin)),
            pairs(&[
                ("ColorTokens.Dark.Background", "Color(0xFF000000)"),
                ("ColorTokens.Primary500", "Color(0xFF0969DA)"),
                ("ColorTokens.SPACING_SM", "4"),
                ("ColorTokens.faded", "Color(0xFF000000) .copy(alpha = 0.5f)"),
                ("Theme.Default", "\"light\""),
            ])
        );
    }

    #[test]
    fn junk_is_skipped() {
        let swift =
            "let = 1\nlet (a, b) = (1, 2)\nlet c: Int\nenum { static let e = 2 }\n}}\nlet d =";
        assert!(tokens(read_swift(swift)).is_empty());
        assert!(tokens(read_kotlin("val : Int = 1\nval y by z\nobject")).is_empty());
    }

    #[test]
    fn nesting_is_bounded() {
        let nested =
            |n: usize| format!("{}static let x = 1{}", "enum A {".repeat(n), "}".repeat(n));
        assert_eq!(read_swift(&nested(MAX_DEPTH)).unwrap().len(), 1);
        assert_eq!(read_swift(&nested(MAX_DEPTH + 1)), Err(too_deep()));
        assert_eq!(read_kotlin(&"{".repeat(10_000)), Err(too_deep()));
    }
}
