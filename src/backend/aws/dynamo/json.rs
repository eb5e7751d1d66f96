//! DynamoDB's JSON (awsJson1_0) for the TransactWriteItems this service sends itself
//! (`aws::wire`): the SDK's own request types written as the wire wants them, and the
//! cancellation reasons of a refused transaction read back into the SDK's types, so the
//! ledger builds and reads items one way whichever client sends them.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The body of a TransactWriteItems. `token` (ClientRequestToken) makes the call
/// idempotent for ten minutes, so that a retry after a lost answer is not a second write.
pub fn transact_write_body(
    items: &[TransactWriteItem],
    token: &str,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Transact { items, token })
}

struct Transact<'a> {
    items: &'a [TransactWriteItem],
    token: &'a str,
}

impl Serialize for Transact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("TransactItems", &Seq(self.items, Tx))?;
        map.serialize_entry("ClientRequestToken", self.token)?;
        map.end()
    }
}

/// A slice written as a JSON array through a wrapper.
struct Seq<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for Seq<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

struct Tx<'a>(&'a TransactWriteItem);

/// The members every kind of transaction item may have beyond its key or item.
struct Common<'a> {
    table: &'a str,
    condition: Option<&'a str>,
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, AttributeValue>>,
    return_old: Option<&'a ReturnValuesOnConditionCheckFailure>,
}

/// One item: `{"Put": {...}}` and so on.
struct Op<'a> {
    /// `Key` or `Item`, and its attributes.
    key: (&'static str, &'a HashMap<String, AttributeValue>),
    update: Option<&'a str>,
    common: Common<'a>,
}

impl Serialize for Op<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = &self.common;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(self.key.0, &Item(self.key.1))?;
        if let Some(u) = self.update {
            map.serialize_entry("UpdateExpression", u)?;
        }
        map.serialize_entry("TableName", c.table)?;
        if let Some(v) = c.condition {
            map.serialize_entry("ConditionExpression", v)?;
        }
        if let Some(v) = c.names {
            map.serialize_entry("ExpressionAttributeNames", v)?;
        }
        if let Some(v) = c.values {
            map.serialize_entry("ExpressionAttributeValues", &Item(v))?;
        }
        if let Some(v) = c.return_old {
            map.serialize_entry("ReturnValuesOnConditionCheckFailure", v.as_str())?;
        }
        map.end()
    }
}

impl Serialize for Tx<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        // The four kinds share these members, but no trait of the SDK's.
        macro_rules! op {
            ($x:expr, $key:expr, $condition:expr, $update:expr) => {
                Op {
                    key: $key,
                    update: $update,
                    common: Common {
                        table: $x.table_name(),
                        condition: $condition,
                        names: $x.expression_attribute_names(),
                        values: $x.expression_attribute_values(),
                        return_old: $x.return_values_on_condition_check_failure(),
                    },
                }
            };
        }
        let (kind, op) = if let Some(c) = t.condition_check() {
            let key = ("Key", c.key());
            (
                "ConditionCheck",
                op!(c, key, Some(c.condition_expression()), None),
            )
        } else if let Some(p) = t.put() {
            (
                "Put",
                op!(p, ("Item", p.item()), p.condition_expression(), None),
            )
        } else if let Some(u) = t.update() {
            let update = Some(u.update_expression());
            (
                "Update",
                op!(u, ("Key", u.key()), u.condition_expression(), update),
            )
        } else if let Some(d) = t.delete() {
            (
                "Delete",
                op!(d, ("Key", d.key()), d.condition_expression(), None),
            )
        } else {
            return Err(S::Error::custom("a transaction item with no operation"));
        };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(kind, &op)?;
        map.end()
    }
}

/// An item's attributes: `{"name": {"S": "..."}, ...}`.
struct Item<'a>(&'a HashMap<String, AttributeValue>);

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Attr(v))?;
        }
        map.end()
    }
}

struct Attr<'a>(&'a AttributeValue);

struct B64<'a>(&'a Blob);

impl Serialize for B64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(self.0.as_ref()))
    }
}

