//! Every RPC the client sends, one row each: its gRPC path, its retry class and whether it may
//! block. Adding an RPC is one row here plus the method that sends it.

/// Whether an RPC may run twice without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryClass {
    /// Reads and idempotent requests: retried on any availability failure.
    Repeatable,
    /// Writes: retried only when the request provably did not reach the server or was refused
    /// before being applied.
    AtMostOnce,
}

/// Whether an RPC's answer may take as long as it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Answered at once; a timeout means the endpoint is slow.
    Prompt,
    /// Waits by design (a lock, an election, a stream): no deadline unless the call sets one,
    /// and running out of time says nothing about the endpoint.
    MayBlock,
}

macro_rules! rpcs {
    ($( $(#[$doc:meta])* $name:ident = ($path:literal, $class:ident, $wait:ident), )*) => {
        /// Every RPC the client sends.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(dead_code)]
        pub(crate) enum Rpc {
            $( $(#[$doc])* $name, )*
        }

        impl Rpc {
            /// Every row, for tests.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Rpc] = &[$(Rpc::$name,)*];

            /// The gRPC method path.
            pub(crate) const fn path(self) -> &'static str {
                match self { $( Rpc::$name => $path, )* }
            }

            /// Whether the RPC may be retried after it may have reached the server.
            pub(crate) const fn class(self) -> RetryClass {
                match self { $( Rpc::$name => RetryClass::$class, )* }
            }

            /// Whether the RPC waits by design.
            pub(crate) const fn wait(self) -> Wait {
                match self { $( Rpc::$name => Wait::$wait, )* }
            }
        }
    };
}

rpcs! {
    Range = ("/etcdserverpb.KV/Range", Repeatable, Prompt),
    Put = ("/etcdserverpb.KV/Put", AtMostOnce, Prompt),
    DeleteRange = ("/etcdserverpb.KV/DeleteRange", AtMostOnce, Prompt),
    /// A transaction with a write in it.
    Txn = ("/etcdserverpb.KV/Txn", AtMostOnce, Prompt),
    /// A transaction made only of reads (Go never retries any transaction; a read-only one is
    /// safe to).
    TxnReadOnly = ("/etcdserverpb.KV/Txn", Repeatable, Prompt),
    Compact = ("/etcdserverpb.KV/Compact", AtMostOnce, Prompt),
    Watch = ("/etcdserverpb.Watch/Watch", Repeatable, MayBlock),
    LeaseGrant = ("/etcdserverpb.Lease/LeaseGrant", Repeatable, Prompt),
    /// A grant with a chosen lease ID: a retry of an applied one would answer `LeaseExist`.
    LeaseGrantWithId = ("/etcdserverpb.Lease/LeaseGrant", AtMostOnce, Prompt),
    LeaseRevoke = ("/etcdserverpb.Lease/LeaseRevoke", Repeatable, Prompt),
    LeaseKeepAlive = ("/etcdserverpb.Lease/LeaseKeepAlive", Repeatable, MayBlock),
    /// One renewal on a stream of its own, which ends with its one request: answered at once,
    /// so it has the client's deadline.
    LeaseKeepAliveOnce = ("/etcdserverpb.Lease/LeaseKeepAlive", Repeatable, Prompt),
    LeaseTimeToLive = ("/etcdserverpb.Lease/LeaseTimeToLive", Repeatable, Prompt),
    LeaseLeases = ("/etcdserverpb.Lease/LeaseLeases", Repeatable, Prompt),
    MemberAdd = ("/etcdserverpb.Cluster/MemberAdd", AtMostOnce, Prompt),
    MemberRemove = ("/etcdserverpb.Cluster/MemberRemove", AtMostOnce, Prompt),
    MemberUpdate = ("/etcdserverpb.Cluster/MemberUpdate", AtMostOnce, Prompt),
    MemberList = ("/etcdserverpb.Cluster/MemberList", Repeatable, Prompt),
    MemberPromote = ("/etcdserverpb.Cluster/MemberPromote", AtMostOnce, Prompt),
    Alarm = ("/etcdserverpb.Maintenance/Alarm", Repeatable, Prompt),
    Status = ("/etcdserverpb.Maintenance/Status", Repeatable, Prompt),
    Defragment = ("/etcdserverpb.Maintenance/Defragment", AtMostOnce, Prompt),
    Hash = ("/etcdserverpb.Maintenance/Hash", Repeatable, Prompt),
    HashKv = ("/etcdserverpb.Maintenance/HashKV", Repeatable, Prompt),
    /// etcd answers at once; only the transfer after the first message takes long, and
    /// `MaintenanceClient::snapshot` bounds that by the call's own deadline alone.
    Snapshot = ("/etcdserverpb.Maintenance/Snapshot", Repeatable, Prompt),
    MoveLeader = ("/etcdserverpb.Maintenance/MoveLeader", Repeatable, Prompt),
    Downgrade = ("/etcdserverpb.Maintenance/Downgrade", AtMostOnce, Prompt),
    Authenticate = ("/etcdserverpb.Auth/Authenticate", AtMostOnce, Prompt),
    AuthEnable = ("/etcdserverpb.Auth/AuthEnable", AtMostOnce, Prompt),
    AuthDisable = ("/etcdserverpb.Auth/AuthDisable", AtMostOnce, Prompt),
    AuthStatus = ("/etcdserverpb.Auth/AuthStatus", Repeatable, Prompt),
    UserAdd = ("/etcdserverpb.Auth/UserAdd", AtMostOnce, Prompt),
    UserGet = ("/etcdserverpb.Auth/UserGet", Repeatable, Prompt),
    UserList = ("/etcdserverpb.Auth/UserList", Repeatable, Prompt),
    UserDelete = ("/etcdserverpb.Auth/UserDelete", AtMostOnce, Prompt),
    UserChangePassword = ("/etcdserverpb.Auth/UserChangePassword", AtMostOnce, Prompt),
    UserGrantRole = ("/etcdserverpb.Auth/UserGrantRole", AtMostOnce, Prompt),
    UserRevokeRole = ("/etcdserverpb.Auth/UserRevokeRole", AtMostOnce, Prompt),
    RoleAdd = ("/etcdserverpb.Auth/RoleAdd", AtMostOnce, Prompt),
    RoleGet = ("/etcdserverpb.Auth/RoleGet", Repeatable, Prompt),
    RoleList = ("/etcdserverpb.Auth/RoleList", Repeatable, Prompt),
    RoleDelete = ("/etcdserverpb.Auth/RoleDelete", AtMostOnce, Prompt),
    RoleGrantPermission = ("/etcdserverpb.Auth/RoleGrantPermission", AtMostOnce, Prompt),
    RoleRevokePermission = ("/etcdserverpb.Auth/RoleRevokePermission", AtMostOnce, Prompt),
    Lock = ("/v3lockpb.Lock/Lock", AtMostOnce, MayBlock),
    Unlock = ("/v3lockpb.Lock/Unlock", AtMostOnce, Prompt),
    Campaign = ("/v3electionpb.Election/Campaign", AtMostOnce, MayBlock),
    Proclaim = ("/v3electionpb.Election/Proclaim", AtMostOnce, Prompt),
    Leader = ("/v3electionpb.Election/Leader", Repeatable, Prompt),
    Observe = ("/v3electionpb.Election/Observe", Repeatable, MayBlock),
    Resign = ("/v3electionpb.Election/Resign", AtMostOnce, Prompt),
}

impl Rpc {
    /// Whether the client sends a stream of requests (watch, keep-alive). For the others the
    /// request ends with its one message: a server-streaming handler in etcd (snapshot,
    /// observe) runs only once the request has ended.
    pub(crate) const fn client_streams(self) -> bool {
        matches!(self, Rpc::Watch | Rpc::LeaseKeepAlive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetryClass::*;

    /// The class of every row, written out: a new row fails this test until it is listed.
    #[test]
    fn every_rpc_has_its_class() {
        let expected: &[(Rpc, RetryClass)] = &[
            (Rpc::Range, Repeatable),
            (Rpc::Put, AtMostOnce),
            (Rpc::DeleteRange, AtMostOnce),
            (Rpc::Txn, AtMostOnce),
            (Rpc::TxnReadOnly, Repeatable),
            (Rpc::Compact, AtMostOnce),
            (Rpc::Watch, Repeatable),
            // Go retries lease grants and revokes: a second grant makes a second lease that
            // expires unused; a second revoke finds nothing.
            (Rpc::LeaseGrant, Repeatable),
            // With a chosen ID a retry of an applied grant would fail with LeaseExist.
            (Rpc::LeaseGrantWithId, AtMostOnce),
            (Rpc::LeaseRevoke, Repeatable),
            (Rpc::LeaseKeepAlive, Repeatable),
            (Rpc::LeaseKeepAliveOnce, Repeatable),
            (Rpc::LeaseTimeToLive, Repeatable),
            (Rpc::LeaseLeases, Repeatable),
            (Rpc::MemberAdd, AtMostOnce),
            (Rpc::MemberRemove, AtMostOnce),
            (Rpc::MemberUpdate, AtMostOnce),
            (Rpc::MemberList, Repeatable),
            (Rpc::MemberPromote, AtMostOnce),
            (Rpc::Alarm, Repeatable),
            (Rpc::Status, Repeatable),
            (Rpc::Defragment, AtMostOnce),
            (Rpc::Hash, Repeatable),
            (Rpc::HashKv, Repeatable),
            (Rpc::Snapshot, Repeatable),
            (Rpc::MoveLeader, Repeatable),
            (Rpc::Downgrade, AtMostOnce),
            (Rpc::Authenticate, AtMostOnce),
            (Rpc::AuthEnable, AtMostOnce),
            (Rpc::AuthDisable, AtMostOnce),
            (Rpc::AuthStatus, Repeatable),
            (Rpc::UserAdd, AtMostOnce),
            (Rpc::UserGet, Repeatable),
            (Rpc::UserList, Repeatable),
            (Rpc::UserDelete, AtMostOnce),
            (Rpc::UserChangePassword, AtMostOnce),
            (Rpc::UserGrantRole, AtMostOnce),
            (Rpc::UserRevokeRole, AtMostOnce),
            (Rpc::RoleAdd, AtMostOnce),
            (Rpc::RoleGet, Repeatable),
            (Rpc::RoleList, Repeatable),
            (Rpc::RoleDelete, AtMostOnce),
            (Rpc::RoleGrantPermission, AtMostOnce),
            (Rpc::RoleRevokePermission, AtMostOnce),
            (Rpc::Lock, AtMostOnce),
            (Rpc::Unlock, AtMostOnce),
            (Rpc::Campaign, AtMostOnce),
            (Rpc::Proclaim, AtMostOnce),
            (Rpc::Leader, Repeatable),
            (Rpc::Observe, Repeatable),
            (Rpc::Resign, AtMostOnce),
        ];
        assert_eq!(expected.len(), Rpc::ALL.len(), "every row is listed once");
        for (rpc, class) in expected {
            assert_eq!(rpc.class(), *class, "{rpc:?}");
        }
    }

    #[test]
    fn only_waiting_rpcs_may_block() {
        let blocking: Vec<Rpc> = Rpc::ALL
            .iter()
            .copied()
            .filter(|r| r.wait() == Wait::MayBlock)
            .collect();
        assert_eq!(
            blocking,
            [
                Rpc::Watch,
                Rpc::LeaseKeepAlive,
                Rpc::Lock,
                Rpc::Campaign,
                Rpc::Observe
            ]
        );
    }

    #[test]
    fn paths_name_their_service() {
        for rpc in Rpc::ALL {
            let path = rpc.path();
            let (service, method) = path[1..].split_once('/').expect("/service/method");
            assert!(
                service.starts_with("etcdserverpb.")
                    || service == "v3lockpb.Lock"
                    || service == "v3electionpb.Election",
                "{path}"
            );
            let name = format!("{rpc:?}");
            assert!(
                name.starts_with(method) || method == "HashKV" || name.starts_with("Txn"),
                "{rpc:?} -> {path}"
            );
        }
    }
}
