//! Leader election with Go's key layout: `etcdctl elect` and etcd's Election service see it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::Stream;
use futures_util::stream::{BoxStream, StreamExt};

use super::{KeyGuard, Session, owner_key, prefix_of, wait_deletes, with_deadline};
use crate::call::{Call, CallOptions};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Compare, GetResponse, Kv, Op, ResponseHeader};
use crate::watch::{EventKind, WatchStream};

/// A leader election over a [`Session`] (Go's `concurrency.Election`). Cheap to clone;
/// clones share the candidacy.
///
/// A candidate of the election named `pfx` is the key `pfx/<session lease in lowercase
/// hex>`, whose value is its proposal, put with the session's lease; the leader is the key
/// with the lowest create revision under `pfx/`. That is Go's layout, so this election, Go
/// programs, `etcdctl elect pfx` and etcd's Election service
/// ([`Client::election_service`](crate::Client::election_service)) see each other.
///
/// ```no_run
/// # async fn demo(client: etcdv3::Client) -> etcdv3::Result<()> {
/// use etcdv3::{Election, Session};
///
/// let session = Session::new(&client).ttl(10).await?;
/// let election = Election::new(&session, "service/leader")?;
/// election.campaign("10.0.0.1:8080").await?; // returns once elected
/// election.proclaim("10.0.0.1:9090").await?; // a new value, still leader
/// election.resign().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Election {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    session: Session,
    prefix: Vec<u8>,
    state: StdMutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The candidate key while campaigning or leading; empty otherwise.
    key: Vec<u8>,
    /// Its create revision.
    rev: i64,
    header: Option<ResponseHeader>,
}

/// An [`Election::campaign`] being built; `.await` it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CampaignOp {
    value: Vec<u8>,
}

/// An [`Election::proclaim`] being built; `.await` it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProclaimOp {
    value: Vec<u8>,
}

/// An [`Election::resign`] being built; `.await` it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ResignOp {}

/// An [`Election::leader`] being built; `.await` it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LeaderOp {}

impl Election {
    /// The election named `name` (Go's `NewElection`): its keys are under `name + "/"`.
    /// Nothing is sent. An empty name fails with [`ErrorKind::InvalidRequest`].
    pub fn new(session: &Session, name: impl Into<Vec<u8>>) -> Result<Election> {
        Ok(Election::with_state(
            session,
            prefix_of("election", name.into())?,
            State::default(),
        ))
    }

