//! The local port of a forward: the same one every session, so bookmarks
//! and a frontend's configured backend URL keep working.

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener};

use sha2::{Digest, Sha256};

/// Derived ports sit below Linux's ephemeral range (32768+), where the
/// kernel's own outgoing ports would otherwise take them at random.
pub const DERIVED_RANGE: std::ops::RangeInclusive<u16> = 20000..=32767;

/// How many ports after the derived one are tried before giving up.
const NEXT_TRIES: u16 = 64;

/// The port derived from the project and component: the same on every machine.
pub fn derived(project: &str, component: &str) -> u16 {
    let digest = Sha256::digest(format!("{project}/{component}").as_bytes());
    let n = u16::from_be_bytes([digest[0], digest[1]]);
    let span = DERIVED_RANGE.end() - DERIVED_RANGE.start() + 1;
    DERIVED_RANGE.start() + n % span
}

/// The ports to try, in order: the component's own, the derived one, then
/// the ones after it (wrapping inside the derived range). An own port of 0
/// would bind a random port, never the same twice, so it is skipped.
pub fn candidates(own: u16, project: &str, component: &str) -> Vec<u16> {
    let start = derived(project, component);
    let span = DERIVED_RANGE.end() - DERIVED_RANGE.start() + 1;
    let mut ports: Vec<u16> = (own != 0).then_some(own).into_iter().collect();
    ports.extend(
        (0..=NEXT_TRIES)
            .map(|i| DERIVED_RANGE.start() + (start - DERIVED_RANGE.start() + i) % span),
    );
    ports.dedup();
    ports
}

/// What the forward's listener should be.
#[derive(Debug, Clone)]
pub struct PortChoice {
    pub address: IpAddr,
    /// `devPort:`: this port or an error, never another one.
    pub pinned: Option<u16>,
    /// The component's own port (what it listens on in the pod).
    pub own: u16,
    pub project: String,
    pub component: String,
}

/// A process holding a local port, as far as /proc tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {})", self.command, self.pid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("local port {port} on {address} (devPort of {component}) is taken{}", held_by(.holder))]
    PinnedTaken {
        address: IpAddr,
        port: u16,
        component: String,
        holder: Option<Holder>,
    },
    #[error("no free local port on {address} for {component}: tried {tried:?}")]
    NoneFree {
        address: IpAddr,
        component: String,
        tried: Vec<u16>,
    },
    #[error("cannot listen on {address}")]
    Listen {
        address: IpAddr,
        #[source]
        source: std::io::Error,
    },
}

fn held_by(holder: &Option<Holder>) -> String {
    holder
        .as_ref()
        .map(|h| format!(" by {h}"))
        .unwrap_or_default()
}

impl crate::report::Hinted for PortError {
    fn hint(&self) -> Option<String> {
        match self {
            PortError::PinnedTaken {
                component,
                holder: Some(h),
                ..
            } => Some(format!(
                "stop it (kill {}), or remove devPort from {component} in todo.yaml to get a free port",
                h.pid
            )),
            PortError::PinnedTaken {
                port, component, ..
            } => Some(format!(
                "free the port (ss -ltnp 'sport = :{port}' shows who holds it), or remove devPort from {component} in todo.yaml to get a free port"
            )),
            PortError::NoneFree { component, .. } => Some(format!(
                "pin a free port in todo.yaml under {component}: devPort: <port>"
            )),
            PortError::Listen { .. } => {
                Some("pass an address of this machine: --address 127.0.0.1".into())
            }
        }
    }
}
crate::report::hinted!(PortError);

/// Binds the forward's listener on the first port [`candidates`] allows.
pub fn bind(choice: &PortChoice) -> Result<TcpListener, PortError> {
    if let Some(port) = choice.pinned {
        return try_bind(choice.address, port)?.ok_or_else(|| PortError::PinnedTaken {
            address: choice.address,
            port,
            component: choice.component.clone(),
            holder: holder(port),
        });
    }
    let tried = candidates(choice.own, &choice.project, &choice.component);
    for &port in &tried {
        if let Some(listener) = try_bind(choice.address, port)? {
            return Ok(listener);
        }
    }
    Err(PortError::NoneFree {
        address: choice.address,
        component: choice.component.clone(),
        tried,
    })
}

