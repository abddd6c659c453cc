//! A record Kafka refused as too large (`MSG_SIZE_TOO_LARGE` from librdkafka's own check at
//! produce time, or from the broker in the delivery report) is cut harder and sent again: an
//! audit record must not vanish because a client padded a field.
//!
//! Shrinking runs on the producer thread, only for refused records, so it may parse the JSON
//! back. Each attempt has a level; level `n` cuts every string of the record to
//! `LEVELS[n - 1]` bytes with the `…[N more bytes]` marker, sets `query.truncated` when the
//! statement text was cut, and adds `"shrunk": n`. After the last level the record is given
//! up (and counted `failed`).

use serde_json::Value;

use crate::record::capped;

/// The most bytes of each string at each shrink level. At 64 bytes a record of the schema's
/// fixed shape is a few KB even when every character needs a JSON escape, well under any
/// broker's message size limit.
pub(crate) const LEVELS: [usize; 2] = [1024, 64];

/// `payload` cut for the attempt after `level` (0: the record as first made), or `None` when
/// no level is left. A record that is refused although nothing in it is long (it shared a
/// batch with a large one) comes back unchanged, but its level still rises, so it is tried at
/// most `LEVELS.len()` more times. A payload that is not a JSON object (it cannot be one of
/// ours) cannot be cut and is sent as it is, also at most that many times.
pub(crate) fn shrink(payload: &[u8], level: usize) -> Option<(Vec<u8>, usize)> {
    let next = level + 1;
    let max = *LEVELS.get(level)?;
    let Ok(Value::Object(mut record)) = serde_json::from_slice::<Value>(payload) else {
        return Some((payload.to_vec(), next));
    };
    let mut text_cut = false;
    for (key, value) in record.iter_mut() {
        let cut = cut_strings(value, max);
        if key == "query" {
            text_cut = cut;
        }
    }
    if text_cut {
        if let Some(Value::Object(q)) = record.get_mut("query") {
            q.insert("truncated".into(), Value::Bool(true));
        }
    }
    record.insert("shrunk".into(), Value::from(next));
    let out = serde_json::to_vec(&Value::Object(record)).unwrap_or_else(|_| payload.to_vec());
    Some((out, next))
}

/// Cuts every string in `v` to `max` bytes; true if one was cut.
fn cut_strings(v: &mut Value, max: usize) -> bool {
    match v {
        Value::String(s) => {
            if s.len() <= max {
                return false;
            }
            *s = capped(s, max).into_owned();
            true
        }
        Value::Object(m) => m
            .values_mut()
            .fold(false, |cut, v| cut_strings(v, max) | cut),
        Value::Array(a) => a.iter_mut().fold(false, |cut, v| cut_strings(v, max) | cut),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(text: &str, db: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schema": "switchyard.audit.v1", "event": "query",
            "event_id": "0193c5c1-0000-7000-8000-000000000000",
            "client": {"user": "app", "program": "mysql"},
            "db": db,
            "query": {"command": "COM_QUERY", "text": text, "truncated": false,
                      "digest": "00000000000000ab", "digest_text": text},
            "result": {"ok": true, "message": null}
        }))
        .unwrap()
    }

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn each_level_cuts_harder_then_gives_up() {
        let big = record(&"x".repeat(900_000), &"d".repeat(5000));
        let (one, level) = shrink(&big, 0).unwrap();
        assert_eq!(level, 1);
        let r = parse(&one);
        assert_eq!(r["shrunk"], 1);
        assert_eq!(r["query"]["truncated"], true);
        let text = r["query"]["text"].as_str().unwrap();
        assert_eq!(text, format!("{}…[898976 more bytes]", "x".repeat(1024)));
        assert!(r["db"].as_str().unwrap().ends_with("…[3976 more bytes]"));
        // What is short stays whole.
        assert_eq!(r["event_id"], "0193c5c1-0000-7000-8000-000000000000");
        assert_eq!(r["client"]["user"], "app");
        assert_eq!(r["schema"], "switchyard.audit.v1");
        assert!(one.len() < 3 * 1024 + 600, "{}", one.len());

        let (two, level) = shrink(&one, level).unwrap();
        assert_eq!(level, 2);
        let r = parse(&two);
        assert_eq!(r["shrunk"], 2);
        assert!(r["query"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}…[", "x".repeat(64))));
        assert!(two.len() < 1000, "{}", two.len());
        assert!(shrink(&two, level).is_none(), "no level is left");
    }

    #[test]
    fn a_record_with_nothing_long_is_sent_again_unchanged_but_counted() {
        let small = record("SELECT 1", "shop");
        let (again, level) = shrink(&small, 0).unwrap();
        let r = parse(&again);
        assert_eq!((level, r["shrunk"].as_u64()), (1, Some(1)));
        assert_eq!(r["query"]["truncated"], false, "the text was not cut");
        assert_eq!(r["query"]["text"], "SELECT 1");
        let (_, level) = shrink(&again, level).unwrap();
        assert!(shrink(&again, level).is_none());
    }

    #[test]
    fn only_a_cut_statement_is_marked_truncated() {
        let (out, _) = shrink(&record("SELECT 1", &"d".repeat(2000)), 0).unwrap();
        let r = parse(&out);
        assert_eq!(r["query"]["truncated"], false);
        assert!(r["db"].as_str().unwrap().ends_with("…[976 more bytes]"));
    }

    #[test]
    fn what_is_not_json_is_passed_on_a_bounded_number_of_times() {
        let (out, level) = shrink(b"\xff not json", 0).unwrap();
        assert_eq!(out, b"\xff not json");
        let (_, level) = shrink(&out, level).unwrap();
        assert!(shrink(&out, level).is_none());
    }
}
