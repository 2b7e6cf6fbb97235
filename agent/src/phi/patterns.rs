//! Regular-expression rules for formatted identifiers: contact details, numbers with check digits,
//! record numbers named by a keyword, codes by shape, dates, ages over 89, street addresses.

use readi_common::date::MONTHS;
use regex::{Captures, Regex};

use super::checks;
use super::{Candidate, PhiType};

/// Priorities for the merge: formatted or keyed identifiers beat dates, dates beat shapes, shapes beat
/// dictionary names.
pub(crate) const P_EXACT: u8 = 5;
pub(crate) const P_DATE: u8 = 4;
pub(crate) const P_SHAPE: u8 = 3;
pub(crate) const P_PLACE: u8 = 2;
pub(crate) const P_NAME: u8 = 1;

const MON: &str = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|JAN(?:UARY)?|FEB(?:RUARY)?|MAR(?:CH)?|APR(?:IL)?|MAY|JUNE?|JULY?|AUG(?:UST)?|SEP(?:T(?:EMBER)?)?|OCT(?:OBER)?|NOV(?:EMBER)?|DEC(?:EMBER)?|jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

/// What `date_word` matches besides weekdays, holidays and full month names.
const SHORT_MONTH_WORDS: [&str; 12] = [
    "Sept", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The compiled rules.
#[derive(Debug)]
pub(crate) struct Patterns {
    email: Regex,
    url: Regex,
    domain: Regex,
    ipv4: Regex,
    ipv6: Regex,
    mac: Regex,
    phone: Regex,
    phone_intl: Regex,
    phone_keyed: Regex,
    /// Pagers and extensions: 4-5 digits after "pager", "pg", "beeper", "bp#", "x".
    pager: Regex,
    ssn: Regex,
    card: Regex,
    iban: Regex,
    vin: Regex,
    dea: Regex,
    keyed: Regex,
    shape_alpha_num: Regex,
    shape_num_alpha: Regex,
    dashed_digits: Regex,
    hash_digits: Regex,
    shape_any_case: Regex,
    address_cue: Regex,
    address_sent: Regex,
    postcode_spoken: Regex,
    email_spoken: Regex,
    long_digits: Regex,
    date_month_day: Regex,
    date_day_month: Regex,
    date_month_year: Regex,
    date_numeric: Regex,
    date_iso: Regex,
    date_short: Regex,
    /// "12/2019", "in 03/2021": a month and a year in digits.
    date_month_year_numeric: Regex,
    /// Dates said in words: "the fourteenth of August, nineteen eighty nine", "january tenth two
    /// thousand nine", "August sixteen, nineteen seventy six".
    date_spoken: Regex,
    /// Ages over 89 said in words: "ninety one years of age".
    age_spoken: Regex,
    /// Weekdays, holidays and month names alone: one automaton for three rules.
    date_word: Regex,
    date_ordinal: Regex,
    age_unit: Regex,
    age_keyword: Regex,
    address: Regex,
    po_box: Regex,
    zip_state: Regex,
    zip_keyword: Regex,
    county: Regex,
}

/// Compiles a rule with ASCII-only classes and case folding: identifiers are ASCII, and Unicode `\d` or
/// `(?i)` would multiply the automaton's size for no gain. Rules that must see any character keep Unicode.
fn re(pattern: &str) -> Regex {
    let any_char = pattern.contains("[^");
    let ascii = if any_char {
        pattern.to_owned()
    } else {
        pattern.replace(r"\d", "[0-9]").replace(r"\s", r"[ \t\n\r]")
    };
    regex::RegexBuilder::new(&ascii)
        .unicode(any_char)
        .build()
        .unwrap_or_else(|e| panic!("built-in PHI pattern does not compile: {e}"))
}

/// Byte at `i`, or 0 outside the text.
fn byte(text: &str, i: usize) -> u8 {
    text.as_bytes().get(i).copied().unwrap_or(0)
}

fn byte_before(text: &str, start: usize) -> u8 {
    if start == 0 { 0 } else { byte(text, start - 1) }
}

/// Lower-cased ASCII window of up to `n` bytes before `start`, cut on a char boundary.
fn before(text: &str, start: usize, n: usize) -> String {
    let mut from = start.saturating_sub(n);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..start].to_ascii_lowercase()
}

fn after(text: &str, end: usize, n: usize) -> String {
    let mut to = (end + n).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    text[end..to].to_ascii_lowercase()
}

fn digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Units that make `500MG` or `24H` a quantity rather than a code.
fn is_unit(s: &str) -> bool {
    const UNITS: &[&str] = &[
        "mg", "mcg", "ug", "g", "kg", "ml", "cc", "l", "dl", "u", "iu", "units", "meq", "mmol",
        "mmhg", "h", "hr", "hrs", "min", "mins", "sec", "d", "x", "am", "pm", "bpm", "lb", "lbs",
        "oz", "cm", "mm", "m", "km", "ft", "in", "k", "s", "th", "st", "nd", "rd", "yo", "y", "yr",
        "yrs", "wk", "wks", "mo", "mos", "f", "c", "hz", "khz", "mhz", "kcal", "cal", "gm", "gr",
        "mgs", "mls", "ms", "pct", "ng", "pg", "mu", "mci", "gy", "cgy", "rpm",
    ];
    UNITS.iter().any(|u| s.eq_ignore_ascii_case(u))
}

/// The first run of digits in `s`, as a number (0 when none).
fn first_number(s: &str) -> u32 {
    let from = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let digits = &s[from..];
    let len = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..len].parse().unwrap_or(0)
}

fn month_number(m: &str) -> u32 {
    let l = m.get(..3).unwrap_or(m).to_ascii_lowercase();
    match l.as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => 0,
    }
}

/// Keyword -> the identifier type it names, and whether it is specific enough to need no separator.
fn keyword_type(k: &str) -> (PhiType, bool) {
    let k = k.to_ascii_lowercase();
    let strong = k.contains("number")
        || k.contains(" no")
        || k.ends_with(" id")
        || k.ends_with('#')
        || matches!(
            k.as_str(),
            "mrn"
                | "npi"
                | "dea"
                | "vin"
                | "ssn"
                | "iban"
                | "imei"
                | "udi"
                | "hicn"
                | "mbi"
                | "s/n"
                | "acct"
                | "medicare"
                | "medicaid"
                | "ss#"
                | "social security"
        );
    let t = if k.contains("social security") || k == "ssn" || k == "ss#" {
        PhiType::Ssn
    } else if k.contains("record")
        || k == "mrn"
        || k.starts_with("chart")
        || k.starts_with("hospital")
        || k.starts_with("unit")
        || k == "med rec"
    {
        PhiType::Mrn
    } else if k.contains("insur")
        || k.contains("policy")
        || k.contains("member")
        || k.contains("subscriber")
        || k.contains("plan")
        || k.contains("medicare")
        || k.contains("medicaid")
        || k.contains("beneficiary")
        || k.contains("group")
        || k == "hicn"
        || k == "mbi"
    {
        PhiType::HealthPlanId
    } else if k.contains("account")
        || k.contains("acct")
        || k.contains("card")
        || k.contains("billing")
        || k.contains("iban")
        || k.contains("routing")
    {
        PhiType::Account
    } else if k.contains("vin") || k.contains("vehicle") || k.contains("plate") {
        PhiType::VehicleId
    } else if k.contains("licen")
        || k == "lic"
        || k.starts_with("dea")
        || k == "npi"
        || k.contains("certif")
        || k == "cert"
        || k == "dl"
    {
        PhiType::License
    } else if k.contains("serial")
        || k == "s/n"
        || k.contains("device")
        || k == "udi"
        || k == "imei"
        || k.contains("implant")
        || k.contains("model")
    {
        PhiType::DeviceId
    } else if k.contains("finger")
        || k.contains("retina")
        || k.contains("iris")
        || k.contains("voice")
        || k.contains("biometric")
        || k.contains("palm")
    {
        PhiType::Biometric
    } else {
        PhiType::OtherId
    };
    (t, strong)
}

