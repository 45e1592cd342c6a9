//! Finding the line and column of a key path after validation.
//!
//! serde_norway does not expose spans, but it stamps every error raised while
//! deserializing a node with that node's position. So to locate `hooks[0].targets[1]
//! .relative_path` the document is walked once more with a probe that skips
//! everything off the path and fails on purpose at the node; the failure carries the
//! position. A path that does not exist in the file (a default that was wrong, a
//! required key that is missing) is located at its nearest existing ancestor.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::Location;

/// The message of the probe's deliberate failure; it never reaches a user.
const FOUND: &str = "\u{0}courier-config-locate";

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where `path` (as written in problems: `a.b[0].c`) is in `text`, or its nearest
/// ancestor that is. `None` for the document itself or when the text does not parse.
pub(super) fn locate(text: &str, path: &str) -> Option<Location> {
    let mut segments = parse_path(path)?;
    while !segments.is_empty() {
        let probe = Probe { path: &segments };
        match probe.deserialize(serde_norway::Deserializer::from_str(text)) {
            Ok(Found::No) => {
                segments.pop();
            }
            Err(e) if e.to_string().contains(FOUND) => {
                return e.location().map(|l| Location {
                    line: l.line(),
                    column: l.column(),
                });
            }
            Err(_) => return None,
        }
    }
    None
}

fn parse_path(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']')?;
            out.push(Segment::Index(after[..close].parse().ok()?));
            rest = &after[close + 1..];
        }
    }
    Some(out)
}

enum Found {
    No,
}

struct Probe<'p, 'a> {
    path: &'p [Segment<'a>],
}

impl<'de> DeserializeSeed<'de> for Probe<'_, '_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Found, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_, '_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        while let Some(key) = map.next_key::<KeyText>()? {
            if matches!(first, Segment::Key(k) if key.0.as_deref() == Some(*k)) {
                map.next_value_seed(Probe { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Found::No)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let mut index = 0;
        loop {
            let more = if matches!(first, Segment::Index(i) if *i == index) {
                seq.next_element_seed(Probe { path: rest })?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(Found::No);
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Found, E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Found, E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Found, E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Found, E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Found, E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<Found, E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<Found, E> {
        self.scalar()
    }
}

impl Probe<'_, '_> {
    /// A scalar is the node when the path ends here; otherwise the path goes through
    /// something that has no children.
    fn scalar<E: de::Error>(self) -> Result<Found, E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(Found::No)
        }
    }
}

/// A mapping key as text, or `None` for a key that is not a string.
struct KeyText(Option<String>);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(Some(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
listen: 1.2.3.4:80
connections:
  gh: { kind: github, token: x }
hooks:
  - match: any
    targets:
      - connection: gh
        repository: acme/web
      - connection: gh
        relative_path: ../up
";

    fn at(path: &str) -> Option<(usize, usize)> {
        locate(DOC, path).map(|l| (l.line, l.column))
    }

    #[test]
    fn finds_nodes_by_key_path() {
        assert_eq!(at("listen"), Some((1, 9)));
        assert_eq!(at("connections.gh.token"), Some((3, 30)));
        assert_eq!(at("hooks[0].targets[1].relative_path"), Some((10, 24)));
        assert_eq!(at("hooks[0].targets[0]"), Some((7, 9)));
    }

    #[test]
    fn missing_keys_fall_back_to_the_nearest_ancestor() {
        // `repository` is missing from the second target.
        assert_eq!(
            at("hooks[0].targets[1].repository"),
            at("hooks[0].targets[1]")
        );
        assert_eq!(at("connections.gh.api_url"), Some((3, 7)));
        assert_eq!(at("hooks[3].name"), at("hooks"));
        assert_eq!(at("nothing.here"), None);
        assert_eq!(at(""), None);
    }

    #[test]
    fn path_syntax() {
        assert_eq!(
            parse_path("a.b[2][3].c").unwrap(),
            [
                Segment::Key("a"),
                Segment::Key("b"),
                Segment::Index(2),
                Segment::Index(3),
                Segment::Key("c")
            ]
        );
    }
}
