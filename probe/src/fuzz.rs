//! Fuzzing of the probe's parsers of untrusted input: service configs, serve YAML, HTTP request
//! heads, DNS answers and MySQL replies here; the parsers private to their modules (AMQP methods,
//! HTTP response heads and bodies, OVSDB replies, the resolver's files) in those modules' tests,
//! named `fuzz_*`, with this module's configuration and inputs. Each must return (a value or an
//! error) for any input, never panic. The configuration (a fixed seed, and
//! `HEALTHCHECK_FUZZ_CASES` cases per parser) is the workspace's, from test-support.

use proptest::prelude::*;

pub(crate) fn config() -> proptest::test_runner::Config {
    test_support::fuzz_config()
}

/// Mostly-printable text with the characters the parsers split on, up to 2 KiB.
pub(crate) fn config_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\n".to_string()),
            Just("=".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("#".to_string()),
            Just("\"".to_string()),
            Just(" -l ".to_string()),
            Just("<<\"".to_string()),
            Just("listeners.tcp.default".to_string()),
            Just("tcp_listeners".to_string()),
            Just("port".to_string()),
            "[ -~]{0,12}".prop_map(|s| s),
            any::<char>().prop_map(String::from),
        ],
        0..200,
    )
    .prop_map(|parts| parts.concat())
}

pub(crate) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn service_config_parsers_never_panic(text in config_text()) {
        let ini = crate::config::ini::Ini::parse(&text);
        let _ = crate::config::uwsgi::ini_socket(&ini);
        let _ = crate::config::uwsgi::init_script(&text);
        let _ = crate::config::apache::Vhost::parse(&text);
        let _ = crate::config::rabbitmq_conf::parse(&text);
        let _ = crate::config::rabbitmq_conf::parse_erlang(&text);
        let _ = crate::config::redis_conf::parse(&text);
        let _ = crate::config::memcached::from_debian_conf(&text);
        let _ = crate::config::qdrouterd::first_listener(&text);
        let _ = crate::config::shell_vars::parse(&text);
    }

    #[test]
    fn serve_yaml_never_panics(text in config_text()) {
        let _ = crate::serve::config::Config::parse(&text, "fuzz");
        let _ = crate::serve::config::Config::parse(&format!("liveness: {{ check: {text} }}"), "fuzz");
    }

    #[test]
    fn http_request_heads_never_panic(head in bytes(), text in config_text()) {
        if let Some(end) = crate::serve::http::find_head_end(&head) {
            let _ = crate::serve::http::parse_head(&head[..end]);
        }
        let _ = crate::serve::http::parse_head(&head);
        let _ = crate::serve::http::parse_head(format!("GET /{text} HTTP/1.1\r\n{text}\r\n\r\n").as_bytes());
    }

    #[test]
    fn dns_answers_never_panic(packet in bytes(), id in any::<u16>()) {
        let _ = crate::net::resolve::decode_answer(&packet, id);
        let mut framed = id.to_be_bytes().to_vec();
        framed.extend_from_slice(&packet);
        let _ = crate::net::resolve::decode_answer(&framed, id);
    }

    #[test]
    fn mysql_replies_never_panic(packets in prop::collection::vec(bytes(), 0..8)) {
        if let Some(first) = packets.first() {
            let _ = crate::protocols::mysql::parse_greeting(first);
        }
        for deprecate_eof in [false, true] {
            let mut reader = crate::protocols::mysql::ResultSetReader::new(deprecate_eof);
            for packet in &packets {
                if !matches!(reader.feed(packet), Ok(None)) {
                    break;
                }
            }
        }
    }
}