impl Patterns {
    pub(crate) fn new() -> Patterns {
        let b = r"(?-u:\b)";
        let weekday = format!(
            r"{b}(?i:mon|tues?|weds?|thu|thurs?|fri|sat|sun)\.?,?[ \t]+\d{{1,2}}[/-]\d{{1,2}}{b}|{b}(?i:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?|tues|thurs|weds){b}"
        );
        let holiday = format!(
            r"{b}(?i:christmas(?: eve| day)?|thanksgiving(?: day)?|easter(?: sunday)?|halloween|new year(?:'?s)?(?: eve| day)?|election day|independence day|memorial day|labor day|veterans day|valentine'?s day|mother'?s day|father'?s day|juneteenth){b}"
        );
        let month_alone = format!(
            r"{b}(?:(?i:january|february|march|april|may|june|july|august|september|october|november|december)|Sept|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec|SEPT|JAN|FEB|MAR|APR|JUN|JUL|AUG|SEP|OCT|NOV|DEC){b}"
        );
        Patterns {
            email: re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
            url: re(r"(?i)(?:https?://|ftp://|www\.)[^\s<>\x22'\[\]{}|]+"),
            domain: re(&format!(
                r"(?i){b}(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:com|org|net|edu|gov|mil|info|biz|io|co|us|uk|ca|de|fr|es|it|nl|au|jp|cn|ru|br|mx|ch|se|no|dk|fi|pl|be|at|ie|nz|za|health|care|clinic|app|ai|me|tv|ly|gl){b}(?:/[^\s<>\x22']*)?"
            )),
            ipv4: re(&format!(r"{b}(?:\d{{1,3}}\.){{3}}\d{{1,3}}{b}")),
            ipv6: re(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:%[0-9a-z]+)?"),
            mac: re(&format!(
                r"(?i){b}(?:[0-9a-f]{{2}}[:-]){{5}}[0-9a-f]{{2}}{b}"
            )),
            phone: re(
                r"(?i)(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?",
            ),
            phone_intl: re(
                r"(?:\+|00)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}|\(0\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,3}|0\d{2,4}[ .-]\d{3,4}[ .-]\d{3,4}",
            ),
            phone_keyed: re(&format!(
                r"(?i){b}(?:phone|ph|tel|telephone|cell|cellphone|mobile|mob|fax|pager|beeper|desk|contact|call(?:ed)?(?: me)?(?: on| at)?|reach(?:ed)?(?: me| her| him| them)? at|answering at|registered|number|messages to|texts? (?:me )?(?:to|at|on))(?:[ \t]+(?:number|no\.?|#))?[ \t]*[:.#]?[ \t]*\n?[ \t]*((?:\+|00)?\(?\d[\d \t().-]{{4,18}}\d){b}"
            )),
            pager: re(&format!(
                r"(?i){b}(?:pager|pgr|pg|beeper|bpr|bp[ \t]*#|page[ \t]+at|paged[ \t]+at)[ \t]*(?:#|:|no\.?)?[ \t]*(\d{{4,5}}|\d{{1,2}}-\d{{3,4}}){b}|(?-i:{b}[xX])(\d{{4,5}}|\d-\d{{4}}){b}"
            )),
            ssn: re(&format!(r"{b}(\d{{3}})([- ])(\d{{2}})[- ](\d{{4}}){b}")),
            card: re(&format!(
                r"{b}(?:\d{{4}}[ -]?\d{{6}}[ -]?\d{{5}}|\d{{4}}(?:[ -]?\d{{4}}){{2}}[ -]?\d{{1,7}}){b}"
            )),
            iban: re(&format!(
                r"{b}[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,4}})?{b}"
            )),
            vin: re(&format!(r"{b}[A-HJ-NPR-Z0-9]{{17}}{b}")),
            dea: re(&format!(r"{b}[A-Z]{{2}}\d{{7}}{b}")),
            keyed: re(&format!(
                r"(?i){b}(social security(?: number| no\.?| #)?|ssn|ss#|medical record(?: number| no\.?| #)?|med rec|mrn|record(?: number| no\.?| #)?|chart(?: number| no\.?| #)?|hospital(?: number| id)|unit(?: number| no\.?)|patient(?: number| id| #)|pt(?: id| #)|insurance(?: id| number| no\.?| plan| policy| member id)?|policy(?: number| no\.?| #| id)?|member(?: id| number| #)?|subscriber(?: id| number)?|plan(?: id| number| #)|health plan(?: id| number)?|medicare(?: number| id| #)?|medicaid(?: number| id| #)?|beneficiary(?: number| id)?|group(?: number| no\.?| #)|hicn|mbi|account(?: number| no\.?| #)?|acct\.?(?: number| no\.?| #)?|billing(?: number| id)|card(?: number| no\.?| #)|iban|routing number|licen[cs]e(?: number| no\.?| #| plate)?|lic\.?(?: #| no\.?)?|dea(?: number| no\.?| #)?|npi|certificate(?: number| no\.?| #)?|driver'?s licen[cs]e|dl(?: #| no\.?)|vin|vehicle(?: id| identification number)|plate(?: number| #)|serial(?: number| no\.?| #)?|s/n|device(?: id| serial| number)|udi|imei|implant(?: id| serial)|model(?: number| no\.?)|fingerprint(?: id)?|retina(?:l)? scan(?: id)?|iris scan(?: id)?|voice ?print(?: id)?|biometric(?: id)?|palm ?print(?: id)?|(?:subject|participant|study|trial|site|case|claim|reference|confirmation|employee|visit|encounter|accession|specimen|sample|order|requisition)(?: id| number| no\.?| #)|claim|id|identifier){b}([ \t]*(?:(?:number|num|no\.?|nbr|id|code|is|was|of)[ \t]*)?[:#=][ \t]*|[ \t]+(?:(?:number|num|no\.?|nbr|id|code|is|was|of)[ \t]+)*)(#?(?:[A-Z0-9]+[-.])*[A-Z]*[0-9][A-Z0-9]*(?:[-.][A-Z0-9]+)*)"
            )),
            shape_alpha_num: re(&format!(
                r"(?:#|{b})[A-Z]{{1,6}}-?\d{{3,}}[A-Z0-9]*(?:-[A-Z0-9]+)*{b}"
            )),
            shape_num_alpha: re(&format!(
                r"(?:#|{b})\d{{4,}}-?([A-Z]{{1,5}})\d*(?:-[A-Z0-9]+)*{b}"
            )),
            dashed_digits: re(&format!(r"(?:#|{b})\d{{2,}}(?:-\d{{2,}}){{1,4}}{b}")),
            hash_digits: re(r"#\s?\d{4,}"),
            // Codes in lower case need a "#" or a dash and five digits: "#r-987654", "hp-987654".
            shape_any_case: re(&format!(
                r"(?:#[a-z]{{1,6}}-?\d{{4,}}|{b}[a-z]{{1,4}}-\d{{5,}})[a-z0-9]*(?:-[a-z0-9]+)*{b}"
            )),
            // Words that announce an address: the block after them is one ("address: 28245 Puruntie 82
            // Apt. 595\n LAPPEENRANTA", "lives at 86036 Rua do Arenque 1634, Goiania").
            address_cue: re(&format!(
                r"(?i){b}(?:(?:(?:(?:home|billing|mailing|shipping|postal|street|new|current|my|his|her|their|your|patient'?s|pt'?s)[ \t]+address(?:[ \t]+(?:is|was))?|address[ \t]+(?:is|was)|address){b}[ \t]*:?)|(?:lives|living|resides|residing|located|reside)[ \t]+at{b}|office[ \t]+is[ \t]+at{b}|drops?[ \t]+(?:you|me|him|her|them)[ \t]+off[ \t]+at{b})"
            )),
            // Verbs that take an address, when one follows: "sent to PSC 7951, Box 9972", "return to
            // Unit 4719", "the letter arrived at 23100 Ilichova 23", "at the corner of X and Y".
            address_sent: re(&format!(
                r"(?i){b}(?:(?:sent|send|return(?:ed)?|deliver(?:ed)?|mail(?:ed)?|ship(?:ped)?|forward(?:ed)?|moved?)[ \t]+to|arrived[ \t]+at|meet[ \t]+(?:me|us)[ \t]+at|it'?s[ \t]+(?:in|at)|where[ \t]*:|update[ \t]+(?:\w+[ \t]+){{0,3}}with|following\??){b}[ \t]*(?:\w+[ \t]*:[ \t]*)?(?:(?:[0-9]{{3,6}}|p\.?[ \t]*o\.?[ \t]+box|psc[ \t]+[0-9]|unit[ \t]+[0-9]{{3,}}|the[ \t]+corner[ \t]+of)[ \t,])|{b}the[ \t]+corner[ \t]+of{b}"
            )),
            // British postcodes spelt out: "SW sixteen six JT", "AB one CB two".
            postcode_spoken: {
                let n = "zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty";
                re(&format!(
                    r"{b}[A-Z]{{1,2}}(?:[ \t]+(?i:{n})){{1,2}}[ \t]+(?:[A-Z]{{1,2}}[ \t]+(?i:{n})|(?i:{n})[ \t]+[A-Z]{{2}}|[A-Z]{{2}}){b}"
                ))
            },
            // Addresses dictated in words: "mary dot smith at gmail dot com", "M Traba at Gmail dot com".
            email_spoken: re(&format!(
                r"(?i){b}(?:[a-z][ \t]+)?[a-z0-9]+(?:[ \t]+(?:dot|underscore|dash)[ \t]+[a-z0-9]+)*[ \t]+at[ \t]+(?:dot[ \t]+)?[a-z0-9]+(?:[ \t]+dot[ \t]+(?:com|org|net|edu|gov|co|uk|io|us|ca|au|nz|ie|info)){{1,3}}{b}"
            )),
            long_digits: re(&format!(r"{b}\d{{7,}}{b}")),
            date_month_day: re(&format!(
                r"{b}{MON}\.?[ \t]+(\d{{1,2}})(?i:st|nd|rd|th)?{b}(?:[ \t]*,?[ \t]+(?:\d{{4}}|'\d{{2}}){b})?(?:,?[ \t]+(?:at[ \t]+)?\d{{1,2}}:\d{{2}}(?:[ \t]?[AaPp]\.?[Mm]\.?)?)?"
            )),
            date_day_month: re(&format!(
                r"{b}(\d{{1,2}})(?i:st|nd|rd|th)?(?:[ \t]+of)?[ \t-]+{MON}{b}\.?(?:,?[ \t-]+(?:\d{{4}}|'?\d{{2}}){b})?"
            )),
            date_month_year: re(&format!(
                r"{b}{MON}\.?[ \t]*,?[ \t]+(?:of[ \t]+)?(?:\d{{4}}|'\d{{2}}){b}"
            )),
            date_numeric: re(&format!(
                r"{b}(\d{{1,2}})([/.-])(\d{{1,2}})([/.-])(\d{{4}}|\d{{2}}){b}(?:[ T]\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:[ \t]?[AaPp][Mm])?)?"
            )),
            date_iso: re(&format!(
                r"{b}(\d{{4}})([-/.])(\d{{1,2}})[-/.](\d{{1,2}}){b}(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:Z|[+-]\d{{2}}:?\d{{2}})?)?"
            )),
            date_short: re(&format!(r"{b}(\d{{1,2}})/(\d{{1,2}}){b}")),
            date_month_year_numeric: re(&format!(r"{b}(?:0?[1-9]|1[0-2])/(?:19|20)\d{{2}}{b}")),
            date_spoken: re(&spoken_date_pattern()),
            age_spoken: re(&format!(
                r"(?i){b}(?:ninety(?:[ -](?:one|two|three|four|five|six|seven|eight|nine))?|(?:a|one)[ -]hundred(?:[ -](?:and[ -])?[a-z]+)?)(?:[ -](?:years?|yrs?)(?:[ -](?:old|of[ -]age))?|[ -](?:yo|y/o|y\.o\.?)){b}"
            )),
            date_ordinal: re(&format!(r"{b}([0-9]{{1,2}}(?i:st|nd|rd|th)){b}")),
            // County words ride along: they only gate the county rule.
            date_word: re(&format!(
                r"{weekday}|{holiday}|{month_alone}|{b}(?:County|Parish|Borough){b}"
            )),
            age_unit: re(&format!(
                r"(?i){b}(9\d|1[0-2]\d)[ \t]*-?[ \t]*(?:years?|yrs?|y\.?o\.?|y/o|yo)(?:[ -]old)?{b}\.?"
            )),
            age_keyword: re(&format!(
                r"(?i){b}(?:age[ds]?|aged)[ \t]*:?[ \t]*(9\d|1[0-2]\d){b}"
            )),
            address: re(&format!(
                r"{b}\d{{1,6}}[A-Za-z]?(?:-\d+)?[ \t]+(?:[NSEW]\.?[ \t]+|(?:North|South|East|West)[ \t]+)?(?:[A-Z0-9][A-Za-z0-9'.-]*[ \t]+){{0,4}}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Route|Rte|Pike|Plaza|Alley|Loop|Crossing|Row|Path|Walk|Hill|Heights|Expressway|Expy|Freeway|Fwy|Turnpike|Ridge|Landing|Gardens|Park|Commons|Cove|Crescent|Close|Mews|Bend|Estates|Junction){b}\.?(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW){b})?(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Fl|Floor|Bldg|#)\.?[ \t]*#?[A-Za-z0-9-]+)?(?:,[ \t]*[A-Z][a-zA-Z]+(?:[ \t][A-Z][a-zA-Z]+){{0,2}})?(?:,?[ \t]*[A-Z]{{2}}{b})?(?:[ \t]*\d{{5}}(?:-\d{{4}})?)?"
            )),
            po_box: re(&format!(r"(?i){b}P\.?[ \t]?O\.?[ \t]*Box[ \t]+\d+")),
            zip_state: re(&format!(
                r"{b}(?:A[LKZR]|C[AOT]|D[EC]|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[TA]|W[AVIY]|PR|GU|VI),?[ \t]+(\d{{5}}(?:-\d{{4}})?){b}"
            )),
            zip_keyword: re(&format!(
                r"(?i){b}(?:zip|post|postal)(?:[ \t]*code)?[ \t]*(?::|is)?[ \t]*(\d{{5}}(?:-\d{{4}})?|\d{{3,10}}){b}"
            )),
            county: re(&format!(
                r"{b}(?:[A-Z][a-z]+[ \t]){{1,3}}(?:County|Parish|Borough){b}"
            )),
        }
    }

