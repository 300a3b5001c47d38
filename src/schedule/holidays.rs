//! French public holidays, with the two extra days of Alsace-Moselle
//! (Vendredi saint, 26 décembre). Easter is computed (anonymous Gregorian
//! algorithm), so any year works without a table.

use chrono::{Datelike, Duration, NaiveDate};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HolidayCalendar {
    #[default]
    France,
    AlsaceMoselle,
}

impl HolidayCalendar {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "france" => Ok(HolidayCalendar::France),
            "alsace-moselle" => Ok(HolidayCalendar::AlsaceMoselle),
            _ => Err(format!(
                "unknown holiday calendar \"{s}\" (use \"france\" or \"alsace-moselle\")"
            )),
        }
    }

    /// The public holidays of a year, in date order, with their French names.
    pub fn holidays(self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let d = |m, day| NaiveDate::from_ymd_opt(year, m, day).expect("fixed holiday date");
        let easter = easter_sunday(year);
        let mut days = vec![
            (d(1, 1), "Jour de l'an"),
            (easter + Duration::days(1), "Lundi de Pâques"),
            (d(5, 1), "Fête du Travail"),
            (d(5, 8), "Victoire 1945"),
            (easter + Duration::days(39), "Ascension"),
            (easter + Duration::days(50), "Lundi de Pentecôte"),
            (d(7, 14), "Fête nationale"),
            (d(8, 15), "Assomption"),
            (d(11, 1), "Toussaint"),
            (d(11, 11), "Armistice 1918"),
            (d(12, 25), "Noël"),
        ];
        if self == HolidayCalendar::AlsaceMoselle {
            days.push((easter - Duration::days(2), "Vendredi saint"));
            days.push((d(12, 26), "Saint-Étienne"));
        }
        days.sort();
        days
    }

    /// The name of the holiday on this date, if it is one.
    pub fn holiday(self, date: NaiveDate) -> Option<&'static str> {
        self.holidays(date.year())
            .into_iter()
            .find(|(d, _)| *d == date)
            .map(|(_, name)| name)
    }
}

/// Easter Sunday of a Gregorian year (Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a valid date")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn easter_matches_the_published_dates() {
        assert_eq!(easter_sunday(2024), date(2024, 3, 31));
        assert_eq!(easter_sunday(2025), date(2025, 4, 20));
        assert_eq!(easter_sunday(2026), date(2026, 4, 5));
        assert_eq!(easter_sunday(2027), date(2027, 3, 28));
        assert_eq!(easter_sunday(2038), date(2038, 4, 25));
    }

    #[test]
    fn alsace_moselle_adds_good_friday_and_saint_stephen() {
        let fr = HolidayCalendar::France;
        let am = HolidayCalendar::AlsaceMoselle;
        assert_eq!(fr.holidays(2026).len(), 11);
        assert_eq!(am.holidays(2026).len(), 13);
        assert_eq!(am.holiday(date(2026, 4, 3)), Some("Vendredi saint"));
        assert_eq!(fr.holiday(date(2026, 4, 3)), None);
        assert_eq!(am.holiday(date(2026, 12, 26)), Some("Saint-Étienne"));
        assert_eq!(fr.holiday(date(2026, 12, 26)), None);
        assert_eq!(fr.holiday(date(2026, 5, 14)), Some("Ascension"));
        assert_eq!(fr.holiday(date(2026, 5, 25)), Some("Lundi de Pentecôte"));
    }
}
