//! Responses through personal links (SPEC §7): looking a link up (never
//! changing anything: mail scanners open links) and recording a response,
//! which may acknowledge the event.

use rusqlite::Connection;

use super::escalation::quorum;
use super::journal;
use super::links::LinkClaim;
use super::{Ctx, EngineError, plan_of};
use crate::store::Store;
use crate::store::events::{self as q, Answer, EventRow, EventState};

/// The longest arrival delay an answer may give, in minutes (a day).
pub const ETA_MAX_MINUTES: u32 = 1440;
/// The longest comment an answer may carry, in characters.
pub const COMMENT_MAX_CHARS: usize = 500;

/// Why the extras of an answer (SPEC §12) are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadAnswer {
    /// `eta` is not a whole number of minutes from 0 to [`ETA_MAX_MINUTES`].
    #[error("`eta` must be a whole number of minutes from 0 to {ETA_MAX_MINUTES}, got `{0}`")]
    Eta(String),
    /// `comment` is longer than [`COMMENT_MAX_CHARS`] (its length given).
    #[error("`comment` is {0} characters long, at most {COMMENT_MAX_CHARS} are allowed")]
    Comment(usize),
}

/// An answer from the fields of the response form: `eta` empty or absent
/// means no delay given; `comment` is trimmed, empty means none.
pub fn answer(
    response: &str,
    eta: Option<&str>,
    comment: Option<&str>,
) -> Result<Answer, BadAnswer> {
    let eta = match eta.map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => match e.parse::<u32>() {
            Ok(m) if m <= ETA_MAX_MINUTES => Some(m),
            _ => return Err(BadAnswer::Eta(e.chars().take(20).collect())),
        },
    };
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = comment {
        let n = c.chars().count();
        if n > COMMENT_MAX_CHARS {
            return Err(BadAnswer::Comment(n));
        }
    }
    Ok(Answer {
        response: response.to_string(),
        eta_minutes: eta,
        comment: comment.map(str::to_string),
    })
}

/// What a response link shows.
#[derive(Clone, Debug)]
pub struct LinkView {
    pub event: EventRow,
    pub recipient_id: String,
    pub recipient_name: String,
    pub choices: Vec<String>,
    pub current: Option<String>,
    /// The latest answer's arrival delay and comment, if any.
    pub current_eta: Option<u32>,
    pub current_comment: Option<String>,
    pub plan_title: String,
}

/// Looks a response link up without changing anything (mail scanners open
/// links).
pub async fn link(store: &Store, ctx: Ctx, token: String) -> Result<LinkView, EngineError> {
    let claim = ctx.links.parse(&token).ok_or_else(unknown_link)?;
    store.call(move |c| Ok(link_view(c, &ctx, &claim))).await?
}

fn unknown_link() -> EngineError {
    EngineError::NotFound("unknown link".into())
}

/// The event and recipient of a link, once its signature is checked against
/// the event's own secret (a link of an event lost in a database restore
/// does not open the event that took its number).
fn link_view(c: &Connection, ctx: &Ctx, claim: &LinkClaim) -> Result<LinkView, EngineError> {
    let (event_id, seq) = (claim.event_id, claim.seq);
    let ev = q::get_event(c, event_id)?.ok_or_else(unknown_link)?;
    if !ctx.links.verify(claim, &ev.link_secret) {
        return Err(unknown_link());
    }
    let (rid, name) = q::recipient_by_seq(c, event_id, seq)?.ok_or_else(unknown_link)?;
    let (plan, scenario) = plan_of(&ctx.set, &ev)?;
    let latest = q::responses(c, event_id)?
        .into_iter()
        .rfind(|r| r.recipient_id == rid);
    let current = latest.as_ref().map(|r| r.response.clone());
    let view = LinkView {
        plan_title: plan.title.clone(),
        choices: scenario.responses.clone(),
        event: ev,
        recipient_id: rid,
        recipient_name: name,
        current,
        current_eta: latest.as_ref().and_then(|r| r.eta_minutes),
        current_comment: latest.and_then(|r| r.comment),
    };
    if view.event.state == EventState::Resolved {
        return Err(EngineError::Gone(format!(
            "« {} » est terminé",
            view.event.title
        )));
    }
    Ok(view)
}