    /// Appends a candidate for every match in `text`.
    pub(crate) fn find(&self, text: &str, out: &mut Vec<Candidate>) {
        // Byte statistics gate every rule: a rule that cannot match is never started.
        let st = Stats::of(text);
        if st.at {
            for m in self.email.find_iter(text) {
                hit(out, &m, PhiType::Email, "email", P_EXACT);
            }
        }
        if [" dot ", " DOT ", " Dot "].iter().any(|w| text.contains(w)) {
            for m in self.email_spoken.find_iter(text) {
                hit(out, &m, PhiType::Email, "email.spoken", P_EXACT);
            }
        }
        if st.dots > 0 || st.hex_colons >= 2 {
            self.urls(text, &st, out);
        }
        if st.digits > 0 {
            // Self-contained identifiers only need their own word and its neighbours; rules led by a
            // keyword get 40 bytes of context. Each window has its own statistics (tighter gates).
            // A window over most of the text gains little from its own statistics: reuse the text's
            // (looser gates, same matches).
            let of = |a: usize, b: usize| {
                if (b - a) * 3 >= text.len() * 2 {
                    st
                } else {
                    Stats::of(&text[a..b])
                }
            };
            for (a, b) in windows(text, 0) {
                let (w, wst) = (&text[a..b], of(a, b));
                let from = out.len();
                self.numbers(w, &wst, out);
                self.numeric_dates(w, &wst, out);
                shift(&mut out[from..], a);
            }
            for (a, b) in windows(text, 32) {
                let (w, wst) = (&text[a..b], of(a, b));
                let from = out.len();
                self.keyed_numbers(w, &wst, out);
                self.dates(w, &wst, out);
                self.ages(w, &wst, out);
                self.addresses(w, &wst, out);
                shift(&mut out[from..], a);
            }
        }
        if st.digits > 0 {
            self.address_blocks(text, out);
        }
        if st.upper >= 2 {
            for m in self.postcode_spoken.find_iter(text) {
                // Only where capitals mean something: the numbers said in lower case ("SW
                // sixteen six JT"), not a shouted line ("OF ONE OR").
                if m.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
                    hit(
                        out,
                        &m,
                        PhiType::Location,
                        "location.postcode_spoken",
                        P_PLACE,
                    );
                }
            }
        }
        let (has_county, has_month) = self.date_words(text, out);
        spoken_birth_dates(text, out);
        // Dates and ages said in words have no digits: they are looked for where a month is named,
        // or "ninety" or "hundred" is written.
        if has_month {
            for m in self.date_spoken.find_iter(text) {
                hit(out, &m, PhiType::Date, "date.spoken", P_DATE);
            }
        }
        if ["inety", "INETY", "undred", "UNDRED"]
            .iter()
            .any(|w| text.contains(w))
        {
            for m in self.age_spoken.find_iter(text) {
                hit(out, &m, PhiType::Age, "age.over_89_spoken", P_DATE);
            }
        }
        for m in self.county.find_iter(if has_county { text } else { "" }) {
            hit(out, &m, PhiType::Location, "location.county", P_PLACE);
        }
    }

    fn urls(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        for m in self.url.find_iter(text) {
            let end = m.start()
                + m.as_str()
                    .trim_end_matches(['.', ',', ';', ':', '!', '?', ')'])
                    .len();
            out.push(Candidate::new(m.start(), end, PhiType::Url, "url", P_EXACT));
        }
        let dotted = st.dotted;
        for m in gate(dotted, text)
            .into_iter()
            .flat_map(|t| self.domain.find_iter(t))
        {
            let prev = byte_before(text, m.start());
            if prev == b'@' || prev == b'.' || prev == b'/' || byte(text, m.end()) == b'@' {
                continue;
            }
            let s = m
                .as_str()
                .trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
            // A domain needs a label of two or more letters before the TLD ("e.g.", "i.e." are not domains).
            let label = s.split('.').next().unwrap_or("");
            if label.len() < 2 || label.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            // "checked temp.No obvious trigger": a sentence run on after a period, not a domain.
            // Domains are written in one case; a capitalised word after a lower-case one is prose.
            let last = s.rsplit('.').next().unwrap_or("");
            let capitalised = last.len() >= 2
                && last.as_bytes()[0].is_ascii_uppercase()
                && last.bytes().skip(1).all(|b| b.is_ascii_lowercase());
            if capitalised && label.bytes().all(|b| b.is_ascii_lowercase()) {
                continue;
            }
            out.push(Candidate::new(
                m.start(),
                m.start() + s.len(),
                PhiType::Url,
                "url.domain",
                P_EXACT,
            ));
        }
        if st.hex_colons >= 2 {
            for m in self.ipv6.find_iter(text) {
                let s = m.as_str();
                let addr = s.split('%').next().unwrap_or(s);
                if s.matches(':').count() >= 2
                    && addr.parse::<std::net::Ipv6Addr>().is_ok()
                    && addr.bytes().any(|b| b.is_ascii_hexdigit())
                {
                    hit(out, &m, PhiType::Ip, "ip.v6", P_EXACT);
                }
            }
            for m in self.mac.find_iter(text) {
                hit(out, &m, PhiType::DeviceId, "device.mac", P_EXACT);
            }
        }
    }

    /// Numeric dates that need no words around them ("03/04/2019", "2019-03-04").
    fn numeric_dates(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        let push = |out: &mut Vec<Candidate>, s: usize, e: usize, rule| {
            out.push(Candidate::new(s, e, PhiType::Date, rule, P_DATE))
        };
        for m in gate(st.dashes || st.slashes || st.dots >= 2, text)
            .into_iter()
            .flat_map(|t| self.date_numeric.find_iter(t))
        {
            // d/m/y with one separator used twice; the optional time follows a space or 'T'.
            let date = m.as_str().split([' ', 'T']).next().unwrap_or("");
            let sep = date.bytes().find(|b| !b.is_ascii_digit()).unwrap_or(b'/');
            let parts: Vec<&str> = date.split(sep as char).collect();
            if parts.len() != 3 || (sep == b'.' && parts[2].len() != 4) {
                continue;
            }
            let (a, b): (u32, u32) = (parts[0].parse().unwrap_or(0), parts[1].parse().unwrap_or(0));
            let year: i32 = parts[2].parse().unwrap_or(0);
            let year = if parts[2].len() == 2 {
                2000 + year
            } else {
                year
            };
            if checks::date_valid(a, b, Some(year)) || checks::date_valid(b, a, Some(year)) {
                push(out, m.start(), m.end(), "date.numeric");
            }
        }
        for c in gate(
            st.max_run >= 4 && (st.dashes || st.slashes || st.dots >= 2),
            text,
        )
        .into_iter()
        .flat_map(|t| self.date_iso.captures_iter(t))
        {
            let m = c.get(0).expect("match");
            let y: i32 = c[1].parse().unwrap_or(0);
            if (1800..=2199).contains(&y)
                && checks::date_valid(
                    c[3].parse().unwrap_or(0),
                    c[4].parse().unwrap_or(0),
                    Some(y),
                )
            {
                push(out, m.start(), m.end(), "date.iso");
            }
        }
    }

    fn numbers(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        for m in gate(st.dots >= 3, text)
            .into_iter()
            .flat_map(|t| self.ipv4.find_iter(t))
        {
            let ok = m
                .as_str()
                .split('.')
                .all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255));
            if ok
                && byte_before(text, m.start()) != b'.'
                && !(byte(text, m.end()) == b'.' && byte(text, m.end() + 1).is_ascii_digit())
            {
                hit(out, &m, PhiType::Ip, "ip.v4", P_EXACT);
            }
        }
        for m in gate(st.runs3 >= 3 && st.digits >= 10, text)
            .into_iter()
            .flat_map(|t| self.phone.find_iter(t))
        {
            let prev = byte_before(text, m.start());
            if prev.is_ascii_digit()
                || prev == b'-'
                || prev == b'/'
                || prev == b'.'
                || byte(text, m.end()).is_ascii_digit()
            {
                continue;
            }
            let ctx = before(text, m.start(), 24);
            let (kind, rule) = if ctx.contains("fax") {
                (PhiType::Fax, "fax.nanp")
            } else {
                (PhiType::Phone, "phone.nanp")
            };
            hit(out, &m, kind, rule, P_EXACT);
        }
        for m in gate(st.digits >= 8, text)
            .into_iter()
            .flat_map(|t| self.phone_intl.find_iter(t))
        {
            let n = digits(m.as_str());
            let prev = byte_before(text, m.start());
            if !(8..=15).contains(&n)
                || prev.is_ascii_digit()
                || byte(text, m.end()).is_ascii_digit()
            {
                continue;
            }
            let ctx = before(text, m.start(), 24);
            let kind = if ctx.contains("fax") {
                PhiType::Fax
            } else {
                PhiType::Phone
            };
            hit(out, &m, kind, "phone.intl", P_SHAPE);
        }
        for c in gate(st.ssn_like && st.digits >= 9, text)
            .into_iter()
            .flat_map(|t| self.ssn.captures_iter(t))
        {
            let m = c.get(0).expect("match");
            if byte_before(text, m.start()) == b'-' || byte(text, m.end()) == b'-' {
                continue;
            }
            let n = |i| {
                c.get(i)
                    .map_or(0, |g| g.as_str().parse::<u32>().unwrap_or(0))
            };
            if checks::ssn_valid(n(1), n(3), n(4)) {
                hit(out, &m, PhiType::Ssn, "ssn.format", P_EXACT);
            } else {
                hit(out, &m, PhiType::OtherId, "id.ssn_shape", P_SHAPE);
            }
        }
        for m in gate((st.runs4 >= 3 || st.max_run >= 13) && st.digits >= 13, text)
            .into_iter()
            .flat_map(|t| self.card.find_iter(t))
        {
            if checks::luhn(m.as_str()) {
                hit(out, &m, PhiType::Account, "account.card_luhn", P_EXACT);
            }
        }
        for m in gate(st.iban_like && st.digits >= 8, text)
            .into_iter()
            .flat_map(|t| self.iban.find_iter(t))
        {
            if checks::iban_valid(m.as_str()) {
                hit(out, &m, PhiType::Account, "account.iban", P_EXACT);
            }
        }
        for m in gate(st.long_token >= 17, text)
            .into_iter()
            .flat_map(|t| self.vin.find_iter(t))
        {
            let s = m.as_str();
            if s.bytes().any(|b| b.is_ascii_alphabetic())
                && s.bytes().any(|b| b.is_ascii_digit())
                && checks::vin_valid(s)
            {
                hit(out, &m, PhiType::VehicleId, "vehicle.vin", P_EXACT);
            }
        }
        for m in gate(st.max_run >= 7 && st.upper >= 2, text)
            .into_iter()
            .flat_map(|t| self.dea.find_iter(t))
        {
            if checks::dea_valid(m.as_str()) {
                hit(out, &m, PhiType::License, "license.dea", P_EXACT);
            }
        }
        for m in gate(st.upper_digit, text)
            .into_iter()
            .flat_map(|t| self.shape_alpha_num.find_iter(t))
        {
            if digits(m.as_str()) >= 4 {
                hit(out, &m, PhiType::OtherId, "id.shape", P_SHAPE);
            }
        }
        for c in gate(st.digit_upper, text)
            .into_iter()
            .flat_map(|t| self.shape_num_alpha.captures_iter(t))
        {
            let m = c.get(0).expect("match");
            if !c.get(1).is_some_and(|u| is_unit(u.as_str())) {
                hit(out, &m, PhiType::OtherId, "id.shape", P_SHAPE);
            }
        }
        for m in gate(st.dashes && st.digits >= 7, text)
            .into_iter()
            .flat_map(|t| self.dashed_digits.find_iter(t))
        {
            let s = m.as_str();
            let year_range = s.len() == 9
                && s.as_bytes()[4] == b'-'
                && (s.starts_with("19") || s.starts_with("20"));
            if digits(s) >= 7 && !year_range && byte(text, m.end()) != b'.' {
                hit(out, &m, PhiType::OtherId, "id.dashed", P_SHAPE);
            }
        }
        for m in gate(st.hash, text)
            .into_iter()
            .flat_map(|t| self.hash_digits.find_iter(t))
        {
            hit(out, &m, PhiType::OtherId, "id.hash", P_SHAPE);
        }
        for m in gate(st.max_run >= 4 && (st.hash || st.dashes), text)
            .into_iter()
            .flat_map(|t| self.shape_any_case.find_iter(t))
        {
            hit(out, &m, PhiType::OtherId, "id.shape_any_case", P_SHAPE);
        }
        for m in gate(st.max_run >= 7, text)
            .into_iter()
            .flat_map(|t| self.long_digits.find_iter(t))
        {
            let prev = byte_before(text, m.start());
            let next_is_decimal =
                byte(text, m.end()) == b'.' && byte(text, m.end() + 1).is_ascii_digit();
            if prev != b'.' && prev != b',' && !next_is_decimal {
                let ctx = before(text, m.start(), 24);
                let (kind, rule) = if m.len() == 10
                    && ["phone", "tel", "call", "cell", "mobile", "pager", "contact"]
                        .iter()
                        .any(|w| ctx.contains(w))
                {
                    (PhiType::Phone, "phone.context")
                } else if m.len() == 10 && ctx.contains("fax") {
                    (PhiType::Fax, "fax.context")
                } else {
                    (PhiType::OtherId, "id.digits")
                };
                hit(out, &m, kind, rule, P_SHAPE);
            }
        }
    }

    /// Identifiers introduced by a word ("MRN: 123", "Phone: 555 0134"): need the words before them.
    fn keyed_numbers(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        for c in gate(st.digits >= 7, text)
            .into_iter()
            .flat_map(|t| self.phone_keyed.captures_iter(t))
        {
            let g = c.get(1).expect("group");
            let n = digits(g.as_str());
            if (7..=15).contains(&n) && !g.as_str().contains("  ") {
                let kw = c.get(0).expect("match").as_str().to_ascii_lowercase();
                let kind = if kw.starts_with("fax") {
                    PhiType::Fax
                } else {
                    PhiType::Phone
                };
                out.push(Candidate::new(
                    g.start(),
                    g.end(),
                    kind,
                    "phone.keyword",
                    P_EXACT,
                ));
            }
        }
        for c in gate(st.digits >= 3, text)
            .into_iter()
            .flat_map(|t| self.keyed.captures_iter(t))
        {
            self.keyed_match(text, &c, out);
        }
        for c in gate(st.digits >= 4, text)
            .into_iter()
            .flat_map(|t| self.pager.captures_iter(t))
        {
            if let Some(g) = c.get(1).or_else(|| c.get(2)) {
                hit(out, &g, PhiType::Phone, "phone.pager", P_EXACT);
            }
        }
    }

    fn keyed_match(&self, text: &str, c: &Captures<'_>, out: &mut Vec<Candidate>) {
        let (Some(kw), Some(sep), Some(code)) = (c.get(1), c.get(2), c.get(3)) else {
            return;
        };
        let (kind, strong) = keyword_type(kw.as_str());
        let s = code.as_str();
        let n = digits(s);
        let separated = sep.as_str().contains([':', '#', '=']) || sep.as_str().trim().len() > 1;
        // Quantities ("plan 100mg") and short numbers are not identifiers.
        let body = s.trim_start_matches('#');
        let split = body
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(body.len());
        if n < 3 || (split > 0 && is_unit(&body[split..])) {
            return;
        }
        if !(strong || separated || n >= 5) {
            return;
        }
        let rule = match kind {
            PhiType::Ssn => "ssn.keyword",
            PhiType::Mrn => "mrn.keyword",
            PhiType::HealthPlanId => "health_plan.keyword",
            PhiType::Account => "account.keyword",
            PhiType::License if checks::npi_valid(body) => "license.npi",
            PhiType::License => "license.keyword",
            PhiType::VehicleId => "vehicle.keyword",
            PhiType::DeviceId => "device.keyword",
            PhiType::Biometric => "biometric.keyword",
            _ => "id.keyword",
        };
        let _ = text;
        out.push(Candidate::new(
            code.start(),
            code.end(),
            kind,
            rule,
            P_EXACT,
        ));
    }

    fn dates(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        let push = |out: &mut Vec<Candidate>, s: usize, e: usize, rule| {
            out.push(Candidate::new(s, e, PhiType::Date, rule, P_DATE))
        };
        for m in self.date_month_day.find_iter(text) {
            // The day is the first number after the month.
            let day: u32 = first_number(m.as_str());
            let month = month_number(m.as_str());
            // "on may 16", "since may 3": after a preposition of time "may" is the month.
            let timed = {
                let b = before(text, m.start(), 7);
                let w = b.trim_end().rsplit(' ').next().unwrap_or("");
                matches!(
                    w,
                    "on" | "since" | "from" | "until" | "till" | "by" | "of" | "before" | "after"
                )
            };
            if checks::date_valid(month, day, None) && (timed || !is_may_verb(m.as_str())) {
                push(out, m.start(), m.end(), "date.month_day");
            }
        }
        for c in gate(st.digit_month || st.ordinal, text)
            .into_iter()
            .flat_map(|t| self.date_day_month.captures_iter(t))
        {
            let m = c.get(0).expect("match");
            let day: u32 = c[1].parse().unwrap_or(0);
            let mon = m
                .as_str()
                .trim_start_matches(|ch: char| !ch.is_ascii_alphabetic());
            let mon = mon
                .strip_prefix("st")
                .or(mon.strip_prefix("nd"))
                .or(mon.strip_prefix("rd"))
                .or(mon.strip_prefix("th"))
                .unwrap_or(mon);
            let mon = mon
                .trim_start()
                .strip_prefix("of")
                .unwrap_or(mon)
                .trim_start_matches([' ', '\t', '-']);
            if checks::date_valid(month_number(mon), day, None) && !mon.starts_with("may ") {
                push(out, m.start(), m.end(), "date.day_month");
            }
        }
        for m in self.date_month_year.find_iter(text) {
            if !m.as_str().starts_with("may") {
                push(out, m.start(), m.end(), "date.month_year");
            }
        }
        for c in gate(st.slashes, text)
            .into_iter()
            .flat_map(|t| self.date_short.captures_iter(t))
        {
            let m = c.get(0).expect("match");
            if self.short_date_ok(text, m.start(), m.end(), &c) {
                push(out, m.start(), m.end(), "date.month_day_numeric");
            } else if month_short_year(text, m.start(), m.end(), &c) {
                push(out, m.start(), m.end(), "date.month_year_short");
            }
        }
        for m in gate(st.slashes, text)
            .into_iter()
            .flat_map(|t| self.date_month_year_numeric.find_iter(t))
        {
            if byte_before(text, m.start()) != b'/' && byte(text, m.end()) != b'/' {
                push(out, m.start(), m.end(), "date.month_year_numeric");
            }
        }
        for c in gate(st.ordinal, text)
            .into_iter()
            .flat_map(|t| self.date_ordinal.captures_iter(t))
        {
            let g = c.get(1).expect("group");
            let d: u32 = g
                .as_str()
                .trim_end_matches(char::is_alphabetic)
                .parse()
                .unwrap_or(0);
            // "on the 4th", "since the 21st": a cue word before, "the" optional; "of the 4th" is too weak.
            let pre = before(text, g.start(), 16);
            let pre = pre.trim_end();
            let pre = pre.strip_suffix("the").map_or(pre, str::trim_end);
            let cue = [
                "on", "by", "until", "till", "since", "before", "after", "from", "through", "thru",
            ]
            .iter()
            .any(|w| {
                pre.ends_with(w)
                    && !pre[..pre.len() - w.len()].ends_with(|ch: char| ch.is_ascii_alphabetic())
            });
            if (1..=31).contains(&d) && cue {
                push(out, g.start(), g.end(), "date.ordinal");
            }
        }
    }

    /// `3/4` is a date unless it reads as a score, a ratio or a count ("pain 5/10", "2/2 bottles").
    fn short_date_ok(&self, text: &str, start: usize, end: usize, c: &Captures<'_>) -> bool {
        let prev = byte_before(text, start);
        let next = byte(text, end);
        if prev == b'/'
            || prev == b'.'
            || next == b'/'
            || (next == b'.' && byte(text, end + 1).is_ascii_digit())
        {
            return false;
        }
        let (a, b): (u32, u32) = (c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0));
        if !checks::date_valid(a, b, None) {
            return false;
        }
        // Grades out of 4, 5 or 6 (pulses, strength, murmurs) are dated only by a cue below.
        let grade = matches!(b, 4..=6) && a <= b;
        let pre = before(text, start, 20);
        let post = after(text, end, 16);
        // British shorthand for a duration: "abx for 3/7" (days), "over the past 2/7", "review
        // 5/7", "cough 1/7 previously", "3/12 hx" (months). A count of days out of 7 or months
        // out of 12 beside a word of duration is not a date.
        if b == 7 && a <= 6 || b == 12 && a <= 11 {
            let pre_l = pre.trim_end().to_ascii_lowercase();
            let word_before = pre_l.rsplit([' ', '\t', '\n', '(']).next().unwrap_or("");
            let post_l = post.trim_start().to_ascii_lowercase();
            if matches!(
                word_before,
                "for"
                    | "past"
                    | "last"
                    | "over"
                    | "within"
                    | "x"
                    | "review"
                    | "next"
                    | "approx"
                    | "~"
            ) || [
                "ago",
                "previously",
                "prev",
                "hx",
                "history",
                "of ",
                "duration",
            ]
            .iter()
            .any(|w| post_l.starts_with(w))
            {
                return false;
            }
        }
        let cue_before = [
            "on ",
            "since ",
            "from ",
            "dated ",
            "date ",
            "dob",
            "until ",
            "by ",
            "of ",
            "thru ",
            "through ",
            "to ",
            "admitted ",
            "discharged ",
            "seen ",
            "mon ",
            "tue",
            "wed",
            "thu",
            "fri",
            "sat ",
            "sun ",
            "d.o.b",
            "birth",
            "bm",
            "last",
            "dated",
            "s/p",
        ]
        .iter()
        .any(|w| pre.trim_end_matches([':', ' ']).ends_with(w.trim_end()) || pre.ends_with(w));
        if cue_before {
            return true;
        }
        if grade {
            return false;
        }
        // Murmur grades ("2/6 systolic murmur") and durations ("3/7 hx": three days) are not dates.
        let post_l = post.trim_start().to_ascii_lowercase();
        if [
            "systolic",
            "diastolic",
            "murmur",
            "sem",
            "hsm",
            "holosystolic",
            "hx",
            "history",
            "ago",
            "duration",
            "course",
            "days",
            "weeks",
        ]
        .iter()
        .any(|w| post_l.starts_with(w))
            || b == 6 && pre.to_ascii_lowercase().contains("murmur")
        {
            return false;
        }
        let score_words = [
            "pain", "scale", "rated", "rating", "score", "strength", "ratio", "cultures",
            "bottles", "bp", "b/p", "x", "of", "grade", "murmur", "power",
        ];
        let pre_t = pre.trim_end();
        let ends_with_word = |w: &str| {
            pre_t.ends_with(w)
                && !pre_t[..pre_t.len() - w.len()].ends_with(|ch: char| ch.is_ascii_alphabetic())
        };
        if score_words.iter().any(|w| ends_with_word(w)) || b == 10 && a <= 10 {
            return false;
        }
        let post_trim = post.trim_start();
        let count_words = [
            "bottle", "set", "culture", "positive", "negative", "strength", "tab", "unit", "dose",
            "pill", "time", "of ", "pain", "scale", "ns", "nss", "wk", "week", "month", "day",
            "hour", "hr", "inch", "in ", "cm", "mm", "ml", "mg", "cup", "liter", "l ", "point",
            "pt", "%",
        ];
        !count_words.iter().any(|w| post_trim.starts_with(w))
    }

    /// Weekdays, holidays and months alone; returns whether a county word and a month were seen.
    fn date_words(&self, text: &str, out: &mut Vec<Candidate>) -> (bool, bool) {
        let mut county = false;
        let mut month = false;
        for m in self.date_word.find_iter(text) {
            let canon = title_case(m.as_str());
            let word = canon.as_str();
            let head = &word[..3.min(word.len())];
            if matches!(
                head,
                "Mon"
                    | "Tue"
                    | "Wed"
                    | "Thu"
                    | "Fri"
                    | "Sat"
                    | "Sun"
                    | "MON"
                    | "TUE"
                    | "WED"
                    | "THU"
                    | "FRI"
                    | "SAT"
                    | "SUN"
            ) {
                hit(out, &m, PhiType::Date, "date.weekday", P_DATE);
                if word.ends_with("day") {
                    self.month_word(text, &m, out);
                }
            } else if MONTHS.contains(&word) || SHORT_MONTH_WORDS.contains(&word) {
                month = true;
                self.month_word(text, &m, out);
            } else if matches!(m.as_str(), "County" | "Parish" | "Borough") {
                county = true;
            } else {
                hit(out, &m, PhiType::Date, "date.holiday", P_DATE);
            }
        }
        (county, month)
    }

    /// A month name or weekday standing alone: dated by "last", "next"; full months always; "March"
    /// and "May" only after a cue, since they are also words.
    fn month_word(&self, text: &str, m: &regex::Match<'_>, out: &mut Vec<Candidate>) {
        let canon = title_case(m.as_str());
        let word = canon.as_str();
        let pre = before(text, m.start(), 12);
        let pre = pre.trim_end_matches([' ', '\t', '-']);
        let last_word = pre
            .rsplit(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("");
        let relative = matches!(last_word, "last" | "next" | "this" | "past" | "coming");
        let full_month = matches!(
            word,
            "January"
                | "February"
                | "April"
                | "June"
                | "July"
                | "August"
                | "September"
                | "October"
                | "November"
                | "December"
                | "Sept"
        );
        // "March" and "May" are also words; short forms and weekdays alone are dated only by "last", "next".
        let cued = matches!(word, "March" | "May")
            && matches!(
                last_word,
                "in" | "since"
                    | "during"
                    | "until"
                    | "till"
                    | "by"
                    | "early"
                    | "late"
                    | "mid"
                    | "of"
                    | "before"
                    | "after"
            );
        if relative {
            let start =
                m.start() - (before(text, m.start(), 12).len() - pre.len()) - last_word.len();
            out.push(Candidate::new(
                start,
                m.end(),
                PhiType::Date,
                "date.relative",
                P_DATE,
            ));
        } else if full_month || cued {
            hit(out, m, PhiType::Date, "date.month", P_DATE);
        }
    }

    fn ages(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        for m in gate(st.age_like, text)
            .into_iter()
            .flat_map(|t| self.age_unit.find_iter(t))
        {
            hit(out, &m, PhiType::Age, "age.over_89", P_DATE);
        }
        for c in gate(st.age_like, text)
            .into_iter()
            .flat_map(|t| self.age_keyword.captures_iter(t))
        {
            let g = c.get(1).expect("group");
            out.push(Candidate::new(
                g.start(),
                g.end(),
                PhiType::Age,
                "age.over_89",
                P_DATE,
            ));
        }
    }

    /// The block after an address cue, when it holds a number early on: to the end of its sentence,
    /// a blank line, a line that starts another field ("Phone: ..."), or 200 bytes.
    fn address_blocks(&self, text: &str, out: &mut Vec<Candidate>) {
        for m in self.address_sent.find_iter(text) {
            // The block starts at the house number, box or corner the match ends on.
            let s0 = m.as_str();
            let lower = s0.to_ascii_lowercase();
            let rel = ["the corner", "p.o", "po ", "psc", "unit"]
                .iter()
                .filter_map(|w| lower.rfind(w))
                .chain(
                    s0.char_indices()
                        .rev()
                        .skip_while(|(_, c)| !c.is_ascii_digit())
                        .take_while(|(_, c)| c.is_ascii_digit())
                        .last()
                        .map(|(k, _)| k),
                )
                .min();
            let Some(rel) = rel else { continue };
            let start = m.start() + rel;
            // "in the corner of the bar" is no address: a corner of streets has a number by it.
            let near: String = text[start..].chars().take(60).collect();
            if lower.starts_with("the corner") && !near.bytes().any(|b| b.is_ascii_digit()) {
                continue;
            }
            let end = address_block_end(text, start);
            if end > start {
                out.push(Candidate::new(
                    start,
                    end,
                    PhiType::Location,
                    "location.address_block",
                    P_PLACE,
                ));
            }
        }
        self.address_lines(text, out);
        for m in self.address_cue.find_iter(text) {
            let start = m.end() + (text[m.end()..].len() - text[m.end()..].trim_start().len());
            // "address: none", "we will address his anxiety": no number, no address.
            let head: String = text[start..].chars().take(60).collect();
            let cue = m.as_str().trim_end();
            let addressy = head.bytes().any(|b| b.is_ascii_digit())
                && (cue.ends_with(':') || !cue.to_ascii_lowercase().ends_with("address"));
            if !addressy {
                continue;
            }
            let end = address_block_end(text, start);
            if end > start {
                out.push(Candidate::new(
                    start,
                    end,
                    PhiType::Location,
                    "location.address_block",
                    P_PLACE,
                ));
            }
        }
    }

    /// An address written as a block of lines without a cue: a line that opens with a house number
    /// and holds a second number ("41086 Kiannonkatu 98", "228 Ringvej 144") or a box ("PSC 1437,
    /// Box 3833"), and the short lines under it (unit, town, region, country and postcode).
    fn address_lines(&self, text: &str, out: &mut Vec<Candidate>) {
        // Each line once, without allocating: most lines fail on their first byte.
        let starts_block = |body: &str| -> bool {
            let content = body.trim_start_matches([' ', '\t', '>', '?']);
            let first = content.as_bytes().first().copied().unwrap_or(b' ');
            if !(first.is_ascii_digit() || matches!(first | 0x20, b'p' | b'u')) {
                return false;
            }
            let mut words = content.split_whitespace();
            let w0 = words.next().unwrap_or("");
            let w1 = words.next().unwrap_or("");
            let mut n = usize::from(!w0.is_empty()) + usize::from(!w1.is_empty());
            let mut second_number = false;
            for w in words {
                n += 1;
                let w = w.trim_end_matches([',', '.']);
                second_number |= !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
            }
            let numbered = (1..=6).contains(&w0.len()) && w0.bytes().all(|b| b.is_ascii_digit());
            let boxed = !w1.is_empty()
                && matches!(
                    w0.to_ascii_lowercase().as_str(),
                    "psc" | "unit" | "usns" | "uss"
                )
                && (w1.starts_with(|c: char| c.is_ascii_digit()) || w0.len() > 3);
            (numbered && second_number || boxed) && (3..=9).contains(&n)
        };
        let mut at = 0;
        while at < text.len() {
            let line_end = text[at..].find('\n').map_or(text.len(), |e| at + e);
            let body = text[at..line_end].trim_end();
            if !starts_block(body) {
                at = line_end + 1;
                continue;
            }
            let lead = body.len() - body.trim_start_matches([' ', '\t', '>', '?']).len();
            let start = at + lead;
            let mut end = at + body.len();
            let mut next = line_end + 1;
            // Short lines under it, up to a blank line or one that opens a field ("Phone:").
            for _ in 0..5 {
                if next >= text.len() {
                    break;
                }
                let e = text[next..].find('\n').map_or(text.len(), |x| next + x);
                let b = text[next..e].trim_end();
                let content = b.trim_start_matches([' ', '\t', '>', '?']);
                let n = content.split_whitespace().count();
                if n == 0 || n > 5 || content.contains(':') || content.contains(". ") {
                    break;
                }
                end = next + b.len();
                next = e + 1;
            }
            out.push(Candidate::new(
                start,
                end,
                PhiType::Location,
                "location.address_lines",
                P_PLACE,
            ));
            at = next;
        }
    }

    fn addresses(&self, text: &str, st: &Stats, out: &mut Vec<Candidate>) {
        for m in gate(st.number_word, text)
            .into_iter()
            .flat_map(|t| self.address.find_iter(t))
        {
            out.push(Candidate::new(
                m.start(),
                address_tail(text, m.end()),
                PhiType::Location,
                "location.street_address",
                P_SHAPE,
            ));
        }
        for m in gate(st.box_word, text)
            .into_iter()
            .flat_map(|t| self.po_box.find_iter(t))
        {
            hit(out, &m, PhiType::Location, "location.po_box", P_SHAPE);
        }
        for c in gate(st.max_run >= 5, text)
            .into_iter()
            .flat_map(|t| self.zip_state.captures_iter(t))
            .chain(
                gate(st.max_run >= 5, text)
                    .into_iter()
                    .flat_map(|t| self.zip_keyword.captures_iter(t)),
            )
        {
            let g = c.get(1).expect("group");
            out.push(Candidate::new(
                g.start(),
                g.end(),
                PhiType::Location,
                "location.zip",
                P_SHAPE,
            ));
        }
    }
}

