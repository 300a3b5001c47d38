//! Events as OASIS CAP 1.2 alerts (SPEC §13, "CAP export"), and the public
//! Atom feed of them. Pure writing: the caller reads the event and its
//! level history from the store and passes them in; nothing here decides.
//!
//! An event is a sequence of messages: `Alert` at its declaration, one
//! `Update` per level change, `Cancel` at its resolution; every message
//! after the first `references` the first. Identifiers are
//! `vigie-INSTALL-EVENT-N` (N = 0 for the alert, 1, 2… for the updates)
//! and `vigie-INSTALL-EVENT-fin` for the cancel: stable, unique per
//! installation, event and message. Nothing personal is written (no name,
//! recipient or response) and not the event's `note`, which is internal.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

use crate::store::events::{EventRow, EventState};

/// The CAP namespace.
pub const CAP_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// How long a resolved event stays in the public feed.
pub const FEED_KEEPS_RESOLVED_DAYS: i64 = 7;

/// What every message of this installation shares.
pub struct CapSource<'a> {
    /// `<sender>`: the host of `public_url`.
    pub sender: String,
    /// The installation id (`meta.install_id`).
    pub install_id: &'a str,
    /// `<senderName>` and `<areaDesc>`: the CPTS's name.
    pub name: &'a str,
    /// `public_url`, without a trailing `/`.
    pub public_url: &'a str,
    pub timezone: Tz,
    /// `[vigilance] departements`: each `<area>` gets, for each, a
    /// `<geocode>` `INSEE-departement` (`68`) and one `EMMA_ID` (`FR068`),
    /// the code MeteoAlarm uses.
    pub departements: &'a [String],
}

impl CapSource<'_> {
    /// The host of a `public_url` (no scheme, port or path).
    pub fn host_of(public_url: &str) -> String {
        reqwest::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "localhost".to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    Alert,
    Update,
    Cancel,
}

impl MsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
        }
    }
}

/// One message of an event.
#[derive(Clone, Debug)]
pub struct CapMessage {
    pub msg_type: MsgType,
    /// `0` for the alert, `1…` for the updates; unused for the cancel.
    pub seq: usize,
    pub sent: DateTime<Utc>,
    pub level: Option<String>,
}

/// The messages of `ev`, oldest first, from its level history (as
/// `store::cap::level_history` reads it: one entry per level, with when).
/// A current level the history does not show (a level without broadcast
/// sends no step) counts as a change at the event's last update.
pub fn messages(ev: &EventRow, history: &[(Option<String>, DateTime<Utc>)]) -> Vec<CapMessage> {
    let mut levels: Vec<(Option<String>, DateTime<Utc>)> = Vec::new();
    for (i, (level, at)) in history.iter().enumerate() {
        // The first level is the declaration's, whenever its first step.
        let at = if i == 0 { ev.declared_at } else { *at };
        if levels.last().map(|(l, _)| l) != Some(level) {
            levels.push((level.clone(), at));
        }
    }
    if levels.is_empty() {
        levels.push((ev.level.clone(), ev.declared_at));
    }
    if levels.last().map(|(l, _)| l) != Some(&ev.level) {
        levels.push((ev.level.clone(), ev.updated_at));
    }
    let mut out: Vec<CapMessage> = levels
        .into_iter()
        .enumerate()
        .map(|(seq, (level, sent))| CapMessage {
            msg_type: if seq == 0 {
                MsgType::Alert
            } else {
                MsgType::Update
            },
            seq,
            sent,
            level,
        })
        .collect();
    if ev.state == EventState::Resolved {
        let last = out.last().map(|m| m.level.clone()).unwrap_or_default();
        out.push(CapMessage {
            msg_type: MsgType::Cancel,
            seq: out.len(),
            sent: ev.resolved_at.unwrap_or(ev.updated_at),
            level: last,
        });
    }
    out
}

/// `<severity>` of a level: by its colour (jaune Moderate, orange Severe,
/// rouge Extreme, vert Minor); no level or any other name: Unknown.
pub fn severity(level: Option<&str>) -> &'static str {
    match level.map(|l| l.trim().to_lowercase()).as_deref() {
        Some("vert" | "verte") => "Minor",
        Some("jaune") => "Moderate",
        Some("orange") => "Severe",
        Some("rouge" | "écarlate" | "ecarlate") => "Extreme",
        _ => "Unknown",
    }
}

/// A date as CAP wants it: RFC 3339 in the daemon's offset, whole
/// seconds, UTC written `-00:00` (CAP 1.2 §3.3.2: never `Z`).
pub fn cap_time(t: DateTime<Utc>, tz: Tz) -> String {
    let s = t
        .with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false);
    match s.strip_suffix("+00:00") {
        Some(head) => format!("{head}-00:00"),
        None => s,
    }
}