/// Records a response through a link, with its arrival delay and comment
/// (a later answer replaces the earlier one whole: delay and comment
/// included); acknowledges the event when the quorum of the tier in
/// progress is reached.
pub async fn respond(
    store: &Store,
    ctx: Ctx,
    token: String,
    answer: Answer,
) -> Result<LinkView, EngineError> {
    let claim = ctx.links.parse(&token).ok_or_else(unknown_link)?;
    let event_id = claim.event_id;
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = (|| {
                let view = link_view(&tx, &ctx, &claim)?;
                let response = &answer.response;
                // The page checks these already ([`answer`]); any other
                // caller is held to the same bounds.
                let comment_len = answer.comment.as_ref().map_or(0, |c| c.chars().count());
                if answer.eta_minutes.is_some_and(|m| m > ETA_MAX_MINUTES) {
                    return Err(EngineError::Invalid(
                        BadAnswer::Eta(answer.eta_minutes.unwrap_or_default().to_string())
                            .to_string(),
                    ));
                }
                if comment_len > COMMENT_MAX_CHARS {
                    return Err(EngineError::Invalid(
                        BadAnswer::Comment(comment_len).to_string(),
                    ));
                }
                if !view.choices.contains(response) {
                    return Err(EngineError::Invalid(format!(
                        "unknown response `{response}` (choices: {})",
                        view.choices.join(", ")
                    )));
                }
                q::insert_response(&tx, event_id, &view.recipient_id, &answer, ctx.now)?;
                journal::response(
                    &tx,
                    &ctx,
                    event_id,
                    &view.recipient_name,
                    &view.recipient_id,
                    response,
                    &journal::ResponseExtras {
                        eta_minutes: answer.eta_minutes,
                        comment: answer.comment.as_deref(),
                    },
                )?;
                let ev = &view.event;
                if matches!(ev.state, EventState::Active | EventState::Exhausted) {
                    let (_, scenario) = plan_of(&ctx.set, ev)?;
                    let counted = quorum(&tx, ev, scenario)?;
                    if counted.met() {
                        q::set_state(&tx, event_id, EventState::Acknowledged, None, ctx.now)?;
                        journal::acknowledged(
                            &tx,
                            &ctx,
                            &view.recipient_name,
                            ev,
                            counted.acks,
                            counted.needed.unwrap_or(0),
                        )?;
                        tracing::info!(event = event_id, "quorum reached: event acknowledged");
                    }
                }
                link_view(&tx, &ctx, &claim)
            })();
            if out.is_ok() {
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}

/// What an answer by SMS did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmsAnswer {
    /// Recorded as `response` for the event (as on the response page).
    Recorded { event_id: i64, response: String },
    /// The sender has no unresolved event asking them.
    NoEvent,
    /// The text is none of the event's responses.
    Unknown { event_id: i64 },
    /// The event texted `people` (more than one) of those with the
    /// sender's number: who wrote cannot be told.
    Ambiguous { event_id: i64, people: usize },
}

/// The response an SMS text means among `choices`, and the rest of the
/// text as the response's comment (at most [`COMMENT_MAX_CHARS`]
/// characters, cut): the text starts with a response's number ("1" is the
/// first: "1 je serai là dans 20 min"), or with the response itself or its
/// label, whatever the case and accents ("Disponible, j'arrive", "bien
/// recu"), followed by anything. "Oui" is no response unless a response
/// is called so; nor is a number that is a delay or a decimal ("2 min",
/// "2 heures", "1.5": whoever writes them answers something else).
pub fn reply_of_text(text: &str, choices: &[String]) -> Option<(String, Option<String>)> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits > 0 {
        // "1", "2.", "1 je viens"; not "1er".
        if t[digits..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
        {
            return None;
        }
        // Not a delay or a decimal: "2 min", "2 heures, j'arrive", "1.5".
        let rest = &t[digits..];
        let mut after = rest.chars();
        if matches!(after.next(), Some('.' | ','))
            && after.next().is_some_and(|c| c.is_ascii_digit())
        {
            return None;
        }
        let word = crate::model::fold(
            rest.trim_start()
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or(""),
        );
        const UNITS: [&str; 9] = [
            "min", "mn", "minute", "minutes", "h", "heure", "heures", "hr", "hrs",
        ];
        if UNITS.contains(&word.as_str()) {
            return None;
        }
        let n: usize = t[..digits].parse().ok()?;
        let r = n.checked_sub(1).and_then(|i| choices.get(i)).cloned()?;
        return Some((r, comment_of(&t[digits..])));
    }
    // The first one to four words, the most first ("bien reçu").
    let mut ends: Vec<usize> = t
        .char_indices()
        .zip(t.chars().skip(1).chain([' ']))
        .filter(|((_, c), next)| !c.is_whitespace() && next.is_whitespace())
        .map(|((i, c), _)| i + c.len_utf8())
        .take(4)
        .collect();
    ends.reverse();
    let fold = crate::model::fold;
    for end in ends {
        let head = fold(t[..end].trim_end_matches(|c: char| c.is_ascii_punctuation()));
        let found = choices.iter().find(|c| {
            fold(&c.replace('_', " ")) == head || fold(&crate::model::labels::response(c)) == head
        });
        if let Some(c) = found {
            return Some((c.clone(), comment_of(&t[end..])));
        }
    }
    None
}

/// What follows the response in an SMS, as its comment.
fn comment_of(rest: &str) -> Option<String> {
    let r = rest
        .trim_start_matches(|c: char| c.is_whitespace() || ".,;:-!)/".contains(c))
        .trim();
    (!r.is_empty()).then(|| r.chars().take(COMMENT_MAX_CHARS).collect())
}

