//! The admin API's routes and handlers.

#![expect(
    clippy::result_large_err,
    reason = "handlers answer errors as axum `Response`s, built once per failed request"
)]

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State as St},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::info;

use super::{PipelineRequest, State};
use crate::{
    enforce::{BlockSpec, MapsError},
    event::Event,
    fleet::Op,
    incident::store::{Query as IncidentQuery, Store, StoreError},
    target::Target,
};

type S = St<Arc<State>>;
type Params = Query<HashMap<String, String>>;

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn bad(status: StatusCode, why: impl std::fmt::Display) -> Response {
    reply(status, json!({ "error": why.to_string() }))
}

/// The routes; `tcp` adds the bearer-token check.
pub(super) fn router(state: Arc<State>, tcp: bool) -> Router {
    let r = Router::new()
        .route(
            "/v1/health",
            get(|| async { reply(StatusCode::OK, json!({"status": "ok"})) }),
        )
        .route(
            "/v1/blocks",
            get(list_blocks).post(add_block).delete(del_block),
        )
        .route(
            "/v1/allowlist",
            get(list_allow).post(add_allow).delete(del_allow),
        )
        .route(
            "/v1/revocations",
            get(list_revocations)
                .post(add_revocation)
                .delete(del_revocation),
        )
        .route("/v1/incidents", get(list_incidents))
        .route("/v1/incidents/{id}", get(show_incident))
        .route("/v1/incidents/{id}/close", post(close_incident))
        .route("/v1/stats", get(stats))
        .route("/v1/sequences", get(sequences))
        .fallback(|| async {
            bad(
                StatusCode::NOT_FOUND,
                "no such endpoint; see docs/admin-api.md",
            )
        });
    let r = if tcp {
        r.layer(middleware::from_fn_with_state(state.clone(), bearer))
    } else {
        r
    };
    r.with_state(state)
}

/// Constant-time comparison.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn bearer(st: S, headers: HeaderMap, req: axum::extract::Request, next: Next) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&st.token, given) {
        (Some(t), Some(g)) if same(t.expose().as_bytes(), g.trim().as_bytes()) => {
            next.run(req).await
        }
        _ => {
            let mut r = bad(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("static header"),
            );
            r
        }
    }
}

fn body(bytes: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, Response> {
    v.get(name).and_then(Value::as_str).ok_or_else(|| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("`{name}` (a string) is required"),
        )
    })
}

fn target(s: &str) -> Result<Target, Response> {
    s.parse::<Target>()
        .map_err(|e| bad(StatusCode::BAD_REQUEST, e))
}

fn param_target(q: &HashMap<String, String>) -> Result<Target, Response> {
    target(q.get("target").ok_or_else(|| {
        bad(
            StatusCode::BAD_REQUEST,
            "`target` query parameter is required",
        )
    })?)
}

fn maps_error(e: MapsError) -> Response {
    match e {
        MapsError::NotFound(..) => bad(StatusCode::NOT_FOUND, e),
        MapsError::Allowlisted { .. } => bad(StatusCode::CONFLICT, e),
        other => bad(StatusCode::INTERNAL_SERVER_ERROR, other),
    }
}

fn with_maps<T>(
    st: &State,
    f: impl FnOnce(&mut crate::enforce::Maps) -> Result<T, MapsError>,
) -> Result<T, Response> {
    let Some(m) = &st.maps else {
        return Err(bad(
            StatusCode::SERVICE_UNAVAILABLE,
            "the maps are not available",
        ));
    };
    let mut m = m
        .lock()
        .map_err(|_| bad(StatusCode::INTERNAL_SERVER_ERROR, "maps lock poisoned"))?;
    f(&mut m).map_err(maps_error)
}

/// Shares a change made through the API with the fleet (when there is one).
fn share(st: &State, op: Op, t: &Target, reason: &str, ttl: Option<std::time::Duration>) {
    if let Some(f) = &st.fleet {
        f.publish(op, t, reason, ttl);
    }
}

fn done(r: Result<Response, Response>) -> Response {
    r.unwrap_or_else(|e| e)
}

async fn list_blocks(st: S) -> Response {
    done(with_maps(&st, |m| m.list_blocks()).map(|b| reply(StatusCode::OK, json!({ "blocks": b }))))
}

