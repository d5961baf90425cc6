//! The one task that talks to Redis: publishes this node's changes,
//! applies the other nodes' changes to the kernel maps, resyncs on every
//! (re)connect, flushes the shared counts and keeps this node's heartbeat.
//! While Redis is away it queues (bounded) and retries with back-off.

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::{Duration, SystemTime},
};

use futures_util::StreamExt;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, aio::MultiplexedConnection};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    change::{Change, Op, kernel_reason, unix_ms},
    config::FleetConfig,
    handle::Fleet,
    tally::{self, Judge},
};
use crate::{
    enforce::{BlockSpec, Maps, MapsError},
    finding::Finding,
    metrics::Metrics,
    target::Target,
};

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The URL does not parse.
    #[error("fleet.redis_url: {0}")]
    Url(String),
    /// The password could not be read.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    /// Connecting, authenticating or a command failed.
    #[error("Redis at {url}: {why}")]
    Redis {
        /// Where (no password).
        url: String,
        /// Its words.
        why: String,
    },
    /// No answer in time.
    #[error("Redis at {url}: no answer within {secs:.1}s")]
    Timeout {
        /// Where.
        url: String,
        /// The timeout.
        secs: f64,
    },
}

/// A connection with its settings.
pub struct Conn {
    conn: MultiplexedConnection,
    client: redis::Client,
    prefix: String,
}

fn redis_err(cfg: &FleetConfig) -> impl Fn(redis::RedisError) -> LinkError + '_ {
    move |e| LinkError::Redis {
        url: cfg.redis_url.clone(),
        why: e.to_string(),
    }
}

/// Connects and authenticates (PING answered).
pub async fn connect(cfg: &FleetConfig) -> Result<Conn, LinkError> {
    let mut info = cfg
        .redis_url
        .as_str()
        .into_connection_info()
        .map_err(|e| LinkError::Url(e.to_string()))?;
    if let Some(pw) = crate::secret::load(
        "fleet password",
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )? {
        let settings = info.redis_settings().clone().set_password(pw.expose());
        info = info.set_redis_settings(settings);
    }
    let client = redis::Client::open(info).map_err(|e| LinkError::Url(e.to_string()))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(cfg.connect_timeout))
        .set_response_timeout(Some(cfg.command_timeout));
    let timeout = |_| LinkError::Timeout {
        url: cfg.redis_url.clone(),
        secs: cfg.connect_timeout.as_secs_f64(),
    };
    let mut conn = tokio::time::timeout(
        cfg.connect_timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(timeout)?
    .map_err(redis_err(cfg))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(redis_err(cfg))?;
    Ok(Conn {
        conn,
        client,
        prefix: cfg.key_prefix.clone(),
    })
}

fn channel(prefix: &str) -> String {
    format!("{prefix}:changes")
}

fn key(prefix: &str, op: Op, target: &str) -> String {
    match op {
        Op::Block | Op::Unblock => format!("{prefix}:block:{target}"),
        Op::Allow | Op::Unallow => format!("{prefix}:allow:{target}"),
    }
}

impl Conn {
    /// Stores and publishes one change, atomically.
    pub async fn publish(&mut self, c: &Change) -> redis::RedisResult<()> {
        let body = serde_json::to_string(c).unwrap_or_default();
        let k = key(&self.prefix, c.op, &c.target);
        let mut p = redis::pipe();
        p.atomic();
        match c.op {
            Op::Block => match c.remaining(unix_ms(SystemTime::now())) {
                Some(left) if left.is_zero() => return Ok(()),
                Some(left) => {
                    let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
                    p.cmd("SET").arg(&k).arg(&body).arg("PX").arg(ms).ignore();
                }
                None => {
                    p.cmd("SET").arg(&k).arg(&body).ignore();
                }
            },
            Op::Allow => {
                p.cmd("SET").arg(&k).arg(&body).ignore();
            }
            Op::Unblock | Op::Unallow => {
                p.cmd("DEL").arg(&k).ignore();
            }
        }
        p.cmd("PUBLISH")
            .arg(channel(&self.prefix))
            .arg(&body)
            .ignore();
        p.query_async(&mut self.conn).await
    }

