//! Endpoints on SQLite. Their secrets (and the credentials of their URLs) are sealed into one
//! encrypted column.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::EndpointChange;
use herald_core::consent::{ConsentDecision, ConsentMode, ConsentState};
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::model::{Endpoint, OnExhausted, Transformation};
use herald_core::name::{ChannelName, EventTypeName, Uid};
use herald_core::sealed::{open_endpoint_secrets, seal_endpoint_secrets, url_at_rest};
use herald_core::store::{EndpointKey, Key, Page, PageRequest};
use herald_core::token::TokenHash;
use herald_core::version::PayloadVersion;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{
    PagePlan, corrupt, from_micros, metadata_from_json, metadata_to_json, names_to_json, parse_names,
    to_micros,
};
use crate::{SqliteStore, backend, store_error};

const COLUMNS: &str = "id, app_id, uid, url, description, disabled, event_types, channels, \
                       throttle_rate, metadata, sealed_secrets, created_at, updated_at, ordered, \
                       ordered_on_exhausted, consent, consent_origin, consent_status, consent_rate, \
                       consent_reason, consent_at, consent_expires_at, payload_version, \
                       transformation_code, transformation_enabled, transformation_updated_at";

pub(crate) async fn insert(store: &SqliteStore, endpoint: &Endpoint) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO endpoints (id, app_id, uid, url, description, disabled, event_types, channels,
                               throttle_rate, metadata, sealed_secrets, created_at, updated_at,
                               ordered, ordered_on_exhausted, consent, payload_version,
                               transformation_code, transformation_enabled, transformation_updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(endpoint.id.as_str())
    .bind(endpoint.app_id.as_str())
    .bind(endpoint.uid.as_ref().map(Uid::as_str))
    .bind(url_at_rest(endpoint))
    .bind(&endpoint.description)
    .bind(endpoint.disabled)
    .bind(names_to_json(&endpoint.event_types))
    .bind(names_to_json(&endpoint.channels))
    .bind(endpoint.throttle_rate.map(i64::from))
    .bind(metadata_to_json(&endpoint.metadata))
    .bind(seal_endpoint_secrets(&store.cipher, endpoint))
    .bind(to_micros(endpoint.created_at))
    .bind(to_micros(endpoint.updated_at))
    .bind(endpoint.ordered)
    .bind(endpoint.ordered_on_exhausted.code())
    .bind(endpoint.consent.map(ConsentMode::code))
    .bind(endpoint.payload_version.map(PayloadVersion::number))
    .bind(endpoint.transformation.code.as_deref())
    .bind(endpoint.transformation.enabled)
    .bind(endpoint.transformation.updated_at.map(to_micros))
    .execute(&store.writer)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    Ok(())
}

pub(crate) async fn find(
    store: &SqliteStore,
    app: &ApplicationId,
    key: &EndpointKey,
) -> Result<Option<Endpoint>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM endpoints WHERE app_id = ? AND {column} = ?");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(value)
        .fetch_optional(&store.reader)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

