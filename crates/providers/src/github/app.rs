//! GitHub App authentication: a JWT (signed by octocrab with the App's private key, RS256,
//! pure-Rust crypto) buys an installation token; the token is cached per installation
//! until shortly before it expires and serves both the REST calls and the git push.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::Installation;
use super::client::Api;
use super::error::PROVIDER;
use crate::forge::http::encode_segment;
use crate::provider::{ProviderError, RepoSlug};

struct CachedToken {
    token: SecretString,
    expires_at: SystemTime,
}

pub(crate) struct AppTokens {
    /// An octocrab client authenticated as the App: it signs a fresh JWT per request.
    pub api: Api,
    pub installation: Installation,
    pub refresh_margin: Duration,
    /// `""` or `/api/v3` (GitHub Enterprise Server).
    rest_prefix: String,
    /// Installation id → token. One lock for minting, so concurrent deliveries to the same
    /// installation mint once.
    tokens: Mutex<HashMap<u64, CachedToken>>,
    /// Repository → installation id (stable, so cached for the process's life).
    installations: Mutex<HashMap<String, u64>>,
}

#[derive(Deserialize)]
struct InstallationBody {
    id: u64,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
    expires_at: String,
}

impl AppTokens {
    pub fn new(
        api: Api,
        installation: Installation,
        refresh_margin: Duration,
        rest_prefix: String,
    ) -> AppTokens {
        AppTokens {
            api,
            installation,
            refresh_margin,
            rest_prefix,
            tokens: Mutex::new(HashMap::new()),
            installations: Mutex::new(HashMap::new()),
        }
    }

    async fn installation_for(&self, repo: &RepoSlug) -> Result<u64, ProviderError> {
        if let Installation::Id(id) = self.installation {
            return Ok(id);
        }
        if let Some(id) = self.installations.lock().await.get(repo.as_str()) {
            return Ok(*id);
        }
        let (owner, name) = repo.split_last();
        let what = format!("GitHub App installation for {repo}");
        let answer = self
            .api
            .send(
                Method::GET,
                &format!(
                    "{}/repos/{}/{}/installation",
                    self.rest_prefix,
                    encode_segment(owner),
                    encode_segment(name)
                ),
                None,
                None,
                &what,
            )
            .await?;
        let id = answer.json::<InstallationBody>(&what)?.id;
        self.installations
            .lock()
            .await
            .insert(repo.as_str().to_owned(), id);
        Ok(id)
    }

    /// A valid installation token for `repo`'s installation, minted if none is cached or
    /// the cached one expires within the refresh margin.
    pub async fn token_for(&self, repo: &RepoSlug) -> Result<SecretString, ProviderError> {
        let installation = self.installation_for(repo).await?;
        let mut tokens = self.tokens.lock().await;
        if let Some(cached) = tokens.get(&installation)
            && cached.expires_at > SystemTime::now() + self.refresh_margin
        {
            return Ok(cached.token.clone());
        }
        let what = format!("installation token for GitHub App installation {installation}");
        let answer = self
            .api
            .send(
                Method::POST,
                &format!(
                    "{}/app/installations/{installation}/access_tokens",
                    self.rest_prefix
                ),
                None,
                None,
                &what,
            )
            .await?;
        let body: TokenBody = answer.json(&what)?;
        let expires_at =
            parse_timestamp(&body.expires_at).ok_or_else(|| ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what}: unreadable expires_at {:?}", body.expires_at),
            })?;
        let token = SecretString::from(body.token);
        tracing::debug!(installation, "minted a GitHub App installation token");
        tokens.insert(
            installation,
            CachedToken {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// Drops the cached token after GitHub refused it (revoked, App key rotated), so the
    /// next call mints a new one.
    pub async fn forget(&self, repo: &RepoSlug) {
        let installation = match self.installation {
            Installation::Id(id) => Some(id),
            Installation::ByRepository => {
                self.installations.lock().await.get(repo.as_str()).copied()
            }
        };
        if let Some(id) = installation {
            self.tokens.lock().await.remove(&id);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (GitHub's timestamps; fractional seconds tolerated).
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let time = time.split('.').next()?;
    let mut time_parts = time.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hour, minute, second) = (
        time_parts.next()??,
        time_parts.next()??,
        time_parts.next()??,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_unix_seconds() {
        let at = |t: &str| {
            parse_timestamp(t)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("2016-07-11T22:14:10Z"), 1_468_275_250);
        assert_eq!(at("2024-02-29T12:00:00.123Z"), 1_709_208_000);
        assert!(parse_timestamp("2024-13-01T00:00:00Z").is_none());
        assert!(parse_timestamp("2024-01-01 00:00:00").is_none());
    }
}
