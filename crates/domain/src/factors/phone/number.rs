//! Phone numbers for SMS and voice codes (`security.md` §2.8).
//!
//! A number is kept, compared and stored only in E.164 form
//! (`+14155550123`): one spelling per line, so a code bound to a number and
//! the per-destination send caps cannot be dodged by writing the same number
//! another way, and a stored number reads back with [`Phone::parse_e164`].
//! Parsing refuses unassigned numbers (not valid for their region). What a
//! number may be used for is a separate check, [`Phone::check_use`]: SMS
//! needs a type that can be mobile, voice accepts fixed lines too, and
//! premium-rate, shared-cost, toll-free, personal, UAN and voicemail numbers
//! serve neither, since they cannot take a code and are what SMS pumpers
//! (toll fraud) send to. Numbers are personal data, so `Debug` prints only the
//! masked form and there is no `Display`.

use std::fmt;
use std::hash::{Hash, Hasher};

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use phonenumber::{PhoneNumber, Type, country};

/// Longer input is refused before the parser sees it: the longest E.164
/// number with generous punctuation fits, and the parser's cost and attack
/// surface stay bounded.
const MAX_INPUT: usize = 32;
/// E.164 allows at most 15 digits after the `+`.
const MAX_DIGITS: usize = 15;
/// Digits left visible by [`Phone::masked`]: enough for a user to tell their
/// numbers apart, too few to be worth harvesting.
const VISIBLE: usize = 2;

#[derive(Clone)]
pub struct Phone {
    e164: String,
    calling_code: u16,
    /// `None` for non-geographic codes such as +882.
    region: Option<&'static str>,
    kind: Type,
}

/// How a code is to reach the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Sms,
    Voice,
}

/// Messages are fit for an API error: they never echo the number.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("not a valid phone number")]
    Invalid,
    #[error("unknown country {0:?}: use a two-letter code such as US")]
    UnknownCountry(String),
    #[error("this number cannot receive text messages")]
    NotForSms,
    #[error("this number cannot receive calls")]
    NotForVoice,
    #[error("phone numbers from {0} are not accepted")]
    CountryNotAllowed(String),
}

impl Phone {
    /// An international number, which must start with `+`; spaces, dashes,
    /// dots and parentheses are ignored.
    pub fn parse_e164(input: &str) -> Result<Self, PhoneError> {
        let s = clean(input)?;
        if !s.starts_with('+') {
            return Err(PhoneError::Invalid);
        }
        Self::from_number(&phonenumber::parse(None, s).map_err(|_| PhoneError::Invalid)?)
    }

    /// A number as the user typed it, read in the dialling plan of `country`
    /// (ISO 3166 alpha-2, any case). A number typed with `+` keeps its own
    /// calling code, so the result's region may differ from `country`; the
    /// allow-list is applied to the result.
    pub fn parse_national(country: &str, number: &str) -> Result<Self, PhoneError> {
        let id = region_id(country)?;
        let s = clean(number)?;
        let phone = Self::from_number(&phonenumber::parse(Some(id), s).map_err(|_| PhoneError::Invalid)?)?;
        // A number is stored as its E.164 form, so it must read back from
        // it (a national reading can yield a form the E.164 reading refuses,
        // e.g. "+7833000000 0" read in AC).
        match Self::parse_e164(&phone.e164) {
            Ok(again) if again == phone => Ok(phone),
            _ => Err(PhoneError::Invalid),
        }
    }

    fn from_number(number: &PhoneNumber) -> Result<Self, PhoneError> {
        // A code cannot reach an extension, and dropping it would store a
        // number other than the one the user gave. (The character filter in
        // `clean` already keeps extensions out; this does not rely on it.)
        if number.extension().is_some() {
            return Err(PhoneError::Invalid);
        }
        let calling_code = number.code().value();
        let national = number.national().to_string();
        let (meta, kind) = classify(calling_code, &national).ok_or(PhoneError::Invalid)?;
        if kind == Type::Unknown || !phonenumber::is_valid(number) {
            return Err(PhoneError::Invalid);
        }
        let e164 = format!("+{calling_code}{national}");
        if e164.len() > MAX_DIGITS + 1 {
            return Err(PhoneError::Invalid);
        }
        let region = Some(meta.id()).filter(|id| *id != "001");
        Ok(Self { e164, calling_code, region, kind })
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// ISO 3166 alpha-2 code such as "US"; `None` for non-geographic numbers.
    pub fn region(&self) -> Option<&str> {
        self.region
    }

    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }

    /// The calling code and the last two digits, e.g. `+1 ••• ••• ••23`.
    ///
    /// The national number is written as bullets plus its last two digits,
    /// grouped in threes from the left; a lone trailing character joins the
    /// group before it, so +1 and most 10-digit numbers read `••• ••• ••23`,
    /// 9 digits `••• ••• •78` and 11 digits `••• ••• ••• 89`.
    pub fn masked(&self) -> String {
        let national = &self.e164[1 + digit_count(self.calling_code)..];
        let len = national.len();
        let hidden = len.saturating_sub(VISIBLE);
        let cells = std::iter::repeat_n('•', hidden).chain(national[hidden..].chars());
        let mut out = format!("+{} ", self.calling_code);
        for (i, c) in cells.enumerate() {
            if i > 0 && i % 3 == 0 && len - i >= 2 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }

    pub fn check_use(&self, how: Use) -> Result<(), PhoneError> {
        match (how, self.kind) {
            // North American numbers are FixedLineOrMobile: the number alone
            // cannot tell, and refusing them would refuse every US phone.
            (_, Type::Mobile | Type::FixedLineOrMobile) | (Use::Voice, Type::FixedLine | Type::Voip) => Ok(()),
            (Use::Sms, _) => Err(PhoneError::NotForSms),
            (Use::Voice, _) => Err(PhoneError::NotForVoice),
        }
    }

    /// `countries` holds region codes (any case); `*` or an empty list allows
    /// all. Non-geographic numbers pass only when all are allowed.
    pub fn allowed(&self, countries: &[String]) -> Result<(), PhoneError> {
        if countries.is_empty() || countries.iter().any(|c| c.trim() == "*") {
            return Ok(());
        }
        match self.region {
            Some(region) if countries.iter().any(|c| c.trim().eq_ignore_ascii_case(region)) => Ok(()),
            Some(region) => Err(PhoneError::CountryNotAllowed(region.to_owned())),
            None => Err(PhoneError::CountryNotAllowed(format!("+{}", self.calling_code))),
        }
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

// The other fields are derived from the E.164 string.
impl PartialEq for Phone {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for Phone {}

impl Hash for Phone {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

/// Only ASCII digits and the punctuation people type reach the parser: it
/// also understands letters (vanity numbers), extensions and RFC 3966
/// `tel:` URIs, whose parsing has panicked on crafted input before
/// (GHSA-whhr-7f2w-qqj2, GHSA-mjw4-jj88-v687), and none of which we want.
fn clean(input: &str) -> Result<&str, PhoneError> {
    if input.len() > MAX_INPUT {
        return Err(PhoneError::Invalid);
    }
    let s = input.trim();
    let body = s.strip_prefix('+').unwrap_or(s);
    if !body.bytes().any(|b| b.is_ascii_digit()) || !body.bytes().all(|b| b.is_ascii_digit() || b" -.()".contains(&b)) {
        return Err(PhoneError::Invalid);
    }
    Ok(s)
}

fn region_id(country: &str) -> Result<country::Id, PhoneError> {
    let code = country.trim().to_ascii_uppercase();
    if code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && DATABASE.by_id(&code).is_some()
        && let Ok(id) = code.parse()
    {
        return Ok(id);
    }
    // The message goes back to the client and into logs: echo only a short,
    // inert part of what was sent.
    Err(PhoneError::UnknownCountry(code.chars().filter(char::is_ascii_alphanumeric).take(8).collect()))
}

/// The region's metadata and the number's type, following libphonenumber.
/// The crate's own `number_type` and region lookup drop the national
/// number's leading zeros, which turns Italian landlines and Ivorian mobiles
/// (+225 07…) into `Unknown`; here the full national number is used.
fn classify(code: u16, national: &str) -> Option<(&'static Metadata, Type)> {
    let db = &*DATABASE;
    let regions = db.region(&code)?;
    let meta = match regions[..] {
        ["001"] => db.by_code(&code)?.into_iter().next()?,
        [only] => db.by_id(only)?,
        _ => regions.iter().filter_map(|r| db.by_id(*r)).find(|m| match m.leading_digits() {
            Some(lead) => lead.find(national).is_some_and(|found| found.start() == 0),
            None => kind_in(m, national) != Type::Unknown,
        })?,
    };
    Some((meta, kind_in(meta, national)))
}

fn kind_in(meta: &Metadata, national: &str) -> Type {
    let d = meta.descriptors();
    let matches = |desc: Option<&Descriptor>| desc.is_some_and(|x| x.is_match(national));
    if !d.general().is_match(national) {
        return Type::Unknown;
    }
    // libphonenumber's order: the costly and special kinds win over the
    // fixed and mobile ranges they may overlap.
    let special = [
        Type::PremiumRate,
        Type::TollFree,
        Type::SharedCost,
        Type::Voip,
        Type::PersonalNumber,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ];
    if let Some(kind) = special.into_iter().find(|k| matches(d.get(*k))) {
        return kind;
    }
    let same_pattern =
        d.fixed_line().map(|x| x.national_number().as_str()) == d.mobile().map(|x| x.national_number().as_str());
    match (matches(d.fixed_line()), matches(d.mobile())) {
        (true, true) => Type::FixedLineOrMobile,
        (true, false) if same_pattern => Type::FixedLineOrMobile,
        (true, false) => Type::FixedLine,
        (false, true) => Type::Mobile,
        (false, false) => Type::Unknown,
    }
}

fn digit_count(mut n: u16) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn e164(s: &str) -> Phone {
        Phone::parse_e164(s).expect(s)
    }

    #[test]
    fn e164_with_punctuation() {
        for s in ["+14155550123", "+1 (415) 555-0123", "+1.415.555.0123", "  +1 415 555 0123  "] {
            assert_eq!(e164(s).e164(), "+14155550123", "{s}");
        }
        let us = e164("+1 415 555 0123");
        assert_eq!((us.region(), us.calling_code()), (Some("US"), 1));
        assert_eq!(Phone::parse_e164("14155550123"), Err(PhoneError::Invalid), "needs +");
    }

    #[test]
    fn national_numbers() {
        let cases = [
            ("US", "(415) 555-0123", "+14155550123", "US"),
            ("us", "415.555.0123", "+14155550123", "US"),
            ("GB", "07400 123456", "+447400123456", "GB"),
            ("gb", "0044 7400 123456", "+447400123456", "GB"),
            ("FR", "06 12 34 56 78", "+33612345678", "FR"),
            ("DE", "0151 23456789", "+4915123456789", "DE"),
            // A number typed with + keeps its own calling code.
            ("GB", "+33 6 12 34 56 78", "+33612345678", "FR"),
        ];
        for (country, number, want, region) in cases {
            let phone = Phone::parse_national(country, number).expect(number);
            assert_eq!((phone.e164(), phone.region()), (want, Some(region)), "{country} {number}");
            assert_eq!(phone.check_use(Use::Sms), Ok(()), "{country} {number}");
            assert_eq!(phone, e164(want));
        }
        for bad in ["XX", "USA", "", "*", "1"] {
            assert!(matches!(Phone::parse_national(bad, "4155550123"), Err(PhoneError::UnknownCountry(_))), "{bad}");
        }
    }

    #[test]
    fn masked_shows_code_and_last_two() {
        assert_eq!(e164("+14155550123").masked(), "+1 ••• ••• ••23");
        assert_eq!(e164("+447400123456").masked(), "+44 ••• ••• ••56");
        assert_eq!(e164("+33612345678").masked(), "+33 ••• ••• •78");
        assert_eq!(e164("+4915123456789").masked(), "+49 ••• ••• ••• 89");
        let debug = format!("{:?}", e164("+14155550123"));
        assert_eq!(debug, "Phone(+1 ••• ••• ••23)");
    }

    #[test]
    fn invalid_input() {
        let huge = format!("+{}", "1".repeat(1 << 20));
        let cases = [
            "",
            "+",
            " + ",
            "()",
            "abc",
            "+1415555012a",
            "+1 800 FLOWERS",
            "+1 415",
            "+12",
            "++14155550123",
            "+1 415 555 0123+",
            "tel:+14155550123",
            "+1 415 555 0123 ext. 12",
            "+1 415 555 0123;ext=12",
            "+1 415 555 0123 0000 0000 0000 000",
            "+999 123 456 789",
            // Ofcom's drama range: the obvious fixture, but not a valid number.
            "+44 7700 900123",
            huge.as_str(),
        ];
        for s in cases {
            assert_eq!(Phone::parse_e164(s), Err(PhoneError::Invalid), "{s:.40}");
        }
        assert_eq!(Phone::parse_national("US", &huge), Err(PhoneError::Invalid));
        assert_eq!(Phone::parse_national("US", "555 0123"), Err(PhoneError::Invalid));
    }

    #[test]
    fn costly_numbers_serve_neither_use() {
        for s in ["+44 909 879 0000", "+1 900 234 5678", "+1 800 234 5678"] {
            let phone = e164(s);
            assert_eq!(phone.check_use(Use::Sms), Err(PhoneError::NotForSms), "{s}");
            assert_eq!(phone.check_use(Use::Voice), Err(PhoneError::NotForVoice), "{s}");
        }
    }

    #[test]
    fn fixed_lines_take_calls_not_texts() {
        for s in ["+44 20 7946 0000", "+33 1 42 68 53 00", "+39 06 1234 5678"] {
            let phone = e164(s);
            assert_eq!(phone.check_use(Use::Sms), Err(PhoneError::NotForSms), "{s}");
            assert_eq!(phone.check_use(Use::Voice), Ok(()), "{s}");
        }
    }

    #[test]
    fn leading_zero_numbers_are_classified() {
        let ivorian = e164("+225 07 01 23 45 67");
        assert_eq!((ivorian.region(), ivorian.check_use(Use::Sms)), (Some("CI"), Ok(())));
        assert_eq!(e164("+39 06 1234 5678").region(), Some("IT"));
        // Rome's 06 698 range is the Vatican's, found by its leading digits.
        assert_eq!(e164("+39 06 6981 2345").region(), Some("VA"));
    }

    #[test]
    fn country_allow_list() {
        let us = e164("+14155550123");
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(us.allowed(&[]), Ok(()));
        assert_eq!(us.allowed(&list(&["*"])), Ok(()));
        assert_eq!(us.allowed(&list(&["GB", "us"])), Ok(()));
        assert_eq!(us.allowed(&list(&["GB", "FR"])), Err(PhoneError::CountryNotAllowed("US".into())));
        let global = e164("+882 13 0000000");
        assert_eq!(global.region(), None);
        assert_eq!(global.allowed(&list(&["US"])), Err(PhoneError::CountryNotAllowed("+882".into())));
        assert_eq!(global.allowed(&list(&["*"])), Ok(()));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in any::<String>(), country in "[A-Za-z*]{0,3}") {
            let _ = Phone::parse_e164(&s);
            let _ = Phone::parse_national(&country, &s);
        }

        #[test]
        fn parsed_numbers_round_trip(
            // The second pattern makes valid numbers common, not rare.
            s in prop_oneof!["\\+?[0-9 ().-]{1,31}", "\\+(1[2-9]|44[1-9]|33[1-9]|49[1-9]|39[0-9])[0-9]{7,10}"],
            country in "[A-Z]{2}",
        ) {
            for phone in [Phone::parse_e164(&s), Phone::parse_national(&country, &s)].into_iter().flatten() {
                let e = phone.e164();
                prop_assert!(e.len() <= 16 && e[1..].bytes().all(|b| b.is_ascii_digit()), "{}", e);
                prop_assert!(phone.masked().ends_with(&e[e.len() - 2..]));
                prop_assert_eq!(&Phone::parse_e164(e), &Ok(phone.clone()));
            }
        }
    }
}
