//! xdp-filter (Debian's xdp-tools) as a benchmark anchor: loaded on a veth
//! in a throw-away namespace, its program pinned so `BPF_PROG_TEST_RUN`
//! runs it on the same frames as jwtmon's, and its address maps filled
//! through their file descriptors. Unloaded, unpinned and removed on drop.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use aya::{
    maps::{Map, MapData, PerCpuHashMap, PerCpuValues},
    programs::Xdp,
    util::nr_cpus,
};

use crate::netns::{Netns, sh};

/// xdp-filter's per-address value: "match the source address" (what
/// `xdp-filter ip ADDR` writes).
const MATCH_SOURCE: u64 = 2;

/// A loaded xdp-filter in deny-listed-sources mode (policy allow).
pub struct XdpFilter {
    ns: Netns,
    pin: PathBuf,
    /// The program, for test runs.
    pub prog: Xdp,
    v4: PerCpuHashMap<MapData, u32, u64>,
    v6: PerCpuHashMap<MapData, [u8; 16], u64>,
    /// Entries each address map holds (xdp-filter's compiled-in size).
    pub capacity: u32,
}

/// The `bpftool --json` fields this reads.
#[derive(serde::Deserialize)]
struct ProgInfo {
    id: u32,
    #[serde(default)]
    name: String,
    #[serde(default)]
    map_ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct MapInfo {
    #[serde(default)]
    name: String,
    #[serde(default)]
    max_entries: u32,
}

fn json<T: serde::de::DeserializeOwned>(args: &[&str]) -> Result<T> {
    let out = sh("bpftool", args)?;
    serde_json::from_slice(&out.stdout).with_context(|| format!("bpftool {}", args.join(" ")))
}

impl XdpFilter {
    /// Loads xdp-filter (IPv4 + IPv6 source filtering, no dispatcher, as
    /// jwtmon attaches) on a veth of a new namespace.
    pub fn load() -> Result<Self> {
        if which("xdp-filter").is_none() || which("bpftool").is_none() {
            bail!(
                "xdp-filter or bpftool missing: `cargo xtask setup` installs xdp-tools and bpftool"
            );
        }
        // libxdp needs a bpffs, and a fresh host may not have one mounted.
        jwtmon::enforce::datapath::prepare_pin_dir(std::path::Path::new("/sys/fs/bpf"))
            .context("mounting bpffs for xdp-filter")?;
        let ns = Netns::new("xf")?;
        ns.ip(&["link", "add", "xfa", "type", "veth", "peer", "name", "xfb"])?;
        ns.ip(&["link", "set", "xfa", "up"])?;
        ns.ip(&["link", "set", "xfb", "up"])?;
        let netns_path = format!("--net=/var/run/netns/{}", ns.name);
        let out = std::process::Command::new("nsenter")
            .args([netns_path.as_str(), "xdp-filter", "load", "-m", "native"])
            .args(["-f", "ipv4,ipv6", "-p", "allow", "xfa"])
            .env("LIBXDP_SKIP_DISPATCHER", "1")
            .output()
            .context("running xdp-filter load")?;
        if !out.status.success() {
            bail!(
                "xdp-filter load: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let progs: Vec<ProgInfo> = json(&["prog", "show", "--json"])?;
        let Some(info) = progs
            .into_iter()
            .filter(|p| p.name.starts_with("xdpfilt_"))
            .max_by_key(|p| p.id)
        else {
            bail!("xdp-filter loaded but bpftool lists no xdpfilt_ program");
        };
        let pin = PathBuf::from(format!(
            "/sys/fs/bpf/jwtmon-bench-xdpfilt-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&pin);
        let pin_str = pin.to_string_lossy().into_owned();
        sh(
            "bpftool",
            &["prog", "pin", "id", &info.id.to_string(), &pin_str],
        )?;
        let prog = Xdp::from_pin(&pin, aya_obj::programs::XdpAttachType::Interface)
            .context("opening xdp-filter")?;
        let (mut v4, mut v6, mut capacity) = (None, None, 0);
        for id in info.map_ids {
            let m: MapInfo = json(&["map", "show", "id", &id.to_string(), "--json"])?;
            let data = MapData::from_id(id).context("opening an xdp-filter map")?;
            match m.name.as_str() {
                "filter_ipv4" => {
                    capacity = m.max_entries;
                    v4 = Some(PerCpuHashMap::try_from(Map::PerCpuHashMap(data))?);
                }
                "filter_ipv6" => v6 = Some(PerCpuHashMap::try_from(Map::PerCpuHashMap(data))?),
                _ => {}
            }
        }
        let (Some(v4), Some(v6)) = (v4, v6) else {
            bail!("xdp-filter's program has no filter_ipv4/filter_ipv6 map");
        };
        Ok(Self {
            ns,
            pin,
            prog,
            v4,
            v6,
            capacity,
        })
    }

    /// Adds a source address to the deny list.
    pub fn deny(&mut self, addr: std::net::IpAddr) -> Result<()> {
        let cpus = nr_cpus().map_err(|(_, e)| e)?;
        let value = PerCpuValues::try_from(vec![MATCH_SOURCE; cpus])?;
        match addr {
            // xdp-filter keys are the address as it sits in the packet.
            std::net::IpAddr::V4(a) => self.v4.insert(u32::from_ne_bytes(a.octets()), value, 0)?,
            std::net::IpAddr::V6(a) => self.v6.insert(a.octets(), value, 0)?,
        }
        Ok(())
    }
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        let netns_path = format!("--net=/var/run/netns/{}", self.ns.name);
        let _ = std::process::Command::new("nsenter")
            .args([netns_path.as_str(), "xdp-filter", "unload", "xfa"])
            .output();
        let _ = std::fs::remove_file(&self.pin);
        // The namespace (and the veth in it) goes with `self.ns`.
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| PathBuf::from(d).join(program))
        .find(|p| p.is_file())
}