/// `None` when the port is taken (or reserved to root); other failures
/// mean the address itself is unusable.
fn try_bind(address: IpAddr, port: u16) -> Result<Option<TcpListener>, PortError> {
    match TcpListener::bind(SocketAddr::new(address, port)) {
        Ok(listener) => Ok(Some(listener)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(PortError::Listen { address, source }),
    }
}

/// The socket inodes listening on `port` in one /proc/net/tcp{,6} table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let matches =
                u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN;
            matches.then(|| fields.get(9)?.parse().ok()).flatten()
        })
        .collect()
}

/// Which process listens on `port`, when /proc lets us see it (Linux, and
/// the same user or root); `None` elsewhere.
pub fn holder(port: u16) -> Option<Holder> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    if wanted.is_empty() {
        return None;
    }
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let holds = std::fs::read_dir(entry.path().join("fd"))
                .ok()?
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|link| wanted.iter().any(|w| link.as_os_str() == w.as_str()));
            holds.then(|| Holder {
                pid,
                command: std::fs::read_to_string(entry.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_else(|_| "?".into()),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Hinted as _;

    #[test]
    fn the_derived_port_is_stable_in_range_and_differs_by_component() {
        let api = derived("shop", "backend");
        assert_eq!(api, derived("shop", "backend"));
        assert!(DERIVED_RANGE.contains(&api));
        assert_ne!(api, derived("shop", "frontend"));
        assert_ne!(api, derived("blog", "backend"));
    }

    #[test]
    fn candidates_are_own_then_derived_then_the_next_ones_wrapping() {
        let c = candidates(8000, "shop", "backend");
        let d = derived("shop", "backend");
        assert_eq!(c[..2], [8000, d]);
        assert_eq!(c.len(), 2 + usize::from(NEXT_TRIES));
        assert!(c[1..].iter().all(|p| DERIVED_RANGE.contains(p)));
        for pair in c[1..].windows(2) {
            assert!(pair[1] == pair[0] + 1 || (pair[0], pair[1]) == (32767, 20000));
        }
        assert_eq!(candidates(0, "shop", "backend"), c[1..]);
    }

    /// A listener holding a loopback port, and that port.
    fn taken() -> (TcpListener, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    fn on_loopback(pinned: Option<u16>, own: u16, component: String) -> PortChoice {
        PortChoice {
            address: "127.0.0.1".parse().unwrap(),
            pinned,
            own,
            project: "port-tests".into(),
            component,
        }
    }

    #[test]
    fn a_taken_own_port_falls_back_to_the_derived_one() {
        let (_held, own) = taken();
        let choice = on_loopback(None, own, format!("c{own}"));
        let listener = bind(&choice).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_ne!(port, own);
        assert!(candidates(own, &choice.project, &choice.component)[1..].contains(&port));
    }

    #[test]
    fn the_listen_table_is_read_by_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(listening_inodes(table, 8080), [4242]);
        assert_eq!(listening_inodes(table, 80), [99]);
        assert_eq!(listening_inodes(table, 81), Vec::<u64>::new());
    }

    #[test]
    fn a_pinned_taken_port_names_this_process_as_its_holder() {
        let (_held, port) = taken();
        let choice = on_loopback(Some(port), 8000, "backend".into());
        let err = bind(&choice).unwrap_err();
        let holder = holder(port).expect("this process is visible in /proc");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(
            err.to_string(),
            format!("local port {port} on 127.0.0.1 (devPort of backend) is taken by {holder}")
        );
        assert_eq!(
            err.hint().unwrap(),
            format!(
                "stop it (kill {}), or remove devPort from backend in todo.yaml to get a free port",
                holder.pid
            )
        );
    }
}
