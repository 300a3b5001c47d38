//! The daemon configuration, `vigie.toml` (SPEC §2).
//!
//! Every relative path in the file is relative to the file itself. Secrets
//! are never in this file: it names files that hold them, which may also be
//! found in `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::diag::Diagnostics;
use super::directory::merge;
use super::reader::{Ctx, Table};
use crate::model::{DurationValue, EmailAddress, parse_slug};
use crate::schedule::holidays::HolidayCalendar;

#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// The configuration file itself.
    pub path: PathBuf,
    /// Shown on pages and in messages.
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub holidays: HolidayCalendar,
    /// SQLite database `vigie.db` and generated secrets.
    pub data_dir: PathBuf,
    pub plans: PathBuf,
    pub directory: PathBuf,
    pub rosters: Option<PathBuf>,
    pub reminders: Option<PathBuf>,
    /// Base of the links put in messages, without a trailing `/`.
    pub public_url: String,
    pub listen: SocketAddr,
    /// `[http] trusted_proxies`: peers whose `X-Forwarded-For` is believed
    /// (addresses or CIDR networks). Empty: the peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What slow or idle HTTP clients are allowed (`[http]`, see `web::server`).
    pub http: HttpConfig,
    pub email: EmailConfig,
    pub webhooks: BTreeMap<String, WebhookConfig>,
    pub auth: AuthConfig,
}

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

#[derive(Clone, Debug)]
pub struct EmailConfig {
    /// The `From:` mailbox, e.g. `Vigie CPTS <vigie@example.org>`.
    pub from: String,
    pub transport: EmailTransport,
}

#[derive(Clone, Debug)]
pub enum EmailTransport {
    /// Writes one `.eml` file per message into `dir` (the embedded default).
    File {
        dir: PathBuf,
    },
    Smtp(SmtpConfig),
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub url: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Concurrent SMTP connections.
    pub pool: u32,
    /// Messages per second at most.
    pub per_second: u32,
    pub allow_insecure: bool,
}

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// HMAC-SHA256 key for `Vigie-Signature`.
    pub secret_file: PathBuf,
    /// One call per recipient (SMS gateway) or one per step (chat room).
    pub per_recipient: bool,
    pub timeout: DurationValue,
}

#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub operators: Vec<Operator>,
    pub tokens: Vec<TokenEntry>,
}