/// Cheap facts about a window that tell which rules cannot match in it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    digits: usize,
    max_run: usize,
    dots: usize,
    upper: usize,
    long_token: usize,
    dashes: bool,
    slashes: bool,
    hash: bool,
    /// An upper-case letter right before a digit or "-digit" ("MS-123").
    upper_digit: bool,
    /// A digit right before an upper-case letter or "-LETTER" ("12345-JHU").
    digit_upper: bool,
    /// A two- or three-digit number starting 9 or 1 (ages 90-129).
    age_like: bool,
    /// A number then a space or hyphen and a month's initial ("4 Mar", "12-Dec").
    digit_month: bool,
    /// A number then st/nd/rd/th.
    ordinal: bool,
    /// A number then a space and a capital or digit ("123 Main").
    number_word: bool,
    /// "box" in any case (P.O. Box).
    box_word: bool,
    /// An '@' (email).
    at: bool,
    /// A letter or digit, a dot, two letters ("example.com").
    dotted: bool,
    /// Colons between hex digits or doubled (IPv6, MAC).
    hex_colons: usize,
    /// Two capitals then two digits (an IBAN's country and check digits).
    iban_like: bool,
    /// A two-digit group between dashes or spaces (an SSN's middle).
    ssn_like: bool,
    /// Digit runs of three or more.
    runs3: usize,
    /// Digit runs of four or more.
    runs4: usize,
}

