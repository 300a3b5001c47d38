//! The swap messages' texts (SPEC §15), in French: what a request, a take,
//! the bureau's decision, the 48 h alert and a resent link say. Plain
//! text, no markup (no backticks: mail readers show them as they are).

use chrono::NaiveDate;

use crate::config::{ConfigSet, Professional, Roster};
use crate::engine::message::{self, Origin};
use crate::engine::render::Rendered;
use crate::roster::Occurrence;
use crate::store::outbox::{NewDelivery, Priority};

pub(super) fn mail(p: &Professional, subject: String, text: String) -> Vec<NewDelivery> {
    let r = Rendered {
        subject,
        text,
        html: None,
    };
    let origin = Origin {
        event_id: None,
        step_id: None,
        priority: Priority::Reminder,
    };
    message::person_deliveries(p, &[&"email".to_string()], &r, origin, |_, _| None)
}

/// `samedi 20 juin 2026, 08:00–20:00`.
pub(super) fn when(set: &ConfigSet, occ: &Occurrence) -> String {
    let tz = set.daemon.timezone;
    format!(
        "{}, {}–{}",
        crate::roster::ics::date_fr(occ.date),
        occ.start.with_timezone(&tz).format("%H:%M"),
        occ.end.with_timezone(&tz).format("%H:%M")
    )
}

/// The roster's `notify` (its check's), there on `day`.
pub(super) fn notify_of<'a>(
    set: &'a ConfigSet,
    roster: &Roster,
    day: NaiveDate,
) -> Vec<&'a Professional> {
    match &roster.check {
        Some(c) => set
            .directory
            .select_on(&c.notify, &|_: &str| Vec::new(), day),
        None => Vec::new(),
    }
}

/// `{what} : garde « samedi » du samedi 20 juin 2026`.
fn subject(what: &str, occ: &Occurrence) -> String {
    format!(
        "{what} : garde « {} » du {}",
        occ.shift,
        crate::roster::ics::date_fr(occ.date)
    )
}

/// `la garde « samedi » du planning « … » (samedi 20 juin 2026, 08:00–20:00)`.
/// `{what} : « samedi » du samedi 20 juin 2026`.
fn bare(what: &str, occ: &Occurrence) -> String {
    format!(
        "{what} : « {} » du {}",
        occ.shift,
        crate::roster::ics::date_fr(occ.date)
    )
}

fn what(set: &ConfigSet, roster: &Roster, occ: &Occurrence) -> String {
    format!(
        "la garde « {} » du planning « {} » ({})",
        occ.shift,
        roster.title,
        when(set, occ)
    )
}

fn sign(set: &ConfigSet) -> String {
    format!("Message automatique de Vigie — {}.", set.daemon.name)
}

/// To a colleague who may take the shift, with their page's `link`.
pub(super) fn request(
    set: &ConfigSet,
    roster: &Roster,
    occ: &Occurrence,
    to: &Professional,
    requester: &str,
    link: &str,
) -> Vec<NewDelivery> {
    mail(
        to,
        subject("Remplacement demandé", occ),
        format!(
            "Bonjour {},\n\n{requester} cherche un remplaçant pour la garde « {} » du planning « {} » : {}.\n\nD'après les plannings, vous êtes libre à ce moment-là. Pour la prendre, ouvrez votre page de gardes et choisissez « Je prends cette garde » :\n{link}\n\nLe premier volontaire est retenu.\n\n{}\n",
            to.name,
            occ.shift,
            roster.title,
            when(set, occ),
            sign(set)
        ),
    )
}

