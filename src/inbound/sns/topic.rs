//! SNS topic ARNs and the `SNS_TOPIC_ARNS` allow list (exact ARNs, `*` only as a whole
//! region; empty means the service's own account, `*` alone any topic), so the server only
//! acts on topics it was told to expect.

use std::fmt;
use std::str::FromStr;

use super::error::SnsError;

/// Why a topic ARN or allow-list entry was rejected. Names the part, never echoes input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SNS topic ARN: {0}")]
pub struct ArnError(pub &'static str);

/// A parsed `arn:<partition>:sns:<region>:<account>:<name>`; keeps the original text so
/// the string to sign and logs use it verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicArn {
    raw: String,
    // Byte ranges into `raw` would save allocations; topics are short, clarity wins.
    partition: String,
    region: String,
    account: String,
    name: String,
}

impl TopicArn {
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let parts = split_arn(s)?;
        validate_partition(parts[1])?;
        validate_region(parts[3])?;
        validate_account(parts[4])?;
        validate_name(parts[5])?;
        Ok(TopicArn {
            raw: s.to_owned(),
            partition: parts[1].to_owned(),
            region: parts[3].to_owned(),
            account: parts[4].to_owned(),
            name: parts[5].to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn partition(&self) -> &str {
        &self.partition
    }
    pub fn region(&self) -> &str {
        &self.region
    }
    pub fn account(&self) -> &str {
        &self.account
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for TopicArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for TopicArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicArn::parse(s)
    }
}

/// Splits into the six ARN parts and checks the fixed ones (`arn`, service `sns`).
fn split_arn(s: &str) -> Result<Vec<&str>, ArnError> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(ArnError(
            "expected arn:<partition>:sns:<region>:<account>:<name>",
        ));
    }
    if parts[0] != "arn" {
        return Err(ArnError("does not start with arn:"));
    }
    if parts[2] != "sns" {
        return Err(ArnError("service is not sns"));
    }
    Ok(parts)
}

fn is_dns_label_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn validate_partition(s: &str) -> Result<(), ArnError> {
    if is_dns_label_like(s) {
        Ok(())
    } else {
        Err(ArnError("bad partition"))
    }
}

fn validate_region(s: &str) -> Result<(), ArnError> {
    if is_dns_label_like(s) {
        Ok(())
    } else {
        Err(ArnError("bad region"))
    }
}

fn validate_account(s: &str) -> Result<(), ArnError> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ArnError("account is not 12 digits"))
    }
}

/// SNS topic names: 1..=256 of `[A-Za-z0-9_-]`, FIFO topics end in `.fifo`.
fn validate_name(s: &str) -> Result<(), ArnError> {
    let stem = s.strip_suffix(".fifo").unwrap_or(s);
    if !stem.is_empty()
        && s.len() <= 256
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(ArnError("bad topic name"))
    }
}

/// One allow-list entry. `None` in region/account means `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    partition: String,
    region: Option<String>,
    account: Option<String>,
    name: String,
}

impl TopicPattern {
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let parts = split_arn(s)?;
        // A `*` anywhere but as a whole region or account part would make the match rules
        // surprising (is `alarm*` a prefix? a glob?), so it is refused outright.
        if parts[1].contains('*') || parts[5].contains('*') {
            return Err(ArnError(
                "'*' is only allowed as the whole region or account",
            ));
        }
        validate_partition(parts[1])?;
        validate_name(parts[5])?;
        let region = match parts[3] {
            "*" => None,
            r if r.contains('*') => {
                return Err(ArnError(
                    "'*' is only allowed as the whole region or account",
                ));
            }
            r => {
                validate_region(r)?;
                Some(r.to_owned())
            }
        };
        let account = match parts[4] {
            "*" => None,
            a if a.contains('*') => {
                return Err(ArnError(
                    "'*' is only allowed as the whole region or account",
                ));
            }
            a => {
                validate_account(a)?;
                Some(a.to_owned())
            }
        };
        Ok(TopicPattern {
            partition: parts[1].to_owned(),
            region,
            account,
            name: parts[5].to_owned(),
        })
    }

    pub fn matches(&self, arn: &TopicArn) -> bool {
        self.partition == arn.partition
            && self.region.as_deref().is_none_or(|r| r == arn.region)
            && self.account.as_deref().is_none_or(|a| a == arn.account)
            && self.name == arn.name
    }
}

