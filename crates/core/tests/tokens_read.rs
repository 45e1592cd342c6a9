//! Reading tokens out of files in the shapes Supernova's exporters write (DTCG JSON with
//! groups and aliases, CSS custom properties with themes, SCSS variables, TypeScript
//! constants, Android resources, Swift and Kotlin constants), each compared with the
//! exact tokens expected; then hostile input: deep nesting, a long line, an alias cycle,
//! bytes that are not text, and arbitrary bytes that must never make a reader panic.

use courier_core::tokens::read::read;
use courier_core::tokens::{FileTokens, Format, ReadError};
use proptest::prelude::*;

const ALL_FORMATS: [Format; 8] = [
    Format::Json,
    Format::Css,
    Format::Scss,
    Format::Less,
    Format::JavaScript,
    Format::AndroidXml,
    Format::Swift,
    Format::Kotlin,
];

/// Tokens from `(context, name, value)` triples.
fn expected(triples: &[(&str, &str, &str)]) -> FileTokens {
    let mut tokens = FileTokens::default();
    for (context, name, value) in triples {
        tokens.insert(context, *name, *value);
    }
    tokens
}

/// Reads `text` as the file at `path` would be read.
#[track_caller]
fn read_file(path: &str, text: &str) -> FileTokens {
    let format = Format::of(path).expect("a token file");
    match read(format, text.as_bytes()) {
        Ok(tokens) => tokens,
        Err(e) => panic!("{path}: {e}"),
    }
}

#[test]
fn dtcg_json_with_groups_types_and_aliases() {
    let json = r##"{
      "color": {
        "$type": "color",
        "base": {
          "blue": {
            "500": { "$value": "#0969DA", "$description": "Primary blue" },
            "600": { "$value": "#0550AE" }
          },
          "white": { "$value": "#FFFFFF" },
          "black": { "$value": "#000000" }
        },
        "semantic": {
          "accent": { "$value": "{color.base.blue.500}" },
          "accent-emphasis": { "$value": "{color.semantic.accent}" },
          "on-accent": { "$value": "{color.base.white}", "$type": "color" },
          "legacy": { "$value": "{color.base.red.500}" }
        }
      },
      "dimension": {
        "$type": "dimension",
        "space": { "sm": { "$value": "4px" }, "md": { "$value": "8px" } },
        "scale": { "$value": 1.25, "$type": "number" }
      },
      "typography": {
        "body": {
          "$type": "typography",
          "$value": { "fontFamily": "Inter", "fontSize": "16px", "fontWeight": 400, "lineHeight": 1.5 }
        }
      },
      "shadow": {
        "raised": {
          "$type": "shadow",
          "$value": [{ "offsetY": "1px", "offsetX": "0px", "blur": "3px", "color": "{color.base.black}" }]
        }
      },
      "$extensions": { "io.supernova": { "version": { "$value": "ignored" } } }
    }"##;
    let tokens = read_file("tokens/tokens.json", json);
    assert_eq!(
        tokens,
        expected(&[
            ("", "color.base.black", "#000000"),
            ("", "color.base.blue.500", "#0969DA"),
            ("", "color.base.blue.600", "#0550AE"),
            ("", "color.base.white", "#FFFFFF"),
            (
                "",
                "color.semantic.accent",
                "{color.base.blue.500} (#0969DA)"
            ),
            (
                "",
                "color.semantic.accent-emphasis",
                "{color.semantic.accent} (#0969DA)"
            ),
            ("", "color.semantic.legacy", "{color.base.red.500}"),
            (
                "",
                "color.semantic.on-accent",
                "{color.base.white} (#FFFFFF)"
            ),
            ("", "dimension.scale", "1.25"),
            ("", "dimension.space.md", "8px"),
            ("", "dimension.space.sm", "4px"),
            (
                "",
                "shadow.raised",
                r#"[{"blur":"3px","color":"{color.base.black}","offsetX":"0px","offsetY":"1px"}]"#
            ),
            (
                "",
                "typography.body",
                r#"{"fontFamily":"Inter","fontSize":"16px","fontWeight":400,"lineHeight":1.5}"#
            ),
        ])
    );
}