/// When `taker` took `requester`'s shift: to the requester, and to the
/// roster's `notify` (neither of the two told twice).
pub(super) fn taken(
    set: &ConfigSet,
    roster: &Roster,
    occ: &Occurrence,
    requester_id: &str,
    taker: &Professional,
    approval: bool,
) -> Vec<NewDelivery> {
    let what = what(set, roster, occ);
    let requester_name = set
        .directory
        .get(requester_id)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| requester_id.to_string());
    let mut items = Vec::new();
    if let Some(req) = set.directory.get(requester_id) {
        let (subj, text) = if approval {
            (
                "Proposition de remplacement",
                format!(
                    "Bonjour {},\n\n{} propose de prendre {what}. Le remplacement sera effectif dès que le bureau l'aura validé ; vous serez prévenu(e). D'ici là, vous restez de garde.\n\n{}\n",
                    req.name,
                    taker.name,
                    sign(set)
                ),
            )
        } else {
            (
                "Remplacement trouvé",
                format!(
                    "Bonjour {},\n\n{} prend {what}. Vous n'êtes plus de garde ce jour-là ; les rappels et les calendriers suivent.\n\n{}\n",
                    req.name,
                    taker.name,
                    sign(set)
                ),
            )
        };
        items.extend(mail(req, subject(subj, occ), text));
    }
    for n in notify_of(set, roster, occ.date)
        .into_iter()
        .filter(|n| n.id != requester_id && n.id != taker.id)
    {
        let (subj, text) = if approval {
            (
                "Échange de garde à valider",
                format!(
                    "Bonjour {},\n\n{} propose de remplacer {requester_name} pour {what}.\n\nCe remplacement attend la validation du bureau : tableau de bord de Vigie, rubrique « Échanges de gardes ».\n\n{}\n",
                    n.name,
                    taker.name,
                    sign(set)
                ),
            )
        } else {
            (
                "Échange de garde",
                format!(
                    "Bonjour {},\n\n{} remplace {requester_name} pour {what}.\n\nLe planning, les calendriers et les rappels en tiennent compte ; la commande vigie roster export {} donne les affectations à reporter dans le fichier.\n\n{}\n",
                    n.name,
                    taker.name,
                    roster.id.value,
                    sign(set)
                ),
            )
        };
        items.extend(mail(n, bare(subj, occ), text));
    }
    items
}

/// The bureau's decision, to `to` (the requester or the taker).
pub(super) fn decided(
    set: &ConfigSet,
    roster: &Roster,
    occ: &Occurrence,
    to: &Professional,
    approve: bool,
) -> Vec<NewDelivery> {
    let verdict = if approve { "validé" } else { "refusé" };
    let more = if approve {
        "Le remplacement est effectif."
    } else {
        "La demande est de nouveau ouverte aux autres volontaires."
    };
    mail(
        to,
        bare(&format!("Échange de garde {verdict}"), occ),
        format!(
            "Bonjour {},\n\nLe bureau a {verdict} l'échange pour {}. {more}\n\n{}\n",
            to.name,
            what(set, roster, occ),
            sign(set)
        ),
    )
}

/// To `notify`: a request still without a taker 48 h before its shift
/// (`pending`: someone offered, the bureau has not decided yet).
pub(super) fn alert(
    set: &ConfigSet,
    roster: &Roster,
    occ: &Occurrence,
    to: &Professional,
    requester: &str,
    pending: bool,
) -> Vec<NewDelivery> {
    let state = if pending {
        "Un remplaçant s'est proposé, mais le bureau n'a pas encore validé l'échange (tableau de bord de Vigie, rubrique « Échanges de gardes »)."
    } else {
        "Personne ne l'a encore prise."
    };
    mail(
        to,
        bare("Garde sans remplaçant", occ),
        format!(
            "Bonjour {},\n\n{requester} cherche toujours un remplaçant pour {}, qui commence dans moins de 48 heures. {state}\n\n{}\n",
            to.name,
            what(set, roster, occ),
            sign(set)
        ),
    )
}

/// Nobody may take the shift: to `notify`, at once.
pub(super) fn nobody(
    set: &ConfigSet,
    roster: &Roster,
    occ: &Occurrence,
    to: &Professional,
    requester: &str,
) -> Vec<NewDelivery> {
    mail(
        to,
        bare("Garde sans remplaçant", occ),
        format!(
            "Bonjour {},\n\n{requester} cherche un remplaçant pour {}, mais aucun collègue n'est libre à ce moment-là d'après les plannings : personne n'a été prévenu. Il reste de garde tant que personne ne l'a prise.\n\n{}\n",
            to.name,
            what(set, roster, occ),
            sign(set)
        ),
    )
}

/// The link of `to`'s personal page, resent.
pub(super) fn link(set: &ConfigSet, to: &Professional, url: &str) -> Vec<NewDelivery> {
    mail(
        to,
        format!("Votre page de gardes — {}", set.daemon.name),
        format!(
            "Bonjour {},\n\nVoici le lien de votre page de gardes : vos prochaines gardes, la recherche d'un remplaçant, les gardes à reprendre et votre calendrier.\n{url}\n\nCe lien vous est personnel : ne le transférez pas.\n\n{}\n",
            to.name,
            sign(set)
        ),
    )
}