impl FromStr for TopicPattern {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicPattern::parse(s)
    }
}

/// The `SNS_TOPIC_ARNS` allow list. Secure by default: with no list, only topics owned by
/// the service's own AWS account are served (an attacker can subscribe this endpoint to a
/// topic in *their* account, and SNS signs that topic's messages as genuinely as ours).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TopicAllowList {
    /// No list given: topics of the service's own account only; while that account is not
    /// known (local backend, or STS unreachable at start), no topic at all.
    #[default]
    OwnAccount,
    /// `*`: any topic of any account. An explicit, logged opt-out.
    Any,
    /// These topics only.
    Listed(Vec<TopicPattern>),
}

impl TopicAllowList {
    /// Parses a comma-separated list; blanks around entries and empty entries are ignored.
    /// `*` alone opts out of the check; a `*` account is refused (it would let every AWS
    /// account in, which is what the list exists to prevent).
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let entries: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        match entries.as_slice() {
            [] => return Ok(TopicAllowList::OwnAccount),
            ["*"] => return Ok(TopicAllowList::Any),
            _ if entries.contains(&"*") => {
                return Err(ArnError("'*' must be the whole list, not one entry of it"));
            }
            _ => {}
        }
        let patterns = entries
            .into_iter()
            .map(TopicPattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.iter().any(|p| p.account.is_none()) {
            return Err(ArnError(
                "'*' as the account would accept topics of any AWS account: name the account",
            ));
        }
        Ok(TopicAllowList::Listed(patterns))
    }

    pub fn patterns(&self) -> &[TopicPattern] {
        match self {
            TopicAllowList::Listed(p) => p,
            _ => &[],
        }
    }

    /// Whether `arn` may be served, given the service's own account when it is known.
    pub fn allows(&self, arn: &TopicArn, own_account: Option<&str>) -> bool {
        match self {
            TopicAllowList::OwnAccount => own_account.is_some_and(|a| a == arn.account()),
            TopicAllowList::Any => true,
            TopicAllowList::Listed(patterns) => patterns.iter().any(|p| p.matches(arn)),
        }
    }

    /// `allows` as a `Result`, for `?` in request handlers.
    pub fn check(&self, arn: &TopicArn, own_account: Option<&str>) -> Result<(), SnsError> {
        if self.allows(arn, own_account) {
            Ok(())
        } else {
            Err(SnsError::TopicNotAllowed)
        }
    }
}

impl FromStr for TopicAllowList {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicAllowList::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(s: &str) -> TopicArn {
        TopicArn::parse(s).expect("test ARN parses")
    }

    #[test]
    fn parses_topic_arn_parts() {
        let a = arn("arn:aws:sns:us-east-1:123456789012:alarms");
        assert_eq!(a.partition(), "aws");
        assert_eq!(a.region(), "us-east-1");
        assert_eq!(a.account(), "123456789012");
        assert_eq!(a.name(), "alarms");
        assert_eq!(a.to_string(), "arn:aws:sns:us-east-1:123456789012:alarms");
        let f = arn("arn:aws-cn:sns:cn-north-1:123456789012:My_Topic-1.fifo");
        assert_eq!(f.partition(), "aws-cn");
        assert_eq!(f.name(), "My_Topic-1.fifo");
    }

