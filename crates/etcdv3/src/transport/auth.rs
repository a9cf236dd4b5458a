//! Credentials and the shared auth token: one token per client, put on every call and stream
//! open, fetched again (once, for every call waiting on it) when etcd says it is no longer
//! good.

use std::sync::{PoisonError, RwLock};

use etcdv3_proto::etcdserverpb as pb;
use http::HeaderValue;

use crate::error::{Error, Result};

/// A password, password hash or token: kept out of `Debug` output, errors and logs (shown as
/// `<redacted>`, or `<empty>` when empty).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

/// How a client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// A user and password: the client authenticates and refreshes its token.
    Password { user: String, password: Secret },
    /// A token obtained elsewhere, sent as is and never refreshed.
    Token(Secret),
}

/// The token a call was sent with: its generation, so that a refresh is done once for all
/// the calls that failed with the same token.
pub(crate) type TokenGeneration = u64;

/// The client's credentials and current token.
#[derive(Debug)]
pub(crate) struct Auth {
    credentials: Option<Credentials>,
    token: RwLock<Option<(HeaderValue, TokenGeneration)>>,
    /// Held while a refresh is under way.
    refreshing: tokio::sync::Mutex<()>,
}

impl Auth {
    pub(crate) fn new(credentials: Option<Credentials>) -> Result<Self> {
        let token = match &credentials {
            Some(Credentials::Token(t)) => Some((header(t.expose())?, 0)),
            _ => None,
        };
        Ok(Auth {
            credentials,
            token: RwLock::new(token),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether the client can fetch a new token (it has a user and password).
    pub(crate) fn can_refresh(&self) -> bool {
        matches!(self.credentials, Some(Credentials::Password { .. }))
    }

    /// The token to send, and its generation (0 when there is none).
    pub(crate) fn token(&self) -> Option<(HeaderValue, TokenGeneration)> {
        self.credentials.as_ref()?;
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn generation(&self) -> TokenGeneration {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |(_, g)| *g)
    }

    /// The authenticate request, for a client with a user and password.
    pub(crate) fn request(&self) -> Option<pb::AuthenticateRequest> {
        match &self.credentials {
            Some(Credentials::Password { user, password }) => Some(pb::AuthenticateRequest {
                name: user.clone(),
                password: password.expose().to_owned(),
            }),
            _ => None,
        }
    }

    /// Replaces the token (or clears it: auth is not enabled).
    pub(crate) fn store(&self, token: Option<&str>) -> Result<()> {
        let value = token.map(header).transpose()?;
        let mut t = self.token.write().unwrap_or_else(PoisonError::into_inner);
        let next = t.as_ref().map_or(0, |(_, g)| *g) + 1;
        *t = value.map(|v| (v, next));
        Ok(())
    }

    /// Runs `fetch` to get a new token, unless the token was replaced since `seen` (another
    /// call refreshed it): callers that failed with the same token share one refresh.
    pub(crate) async fn refresh<F, Fut>(&self, seen: TokenGeneration, fetch: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>>>,
    {
        let _one_at_a_time = self.refreshing.lock().await;
        if self.generation() != seen {
            return Ok(());
        }
        let token = fetch().await?;
        self.store(token.as_deref())
    }
}

fn header(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(token).map_err(|_| {
        Error::config("the auth token has characters that cannot be sent as gRPC metadata")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = Credentials::Password {
            user: "alice".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?} {:?}", Credentials::Token(Secret::new("tok-123")));
        assert!(shown.contains("alice"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-123"),
            "{shown}"
        );
    }

    #[test]
    fn one_refresh_serves_every_call_that_failed_with_the_same_token() {
        let auth = Auth::new(Some(Credentials::Password {
            user: "u".into(),
            password: Secret::new("p"),
        }))
        .unwrap();
        assert!(auth.can_refresh());
        assert!(auth.token().is_none());
        auth.store(Some("t1")).unwrap();
        let (t, seen) = auth.token().unwrap();
        assert_eq!(t, "t1");
        let mut fetched = 0;
        auth.refresh(seen, || {
            fetched += 1;
            async { Ok(Some("t2".to_owned())) }
        })
        .now_or_never()
        .unwrap()
        .unwrap();
        // A second caller that saw t1 does not fetch again.
        auth.refresh(seen, || {
            fetched += 1;
            async { Ok(Some("t3".to_owned())) }
        })
        .now_or_never()
        .unwrap()
        .unwrap();
        assert_eq!(fetched, 1);
        assert_eq!(auth.token().unwrap().0, "t2");
        // A static token is sent and never refreshed.
        let fixed = Auth::new(Some(Credentials::Token(Secret::new("s")))).unwrap();
        assert!(!fixed.can_refresh());
        assert_eq!(fixed.token().unwrap().0, "s");
        assert!(Auth::new(None).unwrap().token().is_none());
    }
}