#[test]
fn style_dictionary_json() {
    let json = r##"{
      "size": { "font": { "base": { "value": "16px", "comment": "body text" },
                          "large": { "value": "{size.font.base.value}" } } },
      "color": { "brand": { "value": "#0969DA", "attributes": { "category": "color" } } }
    }"##;
    assert_eq!(
        read_file("build/tokens.json", json),
        expected(&[
            ("", "color.brand", "#0969DA"),
            ("", "size.font.base", "16px"),
            ("", "size.font.large", "{size.font.base.value} (16px)"),
        ])
    );
}

#[test]
fn other_json_files_have_no_tokens() {
    let package = r#"{ "name": "@acme/tokens", "version": "1.4.0", "main": "index.js",
                       "scripts": { "build": "style-dictionary build" } }"#;
    assert!(read_file("package.json", package).is_empty());
    assert!(read_file("list.json", "[1, 2, 3]").is_empty());
    assert_eq!(
        read(Format::Json, b"{\"a\": 1,}"),
        Err(ReadError("trailing comma at line 1 column 9".to_owned()))
    );
}

#[test]
fn css_with_root_and_dark_theme() {
    let css = r#"/**
 * Do not edit directly, this file was auto-generated.
 */

:root {
  --color-base-blue-500: #0969da;
  --color-semantic-accent: var(--color-base-blue-500);
  --font-family-body: "Inter", -apple-system, BlinkMacSystemFont, sans-serif;
  --shadow-raised: 0 1px 3px 0 rgba(0, 0, 0, 0.12),
                   0 1px 2px 0 rgba(0, 0, 0, 0.24);
  --space-md: 8px;
}

[data-theme="dark"] {
  --color-semantic-accent: #4493f8; /* brighter on dark */
  --space-md: 8px !important;
}

@media (prefers-color-scheme: dark) {
  :root {
    --color-semantic-accent: #4493f8;
  }
}

.theme-dark body {
  color: var(--color-semantic-accent);
}
"#;
    assert_eq!(
        read_file("dist/css/tokens.css", css),
        expected(&[
            (":root", "color-base-blue-500", "#0969da"),
            (
                ":root",
                "color-semantic-accent",
                "var(--color-base-blue-500)"
            ),
            (
                ":root",
                "font-family-body",
                "\"Inter\", -apple-system, BlinkMacSystemFont, sans-serif"
            ),
            (
                ":root",
                "shadow-raised",
                "0 1px 3px 0 rgba(0, 0, 0, 0.12), 0 1px 2px 0 rgba(0, 0, 0, 0.24)"
            ),
            (":root", "space-md", "8px"),
            (
                "@media (prefers-color-scheme: dark) :root",
                "color-semantic-accent",
                "#4493f8"
            ),
            ("[data-theme=\"dark\"]", "color-semantic-accent", "#4493f8"),
            ("[data-theme=\"dark\"]", "space-md", "8px !important"),
        ])
    );
}

#[test]
fn scss_variables_file() {
    let scss = r#"// Do not edit directly, this file was auto-generated.
@use "sass:map";

$color-base-blue-500: #0969da !default;
$color-semantic-accent: $color-base-blue-500;
$font-family-body: "Inter", -apple-system, sans-serif;
$space-md: 8px;
$breakpoints: (
  "sm": 544px,
  "md": 768px,
);

[data-theme="dark"] {
  $color-semantic-accent: #4493f8;
}
"#;
    assert_eq!(
        read_file("dist/scss/_variables.scss", scss),
        expected(&[
            ("", "breakpoints", "( \"sm\": 544px, \"md\": 768px, )"),
            ("", "color-base-blue-500", "#0969da !default"),
            ("", "color-semantic-accent", "$color-base-blue-500"),
            (
                "",
                "font-family-body",
                "\"Inter\", -apple-system, sans-serif"
            ),
            ("", "space-md", "8px"),
            ("[data-theme=\"dark\"]", "color-semantic-accent", "#4493f8"),
        ])
    );
}

