//! HTTP/1.x requests and responses: parsing never panics, and whatever
//! parses survives the observation JSON and the endpoint name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for complete in [true, false] {
        for r in jwtmon::parse::parse_requests(data, complete)
            .into_iter()
            .flatten()
        {
            let _ = jwtmon::endpoint::endpoint(&r.method, &r.path);
            let _ = r.cookie_names();
            let _ = r.held_bytes();
        }
    }
    let _ = jwtmon::parse::parse_responses(data);
});
