//! `[host_http_server]` of tgoskits' QEMU configs: a small HTTP server on the host that the
//! guest's tests fetch from (through QEMU's user network, `10.0.2.2:<port>`), started for the
//! case and stopped after it. Keys as axbuild reads them: `bind` (default `127.0.0.1`), `port`,
//! `body` (the response text, default axbuild's `ArceOS local HTTP fixture\n`), or `body_size`
//! bytes of `body_byte` (default `b'a'`), or `dir` (files served by path); `bind` is an IP
//! address or `localhost` (127.0.0.1). Ours: `allow_non_loopback = true` is needed for a `bind` outside
//! loopback — a CI runner must not serve to its network by accident.

use std::net::IpAddr;
use std::path::PathBuf;

use toml_edit::Item;

use crate::config::field::TomlReader;
use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// axbuild's answer when the table names no body (`default_host_http_body`).
pub const DEFAULT_BODY: &str = "ArceOS local HTTP fixture\n";
/// axbuild's `body_byte` default (`default_host_http_body_byte`).
pub const DEFAULT_BODY_BYTE: u8 = b'a';

/// Largest generated body (`body_size`): big enough for throughput tests, bounded.
pub const MAX_BODY_SIZE: u64 = 1 << 30;

/// What the server answers every request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpBody {
    /// `body = "..."` (default [`DEFAULT_BODY`]).
    Text(String),
    /// `body_size` bytes, each `body_byte`.
    Generated { size: u64, byte: u8 },
    /// `dir = "..."`: the file named by the request path, under this directory only.
    Dir(PathBuf),
}

/// A parsed `[host_http_server]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHttpSpec {
    pub bind: IpAddr,
    pub port: u16,
    pub body: HttpBody,
    /// Where the table is, for messages.
    pub location: Location,
}

/// The table's keys (also how a top-level `port` is recognised as belonging here).
pub(crate) const KEYS: &[&str] = &[
    "bind",
    "port",
    "body",
    "body_size",
    "body_byte",
    "dir",
    "allow_non_loopback",
];

impl HostHttpSpec {
    /// Reads the table; a bind address outside loopback is refused unless
    /// `allow_non_loopback = true`.
    pub fn read(item: &Item, src: &SourceText) -> Result<HostHttpSpec, Error> {
        let r = TomlReader { src };
        let location = r.at(item);
        let Some(t) = item.as_table_like() else {
            return Err(r.wrong(
                location,
                "host_http_server",
                "a table",
                "`[host_http_server]` with `port = 18281`",
            ));
        };
        r.only(t, KEYS, "[host_http_server]")?;
        let port_item = r.required(t, "port", "[host_http_server]", &location)?;
        let port = r.integer(port_item, "port", 0, 65535)? as u16;
        let (bind, bind_at) = match t.get("bind") {
            Some(i) => {
                let text = r.string(i, "bind")?;
                // axbuild binds `<bind>:<port>` through the resolver; of host names only
                // `localhost` is taken here, as loopback, so no lookup decides the address.
                let ip = match text.as_str() {
                    "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
                    _ => text.parse::<IpAddr>(),
                }
                .map_err(|_| {
                    Error::config(format!(
                        "`bind` must be an IP address or `localhost`; found '{text}'"
                    ))
                    .at(r.at(i))
                    .help("write `bind = \"127.0.0.1\"` (another host name is not accepted)")
                })?;
                (ip, r.at(i))
            }
            None => (IpAddr::from([127, 0, 0, 1]), location.clone()),
        };
        let allow = match t.get("allow_non_loopback") {
            Some(i) => r.boolean(i, "allow_non_loopback")?,
            None => false,
        };
        if !bind.is_loopback() && !allow {
            return Err(Error::config(format!(
                "`bind = \"{bind}\"` would serve the host HTTP server beyond this machine"
            ))
            .at(bind_at)
            .help(
                "use `bind = \"127.0.0.1\"` (QEMU's user network reaches it as 10.0.2.2), or add \
                 `allow_non_loopback = true` if the guest really needs another address",
            ));
        }
        let body = match (t.get("body"), t.get("body_size"), t.get("dir")) {
            (_, _, Some(d)) => HttpBody::Dir(PathBuf::from(r.string(d, "dir")?)),
            (_, Some(size), None) => HttpBody::Generated {
                size: r.integer(size, "body_size", 0, MAX_BODY_SIZE as i64)? as u64,
                byte: match t.get("body_byte") {
                    Some(b) => r.integer(b, "body_byte", 0, 255)? as u8,
                    None => DEFAULT_BODY_BYTE,
                },
            },
            (Some(b), None, None) => HttpBody::Text(r.string(b, "body")?),
            (None, None, None) => HttpBody::Text(DEFAULT_BODY.to_string()),
        };
        Ok(HostHttpSpec {
            bind,
            port,
            body,
            location,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn read(text: &str) -> Result<HostHttpSpec, Error> {
        let src = SourceText::new(Path::new("q.toml"), text.to_string());
        let doc = toml_edit::Document::parse(text.to_string()).unwrap();
        HostHttpSpec::read(doc.get("host_http_server").unwrap(), &src)
    }

    #[test]
    fn reads_axbuild_keys_with_defaults() {
        let s = read("[host_http_server]\nport = 18281\nbody = \"hi\\n\"\n").unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1");
        assert_eq!((s.port, s.body), (18281, HttpBody::Text("hi\n".into())));
        // axbuild's defaults: its fixture text, `a` bytes, and `localhost` as loopback.
        let s = read("[host_http_server]\nbind = \"localhost\"\nport = 1\n").unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1");
        assert_eq!(s.body, HttpBody::Text("ArceOS local HTTP fixture\n".into()));
        let s = read("[host_http_server]\nport = 1\nbody_size = 3\n").unwrap();
        assert_eq!(
            s.body,
            HttpBody::Generated {
                size: 3,
                byte: b'a'
            }
        );
        let s = read(
            "[host_http_server]\nbind = \"::1\"\nport = 1\nbody_size = 4096\nbody_byte = 90\n",
        )
        .unwrap();
        assert_eq!(
            s.body,
            HttpBody::Generated {
                size: 4096,
                byte: 90
            }
        );
    }

    #[test]
    fn refuses_a_non_loopback_bind_unless_allowed() {
        let e = read("[host_http_server]\nbind = \"0.0.0.0\"\nport = 80\n").unwrap_err();
        assert_eq!(
            e.message,
            "`bind = \"0.0.0.0\"` would serve the host HTTP server beyond this machine"
        );
        assert_eq!(e.location.unwrap().line, 2);
        let s =
            read("[host_http_server]\nbind = \"0.0.0.0\"\nport = 80\nallow_non_loopback = true\n")
                .unwrap();
        assert!(!s.bind.is_loopback());
    }

    #[test]
    fn mistakes_are_located() {
        let e = read("[host_http_server]\nport = 80\nbody_sise = 3\n").unwrap_err();
        assert!(e.message.contains("did you mean `body_size`"), "{e}");
        let e = read("[host_http_server]\nbind = \"example.org\"\nport = 80\n").unwrap_err();
        assert!(
            e.message.contains("must be an IP address or `localhost`"),
            "{e}"
        );
        let e = read("[host_http_server]\nbody = \"x\"\n").unwrap_err();
        assert!(e.message.contains("needs `port`"), "{e}");
        let e = read("[host_http_server]\nport = 70000\n").unwrap_err();
        assert!(e.message.contains("from 0 to 65535"), "{e}");
    }
}
