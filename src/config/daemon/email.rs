//! `[email]` of `vigie.toml`: the `From:` mailbox and the transport (`.eml`
//! files or SMTP), with the checks of an SMTP URL.

use std::path::{Path, PathBuf};

use super::super::diag::Located;
use super::super::reader::{Ctx, Table};
use super::redact::redact_url;
use super::resolve;
use crate::model::EmailAddress;

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

pub(super) fn read_email(ctx: &Ctx<'_>, t: Table<'_, '_>, base: &Path) -> Option<EmailConfig> {
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
    let positive = |v: Option<Located<i64>>, key: &str, default: u32, max: i64| match v {
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

#[cfg(test)]
mod tests {
    use super::check_smtp_url;

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
