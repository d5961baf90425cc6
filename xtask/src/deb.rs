//! `cargo xtask deb`: the Debian package, assembled by hand and built with
//! `dpkg-deb` (no extra tool to install). It holds the release binary, the
//! documented default config as a conffile, the hardened systemd unit,
//! shell completions and man pages generated from the clap definitions,
//! and `/var/lib/jwtmon` with mode 0700.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{StatusOk, cargo, output};

const MAINTAINER: &str = "jwtmon developers <jwtmon@localhost>";

fn write(path: &Path, text: impl AsRef<[u8]>, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// What `jwtmon ARGS` prints on stdout.
fn jwtmon_output(bin: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new(bin).args(args).output()?;
    anyhow::ensure!(out.status.success(), "jwtmon {args:?} failed");
    Ok(out.stdout)
}

const POSTINST: &str = "#!/bin/sh
set -e
mkdir -p /var/lib/jwtmon
chmod 0700 /var/lib/jwtmon
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
";

const PRERM: &str = "#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then
    systemctl stop jwtmon.service >/dev/null 2>&1 || true
fi
";

const POSTRM: &str = "#!/bin/sh
set -e
if [ \"$1\" = purge ]; then
    rm -rf /var/lib/jwtmon
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
";

/// Builds `target/debian/jwtmon_VERSION_ARCH.deb`; returns its path.
pub fn build(root: &Path) -> Result<PathBuf> {
    cargo(root)
        .args(["build", "--release", "--package", "jwtmon"])
        .status_ok("building jwtmon (release)")?;
    let bin = root.join("target/release/jwtmon");
    let version = String::from_utf8(jwtmon_output(&bin, &["--version"])?)?
        .split_whitespace()
        .nth(1)
        .unwrap_or("0.1.0")
        .to_string();
    let arch = output("dpkg", &["--print-architecture"]).trim().to_string();
    let stage = root.join(format!("target/debian/jwtmon_{version}_{arch}"));
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let at = |p: &str| stage.join(p);
    std::fs::create_dir_all(at("usr/sbin"))?;
    std::fs::copy(&bin, at("usr/sbin/jwtmon"))?;
    Command::new("strip")
        .arg(at("usr/sbin/jwtmon"))
        .status_ok("strip")?;
    std::fs::set_permissions(
        at("usr/sbin/jwtmon"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    let config = std::fs::read(root.join("jwtmon/config/jwtmon.toml"))?;
    write(&at("etc/jwtmon/jwtmon.toml"), config, 0o644)?;
    let unit = std::fs::read(root.join("jwtmon/packaging/jwtmon.service"))?;
    write(&at("lib/systemd/system/jwtmon.service"), unit, 0o644)?;
    std::fs::create_dir_all(at("var/lib/jwtmon"))?;
    std::fs::set_permissions(at("var/lib/jwtmon"), std::fs::Permissions::from_mode(0o700))?;
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/jwtmon"),
        ("zsh", "usr/share/zsh/vendor-completions/_jwtmon"),
        ("fish", "usr/share/fish/vendor_completions.d/jwtmon.fish"),
    ] {
        write(
            &at(path),
            jwtmon_output(&bin, &["completions", shell])?,
            0o644,
        )?;
    }
    let man = at("usr/share/man/man8");
    jwtmon_output(&bin, &["man", "--out", &man.to_string_lossy()])?;
    for page in std::fs::read_dir(&man)? {
        let page = page?.path();
        Command::new("gzip")
            .args(["-9n"])
            .arg(&page)
            .status_ok("gzip")?;
    }
    let doc = at("usr/share/doc/jwtmon");
    write(
        &doc.join("copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: jwtmon\nFiles: *\nLicense: MIT or Apache-2.0\n",
        0o644,
    )?;
    write(
        &doc.join("README.md"),
        std::fs::read(root.join("README.md"))?,
        0o644,
    )?;
    let size_kib = output("du", &["-sk", &stage.to_string_lossy()])
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .to_string();
    let control = format!(
        "Package: jwtmon\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {MAINTAINER}\n\
         Installed-Size: {size_kib}\nDepends: libc6 (>= 2.36)\nSection: net\nPriority: optional\n\
         Homepage: https://localhost/jwtmon\n\
         Description: protects HTTP APIs from the kernel up\n \
         An XDP program drops banned addresses at wire speed; a daemon samples HTTP,\n \
         analyses JWTs, behaviour and API call sequences, and blocks attackers in\n \
         the kernel with a TTL. Alerts, an incident register, Prometheus metrics\n \
         and SIEM events.\n"
    );
    write(&at("DEBIAN/control"), control, 0o644)?;
    write(&at("DEBIAN/conffiles"), "/etc/jwtmon/jwtmon.toml\n", 0o644)?;
    write(&at("DEBIAN/postinst"), POSTINST, 0o755)?;
    write(&at("DEBIAN/prerm"), PRERM, 0o755)?;
    write(&at("DEBIAN/postrm"), POSTRM, 0o755)?;
    let deb = root.join(format!("target/debian/jwtmon_{version}_{arch}.deb"));
    Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&stage)
        .arg(&deb)
        .status_ok("dpkg-deb --build")?;
    println!("{}", deb.display());
    Ok(deb)
}
