//! Typed domain values, each with a `parse` constructor that says what is
//! wrong in plain words. Parsing here knows nothing of files or positions:
//! the config loaders attach the location to the error.

mod contact;
pub mod labels;
pub mod meteoalarm;
mod period;
mod quiet;
mod schedule;
mod secret;
mod values;
pub mod vigilance;

pub use contact::{EmailAddress, Phone, Rpps, RppsCheck};
pub use period::{Period, Season};
pub use quiet::QuietHours;
pub use schedule::CronSchedule;
pub use secret::constant_time_eq;
pub use values::{DurationValue, TimeOfDay, Version, fold, fold_eq, parse_slug, parse_weekday};
