//! Android value resources (`res/values*/*.xml`), read with roxmltree.
//!
//! Grammar:
//! - the root element is `<resources>`; any other root is another kind of XML file and
//!   has no tokens;
//! - each child `<color>`, `<dimen>`, `<string>`, `<integer>`, `<bool>`, `<fraction>` or
//!   `<item>` (with its `type=`) with a `name=` is a token: the name is the attribute, the
//!   value the element's text (markup inside a `<string>` contributes its text), trimmed
//!   and with whitespace runs collapsed; other elements (`<style>`, arrays, `<plurals>`)
//!   are not read; the context is empty (a `values-night` file is a file of its own);
//! - XML that is not well-formed is an error with roxmltree's message.
//!
//! A DTD is refused (roxmltree's default), so no entity can expand; roxmltree parses
//! without recursion and keeps the tree flat, and only the root's children are read.

use roxmltree::{Document, Node};

use super::{FileTokens, ReadError};

const VALUE_ELEMENTS: [&str; 7] = [
    "color", "dimen", "string", "integer", "bool", "fraction", "item",
];

pub(super) fn read(text: &str) -> Result<FileTokens, ReadError> {
    let document = Document::parse(text).map_err(|e| ReadError(e.to_string()))?;
    let mut tokens = FileTokens::default();
    let root = document.root_element();
    if root.tag_name().name() != "resources" {
        return Ok(tokens);
    }
    for element in root.children().filter(Node::is_element) {
        if !VALUE_ELEMENTS.contains(&element.tag_name().name()) {
            continue;
        }
        let Some(name) = element.attribute("name") else {
            continue;
        };
        tokens.insert("", name, text_of(element));
    }
    Ok(tokens)
}

/// The text inside `element`, with whitespace runs collapsed; an iterator over the
/// subtree, so deep markup costs no stack.
fn text_of(element: Node<'_, '_>) -> String {
    let mut value = String::new();
    for node in element.descendants().filter(Node::is_text) {
        for word in node.text().unwrap_or("").split_whitespace() {
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(word);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::read::testing::{pairs, plain};

    fn tokens(xml: &str) -> Vec<(String, String)> {
        plain(read(xml))
    }

    #[test]
    fn value_resources_by_name() {
        let xml = r##"<?xml version="1.0" encoding="utf-8"?>
            <!-- generated -->
            <resources xmlns:tools="http://schemas.android.com/tools">
                <color name="primary_500">#FF0969DA</color>
                <dimen name="space_sm"> 4dp </dimen>
                <string name="greeting">Hello, <b>world</b>
                    again</string>
                <integer name="columns">12</integer>
                <bool name="is_tablet">false</bool>
                <item name="ratio" type="fraction" format="float">0.5</item>
                <color name="alias">@color/primary_500</color>
                <style name="Theme"><item name="android:colorPrimary">#000</item></style>
                <color>no name</color>
            </resources>"##;
        assert_eq!(
            tokens(xml),
            pairs(&[
                ("alias", "@color/primary_500"),
                ("columns", "12"),
                ("greeting", "Hello, world again"),
                ("is_tablet", "false"),
                ("primary_500", "#FF0969DA"),
                ("ratio", "0.5"),
                ("space_sm", "4dp"),
            ])
        );
    }

    #[test]
    fn other_xml_has_no_tokens() {
        assert!(
            read("<manifest package=\"x\"><color name=\"a\">#fff</color></manifest>")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn malformed_xml_and_dtds_are_errors() {
        let err = read("<resources><color name=\"a\">#fff</resources>").unwrap_err();
        assert!(err.0.contains("1:"), "{err}");
        let bomb = r#"<?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;">]>
            <resources><string name="a">&lol1;</string></resources>"#;
        assert!(read(bomb).is_err());
    }

    #[test]
    fn deep_markup_is_no_problem() {
        let xml = format!(
            "<resources><string name=\"s\">{}x{}</string></resources>",
            "<b>".repeat(10_000),
            "</b>".repeat(10_000)
        );
        assert_eq!(tokens(&xml), pairs(&[("s", "x")]));
    }
}