#[derive(Clone, Debug)]
pub struct Operator {
    pub name: String,
    /// An argon2id PHC string.
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct TokenEntry {
    pub name: String,
    /// SHA-256 of the token, lower-case hex.
    pub sha256: String,
}

impl DaemonConfig {
    /// Where a secret file is: `$CREDENTIALS_DIRECTORY/<file name>` when
    /// systemd provides it, else the path as written (relative to the config).
    pub fn secret_path(&self, configured: &Path) -> PathBuf {
        secret_path(configured)
    }
}

pub fn secret_path(configured: &Path) -> PathBuf {
    if let (Some(dir), Some(name)) = (
        std::env::var_os("CREDENTIALS_DIRECTORY"),
        configured.file_name(),
    ) {
        let candidate = Path::new(&dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    configured.to_path_buf()
}

/// A URL as it may be shown in a log line, a delivery reason, an API answer
/// or a page: `scheme://host:port/path`, with the user info and every
/// query value replaced by `***` and the fragment dropped. Webhook
/// gateways take their keys there (`?apikey=`, `https://user:pass@…`); the
/// path is kept to tell endpoints apart. Never fails: what is not a URL
/// is shown as `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_string();
    };
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}://{host}{path}");
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => "***".to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The parts of a URL that are secrets (the user info, its password, the
/// query and its values), longest first, to scrub them from a text that
/// may quote them in any form (an error message, a receiver's answer).
/// Values shorter than 4 characters are left: replacing every `1` or `fr`
/// would garble the text and they protect nothing.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        out.push(userinfo.to_string());
        if let Some((_, password)) = userinfo.split_once(':') {
            out.push(password.to_string());
        }
    }
    if let Some((_, query)) = tail.split_once('?') {
        let query = query.split('#').next().unwrap_or("");
        out.push(query.to_string());
        for pair in query.split('&') {
            out.push(pair.split_once('=').map_or(pair, |(_, v)| v).to_string());
        }
    }
    out.retain(|s| s.chars().count() >= 4);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with `url` and each of its secrets replaced: what a channel may
/// record or log about a call to `url`.
pub fn scrub_url(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    for secret in url_secrets(url) {
        out = out.replace(&secret, "***");
    }
    out
}

/// Resolves a path of the configuration relative to the file's folder, and
/// folds `..` lexically so messages show `plans/x.toml`, not
/// `config/../plans/x.toml`.
fn resolve(base: &Path, p: &str) -> PathBuf {
    use std::path::Component;
    let joined = base.join(p);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Loads `vigie.toml`. Returns `None` when the file cannot be used at all.
pub fn load(path: &Path, diags: &mut Diagnostics) -> Option<DaemonConfig> {
    let src = super::source::read_source(path, "configuration", diags)?;
    let ctx = Ctx::new(&src);
    let cfg = ctx.parse().and_then(|doc| read(&ctx, &doc, path));
    let had_errors = {
        let d = ctx.into_diagnostics();
        let e = d.has_errors();
        merge(diags, d);
        e
    };
    if had_errors { None } else { cfg }
}

fn read(
    ctx: &Ctx<'_>,
    doc: &toml::Spanned<toml::de::DeTable<'_>>,
    path: &Path,
) -> Option<DaemonConfig> {
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let root = Table::root(ctx, doc);
    let d = root.req_table("daemon");
    let http = root.req_table("http");
    let email = root.req_table("email");
    let webhooks = root.entries("webhook");
    let auth = root.table("auth");
    root.finish();

    let d = d?;
    let name = d.req_str("name");
    let timezone = d.str("timezone").and_then(|tz| {
        tz.value
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                ctx.error(
                    &tz.loc,
                    format!(
                        "unknown time zone \"{}\" (an IANA name such as \"Europe/Paris\")",
                        tz.value
                    ),
                )
            })
            .ok()
    });
    let timezone = if d.has("timezone") {
        timezone
    } else {
        Some(chrono_tz::Europe::Paris)
    };
    let holidays = match d.str("holidays") {
        None => Some(HolidayCalendar::France),
        Some(h) => HolidayCalendar::parse(&h.value)
            .map_err(|e| ctx.error(&h.loc, e))
            .ok(),
    };
    let data_dir = d.req_str("data_dir").map(|v| resolve(&base, &v));
    let plans = d.req_str("plans").map(|v| resolve(&base, &v));
    let directory = d.req_str("directory").map(|v| resolve(&base, &v));
    let rosters = d.str("rosters").map(|v| resolve(&base, &v));
    let reminders = d.str("reminders").map(|v| resolve(&base, &v));
    let public_url = d.req_str("public_url").and_then(|u| {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && u.len() > "https://".len()
            && !u.contains(char::is_whitespace);
        if ok {
            Some(u.trim_end_matches('/').to_string())
        } else {
            ctx.error(
                &u.loc,
                format!(
                    "invalid public_url \"{}\": an http:// or https:// address",
                    u.value
                ),
            );
            None
        }
    });
    d.finish();

    let mut trusted_proxies = Some(Vec::new());
    let mut http_limits = Some(HttpConfig::default());
    let listen = http.and_then(|h| {
        trusted_proxies = read_trusted_proxies(ctx, &h);
        http_limits = read_http_limits(ctx, &h);
        let l = h.req_str("listen").and_then(|l| {
            l.value
                .parse::<SocketAddr>()
                .map_err(|_| {
                    ctx.error(
                        &l.loc,
                        format!(
                            "invalid listen address \"{}\" (e.g. \"127.0.0.1:8640\")",
                            l.value
                        ),
                    )
                })
                .ok()
        });
        h.finish();
        l
    });

    let email = email.and_then(|t| read_email(ctx, t, &base));

    let mut hooks = BTreeMap::new();
    for (name, t) in webhooks {
        if let Err(e) = parse_slug(&name.value, "webhook name") {
            ctx.error(&name.loc, e);
        }
        if name.value == "email" {
            ctx.error(
                &name.loc,
                "a webhook cannot be named `email`: it is the e-mail channel",
            );
        }
        if let Some(w) = read_webhook(ctx, t, &base, &name.value) {
            hooks.insert(name.value, w);
        }
    }

    let auth = auth.map(|t| read_auth(ctx, t)).unwrap_or_default();

    Some(DaemonConfig {
        path: path.to_path_buf(),
        name: name?.value,
        timezone: timezone?,
        holidays: holidays?,
        data_dir: data_dir?,
        plans: plans?,
        directory: directory?,
        rosters,
        reminders,
        public_url: public_url?,
        listen: listen?,
        trusted_proxies: trusted_proxies?,
        http: http_limits?,
        email: email?,
        webhooks: hooks,
        auth,
    })
}

