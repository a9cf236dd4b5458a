//! The Auth API's administration: turn auth on and off, manage users, roles and their
//! permissions on key ranges.
//!
//! ```no_run
//! # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
//! use etcdv3::{KeyRange, Permission};
//!
//! let auth = client.auth();
//! // etcd refuses to enable auth without a `root` user that has the `root` role.
//! auth.user_add("root", "change-me").await?;
//! auth.role_add("root").await?;
//! auth.user_grant_role("root", "root").await?;
//!
//! // A reader of config/ and a writer of jobs/.
//! auth.role_add("app").await?;
//! auth.role_grant_permission("app", Permission::Read, KeyRange::prefix("config/")).await?;
//! auth.role_grant_permission("app", "readwrite".parse()?, KeyRange::prefix("jobs/")).await?;
//! auth.user_add("app-1", "s3cret").await?;
//! auth.user_grant_role("app-1", "app").await?;
//!
//! auth.enable().await?;
//! # Ok(()) }
//! ```
//!
//! # Who may call what
//!
//! While auth is off, anyone may call everything here. Once it is on, etcd lets only users
//! with the `root` role (by password or by a TLS client certificate whose CN is their name)
//! call these methods, except that a user may get itself and the roles it has, and that etcd
//! 3.7 answers [`status`](AuthClient::status) to anyone. Any other caller gets
//! [`Code::UserEmpty`](crate::Code::UserEmpty) (no user) or
//! [`Code::PermissionDenied`](crate::Code::PermissionDenied), both
//! [`Error::is_permission_denied`](crate::Error::is_permission_denied).
//!
//! # Passwords
//!
//! etcd hashes passwords with bcrypt on the member that receives them. A user may instead be
//! added without a password (it then logs in only with a client certificate), or given the
//! bcrypt hash of its password ([`hashed_password`](crate::Call::hashed_password), etcd 3.5+).
//! Passwords and hashes never show in the `Debug` output of requests, nor in errors.

mod op;
mod permission;
mod types;

use etcdv3_proto::{authpb, etcdserverpb as pb};
use rand::Rng;

use self::op::NewPassword;
pub use self::op::{
    AuthDisableOp, AuthEnableOp, AuthStatusOp, RoleAddOp, RoleDeleteOp, RoleGetOp,
    RoleGrantPermissionOp, RoleListOp, RoleRevokePermissionOp, UserAddOp, UserChangePasswordOp,
    UserDeleteOp, UserGetOp, UserGrantRoleOp, UserListOp, UserRevokeRoleOp,
};
pub use self::permission::{KeyPermission, Permission};
pub use self::types::{
    AuthDisableResponse, AuthEnableResponse, AuthStatusResponse, RoleAddResponse,
    RoleDeleteResponse, RoleGetResponse, RoleGrantPermissionResponse, RoleListResponse,
    RoleRevokePermissionResponse, UserAddResponse, UserChangePasswordResponse, UserDeleteResponse,
    UserGetResponse, UserGrantRoleResponse, UserListResponse, UserRevokeRoleResponse,
};
use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::KeyRange;
use crate::transport::rpc::Rpc;

/// The Auth service of a [`Client`]: [`Client::auth`]. Cheap to clone.
///
/// Every method returns a [`Call`]: set its options, then `.await` it. Empty user or role
/// names, an empty password (without [`no_password`](Call::no_password)) and an empty key
/// range fail with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before
/// anything is sent. etcd's refusals are typed: [`Code::UserAlreadyExist`],
/// [`Code::UserNotFound`], [`Code::RoleAlreadyExist`], [`Code::RoleNotFound`],
/// [`Code::RoleNotGranted`], [`Code::PermissionNotGranted`], [`Code::RootUserNotExist`],
/// [`Code::RootRoleNotExist`], [`Code::InvalidAuthMgmt`] (deleting `root` while auth is on).
/// The reads (`status`, `user_get`, `user_list`, `role_get`, `role_list`) are retried on other
/// members like KV reads; the changes are not retried once they may have reached etcd.
///
/// [`Code::UserAlreadyExist`]: crate::Code::UserAlreadyExist
/// [`Code::UserNotFound`]: crate::Code::UserNotFound
/// [`Code::RoleAlreadyExist`]: crate::Code::RoleAlreadyExist
/// [`Code::RoleNotFound`]: crate::Code::RoleNotFound
/// [`Code::RoleNotGranted`]: crate::Code::RoleNotGranted
/// [`Code::PermissionNotGranted`]: crate::Code::PermissionNotGranted
/// [`Code::RootUserNotExist`]: crate::Code::RootUserNotExist
/// [`Code::RootRoleNotExist`]: crate::Code::RootRoleNotExist
/// [`Code::InvalidAuthMgmt`]: crate::Code::InvalidAuthMgmt
#[derive(Debug, Clone)]
pub struct AuthClient {
    client: Client,
}