impl Serialize for Attr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self.0 {
            AttributeValue::S(v) => map.serialize_entry("S", v)?,
            AttributeValue::N(v) => map.serialize_entry("N", v)?,
            AttributeValue::Bool(v) => map.serialize_entry("BOOL", v)?,
            AttributeValue::Null(v) => map.serialize_entry("NULL", v)?,
            AttributeValue::B(v) => map.serialize_entry("B", &B64(v))?,
            AttributeValue::Ss(v) => map.serialize_entry("SS", v)?,
            AttributeValue::Ns(v) => map.serialize_entry("NS", v)?,
            AttributeValue::Bs(v) => map.serialize_entry("BS", &Seq(v, B64))?,
            AttributeValue::L(v) => map.serialize_entry("L", &Seq(v, Attr))?,
            AttributeValue::M(v) => map.serialize_entry("M", &Item(v))?,
            _ => return Err(S::Error::custom("an attribute value of an unknown type")),
        }
        map.end()
    }
}

/// The reasons of a TransactionCanceledException's answer, one per item in order, with
/// the old items the failed conditions returned.
pub fn cancellation_reasons(body: &[u8]) -> Result<Vec<CancellationReason>, String> {
    #[derive(serde::Deserialize)]
    struct Cancelled {
        #[serde(rename = "CancellationReasons", default)]
        reasons: Vec<Reason>,
    }
    #[derive(serde::Deserialize)]
    struct Reason {
        #[serde(rename = "Code")]
        code: Option<String>,
        #[serde(rename = "Message")]
        message: Option<String>,
        #[serde(rename = "Item")]
        item: Option<HashMap<String, Value>>,
    }
    let cancelled: Cancelled = serde_json::from_slice(body)
        .map_err(|e| format!("an unreadable TransactionCanceledException: {e}"))?;
    cancelled
        .reasons
        .into_iter()
        .map(|r| {
            let item = r.item.map(item_from).transpose()?;
            Ok(CancellationReason::builder()
                .set_code(r.code)
                .set_message(r.message)
                .set_item(item)
                .build())
        })
        .collect()
}

fn item_from(item: HashMap<String, Value>) -> Result<HashMap<String, AttributeValue>, String> {
    item.into_iter()
        .map(|(k, v)| Ok((k, attribute_from(v)?)))
        .collect()
}