async fn add_block(st: S, bytes: Bytes) -> Response {
    done((|| {
        let v = body(&bytes)?;
        let t = target(field(&v, "target")?)?;
        let ttl = match v.get("ttl").and_then(Value::as_str) {
            Some(s) => crate::clock::parse_ttl(s).map_err(|e| bad(StatusCode::BAD_REQUEST, e))?,
            None => None,
        };
        let reason = v
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("api")
            .to_string();
        let spec = BlockSpec {
            target: t,
            ttl,
            reason,
            origin: jwtmon_common::origin::OPERATOR as u16,
        };
        let replaced = with_maps(&st, |m| m.block(&spec))?;
        share(&st, Op::Block, &t, &spec.reason, ttl);
        info!(target_addr = %t, ttl_s = ttl.map(|d| d.as_secs()), reason = %spec.reason, "admin API: block added");
        Ok(reply(
            if replaced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            json!({ "target": t.to_string(), "ttl_s": ttl.map(|d| d.as_secs()), "replaced": replaced }),
        ))
    })())
}

async fn del_block(st: S, q: Params) -> Response {
    done((|| {
        let t = param_target(&q)?;
        with_maps(&st, |m| m.unblock(&t))?;
        share(&st, Op::Unblock, &t, "api", None);
        info!(target_addr = %t, "admin API: block removed");
        Ok(reply(StatusCode::OK, json!({ "unblocked": t.to_string() })))
    })())
}

async fn list_allow(st: S) -> Response {
    done(
        with_maps(&st, |m| m.list_allow())
            .map(|a| reply(StatusCode::OK, json!({ "allowlist": a }))),
    )
}

async fn add_allow(st: S, bytes: Bytes) -> Response {
    done((|| {
        let v = body(&bytes)?;
        let t = target(field(&v, "target")?)?;
        with_maps(&st, |m| m.allow(&t))?;
        share(&st, Op::Allow, &t, "api", None);
        info!(target_addr = %t, "admin API: allowlist entry added");
        Ok(reply(
            StatusCode::CREATED,
            json!({ "allowlisted": t.to_string() }),
        ))
    })())
}

async fn del_allow(st: S, q: Params) -> Response {
    done((|| {
        let t = param_target(&q)?;
        with_maps(&st, |m| m.unallow(&t))?;
        share(&st, Op::Unallow, &t, "api", None);
        info!(target_addr = %t, "admin API: allowlist entry removed");
        Ok(reply(StatusCode::OK, json!({ "removed": t.to_string() })))
    })())
}

/// Sends a command to the pipeline and waits for its answer.
async fn ask<T>(
    st: &State,
    make: impl FnOnce(oneshot::Sender<T>) -> PipelineRequest,
) -> Result<T, Response> {
    let Some(p) = &st.pipeline else {
        return Err(bad(
            StatusCode::SERVICE_UNAVAILABLE,
            "no capture pipeline runs (no capturing interface)",
        ));
    };
    let (tx, rx) = oneshot::channel();
    p.send(make(tx))
        .await
        .map_err(|_| bad(StatusCode::SERVICE_UNAVAILABLE, "the pipeline is stopping"))?;
    rx.await.map_err(|_| {
        bad(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline did not answer",
        )
    })
}

fn token_id(s: &str) -> Result<String, Response> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(bad(
            StatusCode::BAD_REQUEST,
            "token_id must be 16 hex characters (the token's id as findings show it; never send the token)",
        ))
    }
}

async fn list_revocations(st: S) -> Response {
    done(
        ask(&st, PipelineRequest::Revocations)
            .await
            .map(|v| reply(StatusCode::OK, json!({ "token_ids": v }))),
    )
}

