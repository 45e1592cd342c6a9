//! Reading jobs and deliveries back, for the API, the CLI and metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Executor, Row};

use super::{
    AttemptView, DeliveryDetail, DeliveryFilter, DeliveryId, DeliveryState, DeliveryView,
    FileCounts, JobDetail, JobId, JobNames, JobView, Page, Routing, Store, StoreError, Timestamp,
};

macro_rules! delivery_columns {
    () => {
        "d.id, d.job_ref, j.workspace_id, j.job_id, d.hook_id, d.target_key, d.repository, \
         d.connection, d.head_branch, d.state, d.attempts, d.next_attempt_at, d.lease_owner, \
         d.lease_expires_at, d.last_error, d.superseded_by, d.pr_url, d.pushed_commit, \
         d.files_added, d.files_modified, d.files_deleted, d.warnings, d.timings, \
         d.created_at, d.started_at, d.finished_at, j.design_system_name, j.version_name, \
         j.exporter_name FROM deliveries d JOIN jobs j ON j.id = d.job_ref"
    };
}

macro_rules! job_columns {
    () => {
        "id, workspace_id, job_id, hook_id, design_system_id, status, ignored, routing, \
         routing_reason, received_at, design_system_name, version_name, exporter_name"
    };
}

/// The free-text condition: the pattern (`$?`) anywhere in what people know a delivery by.
const SEARCHED: &str = "LOWER(d.repository || ' ' || d.head_branch || ' ' || d.target_key \
     || ' ' || d.hook_id || ' ' || j.job_id || ' ' || COALESCE(d.connection, '') || ' ' \
     || COALESCE(d.last_error, '') || ' ' || COALESCE(j.design_system_name, '') || ' ' \
     || COALESCE(j.version_name, '') || ' ' || COALESCE(j.exporter_name, '')) \
     LIKE $? ESCAPE '\\'";

/// Hard cap on a page, whatever the caller asks.
const MAX_PAGE: u32 = 500;

fn ts(row: &AnyRow, column: &str) -> Result<Timestamp, sqlx::Error> {
    row.try_get::<i64, _>(column).map(Timestamp)
}

fn opt_ts(row: &AnyRow, column: &str) -> Result<Option<Timestamp>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A nullable JSON column, parsed.
fn json_column<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> Result<Option<T>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("{column} of a delivery: {e}")))
}

/// `%text%` for `LIKE ... ESCAPE '\'`, lower-cased, with the text's own `%`, `_` and `\`
/// matched literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The job's names, `None` for a job recorded before they were kept.
fn names(row: &AnyRow) -> Result<Option<JobNames>, sqlx::Error> {
    let Some(design_system) = row.try_get::<Option<String>, _>("design_system_name")? else {
        return Ok(None);
    };
    Ok(Some(JobNames {
        design_system,
        version: row
            .try_get::<Option<String>, _>("version_name")?
            .unwrap_or_default(),
        exporter: row
            .try_get::<Option<String>, _>("exporter_name")?
            .unwrap_or_default(),
    }))
}

fn delivery_from_row(row: &AnyRow) -> Result<DeliveryView, StoreError> {
    let files = match (
        row.try_get::<Option<i64>, _>("files_added")?,
        row.try_get::<Option<i64>, _>("files_modified")?,
        row.try_get::<Option<i64>, _>("files_deleted")?,
    ) {
        (Some(a), Some(m), Some(d)) => Some(FileCounts {
            added: count(a),
            modified: count(m),
            deleted: count(d),
        }),
        _ => None,
    };
    let warnings = match row.try_get::<Option<String>, _>("warnings")? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("warnings of a delivery: {e}")))?,
        None => Vec::new(),
    };
    let timings = match row.try_get::<Option<String>, _>("timings")? {
        Some(json) => Some(
            serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("timings of a delivery: {e}")))?,
        ),
        None => None,
    };
    Ok(DeliveryView {
        id: DeliveryId::from_db(row.try_get("id")?),
        job: JobId::from_db(row.try_get("job_ref")?),
        workspace_id: row.try_get("workspace_id")?,
        job_id: row.try_get("job_id")?,
        hook_id: row.try_get("hook_id")?,
        target_key: row.try_get("target_key")?,
        repository: row.try_get("repository")?,
        connection: row.try_get("connection")?,
        head_branch: row.try_get("head_branch")?,
        state: row.try_get::<String, _>("state")?.parse()?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: opt_ts(row, "next_attempt_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_ts(row, "lease_expires_at")?,
        last_error: row.try_get("last_error")?,
        superseded_by: row
            .try_get::<Option<String>, _>("superseded_by")?
            .map(DeliveryId::from_db),
        names: names(row)?,
        pr_url: row.try_get("pr_url")?,
        commit: row.try_get("pushed_commit")?,
        files,
        warnings,
        timings,
        created_at: ts(row, "created_at")?,
        started_at: opt_ts(row, "started_at")?,
        finished_at: opt_ts(row, "finished_at")?,
    })
}

