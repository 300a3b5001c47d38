//! `[sms.NAME]` of `vigie.toml`: SMS channels through a provider's HTTP API
//! (SPEC §14). Credentials are named files (also found in
//! `$CREDENTIALS_DIRECTORY`), read when the channel is built, never here:
//! only their existence is checked (a warning, like a webhook's secret).

use std::path::{Path, PathBuf};

use super::super::diag::{Loc, Located};
use super::super::reader::{Ctx, Table};
use super::super::templates::{self, TemplateDef, TemplateKind};
use super::read_http_url;
use super::redact::redact_url;
use crate::model::DurationValue;

#[derive(Clone, Debug)]
pub struct SmsConfig {
    /// The channel's name in plans (`[sms.NAME]`).
    pub name: String,
    pub provider: SmsProvider,
    /// The API base (`https://eu.api.ovh.com/1.0`, `https://api.brevo.com`,
    /// `https://rest.smsmode.com`, `https://api.twilio.com`), without a
    /// trailing `/`: overridable (tests, another OVH region).
    pub url: String,
    /// Concurrent calls to the provider.
    pub pool: u32,
    /// Messages per second at most (0: no limit).
    pub per_second: u32,
    pub timeout: DurationValue,
    /// An SMS is cut to this many segments (SPEC §14).
    pub max_segments: u32,
    /// The secret of `/api/v1/inbound/sms/{name}?secret=`: answers by SMS
    /// are accepted only when set.
    pub inbound_secret_file: Option<PathBuf>,
}

/// A provider and what it needs.
#[derive(Clone, Debug)]
pub enum SmsProvider {
    Ovh {
        /// The SMS account, `sms-ab12345-1`.
        service: String,
        application_key: String,
        application_secret_file: PathBuf,
        consumer_key_file: PathBuf,
        sender: String,
    },
    Brevo {
        api_key_file: PathBuf,
        sender: String,
    },
    Smsmode {
        api_key_file: PathBuf,
        sender: String,
    },
    Twilio {
        account_sid: String,
        auth_token_file: PathBuf,
        /// `From` (a number or alphanumeric sender), or a Messaging Service.
        from: TwilioFrom,
    },
}

#[derive(Clone, Debug)]
pub enum TwilioFrom {
    From(String),
    MessagingService(String),
}

impl SmsProvider {
    pub fn name(&self) -> &'static str {
        match self {
            SmsProvider::Ovh { .. } => "ovh",
            SmsProvider::Brevo { .. } => "brevo",
            SmsProvider::Smsmode { .. } => "smsmode",
            SmsProvider::Twilio { .. } => "twilio",
        }
    }

    fn default_url(provider: &str) -> &'static str {
        match provider {
            "ovh" => "https://eu.api.ovh.com/1.0",
            "brevo" => "https://api.brevo.com",
            "smsmode" => "https://rest.smsmode.com",
            _ => "https://api.twilio.com",
        }
    }
}

/// Every key some provider reads.
const PROVIDER_KEYS: [&str; 9] = [
    "service",
    "application_key",
    "application_secret_file",
    "consumer_key_file",
    "sender",
    "api_key_file",
    "account_sid",
    "auth_token_file",
    "from",
];

