//! What a role may do on keys: a [`Permission`] over a [`KeyRange`].

use std::fmt;
use std::str::FromStr;

use etcdv3_proto::authpb;

use crate::error::{Error, Result};
use crate::kv::KeyRange;

/// The access a role is granted on a range of keys.
///
/// Parses from `"read"`, `"write"` or `"readwrite"` in any case (Go's
/// `StrToPermissionType`) and displays as those words:
///
/// ```
/// use etcdv3::Permission;
///
/// let p: Permission = "ReadWrite".parse()?;
/// assert_eq!(p, Permission::ReadWrite);
/// assert_eq!(p.to_string(), "readwrite");
/// assert!("admin".parse::<Permission>().unwrap_err().is_invalid_request());
/// # Ok::<(), etcdv3::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Permission {
    /// Get the keys and watch them.
    Read,
    /// Put and delete the keys.
    Write,
    /// Both.
    ReadWrite,
}

impl Permission {
    /// The word [`Display`](fmt::Display) writes and [`FromStr`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::ReadWrite => "readwrite",
        }
    }

    pub(crate) fn into_proto(self) -> authpb::permission::Type {
        match self {
            Permission::Read => authpb::permission::Type::Read,
            Permission::Write => authpb::permission::Type::Write,
            Permission::ReadWrite => authpb::permission::Type::Readwrite,
        }
    }

    pub(crate) fn from_proto(value: i32) -> Result<Self> {
        match authpb::permission::Type::try_from(value) {
            Ok(authpb::permission::Type::Read) => Ok(Permission::Read),
            Ok(authpb::permission::Type::Write) => Ok(Permission::Write),
            Ok(authpb::permission::Type::Readwrite) => Ok(Permission::ReadWrite),
            Err(_) => Err(Error::protocol(format!(
                "etcd sent a permission of unknown type {value} (known: 0 read, 1 write, \
                 2 readwrite)"
            ))),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Error;

    /// `"read"`, `"write"` or `"readwrite"`, in any case; anything else is an
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) that lists the valid
    /// words.
    fn from_str(s: &str) -> Result<Self> {
        [Permission::Read, Permission::Write, Permission::ReadWrite]
            .into_iter()
            .find(|p| s.eq_ignore_ascii_case(p.as_str()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown permission {s:?}: use read, write or readwrite (any case)"
                ))
            })
    }
}

/// One permission of a role: what it may do, on which keys. From
/// [`RoleGetResponse::permissions`](crate::RoleGetResponse::permissions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct KeyPermission {
    permission: Permission,
    keys: KeyRange,
}

impl KeyPermission {
    /// A permission on `keys`.
    pub fn new(permission: Permission, keys: impl Into<KeyRange>) -> Self {
        KeyPermission {
            permission,
            keys: keys.into(),
        }
    }

    /// What the role may do.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// On which keys, exactly as etcd stores them: a single key has an empty
    /// [`range_end`](KeyRange::range_end), "from this key on" has `b"\0"`. Granting
    /// [`KeyRange::prefix`], [`KeyRange::from_key`] or [`KeyRange::all`] reads back as the same
    /// `KeyRange`. From etcd 3.6 the `root` role reads back as read-write on `["", "\0")`:
    /// every key.
    pub fn keys(&self) -> &KeyRange {
        &self.keys
    }

    pub(crate) fn from_proto(p: authpb::Permission) -> Result<Self> {
        Ok(KeyPermission {
            permission: Permission::from_proto(p.perm_type)?,
            keys: KeyRange::range(p.key, p.range_end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_in_any_case_and_display_as_they_parse() {
        for (text, want) in [
            ("read", Permission::Read),
            ("READ", Permission::Read),
            ("Read", Permission::Read),
            ("write", Permission::Write),
            ("wRiTe", Permission::Write),
            ("readwrite", Permission::ReadWrite),
            ("READWRITE", Permission::ReadWrite),
            ("ReadWrite", Permission::ReadWrite),
        ] {
            assert_eq!(text.parse::<Permission>().unwrap(), want, "{text}");
        }
        for p in [Permission::Read, Permission::Write, Permission::ReadWrite] {
            assert_eq!(p.to_string().parse::<Permission>().unwrap(), p);
            assert_eq!(p.to_string(), p.as_str());
        }
    }

    #[test]
    fn unknown_permissions_are_refused_with_the_valid_words() {
        for text in [
            "",
            "rw",
            "read-write",
            "read write",
            " read",
            "readwrite ",
            "admin",
        ] {
            let err = text.parse::<Permission>().unwrap_err();
            assert!(err.is_invalid_request(), "{text:?}: {err:?}");
            let msg = err.to_string();
            for word in ["read", "write", "readwrite"] {
                assert!(msg.contains(word), "{msg}");
            }
        }
    }

    #[test]
    fn permissions_map_to_etcds_numbers_and_back() {
        for (p, n) in [
            (Permission::Read, 0),
            (Permission::Write, 1),
            (Permission::ReadWrite, 2),
        ] {
            assert_eq!(p.into_proto() as i32, n);
            assert_eq!(Permission::from_proto(n).unwrap(), p);
        }
        let err = Permission::from_proto(3).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
    }

    #[test]
    fn stored_permissions_keep_their_range() {
        let p = KeyPermission::from_proto(authpb::Permission {
            perm_type: 1,
            key: b"a/".to_vec(),
            range_end: b"a0".to_vec(),
        })
        .unwrap();
        assert_eq!(p.permission(), Permission::Write);
        assert_eq!(p.keys(), &KeyRange::prefix("a/"));
        assert_eq!(
            p,
            KeyPermission::new(Permission::Write, KeyRange::prefix("a/"))
        );
    }
}