    /// The JSON values of every key matching `pattern` (SCAN, then MGET in
    /// chunks); values that do not parse are skipped.
    async fn values<T: serde::de::DeserializeOwned>(
        &mut self,
        pattern: &str,
    ) -> redis::RedisResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await?;
            for chunk in keys.chunks(500) {
                let values: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(chunk)
                    .query_async(&mut self.conn)
                    .await?;
                out.extend(
                    values
                        .into_iter()
                        .flatten()
                        .filter_map(|v| serde_json::from_str(&v).ok()),
                );
            }
            cursor = next;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    /// Every stored block and allow entry.
    async fn stored(&mut self) -> redis::RedisResult<Vec<Change>> {
        let mut out = self.values(&format!("{}:block:*", self.prefix)).await?;
        out.extend(
            self.values::<Change>(&format!("{}:allow:*", self.prefix))
                .await?,
        );
        Ok(out)
    }

    /// The heartbeats of every node.
    pub async fn nodes(&mut self) -> redis::RedisResult<Vec<serde_json::Value>> {
        self.values(&format!("{}:node:*", self.prefix)).await
    }

    /// Block entries stored for the fleet.
    pub async fn blocks(&mut self) -> redis::RedisResult<Vec<Change>> {
        Ok(self
            .stored()
            .await?
            .into_iter()
            .filter(|c| c.op == Op::Block)
            .collect())
    }
}

/// Applies another node's change to this node's kernel maps. The local
/// allowlist still wins; a local config allow entry is never removed.
fn apply(maps: &mut Maps, c: &Change) {
    let Ok(target) = c.target.parse::<Target>() else {
        debug!(target = %c.target, "fleet change with a bad target ignored");
        return;
    };
    let result = match c.op {
        Op::Block => {
            let ttl = c.remaining(unix_ms(SystemTime::now()));
            if ttl.is_some_and(|t| t.is_zero()) {
                return;
            }
            let spec = BlockSpec {
                target,
                ttl,
                reason: kernel_reason(c),
                origin: jwtmon_common::origin::FLEET as u16,
            };
            maps.block(&spec).map(|_| ())
        }
        Op::Unblock => maps.unblock(&target),
        Op::Allow => maps.allow_for(&target, jwtmon_common::allow_reason::FLEET),
        Op::Unallow => {
            let ours = maps
                .list_allow()
                .is_ok_and(|l| l.iter().any(|a| a.target == target && a.origin == "fleet"));
            if !ours {
                return;
            }
            maps.unallow(&target)
        }
    };
    match result {
        Ok(()) => {
            info!(op = ?c.op, %target, node = %c.node, reason = %c.reason, "fleet change applied");
        }
        Err(MapsError::Allowlisted { allow, .. }) => {
            info!(%target, %allow, node = %c.node, "fleet block not applied: allowlisted here");
        }
        Err(MapsError::NotFound(..)) => {}
        Err(e) => warn!(%target, error = %e, "fleet change not applied"),
    }
}

/// What the task needs besides the connection.
pub struct Parts {
    /// The settings.
    pub cfg: FleetConfig,
    /// The shared handle (stats, tallies).
    pub fleet: Fleet,
    /// This node's changes.
    pub rx: mpsc::Receiver<Change>,
    /// Its own handle on the pinned maps.
    pub maps: Maps,
    /// Fleet-wide findings go to the pipeline.
    pub findings: mpsc::Sender<Finding>,
    /// The detectors' thresholds.
    pub rules: tally::Rules,
    /// Metrics (latency histogram, blocks gauge).
    pub metrics: Option<Arc<Metrics>>,
}

struct Task {
    cfg: FleetConfig,
    fleet: Fleet,
    rx: mpsc::Receiver<Change>,
    maps: Maps,
    findings: mpsc::Sender<Finding>,
    judge: Judge,
    metrics: Option<Arc<Metrics>>,
    queue: VecDeque<Change>,
    seq: u64,
}