/// Text escaped for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// `<name>value</name>` on its own line, indented.
fn el(x: &mut String, name: &str, value: &str, indent: usize) {
    x.push_str(&"  ".repeat(indent));
    x.push_str(&format!("<{name}>{}</{name}>\n", esc(value)));
}

/// The EMMA_ID of a département: `FR` and three characters (`FR068`,
/// `FR02A`, `FR974`).
pub fn emma_id(departement: &str) -> String {
    format!("FR{departement:0>3}")
}

fn identifier(src: &CapSource<'_>, ev: &EventRow, m: &CapMessage) -> String {
    match m.msg_type {
        MsgType::Cancel => format!("vigie-{}-{}-fin", src.install_id, ev.id),
        _ => format!("vigie-{}-{}-{}", src.install_id, ev.id, m.seq),
    }
}

fn headline(ev: &EventRow, m: &CapMessage) -> String {
    let exercise = if ev.exercise { "[EXERCICE] " } else { "" };
    format!("{exercise}{}", headline_text(ev, m))
}

fn headline_text(ev: &EventRow, m: &CapMessage) -> String {
    let level = m.level.as_deref().map(|l| format!(" (niveau {l})"));
    let level = level.unwrap_or_default();
    match m.msg_type {
        MsgType::Alert => format!("{}{level}", ev.title),
        MsgType::Update => format!(
            "{} : passage au niveau {}",
            ev.title,
            m.level.as_deref().unwrap_or("sans niveau")
        ),
        MsgType::Cancel => format!("{} : fin de l'alerte", ev.title),
    }
}

/// The `<alert>` of one message, without XML declaration (it is also the
/// content of a feed entry), carrying its namespace.
pub fn alert(src: &CapSource<'_>, ev: &EventRow, msgs: &[CapMessage], m: &CapMessage) -> String {
    let tz = src.timezone;
    let mut x = String::with_capacity(2048);
    x.push_str(&format!("<alert xmlns=\"{CAP_NS}\">\n"));
    let status = if ev.exercise { "Exercise" } else { "Actual" };
    let first = &msgs[0];
    el(&mut x, "identifier", &identifier(src, ev, m), 1);
    el(&mut x, "sender", &src.sender, 1);
    el(&mut x, "sent", &cap_time(m.sent, tz), 1);
    el(&mut x, "status", status, 1);
    el(&mut x, "msgType", m.msg_type.as_str(), 1);
    el(&mut x, "scope", "Public", 1);
    if m.msg_type != MsgType::Alert {
        let reference = format!(
            "{},{},{}",
            src.sender,
            identifier(src, ev, first),
            cap_time(first.sent, tz)
        );
        el(&mut x, "references", &reference, 1);
    }
    el(
        &mut x,
        "incidents",
        &format!("vigie-{}-{}", src.install_id, ev.id),
        1,
    );
    x.push_str("  <info>\n");
    el(&mut x, "language", "fr-FR", 2);
    el(&mut x, "category", "Health", 2);
    el(&mut x, "event", &ev.title, 2);
    let (urgency, response) = match m.msg_type {
        MsgType::Cancel => ("Past", "AllClear"),
        _ => ("Immediate", "Monitor"),
    };
    el(&mut x, "responseType", response, 2);
    el(&mut x, "urgency", urgency, 2);
    el(&mut x, "severity", severity(m.level.as_deref()), 2);
    el(&mut x, "certainty", "Observed", 2);
    el(&mut x, "senderName", src.name, 2);
    el(&mut x, "headline", &headline(ev, m), 2);
    el(&mut x, "web", &format!("{}/", src.public_url), 2);
    x.push_str("    <area>\n");
    el(&mut x, "areaDesc", src.name, 3);
    for d in src.departements {
        for (name, value) in [("INSEE-departement", d.clone()), ("EMMA_ID", emma_id(d))] {
            x.push_str("      <geocode>\n");
            el(&mut x, "valueName", name, 4);
            el(&mut x, "value", &value, 4);
            x.push_str("      </geocode>\n");
        }
    }
    x.push_str("    </area>\n  </info>\n</alert>\n");
    x
}

/// The XML document of an event's latest message.
pub fn document(src: &CapSource<'_>, ev: &EventRow, msgs: &[CapMessage]) -> String {
    let last = msgs.last().expect("an event has at least its alert");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        alert(src, ev, msgs, last)
    )
}

