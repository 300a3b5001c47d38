//! Rendering messages: the template context of SPEC §7, the built-in French
//! templates, and the exercise marking that no template can remove.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use minijinja::{Environment, Value};
use serde_json::json;

use crate::config::templates::{self, TemplateDef};
use crate::config::{ConfigSet, Plan, Professional};
use crate::store::events::EventRow;

/// A template's three parts, as source text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TemplateSource {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The SMS part (SPEC §14); SMS channels use `text` when absent.
    pub sms: Option<String>,
}

impl From<&TemplateDef> for TemplateSource {
    fn from(t: &TemplateDef) -> Self {
        TemplateSource {
            subject: t.subject.source.clone(),
            text: t.text.source.clone(),
            html: t.html.as_ref().map(|h| h.source.clone()),
            sms: t.sms.as_ref().map(|h| h.source.clone()),
        }
    }
}

/// The built-in templates, used when a plan step names none.
pub enum Builtin {
    /// Broadcasts: information.
    Information,
    /// Escalation tiers: a request to answer.
    Mobilisation,
    /// The notice sent to everyone notified when an event is resolved.
    Fin,
    /// The alert to the plan's owners when every tier timed out.
    SansReponse,
    /// "Relancer les non-répondants": the message again to those who have
    /// not answered.
    Relance,
}

impl Builtin {
    pub fn source(&self) -> TemplateSource {
        let (subject, text) = match self {
            Builtin::Information => (
                "{{ event.title }}{% if event.level %} — niveau {{ event.level }}{% endif %}",
                "Bonjour {{ recipient.name }},\n\n\
                 {{ cpts }} vous informe : {{ event.title }}{% if event.level %} (niveau {{ event.level }}){% endif %}.\n\
                 {% if event.note %}\n{{ event.note }}\n{% endif %}\n\
                 Pour accuser réception : {{ response_url }}\n\n\
                 Message envoyé par Vigie au titre du {{ plan.title }} (version {{ plan.version }}).\n",
            ),
            Builtin::Mobilisation => (
                "[Mobilisation] {{ event.title }}{% if event.level %} — niveau {{ event.level }}{% endif %}",
                "Bonjour {{ recipient.name }},\n\n\
                 {{ cpts }} active son plan de gestion de crise : {{ event.title }}{% if event.level %} (niveau {{ event.level }}){% endif %}.\n\
                 {% if event.note %}\n{{ event.note }}\n{% endif %}\n\
                 Merci d'indiquer votre réponse dès que possible en suivant ce lien personnel :\n\
                 {{ response_url }}\n\n\
                 Sans réponse suffisante, d'autres membres de la CPTS seront sollicités.\n",
            ),
            Builtin::Fin => (
                "Fin d'alerte : {{ event.title }}",
                "Bonjour {{ recipient.name }},\n\n\
                 {{ cpts }} lève l'alerte « {{ event.title }} ».\n\
                 {% if event.note %}\n{{ event.note }}\n{% endif %}\n\
                 Merci de votre mobilisation. Aucune autre action n'est attendue de votre part.\n",
            ),
            Builtin::SansReponse => (
                "[Sans réponse] {{ event.title }} : escalade épuisée",
                "Bonjour {{ recipient.name }},\n\n\
                 L'alerte « {{ event.title }} »{% if event.level %} (niveau {{ event.level }}){% endif %} \
                 n'a pas obtenu le nombre de réponses attendu : tous les niveaux d'escalade ont été \
                 sollicités sans succès.\n\n\
                 Merci de reprendre la main : contactez directement les professionnels concernés \
                 et suivez l'événement sur le tableau de bord de Vigie.\n\n\
                 Votre lien de réponse : {{ response_url }}\n",
            ),
            Builtin::Relance => (
                "[Relance] {{ event.title }}{% if event.level %} — niveau {{ event.level }}{% endif %}",
                "Bonjour {{ recipient.name }},\n\n\
                 La coordination ({{ cpts }}) n'a pas encore reçu votre réponse à l'alerte « {{ event.title }} »\
                 {% if event.level %} (niveau {{ event.level }}){% endif %}.\n\
                 {% if event.note %}\n{{ event.note }}\n{% endif %}\n\
                 Merci d'indiquer votre réponse (et, si vous venez, dans combien de minutes) \
                 en suivant ce lien personnel :\n\
                 {{ response_url }}\n",
            ),
        };
        TemplateSource {
            subject: subject.to_string(),
            text: text.to_string(),
            html: None,
            sms: None,
        }
    }
}

