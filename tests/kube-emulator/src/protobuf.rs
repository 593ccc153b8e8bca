//! Decoding of the protobuf request bodies kubectl's typed clients send
//! (`kubectl create namespace|secret|configmap|serviceaccount`, `kubectl auth
//! can-i`). The wire format is generic; a small field table per message maps
//! it to the JSON the rest of the emulator speaks.

use serde_json::{Map, Value, json};

use crate::admission::base64_encode;
use crate::status::{ApiError, ApiResult};

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Time,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    RepStr,
    RepMsg(&'static [Field]),
}

type Field = (u64, &'static str, Ty);

const OWNER_REF: &[Field] = &[
    (1, "kind", Ty::Str),
    (3, "name", Ty::Str),
    (4, "uid", Ty::Str),
    (5, "apiVersion", Ty::Str),
    (6, "controller", Ty::Bool),
    (7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
    (5, "uid", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "generation", Ty::Int),
    (8, "creationTimestamp", Ty::Time),
    (11, "labels", Ty::MapStr),
    (12, "annotations", Ty::MapStr),
    (13, "ownerReferences", Ty::RepMsg(OWNER_REF)),
    (14, "finalizers", Ty::RepStr),
];

const NAMESPACE: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(&[(1, "finalizers", Ty::RepStr)])),
];

const SECRET: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapBytes),
    (3, "type", Ty::Str),
    (4, "stringData", Ty::MapStr),
    (5, "immutable", Ty::Bool),
];

const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapStr),
    (3, "binaryData", Ty::MapBytes),
    (4, "immutable", Ty::Bool),
];

const LOCAL_OBJECT_REF: &[Field] = &[(1, "name", Ty::Str)];

const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (3, "imagePullSecrets", Ty::RepMsg(LOCAL_OBJECT_REF)),
    (4, "automountServiceAccountToken", Ty::Bool),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Ty::Str),
    (2, "verb", Ty::Str),
    (3, "group", Ty::Str),
    (4, "version", Ty::Str),
    (5, "resource", Ty::Str),
    (6, "subresource", Ty::Str),
    (7, "name", Ty::Str),
];

const ACCESS_REVIEW: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Ty::Msg(&[
            (1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
            (
                2,
                "nonResourceAttributes",
                Ty::Msg(&[(1, "path", Ty::Str), (2, "verb", Ty::Str)]),
            ),
        ]),
    ),
];

const RULES_REVIEW: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(&[(1, "namespace", Ty::Str)])),
];

const DELETE_OPTIONS: &[Field] = &[
    (1, "gracePeriodSeconds", Ty::Int),
    (
        2,
        "preconditions",
        Ty::Msg(&[(1, "uid", Ty::Str), (2, "resourceVersion", Ty::Str)]),
    ),
    (3, "orphanDependents", Ty::Bool),
    (4, "propagationPolicy", Ty::Str),
    (5, "dryRun", Ty::RepStr),
];

fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => RULES_REVIEW,
        (_, "DeleteOptions") => DELETE_OPTIONS,
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// The next field: its number, and its payload (varint value or bytes).
    fn field(&mut self) -> Option<(u64, Payload<'a>)> {
        let tag = self.varint()?;
        let payload = match tag & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Bytes(self.take(8)?),
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Payload::Bytes(self.take(len)?)
            }
            5 => Payload::Bytes(self.take(4)?),
            _ => return None,
        };
        Some((tag >> 3, payload))
    }
}

enum Payload<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Payload<'_>)>> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while !r.buf.is_empty() {
        out.push(r.field()?);
    }
    Some(out)
}

fn string(p: &Payload) -> Option<String> {
    match p {
        Payload::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Payload::Varint(_) => None,
    }
}

fn map_entry(p: &Payload, bytes_value: bool) -> Option<(String, Value)> {
    let Payload::Bytes(b) = p else { return None };
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, f) in fields(b)? {
        match (n, &f) {
            (1, _) => key = string(&f)?,
            (2, Payload::Bytes(v)) if bytes_value => value = json!(base64_encode(v)),
            (2, _) => value = json!(string(&f)?),
            _ => {}
        }
    }
    Some((key, value))
}

fn decode_message(buf: &[u8], schema: &[Field]) -> Option<Value> {
    let mut out = Map::new();
    for (number, payload) in fields(buf)? {
        let Some((_, name, ty)) = schema.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let name = (*name).to_string();
        match (ty, &payload) {
            (Ty::Str, _) => {
                out.insert(name, json!(string(&payload)?));
            }
            (Ty::Int, Payload::Varint(v)) => {
                out.insert(name, json!(*v as i64));
            }
            (Ty::Bool, Payload::Varint(v)) => {
                out.insert(name, json!(*v != 0));
            }
            (Ty::Time, Payload::Bytes(b)) => {
                let t = decode_message(b, &[(1, "seconds", Ty::Int)])?;
                let secs = t["seconds"].as_i64().unwrap_or(0);
                let ts = jiff::Timestamp::from_second(secs).ok()?;
                out.insert(name, json!(crate::time::format_time(ts)));
            }
            (Ty::Msg(inner), Payload::Bytes(b)) => {
                out.insert(name, decode_message(b, inner)?);
            }
            (Ty::MapStr | Ty::MapBytes, _) => {
                let (k, v) = map_entry(&payload, matches!(ty, Ty::MapBytes))?;
                out.entry(name).or_insert_with(|| json!({}))[k] = v;
            }
            (Ty::RepStr, _) => {
                let s = string(&payload)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()?
                    .push(json!(s));
            }
            (Ty::RepMsg(inner), Payload::Bytes(b)) => {
                let item = decode_message(b, inner)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()?
                    .push(item);
            }
            _ => return None,
        }
    }
    Some(Value::Object(out))
}

/// Decodes a `k8s\0`-prefixed protobuf body into the JSON object it carries.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let malformed = || ApiError::bad_request("the protobuf request body is malformed");
    let envelope = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, p) in fields(envelope).ok_or_else(malformed)? {
        match (n, p) {
            (1, Payload::Bytes(type_meta)) => {
                for (tn, tp) in fields(type_meta).ok_or_else(malformed)? {
                    match tn {
                        1 => api_version = string(&tp).unwrap_or_default(),
                        2 => kind = string(&tp).unwrap_or_default(),
                        _ => {}
                    }
                }
            }
            (2, Payload::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = schema(&api_version, &kind)
        .ok_or_else(|| ApiError::unsupported_protobuf(&format!("{api_version} {kind}")))?;
    let mut obj = decode_message(raw, schema).ok_or_else(malformed)?;
    if kind != "DeleteOptions" {
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_secret_in_its_envelope() {
        let meta = field(1, b"db");
        let entry = [field(1, b"URL"), field(2, b"postgres://x")].concat();
        let secret = [field(1, &meta), field(2, &entry), field(3, b"Opaque")].concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(obj["metadata"]["name"], "db");
        assert_eq!(obj["data"]["URL"], base64_encode(b"postgres://x"));
        assert_eq!(obj["kind"], "Secret");
    }
}
