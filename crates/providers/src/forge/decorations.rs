//! Decorations (labels, reviewers, assignees) never fail a delivery: what the forge
//! refuses about the request itself becomes a [`Warning`]; a failing forge (timeouts, rate
//! limits, a refused token) stays an error so the retry policy sees it.

use crate::provider::{ProviderError, Warning};

/// Whether `error` refuses what was asked (an unknown label, a reviewer who is not a
/// collaborator, a missing permission, a conflict) rather than reporting a failing forge
/// or a refused token: the first is a warning on a decoration, the second is not.
pub(crate) fn is_refusal(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Invalid { .. }
            | ProviderError::NotFound { .. }
            | ProviderError::Forbidden { .. }
            | ProviderError::Conflict { .. }
    )
}

/// A decoration call's result with a refusal ([`is_refusal`]) turned into a warning (the
/// error's text, logged with `what`) and `Ok(None)`; other errors pass through.
pub(crate) fn refused_as_warning<T>(
    result: Result<T, ProviderError>,
    what: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<T>, ProviderError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if is_refusal(&e) => {
            tracing::warn!(%e, "{what} refused");
            warnings.push(Warning(e.to_string()));
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn refusals_become_warnings_and_failures_stay_errors() {
        let mut warnings = Vec::new();
        let refused: Result<(), _> = Err(ProviderError::NotFound {
            provider: "github",
            what: "reviewer bob".into(),
        });
        assert_eq!(
            refused_as_warning(refused, "request reviewers", &mut warnings),
            Ok(None)
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].0.contains("reviewer bob"), "{warnings:?}");

        let limited: Result<(), _> = Err(ProviderError::RateLimited {
            provider: "github",
            retry_after: Duration::from_secs(1),
        });
        assert!(refused_as_warning(limited, "add labels", &mut warnings).is_err());
        let auth: Result<(), _> = Err(ProviderError::Auth {
            provider: "gitlab",
            message: "expired".into(),
        });
        assert!(refused_as_warning(auth, "add labels", &mut warnings).is_err());
        assert_eq!(
            refused_as_warning(Ok(7), "assign", &mut warnings),
            Ok(Some(7))
        );
        assert_eq!(warnings.len(), 1);
    }
}
