//! CSS custom properties, read with cssparser's rule and declaration parsing (the CSS
//! Syntax Level 3 algorithm browsers use, so malformed CSS recovers rule by rule).
//!
//! Grammar:
//! - a token is a declaration `--name: value` in any rule's block; its name is without
//!   the leading `--`; other declarations are ignored, as are custom properties outside
//!   any block;
//! - its value is the declaration's text up to `;` or the block's end, comments dropped,
//!   whitespace runs collapsed, `!important` kept as written;
//! - its context is the rule's selector text (`:root`, `[data-theme="dark"]`), collapsed
//!   the same way; a block inside an at-rule (`@media`, `@supports`, `@layer`, any at-rule
//!   with a block) or inside another rule (CSS nesting) is prefixed by the enclosing
//!   at-rule (`@media (prefers-color-scheme: dark)`) or selector, joined with a space;
//! - a rule with an empty selector, or a stray `}` in it, is skipped with its block, as
//!   browsers skip a rule whose selector is invalid.
//!
//! Blocks nested deeper than [`MAX_DEPTH`] are an error. The tokenizer is linear, skips
//! over blocks it is not asked to enter without recursion, and values are sliced from
//! the input, so a long single line stays linear.

use cssparser::{
    AtRuleParser, CowRcStr, DeclarationParser, ParseError, Parser, ParserState,
    QualifiedRuleParser, RuleBodyItemParser, RuleBodyParser, StyleSheetParser, Token,
};

use super::text::{Syntax, collapse};
use super::{FileTokens, MAX_DEPTH, ReadError, too_deep};

pub(super) fn read(text: &str) -> Result<FileTokens, ReadError> {
    let mut parser = Parser::new(text);
    let mut reader = Reader::default();
    for _rule in StyleSheetParser::new(&mut parser, &mut reader) {
        // Each rule's tokens are recorded as it is parsed; an invalid rule is skipped.
    }
    if reader.too_deep {
        return Err(too_deep());
    }
    Ok(reader.tokens)
}

#[derive(Default)]
struct Reader {
    tokens: FileTokens,
    /// The enclosing selectors and at-rules, joined with spaces.
    context: String,
    /// `context`'s length before each enclosing block was entered.
    outer: Vec<usize>,
    too_deep: bool,
}

type Failure = ParseError<()>;

impl Reader {
    /// Reads a block's declarations and nested rules in the context `prelude` adds.
    fn block<'i>(&mut self, prelude: &str, input: &mut Parser<'i>) -> Result<(), Failure> {
        if self.outer.len() >= MAX_DEPTH {
            self.too_deep = true;
            return Err(ParseError::custom(()));
        }
        self.outer.push(self.context.len());
        if !self.context.is_empty() {
            self.context.push(' ');
        }
        self.context.push_str(prelude);
        for _item in RuleBodyParser::<'_, '_, Self, (), ()>::new(input, self) {}
        if let Some(len) = self.outer.pop() {
            self.context.truncate(len);
        }
        Ok(())
    }
}

/// The rest of `input` (a prelude or a declaration value), collapsed, and whether it
/// has a stray `}` (which no selector has).
fn rest(input: &mut Parser<'_>) -> (String, bool) {
    let start = input.position();
    let mut stray_close = false;
    // Blocks and functions are skipped whole by the next call, without recursion.
    while let Ok(token) = input.next_including_whitespace_and_comments() {
        stray_close |= matches!(token, Token::CloseCurlyBracket);
    }
    (collapse(input.slice_from(start), Syntax::Css), stray_close)
}

impl<'i> QualifiedRuleParser<'i> for Reader {
    type Prelude = String;
    type QualifiedRule = ();
    type Error = ();

    fn parse_prelude(&mut self, input: &mut Parser<'i>) -> Result<String, Failure> {
        let (selector, stray_close) = rest(input);
        if selector.is_empty() || stray_close {
            return Err(ParseError::custom(()));
        }
        Ok(selector)
    }

    fn parse_block(
        &mut self,
        selector: String,
        _start: &ParserState,
        input: &mut Parser<'i>,
    ) -> Result<(), Failure> {
        self.block(&selector, input)
    }
}

