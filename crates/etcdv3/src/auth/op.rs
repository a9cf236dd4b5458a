//! The requests of the Auth API, as values. Passwords never show in their `Debug` output.

use etcdv3_proto::{authpb, etcdserverpb as pb};

use super::permission::Permission;
use crate::error::{Error, Result};
use crate::kv::KeyRange;
use crate::transport::auth::Secret;

fn require_name(op: &str, what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "auth {op}: the {what} name must not be empty"
        )));
    }
    Ok(())
}

macro_rules! unit_ops {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        #[non_exhaustive]
        pub struct $name {}

        impl $name {
            /// The request (it has no fields).
            pub fn new() -> Self {
                $name {}
            }
        }
    )*};
}

unit_ops! {
    /// Turns auth on. Build it with [`AuthClient::enable`](crate::AuthClient::enable).
    AuthEnableOp;
    /// Turns auth off. Build it with [`AuthClient::disable`](crate::AuthClient::disable).
    AuthDisableOp;
    /// Asks whether auth is on. Build it with [`AuthClient::status`](crate::AuthClient::status).
    AuthStatusOp;
    /// Lists every user. Build it with [`AuthClient::user_list`](crate::AuthClient::user_list).
    UserListOp;
    /// Lists every role. Build it with [`AuthClient::role_list`](crate::AuthClient::role_list).
    RoleListOp;
}

macro_rules! name_ops {
    ($($(#[$doc:meta])* $name:ident($label:literal, $what:literal);)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            name: String,
        }

        impl $name {
            #[doc = concat!("A request about the ", $what, " `name` (not empty).")]
            pub fn new(name: impl Into<String>) -> Self {
                $name { name: name.into() }
            }

            #[doc = concat!("The ", $what, "'s name.")]
            pub fn name(&self) -> &str {
                &self.name
            }

            pub(crate) fn validate(&self) -> Result<()> {
                require_name($label, $what, &self.name)
            }
        }
    )*};
}

name_ops! {
    /// Asks for a user's roles. Build it with
    /// [`AuthClient::user_get`](crate::AuthClient::user_get).
    UserGetOp("user get", "user");
    /// Deletes a user. Build it with [`AuthClient::user_delete`](crate::AuthClient::user_delete).
    UserDeleteOp("user delete", "user");
    /// Adds a role without permissions. Build it with
    /// [`AuthClient::role_add`](crate::AuthClient::role_add).
    RoleAddOp("role add", "role");
    /// Asks for a role's permissions. Build it with
    /// [`AuthClient::role_get`](crate::AuthClient::role_get).
    RoleGetOp("role get", "role");
    /// Deletes a role (and takes it from every user). Build it with
    /// [`AuthClient::role_delete`](crate::AuthClient::role_delete).
    RoleDeleteOp("role delete", "role");
}

macro_rules! user_role_ops {
    ($($(#[$doc:meta])* $name:ident($label:literal);)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            user: String,
            role: String,
        }

        impl $name {
            /// A request about `role` of `user` (neither empty).
            pub fn new(user: impl Into<String>, role: impl Into<String>) -> Self {
                $name {
                    user: user.into(),
                    role: role.into(),
                }
            }

            /// The user.
            pub fn user(&self) -> &str {
                &self.user
            }

            /// The role.
            pub fn role(&self) -> &str {
                &self.role
            }

            pub(crate) fn validate(&self) -> Result<()> {
                require_name($label, "user", &self.user)?;
                require_name($label, "role", &self.role)
            }
        }
    )*};
}

user_role_ops! {
    /// Grants a role to a user. Build it with
    /// [`AuthClient::user_grant_role`](crate::AuthClient::user_grant_role).
    UserGrantRoleOp("user grant role");
    /// Takes a role from a user. Build it with
    /// [`AuthClient::user_revoke_role`](crate::AuthClient::user_revoke_role).
    UserRevokeRoleOp("user revoke role");
}

/// The password a user gets, once validated.
#[derive(Debug)]
pub(crate) enum NewPassword {
    /// A password in clear, hashed by etcd.
    Plain(String),
    /// A bcrypt hash, base64-encoded as etcd's `hashedPassword` field wants it.
    Hashed(String),
}

