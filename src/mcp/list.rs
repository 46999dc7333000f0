//! Cutting a `tools/list` answer to the tools the caller may call: in a JSON body, or in the
//! events of a `text/event-stream` one.
//!
//! Only what is shown is cut: a call is authorized on its own whatever the list said. So an
//! answer this cannot read is passed on as it is.

use serde_json::Value;

/// The answer `body` (of media type `content_type`) with the tools `keep` refuses removed;
/// `None` when there is nothing to cut or the body cannot be read.
pub(crate) fn cut(content_type: &str, body: &[u8], keep: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        let mut value: Value = serde_json::from_slice(body).ok()?;
        cut_message(&mut value, keep).then(|| value.to_string().into_bytes())
    } else if media.eq_ignore_ascii_case("text/event-stream") {
        cut_events(std::str::from_utf8(body).ok()?, keep).map(String::into_bytes)
    } else {
        None
    }
}

/// Removes the refused tools from a `tools/list` result; whether it was one. A result cut to
/// one caller is that caller's: a `cacheScope` of `public` (2026-07-28) becomes `private`, so
/// that no shared cache hands it to another.
fn cut_message(message: &mut Value, keep: &dyn Fn(&str) -> bool) -> bool {
    let Some(result) = message.get_mut("result") else {
        return false;
    };
    let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
        return false;
    };
    tools.retain(|tool| tool.get("name").and_then(Value::as_str).is_some_and(keep));
    if let Some(scope) = result.get_mut("cacheScope") {
        *scope = Value::from("private");
    }
    true
}

/// The event stream with each event's data cut; `None` if no event held a tool list.
fn cut_events(stream: &str, keep: &dyn Fn(&str) -> bool) -> Option<String> {
    let stream = stream.replace("\r\n", "\n");
    let mut out = String::with_capacity(stream.len());
    let mut changed = false;
    for event in stream.split_inclusive("\n\n") {
        let (lines, end) = match event.strip_suffix("\n\n") {
            Some(lines) => (lines, "\n\n"),
            None => (event, ""),
        };
        let data: Vec<&str> = lines
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
            .collect();
        let cut = (!data.is_empty())
            .then(|| serde_json::from_str::<Value>(&data.join("\n")).ok())
            .flatten()
            .and_then(|mut message| cut_message(&mut message, keep).then_some(message));
        match cut {
            Some(message) => {
                changed = true;
                let mut wrote_data = false;
                for line in lines.lines() {
                    if line.starts_with("data:") {
                        if !wrote_data {
                            out.push_str("data: ");
                            out.push_str(&message.to_string());
                            out.push('\n');
                            wrote_data = true;
                        }
                    } else {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                out.push_str(if end.is_empty() { "" } else { "\n" });
            }
            None => out.push_str(&format!("{lines}{end}")),
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_a(name: &str) -> bool {
        name == "a"
    }

    #[test]
    fn a_json_list_keeps_only_callable_tools() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"},{"title":"no name"}]}}"#;
        let cut = cut("application/json; charset=utf-8", body, &only_a).unwrap();
        let value: Value = serde_json::from_slice(&cut).unwrap();
        assert_eq!(value["result"]["tools"], serde_json::json!([{"name": "a"}]));
        assert_eq!(value["id"], 1);
    }

    #[test]
    fn a_cut_list_is_private_to_its_caller() {
        let body =
            br#"{"id":1,"result":{"tools":[{"name":"a"}],"cacheScope":"public","ttlMs":60000}}"#;
        let cut = cut("application/json", body, &only_a).unwrap();
        let value: Value = serde_json::from_slice(&cut).unwrap();
        assert_eq!(value["result"]["cacheScope"], "private");
        assert_eq!(value["result"]["ttlMs"], 60000);
    }

    #[test]
    fn an_event_stream_is_cut_event_by_event() {
        let stream = "id: 0\nretry: 3000\ndata: \n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"b\"},{\"name\":\"a\"}]}}\n\n";
        let cut = String::from_utf8(cut("text/event-stream", stream.as_bytes(), &only_a).unwrap())
            .unwrap();
        assert_eq!(
            cut,
            "id: 0\nretry: 3000\ndata: \n\nevent: message\nid: 1\ndata: {\"id\":2,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n"
        );
    }

    #[test]
    fn data_over_several_lines_is_read_as_one() {
        let stream = "data: {\"id\":1,\"result\":\ndata: {\"tools\":[{\"name\":\"b\"}]}}\n\n";
        let cut = String::from_utf8(cut("text/event-stream", stream.as_bytes(), &only_a).unwrap())
            .unwrap();
        assert_eq!(cut, "data: {\"id\":1,\"result\":{\"tools\":[]}}\n\n");
    }

    #[test]
    fn what_holds_no_tool_list_is_left_alone() {
        assert_eq!(cut("application/json", br#"{"result":{}}"#, &only_a), None);
        assert_eq!(cut("application/json", b"not json", &only_a), None);
        assert_eq!(
            cut("text/plain", br#"{"result":{"tools":[]}}"#, &only_a),
            None
        );
        assert_eq!(cut("text/event-stream", b"data: 1\n\n", &only_a), None);
    }
}
