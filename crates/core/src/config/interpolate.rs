//! `${VAR}` interpolation of string values.
//!
//! Interpolation runs on string scalars after the YAML has been parsed, never on the
//! YAML text: a value taken from the environment can therefore never change the
//! structure of the document (a token containing `"\n  admin: true` stays a token).
//! Substituted values are not interpolated again.
//!
//! Syntax: `${NAME}` with `NAME` matching `[A-Za-z_][A-Za-z0-9_]*` is replaced by the
//! variable's value; `$$` is a literal `$` (so `$${X}` is the literal text `${X}`); a
//! `$` followed by anything else is kept as is, so most secrets containing `$` need no
//! escaping.

/// Why a string could not be interpolated. None of the variants carries a value read
/// from the environment, so the message is safe to print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("`${{` without a closing `}}` (write `$${{` for a literal `${{`)")]
    Unterminated,
    #[error(
        "`${{{0}}}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
    )]
    InvalidName(String),
}

/// Replaces every `${NAME}` in `raw` with `env(NAME)`.
pub fn interpolate(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    if !raw.contains('$') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let close = tail.find('}').ok_or(InterpolationError::Unterminated)?;
            let name = &tail[..close];
            if !is_variable_name(name) {
                return Err(InterpolationError::InvalidName(name.to_owned()));
            }
            let value = env(name).ok_or_else(|| InterpolationError::Unset(name.to_owned()))?;
            out.push_str(&value);
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr$t".to_owned()),
            "EMPTY" => Some(String::new()),
            "INJECT" => Some("${TOKEN}\n  admin: true".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn replaces_and_escapes() {
        let cases = [
            ("plain", "plain"),
            ("${TOKEN}", "s3cr$t"),
            ("Bearer ${TOKEN}!", "Bearer s3cr$t!"),
            ("${TOKEN}${TOKEN}", "s3cr$ts3cr$t"),
            ("a${EMPTY}b", "ab"),
            ("$${TOKEN}", "${TOKEN}"),
            ("$$", "$"),
            ("$$$", "$$"),
            ("price $5", "price $5"),
            ("end$", "end$"),
            ("$TOKEN", "$TOKEN"),
            // A substituted value is never interpolated again.
            ("${INJECT}", "${TOKEN}\n  admin: true"),
        ];
        for (raw, want) in cases {
            assert_eq!(interpolate(raw, &env).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn errors_name_the_variable_not_the_value() {
        assert_eq!(
            interpolate("x ${MISSING} y", &env),
            Err(InterpolationError::Unset("MISSING".to_owned()))
        );
        assert_eq!(
            interpolate("${TOKEN", &env),
            Err(InterpolationError::Unterminated)
        );
        assert_eq!(
            interpolate("${1X}", &env),
            Err(InterpolationError::InvalidName("1X".to_owned()))
        );
        assert_eq!(
            interpolate("${}", &env),
            Err(InterpolationError::InvalidName(String::new()))
        );
        assert_eq!(
            interpolate("${A-B}", &env).unwrap_err().to_string(),
            "`${A-B}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
        );
    }
}
