//! Configuration errors: every problem found, each with where it is.

use std::fmt;
use std::path::PathBuf;

/// A 1-based position in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `hooks[0].targets[1].relative_path`; empty for the document
    /// itself (e.g. a YAML syntax error).
    pub path: String,
    /// Where in the file, when the parser knows (syntax, type and unknown-key errors).
    pub location: Option<Location>,
    /// What is wrong. Never contains a secret or an environment variable's value.
    pub message: String,
}

impl Problem {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            location: None,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is {size} bytes; refusing to read more than 4 MiB")]
    TooLarge { path: PathBuf, size: u64 },
    /// The file was read but is not a valid configuration. `Display` prints a header
    /// line and then one problem per line as `SOURCE[:LINE:COLUMN]: PATH: MESSAGE`.
    #[error("{}", DisplayProblems(source_name, problems))]
    Invalid {
        source_name: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems, if the configuration was read but is invalid.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

struct DisplayProblems<'a>(&'a str, &'a [Problem]);

impl fmt::Display for DisplayProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DisplayProblems(source, problems) = *self;
        let count = problems.len();
        write!(
            f,
            "invalid configuration {source}: {count} problem{}",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in problems {
            write!(f, "\n{source}")?;
            if let Some(loc) = problem.location {
                write!(f, ":{}:{}", loc.line, loc.column)?;
            }
            if !problem.path.is_empty() {
                write!(f, ": {}", problem.path)?;
            }
            write!(f, ": {}", problem.message)?;
        }
        Ok(())
    }
}
