//! Endpoint strings in every form the Go client accepts.

use std::fmt;

use crate::error::{Error, Result};

/// How an endpoint is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// `host:port` over TCP.
    Tcp(String),
    /// A unix domain socket path.
    Unix(String),
}

/// Whether an endpoint uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// `http://` or `unix://`: plaintext, even when TLS is configured.
    Plain,
    /// `https://` or `unixs://`: TLS, with default settings when none is configured.
    Tls,
    /// No scheme: TLS exactly when the client has a TLS configuration.
    FromConfig,
}

/// One parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The string the user gave, used in messages.
    pub(crate) original: String,
    pub(crate) address: Address,
    pub(crate) security: Security,
    /// The name the server certificate must carry.
    pub(crate) server_name: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Endpoint {
    /// Parses `host:port`, `http://host:port`, `https://host:port`, `unix:path`,
    /// `unix://path`, `unixs:path` or `unixs://path`.
    pub(crate) fn parse(s: &str) -> Result<Endpoint> {
        let bad = |why: &str| {
            Error::config(format!(
                "invalid endpoint {s:?}: {why} (expected host:port, http://host:port, \
                 https://host:port or unix:///path)"
            ))
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        for (scheme, security) in [("unixs", Security::Tls), ("unix", Security::Plain)] {
            if let Some(rest) = trimmed
                .strip_prefix(scheme)
                .and_then(|r| r.strip_prefix(':'))
            {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(bad("no socket path"));
                }
                let server_name = path.rsplit('/').next().unwrap_or(path).to_owned();
                return Ok(Endpoint {
                    original: s.to_owned(),
                    address: Address::Unix(path.to_owned()),
                    security,
                    server_name,
                });
            }
        }
        let (security, hostport) = if let Some(rest) = trimmed.strip_prefix("http://") {
            (Security::Plain, rest)
        } else if let Some(rest) = trimmed.strip_prefix("https://") {
            (Security::Tls, rest)
        } else if trimmed.contains("://") {
            return Err(bad("unsupported scheme"));
        } else {
            (Security::FromConfig, trimmed)
        };
        let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
        if hostport.contains('/') {
            return Err(bad("a path is not allowed"));
        }
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("missing port"))?;
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad("port must be a number from 1 to 65535")),
        }
        let server_name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Endpoint {
            original: s.to_owned(),
            address: Address::Tcp(hostport.to_owned()),
            security,
            server_name,
        })
    }

    /// Whether this endpoint uses TLS, given whether the client has a TLS configuration.
    pub(crate) fn uses_tls(&self, tls_configured: bool) -> bool {
        match self.security {
            Security::Plain => false,
            Security::Tls => true,
            Security::FromConfig => tls_configured,
        }
    }
}

/// `host:port` or `[v6]:port` split into host (brackets kept) and port; `None` when there is
/// no port.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let port = rest[close + 1..].strip_prefix(':')?;
        return Some((&s[..close + 2], port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> (Address, Security, String) {
        let e = Endpoint::parse(s).unwrap();
        (e.address, e.security, e.server_name)
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            tcp("127.0.0.1:2379"),
            (
                Address::Tcp("127.0.0.1:2379".into()),
                Security::FromConfig,
                "127.0.0.1".into()
            )
        );
        assert_eq!(
            tcp("http://localhost:2379"),
            (
                Address::Tcp("localhost:2379".into()),
                Security::Plain,
                "localhost".into()
            )
        );
        assert_eq!(
            tcp("https://etcd.example:2379/"),
            (
                Address::Tcp("etcd.example:2379".into()),
                Security::Tls,
                "etcd.example".into()
            )
        );
        assert_eq!(
            tcp("[::1]:2379"),
            (
                Address::Tcp("[::1]:2379".into()),
                Security::FromConfig,
                "::1".into()
            )
        );
    }

    #[test]
    fn unix_forms() {
        let e = Endpoint::parse("unix:///tmp/etcd.sock").unwrap();
        assert_eq!(e.address, Address::Unix("/tmp/etcd.sock".into()));
        assert_eq!(
            (e.security, e.server_name.as_str()),
            (Security::Plain, "etcd.sock")
        );
        let e = Endpoint::parse("unixs:rel/etcd.sock").unwrap();
        assert_eq!(e.address, Address::Unix("rel/etcd.sock".into()));
        assert_eq!(e.security, Security::Tls);
        let e = Endpoint::parse("unix://local.sock").unwrap();
        assert_eq!(e.address, Address::Unix("local.sock".into()));
    }

    #[test]
    fn tls_selection() {
        let plain = Endpoint::parse("http://a:1").unwrap();
        let tls = Endpoint::parse("https://a:1").unwrap();
        let bare = Endpoint::parse("a:1").unwrap();
        assert!(!plain.uses_tls(true));
        assert!(tls.uses_tls(false));
        assert!(bare.uses_tls(true) && !bare.uses_tls(false));
    }

    #[test]
    fn bad_endpoints_are_config_errors() {
        for s in [
            "",
            "   ",
            "localhost",
            "http://localhost",
            "localhost:0",
            "localhost:99999",
            "localhost:abc",
            "ftp://a:1",
            "http://a:1/path",
            ":2379",
            "unix:",
            "::1:2379",
        ] {
            let err = Endpoint::parse(s).unwrap_err();
            assert!(err.is_config(), "{s:?}: {err}");
            assert!(err.to_string().contains("invalid endpoint"), "{err}");
        }
    }
}