/// The Atom feed: one entry per event (its latest message, the CAP alert
/// as the entry's content). `now` dates an empty feed.
pub fn feed(
    src: &CapSource<'_>,
    events: &[(EventRow, Vec<CapMessage>)],
    now: DateTime<Utc>,
) -> String {
    let tz = src.timezone;
    let base = src.public_url;
    let updated = events
        .iter()
        .filter_map(|(_, m)| m.last().map(|m| m.sent))
        .max()
        .unwrap_or(now);
    let mut x = String::with_capacity(1024 + events.len() * 2048);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    x.push_str(&format!(
        "  <id>{}</id>\n",
        esc(&format!("{base}/cap.atom"))
    ));
    x.push_str(&format!(
        "  <title>{}</title>\n",
        esc(&format!("{} : alertes en cours", src.name))
    ));
    x.push_str(&format!("  <updated>{}</updated>\n", cap_time(updated, tz)));
    x.push_str(&format!(
        "  <author><name>{}</name></author>\n",
        esc(src.name)
    ));
    x.push_str(&format!(
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
        esc(&format!("{base}/cap.atom"))
    ));
    for (ev, msgs) in events {
        let Some(last) = msgs.last() else { continue };
        x.push_str("  <entry>\n");
        x.push_str(&format!(
            "    <id>{}</id>\n",
            esc(&format!(
                "{base}/cap.atom#vigie-{}-{}",
                src.install_id, ev.id
            ))
        ));
        x.push_str(&format!(
            "    <title>{}</title>\n",
            esc(&headline(ev, last))
        ));
        x.push_str(&format!(
            "    <updated>{}</updated>\n",
            cap_time(last.sent, tz)
        ));
        x.push_str(&format!(
            "    <published>{}</published>\n",
            cap_time(ev.declared_at, tz)
        ));
        x.push_str(&format!(
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            esc(&format!("{base}/"))
        ));
        x.push_str("    <content type=\"application/cap+xml\">\n");
        x.push_str(&alert(src, ev, msgs, last));
        x.push_str("    </content>\n  </entry>\n");
    }
    x.push_str("</feed>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(level: Option<&str>, state: EventState) -> EventRow {
        let at = Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap();
        EventRow {
            id: 7,
            scenario: "canicule".into(),
            dedup_key: "canicule".into(),
            title: "Vague de chaleur & <chaleur>".into(),
            level: level.map(str::to_string),
            note: "interne".into(),
            exercise: false,
            state,
            plan_id: "p".into(),
            plan_version: "1".into(),
            plan_sha256: "x".into(),
            declared_at: at,
            updated_at: at + chrono::Duration::minutes(30),
            acknowledged_at: None,
            exhausted_at: None,
            resolved_at: (state == EventState::Resolved).then(|| at + chrono::Duration::hours(2)),
            resolve_note: None,
            tier: 0,
            round: 0,
            escalation_due_at: None,
            link_secret: String::new(),
        }
    }

    fn src() -> CapSource<'static> {
        CapSource {
            sender: CapSource::host_of("https://vigie.cpts.example:8443/base"),
            install_id: "abc",
            name: "CPTS du Thur",
            public_url: "https://vigie.cpts.example:8443/base",
            timezone: chrono_tz::Europe::Paris,
            departements: &[],
        }
    }

    #[test]
    fn utc_is_written_minus_zero_and_paris_with_its_offset() {
        let t = Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap();
        assert_eq!(cap_time(t, chrono_tz::UTC), "2026-01-10T09:00:00-00:00");
        assert_eq!(
            cap_time(t, chrono_tz::Europe::Paris),
            "2026-01-10T10:00:00+01:00"
        );
    }

    #[test]
    fn severity_follows_the_colour() {
        assert_eq!(severity(Some("jaune")), "Moderate");
        assert_eq!(severity(Some("Orange")), "Severe");
        assert_eq!(severity(Some("rouge")), "Extreme");
        assert_eq!(severity(Some("vert")), "Minor");
        assert_eq!(severity(Some("niveau 2")), "Unknown");
        assert_eq!(severity(None), "Unknown");
    }

    #[test]
    fn a_level_without_step_is_an_update_at_the_last_change() {
        let ev = event(Some("rouge"), EventState::Resolved);
        let history = vec![(Some("orange".to_string()), ev.declared_at)];
        let msgs = messages(&ev, &history);
        let kinds: Vec<_> = msgs.iter().map(|m| m.msg_type).collect();
        assert_eq!(kinds, [MsgType::Alert, MsgType::Update, MsgType::Cancel]);
        assert_eq!(msgs[1].sent, ev.updated_at);
        assert_eq!(msgs[2].level.as_deref(), Some("rouge"));
    }

    #[test]
    fn text_is_escaped_and_the_sender_is_the_bare_host() {
        let ev = event(Some("orange"), EventState::Active);
        let msgs = messages(&ev, &[]);
        let xml = document(&src(), &ev, &msgs);
        assert!(xml.contains("<sender>vigie.cpts.example</sender>"), "{xml}");
        assert!(
            xml.contains("Vague de chaleur &amp; &lt;chaleur&gt;"),
            "{xml}"
        );
        assert!(
            xml.contains("<identifier>vigie-abc-7-0</identifier>"),
            "{xml}"
        );
        assert!(!xml.contains("interne"), "{xml}");
        let feed = feed(&src(), &[(ev.clone(), msgs)], ev.updated_at);
        assert!(
            feed.contains("https://vigie.cpts.example:8443/base/cap.atom"),
            "{feed}"
        );
    }
}