/// The first line of every exercise message, whatever the template.
pub const EXERCISE_LINE: &str = "EXERCICE — Ceci est un exercice du plan de gestion de crise : aucune situation réelle n'est en cours.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Distinct template sources kept compiled by [`Compiled::cached`].
const CACHED: usize = 256;

/// A template compiled once, rendered once per recipient.
pub struct Compiled {
    env: Environment<'static>,
    has_html: bool,
    has_sms: bool,
}

impl Compiled {
    pub fn new(src: &TemplateSource) -> Result<Compiled, String> {
        let mut env = templates::environment();
        env.add_template_owned("subject.txt", src.subject.clone())
            .map_err(|e| e.to_string())?;
        env.add_template_owned("text.txt", src.text.clone())
            .map_err(|e| e.to_string())?;
        if let Some(h) = &src.html {
            env.add_template_owned("body.html", h.clone())
                .map_err(|e| e.to_string())?;
        }
        if let Some(t) = &src.sms {
            env.add_template_owned("sms.txt", t.clone())
                .map_err(|e| e.to_string())?;
        }
        Ok(Compiled {
            env,
            has_html: src.html.is_some(),
            has_sms: src.sms.is_some(),
        })
    }

    /// [`Compiled::new`], once per distinct source: the same few templates
    /// serve every declaration, escalation tier and reminder (compiling
    /// one took about 25 µs at every step, on the database thread). Kept
    /// until more than [`CACHED`] distinct sources were seen (reloads),
    /// then started over.
    pub fn cached(src: &TemplateSource) -> Result<Arc<Compiled>, String> {
        static CACHE: LazyLock<Mutex<HashMap<TemplateSource, Arc<Compiled>>>> =
            LazyLock::new(Default::default);
        let cache = || CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache().get(src) {
            return Ok(c.clone());
        }
        let compiled = Arc::new(Compiled::new(src)?);
        let mut all = cache();
        if all.len() >= CACHED {
            all.clear();
        }
        all.insert(src.clone(), compiled.clone());
        Ok(compiled)
    }

    pub fn render(&self, ctx: &Value, exercise: bool) -> Result<Rendered, String> {
        let get = |name: &str| -> Result<String, String> {
            self.env
                .get_template(name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("{name}: {e}"))
        };
        let subject = get("subject.txt")?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let text = get("text.txt")?;
        let html = if self.has_html {
            Some(get("body.html")?)
        } else {
            None
        };
        Ok(mark_exercise(
            Rendered {
                subject,
                text,
                html,
            },
            exercise,
        ))
    }
}

impl Compiled {
    /// The body of an SMS: the template's `sms` part, else its `text`,
    /// without the long exercise line of an e-mail: an exercise SMS starts
    /// with [`EXERCISE_SMS`] instead (SPEC §7, §14).
    pub fn render_sms(&self, ctx: &Value, exercise: bool) -> Result<String, String> {
        let name = if self.has_sms { "sms.txt" } else { "text.txt" };
        let body = self
            .env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(if exercise {
            format!("{EXERCISE_SMS}\n{body}")
        } else {
            body
        })
    }
}

/// The first line of every exercise SMS (GSM 7-bit: it costs no more).
pub const EXERCISE_SMS: &str = "EXERCICE : ceci est un exercice, aucune situation réelle.";

