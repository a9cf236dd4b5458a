//! The requests of the Cluster API, as values, and the peer URL check they share.

use etcdv3_proto::etcdserverpb as pb;

use crate::error::{Error, Result};
use crate::transport::endpoint::split_host_port;

/// A member list: linearizable (the default) or serializable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemberListOp {
    serializable: bool,
}

impl MemberListOp {
    /// A linearizable member list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers from the member's own view of the membership, without a round through the
    /// leader (Go's `WithSerializable()`). It is cheaper, works without a leader, and may
    /// miss a change that was just committed. Servers older than 3.5 always answer this way.
    pub fn serializable(mut self) -> Self {
        self.serializable = true;
        self
    }

    /// Whether the list is serializable.
    pub fn is_serializable(&self) -> bool {
        self.serializable
    }

    pub(crate) fn into_proto(self) -> pb::MemberListRequest {
        pb::MemberListRequest {
            linearizable: !self.serializable,
        }
    }
}

/// Adding a member: its peer URLs, and whether it joins as a learner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberAddOp {
    peer_urls: Vec<String>,
    learner: bool,
}

impl MemberAddOp {
    /// Adds a voting member reached at `peer_urls`.
    pub fn new<S: Into<String>>(peer_urls: impl IntoIterator<Item = S>) -> Self {
        MemberAddOp {
            peer_urls: peer_urls.into_iter().map(Into::into).collect(),
            learner: false,
        }
    }

    /// Adds it as a learner: a non-voting member that receives the log and can be promoted
    /// once it has caught up.
    pub fn as_learner(mut self) -> Self {
        self.learner = true;
        self
    }

    /// The peer URLs, as given.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }

    /// Whether the member joins as a learner.
    pub fn is_learner(&self) -> bool {
        self.learner
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_peer_urls(&self.peer_urls, "member add")
    }

    pub(crate) fn into_proto(self) -> pb::MemberAddRequest {
        pb::MemberAddRequest {
            peer_ur_ls: trimmed(self.peer_urls),
            is_learner: self.learner,
        }
    }
}

/// Removing a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberRemoveOp {
    id: u64,
}

impl MemberRemoveOp {
    /// Removes member `id`.
    pub fn new(id: u64) -> Self {
        MemberRemoveOp { id }
    }

    /// The member.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn into_proto(self) -> pb::MemberRemoveRequest {
        pb::MemberRemoveRequest { id: self.id }
    }
}

/// Changing a member's peer URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberUpdateOp {
    id: u64,
    peer_urls: Vec<String>,
}

impl MemberUpdateOp {
    /// Gives member `id` these peer URLs (they replace the old ones).
    pub fn new<S: Into<String>>(id: u64, peer_urls: impl IntoIterator<Item = S>) -> Self {
        MemberUpdateOp {
            id,
            peer_urls: peer_urls.into_iter().map(Into::into).collect(),
        }
    }

    /// The member.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The new peer URLs, as given.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_peer_urls(&self.peer_urls, "member update")
    }

    pub(crate) fn into_proto(self) -> pb::MemberUpdateRequest {
        pb::MemberUpdateRequest {
            id: self.id,
            peer_ur_ls: trimmed(self.peer_urls),
        }
    }
}

/// Promoting a learner to a voting member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberPromoteOp {
    id: u64,
}

impl MemberPromoteOp {
    /// Promotes learner `id`.
    pub fn new(id: u64) -> Self {
        MemberPromoteOp { id }
    }

    /// The learner.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn into_proto(self) -> pb::MemberPromoteRequest {
        pb::MemberPromoteRequest { id: self.id }
    }
}

fn trimmed(urls: Vec<String>) -> Vec<String> {
    urls.into_iter()
        .map(|u| {
            let t = u.trim();
            if t.len() == u.len() { u } else { t.to_owned() }
        })
        .collect()
}

/// Checks peer URLs the way etcd will (Go's `types.NewURLs`, which the server runs too),
/// plus a host for unix URLs and no user, query or fragment: at least one URL; each
/// `http://host:port` or `https://host:port` (port 1 to 65535), or `unix://name` or
/// `unixs://name`; no path, not even `/`. Surrounding whitespace is ignored.
pub(crate) fn check_peer_urls(urls: &[String], what: &str) -> Result<()> {
    if urls.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: no peer URL given (give at least one, e.g. http://10.0.0.4:2380)"
        )));
    }
    for url in urls {
        if let Err(why) = check_peer_url(url.trim()) {
            return Err(Error::invalid(format!(
                "{what}: invalid peer URL {url:?}: {why}"
            )));
        }
    }
    Ok(())
}