impl Task {
    fn queue(&mut self, c: Change) {
        if self.queue.len() >= self.cfg.max_queued {
            self.queue.pop_front();
            self.fleet.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.queue.push_back(c);
        self.fleet
            .stats
            .queued
            .store(self.queue.len() as u64, Ordering::Relaxed);
    }

    /// Copies the link's counters into the metrics.
    fn export(&self) {
        let Some(m) = &self.metrics else { return };
        let s = &self.fleet.stats;
        m.fleet_up.set(i64::from(s.up.load(Ordering::Relaxed)));
        m.fleet_queued
            .set(i64::try_from(self.queue.len()).unwrap_or(i64::MAX));
        for (name, v) in [
            ("outages", &s.outages),
            ("published", &s.published),
            ("applied", &s.applied),
            ("dropped", &s.dropped),
            ("commands", &s.commands),
        ] {
            Metrics::set_counter(
                &m.fleet_events.get_or_create(&Metrics::label("event", name)),
                v.load(Ordering::Relaxed),
            );
        }
    }

    fn received(&mut self, c: &Change) {
        if c.node == self.fleet.node() {
            return;
        }
        apply(&mut self.maps, c);
        let lag_ms = unix_ms(SystemTime::now()).saturating_sub(c.at_ms);
        let stats = &self.fleet.stats;
        stats.applied.fetch_add(1, Ordering::Relaxed);
        stats.last_lag_us.store(lag_ms * 1000, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            #[expect(clippy::cast_precision_loss, reason = "milliseconds of lag")]
            m.fleet_propagation.observe(lag_ms as f64 / 1000.0);
        }
    }

    /// Adds the recorded events to Redis and judges the fleet totals.
    async fn flush(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let events = self.fleet.tallies.take();
        if events.is_empty() {
            return Ok(());
        }
        let node = self.fleet.node().to_string();
        for batch in events.chunks(200) {
            let script = redis::Script::new(tally::SCRIPT);
            let mut inv = script.prepare_invoke();
            inv.arg(unix_ms(SystemTime::now()));
            for e in batch {
                let (limit, window) = self.judge.rules().limit(e.counter);
                self.seq += 1;
                let (kind, add) = tally::kind(e);
                let score = if kind == "c" { add } else { unix_ms(e.at) };
                inv.key(tally::redis_key(&conn.prefix, e))
                    .arg(kind)
                    .arg(score)
                    .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
                    .arg(tally::member(&node, e, self.seq))
                    .arg(&node)
                    .arg(limit);
            }
            let answers: Vec<(usize, Vec<String>)> = match inv.invoke_async(&mut conn.conn).await {
                Ok(a) => a,
                Err(e) => {
                    self.fleet.tallies.put_back(events);
                    return Err(e);
                }
            };
            self.fleet.stats.commands.fetch_add(1, Ordering::Relaxed);
            for (e, (count, nodes)) in batch.iter().zip(answers) {
                if let Some(f) = self.judge.judge(e, count, &nodes)
                    && self.findings.try_send(f).is_err()
                {
                    warn!("fleet finding dropped: the pipeline queue is full");
                }
            }
        }
        Ok(())
    }

    async fn heartbeat(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let s = &self.fleet.stats;
        let blocks = self.metrics.as_ref().map_or(0, |m| m.blocks_active.get());
        let beat = json!({
            "node": self.fleet.node(),
            "last_seen_ms": unix_ms(SystemTime::now()),
            "blocks": blocks,
            "lag_ms": s.last_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
            "queued": s.queued.load(Ordering::Relaxed),
            "published": s.published.load(Ordering::Relaxed),
            "applied": s.applied.load(Ordering::Relaxed),
            "version": env!("CARGO_PKG_VERSION"),
        });
        redis::cmd("SET")
            .arg(format!("{}:node:{}", conn.prefix, self.fleet.node()))
            .arg(beat.to_string())
            .arg("EX")
            .arg(15)
            .query_async::<()>(&mut conn.conn)
            .await
    }

    /// One connected stretch: resync, send what waited, then serve until
    /// Redis is lost (`false`) or shutdown (`true`).
    async fn connected(&mut self, mut conn: Conn, shutdown: &CancellationToken) -> bool {
        let stats = self.fleet.stats.clone();
        let Ok(Ok(mut pubsub)) =
            tokio::time::timeout(self.cfg.connect_timeout, conn.client.get_async_pubsub()).await
        else {
            return false;
        };
        if pubsub.subscribe(channel(&conn.prefix)).await.is_err() {
            return false;
        }
        // Subscribed first, then read the state: nothing falls between.
        match conn.stored().await {
            Ok(all) => {
                let n = all.len();
                for c in &all {
                    apply(&mut self.maps, c);
                }
                info!(entries = n, "fleet: resynced from Redis");
            }
            Err(e) => {
                warn!(error = %e, "fleet: resync failed");
                return false;
            }
        }
        while let Some(c) = self.queue.pop_front() {
            if conn.publish(&c).await.is_err() {
                self.queue.push_front(c);
                return false;
            }
            stats.published.fetch_add(1, Ordering::Relaxed);
        }
        stats.queued.store(0, Ordering::Relaxed);
        stats.up.store(true, Ordering::Relaxed);
        let mut messages = pubsub.into_on_message();
        let mut flush = tokio::time::interval(self.cfg.flush_interval);
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                c = self.rx.recv() => {
                    let Some(c) = c else { return true };
                    if conn.publish(&c).await.is_err() {
                        self.queue(c);
                        return false;
                    }
                    stats.published.fetch_add(1, Ordering::Relaxed);
                    stats.commands.fetch_add(1, Ordering::Relaxed);
                }
                m = messages.next() => {
                    let Some(m) = m else { return false };
                    if let Ok(c) = serde_json::from_slice::<Change>(m.get_payload_bytes()) {
                        self.received(&c);
                    }
                }
                _ = flush.tick() => {
                    if let Err(e) = self.flush(&mut conn).await {
                        debug!(error = %e, "fleet: flush failed");
                        return false;
                    }
                }
                _ = beat.tick() => {
                    self.export();
                    if self.heartbeat(&mut conn).await.is_err() {
                        return false;
                    }
                    stats.commands.fetch_add(1, Ordering::Relaxed);
                }
                () = shutdown.cancelled() => {
                    // What was decided last still goes out.
                    while let Ok(c) = self.rx.try_recv() {
                        if conn.publish(&c).await.is_err() {
                            break;
                        }
                    }
                    return true;
                }
            }
        }
    }
}

