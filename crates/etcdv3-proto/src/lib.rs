//! Protocol definitions for the etcd v3 gRPC API (messages and clients
//! through etcd 3.7).
//!
//! The Rust types are generated at build time from the `.proto` files in this
//! crate's `proto/` directory, using `protox` and `tonic-prost-build` (no
//! `protoc` binary is required). Each proto package becomes a module of the
//! same name. Server traits are generated as well when the `server` feature is
//! enabled.
//!
//! This is a low-level crate: the `etcdv3` client crate uses these types
//! internally and does not expose them in its public API.

/// Storage-level types: `KeyValue` and watch `Event`s (proto package `mvccpb`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// Users, roles and permissions (proto package `authpb`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// The main services: KV, Watch, Lease, Cluster, Maintenance and Auth
/// (proto package `etcdserverpb`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// The distributed lock service (proto package `v3lockpb`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

/// The leader election service (proto package `v3electionpb`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use crate::etcdserverpb::{
        Compare, RangeResponse, RangeStreamResponse, RequestOp, ResponseHeader, StatusResponse,
        TxnRequest, WatchCreateRequest, WatchRequest, WatchResponse, compare, request_op,
        watch_request,
    };
    use crate::mvccpb::{Event, KeyValue, event::EventType};

    /// Encodes a protobuf tag (field number + wire type) as a varint.
    fn tag(field: u32, wire_type: u32) -> Vec<u8> {
        let mut v = u64::from((field << 3) | wire_type);
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    const VARINT: u32 = 0;
    const LEN: u32 = 2;

    #[test]
    fn compare_range_end_is_field_64_and_target_union_oneof() {
        let cmp = Compare {
            range_end: b"x".to_vec(),
            ..Default::default()
        };
        let buf = cmp.encode_to_vec();
        // Field 64, length-delimited => tag varint 0x82 0x04, then len 1, then "x".
        assert_eq!(tag(64, LEN), vec![0x82, 0x04]);
        assert_eq!(buf, vec![0x82, 0x04, 0x01, b'x']);

        let cmp = Compare {
            result: compare::CompareResult::NotEqual as i32,
            target: compare::CompareTarget::Lease as i32,
            key: b"k".to_vec(),
            target_union: Some(compare::TargetUnion::Lease(7)),
            range_end: Vec::new(),
        };
        let buf = cmp.encode_to_vec();
        let mut expected = Vec::new();
        expected.extend(tag(1, VARINT));
        expected.push(3);
        expected.extend(tag(2, VARINT));
        expected.push(4);
        expected.extend(tag(3, LEN));
        expected.extend([1, b'k']);
        expected.extend(tag(8, VARINT));
        expected.push(7);
        assert_eq!(buf, expected);
        assert_eq!(Compare::decode(buf.as_slice()).unwrap(), cmp);

        let mod_rev = Compare {
            target_union: Some(compare::TargetUnion::ModRevision(5)),
            ..Default::default()
        };
        assert_eq!(mod_rev.encode_to_vec(), [tag(6, VARINT), vec![5]].concat());
    }

    #[test]
    fn watch_response_events_is_field_11() {
        let resp = WatchResponse {
            events: vec![Event::default()],
            ..Default::default()
        };
        // An empty Event encodes as a zero-length embedded message.
        assert_eq!(resp.encode_to_vec(), [tag(11, LEN), vec![0]].concat());

        let resp = WatchResponse {
            header: Some(ResponseHeader {
                revision: 9,
                ..Default::default()
            }),
            watch_id: 3,
            created: true,
            cancel_reason: "gone".into(),
            fragment: true,
            events: vec![Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    key: b"a".to_vec(),
                    mod_revision: 9,
                    ..Default::default()
                }),
                prev_kv: None,
            }],
            ..Default::default()
        };
        let decoded = WatchResponse::decode(resp.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, resp);
        assert_eq!(decoded.events[0].r#type(), EventType::Delete);
    }

    #[test]
    fn watch_request_oneof_and_create_fields() {
        let req = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    watch_id: 1,
                    fragment: true,
                    ..Default::default()
                },
            )),
        };
        // create_request = 1 { watch_id = 7 (varint 1), fragment = 8 (varint 1) }
        let inner = [tag(7, VARINT), vec![1], tag(8, VARINT), vec![1]].concat();
        let expected = [tag(1, LEN), vec![inner.len() as u8], inner].concat();
        assert_eq!(req.encode_to_vec(), expected);
        assert_eq!(WatchRequest::decode(expected.as_slice()).unwrap(), req);
    }

    #[test]
    fn nested_txn_is_request_op_field_4() {
        let op = RequestOp {
            request: Some(request_op::Request::RequestTxn(TxnRequest::default())),
        };
        assert_eq!(op.encode_to_vec(), [tag(4, LEN), vec![0]].concat());
    }

    #[test]
    fn status_response_late_fields() {
        let resp = StatusResponse {
            db_size_quota: 2,
            ..Default::default()
        };
        assert_eq!(resp.encode_to_vec(), [tag(12, VARINT), vec![2]].concat());
        let resp = StatusResponse {
            storage_version: "3.6.0".into(),
            ..Default::default()
        };
        let buf = resp.encode_to_vec();
        assert_eq!(buf[0], tag(11, LEN)[0]);
        assert_eq!(StatusResponse::decode(buf.as_slice()).unwrap(), resp);
    }

    #[test]
    fn range_stream_response_wraps_range_response() {
        let msg = RangeStreamResponse {
            range_response: Some(RangeResponse {
                count: 1,
                ..Default::default()
            }),
        };
        let inner = [tag(4, VARINT), vec![1]].concat();
        assert_eq!(
            msg.encode_to_vec(),
            [tag(1, LEN), vec![inner.len() as u8], inner].concat()
        );
    }
}