impl AuthClient {
    pub(crate) fn new(client: Client) -> Self {
        AuthClient { client }
    }

    /// Turns auth on. etcd first checks that user `root` exists and has role `root`:
    /// [`Code::RootUserNotExist`](crate::Code::RootUserNotExist) or
    /// [`Code::RootRoleNotExist`](crate::Code::RootRoleNotExist) otherwise. Enabling auth that
    /// is on already does nothing.
    ///
    /// From then on every request needs a user: a client without one gets errors that are
    /// [`is_permission_denied`](crate::Error::is_permission_denied)
    /// ([`Code::UserEmpty`](crate::Code::UserEmpty)).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let auth = client.auth();
    /// auth.user_add("root", "change-me").await?;
    /// auth.user_grant_role("root", "root").await?; // the root role needs no role_add
    /// auth.enable().await?;
    /// # Ok(()) }
    /// ```
    pub fn enable(&self) -> Call<AuthClient, AuthEnableOp> {
        Call::new(self.clone(), AuthEnableOp::new())
    }

    /// Turns auth off (a `root` user's request). Disabling auth that is off does nothing.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().disable().await?;
    /// # Ok(()) }
    /// ```
    pub fn disable(&self) -> Call<AuthClient, AuthDisableOp> {
        Call::new(self.clone(), AuthDisableOp::new())
    }

    /// Whether auth is on, and the auth store's revision. Needs etcd 3.5 or later (3.4 answers
    /// with gRPC `Unimplemented`, [`GrpcCode::Unimplemented`](crate::GrpcCode::Unimplemented)).
    /// While auth is on, etcd 3.5 and 3.6 answer only a `root` user; 3.7 answers anyone.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let status = client.auth().status().await?;
    /// println!("auth on: {}, auth revision {}", status.enabled(), status.auth_revision());
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> Call<AuthClient, AuthStatusOp> {
        Call::new(self.clone(), AuthStatusOp::new())
    }