fn job_from_row(row: &AnyRow) -> Result<JobView, StoreError> {
    Ok(JobView {
        id: JobId::from_db(row.try_get("id")?),
        workspace_id: row.try_get("workspace_id")?,
        job_id: row.try_get("job_id")?,
        hook_id: row.try_get("hook_id")?,
        design_system_id: row.try_get("design_system_id")?,
        status: row.try_get("status")?,
        ignored: row.try_get::<i64, _>("ignored")? != 0,
        routing: Routing::from_db(
            &row.try_get::<String, _>("routing")?,
            row.try_get("routing_reason")?,
        ),
        names: names(row)?,
        received_at: ts(row, "received_at")?,
    })
}

pub(super) async fn fetch_delivery<'e, E>(
    ex: E,
    id: &DeliveryId,
) -> Result<Option<DeliveryView>, StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let row = sqlx::query(concat!("SELECT ", delivery_columns!(), " WHERE d.id = $1"))
        .bind(id.as_str())
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(delivery_from_row).transpose()
}

/// A job, without its body (which can be large, and only a worker and a job's pages read).
async fn fetch_job<'e, E>(ex: E, id: &JobId) -> Result<Option<JobView>, StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(job_from_row).transpose()
}

/// A job and its body, for the worker that claimed one of its deliveries.
pub(super) async fn fetch_job_and_body<'e, E>(
    ex: E,
    id: &JobId,
) -> Result<Option<(JobView, Option<Vec<u8>>)>, StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        ", body FROM jobs WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(ex)
    .await?;
    match row {
        Some(row) => Ok(Some((job_from_row(&row)?, row.try_get("body")?))),
        None => Ok(None),
    }
}