async fn add_revocation(st: S, bytes: Bytes) -> Response {
    let id = match body(&bytes).and_then(|v| token_id(field(&v, "token_id")?)) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match ask(&st, |tx| PipelineRequest::Revoke(id.clone(), tx)).await {
        Ok(Ok(())) => {
            info!(token_id = %id, "admin API: token revoked");
            reply(StatusCode::CREATED, json!({ "revoked": id }))
        }
        Ok(Err(e)) => bad(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(r) => r,
    }
}

async fn del_revocation(st: S, q: Params) -> Response {
    let id = match q
        .get("token_id")
        .ok_or_else(|| {
            bad(
                StatusCode::BAD_REQUEST,
                "`token_id` query parameter is required",
            )
        })
        .and_then(|s| token_id(s))
    {
        Ok(id) => id,
        Err(r) => return r,
    };
    match ask(&st, |tx| PipelineRequest::Unrevoke(id.clone(), tx)).await {
        Ok(Ok(true)) => {
            info!(token_id = %id, "admin API: revocation lifted");
            reply(StatusCode::OK, json!({ "unrevoked": id }))
        }
        Ok(Ok(false)) => bad(
            StatusCode::NOT_FOUND,
            format!("token_id {id} is not revoked"),
        ),
        Ok(Err(e)) => bad(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(r) => r,
    }
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(_) => bad(StatusCode::NOT_FOUND, e),
        other => bad(StatusCode::SERVICE_UNAVAILABLE, other),
    }
}

fn open_store(st: &State, write: bool) -> Result<Store, Response> {
    let Some(db) = &st.database else {
        return Err(bad(
            StatusCode::SERVICE_UNAVAILABLE,
            "the incident register is off (incidents.enabled = false)",
        ));
    };
    if write {
        Store::open(db)
    } else {
        Store::open_readonly(db)
    }
    .map_err(store_error)
}

async fn list_incidents(st: S, q: Params) -> Response {
    done((|| {
        let mut query = IncidentQuery {
            kind: q.get("kind").cloned(),
            limit: 1000,
            ..Default::default()
        };
        if let Some(s) = q.get("since") {
            query.since = Some(
                crate::clock::parse_since(s, SystemTime::now())
                    .map_err(|e| bad(StatusCode::BAD_REQUEST, e))?,
            );
        }
        if let Some(l) = q.get("limit") {
            query.limit = l
                .parse()
                .map_err(|_| bad(StatusCode::BAD_REQUEST, "`limit` must be a number"))?;
        }
        let list = open_store(&st, false)?.list(&query).map_err(store_error)?;
        Ok(reply(StatusCode::OK, json!({ "incidents": list })))
    })())
}

fn incident_id(s: &str) -> Result<i64, Response> {
    s.parse()
        .map_err(|_| bad(StatusCode::BAD_REQUEST, "the incident id must be a number"))
}

async fn show_incident(st: S, Path(id): Path<String>) -> Response {
    done((|| {
        let id = incident_id(&id)?;
        match open_store(&st, false)?.get(id).map_err(store_error)? {
            Some(i) => Ok(reply(StatusCode::OK, json!(i))),
            None => Err(bad(StatusCode::NOT_FOUND, format!("no incident {id}"))),
        }
    })())
}

async fn close_incident(st: S, Path(id): Path<String>, bytes: Bytes) -> Response {
    done((|| {
        let id = incident_id(&id)?;
        let v = body(&bytes)?;
        let note = field(&v, "note")?;
        if note.trim().is_empty() {
            return Err(bad(StatusCode::BAD_REQUEST, "`note` must say why"));
        }
        let inc = open_store(&st, true)?
            .close(id, note, SystemTime::now())
            .map_err(store_error)?;
        if let Some(e) = &st.events {
            e.send(Event::Closed { id });
        }
        info!(incident = id, "admin API: incident closed");
        Ok(reply(StatusCode::OK, json!(inc)))
    })())
}

async fn stats(st: S) -> Response {
    let kernel: Option<serde_json::Map<String, Value>> = with_maps(&st, |m| m.totals())
        .ok()
        .map(|t| t.0.into_iter().map(|(n, v)| (n, json!(v))).collect());
    let pipeline = ask(&st, PipelineRequest::Stats).await.ok();
    reply(
        StatusCode::OK,
        json!({ "kernel": kernel, "pipeline": pipeline }),
    )
}

async fn sequences(st: S, q: Params) -> Response {
    let num = |k: &str, d: usize| -> Result<usize, Response> {
        q.get(k).map_or(Ok(d), |v| {
            v.parse()
                .map_err(|_| bad(StatusCode::BAD_REQUEST, format!("`{k}` must be a number")))
        })
    };
    let (top, min_n) = match (num("top", 20), num("min_n", 2)) {
        (Ok(t), Ok(n)) => (t.min(1000), n.clamp(2, 10)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    done(
        ask(&st, |tx| PipelineRequest::Sequences(top, min_n, tx))
            .await
            .map(|r| reply(StatusCode::OK, json!(r))),
    )
}
