//! The `filter` query parameter: the subset of Protime's grammar the sandbox understands.
//!
//! ```text
//! filter    = condition {"and" condition}
//! condition = identifier ("eq" | "ge" | "le") constant
//!           | identifier "in" "(" constant {"," constant} ")"
//! constant  = integer | 'string' (a quote inside is doubled: 'it''s')
//! ```
//!
//! `or`, parentheses around conditions and named lists such as `circle(2, 8)` are part of
//! Protime's grammar but not of the sandbox's: they get `400` with a reason saying so.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use protime_raw::types::{Clocking, ClockingKind, CollectionName, WebhookStatus};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Integer(i64),
    Open,
    Close,
    Comma,
}

fn lex(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            ',' => {
                chars.next();
                tokens.push(Token::Comma);
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string starting at {at}")),
                        Some((_, '\'')) => {
                            if chars.peek().is_some_and(|&(_, c)| c == '\'') {
                                chars.next();
                                text.push('\'');
                            } else {
                                break;
                            }
                        }
                        Some((_, c)) => text.push(c),
                    }
                }
                tokens.push(Token::Text(text));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut number = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_digit() || (c == '-' && number.is_empty()) {
                        number.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let value = number
                    .parse::<i64>()
                    .map_err(|_| format!("'{number}' at {at} is not an integer"))?;
                tokens.push(Token::Integer(value));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character '{other}' at {at}")),
        }
    }
    Ok(tokens)
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ge,
    Le,
    In,
}

/// A constant of a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Constant {
    Integer(i64),
    Text(String),
}

/// `field op value(s)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub(crate) field: String,
    pub(crate) op: Op,
    pub(crate) values: Vec<Constant>,
}

/// Parses a whole filter into its `and`-joined conditions.
pub(crate) fn parse(input: &str) -> Result<Vec<Condition>, String> {
    let tokens = lex(input)?;
    let mut conditions = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    loop {
        let field = match iter.next() {
            Some(Token::Word(w)) => w,
            Some(Token::Open) => {
                return Err(
                    "parentheses around conditions are not supported by the sandbox".into(),
                );
            }
            Some(other) => return Err(format!("expected a field name, found {other:?}")),
            None => return Err("expected a condition".into()),
        };
        let op = match iter.next() {
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => Op::Eq,
                "ge" => Op::Ge,
                "le" => Op::Le,
                "in" => Op::In,
                other => {
                    return Err(format!(
                        "unknown operator '{other}' after '{field}' (eq, ge, le, in)"
                    ));
                }
            },
            _ => return Err(format!("expected an operator after '{field}'")),
        };
        let values = if op == Op::In {
            match iter.next() {
                Some(Token::Open) => {}
                Some(Token::Word(list)) => {
                    return Err(format!(
                        "named lists such as {list}(…) are not supported by the sandbox"
                    ));
                }
                _ => return Err(format!("expected '(' after '{field} in'")),
            }
            let mut values = Vec::new();
            loop {
                match iter.next() {
                    Some(Token::Integer(i)) => values.push(Constant::Integer(i)),
                    Some(Token::Text(t)) => values.push(Constant::Text(t)),
                    _ => return Err(format!("expected a constant in the list of '{field}'")),
                }
                match iter.next() {
                    Some(Token::Comma) => {}
                    Some(Token::Close) => break,
                    _ => return Err(format!("expected ',' or ')' in the list of '{field}'")),
                }
            }
            values
        } else {
            match iter.next() {
                Some(Token::Integer(i)) => vec![Constant::Integer(i)],
                Some(Token::Text(t)) => vec![Constant::Text(t)],
                _ => return Err(format!("expected a constant after '{field}'")),
            }
        };
        conditions.push(Condition { field, op, values });
        match iter.next() {
            None => return Ok(conditions),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {}
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => {
                return Err("'or' is not supported by the sandbox; use 'in (…)'".into());
            }
            Some(other) => return Err(format!("expected 'and', found {other:?}")),
        }
    }
}

/// The parsed filter of `GET /clockings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClockingFilter {
    /// First date, inclusive.
    pub(crate) from: NaiveDate,
    /// Last date, inclusive.
    pub(crate) to: NaiveDate,
    pub(crate) people: Option<BTreeSet<u64>>,
    pub(crate) kinds: Option<BTreeSet<ClockingKind>>,
}

