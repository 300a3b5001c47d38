//! Calendars and time: public holidays, the wall clock.

pub mod clock;
pub mod cron;
pub mod holidays;
pub mod oncall;
pub mod quiet;
pub mod reminders;
