//! The daemon configuration, `vigie.toml` (SPEC §2).
//!
//! Every relative path in the file is relative to the file itself. Secrets
//! are never in this file: it names files that hold them, which may also be
//! found in `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`).
//!
//! This module owns [`DaemonConfig`] and reads `[daemon]`, `[webhook.*]`
//! and `[auth]`; `[http]` is read in `http`, `[email]` in `email`,
//! `[sms.*]` in `sms`,
//! `[heartbeat]` in `heartbeat`, and the
//! handling of secret files and secret-bearing URLs is in `redact` (all
//! re-exported here).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostics, Loc, Located};
use super::directory::merge;
use super::reader::{Ctx, Table};
use crate::model::{DurationValue, parse_slug};
use crate::schedule::holidays::HolidayCalendar;

mod email;
mod heartbeat;
mod http;
mod redact;
mod sms;

use email::read_emails;
pub use email::{
    AddressField, EmailConfig, EmailTransport, SmtpConfig, check_smtp_url, is_loopback_host,
};
pub use heartbeat::HeartbeatConfig;
use heartbeat::read_heartbeat;
pub use http::HttpConfig;
use http::{read_http_limits, read_trusted_proxies};
pub use redact::{redact_url, redact_url_and_path, scrub_url, secret_path, url_secrets};
pub use sms::{SmsConfig, SmsProvider, TwilioFrom, check_sms_length};

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
    /// `[daemon] quiet_hours`: routine messages written inside wait for
    /// its end (SPEC §14).
    pub quiet_hours: Option<crate::model::QuietHours>,
    pub listen: SocketAddr,
    /// `[http] trusted_proxies`: peers whose `X-Forwarded-For` is believed
    /// (addresses or CIDR networks). Empty: the peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What slow or idle HTTP clients are allowed (`[http]`, see `web::server`).
    pub http: HttpConfig,
    pub email: EmailConfig,
    /// `[email.NAME]`: the other e-mail channels (e.g. `mssante`), by name.
    pub email_channels: BTreeMap<String, EmailConfig>,
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// `[sms.NAME]`: SMS channels through a provider (SPEC §14).
    pub sms: BTreeMap<String, SmsConfig>,
    pub auth: AuthConfig,
    /// `[heartbeat]`: the external monitor called while healthy (SPEC §16).
    pub heartbeat: Option<HeartbeatConfig>,
    /// `[vigilance]`: the weather vigilance feed polled (SPEC §13).
    pub vigilance: Option<crate::config::vigilance::VigilanceConfig>,
    /// `[directory] extra_professions` of this file (with those of a TOML
    /// directory's own `[directory]`), each where it is written.
    pub extra_professions: Vec<crate::config::Located<String>>,
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

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub operators: Vec<Operator>,
    pub tokens: Vec<TokenEntry>,
    /// Read-only tokens for the roster calendar feeds
    /// (`/calendar/{roster}.ics?token=`, SPEC §15): once there is one, an
    /// API token is no longer accepted there.
    pub calendar_tokens: Vec<TokenEntry>,
    /// Whether the token kept in `data_dir/api-token` is accepted (as
    /// `local`) beside the named ones, so that `vigie` commands work as
    /// root on the server. Always accepted while no token is named.
    pub local_token: bool,
}

impl DaemonConfig {
    /// The e-mail channel of this name: `[email]` for `email`, else an
    /// `[email.NAME]`.
    pub fn email_channel(&self, name: &str) -> Option<&EmailConfig> {
        if name == "email" {
            Some(&self.email)
        } else {
            self.email_channels.get(name)
        }
    }

    /// The directory field `channel` delivers to: the e-mail channels'
    /// `address` (`email` for `[email]`), the phone for every other one.
    pub fn contact_of(&self, channel: &str) -> crate::config::directory::Contact {
        use crate::config::directory::Contact;
        match self.email_channel(channel).map(|e| e.address) {
            Some(AddressField::Email) => Contact::Email,
            Some(AddressField::Mssante) => Contact::Mssante,
            None => Contact::Phone,
        }
    }

    /// Every e-mail channel, `[email]` first.
    pub fn all_email_channels(&self) -> impl Iterator<Item = &EmailConfig> {
        std::iter::once(&self.email).chain(self.email_channels.values())
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            operators: Vec::new(),
            tokens: Vec::new(),
            calendar_tokens: Vec::new(),
            local_token: true,
        }
    }
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

