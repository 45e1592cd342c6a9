//! Token changes as Markdown for a pull request description.