impl ClockingFilter {
    /// Parses and checks a clockings filter. The errors are the `reasons` of a `400`.
    ///
    /// A `date ge` is required. Without `date le`, the range ends one year after it (the
    /// documented examples such as `date ge '2024-12-01'` have no end); with it, the range
    /// may span at most one year.
    pub(crate) fn parse(input: &str) -> Result<Self, Vec<String>> {
        let conditions = parse(input).map_err(|e| vec![format!("invalid filter: {e}")])?;
        let mut reasons = Vec::new();
        let mut from = None;
        let mut to = None;
        let mut people: Option<BTreeSet<u64>> = None;
        let mut kinds: Option<BTreeSet<ClockingKind>> = None;
        for condition in conditions {
            match (condition.field.as_str(), condition.op) {
                ("date", Op::Ge | Op::Le | Op::Eq) => {
                    let date = match condition.values.as_slice() {
                        [Constant::Text(t)] => protime_model::CalendarDate::parse(t),
                        _ => None,
                    };
                    let Some(date) = date.map(protime_model::CalendarDate::get) else {
                        reasons.push("date must be compared with a 'YYYY-MM-DD' string".into());
                        continue;
                    };
                    let mut set = |slot: &mut Option<NaiveDate>, name: &str| {
                        if slot.replace(date).is_some() {
                            reasons.push(format!("date {name} is given twice"));
                        }
                    };
                    match condition.op {
                        Op::Ge => set(&mut from, "ge"),
                        Op::Le => set(&mut to, "le"),
                        _ => {
                            set(&mut from, "ge");
                            set(&mut to, "le");
                        }
                    }
                }
                ("person", Op::Eq | Op::In) => {
                    let mut ids = BTreeSet::new();
                    for value in &condition.values {
                        match value {
                            Constant::Integer(i) if *i >= 1 => {
                                ids.insert(i.unsigned_abs());
                            }
                            _ => reasons
                                .push(format!("person ids are positive integers, found {value:?}")),
                        }
                    }
                    if people.replace(ids).is_some() {
                        reasons.push("person is filtered twice".into());
                    }
                }
                ("kind", Op::Eq | Op::In) => {
                    let mut set = BTreeSet::new();
                    for value in &condition.values {
                        match value {
                            Constant::Text(t) => match t.parse::<ClockingKind>() {
                                Ok(kind) => {
                                    set.insert(kind);
                                }
                                Err(_) => reasons.push(format!(
                                    "unknown kind '{t}' (InOut, Reason, Activity, ActivityEnd)"
                                )),
                            },
                            Constant::Integer(_) => {
                                reasons.push("kind must be compared with a string".into());
                            }
                        }
                    }
                    if kinds.replace(set).is_some() {
                        reasons.push("kind is filtered twice".into());
                    }
                }
                (field @ ("date" | "person" | "kind"), op) => {
                    reasons.push(format!("operator {op:?} is not supported on '{field}'"));
                }
                (field, _) => reasons.push(format!(
                    "unknown filter field '{field}' (date, person, kind)"
                )),
            }
        }
        let from = match from {
            Some(from) => from,
            None => {
                reasons.push(
                    "a date range is required, e.g. date ge '2026-01-01' and date le '2026-01-31'"
                        .into(),
                );
                return Err(reasons);
            }
        };
        let year_later = from.checked_add_months(chrono::Months::new(12));
        let to = match (to, year_later) {
            (Some(to), _) if to < from => {
                reasons.push("the date range ends before it starts".into());
                to
            }
            (Some(to), Some(limit)) if to >= limit => {
                reasons.push("the date range may span at most one year".into());
                to
            }
            (Some(to), _) => to,
            (None, Some(limit)) => limit.pred_opt().unwrap_or(limit),
            (None, None) => {
                reasons.push("the date range is out of bounds".into());
                from
            }
        };
        if reasons.is_empty() {
            Ok(Self {
                from,
                to,
                people,
                kinds,
            })
        } else {
            Err(reasons)
        }
    }

    pub(crate) fn matches(&self, clocking: &Clocking) -> bool {
        (self.from..=self.to).contains(&clocking.date)
            && self
                .people
                .as_ref()
                .is_none_or(|p| p.contains(&clocking.person.id.get()))
            && self
                .kinds
                .as_ref()
                .is_none_or(|k| k.contains(&clocking.kind))
    }
}

/// The parsed filter of `GET /webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WebhookFilter {
    pub(crate) status: Option<WebhookStatus>,
    pub(crate) collection: Option<CollectionName>,
}

