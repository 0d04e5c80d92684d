//! Endpoints on PostgreSQL. Their secrets are sealed into one encrypted BYTEA column, in the
//! format every backend shares (`herald_core::sealed`).

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
use sqlx::QueryBuilder;
use sqlx::postgres::PgRow;

use crate::rows::{
    PagePlan, corrupt, get, metadata_from_json, metadata_to_json, names_to_array, parse, parse_names,
    parse_optional_name, parse_throttle,
};
use crate::{PostgresStore, backend, store_error};

/// The columns [`from_row`] reads, for alias `e`.
pub(crate) const COLUMNS: &str = "e.id, e.app_id, e.uid, e.url, e.description, e.disabled, e.event_types, \
                                  e.channels, e.throttle_rate, e.metadata::text AS metadata, \
                                  e.sealed_secrets, e.created_at, e.updated_at, e.ordered, \
                                  e.ordered_on_exhausted, e.consent, e.consent_origin, \
                                  e.consent_status, e.consent_rate, e.consent_reason, e.consent_at, \
                                  e.consent_expires_at, e.payload_version, e.transformation_code, \
                                  e.transformation_enabled, e.transformation_updated_at";

pub(crate) async fn insert(store: &PostgresStore, endpoint: &Endpoint) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO endpoints (id, app_id, uid, url, description, disabled, event_types, channels,
                               throttle_rate, metadata, sealed_secrets, created_at, updated_at,
                               ordered, ordered_on_exhausted, consent, payload_version,
                               transformation_code, transformation_enabled, transformation_updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16,
                 $17, $18, $19, $20)",
    )
    .bind(endpoint.id.as_str())
    .bind(endpoint.app_id.as_str())
    .bind(endpoint.uid.as_ref().map(Uid::as_str))
    .bind(url_at_rest(endpoint))
    .bind(&endpoint.description)
    .bind(endpoint.disabled)
    .bind(names_to_array(&endpoint.event_types))
    .bind(names_to_array(&endpoint.channels))
    .bind(endpoint.throttle_rate.map(i32::from))
    .bind(metadata_to_json(&endpoint.metadata))
    .bind(seal_endpoint_secrets(&store.cipher, endpoint))
    .bind(endpoint.created_at)
    .bind(endpoint.updated_at)
    .bind(endpoint.ordered)
    .bind(endpoint.ordered_on_exhausted.code())
    .bind(endpoint.consent.map(ConsentMode::code))
    .bind(endpoint.payload_version.map(|v| v.number() as i32))
    .bind(endpoint.transformation.code.as_deref())
    .bind(endpoint.transformation.enabled)
    .bind(endpoint.transformation.updated_at)
    .execute(&store.pool)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    Ok(())
}

pub(crate) async fn find(
    store: &PostgresStore,
    app: &ApplicationId,
    key: &EndpointKey,
) -> Result<Option<Endpoint>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM endpoints e WHERE e.app_id = $1 AND e.{column} = $2");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(value)
        .fetch_optional(&store.pool)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

