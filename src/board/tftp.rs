//! The TFTP server a board run starts: `async-tftp` (a maintained async TFTP server with
//! `blksize`/`windowsize` negotiation) serving one directory read-only, the one this run staged
//! its files in, bound to the address of the `[net] interface` the board is wired to, on port
//! 69 (U-Boot's `tftpboot` talks to no other port). It stops when the boot ends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::error::Error;

/// TFTP's well-known port.
pub const TFTP_PORT: u16 = 69;

/// A running server; stopped by [`TftpServer::stop`] (or when dropped).
pub struct TftpServer {
    task: tokio::task::JoinHandle<()>,
    pub addr: SocketAddr,
}

impl TftpServer {
    /// Serves `root` (read-only; `..` refused) on `ip:port`.
    pub async fn start(root: &Path, ip: Ipv4Addr, port: u16) -> Result<TftpServer, Error> {
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        let fail = |e: &dyn std::fmt::Display| {
            let mut err = Error::infra(format!("cannot start the TFTP server on {addr}: {e}"));
            if port < 1024 {
                err = err.help(
                    "port 69 needs root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep \
                     on qemu-test), or set [net] tftp_dir to use the host's TFTP server",
                );
            }
            err
        };
        let server = async_tftp::server::TftpServerBuilder::with_dir_ro(root)
            .map_err(|e| fail(&e))?
            .bind(addr)
            .build()
            .await
            .map_err(|e| fail(&e))?;
        let addr = server.listen_addr().map_err(|e| fail(&e))?;
        let task = tokio::spawn(async move {
            // Ends only on a socket error; the boot then fails on the load's own deadline.
            let _ = server.serve().await;
        });
        Ok(TftpServer { task, addr })
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The IPv4 address of host interface `name` (`[net] interface`), where the server listens and
/// what U-Boot's `serverip` becomes.
pub fn interface_addr(name: &str) -> Result<Ipv4Addr, Error> {
    let all = if_addrs::get_if_addrs()
        .map_err(|e| Error::infra(format!("cannot list the network interfaces: {e}")))?;
    let found = all.iter().find_map(|i| match i.ip() {
        IpAddr::V4(ip) if i.name == name => Some(ip),
        _ => None,
    });
    found.ok_or_else(|| {
        let mut names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        Error::infra(format!(
            "the network interface {name} ([net] interface) has no IPv4 address here"
        ))
        .help(format!(
            "name the interface wired to the board; this host has: {}",
            names.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_interface_has_its_address_and_a_missing_one_is_named() {
        assert_eq!(interface_addr("lo").unwrap(), Ipv4Addr::LOCALHOST);
        let e = interface_addr("nosuch0").unwrap_err();
        assert!(e.message.contains("nosuch0"), "{e}");
        assert!(e.help.as_deref().unwrap_or("").contains("lo"), "{e:?}");
    }
}
