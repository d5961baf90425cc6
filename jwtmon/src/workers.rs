//! Worker threads for the stateless part of the analysis
//! (`detect::Prepare`): while the engine's one stateful pass walks a batch
//! in order, the workers prepare the observations ahead of it. Results
//! reach the pass in stream order, so every finding and every piece of
//! state is the same as with one thread; only the wall time changes.
//!
//! The pass never waits for a worker to start: it prepares an observation
//! itself when no worker has claimed it. A preparer that panics leaves
//! that observation unprepared, and its detector then does the work in the
//! pass (as it would with one thread).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use crate::{
    detect::{Prepare, Prepared},
    observe::Observation,
};

/// Batches shorter than this are prepared in the pass (waking a worker
/// costs more than it saves).
const MIN_BATCH: usize = 8;

/// Why the worker threads cannot start.
#[derive(Debug, thiserror::Error)]
#[error("analysis worker threads (daemon.analysis_threads) not started: {0}")]
pub struct WorkersError(#[from] rayon::ThreadPoolBuildError);

/// The analysis threads: the caller's plus `helpers` workers.
pub struct Workers {
    pool: Option<rayon::ThreadPool>,
    helpers: usize,
}

/// One observation's preparation: claimed by one thread, then filled.
struct Slot {
    claimed: AtomicBool,
    done: OnceLock<Vec<Option<Prepared>>>,
}

impl Workers {
    /// `threads` analysis threads in all (the caller's included); 0 picks
    /// the number of CPUs, at most 4.
    pub fn new(threads: usize) -> Result<Self, WorkersError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .min(4)
        } else {
            threads
        };
        let helpers = threads.saturating_sub(1);
        let pool = (helpers > 0)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(helpers)
                    .thread_name(|i| format!("jwtmon-analysis-{i}"))
                    .build()
            })
            .transpose()?;
        Ok(Self { pool, helpers })
    }

    /// One thread: everything runs in the caller's pass.
    pub fn single() -> Self {
        Self {
            pool: None,
            helpers: 0,
        }
    }

    /// Analysis threads in all.
    pub fn threads(&self) -> usize {
        self.helpers + 1
    }

    /// Calls `pass` on each observation of `batch` in order, with what
    /// `preparers` made of it (in their order).
    pub fn each(
        &self,
        batch: &[Observation],
        preparers: &[Arc<dyn Prepare>],
        mut pass: impl FnMut(&Observation, &[Option<Prepared>]),
    ) {
        // A preparer that panics leaves its result out. The token's digest
        // (every analyser keys on it) is taken here too, once.
        let prepare = |obs: &Observation| -> Vec<Option<Prepared>> {
            if let Some(c) = &obs.request.credentials {
                c.digest();
            }
            preparers
                .iter()
                .map(|p| catch_unwind(AssertUnwindSafe(|| p.prepare(obs))).ok())
                .collect()
        };
        let pool = match &self.pool {
            Some(pool) if !preparers.is_empty() && batch.len() >= MIN_BATCH => pool,
            _ => {
                for obs in batch {
                    pass(obs, &prepare(obs));
                }
                return;
            }
        };
        let slots: Vec<Slot> = batch
            .iter()
            .map(|_| Slot {
                claimed: AtomicBool::new(false),
                done: OnceLock::new(),
            })
            .collect();
        let next = AtomicUsize::new(0);
        let work = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(slot), Some(obs)) = (slots.get(i), batch.get(i)) else {
                    break;
                };
                if !slot.claimed.swap(true, Ordering::AcqRel) {
                    let _ = slot.done.set(prepare(obs));
                }
            }
        };
        pool.in_place_scope(|scope| {
            for _ in 0..self.helpers {
                scope.spawn(|_| work());
            }
            for (slot, obs) in slots.iter().zip(batch) {
                if !slot.claimed.swap(true, Ordering::AcqRel) {
                    let _ = slot.done.set(prepare(obs));
                }
                pass(obs, wait(&slot.done));
            }
        });
    }
}

/// The slot's results, once the worker that claimed it has filled it.
fn wait(done: &OnceLock<Vec<Option<Prepared>>>) -> &[Option<Prepared>] {
    let mut spins = 0u32;
    loop {
        if let Some(d) = done.get() {
            return d;
        }
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Prepares the request's path length, and counts its calls; panics
    /// on a path of `/panic`.
    struct PathLen(AtomicU64);

    impl Prepare for PathLen {
        fn prepare(&self, obs: &Observation) -> Prepared {
            self.0.fetch_add(1, Ordering::Relaxed);
            assert!(obs.request.path != "/panic", "a worker's panic");
            Box::new(obs.request.path.len())
        }
    }

    fn batch(n: usize) -> Vec<Observation> {
        (0..n)
            .map(|i| {
                let mut o = crate::detect::tests::obs("10.0.0.1", "GET", "/", "", 200, 0);
                o.request.path = if i == 5 {
                    "/panic".into()
                } else {
                    "/".repeat(i + 1)
                };
                o
            })
            .collect()
    }

    fn run(workers: &Workers, b: &[Observation], p: &Arc<PathLen>) -> Vec<Option<usize>> {
        let preparers: Vec<Arc<dyn Prepare>> = vec![p.clone()];
        let mut seen = Vec::new();
        workers.each(b, &preparers, |obs, prepared| {
            assert_eq!(prepared.len(), 1);
            let got = prepared[0]
                .as_ref()
                .and_then(|r| r.downcast_ref::<usize>().copied());
            if let Some(n) = got {
                assert_eq!(
                    n,
                    obs.request.path.len(),
                    "the result of its own observation"
                );
            }
            seen.push(got);
        });
        seen
    }

    #[test]
    fn results_come_in_stream_order_once_each_and_a_panic_is_contained() {
        let b = batch(500);
        let workers = Workers::new(3).unwrap();
        assert_eq!(workers.threads(), 3);
        for _ in 0..20 {
            let p = Arc::new(PathLen(AtomicU64::new(0)));
            let seen = run(&workers, &b, &p);
            assert_eq!(seen.len(), 500);
            assert!(seen[5].is_none(), "the panicked one is unprepared");
            for (i, s) in seen.iter().enumerate().filter(|(i, _)| *i != 5) {
                assert_eq!(*s, Some(i + 1), "observation {i}");
            }
            assert_eq!(p.0.load(Ordering::Relaxed), 500, "each prepared once");
        }
    }

    #[test]
    fn one_thread_and_short_batches_prepare_in_the_pass() {
        let p = Arc::new(PathLen(AtomicU64::new(0)));
        let b = batch(4);
        let want = [Some(1), Some(2), Some(3), Some(4)];
        assert_eq!(run(&Workers::single(), &b, &p), want);
        assert_eq!(run(&Workers::new(2).unwrap(), &b, &p), want);
        assert_eq!(run(&Workers::single(), &batch(7), &p)[5], None);
    }
}
