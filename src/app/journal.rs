//! The main courante, bulletins, lessons learned and the RETEX report
//! (SPEC §12), on behalf of an operator or API token.

use super::App;
use crate::engine::report::{self, Report};
use crate::engine::{EngineError, journal};
use crate::store::journal::{Bulletin, Entry, Lesson};

impl App {
    /// Adds `actor`'s note (or correction of entry `corrects`) to the main
    /// courante of event `id`.
    pub async fn log_note(
        &self,
        actor: &str,
        id: i64,
        text: String,
        corrects: Option<i64>,
    ) -> Result<Entry, EngineError> {
        journal::note(&self.store, self.ctx(Some(actor)), id, text, corrects).await
    }

    /// The main courante of event `id`, oldest first.
    pub async fn event_log(&self, id: i64) -> Result<Vec<Entry>, EngineError> {
        journal::log(&self.store, id).await
    }

    /// Publishes a bulletin on the public page of event `id`.
    pub async fn publish_bulletin(
        &self,
        actor: &str,
        id: i64,
        text: String,
    ) -> Result<Bulletin, EngineError> {
        journal::bulletin(&self.store, self.ctx(Some(actor)), id, text).await
    }

    /// Adds a lesson learned to event `id`.
    pub async fn add_lesson(
        &self,
        actor: &str,
        id: i64,
        text: String,
    ) -> Result<Lesson, EngineError> {
        journal::lesson(&self.store, self.ctx(Some(actor)), id, text).await
    }

    /// The RETEX report of event `id`, as of now.
    pub async fn report(&self, id: i64) -> Result<Report, EngineError> {
        report::report(&self.store, self.config(), id, self.clock.now()).await
    }
}
