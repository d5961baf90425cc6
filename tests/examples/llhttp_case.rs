//! Prints how jwtmon parses one llhttp corpus case (debugging aid):
//! `cargo run -p jwtmon-tests --example llhttp_case -- DIR 'heading text'`.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, name) = (
        args.get(1).cloned().unwrap_or_default(),
        args.get(2).cloned().unwrap_or_default(),
    );
    for case in jwtmon_tests::conformance::llhttp::load(std::path::Path::new(&dir))? {
        if case.name.contains(&name) {
            println!("{} [{:?}] {:?}", case.name, case.class(), case.error);
            println!("input: {:?}", String::from_utf8_lossy(&case.input));
            for r in jwtmon::parse::parse_requests(&case.input, true) {
                println!("  -> {:?}", r.map(|r| (r.method, r.path, r.upgrade)));
            }
        }
    }
    Ok(())
}
