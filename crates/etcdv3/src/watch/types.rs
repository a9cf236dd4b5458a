//! What a watch yields: responses and their events.

use etcdv3_proto::{etcdserverpb as pb, mvccpb};

use crate::kv::{KeyValue, ResponseHeader, header};

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was written (created or modified).
    Put,
    /// The key was deleted (by a delete, or because its lease ended).
    Delete,
}

/// One change to one key, at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    kind: EventKind,
    kv: KeyValue,
    prev_kv: Option<KeyValue>,
}

impl Event {
    /// Whether the key was written or deleted.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The key after the change. For a delete: the key, its deletion revision as
    /// `mod_revision`, and no value.
    pub fn kv(&self) -> &KeyValue {
        &self.kv
    }

    /// The key before the change, when the watch asked for it
    /// ([`prev_kv`](crate::WatchOp::prev_kv)) and etcd still had it: `None` for a create,
    /// and when the previous revision was compacted away.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    /// The revision of the change (the key's `mod_revision`).
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision()
    }

    /// A put that created the key (its first version).
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.kv.create_revision() == self.kv.mod_revision()
    }

    /// A put to a key that already existed.
    pub fn is_modify(&self) -> bool {
        self.kind == EventKind::Put && self.kv.create_revision() != self.kv.mod_revision()
    }

    /// Takes the key after the change and the one before it out of the event.
    pub fn into_parts(self) -> (KeyValue, Option<KeyValue>) {
        (self.kv, self.prev_kv)
    }

    /// A put event for a key as it is (for a resync).
    pub(crate) fn put(kv: KeyValue) -> Self {
        Event {
            kind: EventKind::Put,
            kv,
            prev_kv: None,
        }
    }
}

impl From<mvccpb::Event> for Event {
    fn from(e: mvccpb::Event) -> Self {
        let kind = match mvccpb::event::EventType::try_from(e.r#type) {
            Ok(mvccpb::event::EventType::Delete) => EventKind::Delete,
            _ => EventKind::Put,
        };
        Event {
            kind,
            kv: e.kv.map(KeyValue::from).unwrap_or_default(),
            prev_kv: e.prev_kv.map(KeyValue::from),
        }
    }
}

/// One message of a watch: events, a progress notification, the creation notice, or a
/// resync after compaction.
///
/// The ending messages of etcd's protocol (cancelled, compacted) are not responses: the
/// [`WatchStream`](crate::WatchStream) yields them as errors.
#[derive(Debug, Clone, Default)]
pub struct WatchResponse {
    header: ResponseHeader,
    watch_id: i64,
    events: Vec<Event>,
    compact_revision: i64,
    created: bool,
    resync: bool,
}

impl WatchResponse {
    /// The response header. Its revision is the store's revision when etcd sent the
    /// response: every change up to it that the watch covers has been delivered.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The ID etcd gave the watch on the stream that carried this response (a resumed watch
    /// gets a new one). `-1` for a progress answer to a
    /// [`request_progress`](crate::WatchHandle::request_progress).
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// The changes, in revision order. Several events can share a revision (one
    /// transaction); a revision is never split between responses.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Takes the events out.
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// The compaction revision etcd reported, or 0. Compaction ends a watch with an error
    /// ([`Error::compact_revision`](crate::Error::compact_revision)); a response carries it
    /// only as the resync that replaced the lost events
    /// ([`resync_on_compaction`](crate::WatchOp::resync_on_compaction)).
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// The notice that etcd created the watch, delivered first and once when the watch asked
    /// for it ([`created_notify`](crate::WatchOp::created_notify)), never again on resumes.
    pub fn is_created(&self) -> bool {
        self.created
    }

    /// A progress notification: no events, only the header revision, up to which everything
    /// has been delivered.
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
            && !self.created
            && !self.resync
            && self.compact_revision == 0
            && self.header.revision() != 0
    }

    /// The whole current state of the watched range after a compaction took away events the
    /// watch had not delivered ([`resync_on_compaction`](crate::WatchOp::resync_on_compaction)):
    /// every key as a put event, read at the header's revision. Replace what you knew of the
    /// range with it; the events after it continue from the header's revision + 1.
    pub fn is_resync(&self) -> bool {
        self.resync
    }

    pub(crate) fn from_pb(resp: pb::WatchResponse) -> Self {
        WatchResponse {
            header: header(resp.header),
            watch_id: resp.watch_id,
            events: resp.events.into_iter().map(Event::from).collect(),
            compact_revision: 0,
            created: resp.created,
            resync: false,
        }
    }

    pub(crate) fn resync(
        header: ResponseHeader,
        watch_id: i64,
        kvs: Vec<KeyValue>,
        compact_revision: i64,
    ) -> Self {
        WatchResponse {
            header,
            watch_id,
            events: kvs.into_iter().map(Event::put).collect(),
            compact_revision,
            created: false,
            resync: true,
        }
    }

    /// The revision of the last event, if any.
    pub(crate) fn last_revision(&self) -> Option<i64> {
        self.events.last().map(Event::revision)
    }

    /// Drops the events below `rev` (already delivered before a resume).
    pub(crate) fn skip_below(&mut self, rev: i64) {
        if self.events.first().is_some_and(|e| e.revision() < rev) {
            self.events.retain(|e| e.revision() >= rev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: i64, modr: i64) -> mvccpb::KeyValue {
        mvccpb::KeyValue {
            key: key.into(),
            create_revision: create,
            mod_revision: modr,
            version: 1,
            ..Default::default()
        }
    }

    #[test]
    fn event_kinds() {
        let create = Event::from(mvccpb::Event {
            r#type: 0,
            kv: Some(kv("a", 5, 5)),
            prev_kv: None,
        });
        assert!(create.is_create() && !create.is_modify());
        let modify = Event::from(mvccpb::Event {
            r#type: 0,
            kv: Some(kv("a", 5, 6)),
            prev_kv: Some(kv("a", 5, 5)),
        });
        assert!(modify.is_modify() && !modify.is_create());
        assert_eq!(modify.prev_kv().unwrap().mod_revision(), 5);
        let delete = Event::from(mvccpb::Event {
            r#type: 1,
            kv: Some(kv("a", 0, 7)),
            prev_kv: None,
        });
        assert_eq!(delete.kind(), EventKind::Delete);
        assert!(!delete.is_create() && !delete.is_modify());
        assert_eq!(delete.revision(), 7);
    }

    #[test]
    fn skipping_delivered_revisions() {
        let mut resp = WatchResponse::from_pb(pb::WatchResponse {
            events: (3..7)
                .map(|r| mvccpb::Event {
                    r#type: 0,
                    kv: Some(kv("k", 1, r)),
                    prev_kv: None,
                })
                .collect(),
            ..Default::default()
        });
        resp.skip_below(5);
        let revs: Vec<_> = resp.events().iter().map(Event::revision).collect();
        assert_eq!(revs, [5, 6]);
        assert_eq!(resp.last_revision(), Some(6));
        assert!(!resp.is_progress_notify(), "events");
        resp.skip_below(10);
        assert!(resp.events().is_empty());
    }

    #[test]
    fn progress_needs_a_revision() {
        let mut resp = WatchResponse::from_pb(pb::WatchResponse::default());
        assert!(!resp.is_progress_notify());
        resp.header = header(Some(pb::ResponseHeader {
            revision: 4,
            ..Default::default()
        }));
        assert!(resp.is_progress_notify());
        resp.created = true;
        assert!(!resp.is_progress_notify());
    }
}
