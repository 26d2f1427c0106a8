//! A generated year of written-answer traffic in the API's exact shape, for the backfill test
//! and benchmark: about 60,000 answers a year from 24 departments, among them Ministry of
//! Justice answers whose only keyword lies deep in the answer, other departments' answers that
//! mention prisons in the heading, in the question, in the first lines of the answer or only
//! further down, and answers from every department that must not match. Deterministic: the same
//! seed gives the same year.

use chrono::{Datelike as _, Days, NaiveDate, Weekday};
use serde_json::{json, Value};

/// The Ministry of Justice's answering-body id.
pub const MOJ: i64 = 54;

/// (id, name, share of a year's answers in thousandths). The shares add up to 1,000 and follow
/// the rough size of each department's written-answer load; the Ministry of Justice answers
/// about 7% (some 4,200 a year).
pub const DEPARTMENTS: &[(i64, &str, u32)] = &[
    (17, "Department of Health and Social Care", 120),
    (1, "Home Office", 100),
    (14, "HM Treasury", 70),
    (MOJ, "Ministry of Justice", 70),
    (60, "Department for Education", 70),
    (29, "Department for Work and Pensions", 70),
    (27, "Department for Transport", 55),
    (13, "Department for Environment, Food and Rural Affairs", 55),
    (11, "Ministry of Defence", 50),
    (208, "Foreign, Commonwealth and Development Office", 50),
    (
        7,
        "Ministry of Housing, Communities and Local Government",
        45,
    ),
    (214, "Department for Business and Trade", 40),
    (202, "Department for Energy Security and Net Zero", 35),
    (10, "Department for Culture, Media and Sport", 30),
    (216, "Department for Science, Innovation and Technology", 25),
    (21, "Cabinet Office", 25),
    (53, "Scotland Office", 10),
    (52, "Wales Office", 10),
    (51, "Northern Ireland Office", 10),
    (38, "Attorney General", 10),
    (20, "Leader of the House", 5),
    (203, "Department for Levelling Up", 15),
    (211, "Department for International Trade", 15),
    (24, "Women and Equalities", 15),
];

/// What a generated answer is, which decides where (if anywhere) a keyword appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Ministry of Justice, prisons in the heading, a table of figures.
    MojHeading,
    /// Ministry of Justice, the only keyword deep in a long answer.
    MojDeep,
    /// Ministry of Justice, courts or legal aid: no keyword anywhere.
    MojNone,
    /// Another department, prisons in the heading.
    OtherHeading,
    /// Another department, a keyword in the question only.
    OtherQuestion,
    /// Another department, a keyword in the first lines of the answer.
    OtherLead,
    /// Another department, the only keyword beyond what the list shows (not read, by design).
    OtherDeep,
    /// Another department, nothing about prisons.
    OtherNone,
}

pub struct Generated {
    pub id: i64,
    pub shape: Shape,
    pub record: Value,
}

/// A year of answers from `start` (Monday to Thursday mostly, some on Fridays), ids from
/// `first_id`. `per_year` is the number of answers.
pub fn year(seed: u64, start: NaiveDate, per_year: usize, first_id: i64) -> Vec<Generated> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let days: Vec<NaiveDate> = (0..365)
        .map(|i| start + Days::new(i))
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect();
    let total_share: u32 = DEPARTMENTS.iter().map(|d| d.2).sum();
    (0..per_year)
        .map(|i| {
            let id = first_id + i as i64;
            let day = days[i * days.len() / per_year];
            let mut pick = rng.u32(0..total_share);
            let &(body, body_name, _) = DEPARTMENTS
                .iter()
                .find(|d| {
                    if pick < d.2 {
                        true
                    } else {
                        pick -= d.2;
                        false
                    }
                })
                .expect("shares add up");
            let roll = rng.u32(0..1000);
            let shape = if body == MOJ {
                match roll {
                    0..=299 => Shape::MojHeading,
                    300..=449 => Shape::MojDeep,
                    _ => Shape::MojNone,
                }
            } else {
                match roll {
                    0..=4 => Shape::OtherHeading,
                    5..=9 => Shape::OtherQuestion,
                    10..=14 => Shape::OtherLead,
                    15..=17 => Shape::OtherDeep,
                    _ => Shape::OtherNone,
                }
            };
            let record = build(&mut rng, id, day, body, body_name, shape);
            Generated { id, shape, record }
        })
        .collect()
}

const TOPICS: &[&str] = &[
    "Flood Defences",
    "Schools: Buildings",
    "Income Tax: Thresholds",
    "Rivers: Pollution",
    "Bus Services",
    "Broadband: Rural Areas",
    "Hospitals: Waiting Lists",
    "Pensions: Uprating",
    "Armed Forces: Housing",
    "Energy: Prices",
    "Apprenticeships",
    "Museums: Admission Charges",
];

const COURT_TOPICS: &[&str] = &[
    "Courts: Buildings",
    "Legal Aid Scheme",
    "Family Courts: Delays",
    "Tribunals: Staff",
    "Coroners",
    "Magistrates: Recruitment",
];