impl Stats {
    fn of(w: &str) -> Stats {
        let b = w.as_bytes();
        let at = |k: usize| b.get(k).copied().unwrap_or(0);
        let mut st = Stats::default();
        let (mut run, mut tok) = (0usize, 0usize);
        for (i, &c) in b.iter().enumerate() {
            // Most bytes are lower-case letters, which only lengthen the current token.
            if c.is_ascii_lowercase() && c != b'b' {
                tok += 1;
                continue;
            }
            if c.is_ascii_digit() {
                st.digits += 1;
                run += 1;
                tok += 1;
                st.max_run = st.max_run.max(run);
                let (n1, n2) = (at(i + 1), at(i + 2));
                if n1.is_ascii_digit() {
                    continue;
                }
                // The run ends here: look at what follows it.
                st.runs3 += usize::from(run >= 3);
                st.runs4 += usize::from(run >= 4);
                if run == 2
                    && i >= 2
                    && matches!(b[i - 2], b'-' | b' ')
                    && matches!(n1, b'-' | b' ')
                {
                    st.ssn_like = true;
                }
                if (2..=3).contains(&run) && matches!(b[i + 1 - run], b'9' | b'1') {
                    st.age_like = true;
                }
                run = 0;
                match n1 {
                    b' ' | b'\t' | b'-' => {
                        if matches!(
                            n2 | 0x20,
                            b'j' | b'f' | b'm' | b'a' | b's' | b'o' | b'n' | b'd'
                        ) {
                            st.digit_month = true;
                        }
                        if n1 == b' ' && (n2.is_ascii_uppercase() || n2.is_ascii_digit()) {
                            st.number_word = true;
                        }
                        if n1 == b'-' && n2.is_ascii_uppercase() {
                            st.digit_upper = true;
                        }
                    }
                    b'A'..=b'Z' => st.digit_upper = true,
                    _ => {}
                }
                if matches!(
                    (n1 | 0x20, n2 | 0x20),
                    (b's', b't') | (b'n', b'd') | (b'r', b'd') | (b't', b'h')
                ) {
                    st.ordinal = true;
                }
                continue;
            }
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    st.long_token = st.long_token.max(tok);
                    tok = 0;
                    continue;
                }
                b'A'..=b'Z' => {
                    st.upper += 1;
                    if at(i + 1).is_ascii_uppercase()
                        && at(i + 2).is_ascii_digit()
                        && at(i + 3).is_ascii_digit()
                    {
                        st.iban_like = true;
                    }
                    if c == b'B' && at(i + 1) | 0x20 == b'o' && at(i + 2) | 0x20 == b'x' {
                        st.box_word = true;
                    }
                    let n1 = at(i + 1);
                    if n1.is_ascii_digit() || n1 == b'-' && at(i + 2).is_ascii_digit() {
                        st.upper_digit = true;
                    }
                }
                b'.' => {
                    st.dots += 1;
                    if i > 0
                        && b[i - 1].is_ascii_alphanumeric()
                        && at(i + 1).is_ascii_alphabetic()
                        && at(i + 2).is_ascii_alphabetic()
                    {
                        st.dotted = true;
                    }
                }
                b'@' => st.at = true,
                b':' => {
                    let hexish = |x: u8| x.is_ascii_hexdigit() || x == b':';
                    if i > 0 && hexish(b[i - 1]) && hexish(at(i + 1)) {
                        st.hex_colons += 1;
                    }
                }
                b'-' => st.dashes = true,
                b'/' => st.slashes = true,
                b'#' => st.hash = true,
                b'b' if at(i + 1) | 0x20 == b'o' && at(i + 2) | 0x20 == b'x' => {
                    st.box_word = true;
                }
                _ => {}
            }
            tok += 1;
        }
        st.long_token = st.long_token.max(tok);
        st
    }
}