/// `[http] trusted_proxies`: a list of IP addresses (`"127.0.0.1"`,
/// `"::1"`) or networks (`"10.0.0.0/8"`). `None` after an error (reported).
fn read_trusted_proxies(ctx: &Ctx<'_>, h: &Table<'_, '_>) -> Option<Vec<ipnet::IpNet>> {
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
fn read_http_limits(ctx: &Ctx<'_>, h: &Table<'_, '_>) -> Option<HttpConfig> {
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

fn read_email(ctx: &Ctx<'_>, t: Table<'_, '_>, base: &Path) -> Option<EmailConfig> {
    let from = t.req_str("from").and_then(|f| {
        EmailAddress::parse_mailbox(&f.value)
            .map_err(|e| ctx.error(&f.loc, e))
            .ok()
            .map(|_| f.value.clone())
    });
    let transport = t.req_str("transport");
    let dir = t.str("dir");
    let url = t.str("url");
    let username = t.str("username");
    let password_file = t.str("password_file");
    let pool = t.int("pool");
    let per_second = t.int("per_second");
    let allow_insecure = t.bool("allow_insecure").map(|b| b.value).unwrap_or(false);
    let positive = |v: Option<super::diag::Located<i64>>, key: &str, default: u32, max: i64| match v
    {
        None => Some(default),
        Some(n) if (1..=max).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            ctx.error(&n.loc, format!("`{key}` must be between 1 and {max}"));
            None
        }
    };
    let pool = positive(pool, "pool", 8, 10_000);
    let per_second = positive(per_second, "per_second", 50, 1_000_000);
    let transport = transport.and_then(|tr| match tr.value.as_str() {
        "file" => match &dir {
            Some(d) => Some(EmailTransport::File {
                dir: resolve(base, d),
            }),
            None => {
                ctx.error(
                    &tr.loc,
                    "transport \"file\" needs `dir` (where .eml files go)",
                );
                None
            }
        },
        "smtp" => {
            let url = match &url {
                Some(u) => check_smtp_url(&u.value, allow_insecure)
                    .map_err(|e| ctx.error(&u.loc, e))
                    .ok()
                    .map(|_| u.value.clone()),
                None => {
                    ctx.error(
                        &tr.loc,
                        "transport \"smtp\" needs `url` (e.g. \"smtp://mail.example.org:587\")",
                    );
                    None
                }
            };
            Some(EmailTransport::Smtp(SmtpConfig {
                url: url?,
                username: username.as_ref().map(|u| u.value.clone()),
                password_file: password_file.as_ref().map(|p| resolve(base, p)),
                pool: pool?,
                per_second: per_second?,
                allow_insecure,
            }))
        }
        other => {
            ctx.error(
                &tr.loc,
                format!("unknown e-mail transport \"{other}\" (use \"smtp\" or \"file\")"),
            );
            None
        }
    });
    if let (Some(u), None) = (&username, &password_file) {
        ctx.error(
            &u.loc,
            "`username` needs `password_file` (the password is never written in this file)",
        );
    }
    t.finish();
    Some(EmailConfig {
        from: from?,
        transport: transport?,
    })
}

/// `smtp://host[:port]` (STARTTLS when offered, required unless the host is
/// a loopback address) or `smtps://host[:port]`; `?tls=none` only with
/// `allow_insecure = true`.
pub fn check_smtp_url(url: &str, allow_insecure: bool) -> Result<(), String> {
    let bad = |why: &str| format!("invalid SMTP url \"{}\": {why}", redact_url(url));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("write smtp://host:port or smtps://host:port"))?;
    if scheme != "smtp" && scheme != "smtps" {
        return Err(bad("the scheme must be smtp or smtps"));
    }
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let hostport = hostport.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('@') {
        return Err(bad(
            "no host (credentials go in username and password_file)",
        ));
    }
    if let Some((_, port)) = hostport.rsplit_once(':')
        && !hostport.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("invalid port"));
    }
    if let Some(q) = query {
        for pair in q.split('&') {
            match pair {
                "tls=none" if allow_insecure => {}
                "tls=none" => {
                    return Err(bad(
                        "tls=none sends passwords and messages in clear: set allow_insecure = true if you mean it",
                    ));
                }
                "tls=required" | "tls=opportunistic" => {}
                other => return Err(bad(&format!("unknown option `{other}`"))),
            }
        }
    }
    Ok(())
}

