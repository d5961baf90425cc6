//! The global per-CPU counters and the control slot, shared by all programs.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use jwtmon_common::{Control, GlobalStats};

#[map(name = "GLOBAL_STATS")]
static GLOBAL_STATS: PerCpuArray<GlobalStats> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "CONTROL")]
static CONTROL: Array<Control> = Array::with_max_entries(1, 0);

/// The knobs userspace set (all zero before the daemon writes them, which
/// disables sampling and the verdict cache).
#[inline(always)]
pub fn control() -> Option<&'static Control> {
    CONTROL.get(0)
}

/// This CPU's slot of the global counters.
pub struct Counters(Option<*mut GlobalStats>);

impl Counters {
    /// Looks the slot up (an inlined array access).
    #[inline(always)]
    pub fn get() -> Self {
        Self(GLOBAL_STATS.get_ptr_mut(0))
    }

    /// Adds one to a counter; out-of-range indexes are ignored.
    #[inline(always)]
    pub fn bump(&mut self, index: u32) {
        if let Some(stats) = self.0 {
            // SAFETY: per-CPU slot, only this CPU writes it while we run.
            let stats = unsafe { &mut *stats };
            if let Some(slot) = stats.get_mut(index as usize) {
                *slot += 1;
            }
        }
    }
}