/// `Some(text)` when `cond` holds: a rule that cannot match is not even started.
fn gate(cond: bool, text: &str) -> Option<&str> {
    cond.then_some(text)
}

/// A candidate covering the whole match `m`.
fn hit(
    out: &mut Vec<Candidate>,
    m: &regex::Match<'_>,
    kind: PhiType,
    rule: &'static str,
    priority: u8,
) {
    out.push(Candidate::new(m.start(), m.end(), kind, rule, priority));
}

fn shift(cands: &mut [Candidate], by: usize) {
    for c in cands {
        c.span.start += by;
        c.span.end += by;
    }
}

/// Merged byte ranges around every run of digits, snapped to whitespace so no word is cut: the
/// digit-bearing word and its neighbouring words, widened by `context` bytes.
const MERGE_GAP: usize = 0;

fn windows(text: &str, context: usize) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out: Vec<(usize, usize)> = Vec::new();
    let word_start = |mut i: usize| {
        while i > 0 && !b[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    let word_end = |mut i: usize| {
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while i < b.len() {
        i = next_digit(b, i);
        if i == b.len() {
            break;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        // One word either side ("(555) 123-4567", "GB82 WEST 1234"), plus the context.
        let mut hi = word_end(i);
        hi = word_end((hi + 1).min(b.len()));
        hi = word_end((hi + context).min(b.len()));
        match out.last_mut() {
            // Inside the current window: only its end can move, no need to look back.
            Some(last) if s < last.1 => last.1 = last.1.max(hi),
            _ => {
                let lo = word_start(word_start(s).saturating_sub(1).saturating_sub(context));
                match out.last_mut() {
                    // Windows a few words apart share one call per rule: a call costs more than the bytes.
                    Some(last) if lo <= last.1 + MERGE_GAP => last.1 = last.1.max(hi),
                    _ => out.push((lo, hi)),
                }
            }
        }
    }
    // Each window costs a call per rule: when windows cover most of the text, one pass is cheaper.
    let covered: usize = out.iter().map(|(a, b)| b - a).sum();
    if out.len() > 1 && covered * 4 > b.len() * 3 {
        out.clear();
        out.push((0, b.len()));
    }
    out
}

/// The index of the first ASCII digit at or after `i` (`b.len()` when none): eight bytes at a time,
/// since digits are rare in a note.
fn next_digit(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // Digits become 0..=9; any byte below 10 sets a high bit here (exact for "any byte").
        let x = w ^ (0x30 * ONES);
        if x.wrapping_sub(10 * ONES) & !x & HIGH != 0 {
            break;
        }
        i += 8;
    }
    while i < b.len() && !b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Dates said in words, any case: an ordinal or a number word beside a month name, with a year in
/// words after it ("the twentieth of February, nineteen fifty eight", "january tenth two thousand
/// nine", "august sixteen, nineteen seventy six", "fourth October").
fn spoken_date_pattern() -> String {
    let units = "one|two|three|four|five|six|seven|eight|nine";
    let ord_units = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth";
    let ordinal = format!(
        "(?:{ord_units}|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth|(?:twenty|thirty)[ -]?(?:{ord_units}))"
    );
    let cardinal = format!(
        "(?:{units}|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|(?:twenty|thirty)[ -]?(?:{units}))"
    );
    let tens = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety";
    let year = format!(
        "(?:(?:nineteen|twenty|two[ -]thousand(?:[ -]and)?)(?:[ -](?:{tens}|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|oh|{units}))?(?:[ -](?:{units}))?|(?:{tens})[ -](?:{units}))"
    );
    let month =
        "january|february|march|april|may|june|july|august|september|october|november|december";
    let sep = r"[ \t]*,?[ \t]*(?:(?:um|uh),?[ \t]*)?";
    format!(
        r"(?i)\b(?:(?:the[ \t]+)?{ordinal}{sep}(?:of[ \t]+)?(?:{month})|{cardinal}{sep}of[ \t]+(?:{month})|(?:{month}){sep}(?:the[ \t]+)?(?:{ordinal}|{cardinal}))\b(?:{sep}(?:of[ \t]+)?{year}\b)?|\b(?:{month}){sep}of[ \t]+{year}\b"
    )
}

/// Numbers in words, as a house number or a date is said.
pub(crate) const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
];

/// A date of birth said in words after the question or the label: "date of birth? -- six, twelve,
/// uh, eighty", "DOB: oh nine two nine eighty-three", "date of birth? .\nPatient: Yeah. May".
fn spoken_birth_dates(text: &str, out: &mut Vec<Candidate>) {
    const CUES: &[&str] = &[
        "date of birth",
        "birth date",
        "birthdate",
        "dob",
        "d.o.b",
        "birthday",
    ];
    const FILLERS: &[&str] = &[
        "uh", "um", "er", "erm", "yeah", "yes", "it's", "its", "it", "is", "so", "okay", "ok",
        "and", "mine", "my", "the",
    ];
    // Besides the numbers of `NUMBER_WORDS`: a spoken zero, thousands, ordinals and "of".
    const DATE_WORDS: &[&str] = &[
        "oh",
        "zero",
        "thousand",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
        "thirtieth",
        "of",
    ];
    static ASKED: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let asked = ASKED.get_or_init(|| re(r"(?i)birth|d\.?o\.?b"));
    if !asked.is_match(text) {
        return;
    }
    let lower = text.to_ascii_lowercase();
    for cue in CUES {
        let mut from = 0;
        while let Some(k) = lower[from..].find(cue) {
            let at = from + k + cue.len();
            from = at;
            // The answer: the rest of the cue's line after "?" or ":", or the next line.
            let mut i = at;
            let line_end = lower[at..].find('\n').map_or(lower.len(), |e| at + e);
            let rest = lower[at..line_end].trim_start_matches([' ', '?', ':', '.', ',', '-']);
            if rest.trim().is_empty() && line_end < lower.len() {
                i = line_end + 1;
                // A speaker label opens the answer ("Patient:", "[patient]").
                let next_end = lower[i..].find('\n').map_or(lower.len(), |e| i + e);
                let line = &lower[i..next_end];
                if let Some(c) = line.find([':', ']']).filter(|&c| c < 24) {
                    i += c + 1;
                }
            }
            let mut first = None;
            let mut last = i;
            let mut date_words = 0;
            let mut month = false;
            let mut j = i;
            let limit = (i + 80).min(lower.len());
            while j < limit {
                let b = lower.as_bytes()[j];
                if matches!(b, b' ' | b'\t' | b',' | b'.' | b'-' | b'/') {
                    if b == b'.' && lower[j + 1..].starts_with(['\n']) {
                        break;
                    }
                    j += 1;
                    continue;
                }
                let w_end = lower[j..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '\''))
                    .map_or(lower.len(), |e| j + e);
                if w_end == j {
                    break;
                }
                let w = &lower[j..w_end];
                let is_month = matches!(
                    w,
                    "january"
                        | "february"
                        | "march"
                        | "april"
                        | "may"
                        | "june"
                        | "july"
                        | "august"
                        | "september"
                        | "october"
                        | "november"
                        | "december"
                        | "jan"
                        | "feb"
                        | "apr"
                        | "jun"
                        | "jul"
                        | "aug"
                        | "sep"
                        | "sept"
                        | "oct"
                        | "nov"
                        | "dec"
                );
                let number = NUMBER_WORDS.contains(&w)
                    || DATE_WORDS.contains(&w)
                    || w.bytes().all(|b| b.is_ascii_digit()) && w.len() <= 4;
                if is_month || number {
                    if w != "of" {
                        first.get_or_insert(j);
                        last = w_end;
                        date_words += 1;
                    }
                    month |= is_month;
                } else if !FILLERS.contains(&w) || first.is_some() && w != "uh" && w != "um" {
                    break;
                }
                j = w_end;
            }
            if let Some(s) = first
                && (date_words >= 2 || month)
            {
                out.push(Candidate::new(
                    s,
                    last,
                    PhiType::Date,
                    "date.spoken_birth",
                    P_DATE,
                ));
            }
        }
    }
}

/// "cabg 8/98", "mi in 10/88": a month and a two-digit year that cannot be a day, after a word.
fn month_short_year(text: &str, start: usize, end: usize, c: &Captures<'_>) -> bool {
    let (a, b): (u32, u32) = (c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0));
    // x/52 is weeks in British notes ("LMP 2/52 ago").
    if !(1..=12).contains(&a) || b < 32 || b == 52 || c[2].len() != 2 {
        return false;
    }
    let prev = byte_before(text, start);
    let next = byte(text, end);
    let next_digit = byte(text, end + 1).is_ascii_digit();
    if matches!(prev, b'/' | b'.' | b':' | b'x' | b'X')
        || matches!(next, b'/' | b'%')
        || next == b'.' && next_digit
    {
        return false;
    }
    let pre = before(text, start, 12);
    let post = after(text, end, 6).to_ascii_lowercase();
    let word_before = pre
        .trim_end()
        .ends_with(|ch: char| ch.is_ascii_alphabetic());
    let unit_after = [
        "mg", "ml", "mm", "cc", "%", "mcg", "units", "ago", "course", "hx",
    ]
    .iter()
    .any(|u| post.trim_start().starts_with(u));
    word_before && !unit_after
}