fn check_peer_url(url: &str) -> std::result::Result<(), String> {
    if url.is_empty() {
        return Err("it is empty".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "no scheme (write it as http://{url}, https://, unix:// or unixs://)"
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let tcp = match scheme.as_str() {
        "http" | "https" => true,
        "unix" | "unixs" => false,
        "" => return Err("no scheme before :// (use http, https, unix or unixs)".into()),
        other => {
            return Err(format!(
                "unsupported scheme {other:?} (use http, https, unix or unixs)"
            ));
        }
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() {
        return Err(if tcp {
            "no host (write host:port)".into()
        } else {
            format!("no socket name after {scheme}:// (write {scheme}://name)")
        });
    }
    match tail.chars().next() {
        None => {}
        Some('/') => {
            return Err(format!(
                "a peer URL has no path, not even \"/\" (write {scheme}://{authority})"
            ));
        }
        Some('?') => return Err("a peer URL has no query".into()),
        Some(_) => return Err("a peer URL has no fragment".into()),
    }
    if authority.contains('@') {
        return Err("a peer URL has no user or password".into());
    }
    if !tcp {
        return Ok(());
    }
    let Some((host, port)) = split_host_port(authority) else {
        return Err("no port (write host:port, e.g. 10.0.0.4:2380)".into());
    };
    if host.is_empty() || host == "[]" {
        return Err("no host before the port".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<()> {
        check_peer_urls(&[url.to_owned()], "member add")
    }

    #[test]
    fn good_peer_urls_pass() {
        for url in [
            "http://127.0.0.1:2380",
            "https://etcd-3.example.com:12380",
            "HTTP://10.0.0.1:1",
            "http://[::1]:2380",
            "http://[fe80::1%25eth0]:2380",
            "  http://127.0.0.1:2380\n",
            "unix://m3.sock:0",
            "unixs://peer",
        ] {
            check(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        let several = ["http://a:1".to_owned(), "https://b:2".to_owned()];
        check_peer_urls(&several, "member update").unwrap();
    }

    #[test]
    fn bad_peer_urls_say_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("://127.0.0.1:2379", "no scheme before"),
            ("mailto://127.0.0.1:2379", "unsupported scheme"),
            ("ftp://127.0.0.1:2379", "unsupported scheme"),
            ("http://127.0.0.1", "no port"),
            ("http://[::1]", "no port"),
            ("http://::1:2380", "no port"),
            ("http://127.0.0.1:2379/path", "no path"),
            ("http://127.0.0.1:2379/", "not even"),
            ("http://127.0.0.1:2379?x=1", "no query"),
            ("http://127.0.0.1:2379#f", "no fragment"),
            ("127.0.0.1:1234", "no scheme"),
            ("localhost:1234", "no scheme"),
            ("http://:2380", "no host"),
            ("http://[]:2380", "no host"),
            ("http://", "no host"),
            ("unix://", "no socket name"),
            ("unix:///var/run/etcd.sock", "no socket name"),
            ("unix://m0.sock/x", "no path"),
            ("http://h:0", "from 1 to 65535"),
            ("http://h:65536", "from 1 to 65535"),
            ("http://h:+80", "from 1 to 65535"),
            ("http://h:port", "from 1 to 65535"),
            ("http://user:pw@h:2380", "no user"),
        ];
        for (url, why) in cases {
            let err = check(url).expect_err(url);
            assert!(err.is_invalid_request(), "{url}: {err:?}");
            let text = err.to_string();
            assert!(text.contains(why), "{url}: {text}");
            assert!(text.contains("member add"), "{url}: {text}");
        }
        let none: [String; 0] = [];
        let err = check_peer_urls(&none, "member update").unwrap_err();
        assert!(err.is_invalid_request());
        assert!(err.to_string().contains("no peer URL"), "{err}");
        // One bad URL among good ones fails the whole request.
        let mixed = ["http://a:1".to_owned(), "http://b".to_owned()];
        assert!(check_peer_urls(&mixed, "member add").is_err());
    }

    #[test]
    fn requests_carry_what_was_built() {
        assert!(MemberListOp::new().into_proto().linearizable);
        assert!(!MemberListOp::new().serializable().into_proto().linearizable);

        let add = MemberAddOp::new([" http://a:1 ", "http://b:2"]);
        assert!(!add.is_learner());
        let req = add.clone().as_learner().into_proto();
        assert!(req.is_learner);
        assert_eq!(req.peer_ur_ls, ["http://a:1", "http://b:2"]);
        assert!(!add.into_proto().is_learner);

        let update = MemberUpdateOp::new(7, ["http://c:3"]).into_proto();
        assert_eq!(
            (update.id, update.peer_ur_ls),
            (7, vec!["http://c:3".to_owned()])
        );
        assert_eq!(MemberRemoveOp::new(9).into_proto().id, 9);
        assert_eq!(MemberPromoteOp::new(11).into_proto().id, 11);
    }
}