const FILLER: &[&str] = &[
    "The department keeps this matter under regular review and will publish further information in due course.",
    "Funding allocations for the next financial year were set out in the spending review and are published on GOV.UK.",
    "Officials continue to work closely with local authorities, industry partners and the devolved administrations.",
    "The information requested is not held centrally and could be obtained only at disproportionate cost.",
    "We have committed to consulting on these proposals and will set out our response to the consultation shortly.",
    "Decisions on individual cases are taken by the relevant operational bodies in line with published guidance.",
];

fn filler(rng: &mut fastrand::Rng, sentences: usize) -> String {
    (0..sentences)
        .map(|_| FILLER[rng.usize(0..FILLER.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn figures_table(rng: &mut fastrand::Rng) -> String {
    let rows: String = (2019..2024)
        .map(|y| format!("<tr><td>{y}</td><td>{}</td></tr>", rng.u32(10..900)))
        .collect();
    format!("<table><thead><tr><th>Year</th><th>Incidents</th></tr></thead><tbody>{rows}</tbody></table>")
}

fn build(
    rng: &mut fastrand::Rng,
    id: i64,
    day: NaiveDate,
    body: i64,
    body_name: &str,
    shape: Shape,
) -> Value {
    let pick = |rng: &mut fastrand::Rng, xs: &[&str]| xs[rng.usize(0..xs.len())].to_owned();
    let (heading, question, answer) = match shape {
        Shape::MojHeading => (
            "Prisons: Drugs".to_owned(),
            "To ask the Secretary of State for Justice, how many drug finds there have been in prisons in each of the last five years.".to_owned(),
            format!("<p>The number of drug finds in each year is set out below.</p>{}<p>{}</p>", figures_table(rng), filler(rng, 1)),
        ),
        Shape::MojDeep => (
            "Ministry of Justice: Public Appointments".to_owned(),
            "To ask the Secretary of State for Justice, how many public appointments his department made in the last year.".to_owned(),
            format!("<p>{}</p><p>{}</p><p>Of those appointed, twelve sit on the Independent Monitoring Board of HMP Wandsworth.</p>", filler(rng, 3), filler(rng, 2)),
        ),
        Shape::MojNone => (
            pick(rng, COURT_TOPICS),
            "To ask the Secretary of State for Justice, what steps he is taking to reduce delays in the family courts.".to_owned(),
            format!("<p>{}</p><p>{}</p>", filler(rng, 2), filler(rng, 1)),
        ),
        Shape::OtherHeading => (
            "Prisons: Foreign Nationals".to_owned(),
            format!("To ask the {body_name}, how many foreign nationals were removed in the last year."),
            format!("<p>{}</p>", filler(rng, 2)),
        ),
        Shape::OtherQuestion => (
            "Deportation".to_owned(),
            format!("To ask the {body_name}, how many people released from prison were deported within a month."),
            format!("<p>{}</p>", filler(rng, 2)),
        ),
        Shape::OtherLead => (
            "Mental Health Services".to_owned(),
            format!("To ask the {body_name}, what assessment has been made of waiting times for mental health services."),
            format!("<p>NHS England commissions healthcare for people in prisons in England.</p><p>{}</p>", filler(rng, 2)),
        ),
        Shape::OtherDeep => (
            pick(rng, TOPICS),
            format!("To ask the {body_name}, what recent assessment has been made of this policy."),
            format!("<p>{}</p><p>{}</p><p>This includes a small number of sites near prisons.</p>", filler(rng, 3), filler(rng, 2)),
        ),
        Shape::OtherNone => (
            pick(rng, TOPICS),
            format!("To ask the {body_name}, what recent assessment has been made of this policy."),
            format!("<p>{}</p><p>{}</p>", filler(rng, 2), filler(rng, 1)),
        ),
    };
    let date = format!("{day}T00:00:00");
    let house = if rng.u32(0..6) == 0 {
        "Lords"
    } else {
        "Commons"
    };
    json!({
        "id": id,
        "askingMemberId": 4000 + rng.i64(0..650),
        "askingMember": null,
        "house": house,
        "memberHasInterest": false,
        "dateTabled": format!("{}T00:00:00", day - Days::new(7)),
        "dateForAnswer": date,
        "uin": if house == "Lords" { format!("HL{}", id % 100_000) } else { format!("{}", id % 1_000_000) },
        "questionText": question,
        "answeringBodyId": body,
        "answeringBodyName": body_name,
        "isWithdrawn": false,
        "isNamedDay": false,
        "groupedQuestions": [],
        "answerIsHolding": false,
        "answerIsCorrection": false,
        "answeringMemberId": 4800 + rng.i64(0..100),
        "answeringMember": null,
        "correctingMemberId": null,
        "correctingMember": null,
        "dateAnswered": date,
        "answerText": answer,
        "originalAnswerText": null,
        "comparableAnswerText": null,
        "dateAnswerCorrected": null,
        "dateHoldingAnswer": null,
        "attachmentCount": 0,
        "heading": heading,
        "attachments": [],
        "groupedQuestionsDates": [],
    })
}
