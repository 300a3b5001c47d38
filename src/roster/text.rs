//! The check report rendered for people: the French text of
//! [`RosterReport::to_text`] (CLI), the French gap lines and mail
//! ([`RosterReport::gap_lines_fr`], [`RosterReport::mail_fr`]), and the
//! weekday names shared with the calendar export and the CSV import.

use chrono::Weekday;

use super::coverage::{GapStatus, Person, RosterReport, Slot};
use super::ics;

impl Person {
    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

impl RosterReport {
    /// For a coordinator, in French: the window, the verdict, then each
    /// shift short of people and each assignee problem, one line each.
    /// Times are in the daemon's time zone.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("Planning {} — {}\n", self.roster, self.title));
        s.push_str(&format!(
            "Du {} au {} ({}, heure de {}) : {} vérifiée{}\n",
            ics::date_fr(self.from),
            ics::date_fr(self.until),
            count(self.days as usize, "jour", "jours"),
            // "Europe/Paris" as people say it: "Paris".
            self.timezone
                .rsplit('/')
                .next()
                .unwrap_or(&self.timezone)
                .replace('_', " "),
            count(self.occurrences, "garde", "gardes"),
            if self.occurrences > 1 { "s" } else { "" },
        ));
        if let (0, Some(period)) = (self.occurrences, &self.period) {
            s.push_str(&format!(
                "HORS SAISON : le planning n'a aucune garde sur ces dates ({period}).\n"
            ));
            return s;
        }
        if self.covered {
            s.push_str(
                "COMPLET : chaque garde a assez d'inscrits et aucune inscription n'est à revoir.\n",
            );
            return s;
        }
        s.push_str(&format!(
            "INCOMPLET : {} à pourvoir, {} à revoir.\n",
            count(self.gaps.len(), "garde", "gardes"),
            count(self.problems.len(), "inscription", "inscriptions"),
        ));
        if !self.gaps.is_empty() {
            s.push_str("\nGardes à pourvoir :\n");
            for g in &self.gaps {
                let status = match g.status {
                    GapStatus::Uncovered if g.not_counted.is_empty() => {
                        format!("PERSONNE, aucun inscrit ({} requis)", g.need)
                    }
                    GapStatus::Uncovered => {
                        format!("PERSONNE, aucun inscrit valable sur {} requis", g.need)
                    }
                    GapStatus::Understaffed => format!(
                        "incomplète, {} sur {} requis : {} ; il en manque {}",
                        g.counted,
                        g.need,
                        names(&g.assignees),
                        g.missing
                    ),
                };
                s.push_str(&format!("  {} : {status}", slot_text(&g.slot)));
                if !g.not_counted.is_empty() {
                    s.push_str(&format!(" ; non comptés : {}", names(&g.not_counted)));
                }
                s.push('\n');
            }
        }
        if !self.problems.is_empty() {
            s.push_str("\nInscriptions à revoir :\n");
            for p in &self.problems {
                s.push_str(&format!("  {} : {}\n", slot_text(&p.slot), p.message));
            }
        }
        s
    }
}

/// `aucune garde`, `1 garde`, `3 gardes` (`aucun jour` for a masculine word).
fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        0 if one == "jour" => format!("aucun {one}"),
        0 => format!("aucune {one}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

fn names(people: &[Person]) -> String {
    people
        .iter()
        .map(Person::label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `vendredi 25 décembre 2026 (Noël), garde « soir » 20:00–00:00`,
/// `samedi 28 mars 2026, garde « nuit » 20:00–08:00 (le lendemain)`.
fn slot_text(s: &Slot) -> String {
    let mut t = ics::date_fr(s.date);
    if let Some(h) = &s.holiday {
        t.push_str(&format!(" ({h})"));
    }
    t.push_str(&format!(
        ", garde « {} » {}–{}",
        s.shift, s.local_start, s.local_end
    ));
    if s.ends_next_day && s.local_end != "00:00" {
        t.push_str(" (le lendemain)");
    }
    t
}

pub(crate) fn weekday_slug(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

pub(crate) fn weekday_en(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

impl RosterReport {
    /// One line per shift short of people, in French, for the dashboard
    /// and the mailed report.
    pub fn gap_lines_fr(&self) -> Vec<String> {
        self.gaps
            .iter()
            .map(|g| {
                let holiday = g
                    .slot
                    .holiday
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                let what = match g.status {
                    GapStatus::Uncovered => format!("personne ({} requis)", g.need),
                    GapStatus::Understaffed => format!("{} sur {} requis", g.counted, g.need),
                };
                format!(
                    "{}{holiday}, garde « {} » de {} à {} : {what}",
                    ics::date_fr(g.slot.date),
                    g.slot.shift,
                    g.slot.local_start,
                    g.slot.local_end
                )
            })
            .collect()
    }

    /// The scheduled check as an e-mail to the bureau: (subject, text).
    pub fn mail_fr(&self, cpts: &str) -> (String, String) {
        let period = format!(
            "du {} au {}",
            ics::date_fr(self.from),
            ics::date_fr(self.until)
        );
        if self.covered {
            return (
                format!("Planning « {} » : complet {period}", self.title),
                format!(
                    "Bonjour,\n\nToutes les gardes du planning « {} » {period} sont pourvues ({} créneaux vérifiés).\n\nMessage automatique de Vigie pour {cpts}.\n",
                    self.title, self.occurrences
                ),
            );
        }
        let mut text = format!(
            "Bonjour,\n\nLa vérification du planning « {} » {period} a trouvé des manques.\n",
            self.title
        );
        if !self.gaps.is_empty() {
            text.push_str("\nGardes non pourvues ou incomplètes :\n");
            for l in self.gap_lines_fr() {
                text.push_str(&format!("- {l}\n"));
            }
        }
        if !self.problems.is_empty() {
            text.push_str("\nInscriptions à revoir :\n");
            for p in &self.problems {
                let who = p.name.clone().unwrap_or_else(|| p.who.clone());
                text.push_str(&format!(
                    "- {}, garde « {} » : {who}, {}\n",
                    ics::date_fr(p.slot.date),
                    p.slot.shift,
                    p.kind.describe_fr()
                ));
            }
        }
        text.push_str(&format!("\nMessage automatique de Vigie pour {cpts}.\n"));
        (
            format!(
                "Planning « {} » : {} à pourvoir {period}",
                self.title,
                match self.gaps.len() {
                    0 => "des inscriptions".to_string(),
                    1 => "1 garde".to_string(),
                    n => format!("{n} gardes"),
                }
            ),
            text,
        )
    }
}