/// A word with its first letter upper case and the rest lower case ("MARCH", "march" -> "March").
fn title_case(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    for (i, c) in w.chars().enumerate() {
        if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// "may 5 times", "pt may 2 more" are a verb and a count; "May 5", "may 16th", "may 5, 2021" are dates.
fn is_may_verb(s: &str) -> bool {
    // "may 10th", "may 10 2022": an ordinal or a year makes the month.
    let ordinal = s.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
        w.len() > 2
            && ["st", "nd", "rd", "th"].iter().any(|o| w.ends_with(o))
            && w.as_bytes()[0].is_ascii_digit()
    });
    let year = s.split(|c: char| !c.is_ascii_digit()).any(|w| w.len() == 4);
    (s.starts_with("may ") || s.starts_with("mar "))
        && !s.contains([',', '\''])
        && !ordinal
        && !year
}

/// Where an address announced by a cue ends (see `address_blocks`).
fn address_block_end(text: &str, start: usize) -> usize {
    let limit = (start + 200).min(text.len());
    let b = text.as_bytes();
    let mut i = start;
    let mut end = start;
    while i < limit {
        let c = b[i];
        if c == b'\n' {
            let rest = &text[i + 1..];
            let line = rest.trim_start_matches([' ', '\t']);
            // A blank line, or a line that opens another field.
            if line.starts_with('\n')
                || line.split('\n').next().is_some_and(|l| {
                    l.find(':')
                        .is_some_and(|k| k < 24 && !l[..k].bytes().any(|x| x.is_ascii_digit()))
                })
            {
                break;
            }
        }
        if matches!(c, b'.' | b'?' | b'!' | b';') {
            // A sentence ends at a stop before a new word ("... Goiania. It serves", "12 elm st. she
            // said"), not inside "Apt. 595", "ul. Miła", "u. 15." or "St. Georges".
            let word_before = text[start..i]
                .rsplit(|ch: char| !ch.is_alphanumeric())
                .next()
                .unwrap_or("")
                .to_lowercase();
            let after = &text[i + 1..];
            let next_word = after
                .strip_prefix(' ')
                .unwrap_or("")
                .split(|ch: char| !ch.is_alphabetic())
                .next()
                .unwrap_or("");
            let unit = matches!(
                word_before.as_str(),
                "apt" | "ste" | "no" | "u" | "ul" | "bldg" | "rm" | "fl" | "dept"
            ) || word_before.chars().count() == 1
                && word_before.chars().all(char::is_alphabetic);
            let street = matches!(
                word_before.as_str(),
                "st" | "ave" | "rd" | "blvd" | "dr" | "ln" | "str" | "pl" | "ct" | "mt" | "ft"
            );
            let lower_word =
                next_word.chars().count() >= 2 && next_word.chars().all(char::is_lowercase);
            let title_word = next_word.chars().next().is_some_and(char::is_uppercase)
                && next_word.chars().skip(1).any(char::is_lowercase);
            let sentence =
                c != b'.' || after.is_empty() || !unit && (lower_word || title_word && !street);
            if sentence {
                break;
            }
        }
        // ", with a birth date of", ", who was seen", " (phone: ...)": the address is over.
        if c == b'(' && i > start {
            break;
        }
        if c == b',' {
            let next = text[i + 1..].trim_start_matches(' ');
            let word = next
                .split(|ch: char| !ch.is_alphabetic())
                .next()
                .unwrap_or("")
                .to_lowercase();
            if matches!(
                word.as_str(),
                "with"
                    | "who"
                    | "which"
                    | "where"
                    | "and"
                    | "but"
                    | "since"
                    | "on"
                    | "for"
                    | "when"
                    | "was"
                    | "is"
                    | "has"
                    | "had"
                    | "currently"
                    | "presenting"
                    | "diagnosed"
                    | "seen"
                    | "admitted"
                    | "treated"
                    | "phone"
                    | "tel"
                    | "email"
                    | "dob"
                    | "mrn"
            ) {
                break;
            }
        }
        if !c.is_ascii_whitespace() && !matches!(c, b',' | b'.' | b')' | b'(' | b'"') {
            // The end of the character starting here.
            let mut k = i + 1;
            while k < text.len() && !text.is_char_boundary(k) {
                k += 1;
            }
            end = k;
            i = k;
            continue;
        }
        if c == b'.' && end == i {
            // Keep an abbreviation's period inside ("Apt.").
            end = i + 1;
        }
        i += 1;
    }
    end
}