pub(crate) async fn list(
    store: &PostgresStore,
    app: &ApplicationId,
    page: &PageRequest,
) -> Result<Page<Endpoint>, StoreError> {
    let plan = PagePlan::new(page);
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM endpoints e WHERE e.app_id = "));
    query.push_bind(app.as_str().to_owned());
    plan.push_cursor(&mut query, "e.id");
    plan.push_order_and_limit(&mut query, "e.id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(|row| from_row(store, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the endpoint as it is now: the row is read `FOR UPDATE`, so a
/// concurrent change (another request, an attempt record disabling it after a `410`) waits for
/// this one or this one for it, and neither writes back the other's fields.
pub(crate) async fn update(
    store: &PostgresStore,
    app: &ApplicationId,
    id: &EndpointId,
    change: &EndpointChange,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM endpoints e WHERE e.app_id = $1 AND e.id = $2 FOR UPDATE");
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
        "UPDATE endpoints SET uid = $1, url = $2, description = $3, disabled = $4, event_types = $5,
                channels = $6, throttle_rate = $7, metadata = $8::jsonb, sealed_secrets = $9,
                updated_at = $10, ordered = $13, ordered_on_exhausted = $14, consent = $15,
                payload_version = $16, transformation_code = $17, transformation_enabled = $18,
                transformation_updated_at = $19
         WHERE id = $11 AND app_id = $12",
    )
    .bind(endpoint.uid.as_ref().map(Uid::as_str))
    .bind(url_at_rest(&endpoint))
    .bind(&endpoint.description)
    .bind(endpoint.disabled)
    .bind(names_to_array(&endpoint.event_types))
    .bind(names_to_array(&endpoint.channels))
    .bind(endpoint.throttle_rate.map(i32::from))
    .bind(metadata_to_json(&endpoint.metadata))
    .bind(seal_endpoint_secrets(&store.cipher, &endpoint))
    .bind(endpoint.updated_at)
    .bind(endpoint.id.as_str())
    .bind(endpoint.app_id.as_str())
    .bind(endpoint.ordered)
    .bind(endpoint.ordered_on_exhausted.code())
    .bind(endpoint.consent.map(ConsentMode::code))
    .bind(endpoint.payload_version.map(|v| v.number() as i32))
    .bind(endpoint.transformation.code.as_deref())
    .bind(endpoint.transformation.enabled)
    .bind(endpoint.transformation.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(endpoint))
}

/// Seals URL credentials stored in clear (see `ResourceStore::seal_clear_url_credentials`):
/// the candidates' URLs are read, those with credentials rewritten one by one, each row read
/// `FOR UPDATE` and rewritten only while it still holds the URL as read. (The old row versions
/// stay in the table's pages until vacuum reuses them, as for every PostgreSQL update.)
pub(crate) async fn seal_clear_url_credentials(store: &PostgresStore) -> Result<u64, StoreError> {
    let candidates: Vec<(String, String)> =
        sqlx::query_as("SELECT id, url FROM endpoints WHERE url LIKE '%@%' ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .map_err(backend)?;
    let mut sealed = 0;
    for (id, url) in candidates {
        if !herald_core::endpoint_url::has_credentials(&url) {
            continue;
        }
        let mut tx = store.pool.begin().await.map_err(backend)?;
        let sql = format!("SELECT {COLUMNS} FROM endpoints e WHERE e.id = $1 AND e.url = $2 FOR UPDATE");
        let row = sqlx::query(&sql).bind(&id).bind(&url).fetch_optional(&mut *tx).await.map_err(backend)?;
        let Some(row) = row else { continue };
        let endpoint = from_row(store, &row)?;
        sqlx::query("UPDATE endpoints SET url = $1, sealed_secrets = $2 WHERE id = $3 AND url = $4")
            .bind(url_at_rest(&endpoint))
            .bind(seal_endpoint_secrets(&store.cipher, &endpoint))
            .bind(&id)
            .bind(&url)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        sealed += 1;
    }
    Ok(sealed)
}

pub(crate) async fn delete(
    store: &PostgresStore,
    app: &ApplicationId,
    id: &EndpointId,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM endpoints WHERE id = $1 AND app_id = $2")
        .bind(id.as_str())
        .bind(app.as_str())
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Reads an endpoint from columns named as in [`COLUMNS`] (without the alias).
pub(crate) fn from_row(store: &PostgresStore, row: &PgRow) -> Result<Endpoint, StoreError> {
    let sealed: Vec<u8> = get(row, "sealed_secrets")?;
    let secrets = open_endpoint_secrets(&store.cipher, &sealed)?;
    Ok(Endpoint {
        id: parse(row, "id")?,
        app_id: parse(row, "app_id")?,
        uid: parse_optional_name(row, "uid", Uid::parse)?,
        url: secrets.full_url(parse(row, "url")?),
        description: get(row, "description")?,
        disabled: get(row, "disabled")?,
        event_types: parse_names(row, "event_types", EventTypeName::parse)?,
        channels: parse_names(row, "channels", ChannelName::parse)?,
        throttle_rate: parse_throttle(row)?,
        metadata: metadata_from_json(row, "metadata")?,
        keys: secrets.keys,
        headers: secrets.headers,
        bearer_token: secrets.bearer_token,
        ordered: get(row, "ordered")?,
        ordered_on_exhausted: {
            let code: i16 = get(row, "ordered_on_exhausted")?;
            OnExhausted::from_code(i64::from(code)).ok_or_else(|| corrupt("ordered_on_exhausted", code))?
        },
        consent: {
            let code: Option<i16> = get(row, "consent")?;
            code.map(|c| ConsentMode::from_code(i64::from(c)).ok_or_else(|| corrupt("consent", c)))
                .transpose()?
        },
        consent_state: consent_from_row(row)?,
        payload_version: {
            let number: Option<i32> = get(row, "payload_version")?;
            number
                .map(|n| {
                    PayloadVersion::from_stored(i64::from(n)).ok_or_else(|| corrupt("payload_version", n))
                })
                .transpose()?
        },
        transformation: Transformation {
            code: get(row, "transformation_code")?,
            enabled: get(row, "transformation_enabled")?,
            updated_at: get(row, "transformation_updated_at")?,
        },
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// The consent columns as a state; `None` when the endpoint was never asked.
fn consent_from_row(row: &PgRow) -> Result<Option<ConsentState>, StoreError> {
    let status: Option<i16> = get(row, "consent_status")?;
    let Some(status) = status else { return Ok(None) };
    let decision = match status {
        1 => ConsentDecision::Pending { expires_at: get(row, "consent_expires_at")? },
        2 => {
            let rate: Option<i64> = get(row, "consent_rate")?;
            let per_minute = rate.map(u32::try_from).transpose().map_err(|e| corrupt("consent_rate", e))?;
            ConsentDecision::Granted { per_minute }
        }
        3 => ConsentDecision::Refused { reason: get(row, "consent_reason")? },
        other => return Err(corrupt("consent_status", other)),
    };
    Ok(Some(ConsentState {
        origin: get(row, "consent_origin")?,
        decision,
        decided_at: get(row, "consent_at")?,
    }))
}

/// Writes only the consent columns, in one statement.
pub(crate) async fn set_consent(
    store: &PostgresStore,
    app: &ApplicationId,
    id: &EndpointId,
    state: &ConsentState,
    callback: Option<&TokenHash>,
) -> Result<bool, StoreError> {
    let (status, rate, reason, expires): (i16, Option<i64>, Option<&str>, Option<DateTime<Utc>>) =
        match &state.decision {
            ConsentDecision::Pending { expires_at } => (1, None, None, Some(*expires_at)),
            ConsentDecision::Granted { per_minute } => (2, per_minute.map(i64::from), None, None),
            ConsentDecision::Refused { reason } => (3, None, Some(reason), None),
        };
    let result = sqlx::query(
        "UPDATE endpoints SET consent_origin = $1, consent_status = $2, consent_rate = $3,
                consent_reason = $4, consent_at = $5, consent_expires_at = $6, consent_callback = $7
         WHERE id = $8 AND app_id = $9",
    )
    .bind(&state.origin)
    .bind(status)
    .bind(rate)
    .bind(reason)
    .bind(state.decided_at)
    .bind(expires)
    .bind(callback.map(TokenHash::to_hex))
    .bind(id.as_str())
    .bind(app.as_str())
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Grants a pending consent by its callback token, in one statement; the token is spent.
pub(crate) async fn grant_consent(
    store: &PostgresStore,
    callback: &TokenHash,
    per_minute: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Option<(ApplicationId, EndpointId)>, StoreError> {
    let row = sqlx::query(
        "UPDATE endpoints SET consent_status = 2, consent_rate = $1, consent_reason = NULL,
                consent_at = $2, consent_expires_at = NULL, consent_callback = NULL
         WHERE consent_callback = $3 AND consent_status = 1 AND consent_expires_at > $2
         RETURNING app_id, id",
    )
    .bind(per_minute.map(i64::from))
    .bind(now)
    .bind(callback.to_hex())
    .fetch_optional(&store.pool)
    .await
    .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((parse(&row, "app_id")?, parse(&row, "id")?)))
}