/// Prefixes the subject with `[EXERCICE]` and the body with
/// [`EXERCISE_LINE`] (SPEC §7).
pub fn mark_exercise(mut r: Rendered, exercise: bool) -> Rendered {
    if !exercise {
        return r;
    }
    if !r.subject.starts_with("[EXERCICE]") {
        r.subject = format!("[EXERCICE] {}", r.subject);
    }
    r.text = format!("{EXERCISE_LINE}\n\n{}", r.text);
    if let Some(h) = r.html.take() {
        r.html = Some(format!(
            "<p><strong>{}</strong></p>\n{h}",
            html_escape(EXERCISE_LINE)
        ));
    }
    r
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The parts of the context common to every recipient of an event.
pub fn event_json(set: &ConfigSet, plan: &Plan, ev: &EventRow, note: &str) -> serde_json::Value {
    let tz = set.daemon.timezone;
    // The scenario's instructions for the event's level (SPEC §12), as
    // plain text: a message is read as it is written, so the Markdown bold
    // marks go (its paragraphs and `- ` lists read well as they are); the
    // response page shows them formatted.
    let instructions = plan
        .scenario(&ev.scenario)
        .and_then(|s| s.instructions.get(ev.level.as_deref()))
        .unwrap_or_default()
        .replace("**", "");
    json!({
        "cpts": set.daemon.name,
        "instructions": instructions,
        "plan": {"id": plan.id.value, "version": plan.version.value.0, "title": plan.title},
        "event": {
            "id": ev.id.to_string(),
            "title": ev.title,
            "scenario": ev.scenario,
            "level": ev.level.clone().unwrap_or_default(),
            "note": note,
            "exercise": ev.exercise,
            "declared_at": ev.declared_at.with_timezone(&tz).format("%d/%m/%Y à %H:%M").to_string(),
        },
    })
}

/// The full context for one recipient.
pub fn context(
    base: &serde_json::Value,
    recipient: serde_json::Value,
    response_url: &str,
) -> Value {
    context_on(
        &templates::json_value(base.clone()),
        recipient,
        response_url,
    )
}

/// [`context`] on the common part already converted (once per step, not
/// once per recipient).
pub fn context_on(base: &Value, recipient: serde_json::Value, response_url: &str) -> Value {
    minijinja::context! {
        recipient => templates::json_value(recipient),
        response_url => response_url,
        ..base.clone()
    }
}

pub fn recipient_json(p: &Professional) -> serde_json::Value {
    json!({"name": p.name, "profession": p.profession, "commune": p.commune})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exercise_marks_subject_and_first_line_whatever_the_template() {
        let src = TemplateSource {
            subject: "Alerte {{ event.title }}".into(),
            text: "Bonjour".into(),
            html: Some("<p>Bonjour</p>".into()),
            sms: None,
        };
        let c = Compiled::new(&src).unwrap();
        let ctx = templates::json_value(json!({"event": {"title": "Canicule"}}));
        let r = c.render(&ctx, true).unwrap();
        assert_eq!(r.subject, "[EXERCICE] Alerte Canicule");
        assert!(r.text.starts_with(EXERCISE_LINE));
        assert!(r.html.unwrap().starts_with("<p><strong>EXERCICE"));
        let r = c.render(&ctx, false).unwrap();
        assert_eq!(r.subject, "Alerte Canicule");
        assert_eq!(r.text, "Bonjour");
    }

    #[test]
    fn builtin_templates_compile_and_pass_the_event_check() {
        for b in [
            Builtin::Information,
            Builtin::Mobilisation,
            Builtin::Relance,
            Builtin::Fin,
            Builtin::SansReponse,
        ] {
            let src = b.source();
            let c = Compiled::new(&src).unwrap();
            let r = c
                .render(&templates::TemplateKind::Event.sample_context(), false)
                .unwrap();
            assert!(!r.subject.is_empty());
            assert!(r.text.contains("Claire Martin"), "{}", r.text);
        }
    }
}