/// An address block goes on after the street: unit, city, region, postcode, country ("Suite 4,
/// Springfield, IL 62704"). Consumes capitalised words, unit words, short numbers and separators until
/// a lower-case word or the end of a sentence.
fn address_tail(text: &str, mut end: usize) -> usize {
    const UNIT: &[&str] = &[
        "apt",
        "apartment",
        "suite",
        "ste",
        "unit",
        "room",
        "rm",
        "fl",
        "floor",
        "bldg",
        "building",
        "po",
        "box",
    ];
    const PARTICLES: &[&str] = &[
        "de", "du", "des", "la", "le", "van", "von", "der", "del", "di", "da", "u", "v", "am",
        "im", "sur", "en",
    ];
    let bytes = text.as_bytes();
    let mut words = 0;
    loop {
        let rest = &text[end..];
        let sep_len = rest.len() - rest.trim_start_matches([' ', '\t', ',', '>', '\n']).len();
        let sep = &rest[..sep_len];
        if sep.matches('\n').count() > 1
            || sep.is_empty() && end < text.len() && !bytes[end].is_ascii_whitespace()
        {
            break;
        }
        let word_start = end + sep_len;
        let word: &str = text[word_start..]
            .split(|c: char| {
                c.is_whitespace() || c == ',' || c == '>' || c == '?' || c == '!' || c == ';'
            })
            .next()
            .unwrap_or("");
        let bare = word.trim_end_matches('.');
        if bare.is_empty() || words >= 12 {
            break;
        }
        let first = bare.chars().next().unwrap_or(' ');
        let lower = bare.to_lowercase();
        let ok = first.is_uppercase()
            || UNIT.contains(&lower.as_str())
            || PARTICLES.contains(&lower.as_str())
            || bare.len() <= 10
                && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && bare.chars().any(|c| c.is_ascii_digit());
        if !ok {
            break;
        }
        end = word_start + bare.len();
        words += 1;
        // A period that ends the word ends the sentence, unless it abbreviates ("Apt.").
        if word.len() > bare.len()
            && !UNIT.contains(&lower.as_str())
            && !(bare.chars().count() <= 3 && first.is_uppercase())
        {
            break;
        }
        if word.len() > bare.len() {
            end += 1;
        }
    }
    end
}

#[cfg(test)]
mod scan {
    #[test]
    fn next_digit_agrees_with_a_byte_loop() {
        let texts = [
            "".as_bytes().to_vec(),
            b"no digits in this note at all, none".to_vec(),
            b"abcdefgh9".to_vec(),
            b"/:;<=>?@`{|}~ 0".to_vec(),
            "caf\u{e9} \u{1f44d} \u{0660}\u{0966} 7".as_bytes().to_vec(),
            (0u8..=255).collect(),
            (0u8..=255).rev().collect(),
        ];
        for t in &texts {
            for i in 0..=t.len() {
                let want = (i..t.len())
                    .find(|&k| t[k].is_ascii_digit())
                    .unwrap_or(t.len());
                assert_eq!(super::next_digit(t, i), want, "{t:?} from {i}");
            }
        }
    }
}

#[cfg(test)]
mod timing {
    /// Times each rule over a corpus; run with `cargo test --release -p readi-agent timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn time_each_rule() {
        let p = super::Patterns::new();
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/phi/scq-dev.jsonl"
        ))
        .unwrap_or_default();
        let text = body.repeat(4);
        let rules: Vec<(&str, &regex::Regex)> = vec![
            ("email", &p.email),
            ("url", &p.url),
            ("domain", &p.domain),
            ("ipv4", &p.ipv4),
            ("ipv6", &p.ipv6),
            ("mac", &p.mac),
            ("phone", &p.phone),
            ("phone_intl", &p.phone_intl),
            ("phone_keyed", &p.phone_keyed),
            ("pager", &p.pager),
            ("ssn", &p.ssn),
            ("card", &p.card),
            ("iban", &p.iban),
            ("vin", &p.vin),
            ("dea", &p.dea),
            ("keyed", &p.keyed),
            ("shape_alpha_num", &p.shape_alpha_num),
            ("shape_num_alpha", &p.shape_num_alpha),
            ("dashed_digits", &p.dashed_digits),
            ("hash_digits", &p.hash_digits),
            ("shape_any_case", &p.shape_any_case),
            ("address_cue", &p.address_cue),
            ("address_sent", &p.address_sent),
            ("postcode_spoken", &p.postcode_spoken),
            ("email_spoken", &p.email_spoken),
            ("long_digits", &p.long_digits),
            ("date_month_day", &p.date_month_day),
            ("date_day_month", &p.date_day_month),
            ("date_month_year", &p.date_month_year),
            ("date_numeric", &p.date_numeric),
            ("date_iso", &p.date_iso),
            ("date_short", &p.date_short),
            ("date_word", &p.date_word),
            ("date_ordinal", &p.date_ordinal),
            ("age_unit", &p.age_unit),
            ("age_keyword", &p.age_keyword),
            ("address", &p.address),
            ("po_box", &p.po_box),
            ("zip_state", &p.zip_state),
            ("zip_keyword", &p.zip_keyword),
            ("county", &p.county),
        ];
        let mut times: Vec<_> = rules
            .iter()
            .map(|(n, r)| {
                let t = std::time::Instant::now();
                let c = r.find_iter(&text).count();
                (t.elapsed().as_secs_f64() * 1e3, *n, c)
            })
            .collect();
        times.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
        for (ms, n, c) in times {
            println!("{ms:8.2} ms {n} ({c})");
        }
        println!("bytes {}", text.len());
    }
}