/// Adds a user: with a password, a bcrypt hash of one, or none. Build it with
/// [`AuthClient::user_add`](crate::AuthClient::user_add).
///
/// Its `Debug` output shows whether a password was given, never the password or the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserAddOp {
    name: String,
    password: Secret,
    hashed: Option<Secret>,
    no_password: bool,
}

impl UserAddOp {
    /// Adds user `name` with `password` (hashed by etcd with bcrypt). Neither may be empty,
    /// unless [`no_password`](Self::no_password) or
    /// [`hashed_password`](Self::hashed_password) is set, and then the password must be empty.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        UserAddOp {
            name: name.into(),
            password: Secret::new(password),
            hashed: None,
            no_password: false,
        }
    }

    /// The user has no password: it cannot authenticate with one, only with a TLS client
    /// certificate whose CN is its name (Go's `UserAddOptions{NoPassword: true}`, etcd 3.4+).
    /// The password given to [`new`](Self::new) must be empty.
    pub fn no_password(mut self) -> Self {
        self.no_password = true;
        self
    }

    /// Sets the password by its bcrypt hash (`$2a$`, `$2b$` or `$2y$`, cost 4 to 31, 60
    /// characters), so the clear password never leaves your hands. The password given to
    /// [`new`](Self::new) must be empty. Needs etcd 3.5 or later; see
    /// [`AuthClient::user_add`](crate::AuthClient::user_add) for how it is sent.
    pub fn hashed_password(mut self, bcrypt_hash: impl Into<String>) -> Self {
        self.hashed = Some(Secret::new(bcrypt_hash));
        self
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the user is added without a password.
    pub fn is_no_password(&self) -> bool {
        self.no_password
    }

    /// Whether the password is given by its hash.
    pub fn is_hashed(&self) -> bool {
        self.hashed.is_some()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        require_name("user add", "user", &self.name)?;
        if self.no_password {
            if !self.password.is_empty() || self.hashed.is_some() {
                return Err(Error::invalid(
                    "auth user add: a user with no_password() cannot also get a password; \
                     drop one of them",
                ));
            }
            return Ok(());
        }
        check_new_password("user add", &self.password, self.hashed.as_ref())
    }

    /// The name and the password (`None`: no password), once [`validate`](Self::validate)d.
    pub(crate) fn into_parts(self) -> (String, Option<NewPassword>) {
        let password = match (self.no_password, self.hashed) {
            (true, _) => None,
            (false, Some(hash)) => Some(NewPassword::Hashed(base64(hash.into_string().as_bytes()))),
            (false, None) => Some(NewPassword::Plain(self.password.into_string())),
        };
        (self.name, password)
    }
}

/// Changes a user's password, given in clear or by its bcrypt hash. Build it with
/// [`AuthClient::user_change_password`](crate::AuthClient::user_change_password).
///
/// Its `Debug` output shows whether a password was given, never the password or the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserChangePasswordOp {
    name: String,
    password: Secret,
    hashed: Option<Secret>,
}

impl UserChangePasswordOp {
    /// Gives user `name` the new `password`. Neither may be empty, unless
    /// [`hashed_password`](Self::hashed_password) is set, and then the password must be
    /// empty.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        UserChangePasswordOp {
            name: name.into(),
            password: Secret::new(password),
            hashed: None,
        }
    }

    /// Sets the new password by its bcrypt hash (`$2a$`, `$2b$` or `$2y$`, cost 4 to 31, 60
    /// characters). The password given to [`new`](Self::new) must be empty. Needs etcd 3.5 or
    /// later.
    pub fn hashed_password(mut self, bcrypt_hash: impl Into<String>) -> Self {
        self.hashed = Some(Secret::new(bcrypt_hash));
        self
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the password is given by its hash.
    pub fn is_hashed(&self) -> bool {
        self.hashed.is_some()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        require_name("user change password", "user", &self.name)?;
        check_new_password("user change password", &self.password, self.hashed.as_ref())
    }

    /// The name and the new password, once [`validate`](Self::validate)d.
    pub(crate) fn into_parts(self) -> (String, NewPassword) {
        let password = match self.hashed {
            Some(hash) => NewPassword::Hashed(base64(hash.into_string().as_bytes())),
            None => NewPassword::Plain(self.password.into_string()),
        };
        (self.name, password)
    }
}

