//! Builds the kernel programs (jwtmon-ebpf) with nightly + bpf-linker and
//! leaves the object in OUT_DIR, where `enforce::datapath::OBJECT` embeds it. A daemon
//! built with plain `cargo build -p jwtmon` therefore always carries its
//! object; when the BPF toolchain is missing the build stops with the one
//! command that installs it.
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let have_linker = Command::new("bpf-linker").arg("--version").output().is_ok();
    let have_nightly_src = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("rust-src"));
    if !(have_linker && have_nightly_src) {
        anyhow::bail!(
            "the eBPF toolchain is missing (bpf-linker: {}, nightly rust-src: {}). \
             Run `cargo xtask setup` once; it installs llvm-22-dev, rust-src and bpf-linker.",
            if have_linker { "ok" } else { "missing" },
            if have_nightly_src { "ok" } else { "missing" },
        );
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../jwtmon-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "jwtmon-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