#[test]
fn less_variables_file() {
    let less = "// generated\n@import (reference) \"mixins.less\";\n\
                @color-primary: #0969da;\n@space-md: 8px;\n\
                @media (min-width: 768px) { .grid { @cols: 12; } }\n";
    assert_eq!(
        read_file("dist/less/variables.less", less),
        expected(&[
            ("", "color-primary", "#0969da"),
            ("", "space-md", "8px"),
            ("@media (min-width: 768px) .grid", "cols", "12"),
        ])
    );
}

#[test]
fn typescript_tokens() {
    let ts = r##"/**
 * Do not edit directly, this file was auto-generated.
 */

export const ColorBaseBlue500 = "#0969da";
export const SpaceMd: string = "8px";
export const FontWeightBold = 700;

export const colors = {
  base: {
    blue: { 500: "#0969da", "600": "#0550ae" },
  },
  semantic: {
    accent: ColorBaseBlue500,
  },
} as const;

export type Colors = typeof colors;

export default {
  radius: { sm: "2px", md: "6px" },
};
"##;
    assert_eq!(
        read_file("dist/js/tokens.ts", ts),
        expected(&[
            ("", "ColorBaseBlue500", "#0969da"),
            ("", "FontWeightBold", "700"),
            ("", "SpaceMd", "8px"),
            ("", "colors.base.blue.500", "#0969da"),
            ("", "colors.base.blue.600", "#0550ae"),
            ("", "colors.semantic.accent", "ColorBaseBlue500"),
            ("", "radius.md", "6px"),
            ("", "radius.sm", "2px"),
        ])
    );
    let cjs = "module.exports = {\n  colorPrimary: '#0969da',\n  spaceMd: '8px'\n};\n";
    assert_eq!(
        read_file("dist/js/tokens.cjs", cjs),
        expected(&[("", "colorPrimary", "#0969da"), ("", "spaceMd", "8px")])
    );
}

#[test]
fn android_colors_xml() {
    let xml = r##"<?xml version="1.0" encoding="UTF-8"?>
<!-- Do not edit directly, this file was auto-generated. -->
<resources>
  <color name="color_base_blue_500">#ff0969da</color>
  <color name="color_semantic_accent">@color/color_base_blue_500</color>
  <dimen name="space_md">8.00dp</dimen>
  <string name="font_family_body">Inter</string>
</resources>
"##;
    assert_eq!(
        read_file("android/res/values/colors.xml", xml),
        expected(&[
            ("", "color_base_blue_500", "#ff0969da"),
            ("", "color_semantic_accent", "@color/color_base_blue_500"),
            ("", "font_family_body", "Inter"),
            ("", "space_md", "8.00dp"),
        ])
    );
    let manifest = "<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\"/>";
    assert!(read_file("android/AndroidManifest.xml", manifest).is_empty());
}

#[test]
fn swift_enum_with_static_lets() {
    let swift = r#"//
// Do not edit directly, this file was auto-generated.
//

import UIKit

public enum StyleDictionaryColor {
    public static let colorBaseBlue500 = UIColor(red: 0.035, green: 0.412, blue: 0.855, alpha: 1)
    public static let colorSemanticAccent = UIColor(red: 0.035, green: 0.412, blue: 0.855, alpha: 1)
}

public enum StyleDictionarySize {
    public static let spaceMd: CGFloat = 8
    public static let fontFamilyBody = "Inter"
}
"#;
    assert_eq!(
        read_file("ios/StyleDictionaryColor.swift", swift),
        expected(&[
            (
                "",
                "StyleDictionaryColor.colorBaseBlue500",
                "UIColor(red: 0.035, green: 0.412, blue: 0.855, alpha: 1)"
            ),
            (
                "",
                "StyleDictionaryColor.colorSemanticAccent",
                "UIColor(red: 0.035, green: 0.412, blue: 0.855, alpha: 1)"
            ),
            ("", "StyleDictionarySize.fontFamilyBody", "\"Inter\""),
            ("", "StyleDictionarySize.spaceMd", "8"),
        ])
    );
}

