//! Response types of the Cluster API.

use etcdv3_proto::etcdserverpb as pb;

use crate::kv::{ResponseHeader, header};

/// One member of the cluster, as etcd describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Member {
    id: u64,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    is_learner: bool,
}

impl Member {
    /// The member's raft ID (shown in hex by `etcdctl member list`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its name (`--name`); empty until the member has started and published it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URLs other members reach it on.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }

    /// The URLs it serves clients on (`--advertise-client-urls`); empty until the member has
    /// started and published them.
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }

    /// Whether it is a learner: a non-voting member that serves only serializable reads and
    /// `Status`.
    pub fn is_learner(&self) -> bool {
        self.is_learner
    }

    /// Whether it has started: etcd knows its name only once it has joined and published it.
    pub fn is_started(&self) -> bool {
        !self.name.is_empty()
    }
}

impl From<pb::Member> for Member {
    fn from(m: pb::Member) -> Self {
        Member {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_ur_ls,
            client_urls: m.client_ur_ls,
            is_learner: m.is_learner,
        }
    }
}

fn members(ms: Vec<pb::Member>) -> Vec<Member> {
    ms.into_iter().map(Member::from).collect()
}

/// Finds a member by ID in a list of members.
fn find(members: &[Member], id: u64) -> Option<&Member> {
    members.iter().find(|m| m.id == id)
}

macro_rules! membership_response {
    ($(#[$doc:meta])* $name:ident, $members_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            header: ResponseHeader,
            members: Vec<Member>,
        }

        impl $name {
            /// The response header: cluster ID, the answering member's ID and the raft term
            /// (its revision is 0: membership is not in the key-value store).
            pub fn header(&self) -> &ResponseHeader {
                &self.header
            }

            #[doc = $members_doc]
            pub fn members(&self) -> &[Member] {
                &self.members
            }

            /// The member with this ID, if it is in [`members`](Self::members).
            pub fn member(&self, id: u64) -> Option<&Member> {
                find(&self.members, id)
            }
        }

        impl From<pb::$name> for $name {
            fn from(r: pb::$name) -> Self {
                $name {
                    header: header(r.header),
                    members: members(r.members),
                }
            }
        }
    };
}

membership_response!(
    /// The members of the cluster: the answer to
    /// [`member_list`](crate::ClusterClient::member_list).
    MemberListResponse,
    "Every member, learners included, in etcd's order."
);
membership_response!(
    /// The answer to [`member_remove`](crate::ClusterClient::member_remove).
    MemberRemoveResponse,
    "The membership after the removal."
);
membership_response!(
    /// The answer to [`member_update`](crate::ClusterClient::member_update).
    MemberUpdateResponse,
    "The membership after the update."
);
membership_response!(
    /// The answer to [`member_promote`](crate::ClusterClient::member_promote).
    MemberPromoteResponse,
    "The membership after the promotion."
);

/// The answer to [`member_add`](crate::ClusterClient::member_add) and
/// [`member_add_as_learner`](crate::ClusterClient::member_add_as_learner).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberAddResponse {
    header: ResponseHeader,
    member: Member,
    members: Vec<Member>,
}

impl MemberAddResponse {
    /// The response header: cluster ID, the answering member's ID and the raft term.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The new member: its ID, its peer URLs (as etcd normalised them: sorted) and whether it
    /// is a learner. Its name and client URLs stay empty until it starts.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The membership after the addition, the new member included.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The `--initial-cluster` value the new member starts with (with
    /// `--initial-cluster-state=existing`), as `etcdctl member add` prints it: `name=peer-url`
    /// for every peer URL of every member, the new one named `name`. Members that have not
    /// started yet appear with an empty name.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let added = client.cluster().member_add(["http://10.0.0.4:2380"]).await?;
    /// println!(
    ///     "etcd --name=node4 --initial-cluster-state=existing --initial-cluster={}",
    ///     added.initial_cluster("node4")
    /// );
    /// # Ok(()) }
    /// ```
    pub fn initial_cluster(&self, name: &str) -> String {
        let mut entries = Vec::new();
        for m in &self.members {
            let n = if m.id == self.member.id {
                name
            } else {
                &m.name
            };
            for url in &m.peer_urls {
                entries.push(format!("{n}={url}"));
            }
        }
        entries.join(",")
    }

    pub(crate) fn new(
        header: ResponseHeader,
        member: Member,
        members: Vec<pb::Member>,
    ) -> MemberAddResponse {
        MemberAddResponse {
            header,
            member,
            members: self::members(members),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb_member(id: u64, name: &str, peers: &[&str], learner: bool) -> pb::Member {
        pb::Member {
            id,
            name: name.to_owned(),
            peer_ur_ls: peers.iter().map(|s| (*s).to_owned()).collect(),
            client_ur_ls: if name.is_empty() {
                Vec::new()
            } else {
                vec![format!("http://{name}:2379")]
            },
            is_learner: learner,
        }
    }

    #[test]
    fn members_keep_every_field() {
        let m = Member::from(pb_member(
            0xabc,
            "m0",
            &["http://a:2380", "http://b:2380"],
            true,
        ));
        assert_eq!(m.id(), 0xabc);
        assert_eq!(m.name(), "m0");
        assert_eq!(m.peer_urls(), ["http://a:2380", "http://b:2380"]);
        assert_eq!(m.client_urls(), ["http://m0:2379"]);
        assert!(m.is_learner());
        assert!(m.is_started());
        assert!(!Member::from(pb_member(1, "", &["http://c:1"], false)).is_started());

        let list = MemberListResponse::from(pb::MemberListResponse {
            header: Some(pb::ResponseHeader {
                cluster_id: 5,
                member_id: 6,
                revision: 0,
                raft_term: 7,
            }),
            members: vec![
                pb_member(1, "m0", &["http://a:1"], false),
                pb_member(2, "m1", &["http://b:1"], false),
            ],
        });
        assert_eq!(list.header().cluster_id(), 5);
        assert_eq!(list.header().member_id(), 6);
        assert_eq!(list.header().raft_term(), 7);
        assert_eq!(list.members().len(), 2);
        assert_eq!(list.member(2).map(Member::name), Some("m1"));
        assert!(list.member(3).is_none());
    }

    #[test]
    fn initial_cluster_names_the_new_member() {
        let added = MemberAddResponse::new(
            ResponseHeader::default(),
            Member::from(pb_member(9, "", &["http://n:3"], true)),
            vec![
                pb_member(1, "m0", &["http://a:1", "http://a2:1"], false),
                pb_member(8, "", &["http://x:2"], false),
                pb_member(9, "", &["http://n:3"], true),
            ],
        );
        assert_eq!(
            added.initial_cluster("m3"),
            "m0=http://a:1,m0=http://a2:1,=http://x:2,m3=http://n:3"
        );
        assert!(added.member().is_learner());
        assert_eq!(added.members().len(), 3);
    }
}