pub(super) fn read_sms(
    ctx: &Ctx<'_>,
    t: Table<'_, '_>,
    base: &Path,
    name: &str,
) -> Option<SmsConfig> {
    let provider = t.req_str("provider");
    let url = if t.has("url") {
        read_http_url(ctx, &t, "sms", redact_url).map(Some)
    } else {
        Some(None)
    };
    // A credential file: its path, with an error when it cannot be read
    // (`vigie run` would refuse to start: check says so first).
    let file = |key: &str, required: bool| -> Option<Option<PathBuf>> {
        let v = if required {
            t.req_str(key).map(Some)?
        } else {
            t.str(key)
        };
        Some(v.map(|s| {
            super::secret_file(ctx, base, &s, &format!("SMS channel `{name}` cannot work"))
        }))
    };
    // A sender that is a name (`CPTSTHUR`): a phone cannot answer it.
    let named_sender: std::cell::RefCell<Option<(&str, Located<String>)>> = Default::default();
    let note_named = |key: &'static str, s: &Located<String>| {
        if s.value.chars().any(|c| c.is_ascii_alphabetic()) {
            *named_sender.borrow_mut() = Some((key, s.clone()));
        }
    };
    let sender = |t: &Table<'_, '_>| -> Option<String> {
        t.req_str("sender").and_then(|s| {
            note_named("sender", &s);
            check_sender(ctx, &s)
        })
    };
    let p = provider.as_ref().map(|p| p.value.as_str());
    // In a closure: a missing or bad key ends the provider's part only, and
    // the rest of the table is still read and checked.
    let kind = (|| match p {
        None => None,
        Some("ovh") => {
            let service = t.req_str("service").map(|s| s.value);
            let application_key = t.req_str("application_key").map(|s| s.value);
            let application_secret_file = file("application_secret_file", true).flatten();
            let consumer_key_file = file("consumer_key_file", true).flatten();
            let sender = sender(&t);
            Some(SmsProvider::Ovh {
                service: service?,
                application_key: application_key?,
                application_secret_file: application_secret_file?,
                consumer_key_file: consumer_key_file?,
                sender: sender?,
            })
        }
        Some(p @ ("brevo" | "smsmode")) => {
            let api_key_file = file("api_key_file", true).flatten();
            let sender = sender(&t);
            let (api_key_file, sender) = (api_key_file?, sender?);
            Some(if p == "brevo" {
                SmsProvider::Brevo {
                    api_key_file,
                    sender,
                }
            } else {
                SmsProvider::Smsmode {
                    api_key_file,
                    sender,
                }
            })
        }
        Some("twilio") => {
            let account_sid = t.req_str("account_sid").map(|s| s.value);
            let auth_token_file = file("auth_token_file", true).flatten();
            let from = match (t.str("from"), t.str("messaging_service_sid")) {
                (Some(f), None) => {
                    note_named("from", &f);
                    check_sender(ctx, &f).map(TwilioFrom::From)
                }
                (None, Some(m)) => Some(TwilioFrom::MessagingService(m.value)),
                (Some(f), Some(_)) => {
                    ctx.error(&f.loc, "write `from` or `messaging_service_sid`, not both");
                    None
                }
                (None, None) => {
                    ctx.error(
                        &t.loc(),
                        "provider \"twilio\" needs `from` (the sending number) or `messaging_service_sid`",
                    );
                    None
                }
            };
            Some(SmsProvider::Twilio {
                account_sid: account_sid?,
                auth_token_file: auth_token_file?,
                from: from?,
            })
        }
        Some(other) => {
            if let Some(p) = &provider {
                ctx.error(
                    &p.loc,
                    format!(
                        "unknown SMS provider \"{other}\" (providers: ovh, brevo, smsmode, twilio)"
                    ),
                );
            }
            // The provider's keys are not unknown keys: the provider is.
            for key in PROVIDER_KEYS {
                let _ = t.str(key);
            }
            None
        }
    })();
    let int = |key: &str, default: u32, min: i64, max: i64| match t.int(key) {
        None => Some(default),
        Some(n) if (min..=max).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            ctx.error(&n.loc, format!("`{key}` must be between {min} and {max}"));
            None
        }
    };
    let pool = int("pool", 4, 1, 1_000);
    let per_second = int("per_second", 20, 0, 100_000);
    let max_segments = int("max_segments", 2, 1, 10);
    let timeout = match t.str("timeout") {
        None => Some(DurationValue(std::time::Duration::from_secs(10))),
        Some(s) => DurationValue::parse(&s.value)
            .map_err(|e| ctx.error(&s.loc, e))
            .ok(),
    };
    let inbound_secret_file = file("inbound_secret_file", false).flatten();
    // OVH is asked for a number that can be answered (senderForResponse);
    // the others send from what is written.
    if let (Some(_), Some((key, s))) = (&inbound_secret_file, named_sender.take())
        && p != Some("ovh")
    {
        ctx.warning(
            &s.loc,
            format!(
                "`{key}` \"{}\" is a name: a phone cannot answer it, so `inbound_secret_file` \
                 receives no answer by SMS on channel `{name}` (write the channel's phone number)",
                s.value
            ),
        );
    }
    t.finish();
    let provider = kind?;
    let url = url?
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| SmsProvider::default_url(provider.name()).to_string());
    Some(SmsConfig {
        name: name.to_string(),
        provider,
        url,
        pool: pool?,
        per_second: per_second?,
        timeout: timeout?,
        max_segments: max_segments?,
        inbound_secret_file,
    })
}

/// A sender: up to 11 letters and digits (alphanumeric sender), or a number
/// of up to 15 digits with an optional `+`.
fn check_sender(ctx: &Ctx<'_>, s: &Located<String>) -> Option<String> {
    let v = s.value.as_str();
    let digits = v.strip_prefix('+').unwrap_or(v);
    let number =
        !digits.is_empty() && digits.len() <= 15 && digits.chars().all(|c| c.is_ascii_digit());
    let alpha = !v.is_empty()
        && v.len() <= 11
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && v.chars().any(|c| c.is_ascii_alphabetic());
    if number || alpha {
        Some(v.to_string())
    } else {
        ctx.error(
            &s.loc,
            format!(
                "invalid SMS sender \"{v}\": up to 11 letters and digits (e.g. \"CPTSTHUR\") or a phone number"
            ),
        );
        None
    }
}

/// A warning when `def`, rendered for the sample recipient, makes an SMS
/// longer than `cfg.max_segments` (it will be cut): where the template's
/// `sms` (else `text`) starts, and what to do.
pub fn check_sms_length(
    cfg: &SmsConfig,
    def: &TemplateDef,
    responses: &[String],
    public_url: &str,
) -> Option<(Loc, String)> {
    use crate::deliver::sms::segments;
    let (part, name) = match &def.sms {
        Some(s) => (s, "sms"),
        None => (&def.text, "text"),
    };
    let ctx = TemplateKind::Event.sample_context();
    // A template that does not render is reported by its own check.
    let body = templates::environment()
        .render_str(&part.source, ctx)
        .ok()?;
    let link = format!("{public_url}/r/12.345.0123456789abcdef0123456789abcdef");
    let reply = segments::reply_for(responses);
    let whole = segments::compose(&body, &reply, &link, usize::MAX);
    let c = segments::count(&whole);
    if c.segments <= cfg.max_segments as usize {
        return None;
    }
    let encoding = match c.encoding {
        segments::Encoding::Gsm7 => "GSM 7-bit",
        segments::Encoding::Ucs2 => "UCS-2: a character outside the GSM alphabet",
    };
    Some((
        part.loc_at(1, 1),
        format!(
            "template `{}` ({name}) makes an SMS of {} segments ({} units, {encoding}) on channel `{}`, \
             more than its max_segments = {}: it will be cut (write a shorter `sms` part)",
            def.name.value, c.segments, c.units, cfg.name, cfg.max_segments
        ),
    ))
}