#[test]
fn kotlin_object_with_vals() {
    let kotlin = r#"
// Do not edit directly, this file was auto-generated.
package com.acme.tokens

import androidx.compose.ui.graphics.Color
import androidx.compose.ui.unit.dp

object DesignTokens {
    val colorBaseBlue500 = Color(0xff0969da)
    val colorSemanticAccent = Color(0xff0969da)
    val spaceMd = 8.00.dp
    const val fontFamilyBody = "Inter"
}
"#;
    assert_eq!(
        read_file("android/DesignTokens.kt", kotlin),
        expected(&[
            ("", "DesignTokens.colorBaseBlue500", "Color(0xff0969da)"),
            ("", "DesignTokens.colorSemanticAccent", "Color(0xff0969da)"),
            ("", "DesignTokens.fontFamilyBody", "\"Inter\""),
            ("", "DesignTokens.spaceMd", "8.00.dp"),
        ])
    );
}

#[test]
fn an_alias_cycle_is_an_error_naming_it() {
    let json = r#"{ "a": { "$value": "{b}" }, "b": { "$value": "{a}" }, "c": { "$value": 1 } }"#;
    assert_eq!(
        read(Format::Json, json.as_bytes()),
        Err(ReadError("alias cycle: a -> b -> a".to_owned()))
    );
}

#[test]
fn invalid_utf8_is_an_error_in_every_format() {
    let mut bytes = b":root { --a: 1; }".to_vec();
    bytes.insert(9, 0xC3);
    for format in ALL_FORMATS {
        assert_eq!(
            read(format, &bytes),
            Err(ReadError(
                "not UTF-8 text (invalid byte at offset 9)".to_owned()
            )),
            "{format:?}"
        );
    }
}

/// Long values are kept whole: shortening them is the renderer's business.
#[test]
fn long_values_are_kept_whole() {
    let long = "x".repeat(5_000);
    let cases = [
        (
            Format::Json,
            format!("{{\"a\": {{\"$value\": \"{long}\"}}}}"),
        ),
        (Format::Css, format!(":root {{ --a: {long}; }}")),
        (Format::Scss, format!("$a: {long};")),
        (Format::JavaScript, format!("export const a = \"{long}\";")),
    ];
    for (format, text) in cases {
        let context = if format == Format::Css { ":root" } else { "" };
        assert_eq!(
            read(format, text.as_bytes()),
            Ok(expected(&[(context, "a", &long)])),
            "{format:?}"
        );
    }
}

const TOO_DEEP: &str = "nested deeper than 64 levels";