/// Resolves a path of the configuration relative to the file's folder, and
/// folds `..` lexically so messages show `plans/x.toml`, not
/// `config/../plans/x.toml`.
pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
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
    let sms = root.entries("sms");
    let auth = root.table("auth");
    let heartbeat = root.table("heartbeat");
    let vigilance = root.table("vigilance");
    // `[directory] extra_professions`, here too: a CSV directory has no
    // table of its own to say it.
    let extra_professions: Vec<crate::config::Located<String>> = root
        .table("directory")
        .map(|t| {
            let list = t.str_list("extra_professions").unwrap_or_default();
            t.finish();
            list
        })
        .unwrap_or_default();
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
        if is_http_url(&u.value) {
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
    // An error here is in the diagnostics: `load` gives nothing then.
    let quiet_hours = d.str("quiet_hours").and_then(|q| {
        crate::model::QuietHours::parse(&q.value)
            .map_err(|e| ctx.error(&q.loc, e))
            .ok()
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

    // A channel name is used once across [email.NAME], [webhook.NAME] and
    // [sms.NAME]: the plans, the outbox and test-send would each pick one.
    let mut names: Vec<(&str, Located<String>)> = email
        .as_ref()
        .map(|t| t.sub_tables())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| ("email", n))
        .chain(webhooks.iter().map(|(n, _)| ("webhook", n.clone())))
        .chain(sms.iter().map(|(n, _)| ("sms", n.clone())))
        .collect();
    names.sort_by_key(|(_, n)| (n.loc.line, n.loc.col));
    let mut first: HashMap<&str, (&str, &Loc)> = HashMap::new();
    for (kind, n) in &names {
        match first.get(n.value.as_str()) {
            Some((k, at)) => ctx.error(
                &n.loc,
                format!(
                    "channel name `{}` is already [{k}.{}] (at {at}): a channel name is used once \
                     across [email.NAME], [webhook.NAME] and [sms.NAME]",
                    n.value, n.value
                ),
            ),
            None => {
                first.insert(n.value.as_str(), (kind, &n.loc));
            }
        }
    }

    let emails = email.and_then(|t| read_emails(ctx, t, &base));

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

    let mut sms_channels = BTreeMap::new();
    for (name, t) in sms {
        if let Err(e) = parse_slug(&name.value, "SMS channel name") {
            ctx.error(&name.loc, e);
        }
        if name.value == "email" {
            ctx.error(
                &name.loc,
                "an SMS channel cannot be named `email`: it is the e-mail channel",
            );
        }
        if let Some(s) = sms::read_sms(ctx, t, &base, &name.value) {
            sms_channels.insert(name.value, s);
        }
    }

    let auth = auth.map(|t| read_auth(ctx, t)).unwrap_or_default();
    let heartbeat = match heartbeat {
        Some(t) => Some(read_heartbeat(ctx, t)?),
        None => None,
    };
    let vigilance = match vigilance {
        Some(t) => Some(crate::config::vigilance::read_vigilance(ctx, t, &base)?),
        None => None,
    };

    let (email, email_channels) = emails?;
    Some(DaemonConfig {
        path: path.to_path_buf(),
        name: name?.value,
        timezone: timezone?,
        holidays: holidays?,
        data_dir: data_dir?,
        plans: plans?,
        directory: directory?,
        extra_professions,
        rosters,
        reminders,
        public_url: public_url?,
        quiet_hours,
        listen: listen?,
        trusted_proxies: trusted_proxies?,
        http: http_limits?,
        email,
        email_channels,
        webhooks: hooks,
        sms: sms_channels,
        auth,
        heartbeat,
        vigilance,
    })
}

/// An http:// or https:// address without spaces that an HTTP client can
/// call: it parses, with a host (a port past 65535, say, does not).
fn is_http_url(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://"))
        && u.len() > "https://".len()
        && !u.contains(char::is_whitespace)
        && reqwest::Url::parse(u).is_ok_and(|url| url.host().is_some())
}

/// The required `url` of a table ([`is_http_url`]); else an error naming
/// `what` (`webhook`, `heartbeat`), the URL's secrets redacted.
pub(super) fn read_http_url(
    ctx: &Ctx<'_>,
    t: &Table<'_, '_>,
    what: &str,
    shown: fn(&str) -> String,
) -> Option<String> {
    t.req_str("url").and_then(|u| {
        if is_http_url(&u.value) {
            Some(u.value.clone())
        } else {
            ctx.error(
                &u.loc,
                format!(
                    "invalid {what} url \"{}\": write an http:// or https:// address",
                    shown(&u.value)
                ),
            );
            None
        }
    })
}

/// A secret file named at `s` (`password_file`, a webhook's `secret_file`,
/// an SMS key): its path, with an error at `s` when it cannot be read —
/// `vigie run` would refuse to start, or the channel could not work, so
/// `vigie check` (run as root, or as the daemon's user) says so first.
pub(super) fn secret_file(
    ctx: &Ctx<'_>,
    base: &Path,
    s: &Located<String>,
    consequence: &str,
) -> PathBuf {
    let p = resolve(base, &s.value);
    let read = secret_path(&p);
    if let Err(e) = crate::config::source::read_text(&read) {
        ctx.error(
            &s.loc,
            format!(
                "cannot read the secret file {} (nor in $CREDENTIALS_DIRECTORY): {e}: {consequence}",
                read.display()
            ),
        );
    }
    p
}

fn read_webhook(ctx: &Ctx<'_>, t: Table<'_, '_>, base: &Path, name: &str) -> Option<WebhookConfig> {
    let url = read_http_url(ctx, &t, "webhook", redact_url);
    let secret_file = t.req_str("secret_file").map(|s| {
        secret_file(
            ctx,
            base,
            &s,
            &format!("webhook `{name}` cannot sign its calls"),
        )
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
    let mut auth = AuthConfig {
        local_token: t.bool("local_token").is_none_or(|b| b.value),
        ..AuthConfig::default()
    };
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
    auth.tokens = read_tokens(ctx, &t, "tokens");
    auth.calendar_tokens = read_tokens(ctx, &t, "calendar_tokens");
    t.finish();
    auth
}

/// `[[auth.tokens]]` or `[[auth.calendar_tokens]]`: `{name, sha256}`.
fn read_tokens(ctx: &Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Vec<TokenEntry> {
    let mut out = Vec::new();
    for tok in t.tables(key) {
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
            out.push(TokenEntry {
                name: n.value,
                sha256: s.value.to_ascii_lowercase(),
            });
        }
    }
    out
}
