//! The e-mail to the plan's owners about a vigilance proposal.

use chrono::{DateTime, Utc};

use crate::config::plan::{Plan, Scenario};
use crate::config::{ConfigSet, Professional};
use crate::engine::message::{self, Origin};
use crate::engine::render::Rendered;
use crate::store::outbox::{NewDelivery, Priority};
use crate::store::vigilance::{self as q, NewProposal};

/// The e-mail to the plan's owners about a proposal (or a declaration
/// made at once).
pub(super) fn owner_mails(
    set: &ConfigSet,
    plan: &Plan,
    scenario: &Scenario,
    p: &NewProposal,
    bulletin: String,
    now: DateTime<Utc>,
) -> Vec<NewDelivery> {
    let Some(sel) = &plan.owners else {
        return Vec::new();
    };
    let today = now.with_timezone(&set.daemon.timezone).date_naive();
    let owners: Vec<&Professional> = set.directory.select_on(sel, &|_: &str| Vec::new(), today);
    let what = format!(
        "vigilance {} {} pour le département {}",
        p.phenomenon, p.colour, p.departement
    );
    let (subject, doing) = match (p.state.as_str(), p.action.as_str(), &p.level) {
        (q::DECLARED, _, Some(l)) => (
            format!(
                "Vigilance {} {} : « {} » déclenché",
                p.phenomenon, p.colour, scenario.title
            ),
            format!(
                "Vigie a déclenché le scénario « {} » au niveau {l}.",
                scenario.title
            ),
        ),
        (_, "resolve", _) => (
            format!(
                "Vigilance {} levée : lever « {} » ?",
                p.phenomenon, scenario.title
            ),
            format!(
                "Vigie propose de lever le scénario « {} » en cours. Rien n'est fait sans votre accord.",
                scenario.title
            ),
        ),
        (_, _, l) => (
            format!(
                "Vigilance {} {} : déclencher « {} » ?",
                p.phenomenon, p.colour, scenario.title
            ),
            format!(
                "Vigie propose de déclencher le scénario « {} » au niveau {}. Rien n'est envoyé sans votre accord.",
                scenario.title,
                l.as_deref().unwrap_or("-")
            ),
        ),
    };
    let r_text = |name: &str| {
        format!(
            "Bonjour {name},\n\n{} annonce une {what} (bulletin du {bulletin}).\n{doing}\n\nPour décider (« Déclencher » ou « Ignorer ») : {}/bureau\n\nMessage automatique de Vigie — {}.\n",
            super::source_name(&p.source),
            set.daemon.public_url,
            set.daemon.name
        )
    };
    let mut out = Vec::new();
    let email = "email".to_string();
    for o in owners {
        let r = Rendered {
            subject: subject.clone(),
            text: r_text(&o.name),
            html: None,
        };
        let origin = Origin {
            event_id: None,
            step_id: None,
            priority: Priority::Crisis,
        };
        out.extend(message::person_deliveries(
            o,
            &[&email],
            &r,
            origin,
            |_, _| None,
        ));
    }
    out
}
