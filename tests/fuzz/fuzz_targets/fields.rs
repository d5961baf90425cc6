//! Field extraction: query, cookies and bodies (form, JSON, XML,
//! multipart, by the request's own Content-Type) never panic, nor do the
//! schema model's named parameters and value shapes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for r in jwtmon::parse::parse_requests(data, true)
        .into_iter()
        .flatten()
    {
        for (place, v) in jwtmon::detect::fields::values(&r, 4096) {
            let _ = (place.as_str(), v.len());
        }
        let _ = jwtmon::detect::fields::username(&r, &["username".into(), "email".into()]);
        let mut shape = jwtmon::detect::schema::shape::Shape::default();
        for p in jwtmon::detect::params::params(&r) {
            let v = jwtmon::detect::schema::shape::Value::text(&p.text);
            let h = jwtmon::detect::schema::hash(&p.text);
            let _ = shape.judge(&v, h, 0);
            shape.learn(&v, 7, h);
        }
    }
});