/// One attribute value as DynamoDB writes it: an object of one type key.
fn attribute_from(v: Value) -> Result<AttributeValue, String> {
    let Value::Object(map) = v else {
        return Err("an attribute value that is not an object".into());
    };
    let mut entries = map.into_iter();
    let (Some((kind, v)), None) = (entries.next(), entries.next()) else {
        return Err("an attribute value without exactly one type".into());
    };
    let strings = |v: Value| -> Result<Vec<String>, String> {
        serde_json::from_value(v).map_err(|e| format!("a {kind} set: {e}"))
    };
    let blob = |v: Value| -> Result<Blob, String> {
        let text = v.as_str().ok_or("a binary value that is not a string")?;
        STANDARD
            .decode(text)
            .map(Blob::new)
            .map_err(|e| format!("a binary value: {e}"))
    };
    Ok(match (kind.as_str(), v) {
        ("S", Value::String(s)) => AttributeValue::S(s),
        ("N", Value::String(n)) => AttributeValue::N(n),
        ("BOOL", Value::Bool(b)) => AttributeValue::Bool(b),
        ("NULL", Value::Bool(b)) => AttributeValue::Null(b),
        ("B", v) => AttributeValue::B(blob(v)?),
        ("SS", v) => AttributeValue::Ss(strings(v)?),
        ("NS", v) => AttributeValue::Ns(strings(v)?),
        ("BS", Value::Array(v)) => {
            AttributeValue::Bs(v.into_iter().map(blob).collect::<Result<_, _>>()?)
        }
        ("L", Value::Array(v)) => AttributeValue::L(
            v.into_iter()
                .map(attribute_from)
                .collect::<Result<_, _>>()?,
        ),
        ("M", Value::Object(m)) => AttributeValue::M(item_from(m.into_iter().collect())?),
        (kind, _) => return Err(format!("an attribute value of type {kind} that is not one")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, Update};
    use serde_json::json;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn key(pk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("-"))])
    }

    /// Every kind of item, as the SDK's serializer writes it (members as in the API).
    #[test]
    fn transaction_items_are_written_as_the_api_defines_them() {
        let check = ConditionCheck::builder()
            .table_name("t")
            .set_key(Some(key("handled#a")))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N("17".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .unwrap();
        let put = Put::builder()
            .table_name("t")
            .item("pk", s("alarm#x"))
            .item("flag", AttributeValue::Bool(true))
            .item("none", AttributeValue::Null(true))
            .item(
                "list",
                AttributeValue::L(vec![s("a"), AttributeValue::N("1".into())]),
            )
            .item(
                "map",
                AttributeValue::M(HashMap::from([("k".to_owned(), s("v"))])),
            )
            .item("set", AttributeValue::Ss(vec!["a".into(), "b".into()]))
            .item("bin", AttributeValue::B(Blob::new(b"hi".to_vec())))
            .condition_expression("#state = :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s("open"))
            .build()
            .unwrap();
        let update = Update::builder()
            .table_name("t")
            .set_key(Some(key("slots#h")))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .unwrap();
        let delete = Delete::builder()
            .table_name("t")
            .set_key(Some(key("held")))
            .build()
            .unwrap();
        let items: Vec<TransactWriteItem> = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(delete).build(),
        ];
        let body: Value =
            serde_json::from_slice(&transact_write_body(&items, "tok").unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "ClientRequestToken": "tok",
                "TransactItems": [
                    {"ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "handled#a"}, "sk": {"S": "-"}},
                        "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                        "ExpressionAttributeValues": {":now": {"N": "17"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                    {"Put": {
                        "TableName": "t",
                        "Item": {
                            "pk": {"S": "alarm#x"}, "flag": {"BOOL": true}, "none": {"NULL": true},
                            "list": {"L": [{"S": "a"}, {"N": "1"}]}, "map": {"M": {"k": {"S": "v"}}},
                            "set": {"SS": ["a", "b"]}, "bin": {"B": "aGk="}},
                        "ConditionExpression": "#state = :open",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {":open": {"S": "open"}}}},
                    {"Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "slots#h"}, "sk": {"S": "-"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                    {"Delete": {"TableName": "t", "Key": {"pk": {"S": "held"}, "sk": {"S": "-"}}}}
                ]
            })
        );
    }

    /// A refused transaction's answer, as DynamoDB writes it, read back item by item.
    #[test]
    fn cancellation_reasons_carry_the_old_items() {
        let body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]",
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
                 "Item": {"pk": {"S": "alarm#x"}, "n": {"N": "3"}, "ok": {"BOOL": false},
                          "l": {"L": [{"S": "a"}]}, "m": {"M": {"k": {"NULL": true}}},
                          "ns": {"NS": ["1", "2"]}, "b": {"B": "aGk="}, "bs": {"BS": ["aGk="]}}}
            ]
        });
        let reasons = cancellation_reasons(body.to_string().as_bytes()).unwrap();
        assert_eq!(reasons.len(), 2);
        assert_eq!(reasons[0].code(), Some("None"));
        assert!(reasons[0].item().is_none());
        assert_eq!(reasons[1].code(), Some("ConditionalCheckFailed"));
        assert_eq!(reasons[1].message(), Some("The conditional request failed"));
        let item = reasons[1].item().unwrap();
        assert_eq!(item["pk"], s("alarm#x"));
        assert_eq!(item["n"], AttributeValue::N("3".into()));
        assert_eq!(item["ok"], AttributeValue::Bool(false));
        assert_eq!(item["l"], AttributeValue::L(vec![s("a")]));
        assert_eq!(
            item["m"],
            AttributeValue::M(HashMap::from([(
                "k".to_owned(),
                AttributeValue::Null(true)
            )]))
        );
        assert_eq!(item["ns"], AttributeValue::Ns(vec!["1".into(), "2".into()]));
        assert_eq!(item["b"], AttributeValue::B(Blob::new(b"hi".to_vec())));
        assert_eq!(
            item["bs"],
            AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())])
        );
    }

    #[test]
    fn unreadable_cancellation_reasons_are_errors_not_guesses() {
        for (body, says) in [
            ("not json", "unreadable"),
            (
                r#"{"CancellationReasons":[{"Item":{"a":"x"}}]}"#,
                "not an object",
            ),
            (
                r#"{"CancellationReasons":[{"Item":{"a":{"S":"x","N":"1"}}}]}"#,
                "exactly one type",
            ),
            (
                r#"{"CancellationReasons":[{"Item":{"a":{"N":1}}}]}"#,
                "type N that is not one",
            ),
            (
                r#"{"CancellationReasons":[{"Item":{"a":{"B":"!!"}}}]}"#,
                "binary",
            ),
            (
                r#"{"CancellationReasons":[{"Item":{"a":{"SS":[1]}}}]}"#,
                "SS set",
            ),
        ] {
            let e = cancellation_reasons(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
        // No reasons at all is not an error: the caller sees no failed item.
        assert!(cancellation_reasons(b"{}").unwrap().is_empty());
    }
}
