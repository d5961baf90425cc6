//! TC egress: samples HTTP response starts leaving from monitored ports.
//! Never changes or drops a packet.

use aya_ebpf::{macros::classifier, programs::TcContext};

use crate::{
    capture,
    counters::{Counters, control},
    parse::{parse_l3, parse_tcp},
};

/// `TC_ACT_UNSPEC` / `TCX_NEXT`: let the next program or the default decide.
const TC_NEXT: i32 = -1;

/// Egress classifier attached on capture interfaces.
#[classifier]
pub fn jwtmon_tc_egress(ctx: TcContext) -> i32 {
    if let Some(control) = control()
        && control.sample_rate != 0
        && let Ok(l3) = parse_l3(ctx.data(), ctx.data_end())
        && let Some(tcp) = parse_tcp(ctx.data(), ctx.data_end(), &l3)
    {
        let mut counters = Counters::get();
        // SAFETY: reading the skb's ifindex field.
        let ifindex = unsafe { (*ctx.skb.skb).ifindex };
        capture::sample_response(
            &ctx,
            ctx.len() as usize,
            &l3,
            &tcp,
            control,
            ifindex,
            &mut counters,
        );
    }
    TC_NEXT
}