fn read_webhook(ctx: &Ctx<'_>, t: Table<'_, '_>, base: &Path, name: &str) -> Option<WebhookConfig> {
    let url = t.req_str("url").and_then(|u| {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && !u.contains(char::is_whitespace);
        if ok {
            Some(u.value.clone())
        } else {
            ctx.error(
                &u.loc,
                format!("invalid webhook url \"{}\"", redact_url(&u.value)),
            );
            None
        }
    });
    let secret_file = t.req_str("secret_file").map(|s| {
        let p = resolve(base, &s.value);
        if !secret_path(&p).exists() {
            ctx.warning(
                &s.loc,
                format!(
                    "secret file {} not found (nor in $CREDENTIALS_DIRECTORY): webhook `{name}` cannot sign its calls",
                    p.display()
                ),
            );
        }
        p
    });
    let per_recipient = t.bool("per_recipient").map(|b| b.value).unwrap_or(true);
    let timeout = match t.str("timeout") {
        None => Some(DurationValue(std::time::Duration::from_secs(10))),
        Some(s) => DurationValue::parse(&s.value)
            .map_err(|e| ctx.error(&s.loc, e))
            .ok(),
    };
    t.finish();
    Some(WebhookConfig {
        name: name.to_string(),
        url: url?,
        secret_file: secret_file?,
        per_recipient,
        timeout: timeout?,
    })
}

fn read_auth(ctx: &Ctx<'_>, t: Table<'_, '_>) -> AuthConfig {
    let mut auth = AuthConfig::default();
    for op in t.tables("operators") {
        let name = op.req_str("name");
        let hash = op.req_str("password_hash");
        if let Some(h) = &hash
            && !h.starts_with("$argon2id$")
        {
            ctx.error(
                &h.loc,
                "`password_hash` must be an argon2id hash made by `vigie hash-password`",
            );
        }
        op.finish();
        if let (Some(n), Some(h)) = (name, hash) {
            auth.operators.push(Operator {
                name: n.value,
                password_hash: h.value,
            });
        }
    }
    for tok in t.tables("tokens") {
        let name = tok.req_str("name");
        let sha = tok.req_str("sha256");
        if let Some(s) = &sha
            && (s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()))
        {
            ctx.error(
                &s.loc,
                "`sha256` must be 64 hexadecimal characters, as printed by `vigie token new`",
            );
        }
        tok.finish();
        if let (Some(n), Some(s)) = (name, sha) {
            auth.tokens.push(TokenEntry {
                name: n.value,
                sha256: s.value.to_ascii_lowercase(),
            });
        }
    }
    t.finish();
    auth
}

#[cfg(test)]
mod tests {
    use super::{check_smtp_url, parse_proxy};

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

    #[test]
    fn smtp_urls_refuse_cleartext_unless_allowed() {
        assert!(check_smtp_url("smtp://127.0.0.1:2525", false).is_ok());
        assert!(check_smtp_url("smtps://mail.example.org", false).is_ok());
        assert!(check_smtp_url("smtp://mail.example.org:25?tls=none", false).is_err());
        assert!(check_smtp_url("smtp://mail.example.org:25?tls=none", true).is_ok());
        assert!(check_smtp_url("http://mail.example.org", false).is_err());
        assert!(check_smtp_url("smtp://user:pw@mail.example.org", false).is_err());
        assert!(check_smtp_url("smtp://mail.example.org:smtp", false).is_err());
    }
}

#[cfg(test)]
mod redact_tests {
    use super::{redact_url, scrub_url};

    #[test]
    fn user_info_and_query_values_are_hidden_and_the_endpoint_kept() {
        assert_eq!(
            redact_url("https://vigie:s3cret@sms.example.org:8443/send?apikey=K3Y&to=33#frag"),
            "https://***@sms.example.org:8443/send?apikey=***&to=***"
        );
        assert_eq!(
            redact_url("http://hooks.example.org/room?T0KEN"),
            "http://hooks.example.org/room?***"
        );
        assert_eq!(
            redact_url("https://chat.example.org/hooks/1"),
            "https://chat.example.org/hooks/1"
        );
        assert_eq!(redact_url("not a url with s3cret"), "***");
    }

    #[test]
    fn a_text_quoting_the_url_or_its_secrets_loses_them() {
        let url = "https://vigie:s3cret-pass@sms.example.org/send?apikey=K3Y-123456&to=fr";
        let text = format!("error for url ({url}): server says bad key K3Y-123456 for s3cret-pass");
        let out = scrub_url(&text, url);
        assert!(
            !out.contains("s3cret-pass") && !out.contains("K3Y-123456"),
            "{out}"
        );
        assert!(
            out.contains("https://***@sms.example.org/send?apikey=***&to=***"),
            "{out}"
        );
    }
}
