//! Response types of the Auth API.

use etcdv3_proto::etcdserverpb as pb;

use super::permission::KeyPermission;
use crate::error::Result;
use crate::kv::{ResponseHeader, header};

macro_rules! header_only {
    ($($(#[$doc:meta])* $name:ident <- $pb:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            header: ResponseHeader,
        }

        impl $name {
            /// The response header (etcd sends nothing else for this request).
            pub fn header(&self) -> &ResponseHeader {
                &self.header
            }
        }

        impl From<pb::$pb> for $name {
            fn from(r: pb::$pb) -> Self {
                $name {
                    header: header(r.header),
                }
            }
        }
    )*};
}

header_only! {
    /// The answer to [`AuthClient::enable`](crate::AuthClient::enable).
    AuthEnableResponse <- AuthEnableResponse;
    /// The answer to [`AuthClient::disable`](crate::AuthClient::disable).
    AuthDisableResponse <- AuthDisableResponse;
    /// The answer to [`AuthClient::user_add`](crate::AuthClient::user_add).
    UserAddResponse <- AuthUserAddResponse;
    /// The answer to [`AuthClient::user_delete`](crate::AuthClient::user_delete).
    UserDeleteResponse <- AuthUserDeleteResponse;
    /// The answer to [`AuthClient::user_change_password`](crate::AuthClient::user_change_password).
    UserChangePasswordResponse <- AuthUserChangePasswordResponse;
    /// The answer to [`AuthClient::user_grant_role`](crate::AuthClient::user_grant_role).
    UserGrantRoleResponse <- AuthUserGrantRoleResponse;
    /// The answer to [`AuthClient::user_revoke_role`](crate::AuthClient::user_revoke_role).
    UserRevokeRoleResponse <- AuthUserRevokeRoleResponse;
    /// The answer to [`AuthClient::role_add`](crate::AuthClient::role_add).
    RoleAddResponse <- AuthRoleAddResponse;
    /// The answer to [`AuthClient::role_delete`](crate::AuthClient::role_delete).
    RoleDeleteResponse <- AuthRoleDeleteResponse;
    /// The answer to [`AuthClient::role_grant_permission`](crate::AuthClient::role_grant_permission).
    RoleGrantPermissionResponse <- AuthRoleGrantPermissionResponse;
    /// The answer to [`AuthClient::role_revoke_permission`](crate::AuthClient::role_revoke_permission).
    RoleRevokePermissionResponse <- AuthRoleRevokePermissionResponse;
}

/// Whether auth is on: the answer to [`AuthClient::status`](crate::AuthClient::status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthStatusResponse {
    header: ResponseHeader,
    enabled: bool,
    auth_revision: u64,
}

impl AuthStatusResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// Whether auth is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The revision of the auth store: it grows with every change to users, roles,
    /// permissions and the auth switch (it is not the key-value store's revision).
    pub fn auth_revision(&self) -> u64 {
        self.auth_revision
    }
}

impl From<pb::AuthStatusResponse> for AuthStatusResponse {
    fn from(r: pb::AuthStatusResponse) -> Self {
        AuthStatusResponse {
            header: header(r.header),
            enabled: r.enabled,
            auth_revision: r.auth_revision,
        }
    }
}

/// A user's roles: the answer to [`AuthClient::user_get`](crate::AuthClient::user_get).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserGetResponse {
    header: ResponseHeader,
    roles: Vec<String>,
}

impl UserGetResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The roles granted to the user, sorted (etcd keeps them so).
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}

impl From<pb::AuthUserGetResponse> for UserGetResponse {
    fn from(r: pb::AuthUserGetResponse) -> Self {
        UserGetResponse {
            header: header(r.header),
            roles: r.roles,
        }
    }
}

/// Every user: the answer to [`AuthClient::user_list`](crate::AuthClient::user_list).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserListResponse {
    header: ResponseHeader,
    users: Vec<String>,
}

impl UserListResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The names of every user, sorted (etcd keeps them so).
    pub fn users(&self) -> &[String] {
        &self.users
    }
}

impl From<pb::AuthUserListResponse> for UserListResponse {
    fn from(r: pb::AuthUserListResponse) -> Self {
        UserListResponse {
            header: header(r.header),
            users: r.users,
        }
    }
}

/// Every role: the answer to [`AuthClient::role_list`](crate::AuthClient::role_list).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleListResponse {
    header: ResponseHeader,
    roles: Vec<String>,
}

impl RoleListResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The names of every role, sorted (etcd keeps them so).
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}

impl From<pb::AuthRoleListResponse> for RoleListResponse {
    fn from(r: pb::AuthRoleListResponse) -> Self {
        RoleListResponse {
            header: header(r.header),
            roles: r.roles,
        }
    }
}

/// A role's permissions: the answer to [`AuthClient::role_get`](crate::AuthClient::role_get).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleGetResponse {
    header: ResponseHeader,
    permissions: Vec<KeyPermission>,
}

impl RoleGetResponse {
    /// The response header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The role's permissions, sorted by start key (etcd keeps them so); at most one per
    /// range. From etcd 3.6 the `root` role has one: read-write on every key (before, it shows
    /// none, though it may do everything).
    pub fn permissions(&self) -> &[KeyPermission] {
        &self.permissions
    }

    pub(crate) fn from_proto(r: pb::AuthRoleGetResponse) -> Result<Self> {
        Ok(RoleGetResponse {
            header: header(r.header),
            permissions: r
                .perm
                .into_iter()
                .map(KeyPermission::from_proto)
                .collect::<Result<_>>()?,
        })
    }
}