    #[test]
    fn rejects_bad_topic_arns() {
        for bad in [
            "",
            "arn:aws:sns:us-east-1:123456789012",
            "arn:aws:sqs:us-east-1:123456789012:q",
            "urn:aws:sns:us-east-1:123456789012:t",
            "arn:aws:sns:us-east-1:12345678901:t",
            "arn:aws:sns:us-east-1:1234567890123:t",
            "arn:aws:sns:us-east-1:12345678901a:t",
            "arn:aws:sns::123456789012:t",
            "arn:aws:sns:US-EAST-1:123456789012:t",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:.fifo",
            "arn:aws:sns:us-east-1:123456789012:a/b",
            "arn:aws:sns:us-east-1:123456789012:t:sub-id",
            "arn::sns:us-east-1:123456789012:t",
        ] {
            assert!(TopicArn::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("arn:aws:sns:us-east-1:123456789012:{}", "a".repeat(257));
        assert!(TopicArn::parse(&long).is_err());
    }

    #[test]
    fn empty_allow_list_means_the_own_account_only() {
        let theirs = arn("arn:aws:sns:eu-west-1:999999999999:alarms");
        let ours = arn("arn:aws:sns:eu-west-1:123456789012:alarms");
        for s in ["", "  ", " , "] {
            let list = TopicAllowList::parse(s).expect("parses");
            assert_eq!(list, TopicAllowList::OwnAccount);
            assert!(list.allows(&ours, Some("123456789012")));
            assert!(!list.allows(&theirs, Some("123456789012")));
            // Unknown own account: nothing at all, never "anything".
            assert!(!list.allows(&ours, None));
            assert!(matches!(
                list.check(&ours, None),
                Err(SnsError::TopicNotAllowed)
            ));
        }
    }

    #[test]
    fn a_lone_star_is_the_explicit_opt_out() {
        let list = TopicAllowList::parse(" * ").expect("parses");
        assert_eq!(list, TopicAllowList::Any);
        assert!(list.allows(&arn("arn:aws:sns:eu-west-1:999999999999:x"), None));
        assert!(TopicAllowList::parse("*,arn:aws:sns:us-east-1:123456789012:a").is_err());
    }

    #[test]
    fn exact_entries_match_only_themselves() {
        let list = TopicAllowList::parse(
            "arn:aws:sns:us-east-1:123456789012:alarms, arn:aws:sns:eu-west-1:123456789012:other",
        )
        .expect("parses");
        assert_eq!(list.patterns().len(), 2);
        assert!(list.allows(&arn("arn:aws:sns:us-east-1:123456789012:alarms"), None));
        assert!(list.allows(&arn("arn:aws:sns:eu-west-1:123456789012:other"), None));
        // Foreign topic: another account, another region, another name, another partition.
        assert!(!list.allows(&arn("arn:aws:sns:us-east-1:210987654321:alarms"), None));
        assert!(!list.allows(&arn("arn:aws:sns:us-east-2:123456789012:alarms"), None));
        assert!(!list.allows(&arn("arn:aws:sns:us-east-1:123456789012:alarms2"), None));
        assert!(!list.allows(&arn("arn:aws:sns:us-east-1:123456789012:alarm"), None));
        assert!(!list.allows(&arn("arn:aws-cn:sns:us-east-1:123456789012:alarms"), None));
        assert!(matches!(
            list.check(&arn("arn:aws:sns:us-east-1:210987654321:alarms"), None),
            Err(SnsError::TopicNotAllowed)
        ));
        assert!(
            list.check(&arn("arn:aws:sns:us-east-1:123456789012:alarms"), None)
                .is_ok()
        );
    }

    #[test]
    fn wildcards_in_region_and_account() {
        let list = TopicAllowList::parse("arn:aws:sns:*:123456789012:alarms").expect("parses");
        assert!(list.allows(&arn("arn:aws:sns:us-east-1:123456789012:alarms"), None));
        assert!(list.allows(&arn("arn:aws:sns:ap-south-2:123456789012:alarms"), None));
        assert!(!list.allows(&arn("arn:aws:sns:us-east-1:123456789013:alarms"), None));

        // A wildcard account lets any AWS account in: refused, whatever else the list holds.
        for open in [
            "arn:aws:sns:us-west-2:*:alarms",
            "arn:aws:sns:*:*:alarms",
            "arn:aws:sns:us-east-1:123456789012:ok, arn:aws:sns:us-east-1:*:alarms",
        ] {
            let err = TopicAllowList::parse(open).expect_err(open);
            assert!(err.to_string().contains("account"), "{open}: {err}");
        }
    }

    #[test]
    fn wildcards_elsewhere_are_refused() {
        for bad in [
            "arn:*:sns:us-east-1:123456789012:alarms",
            "arn:aws:sns:us-east-1:123456789012:*",
            "arn:aws:sns:us-east-1:123456789012:alarm*",
            "arn:aws:sns:us-*:123456789012:alarms",
            "arn:aws:sns:us-east-1:1234*:alarms",
            "arn:aws:*:us-east-1:123456789012:alarms",
        ] {
            assert!(TopicAllowList::parse(bad).is_err(), "accepted {bad:?}");
        }
        // One bad entry spoils the whole list: a typo must not silently widen access.
        assert!(TopicAllowList::parse("arn:aws:sns:us-east-1:123456789012:ok,not-an-arn").is_err());
    }
}