impl WebhookFilter {
    /// `status eq 'Enabled'`, `collectionName eq 'clockings'` (also `collection-name`),
    /// joined by `and`.
    pub(crate) fn parse(input: &str) -> Result<Self, Vec<String>> {
        let conditions = parse(input).map_err(|e| vec![format!("invalid filter: {e}")])?;
        let mut filter = Self::default();
        let mut reasons = Vec::new();
        for condition in conditions {
            let text = match (condition.op, condition.values.as_slice()) {
                (Op::Eq, [Constant::Text(t)]) => t.clone(),
                _ => {
                    reasons.push(format!(
                        "'{}' supports only eq with a string",
                        condition.field
                    ));
                    continue;
                }
            };
            match condition.field.to_ascii_lowercase().as_str() {
                "status" => match text.parse::<WebhookStatus>() {
                    Ok(status) => filter.status = Some(status),
                    Err(_) => reasons.push(format!(
                        "unknown status '{text}' (Enabled, Disabled, Uninitialized)"
                    )),
                },
                "collectionname" | "collection-name" => match text.parse::<CollectionName>() {
                    Ok(collection) => filter.collection = Some(collection),
                    Err(_) => reasons.push(format!("unknown collection '{text}'")),
                },
                other => reasons.push(format!(
                    "unknown filter field '{other}' (status, collectionName)"
                )),
            }
        }
        if reasons.is_empty() {
            Ok(filter)
        } else {
            Err(reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_examples() {
        let f = ClockingFilter::parse(
            "person in (1, 2, 3) and date ge '2024-01-01' and date le '2024-12-31'",
        )
        .unwrap();
        assert_eq!(f.from, date("2024-01-01"));
        assert_eq!(f.to, date("2024-12-31"));
        assert_eq!(f.people, Some([1, 2, 3].into_iter().collect()));

        let f = ClockingFilter::parse("date ge '2024-12-01'").unwrap();
        assert_eq!(f.to, date("2025-11-30"));

        let f = ClockingFilter::parse(
            "date ge '2026-01-01' AND date le '2026-01-02' and person eq 7 and kind eq 'Reason'",
        )
        .unwrap();
        assert_eq!(f.people, Some([7].into_iter().collect()));
        assert_eq!(f.kinds, Some([ClockingKind::Reason].into_iter().collect()));

        let f =
            ClockingFilter::parse("date eq '2026-01-02' and kind in ('InOut','Activity')").unwrap();
        assert_eq!((f.from, f.to), (date("2026-01-02"), date("2026-01-02")));
        assert_eq!(f.kinds.unwrap().len(), 2);
    }

    #[test]
    fn rejects_with_reasons() {
        for (filter, needle) in [
            ("person eq 1", "date range is required"),
            (
                "date ge '2024-01-01' and date le '2025-01-01'",
                "at most one year",
            ),
            (
                "date ge '2024-02-01' and date le '2024-01-01'",
                "ends before",
            ),
            ("date ge '2024-02-30'", "YYYY-MM-DD"),
            ("date ge '2024-01-01' or person eq 1", "'or'"),
            (
                "date ge '2024-01-01' and person in circle(2, 8)",
                "named lists",
            ),
            (
                "date ge '2024-01-01' and kind eq 'Teleport'",
                "unknown kind",
            ),
            (
                "date ge '2024-01-01' and colour eq 'red'",
                "unknown filter field",
            ),
            ("date ge '2024-01-01' and", "expected a condition"),
            ("date ge '2024-01-01", "unterminated"),
            ("date gt '2024-01-01'", "unknown operator"),
            ("(date ge '2024-01-01')", "parentheses"),
            ("date ge '2024-01-01' and person eq 0", "positive"),
            ("date ge '2024-01-01' and date ge '2024-01-02'", "twice"),
            ("", "expected a condition"),
            ("date ge '2024-01-01' % 2", "unexpected character"),
        ] {
            let reasons = ClockingFilter::parse(filter).unwrap_err();
            assert!(
                reasons.iter().any(|r| r.contains(needle)),
                "{filter}: {reasons:?}"
            );
        }
    }

    #[test]
    fn quotes_are_doubled() {
        let conditions = parse("name eq 'it''s'").unwrap();
        assert_eq!(conditions[0].values, vec![Constant::Text("it's".into())]);
    }

    #[test]
    fn webhook_filters() {
        let f = WebhookFilter::parse("status eq 'Disabled'").unwrap();
        assert_eq!(f.status, Some(WebhookStatus::Disabled));
        let f =
            WebhookFilter::parse("collectionName eq 'clockings' and status eq 'Enabled'").unwrap();
        assert_eq!(f.collection, Some(CollectionName::Clockings));
        assert!(WebhookFilter::parse("collection-name eq 'clockings'").is_ok());
        assert!(WebhookFilter::parse("status eq 'Sleeping'").is_err());
        assert!(WebhookFilter::parse("status eq").is_err());
        assert!(WebhookFilter::parse("owner eq 'me'").is_err());
        assert!(WebhookFilter::parse("status in ('Enabled')").is_err());
    }
}