impl<'i> AtRuleParser<'i> for Reader {
    type Prelude = String;
    type AtRule = ();
    type Error = ();

    fn parse_prelude(
        &mut self,
        name: CowRcStr<'i>,
        input: &mut Parser<'i>,
    ) -> Result<String, Failure> {
        let (prelude, _) = rest(input);
        Ok(if prelude.is_empty() {
            format!("@{name}")
        } else {
            format!("@{name} {prelude}")
        })
    }

    fn parse_block(
        &mut self,
        prelude: String,
        _start: &ParserState,
        input: &mut Parser<'i>,
    ) -> Result<(), Failure> {
        self.block(&prelude, input)
    }
}

impl<'i> DeclarationParser<'i> for Reader {
    type Declaration = ();
    type Error = ();

    fn parse_value(
        &mut self,
        name: CowRcStr<'i>,
        input: &mut Parser<'i>,
        _start: &ParserState,
    ) -> Result<(), Failure> {
        let (value, _) = rest(input);
        if let Some(name) = name.strip_prefix("--") {
            self.tokens.insert(&self.context, name, value);
        }
        Ok(())
    }
}

impl<'i> RuleBodyItemParser<'i, (), ()> for Reader {
    fn parse_declarations(&self) -> bool {
        true
    }

    fn parse_qualified(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::read::testing::{flat, triples};

    #[test]
    fn custom_properties_by_selector() {
        let css = r#"
            /* generated */
            :root {
              --color-primary: #0969DA;
              --font-body:   "Inter",   sans-serif ;
              color: red;
              --shadow: 0 1px 2px rgba(0, 0, 0, /* 20% */ 0.2);
              --empty:;
            }
            [data-theme="dark"]   { --color-primary: #4493F8 !important }
            .a,
            .b { --x: 1 }
        "#;
        assert_eq!(
            flat(&read(css).unwrap()),
            triples(&[
                (".a, .b", "x", "1"),
                (":root", "color-primary", "#0969DA"),
                (":root", "empty", ""),
                (":root", "font-body", "\"Inter\", sans-serif"),
                (":root", "shadow", "0 1px 2px rgba(0, 0, 0, 0.2)"),
                (
                    "[data-theme=\"dark\"]",
                    "color-primary",
                    "#4493F8 !important"
                ),
            ])
        );
    }

    #[test]
    fn at_rules_and_nesting_prefix_the_context() {
        let css = "@media (prefers-color-scheme: dark) { :root { --bg: #000; } }
                   @supports (color: oklch(0 0 0)) { @layer tokens { .t { --c: oklch(1 0 0) } } }
                   @import url(x.css);
                   .card { --pad: 8px; &:hover { --pad: 12px } }";
        assert_eq!(
            flat(&read(css).unwrap()),
            triples(&[
                (".card", "pad", "8px"),
                (".card &:hover", "pad", "12px"),
                ("@media (prefers-color-scheme: dark) :root", "bg", "#000"),
                (
                    "@supports (color: oklch(0 0 0)) @layer tokens .t",
                    "c",
                    "oklch(1 0 0)"
                ),
            ])
        );
    }

    #[test]
    fn malformed_css_recovers_per_rule() {
        let css = ":root { --a: 1; ;; 12 junk; --b: 2 } } { --c: 3 } @media { --d: 4 } \
                   :root { --e: (unclosed";
        let tokens = read(css).unwrap();
        assert_eq!(
            flat(&tokens),
            triples(&[
                (":root", "a", "1"),
                (":root", "b", "2"),
                (":root", "e", "(unclosed"),
                ("@media", "d", "4"),
            ])
        );
    }

    #[test]
    fn later_definitions_win() {
        let tokens = read(":root{--a:1} :root{--a:2}").unwrap();
        assert_eq!(flat(&tokens), triples(&[(":root", "a", "2")]));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{}--x: 1{}", "a{".repeat(n), "}".repeat(n));
        let ok = read(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(read(&nested(MAX_DEPTH + 1)), Err(too_deep()));
        assert_eq!(read(&nested(10_000)), Err(too_deep()));
        // Bare braces have no selector: skipped whole, without recursion.
        assert!(read(&"{".repeat(10_000)).unwrap().is_empty());
    }
}