fn check_new_password(op: &str, password: &Secret, hashed: Option<&Secret>) -> Result<()> {
    match hashed {
        Some(_) if !password.is_empty() => Err(Error::invalid(format!(
            "auth {op}: give a password or a hashed password, not both (pass an empty \
             password with hashed_password())"
        ))),
        Some(hash) => check_bcrypt(hash.expose()).map_err(|why| {
            Error::invalid(format!(
                "auth {op}: the hashed password is not a bcrypt hash etcd can use: {why}"
            ))
        }),
        None if password.is_empty() => Err(Error::invalid(format!(
            "auth {op}: the password must not be empty (for a user that logs in only with a \
             client certificate, add it with no_password())"
        ))),
        None => Ok(()),
    }
}

/// Checks the shape of a bcrypt hash as etcd's bcrypt reads it: `$2x$NN$` then 53 characters
/// of bcrypt's base64 alphabet, cost 4 to 31. A malformed hash would lock the user out.
fn check_bcrypt(hash: &str) -> std::result::Result<(), String> {
    const LEN: usize = 60;
    let b = hash.as_bytes();
    if b.len() != LEN {
        return Err(format!(
            "it has {} characters, a bcrypt hash has {LEN}",
            b.len()
        ));
    }
    if !(b[0] == b'$' && b[1] == b'2' && matches!(b[2], b'a' | b'b' | b'y') && b[3] == b'$') {
        return Err("it must start with $2a$, $2b$ or $2y$".to_owned());
    }
    let cost = std::str::from_utf8(&b[4..6])
        .ok()
        .and_then(|c| c.parse::<u8>().ok());
    match cost {
        Some(4..=31) if b[6] == b'$' => {}
        _ => return Err("its cost must be two digits from 04 to 31, then $".to_owned()),
    }
    if let Some(bad) = b[7..]
        .iter()
        .find(|c| !(c.is_ascii_alphanumeric() || **c == b'.' || **c == b'/'))
    {
        return Err(format!(
            "its salt and hash contain {:?}, outside bcrypt's alphabet",
            char::from(*bad)
        ));
    }
    Ok(())
}

/// Standard base64 with padding (etcd decodes `hashedPassword` with Go's `StdEncoding`).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &byte)| n | u32::from(byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Grants a role a permission on a range of keys. Build it with
/// [`AuthClient::role_grant_permission`](crate::AuthClient::role_grant_permission).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleGrantPermissionOp {
    role: String,
    permission: Permission,
    keys: KeyRange,
}

impl RoleGrantPermissionOp {
    /// Grants `role` the `permission` on `keys`. The role name must not be empty, nor the
    /// range's start key (use [`KeyRange::all`] for every key), and a range's end must come
    /// after its start.
    pub fn new(role: impl Into<String>, permission: Permission, keys: impl Into<KeyRange>) -> Self {
        RoleGrantPermissionOp {
            role: role.into(),
            permission,
            keys: keys.into(),
        }
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The permission granted.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The keys it covers.
    pub fn keys(&self) -> &KeyRange {
        &self.keys
    }

    pub(crate) fn validate(&self) -> Result<()> {
        const OP: &str = "role grant permission";
        require_name(OP, "role", &self.role)?;
        let (start, end) = (self.keys.start(), self.keys.range_end());
        if start.is_empty() {
            return Err(Error::invalid(format!(
                "auth {OP}: the key must not be empty (for every key, grant KeyRange::all() or \
                 KeyRange::prefix(\"\"))"
            )));
        }
        // etcd 3.5+ answers InvalidAuthMgmt for such a range; 3.4 stores a permission that
        // matches nothing.
        if !end.is_empty() && end != b"\0" && end <= start {
            return Err(Error::invalid(format!(
                "auth {OP}: the range {:?} is empty: its end must come after its start",
                self.keys
            )));
        }
        Ok(())
    }

    pub(crate) fn into_proto(self) -> pb::AuthRoleGrantPermissionRequest {
        let (key, range_end) = self.keys.into_parts();
        pb::AuthRoleGrantPermissionRequest {
            name: self.role,
            perm: Some(authpb::Permission {
                perm_type: self.permission.into_proto().into(),
                key,
                range_end,
            }),
        }
    }
}

/// Takes from a role the permission it has on exactly this range of keys. Build it with
/// [`AuthClient::role_revoke_permission`](crate::AuthClient::role_revoke_permission).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleRevokePermissionOp {
    role: String,
    keys: KeyRange,
}