impl Store {
    /// One delivery with its job and attempts (oldest attempt first).
    pub async fn get_delivery(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryDetail>, StoreError> {
        // Only the detail carries the token and directory changes and the forge calls (a
        // list of deliveries stays small), read with the rest of the row.
        let row = sqlx::query(concat!(
            "SELECT d.tokens, d.directories, d.forge_calls, ",
            delivery_columns!(),
            " WHERE d.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let delivery = delivery_from_row(&row)?;
        let tokens = json_column(&row, "tokens")?;
        let directories = json_column(&row, "directories")?.unwrap_or_default();
        let forge_calls = json_column(&row, "forge_calls")?.unwrap_or_default();
        let job = fetch_job(self.pool(), &delivery.job)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {id} refers to a missing job")))?;
        let rows = sqlx::query(
            "SELECT number, owner, started_at, finished_at, outcome, error FROM attempts \
             WHERE delivery_id = $1 ORDER BY number",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await?;
        let attempts = rows
            .iter()
            .map(|row| {
                Ok(AttemptView {
                    number: u32::try_from(row.try_get::<i64, _>("number")?).unwrap_or(u32::MAX),
                    owner: row.try_get("owner")?,
                    started_at: ts(row, "started_at")?,
                    finished_at: opt_ts(row, "finished_at")?,
                    outcome: row.try_get("outcome")?,
                    error: row.try_get("error")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(DeliveryDetail {
            delivery,
            job,
            attempts,
            tokens,
            directories,
            forge_calls,
        }))
    }

    /// A job (by Courier's id) with its deliveries in arrival order.
    pub async fn get_job(&self, id: &JobId) -> Result<Option<JobDetail>, StoreError> {
        let Some(job) = fetch_job(self.pool(), id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " WHERE d.job_ref = $1 ORDER BY d.id"
        ))
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await?;
        let deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Some(JobDetail { job, deliveries }))
    }

    /// A job by the platform's `(workspace_id, job_id)`.
    pub async fn find_job(
        &self,
        workspace_id: &str,
        job_id: &str,
    ) -> Result<Option<JobDetail>, StoreError> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE workspace_id = $1 AND job_id = $2")
                .bind(workspace_id)
                .bind(job_id)
                .fetch_optional(self.pool())
                .await?;
        match id {
            Some(id) => self.get_job(&JobId::from_db(id)).await,
            None => Ok(None),
        }
    }

    /// The webhook body recorded for a job.
    pub async fn job_body(&self, id: &JobId) -> Result<Option<Vec<u8>>, StoreError> {
        let body: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT body FROM jobs WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(body.flatten())
    }

    /// Deliveries matching `filter`, newest first, one page (`limit` capped at 500).
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: &Page,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        // Keyset paging on the time-ordered id, so a page costs the same deep in a long
        // history. Only the filters given are in the statement (not `$1 IS NULL OR ...`),
        // so each can use its index on (column, id) and the planners see the limit. The
        // free text is a scan (stopping at a full page), fine for a search box.
        let text = filter.text.as_deref().map(like_pattern);
        let conditions = [
            ("d.state = $?", filter.state.map(|s| s.as_str())),
            ("d.hook_id = $?", filter.hook_id.as_deref()),
            ("d.repository = $?", filter.repository.as_deref()),
            ("d.connection = $?", filter.connection.as_deref()),
            ("j.job_id = $?", filter.job_id.as_deref()),
            (SEARCHED, text.as_deref()),
            ("d.id < $?", page.after.as_ref().map(|a| a.as_str())),
        ];
        let mut sql = concat!("SELECT ", delivery_columns!()).to_owned();
        let mut values = Vec::new();
        for (condition, value) in conditions {
            let Some(value) = value else { continue };
            sql.push_str(if values.is_empty() {
                " WHERE "
            } else {
                " AND "
            });
            values.push(value);
            // `$?` is where the condition's value goes: numbered here, bound below.
            sql.push_str(&condition.replace("$?", &format!("${}", values.len())));
        }
        sql.push_str(&format!(
            " ORDER BY d.id DESC LIMIT {}",
            page.limit.clamp(1, MAX_PAGE)
        ));
        // Only placeholders and fixed text are spliced in; every value is bound.
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Deliveries waiting to run: `queued` plus `retrying`. (The queries spell out the
    /// partial index's `state IN (...)` so they read that index, not the whole history.)
    pub async fn queue_depth(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'retrying', 'running') \
             AND state <> 'running'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(count(n))
    }

    /// How long the oldest waiting (`queued` or `retrying`) delivery has existed.
    pub async fn oldest_queued_age(&self) -> Result<Option<Duration>, StoreError> {
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(created_at) FROM deliveries \
             WHERE state IN ('queued', 'retrying', 'running') AND state <> 'running'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(oldest.map(|t| Timestamp(t).age_at(Timestamp::now())))
    }

    /// The number of deliveries created since `since` in each state they are in now (only
    /// states with some), for the dashboard's last-day summary.
    pub async fn counts_since(
        &self,
        since: Timestamp,
    ) -> Result<BTreeMap<DeliveryState, u64>, StoreError> {
        // By id, which starts with the creation time: the primary key's index finds the
        // range. (The ordered subquery keeps SQLite, which has no statistics here, from
        // counting the whole history through the state index instead.)
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM \
             (SELECT state FROM deliveries WHERE id >= $1 ORDER BY id) AS recent GROUP BY state",
        )
        .bind(DeliveryId::first_at(since).as_str().to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let state: DeliveryState = row.try_get::<String, _>("state")?.parse()?;
                Ok((state, count(row.try_get("n")?)))
            })
            .collect()
    }

    /// The newest delivery to each of these targets (by target id) that has one.
    pub async fn last_deliveries(
        &self,
        target_keys: &[&str],
    ) -> Result<BTreeMap<String, DeliveryView>, StoreError> {
        let mut last = BTreeMap::new();
        // One indexed lookup per target: a target count is small, a history is not (one
        // grouped query would read every delivery).
        for &key in target_keys {
            let row = sqlx::query(concat!(
                "SELECT ",
                delivery_columns!(),
                " WHERE d.target_key = $1 ORDER BY d.id DESC LIMIT 1"
            ))
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                last.insert(key.to_owned(), delivery_from_row(&row)?);
            }
        }
        Ok(last)
    }

    /// The number of deliveries in every state (zero included), for `/metrics`.
    pub async fn counts_by_state(&self) -> Result<BTreeMap<DeliveryState, u64>, StoreError> {
        let mut counts: BTreeMap<DeliveryState, u64> =
            DeliveryState::ALL.into_iter().map(|s| (s, 0)).collect();
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        for row in rows {
            let state: DeliveryState = row.try_get::<String, _>("state")?.parse()?;
            counts.insert(state, count(row.try_get("n")?));
        }
        Ok(counts)
    }
}