/// Records an answer by SMS from one of `recipient_ids` (the professionals
/// with the sender's number) received on SMS channel `channel`: the event
/// it answers is [`q::latest_asking`] (the newest unresolved one that
/// texted one of them on that channel, real events first); the one who
/// wrote is the one of them it texted ([`SmsAnswer::Ambiguous`] if
/// several); `text` is matched to a response, then recorded through
/// [`respond`], as on the response page (quorum, acknowledgement).
pub async fn respond_by_sms(
    store: &Store,
    ctx: Ctx,
    recipient_ids: Vec<String>,
    channel: String,
    text: String,
) -> Result<SmsAnswer, EngineError> {
    let set = ctx.set.clone();
    let found = store
        .call(move |c| {
            let Some(event_id) = q::latest_asking(c, &recipient_ids, &channel)? else {
                return Ok(None);
            };
            let texted = q::texted(c, event_id, &recipient_ids, &channel)?;
            Ok(q::get_event(c, event_id)?.map(|ev| (ev, texted)))
        })
        .await?;
    let Some((ev, texted)) = found else {
        return Ok(SmsAnswer::NoEvent);
    };
    let seq = match texted.as_slice() {
        [(_, seq)] => *seq,
        _ => {
            return Ok(SmsAnswer::Ambiguous {
                event_id: ev.id,
                people: texted.len(),
            });
        }
    };
    let (_, scenario) = plan_of(&set, &ev)?;
    let Some((response, comment)) = reply_of_text(&text, &scenario.responses) else {
        return Ok(SmsAnswer::Unknown { event_id: ev.id });
    };
    let token = ctx.links.token(ev.id, seq, &ev.link_secret);
    let answer = Answer {
        response: response.clone(),
        eta_minutes: None,
        comment,
    };
    respond(store, ctx, token, answer).await?;
    Ok(SmsAnswer::Recorded {
        event_id: ev.id,
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_takes_a_delay_of_0_to_1440_minutes_and_a_comment_of_500_characters() {
        let a = answer("disponible", Some(" 0 "), Some("  ")).unwrap();
        assert_eq!((a.eta_minutes, a.comment), (Some(0), None));
        let a = answer("disponible", Some("1440"), Some(&"é".repeat(500))).unwrap();
        assert_eq!(a.eta_minutes, Some(1440));
        assert_eq!(answer("disponible", None, None).unwrap().eta_minutes, None);
        assert_eq!(
            answer("disponible", Some(""), None).unwrap().eta_minutes,
            None
        );
        for bad in ["1441", "-1", "abc", "2.5", "99999999999"] {
            assert!(
                matches!(
                    answer("disponible", Some(bad), None),
                    Err(BadAnswer::Eta(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            answer("disponible", None, Some(&"é".repeat(501))),
            Err(BadAnswer::Comment(501))
        );
    }

    #[test]
    fn an_sms_answer_is_a_number_a_response_or_its_label() {
        let c = vec!["disponible".to_string(), "bien_recu".to_string()];
        let r = |t: &str| reply_of_text(t, &c).map(|(r, _)| r);
        assert_eq!(r(" 1 ").as_deref(), Some("disponible"));
        assert_eq!(r("2.").as_deref(), Some("bien_recu"));
        assert_eq!(r("3"), None);
        assert_eq!(r("0"), None);
        assert_eq!(r("Disponible !").as_deref(), Some("disponible"));
        assert_eq!(r("bien reçu").as_deref(), Some("bien_recu"));
        assert_eq!(r("BIEN RECU").as_deref(), Some("bien_recu"));
        assert_eq!(r("peut-être"), None);
        assert_eq!(r("1er"), None);
        assert_eq!(r("Oui"), None);
        assert_eq!(r("indisponible"), None);
    }

    #[test]
    fn a_natural_sms_answer_keeps_the_rest_as_its_comment() {
        let c = vec!["disponible".to_string(), "bien_recu".to_string()];
        assert_eq!(
            reply_of_text("1 je serai là dans 20 min", &c),
            Some(("disponible".into(), Some("je serai là dans 20 min".into())))
        );
        assert_eq!(
            reply_of_text("Disponible, j'arrive", &c),
            Some(("disponible".into(), Some("j'arrive".into())))
        );
        assert_eq!(
            reply_of_text("Bien reçu merci", &c),
            Some(("bien_recu".into(), Some("merci".into())))
        );
        assert_eq!(
            reply_of_text("2 - ok", &c),
            Some(("bien_recu".into(), Some("ok".into())))
        );
        assert_eq!(reply_of_text("1", &c), Some(("disponible".into(), None)));
        // A delay or a decimal is no answer: "2 min" is not "2".
        for not_an_answer in ["2 min", "2 heures, j'arrive", "1.5", "2 H", "20 min"] {
            assert_eq!(reply_of_text(not_an_answer, &c), None, "{not_an_answer}");
        }
        let long = format!("1 {}", "é".repeat(600));
        let (_, comment) = reply_of_text(&long, &c).unwrap();
        assert_eq!(comment.unwrap().chars().count(), COMMENT_MAX_CHARS);
    }
}