    /// The election named `name` led by `key` created at revision `rev` with this session's
    /// lease (Go's `ResumeElection`), e.g. after a restart with
    /// [`SessionBuilder::lease`](crate::SessionBuilder::lease), or from a
    /// [`LeaderKey`](crate::LeaderKey) of the Election service. Nothing is sent; `proclaim`
    /// and `resign` then act as that leader.
    ///
    /// Unlike Go, which keeps `name` without the `/` here, the prefix is `name + "/"` as for
    /// [`new`](Self::new), so [`observe`](Self::observe) sees the same keys. An empty name,
    /// a key outside `name/` or a revision ≤ 0 fail with [`ErrorKind::InvalidRequest`].
    pub fn resume(
        session: &Session,
        name: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
        rev: i64,
    ) -> Result<Election> {
        let prefix = prefix_of("election", name.into())?;
        let key = key.into();
        if !key.starts_with(&prefix) || key.len() == prefix.len() {
            return Err(Error::invalid(format!(
                "election: the leader key {:?} is not under the prefix {:?}",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&prefix)
            )));
        }
        if rev <= 0 {
            return Err(Error::invalid(format!(
                "election: the leader revision must be positive (got {rev})"
            )));
        }
        Ok(Election::with_state(
            session,
            prefix,
            State {
                key,
                rev,
                header: None,
            },
        ))
    }

    fn with_state(session: &Session, prefix: Vec<u8>, state: State) -> Election {
        Election {
            inner: Arc::new(Inner {
                session: session.clone(),
                prefix,
                state: StdMutex::new(state),
            }),
        }
    }

    /// Runs for leader with `value` as proposal and returns once elected, waiting for as long
    /// as it takes unless the call sets a `.timeout(d)` (Go's `Campaign`).
    ///
    /// One transaction creates this session's key with `value` if absent; an existing key
    /// (this session campaigned before) keeps its revision and gets `value` by a proclaim.
    /// It then waits until every key created before it is deleted, watching only the one
    /// created just before.
    ///
    /// On failure, a timeout, or when the future is dropped, the key is deleted (in the
    /// background) so the candidacy never blocks others or wins unseen. Go keeps the key
    /// when the wait fails for another reason than its context.
    pub fn campaign(&self, value: impl Into<Vec<u8>>) -> Call<Election, CampaignOp> {
        Call::new(
            self.clone(),
            CampaignOp {
                value: value.into(),
            },
        )
    }

    /// Sets the leader's value to `value` without a new election (Go's `Proclaim`). Fails with
    /// [`ErrorKind::NotElectionLeader`] when this candidate is not the leader (never elected,
    /// resigned, or its key was deleted or replaced).
    pub fn proclaim(&self, value: impl Into<Vec<u8>>) -> Call<Election, ProclaimOp> {
        Call::new(
            self.clone(),
            ProclaimOp {
                value: value.into(),
            },
        )
    }

    /// Gives up leadership (Go's `Resign`): deletes the key if it is still this
    /// candidacy's. `Ok` when not leader.
    pub fn resign(&self) -> Call<Election, ResignOp> {
        Call::new(self.clone(), ResignOp {})
    }

    /// The current leader (Go's `Leader`): the first-created key under the prefix, as the
    /// one key of a [`GetResponse`]. Fails with [`ErrorKind::NoElectionLeader`] when there is
    /// none.
    pub fn leader(&self) -> Call<Election, LeaderOp> {
        Call::new(self.clone(), LeaderOp {})
    }

    /// Follows the leader (Go's `Observe`): yields the leader now (or, when there is none,
    /// the first candidate that appears), then each value it proclaims, then the next leader
    /// once it goes, and so on. Each item is a [`GetResponse`] with the leader as its one key.
    ///
    /// The stream ends after yielding the error of a read or watch that failed (Go's channel
    /// closes silently); dropping it stops following.
    ///
    /// ```no_run
    /// # async fn demo(election: etcdv3::Election) -> etcdv3::Result<()> {
    /// let mut leaders = election.observe();
    /// while let Some(leader) = leaders.message().await? {
    ///     println!("leader: {:?}", leader.kvs()[0].value_str()?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn observe(&self) -> LeaderStream {
        LeaderStream::new(
            self.inner.session.client().clone(),
            self.inner.prefix.clone(),
        )
    }

    /// The candidate key while campaigning or leading (`name/<lease in hex>`); empty
    /// otherwise.
    pub fn key(&self) -> Vec<u8> {
        self.state().key.clone()
    }

    /// The create revision of the candidate key (0 when there is none).
    pub fn rev(&self) -> i64 {
        self.state().rev
    }

    /// The header of the last answer that changed the candidacy (campaign, proclaim,
    /// resign).
    pub fn header(&self) -> Option<ResponseHeader> {
        self.state().header
    }

    /// The session of this election.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn not_leader() -> Error {
        Error::new(ErrorKind::NotElectionLeader, "election: not leader")
    }

    async fn campaign_now(self, op: CampaignOp, options: CallOptions) -> Result<()> {
        let session = &self.inner.session;
        let client = session.client().clone();
        let key = owner_key(&self.inner.prefix, session.lease());
        let guard = KeyGuard::new(&client, key.clone());
        let attempt = async {
            let resp = client
                .kv()
                .txn()
                .when([Compare::create_revision(key.clone()).eq(0)])
                .and_then([Op::put(key.clone(), op.value.clone()).lease(session.lease())])
                .or_else([Op::get(key.clone())])
                .options(super::prompt(options))
                .await?;
            let header = *resp.header();
            let mut rev = header.revision();
            if !resp.succeeded() {
                let existing = resp
                    .responses()
                    .first()
                    .and_then(|r| r.as_get())
                    .and_then(|g| g.kvs().first())
                    .ok_or_else(|| {
                        Error::protocol("the candidate key vanished within a transaction")
                    })?;
                rev = existing.create_revision();
                let changed = existing.value() != op.value.as_slice();
                self.set(key.clone(), rev, header);
                if changed {
                    self.proclaim_now(
                        ProclaimOp {
                            value: op.value.clone(),
                        },
                        super::prompt(options),
                    )
                    .await?;
                }
            }
            self.set(key.clone(), rev, header);
            wait_deletes(&client, &self.inner.prefix, rev - 1, options).await?;
            Ok(())
        };
        match with_deadline(options, attempt).await {
            Ok(()) => {
                guard.disarm();
                Ok(())
            }
            Err(e) => {
                *self.state() = State::default();
                Err(e)
            }
        }
    }

    fn set(&self, key: Vec<u8>, rev: i64, header: ResponseHeader) {
        let mut s = self.state();
        s.key = key;
        s.rev = rev;
        s.header = Some(header);
    }

    async fn proclaim_now(&self, op: ProclaimOp, options: CallOptions) -> Result<()> {
        let put = |key: Vec<u8>| Op::put(key, op.value).lease(self.inner.session.lease());
        let Some(resp) = self.if_candidate(put, options).await? else {
            return Err(Self::not_leader());
        };
        if !resp.succeeded() {
            *self.state() = State::default();
            return Err(Self::not_leader());
        }
        self.state().header = Some(*resp.header());
        Ok(())
    }

    /// Runs `op(key)` on this candidacy's key in a transaction guarded by its create
    /// revision; `None` when there is no candidacy.
    async fn if_candidate<O: Into<Op>>(
        &self,
        op: impl FnOnce(Vec<u8>) -> O,
        options: CallOptions,
    ) -> Result<Option<crate::kv::TxnResponse>> {
        let (key, rev) = {
            let s = self.state();
            (s.key.clone(), s.rev)
        };
        if key.is_empty() {
            return Ok(None);
        }
        self.inner
            .session
            .client()
            .kv()
            .txn()
            .when([Compare::create_revision(key.clone()).eq(rev)])
            .and_then([op(key)])
            .options(options)
            .await
            .map(Some)
    }

    async fn proclaim_owned(self, op: ProclaimOp, options: CallOptions) -> Result<()> {
        self.proclaim_now(op, options).await
    }

    async fn resign_now(self, _op: ResignOp, options: CallOptions) -> Result<()> {
        let resp = match self.if_candidate(Op::delete, options).await {
            Ok(None) => return Ok(()),
            Ok(Some(resp)) => Ok(resp),
            Err(e) => Err(e),
        };
        let header = resp.as_ref().ok().map(|r| *r.header());
        *self.state() = State {
            header,
            ..State::default()
        };
        resp.map(drop)
    }

    async fn leader_now(self, _op: LeaderOp, options: CallOptions) -> Result<GetResponse> {
        let resp = self
            .inner
            .session
            .client()
            .kv()
            .get(self.inner.prefix.clone())
            .first_create()
            .options(options)
            .await?;
        if resp.kvs().is_empty() {
            return Err(Error::new(
                ErrorKind::NoElectionLeader,
                "election: no leader",
            ));
        }
        Ok(resp)
    }
}

