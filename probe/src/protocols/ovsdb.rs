//! OVSDB (RFC 7047) JSON-RPC over TCP or a Unix socket: `list_dbs`, healthy when the server
//! answers with its databases.

use serde_json::{Value, json};

use super::Endpoint;
use crate::Outcome;
use crate::context::Context;

/// The databases the server at `endpoint` serves.
pub fn list_dbs(endpoint: &Endpoint, ctx: &Context) -> Result<Vec<String>, String> {
    let mut stream = endpoint.open(ctx)?;
    let request = json!({"method": "list_dbs", "params": [], "id": 0});
    stream.send(request.to_string().as_bytes())?;
    let reply = stream.read_until(is_complete_json)?;
    parse_list_dbs(&reply)
}

pub fn check(endpoint: &Endpoint, ctx: &Context) -> Outcome {
    match list_dbs(endpoint, ctx) {
        Ok(dbs) => Outcome::healthy(format!(
            "ovsdb-server on {endpoint} serves {}",
            dbs.join(",")
        )),
        Err(e) => Outcome::unhealthy(format!("ovsdb-server on {endpoint}: {e}")),
    }
}

/// Whether `bytes` hold a whole reply: one complete JSON value, or text that can never become
/// one (reading more would not help).
fn is_complete_json(bytes: &[u8]) -> bool {
    match serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .next()
    {
        None => false,
        Some(Ok(_)) => true,
        Some(Err(e)) => !e.is_eof(),
    }
}

fn parse_list_dbs(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let reply = match values.next() {
        Some(Ok(value)) => value,
        _ => {
            return Err(format!(
                "not a JSON-RPC reply: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ));
        }
    };
    if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
        return Err(format!("list_dbs failed: {error}"));
    }
    let dbs = reply
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("list_dbs reply has no result list: {reply}"))?;
    let names: Vec<String> = dbs
        .iter()
        .filter_map(Value::as_str)
        .filter(|name| !name.starts_with('_'))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err("serves no database".to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert!(!is_complete_json(br#"{"id":0,"res"#));
        assert!(is_complete_json(br#"{"id":0,"result":[]}"#));
        assert!(is_complete_json(b"SSH-2.0-OpenSSH"));
        assert_eq!(
            parse_list_dbs(br#"{"id":0,"result":["_Server","Open_vSwitch"],"error":null}"#),
            Ok(vec!["Open_vSwitch".to_string()])
        );
        assert!(
            parse_list_dbs(br#"{"id":0,"result":null,"error":"unknown method"}"#)
                .unwrap_err()
                .contains("unknown method")
        );
        assert!(
            parse_list_dbs(b"garbage")
                .unwrap_err()
                .contains("not a JSON-RPC")
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        #[test]
        fn fuzz_replies_never_panic(raw in crate::fuzz::bytes(), text in crate::fuzz::config_text()) {
            let framed = format!("{{\"id\":0,\"result\":[{text}],\"error\":{text}}}");
            for input in [&raw[..], text.as_bytes(), framed.as_bytes()] {
                let _ = is_complete_json(input);
                let _ = parse_list_dbs(input);
            }
        }
    }
}