/// Deep nesting is refused, or read as nothing, in every format, without recursing.
#[test]
fn ten_thousand_levels_of_nesting_do_not_overflow() {
    let deep = 10_000;
    let cases = [
        (
            Format::Json,
            format!("{}{}", "{\"a\":".repeat(deep), "}".repeat(deep)),
        ),
        (
            Format::Json,
            format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
        ),
        (Format::Css, "{".repeat(deep)),
        (Format::Css, format!("{}--x: 1", "a {".repeat(deep))),
        (Format::Scss, format!("{}$x: 1;", "{".repeat(deep))),
        (Format::Less, format!("{}@x: 1;", ".a {".repeat(deep))),
        (
            Format::JavaScript,
            format!("export const t = {}1", "{a: ".repeat(deep)),
        ),
        (Format::JavaScript, "{[(".repeat(deep)),
        (
            Format::AndroidXml,
            format!("<resources>{}", "<a>".repeat(deep)),
        ),
        (
            Format::AndroidXml,
            format!(
                "<resources>{}{}</resources>",
                "<a>".repeat(deep),
                "</a>".repeat(deep)
            ),
        ),
        (Format::Swift, "enum A {".repeat(deep)),
        (Format::Kotlin, "object A {".repeat(deep)),
    ];
    for (format, text) in cases {
        match read(format, text.as_bytes()) {
            Ok(tokens) => assert!(tokens.is_empty(), "{format:?}: {tokens:?}"),
            Err(ReadError(message)) => assert!(
                message == TOO_DEEP || format == Format::AndroidXml,
                "{format:?}: {message}"
            ),
        }
    }
    // Those with a token past the limit name the limit.
    for (format, text) in [
        (
            Format::Json,
            format!("{}{}", "{\"a\":".repeat(deep), "}".repeat(deep)),
        ),
        (Format::Css, format!("{}--x: 1", "a {".repeat(deep))),
        (Format::Scss, format!("{}$x: 1;", "{".repeat(deep))),
        (
            Format::Swift,
            format!("{}static let x = 1", "enum A {".repeat(deep)),
        ),
    ] {
        assert_eq!(
            read(format, text.as_bytes()),
            Err(ReadError(TOO_DEEP.to_owned())),
            "{format:?}"
        );
    }
}

/// A 10 MB stylesheet on one line is read (in linear time: a quadratic reader would not
/// finish this test).
#[test]
fn a_ten_megabyte_line_of_css_is_read() {
    let rule = ":root{--a:1;--b:2;--c:rgb(0 0 0 / 50%)}";
    let css = rule.repeat((10 << 20) / rule.len() + 1);
    assert!(css.len() > 10 << 20);
    let tokens = read(Format::Css, css.as_bytes()).expect("CSS reads");
    assert_eq!(
        tokens,
        expected(&[
            (":root", "a", "1"),
            (":root", "b", "2"),
            (":root", "c", "rgb(0 0 0 / 50%)"),
        ])
    );
}

/// The same for the hand-written scanners, on a line of 10 MB each.
#[test]
fn ten_megabyte_lines_of_variables_and_constants_are_read() {
    let cases = [
        (Format::Scss, "$a: 1; .x { $b: (k: v); } "),
        (Format::Less, "@a: 1; .x { @b: 2; } "),
        (
            Format::JavaScript,
            "export const a = { b: 'c' }; export const d = 1; ",
        ),
        (Format::Kotlin, "object A { val a = 1; } val b = 2; "),
    ];
    for (format, unit) in cases {
        let text = unit.repeat((10 << 20) / unit.len() + 1);
        let tokens = read(format, text.as_bytes()).expect("reads");
        assert_eq!(tokens.len(), 2, "{format:?}: {tokens:?}");
    }
}

/// Characters that mean something to one reader or another.
const SYNTAX: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ":",
    ",",
    ".",
    "=",
    "\"",
    "'",
    "`",
    "/",
    "*",
    "\\",
    "$",
    "@",
    "#",
    "<",
    ">",
    "!",
    "-",
    "--",
    "\n",
    " ",
    "a",
    "1",
    "é",
    "$value",
    "value",
    "url(",
    "//",
    "/*",
    "*/",
    "${",
    "#{",
    "let ",
    "val ",
    "export const ",
    "enum E ",
    "object O ",
    "module.exports",
    "<resources>",
    "</resources>",
    "<color name=\"c\">",
    "{a.b}",
    "!important",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for format in ALL_FORMATS {
            let _ = read(format, &bytes);
        }
    }

    #[test]
    fn arbitrary_syntax_never_panics(
        parts in proptest::collection::vec(proptest::sample::select(SYNTAX), 0..200)
    ) {
        let text = parts.concat();
        for format in ALL_FORMATS {
            let _ = read(format, text.as_bytes());
        }
    }
}