crate::call::call_futures!(Election {
    CampaignOp => (): campaign_now,
    ProclaimOp => (): proclaim_owned,
    ResignOp => (): resign_now,
    LeaderOp => GetResponse: leader_now,
});

/// The leaders of an election, as they change: from [`Election::observe`].
///
/// Read it with [`message`](Self::message) or as a [`Stream`]. Each item is a
/// [`GetResponse`] whose one key is the leader (its value the proclaimed proposal).
pub struct LeaderStream {
    inner: BoxStream<'static, Result<GetResponse>>,
}

impl std::fmt::Debug for LeaderStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderStream").finish_non_exhaustive()
    }
}

impl LeaderStream {
    fn new(client: Client, prefix: Vec<u8>) -> Self {
        let state = Observer {
            client,
            prefix,
            watch: None,
            pending: VecDeque::new(),
            ended: false,
        };
        let inner = futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next().await?;
            Some((item, st))
        })
        .boxed();
        LeaderStream { inner }
    }

    /// The next leader or proclamation; an error when following failed, then `None`.
    pub async fn message(&mut self) -> Result<Option<GetResponse>> {
        self.inner.next().await.transpose()
    }
}

impl Stream for LeaderStream {
    type Item = Result<GetResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Go's observe loop, as a state machine.
struct Observer {
    client: Client,
    prefix: Vec<u8>,
    /// The watch of the current leader's key.
    watch: Option<WatchStream>,
    pending: VecDeque<GetResponse>,
    ended: bool,
}

impl Observer {
    async fn next(&mut self) -> Option<Result<GetResponse>> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(Ok(r));
            }
            if self.ended {
                return None;
            }
            let result = match self.watch.as_mut() {
                None => self.find_leader().await.map(Some),
                Some(watch) => match watch.message().await {
                    Ok(Some(resp)) => {
                        for event in resp.events() {
                            if event.kind() == EventKind::Delete {
                                self.watch = None;
                                break;
                            }
                            self.pending.push_back(GetResponse::from_parts(
                                *resp.header(),
                                vec![event.kv().clone()],
                            ));
                        }
                        Ok(None)
                    }
                    Ok(None) => {
                        self.ended = true;
                        Ok(None)
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(Some(leader)) => return Some(Ok(leader)),
                Ok(None) => {}
                Err(e) => {
                    self.ended = true;
                    self.watch = None;
                    return Some(Err(e));
                }
            }
        }
    }

    /// The leader now, or the first candidate put when there is none; starts watching its
    /// key.
    async fn find_leader(&mut self) -> Result<GetResponse> {
        let resp = self
            .client
            .kv()
            .get(self.prefix.clone())
            .first_create()
            .await?;
        let leader = match resp.kvs().first() {
            Some(_) => resp,
            None => {
                let mut watch = self
                    .client
                    .watch(self.prefix.clone())
                    .prefix()
                    .start_revision(resp.header().revision())
                    .await?;
                loop {
                    let Some(w) = watch.message().await? else {
                        return Err(Error::protocol(
                            "the watch for a first candidate ended without one",
                        ));
                    };
                    if let Some(put) = w.events().iter().find(|e| e.kind() == EventKind::Put) {
                        let kv = put.kv().clone();
                        let header = w.header().with_revision(kv.mod_revision());
                        break GetResponse::from_parts(header, vec![kv]);
                    }
                }
            }
        };
        let kv = &leader.kvs()[0];
        let watch = self
            .client
            .watch(kv.key().to_vec())
            .start_revision(leader.header().revision() + 1)
            .await?;
        self.watch = Some(watch);
        Ok(leader)
    }
}