    /// Adds user `name` with `password`, which etcd hashes with bcrypt.
    ///
    /// `.no_password()` adds a user that cannot log in with a password, only with a TLS
    /// client certificate whose CN is its name (pass `""` as the password).
    /// `.hashed_password(bcrypt_hash)` gives the user the password whose bcrypt hash this is
    /// (pass `""` as the password): the clear password never leaves your hands. It needs
    /// etcd 3.5 or later; the client asks the member's version first and refuses with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) on older ones, which
    /// would ignore the hash and set an empty password. Since etcd ignores a hash in the
    /// add request itself (it always hashes the clear password there), the client adds the
    /// user with a random password nobody knows, then sets the hash; if that fails, it deletes
    /// the user again.
    ///
    /// An empty name, an empty password without either option, or a password together with an
    /// option fail with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before
    /// anything is sent; a malformed hash too. A user that exists already:
    /// [`Code::UserAlreadyExist`](crate::Code::UserAlreadyExist).
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let auth = client.auth();
    /// auth.user_add("alice", "s3cret").await?;
    /// auth.user_add("backup-agent", "").no_password().await?;
    /// auth.user_add("bob", "")
    ///     .hashed_password("$2a$10$JtaSmPBzyes3.nHGgL/NXePhIp9ySY/E0tg/XABqwUflbMhSJXhZS")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn user_add(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Call<AuthClient, UserAddOp> {
        Call::new(self.clone(), UserAddOp::new(name, password))
    }

    /// The roles of user `name`; [`Code::UserNotFound`](crate::Code::UserNotFound) when there
    /// is no such user.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// let alice = client.auth().user_get("alice").await?;
    /// println!("alice has roles {:?}", alice.roles());
    /// # Ok(()) }
    /// ```
    pub fn user_get(&self, name: impl Into<String>) -> Call<AuthClient, UserGetOp> {
        Call::new(self.clone(), UserGetOp::new(name))
    }

    /// The names of every user, sorted.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// for user in client.auth().user_list().await?.users() {
    ///     println!("{user}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn user_list(&self) -> Call<AuthClient, UserListOp> {
        Call::new(self.clone(), UserListOp::new())
    }

    /// Deletes user `name`; its tokens stop working.
    /// [`Code::UserNotFound`](crate::Code::UserNotFound) when there is no such user;
    /// [`Code::InvalidAuthMgmt`](crate::Code::InvalidAuthMgmt) for `root` while auth is on.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().user_delete("alice").await?;
    /// # Ok(()) }
    /// ```
    pub fn user_delete(&self, name: impl Into<String>) -> Call<AuthClient, UserDeleteOp> {
        Call::new(self.clone(), UserDeleteOp::new(name))
    }

    /// Gives user `name` a new `password`; its tokens stop working.
    /// `.hashed_password(bcrypt_hash)` sets it by its bcrypt hash instead (pass `""` as the
    /// password; etcd 3.5+, checked as for [`user_add`](Self::user_add)).
    /// [`Code::UserNotFound`](crate::Code::UserNotFound) when there is no such user. etcd
    /// keeps a user added with `no_password()` without a password.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().user_change_password("alice", "n3w-s3cret").await?;
    /// # Ok(()) }
    /// ```
    pub fn user_change_password(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Call<AuthClient, UserChangePasswordOp> {
        Call::new(self.clone(), UserChangePasswordOp::new(name, password))
    }

    /// Grants `role` to `user` (granting it twice does nothing).
    /// [`Code::UserNotFound`](crate::Code::UserNotFound) or
    /// [`Code::RoleNotFound`](crate::Code::RoleNotFound) when either does not exist; the role
    /// `root` always exists.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().user_grant_role("alice", "app").await?;
    /// # Ok(()) }
    /// ```
    pub fn user_grant_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Call<AuthClient, UserGrantRoleOp> {
        Call::new(self.clone(), UserGrantRoleOp::new(user, role))
    }

    /// Takes `role` from `user`. [`Code::UserNotFound`](crate::Code::UserNotFound) when there
    /// is no such user, [`Code::RoleNotGranted`](crate::Code::RoleNotGranted) when the user
    /// does not have the role.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().user_revoke_role("alice", "app").await?;
    /// # Ok(()) }
    /// ```
    pub fn user_revoke_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Call<AuthClient, UserRevokeRoleOp> {
        Call::new(self.clone(), UserRevokeRoleOp::new(user, role))
    }

    /// Adds role `name`, with no permissions.
    /// [`Code::RoleAlreadyExist`](crate::Code::RoleAlreadyExist) when it exists.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().role_add("app").await?;
    /// # Ok(()) }
    /// ```
    pub fn role_add(&self, name: impl Into<String>) -> Call<AuthClient, RoleAddOp> {
        Call::new(self.clone(), RoleAddOp::new(name))
    }

    /// The permissions of role `name`: what it may do on which keys.
    /// [`Code::RoleNotFound`](crate::Code::RoleNotFound) when there is no such role.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// for p in client.auth().role_get("app").await?.permissions() {
    ///     println!("{} on {:?}", p.permission(), p.keys());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn role_get(&self, name: impl Into<String>) -> Call<AuthClient, RoleGetOp> {
        Call::new(self.clone(), RoleGetOp::new(name))
    }

    /// The names of every role, sorted.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// println!("{:?}", client.auth().role_list().await?.roles());
    /// # Ok(()) }
    /// ```
    pub fn role_list(&self) -> Call<AuthClient, RoleListOp> {
        Call::new(self.clone(), RoleListOp::new())
    }

    /// Deletes role `name` and takes it from every user that has it.
    /// [`Code::RoleNotFound`](crate::Code::RoleNotFound) when there is no such role;
    /// [`Code::InvalidAuthMgmt`](crate::Code::InvalidAuthMgmt) for `root` while auth is on.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// client.auth().role_delete("app").await?;
    /// # Ok(()) }
    /// ```
    pub fn role_delete(&self, name: impl Into<String>) -> Call<AuthClient, RoleDeleteOp> {
        Call::new(self.clone(), RoleDeleteOp::new(name))
    }

    /// Grants `role` the `permission` on `keys`: a key, a [`KeyRange`] (prefix, range, from a
    /// key, all) or a Rust range of keys. Granting on a range the role already has a
    /// permission on replaces that permission.
    ///
    /// An empty role name or start key, or a range whose end is not after its start, fail
    /// with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) before anything is
    /// sent; use [`KeyRange::all`] for every key. [`Code::RoleNotFound`](crate::Code::RoleNotFound)
    /// when there is no such role.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use etcdv3::{KeyRange, Permission};
    ///
    /// let auth = client.auth();
    /// auth.role_grant_permission("app", Permission::Read, KeyRange::prefix("config/")).await?;
    /// auth.role_grant_permission("app", Permission::ReadWrite, "jobs/a".."jobs/n").await?;
    /// auth.role_grant_permission("auditor", Permission::Read, KeyRange::all()).await?;
    /// # Ok(()) }
    /// ```
    pub fn role_grant_permission(
        &self,
        role: impl Into<String>,
        permission: Permission,
        keys: impl Into<KeyRange>,
    ) -> Call<AuthClient, RoleGrantPermissionOp> {
        Call::new(
            self.clone(),
            RoleGrantPermissionOp::new(role, permission, keys),
        )
    }

    /// Takes from `role` its permission on `keys`, which must be the very range it was granted
    /// on (as [`role_get`](Self::role_get) shows it).
    /// [`Code::PermissionNotGranted`](crate::Code::PermissionNotGranted) when the role has no
    /// permission on exactly that range, [`Code::RoleNotFound`](crate::Code::RoleNotFound)
    /// when there is no such role.
    ///
    /// ```no_run
    /// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
    /// use etcdv3::KeyRange;
    /// client.auth().role_revoke_permission("app", KeyRange::prefix("config/")).await?;
    /// # Ok(()) }
    /// ```
    pub fn role_revoke_permission(
        &self,
        role: impl Into<String>,
        keys: impl Into<KeyRange>,
    ) -> Call<AuthClient, RoleRevokePermissionOp> {
        Call::new(self.clone(), RoleRevokePermissionOp::new(role, keys))
    }

    async fn enable_now(
        self,
        _op: AuthEnableOp,
        options: CallOptions,
    ) -> Result<AuthEnableResponse> {
        let r: pb::AuthEnableResponse = self
            .client
            .unary(Rpc::AuthEnable, pb::AuthEnableRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn disable_now(
        self,
        _op: AuthDisableOp,
        options: CallOptions,
    ) -> Result<AuthDisableResponse> {
        let r: pb::AuthDisableResponse = self
            .client
            .unary(Rpc::AuthDisable, pb::AuthDisableRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn status_now(
        self,
        _op: AuthStatusOp,
        options: CallOptions,
    ) -> Result<AuthStatusResponse> {
        let r: pb::AuthStatusResponse = self
            .client
            .unary(Rpc::AuthStatus, pb::AuthStatusRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn user_add_now(self, op: UserAddOp, options: CallOptions) -> Result<UserAddResponse> {
        op.validate()?;
        let (name, password) = op.into_parts();
        let (password, no_password, hash) = match password {
            Some(NewPassword::Plain(p)) => (p, false, None),
            None => (String::new(), true, None),
            Some(NewPassword::Hashed(hash)) => {
                self.require_hashed_passwords("user add", options).await?;
                (throwaway_password(), false, Some(hash))
            }
        };
        let add = pb::AuthUserAddRequest {
            name: name.clone(),
            password,
            options: Some(authpb::UserAddOptions { no_password }),
            hashed_password: String::new(),
        };
        let added: pb::AuthUserAddResponse = self.client.unary(Rpc::UserAdd, add, options).await?;
        let Some(hash) = hash else {
            return Ok(added.into());
        };
        match self.set_hash(name.clone(), hash, options).await {
            Ok(set) => Ok(pb::AuthUserAddResponse { header: set.header }.into()),
            Err(e) => {
                let delete = pb::AuthUserDeleteRequest { name };
                let undone = self
                    .client
                    .unary::<_, pb::AuthUserDeleteResponse>(Rpc::UserDelete, delete, options)
                    .await;
                Err(e.with_hint(match undone {
                    Ok(_) => "setting the hashed password failed, so the user was deleted again",
                    Err(_) => {
                        "setting the hashed password failed and deleting the user again failed \
                         too: it exists with a random password nobody knows; delete it"
                    }
                }))
            }
        }
    }

    /// Sets a user's password by its (base64-encoded) bcrypt hash. etcd hashes the clear
    /// `password` field when it is not empty, so it is left empty.
    async fn set_hash(
        &self,
        name: String,
        hash: String,
        options: CallOptions,
    ) -> Result<pb::AuthUserChangePasswordResponse> {
        let req = pb::AuthUserChangePasswordRequest {
            name,
            password: String::new(),
            hashed_password: hash,
        };
        self.client
            .unary(Rpc::UserChangePassword, req, options)
            .await
    }

    /// Fails unless the member that answers runs etcd 3.5 or later: older ones do not know the
    /// `hashedPassword` field and would set an empty password instead.
    async fn require_hashed_passwords(&self, op: &str, options: CallOptions) -> Result<()> {
        let status: pb::StatusResponse = self
            .client
            .unary(Rpc::Status, pb::StatusRequest {}, options)
            .await?;
        if older_than_3_5(&status.version) {
            let member = status.header.map(|h| h.member_id).unwrap_or_default();
            return Err(Error::invalid(format!(
                "auth {op}: hashed passwords need etcd 3.5 or later, and member {member:x} runs \
                 {}: it would ignore the hash and set an empty password, so nothing was sent \
                 (give the password in clear, or upgrade etcd)",
                status.version
            )));
        }
        Ok(())
    }

    async fn user_get_now(self, op: UserGetOp, options: CallOptions) -> Result<UserGetResponse> {
        op.validate()?;
        let req = pb::AuthUserGetRequest {
            name: op.name().to_owned(),
        };
        let r: pb::AuthUserGetResponse = self.client.unary(Rpc::UserGet, req, options).await?;
        Ok(r.into())
    }

    async fn user_list_now(
        self,
        _op: UserListOp,
        options: CallOptions,
    ) -> Result<UserListResponse> {
        let r: pb::AuthUserListResponse = self
            .client
            .unary(Rpc::UserList, pb::AuthUserListRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn user_delete_now(
        self,
        op: UserDeleteOp,
        options: CallOptions,
    ) -> Result<UserDeleteResponse> {
        op.validate()?;
        let req = pb::AuthUserDeleteRequest {
            name: op.name().to_owned(),
        };
        let r: pb::AuthUserDeleteResponse =
            self.client.unary(Rpc::UserDelete, req, options).await?;
        Ok(r.into())
    }

    async fn user_change_password_now(
        self,
        op: UserChangePasswordOp,
        options: CallOptions,
    ) -> Result<UserChangePasswordResponse> {
        op.validate()?;
        let r = match op.into_parts() {
            (name, NewPassword::Hashed(hash)) => {
                self.require_hashed_passwords("user change password", options)
                    .await?;
                self.set_hash(name, hash, options).await?
            }
            (name, NewPassword::Plain(password)) => {
                let req = pb::AuthUserChangePasswordRequest {
                    name,
                    password,
                    hashed_password: String::new(),
                };
                self.client
                    .unary(Rpc::UserChangePassword, req, options)
                    .await?
            }
        };
        Ok(r.into())
    }

    async fn user_grant_role_now(
        self,
        op: UserGrantRoleOp,
        options: CallOptions,
    ) -> Result<UserGrantRoleResponse> {
        op.validate()?;
        let req = pb::AuthUserGrantRoleRequest {
            user: op.user().to_owned(),
            role: op.role().to_owned(),
        };
        let r: pb::AuthUserGrantRoleResponse =
            self.client.unary(Rpc::UserGrantRole, req, options).await?;
        Ok(r.into())
    }

    async fn user_revoke_role_now(
        self,
        op: UserRevokeRoleOp,
        options: CallOptions,
    ) -> Result<UserRevokeRoleResponse> {
        op.validate()?;
        let req = pb::AuthUserRevokeRoleRequest {
            name: op.user().to_owned(),
            role: op.role().to_owned(),
        };
        let r: pb::AuthUserRevokeRoleResponse =
            self.client.unary(Rpc::UserRevokeRole, req, options).await?;
        Ok(r.into())
    }

    async fn role_add_now(self, op: RoleAddOp, options: CallOptions) -> Result<RoleAddResponse> {
        op.validate()?;
        let req = pb::AuthRoleAddRequest {
            name: op.name().to_owned(),
        };
        let r: pb::AuthRoleAddResponse = self.client.unary(Rpc::RoleAdd, req, options).await?;
        Ok(r.into())
    }

    async fn role_get_now(self, op: RoleGetOp, options: CallOptions) -> Result<RoleGetResponse> {
        op.validate()?;
        let req = pb::AuthRoleGetRequest {
            role: op.name().to_owned(),
        };
        let r: pb::AuthRoleGetResponse = self.client.unary(Rpc::RoleGet, req, options).await?;
        RoleGetResponse::from_proto(r)
    }

    async fn role_list_now(
        self,
        _op: RoleListOp,
        options: CallOptions,
    ) -> Result<RoleListResponse> {
        let r: pb::AuthRoleListResponse = self
            .client
            .unary(Rpc::RoleList, pb::AuthRoleListRequest {}, options)
            .await?;
        Ok(r.into())
    }

    async fn role_delete_now(
        self,
        op: RoleDeleteOp,
        options: CallOptions,
    ) -> Result<RoleDeleteResponse> {
        op.validate()?;
        let req = pb::AuthRoleDeleteRequest {
            role: op.name().to_owned(),
        };
        let r: pb::AuthRoleDeleteResponse =
            self.client.unary(Rpc::RoleDelete, req, options).await?;
        Ok(r.into())
    }

    async fn role_grant_permission_now(
        self,
        op: RoleGrantPermissionOp,
        options: CallOptions,
    ) -> Result<RoleGrantPermissionResponse> {
        op.validate()?;
        let r: pb::AuthRoleGrantPermissionResponse = self
            .client
            .unary(Rpc::RoleGrantPermission, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }

    async fn role_revoke_permission_now(
        self,
        op: RoleRevokePermissionOp,
        options: CallOptions,
    ) -> Result<RoleRevokePermissionResponse> {
        op.validate()?;
        let r: pb::AuthRoleRevokePermissionResponse = self
            .client
            .unary(Rpc::RoleRevokePermission, op.into_proto(), options)
            .await?;
        Ok(r.into())
    }
}

/// A password nobody knows: 32 random letters and digits.
fn throwaway_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Whether an etcd version string (`"3.4.45"`) is below 3.5. Unreadable versions are taken as
/// recent.
fn older_than_3_5(version: &str) -> bool {
    let mut parts = version.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) < (3, 5),
        _ => false,
    }
}

impl Call<AuthClient, UserAddOp> {
    /// Adds the user without a password; see [`UserAddOp::no_password`].
    pub fn no_password(self) -> Self {
        self.map(UserAddOp::no_password)
    }

    /// Sets the password by its bcrypt hash; see [`UserAddOp::hashed_password`].
    pub fn hashed_password(self, bcrypt_hash: impl Into<String>) -> Self {
        self.map(|op| op.hashed_password(bcrypt_hash))
    }
}

impl Call<AuthClient, UserChangePasswordOp> {
    /// Sets the new password by its bcrypt hash; see
    /// [`UserChangePasswordOp::hashed_password`].
    pub fn hashed_password(self, bcrypt_hash: impl Into<String>) -> Self {
        self.map(|op| op.hashed_password(bcrypt_hash))
    }
}

crate::call::call_futures!(AuthClient {
    AuthEnableOp => AuthEnableResponse: enable_now,
    AuthDisableOp => AuthDisableResponse: disable_now,
    AuthStatusOp => AuthStatusResponse: status_now,
    UserAddOp => UserAddResponse: user_add_now,
    UserGetOp => UserGetResponse: user_get_now,
    UserListOp => UserListResponse: user_list_now,
    UserDeleteOp => UserDeleteResponse: user_delete_now,
    UserChangePasswordOp => UserChangePasswordResponse: user_change_password_now,
    UserGrantRoleOp => UserGrantRoleResponse: user_grant_role_now,
    UserRevokeRoleOp => UserRevokeRoleResponse: user_revoke_role_now,
    RoleAddOp => RoleAddResponse: role_add_now,
    RoleGetOp => RoleGetResponse: role_get_now,
    RoleListOp => RoleListResponse: role_list_now,
    RoleDeleteOp => RoleDeleteResponse: role_delete_now,
    RoleGrantPermissionOp => RoleGrantPermissionResponse: role_grant_permission_now,
    RoleRevokePermissionOp => RoleRevokePermissionResponse: role_revoke_permission_now,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_below_3_5_cannot_take_hashed_passwords() {
        for old in ["3.4.45", "3.4.0", "3.3.27", "2.3.8"] {
            assert!(older_than_3_5(old), "{old}");
        }
        for new in [
            "3.5.0", "3.5.34", "3.6.15", "3.7.2", "4.0.0", "", "dev", "3",
        ] {
            assert!(!older_than_3_5(new), "{new}");
        }
    }

    #[test]
    fn throwaway_passwords_are_long_and_different() {
        let a = throwaway_password();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, throwaway_password());
    }
}
