//! `proxy = { set_headers = { "X-Name" = "value" } }`: fields the proxy writes into the
//! forwarded request in place of the client's (nginx's `proxy_set_header`). Each name and
//! value is checked here against RFC 9110's grammar, so that nothing a config says can break
//! the request head or its framing on the way upstream.

use toml::de::DeValue;

use crate::error::ErrorKind;
use crate::reader::{Cx, Value};
use crate::values::{string, wrong_type};

const NAME_RULE: &str = "a header name is a token (letters, digits and !#$%&'*+-.^_`|~)";

const HOP_RULE: &str = "is about one connection or the body's framing and is the proxy's own \
     (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*, HTTP2-Settings, \
     Content-Length, Expect, Max-Forwards): it cannot be set";

const VALUE_RULE: &str = "a header value is visible US-ASCII characters with single spaces or \
     tabs between them (RFC 9110 field-value: no CR, LF or other control character, no \
     leading or trailing space), or \"\" to remove the field";

const HOST_RULE: &str = "Host cannot be removed (HTTP/1.1 requires it); set a value or leave \
     it out";

const TWICE_RULE: &str = "names this header a second time (header names are case-insensitive)";

/// The (name, value) pairs, sorted by name, or `None` after reporting each bad entry.
pub(crate) fn set_headers(
    cx: &mut Cx<'_>,
    path: &str,
    v: &Value<'_>,
) -> Option<Vec<(String, String)>> {
    let DeValue::Table(table) = v.get_ref() else {
        let expected = "a table of header names to strings such as { \"X-Real-IP\" = \"\" }";
        return wrong_type(cx, path, v, expected, v.get_ref());
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut ok = true;
    for (name, value) in table.iter() {
        let name: &str = name.get_ref();
        let at = format!("{path}.{name}");
        cx.record(&at, value.span());
        let Some(text) = string(cx, &at, value) else {
            ok = false;
            continue;
        };
        let rule = name_rule(name)
            .or_else(|| value_rule(text))
            .or_else(|| (name.eq_ignore_ascii_case("host") && text.is_empty()).then_some(HOST_RULE))
            .or_else(|| {
                let twice = out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
                twice.then_some(TWICE_RULE)
            });
        match rule {
            Some(rule) => {
                cx.error(value.span(), &at, ErrorKind::Rule(rule));
                ok = false;
            }
            None => out.push((name.to_string(), text.to_string())),
        }
    }
    out.sort();
    ok.then_some(out)
}

fn name_rule(name: &str) -> Option<&'static str> {
    // RFC 9110 §5.6.2: a field name is a token.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Some(NAME_RULE);
    }
    let lower = name.to_ascii_lowercase();
    let own = [
        "connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
        "content-length",
        "expect",
        "max-forwards",
    ];
    (own.contains(&lower.as_str()) || lower.starts_with("proxy-")).then_some(HOP_RULE)
}

/// RFC 9110 §5.5: `field-value = *field-content`, `field-content = field-vchar
/// [ 1*( SP / HTAB / field-vchar ) field-vchar ]`. obs-text is refused too: a value written
/// in a config file is new, and new values are US-ASCII.
fn value_rule(value: &str) -> Option<&'static str> {
    let vchar = |b: u8| (0x21..=0x7e).contains(&b);
    let bytes = value.as_bytes();
    let inner_ok = bytes.iter().all(|&b| vchar(b) || b == b' ' || b == b'\t');
    let ends_ok = bytes.first().is_none_or(|&b| vchar(b)) && bytes.last().is_none_or(|&b| vchar(b));
    (!inner_ok || !ends_ok).then_some(VALUE_RULE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tokens_and_never_hop_by_hop() {
        for ok in [
            "X-Real-IP",
            "x-forwarded-for",
            "Via",
            "Host",
            "a!#$%&'*+-.^_`|~1",
        ] {
            assert_eq!(name_rule(ok), None, "{ok}");
        }
        for bad in ["", "X Name", "X:Name", "X\"", "Ä", "(x)"] {
            assert_eq!(name_rule(bad), Some(NAME_RULE), "{bad:?}");
        }
        for own in [
            "Connection",
            "KEEP-ALIVE",
            "te",
            "Transfer-Encoding",
            "Upgrade",
            "HTTP2-Settings",
            "Content-Length",
            "Expect",
            "Max-Forwards",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            assert_eq!(name_rule(own), Some(HOP_RULE), "{own}");
        }
    }

    #[test]
    fn values_follow_the_field_value_grammar() {
        for ok in [
            "",
            "v",
            "a b",
            "a\tb",
            "a  b",
            "!~",
            "for=\"[::1]\";proto=https",
        ] {
            assert_eq!(value_rule(ok), None, "{ok:?}");
        }
        for bad in [
            " v",
            "v ",
            "\tv",
            "v\t",
            "a\r\nX-Evil: 1",
            "a\nb",
            "a\rb",
            "a\0b",
            "a\x7fb",
            "é",
            "a\x01",
        ] {
            assert_eq!(value_rule(bad), Some(VALUE_RULE), "{bad:?}");
        }
    }
}
