//! Register file, writer and report tests on real SQLite files.

use std::time::{Duration, SystemTime};

use super::{
    ActionTaken, Incident, Status,
    config::IncidentConfig,
    report::{self, summarize},
    store::{Query, Store},
    writer::Writer,
};
use crate::finding::Severity;

fn at(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(s)
}

pub(crate) fn incident(id: i64, kind: &str, first: SystemTime) -> Incident {
    Incident {
        id,
        kind: kind.into(),
        severity: Severity::High,
        status: Status::Open,
        first_seen: first,
        last_seen: first,
        detected_at: first + Duration::from_millis(3),
        mitigated_at: None,
        closed_at: None,
        source: format!("px-{id:016x}"),
        token_id: Some("0123456789abcdef".into()),
        subject: Some("alice".into()),
        endpoint: "POST /api/v1/login".into(),
        count: 1,
        decision: "block_ip".into(),
        evidence: "failures=10".into(),
        actions: Vec::new(),
        notes: Vec::new(),
    }
}

#[test]
fn store_round_trips_and_never_reopens_closed_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db/incidents.db");
    let mut store = Store::open(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "personal data: owner only");
    let mut a = incident(1, "brute_force", at(1_000_000));
    a.actions.push(ActionTaken {
        action: "block_ip".into(),
        target: a.source.clone(),
        ttl_s: Some(600),
        at: at(1_000_001),
    });
    a.mitigated_at = Some(at(1_000_001));
    a.status = Status::Mitigated;
    let b = incident(2, "sqli", at(2_000_000));
    store.upsert(&[a.clone(), b.clone()]).unwrap();
    drop(store);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.max_id().unwrap(), 2);
    assert_eq!(store.get(1).unwrap().unwrap(), a);
    let q = Query {
        kind: Some("sqli".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&q).unwrap(), vec![b.clone()]);
    let q = Query {
        since: Some(at(1_500_000)),
        ..Default::default()
    };
    assert_eq!(store.list(&q).unwrap().len(), 1);
    let closed = store
        .close(1, "false positive: load test", at(3_000_000))
        .unwrap();
    assert_eq!(closed.status, Status::Closed);
    // The daemon's next update of #1 keeps it closed, with its note.
    let mut later = a.clone();
    later.count = 9;
    store.upsert(&[later]).unwrap();
    let now = store.get(1).unwrap().unwrap();
    assert_eq!((now.status, now.count), (Status::Closed, 9));
    assert_eq!(now.notes[0].text, "false positive: load test");
    assert!(matches!(
        store.close(99, "x", at(1)),
        Err(super::store::StoreError::NotFound(99))
    ));
    // Retention.
    assert_eq!(store.delete_before(at(1_500_000)).unwrap(), 1);
    assert!(store.get(1).unwrap().is_none());
    assert!(store.get(2).unwrap().is_some());
}

fn wait_for(mut ok: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn writer_holds_incidents_while_the_database_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IncidentConfig {
        database: dir.path().join("incidents.db"),
        flush_interval: Duration::from_millis(50),
        max_pending: 3,
        ..Default::default()
    };
    let writer = Writer::spawn(cfg.clone());
    let now = SystemTime::now();
    writer.write(incident(1, "brute_force", now));
    assert!(wait_for(|| writer
        .stats
        .written
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
    // Another process holds the write lock.
    let locker = rusqlite::Connection::open(&cfg.database).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for id in 2..=6 {
        writer.write(incident(id, "sqli", now));
    }
    let stats = writer.stats.clone();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(wait_for(
        || load(&stats.errors) >= 1 && load(&stats.pending) == 3
    ));
    assert_eq!(
        load(&stats.dropped),
        2,
        "the bound holds: the oldest two go"
    );
    locker.execute_batch("COMMIT").unwrap();
    assert!(wait_for(|| load(&stats.pending) == 0));
    writer.finish();
    let store = Store::open_readonly(&cfg.database).unwrap();
    let ids: Vec<i64> = store
        .list(&Query::default())
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [6, 5, 4, 1]);
}

#[test]
fn retention_runs_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IncidentConfig {
        database: dir.path().join("incidents.db"),
        retention_days: 30,
        retention_interval: Duration::from_secs(1),
        flush_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let now = SystemTime::now();
    let mut store = Store::open(&cfg.database).unwrap();
    store
        .upsert(&[
            incident(1, "old", now - Duration::from_hours(744)),
            incident(2, "recent", now - Duration::from_hours(696)),
        ])
        .unwrap();
    let writer = Writer::spawn(cfg);
    assert!(wait_for(|| store.get(1).unwrap().is_none()));
    assert!(store.get(2).unwrap().is_some());
    writer.finish();
}

#[test]
fn report_figures() {
    let day = 86_400;
    let from = at(20_000 * day);
    let mut incs = Vec::new();
    for i in 0..20 {
        let mut inc = incident(
            i,
            if i % 4 == 0 { "sqli" } else { "brute_force" },
            from + Duration::from_secs(i as u64 * 3600 * 5),
        );
        inc.detected_at = inc.first_seen + Duration::from_millis(i as u64 + 1);
        if i % 2 == 0 {
            inc.mitigated_at = Some(inc.first_seen + Duration::from_millis(10 * (i as u64 + 1)));
            inc.actions.push(ActionTaken {
                action: "block_ip".into(),
                target: inc.source.clone(),
                ttl_s: Some(60),
                at: inc.mitigated_at.unwrap(),
            });
        }
        inc.source = format!("px-{:016x}", i % 3);
        incs.push(inc);
    }
    incs.push(incident(99, "outside", from - Duration::from_secs(1)));
    let s = summarize(&incs, from, from + Duration::from_secs(7 * day));
    assert_eq!(s.incidents, 20);
    assert_eq!(s.by_kind["sqli"], 5);
    assert_eq!(s.by_kind["brute_force"], 15);
    assert_eq!(s.blocks, 10);
    assert_eq!(s.time_to_detect.median_ms, Some(10.0));
    assert_eq!(s.time_to_detect.p95_ms, Some(19.0));
    assert_eq!(s.time_to_mitigate.n, 10);
    assert_eq!(s.time_to_mitigate.median_ms, Some(90.0));
    assert_eq!(s.per_day.len(), 7);
    assert_eq!(s.per_day.iter().map(|d| d.total).sum::<u64>(), 20);
    assert_eq!(s.per_day[0].total, 5, "hours 0, 5, 10, 15, 20 of day one");
    assert_eq!(s.top_sources[0].name, format!("px-{:016x}", 0));
    assert_eq!(s.top_sources[0].incidents, 7);
    let md = report::markdown(&s);
    assert!(md.contains("| brute_force | 15 |"), "{md}");
    let html = super::html::render(&s);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "no external assets"
    );
}
