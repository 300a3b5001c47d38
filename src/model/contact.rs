//! Contacts and identifiers of professionals: e-mail, phone (E.164), RPPS.

use std::fmt;

/// An e-mail address `local@domain`, checked for the mistakes people make
/// when typing a directory (spaces, missing `@`, missing domain dot).
/// Also accepts the display form `Name <local@domain>` through
/// [`EmailAddress::parse_mailbox`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid e-mail address \"{s}\": {why}");
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains a space"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("no '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("nothing before '@'"));
        }
        if local.contains('@') || local.contains(['<', '>', ',', ';', '"', '(', ')']) {
            return Err(bad("forbidden character before '@'"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(bad("misplaced '.' before '@'"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(bad("the domain has no '.'"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return Err(bad("invalid domain"));
            }
        }
        Ok(EmailAddress(s.to_string()))
    }

    /// `Vigie CPTS <vigie@example.org>` or a bare address.
    pub fn parse_mailbox(s: &str) -> Result<(Option<String>, Self), String> {
        let s = s.trim();
        match (s.rfind('<'), s.ends_with('>')) {
            (Some(i), true) => {
                let name = s[..i].trim().trim_matches('"').trim();
                let addr = EmailAddress::parse(&s[i + 1..s.len() - 1])?;
                Ok(((!name.is_empty()).then(|| name.to_string()), addr))
            }
            _ => Ok((None, EmailAddress::parse(s)?)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164: `+` then 8 to 15 digits, no spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok = (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            // French numbers are +33 then 9 digits, the first not 0.
            if let Some(national) = digits.strip_prefix("33")
                && (national.len() != 9 || national.starts_with('0'))
            {
                {
                    return Err(format!(
                        "invalid phone number \"{s}\": a French number is +33 then 9 digits \
                         without the leading 0 (e.g. +33612345678)"
                    ));
                }
            }
            Ok(Phone(s.to_string()))
        } else {
            Err(format!(
                "invalid phone number \"{s}\": write it in E.164 form, e.g. +33612345678"
            ))
        }
    }

    /// A number as the directory writes it (E.164), from what people and
    /// providers write: `+33612345678`, `33612345678`, `0033612345678`,
    /// `06 12 34 56 78` (a French national number). What answers by SMS
    /// and `vigie test-send` read; `None` when it cannot be a number.
    pub fn normalise(raw: &str) -> Option<String> {
        let plus = raw.trim_start().starts_with('+');
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let e164 = if plus {
            format!("+{digits}")
        } else if let Some(rest) = digits.strip_prefix("00") {
            format!("+{rest}")
        } else if digits.len() == 10 && digits.starts_with('0') {
            format!("+33{}", &digits[1..])
        } else {
            format!("+{digits}")
        };
        (9..=16).contains(&e164.len()).then_some(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An RPPS number: 11 digits. The last digit is a Luhn check digit in
/// practice; a failure is only a warning (the register has exceptions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rpps(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RppsCheck {
    Valid,
    LuhnMismatch,
}

impl Rpps {
    pub fn parse(s: &str) -> Result<(Self, RppsCheck), String> {
        if s.len() != 11 || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("invalid RPPS \"{s}\": it must be 11 digits"));
        }
        let check = if luhn_valid(s) {
            RppsCheck::Valid
        } else {
            RppsCheck::LuhnMismatch
        };
        Ok((Rpps(s.to_string()), check))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Luhn checksum over a string of ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_numbers_become_e164() {
        for raw in [
            "+33612345678",
            "33612345678",
            "0033612345678",
            "06 12 34 56 78",
            "06.12.34.56.78",
        ] {
            assert_eq!(
                Phone::normalise(raw).as_deref(),
                Some("+33612345678"),
                "{raw}"
            );
        }
        assert_eq!(
            Phone::normalise("+41791234567").as_deref(),
            Some("+41791234567")
        );
        assert_eq!(Phone::normalise("123"), None);
    }

    #[test]
    fn emails_catch_typing_mistakes() {
        assert!(EmailAddress::parse("claire.martin@example.org").is_ok());
        assert!(EmailAddress::parse("claire.martin@example").is_err());
        assert!(EmailAddress::parse("claire martin@example.org").is_err());
        assert!(EmailAddress::parse("claire.martin.example.org").is_err());
        assert!(EmailAddress::parse("@example.org").is_err());
        assert!(EmailAddress::parse("a@b..org").is_err());
        let (name, addr) =
            EmailAddress::parse_mailbox("Vigie CPTS Thur Doller <vigie@example.org>").unwrap();
        assert_eq!(name.as_deref(), Some("Vigie CPTS Thur Doller"));
        assert_eq!(addr.as_str(), "vigie@example.org");
    }

    #[test]
    fn phones_are_e164() {
        assert!(Phone::parse("+33612345678").is_ok());
        assert!(Phone::parse("0612345678").is_err());
        assert!(Phone::parse("+33 6 12 34 56 78").is_err());
        assert!(Phone::parse("+330612345678").is_err());
        assert!(Phone::parse("+41791234567").is_ok());
    }

    #[test]
    fn rpps_is_eleven_digits_with_luhn_warning() {
        assert_eq!(Rpps::parse("10005173140").unwrap().1, RppsCheck::Valid);
        assert_eq!(
            Rpps::parse("10005173141").unwrap().1,
            RppsCheck::LuhnMismatch
        );
        assert!(Rpps::parse("1000517314").is_err());
        assert!(Rpps::parse("1000517314a").is_err());
    }
}
