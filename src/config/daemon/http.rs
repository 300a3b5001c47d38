//! `[http]` of `vigie.toml` beside `listen`: the peers trusted to say who
//! the client is (`trusted_proxies`) and what slow or idle clients are
//! allowed (`header_timeout`, `max_connections`).

use super::super::reader::{Ctx, Table};
use crate::model::DurationValue;

/// The `[http]` limits beside `listen`. Read at start only: a reload does
/// not rebind the listener nor change the limits of the running server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// A connection must send a complete request head within this time of
    /// opening, and within this time of its previous response (keep-alive);
    /// otherwise it is closed. `header_timeout`, default 10 s.
    pub header_timeout: std::time::Duration,
    /// Open connections at most (`max_connections`, default 4096; also
    /// bounded by the file-descriptor limit at start).
    pub max_connections: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: std::time::Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// `[http] trusted_proxies`: a list of IP addresses (`"127.0.0.1"`,
/// `"::1"`) or networks (`"10.0.0.0/8"`). `None` after an error (reported).
pub(super) fn read_trusted_proxies(ctx: &Ctx<'_>, h: &Table<'_, '_>) -> Option<Vec<ipnet::IpNet>> {
    let Some(items) = h.str_list("trusted_proxies") else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match parse_proxy(&item.value) {
            Some(net) => out.push(net),
            None => {
                ok = false;
                ctx.error(
                    &item.loc,
                    format!(
                        "invalid trusted proxy \"{}\": an IP address (\"127.0.0.1\", \"::1\") or a network (\"10.0.0.0/8\")",
                        item.value.escape_debug()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// An address is a network of one; a network is written with its prefix
/// length, host bits cleared.
fn parse_proxy(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(ipnet::IpNet::from(ip.to_canonical()));
    }
    s.parse::<ipnet::IpNet>().ok().map(|n| n.trunc())
}

/// `header_timeout` (a duration, 1 s to 1 h) and `max_connections` (16 to
/// 1 000 000) of `[http]`, with their defaults when absent.
pub(super) fn read_http_limits(ctx: &Ctx<'_>, h: &Table<'_, '_>) -> Option<HttpConfig> {
    let default = HttpConfig::default();
    let header_timeout = match h.str("header_timeout") {
        None => Some(default.header_timeout),
        Some(s) => match DurationValue::parse(&s.value) {
            Ok(d) if (1..=3600).contains(&d.as_std().as_secs()) => Some(d.as_std()),
            Ok(_) => {
                ctx.error(&s.loc, "`header_timeout` must be between 1s and 1h");
                None
            }
            Err(e) => {
                ctx.error(&s.loc, e);
                None
            }
        },
    };
    let max_connections = match h.int("max_connections") {
        None => Some(default.max_connections),
        Some(n) if (16..=1_000_000).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            ctx.error(&n.loc, "`max_connections` must be between 16 and 1000000");
            None
        }
    };
    Some(HttpConfig {
        header_timeout: header_timeout?,
        max_connections: max_connections?,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_proxy;

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let n = parse_proxy("10.1.2.3/8").unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(&"10.200.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(parse_proxy("::1").unwrap().to_string(), "::1/128");
        assert_eq!(
            parse_proxy("127.0.0.1").unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(
            parse_proxy("::ffff:192.0.2.1").unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert!(parse_proxy("localhost").is_none());
        assert!(parse_proxy("10.0.0.0/33").is_none());
        assert!(parse_proxy("").is_none());
    }
}