pub(crate) async fn list(
    store: &SqliteStore,
    app: &ApplicationId,
    page: &PageRequest,
) -> Result<Page<Endpoint>, StoreError> {
    let plan = PagePlan::new(page);
    let filter = match &plan.cursor {
        Some((cmp, _)) => format!("AND id {cmp} ?"),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM endpoints WHERE app_id = ? {filter} ORDER BY id {} LIMIT ?",
        plan.direction
    );
    let mut query = sqlx::query(&sql).bind(app.as_str());
    if let Some((_, key)) = &plan.cursor {
        query = query.bind(key);
    }
    let rows = query.bind(plan.fetch).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(|row| from_row(store, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the endpoint as it is now. `BEGIN IMMEDIATE` takes the write lock
/// before the row is read, so no other writer (the writer thread disabling it after a `410`,
/// another request) can change it between this read and this write.
pub(crate) async fn update(
    store: &SqliteStore,
    app: &ApplicationId,
    id: &EndpointId,
    change: &EndpointChange,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM endpoints WHERE app_id = ? AND id = ?");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut endpoint = from_row(store, &row)?;
    change.apply(&mut endpoint, now);
    sqlx::query(
        "UPDATE endpoints SET uid = ?, url = ?, description = ?, disabled = ?, event_types = ?,
                channels = ?, throttle_rate = ?, metadata = ?, sealed_secrets = ?, updated_at = ?,
                ordered = ?, ordered_on_exhausted = ?, consent = ?, payload_version = ?,
                transformation_code = ?, transformation_enabled = ?, transformation_updated_at = ?
         WHERE id = ? AND app_id = ?",
    )
    .bind(endpoint.uid.as_ref().map(Uid::as_str))
    .bind(url_at_rest(&endpoint))
    .bind(&endpoint.description)
    .bind(endpoint.disabled)
    .bind(names_to_json(&endpoint.event_types))
    .bind(names_to_json(&endpoint.channels))
    .bind(endpoint.throttle_rate.map(i64::from))
    .bind(metadata_to_json(&endpoint.metadata))
    .bind(seal_endpoint_secrets(&store.cipher, &endpoint))
    .bind(to_micros(endpoint.updated_at))
    .bind(endpoint.ordered)
    .bind(endpoint.ordered_on_exhausted.code())
    .bind(endpoint.consent.map(ConsentMode::code))
    .bind(endpoint.payload_version.map(PayloadVersion::number))
    .bind(endpoint.transformation.code.as_deref())
    .bind(endpoint.transformation.enabled)
    .bind(endpoint.transformation.updated_at.map(to_micros))
    .bind(endpoint.id.as_str())
    .bind(endpoint.app_id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(endpoint))
}

/// Seals URL credentials stored in clear (see `ResourceStore::seal_clear_url_credentials`):
/// the candidates' URLs are read, those with credentials rewritten one by one, each in its own
/// `BEGIN IMMEDIATE` transaction and only while the row still holds the URL as read. With
/// `secure_delete` on, the old cells are zeroed rather than left in the pages' free space, and a
/// `TRUNCATE` checkpoint then writes the pages to the database file and empties the WAL, so
/// the credentials are in no file afterwards.
pub(crate) async fn seal_clear_url_credentials(store: &SqliteStore) -> Result<u64, StoreError> {
    use sqlx::Connection as _;
    let candidates: Vec<(String, String)> =
        sqlx::query_as("SELECT id, url FROM endpoints WHERE url LIKE '%@%' ORDER BY id")
            .fetch_all(&store.reader)
            .await
            .map_err(backend)?;
    let candidates: Vec<_> =
        candidates.into_iter().filter(|(_, url)| herald_core::endpoint_url::has_credentials(url)).collect();
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut conn = store.writer.acquire().await.map_err(backend)?;
    sqlx::query("PRAGMA secure_delete = ON").execute(&mut *conn).await.map_err(backend)?;
    let mut sealed = 0;
    let mut outcome = Ok(());
    for (id, url) in candidates {
        let step = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
            let sql = format!("SELECT {COLUMNS} FROM endpoints WHERE id = ? AND url = ?");
            let row =
                sqlx::query(&sql).bind(&id).bind(&url).fetch_optional(&mut *tx).await.map_err(backend)?;
            let Some(row) = row else { return Ok(false) };
            let endpoint = from_row(store, &row)?;
            sqlx::query("UPDATE endpoints SET url = ?, sealed_secrets = ? WHERE id = ? AND url = ?")
                .bind(url_at_rest(&endpoint))
                .bind(seal_endpoint_secrets(&store.cipher, &endpoint))
                .bind(&id)
                .bind(&url)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok::<_, StoreError>(true)
        };
        match step.await {
            Ok(done) => sealed += u64::from(done),
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    let off = sqlx::query("PRAGMA secure_delete = OFF").execute(&mut *conn).await.map_err(backend);
    outcome?;
    off?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await.map_err(backend)?;
    Ok(sealed)
}

pub(crate) async fn delete(
    store: &SqliteStore,
    app: &ApplicationId,
    id: &EndpointId,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM endpoints WHERE id = ? AND app_id = ?")
        .bind(id.as_str())
        .bind(app.as_str())
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

fn from_row(store: &SqliteStore, row: &SqliteRow) -> Result<Endpoint, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let opt_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(|e| corrupt(name, e));
    let throttle: Option<i64> = row.try_get("throttle_rate").map_err(|e| corrupt("throttle_rate", e))?;
    let sealed: Vec<u8> = row.try_get("sealed_secrets").map_err(|e| corrupt("sealed_secrets", e))?;
    let secrets = open_endpoint_secrets(&store.cipher, &sealed)?;
    Ok(Endpoint {
        id: get_text("id")?.parse().map_err(|e| corrupt("id", e))?,
        app_id: get_text("app_id")?.parse().map_err(|e| corrupt("app_id", e))?,
        uid: opt_text("uid")?.map(|u| Uid::parse(&u)).transpose().map_err(|e| corrupt("uid", e))?,
        url: secrets.full_url(get_text("url")?.parse().map_err(|e| corrupt("url", e))?),
        description: get_text("description")?,
        disabled: row.try_get("disabled").map_err(|e| corrupt("disabled", e))?,
        event_types: parse_names(opt_text("event_types")?, EventTypeName::parse)?,
        channels: parse_names(opt_text("channels")?, ChannelName::parse)?,
        throttle_rate: throttle.map(u16::try_from).transpose().map_err(|e| corrupt("throttle_rate", e))?,
        metadata: metadata_from_json(&get_text("metadata")?)?,
        keys: secrets.keys,
        headers: secrets.headers,
        bearer_token: secrets.bearer_token,
        ordered: row.try_get("ordered").map_err(|e| corrupt("ordered", e))?,
        ordered_on_exhausted: {
            let code: i64 =
                row.try_get("ordered_on_exhausted").map_err(|e| corrupt("ordered_on_exhausted", e))?;
            OnExhausted::from_code(code).ok_or_else(|| corrupt("ordered_on_exhausted", code))?
        },
        consent: {
            let code: Option<i64> = row.try_get("consent").map_err(|e| corrupt("consent", e))?;
            code.map(|c| ConsentMode::from_code(c).ok_or_else(|| corrupt("consent", c))).transpose()?
        },
        consent_state: consent_from_row(row)?,
        payload_version: {
            let number: Option<i64> =
                row.try_get("payload_version").map_err(|e| corrupt("payload_version", e))?;
            number
                .map(|n| PayloadVersion::from_stored(n).ok_or_else(|| corrupt("payload_version", n)))
                .transpose()?
        },
        transformation: Transformation {
            code: opt_text("transformation_code")?,
            enabled: row
                .try_get("transformation_enabled")
                .map_err(|e| corrupt("transformation_enabled", e))?,
            updated_at: row
                .try_get::<Option<i64>, _>("transformation_updated_at")
                .map_err(|e| corrupt("transformation_updated_at", e))?
                .map(from_micros)
                .transpose()?,
        },
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(|e| corrupt("updated_at", e))?)?,
    })
}

/// The consent columns as a state; `None` when the endpoint was never asked.
fn consent_from_row(row: &SqliteRow) -> Result<Option<ConsentState>, StoreError> {
    let status: Option<i64> = row.try_get("consent_status").map_err(|e| corrupt("consent_status", e))?;
    let Some(status) = status else { return Ok(None) };
    let origin: String = row.try_get("consent_origin").map_err(|e| corrupt("consent_origin", e))?;
    let decided_at = from_micros(row.try_get("consent_at").map_err(|e| corrupt("consent_at", e))?)?;
    let decision = match status {
        1 => {
            let expires: i64 =
                row.try_get("consent_expires_at").map_err(|e| corrupt("consent_expires_at", e))?;
            ConsentDecision::Pending { expires_at: from_micros(expires)? }
        }
        2 => {
            let rate: Option<i64> = row.try_get("consent_rate").map_err(|e| corrupt("consent_rate", e))?;
            let per_minute = rate.map(u32::try_from).transpose().map_err(|e| corrupt("consent_rate", e))?;
            ConsentDecision::Granted { per_minute }
        }
        3 => ConsentDecision::Refused {
            reason: row.try_get("consent_reason").map_err(|e| corrupt("consent_reason", e))?,
        },
        other => return Err(corrupt("consent_status", other)),
    };
    Ok(Some(ConsentState { origin, decision, decided_at }))
}

/// The stored form of a decision: status code, rate, reason, expiry.
fn consent_columns(decision: &ConsentDecision) -> (i64, Option<i64>, Option<&str>, Option<i64>) {
    match decision {
        ConsentDecision::Pending { expires_at } => (1, None, None, Some(to_micros(*expires_at))),
        ConsentDecision::Granted { per_minute } => (2, per_minute.map(i64::from), None, None),
        ConsentDecision::Refused { reason } => (3, None, Some(reason), None),
    }
}

/// Writes only the consent columns, in one statement.
pub(crate) async fn set_consent(
    store: &SqliteStore,
    app: &ApplicationId,
    id: &EndpointId,
    state: &ConsentState,
    callback: Option<&TokenHash>,
) -> Result<bool, StoreError> {
    let (status, rate, reason, expires) = consent_columns(&state.decision);
    let result = sqlx::query(
        "UPDATE endpoints SET consent_origin = ?, consent_status = ?, consent_rate = ?,
                consent_reason = ?, consent_at = ?, consent_expires_at = ?, consent_callback = ?
         WHERE id = ? AND app_id = ?",
    )
    .bind(&state.origin)
    .bind(status)
    .bind(rate)
    .bind(reason)
    .bind(to_micros(state.decided_at))
    .bind(expires)
    .bind(callback.map(TokenHash::to_hex))
    .bind(id.as_str())
    .bind(app.as_str())
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Grants a pending consent by its callback token, in one statement; the token is spent.
pub(crate) async fn grant_consent(
    store: &SqliteStore,
    callback: &TokenHash,
    per_minute: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Option<(ApplicationId, EndpointId)>, StoreError> {
    let row = sqlx::query(
        "UPDATE endpoints SET consent_status = 2, consent_rate = ?, consent_reason = NULL,
                consent_at = ?, consent_expires_at = NULL, consent_callback = NULL
         WHERE consent_callback = ? AND consent_status = 1 AND consent_expires_at > ?
         RETURNING app_id, id",
    )
    .bind(per_minute.map(i64::from))
    .bind(to_micros(now))
    .bind(callback.to_hex())
    .bind(to_micros(now))
    .fetch_optional(&store.writer)
    .await
    .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let app: String = row.try_get("app_id").map_err(|e| corrupt("app_id", e))?;
    let id: String = row.try_get("id").map_err(|e| corrupt("id", e))?;
    Ok(Some((app.parse().map_err(|e| corrupt("app_id", e))?, id.parse().map_err(|e| corrupt("id", e))?)))
}
