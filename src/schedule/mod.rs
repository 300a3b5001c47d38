//! Calendars and time: public holidays, the wall clock.

pub mod clock;
pub mod holidays;
pub mod oncall;