/// Runs the link until `shutdown`: connects (retrying with back-off),
/// resyncs, publishes and applies. Redis being away is counted and logged
/// once per outage; local detection and enforcement never wait for it.
pub async fn run(parts: Parts, first: Option<Conn>, shutdown: CancellationToken) {
    let Parts {
        cfg,
        fleet,
        rx,
        maps,
        findings,
        rules,
        metrics,
    } = parts;
    let mut task = Task {
        judge: Judge::new(rules),
        cfg,
        fleet,
        rx,
        maps,
        findings,
        metrics,
        queue: VecDeque::new(),
        seq: 0,
    };
    let stats = task.fleet.stats.clone();
    let mut pending = first;
    let mut backoff = Duration::from_millis(100);
    let mut down_logged = pending.is_none();
    if down_logged {
        stats.outages.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        let conn = if let Some(c) = pending.take() {
            Ok(c)
        } else {
            tokio::select! {
                r = connect(&task.cfg) => r,
                () = shutdown.cancelled() => return,
            }
        };
        match conn {
            Ok(conn) => {
                if down_logged {
                    info!(url = %task.cfg.redis_url, "fleet: Redis answers; rejoined the fleet");
                }
                backoff = Duration::from_millis(100);
                if task.connected(conn, &shutdown).await {
                    return;
                }
                stats.up.store(false, Ordering::Relaxed);
                stats.outages.fetch_add(1, Ordering::Relaxed);
                task.export();
                warn!(url = %task.cfg.redis_url, "fleet: Redis lost; detecting and enforcing locally, queueing changes");
                down_logged = true;
            }
            Err(e) => {
                stats.up.store(false, Ordering::Relaxed);
                if !down_logged {
                    stats.outages.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "fleet: Redis unreachable; detecting and enforcing locally, queueing changes");
                    down_logged = true;
                }
                task.export();
                let until = tokio::time::Instant::now() + backoff;
                loop {
                    tokio::select! {
                        c = task.rx.recv() => match c {
                            Some(c) => task.queue(c),
                            None => return,
                        },
                        () = tokio::time::sleep_until(until) => break,
                        () = shutdown.cancelled() => return,
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Publishes one change and returns (the CLI's path).
pub async fn publish_now(cfg: &FleetConfig, c: &Change) -> Result<(), LinkError> {
    let mut conn = connect(cfg).await?;
    conn.publish(c).await.map_err(redis_err(cfg))
}