impl RoleRevokePermissionOp {
    /// Revokes the permission `role` has on `keys` (the same range it was granted on).
    pub fn new(role: impl Into<String>, keys: impl Into<KeyRange>) -> Self {
        RoleRevokePermissionOp {
            role: role.into(),
            keys: keys.into(),
        }
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The keys whose permission is revoked.
    pub fn keys(&self) -> &KeyRange {
        &self.keys
    }

    pub(crate) fn validate(&self) -> Result<()> {
        require_name("role revoke permission", "role", &self.role)
    }

    pub(crate) fn into_proto(self) -> pb::AuthRoleRevokePermissionRequest {
        let (key, range_end) = self.keys.into_parts();
        pb::AuthRoleRevokePermissionRequest {
            role: self.role,
            key,
            range_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bcrypt hash (cost 4) of "hashed-pw-3".
    const HASH: &str = "$2a$04$3skzEEzNS8QU6mzTrVGoKuGxpXB7pc0OkEk235NpkjYwPNqLQo11e";

    #[test]
    fn passwords_never_show_in_debug_output() {
        let secret = "hunter2-secret";
        let outputs = [
            format!("{:?}", UserAddOp::new("alice", secret)),
            format!("{:#?}", UserAddOp::new("alice", secret)),
            format!("{:?}", UserChangePasswordOp::new("alice", secret)),
            format!("{:?}", UserAddOp::new("alice", "").hashed_password(HASH)),
            format!(
                "{:?}",
                UserChangePasswordOp::new("alice", "").hashed_password(HASH)
            ),
            format!("{:?}", Secret::new(secret)),
        ];
        for out in &outputs {
            assert!(!out.contains(secret), "{out}");
            assert!(!out.contains("3skzEEzNS8QU6mz"), "{out}");
            assert!(!out.contains("$2a$"), "{out}");
        }
        assert!(outputs[0].contains("alice") && outputs[0].contains("<redacted>"));
        let none = format!("{:?}", UserAddOp::new("bob", "").no_password());
        assert!(
            none.contains("<empty>") && none.contains("no_password: true"),
            "{none}"
        );
    }

    #[test]
    fn passwords_never_show_in_validation_errors() {
        let secret = "hunter2-secret";
        let errors = [
            UserAddOp::new("", secret).validate().unwrap_err(),
            UserAddOp::new("a", secret)
                .no_password()
                .validate()
                .unwrap_err(),
            UserAddOp::new("a", secret)
                .hashed_password(HASH)
                .validate()
                .unwrap_err(),
            UserChangePasswordOp::new("", secret)
                .validate()
                .unwrap_err(),
            UserAddOp::new("a", "")
                .hashed_password(format!("{}!", &HASH[..59]))
                .validate()
                .unwrap_err(),
        ];
        for e in &errors {
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains(secret) && !shown.contains("3skzEEzNS8QU6mz"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_user_gets_exactly_one_kind_of_password() {
        let plain = UserAddOp::new("alice", "pw");
        plain.validate().unwrap();
        assert!(
            matches!(plain.into_parts(), (n, Some(NewPassword::Plain(p))) if n == "alice" && p == "pw")
        );

        let none = UserAddOp::new("bob", "").no_password();
        none.validate().unwrap();
        assert!(none.is_no_password());
        assert!(none.into_parts().1.is_none());

        let hashed = UserAddOp::new("carol", "").hashed_password(HASH);
        hashed.validate().unwrap();
        assert!(hashed.is_hashed());
        match hashed.into_parts().1 {
            Some(NewPassword::Hashed(h)) => assert_eq!(h, base64(HASH.as_bytes())),
            other => panic!("{other:?}"),
        }

        for bad in [
            UserAddOp::new("", "pw"),
            UserAddOp::new("alice", ""),
            UserAddOp::new("alice", "pw").no_password(),
            UserAddOp::new("alice", "")
                .no_password()
                .hashed_password(HASH),
            UserAddOp::new("alice", "pw").hashed_password(HASH),
            UserAddOp::new("alice", "").hashed_password("not a hash"),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(err.is_invalid_request(), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn a_changed_password_is_plain_or_hashed_and_never_empty() {
        let op = UserChangePasswordOp::new("alice", "new");
        op.validate().unwrap();
        assert!(matches!(op.into_parts().1, NewPassword::Plain(p) if p == "new"));
        let op = UserChangePasswordOp::new("alice", "").hashed_password(HASH);
        op.validate().unwrap();
        assert!(matches!(op.into_parts().1, NewPassword::Hashed(_)));
        for bad in [
            UserChangePasswordOp::new("", "new"),
            UserChangePasswordOp::new("alice", ""),
            UserChangePasswordOp::new("alice", "new").hashed_password(HASH),
            UserChangePasswordOp::new("alice", "").hashed_password(""),
        ] {
            assert!(bad.validate().unwrap_err().is_invalid_request(), "{bad:?}");
        }
    }

    #[test]
    fn bcrypt_hashes_are_checked_for_shape() {
        check_bcrypt(HASH).unwrap();
        check_bcrypt(&HASH.replacen("$2a$", "$2b$", 1)).unwrap();
        check_bcrypt(&HASH.replacen("$2a$", "$2y$", 1)).unwrap();
        check_bcrypt(&HASH.replacen("$04$", "$31$", 1)).unwrap();
        for bad in [
            String::new(),
            HASH[..59].to_owned(),
            format!("{HASH}x"),
            HASH.replacen("$2a$", "$1a$", 1),
            HASH.replacen("$2a$", "$2x$", 1),
            HASH.replacen("$2a$", "x2a$", 1),
            HASH.replacen("$04$", "$03$", 1),
            HASH.replacen("$04$", "$32$", 1),
            HASH.replacen("$04$", "$4x$", 1),
            HASH.replacen("$04$", "$044", 1),
            format!("{}+", &HASH[..59]),
        ] {
            assert!(check_bcrypt(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_matches_the_standard_alphabet_with_padding() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc, "{raw}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(
            base64(HASH.as_bytes()),
            "JDJhJDA0JDNza3pFRXpOUzhRVTZtelRyVkdvS3VHeHBYQjdwYzBPa0VrMjM1TnBrall3UE5xTFFvMTFl"
        );
    }

    #[test]
    fn names_must_not_be_empty() {
        assert!(
            UserGetOp::new("")
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(
            RoleDeleteOp::new("")
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(
            UserGrantRoleOp::new("", "r")
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        assert!(
            UserRevokeRoleOp::new("u", "")
                .validate()
                .unwrap_err()
                .is_invalid_request()
        );
        UserGetOp::new("u").validate().unwrap();
        UserGrantRoleOp::new("u", "r").validate().unwrap();
        let msg = RoleGetOp::new("").validate().unwrap_err().to_string();
        assert!(
            msg.contains("role get") && msg.contains("role name"),
            "{msg}"
        );
    }

    #[test]
    fn granted_ranges_must_name_keys() {
        for ok in [
            KeyRange::key("a"),
            KeyRange::prefix("a/"),
            KeyRange::prefix(""),
            KeyRange::range("a", "b"),
            KeyRange::from_key("a"),
            KeyRange::from_key(""),
            KeyRange::all(),
        ] {
            RoleGrantPermissionOp::new("r", Permission::Read, ok.clone())
                .validate()
                .unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            KeyRange::key(""),
            KeyRange::range("", "b"),
            KeyRange::range("b", "a"),
            KeyRange::range("b", "b"),
        ] {
            let err = RoleGrantPermissionOp::new("r", Permission::Write, bad.clone())
                .validate()
                .unwrap_err();
            assert!(err.is_invalid_request(), "{bad:?}");
        }
        assert!(
            RoleGrantPermissionOp::new("", Permission::Read, "a")
                .validate()
                .is_err()
        );
        let req = RoleGrantPermissionOp::new("r", Permission::ReadWrite, KeyRange::prefix("a"))
            .into_proto();
        let perm = req.perm.unwrap();
        assert_eq!(
            (req.name.as_str(), perm.perm_type, perm.key, perm.range_end),
            ("r", 2, b"a".to_vec(), b"b".to_vec())
        );
        let req = RoleRevokePermissionOp::new("r", KeyRange::from_key("k")).into_proto();
        assert_eq!((req.key, req.range_end), (b"k".to_vec(), b"\0".to_vec()));
    }
}
