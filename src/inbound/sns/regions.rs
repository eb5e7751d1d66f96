//! Built-in table of real AWS regions: which SNS host serves each one and which subject
//! names its signing certificate may carry. Pinning to real names is what keeps look-alike
//! hosts (e.g. the S3 website host of a bucket called "sns") out.

/// The AWS partitions this service talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Commercial regions, including opt-in ones.
    Aws,
    /// China (Beijing, Ningxia).
    AwsCn,
    /// AWS GovCloud (US).
    AwsUsGov,
}

impl Partition {
    /// The partition as written in an ARN.
    pub fn arn_name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    /// DNS suffix of the partition's service endpoints.
    fn dns_suffix(self) -> &'static str {
        match self {
            Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
            Partition::AwsCn => "amazonaws.com.cn",
        }
    }
}

/// Every region we accept. A region missing here makes its messages fail closed
/// (untrusted certificate URL), which is the safe direction: add new regions as AWS opens them.
const REGIONS: &[(&str, Partition)] = &[
    // Commercial, enabled by default.
    ("us-east-1", Partition::Aws),
    ("us-east-2", Partition::Aws),
    ("us-west-1", Partition::Aws),
    ("us-west-2", Partition::Aws),
    ("ca-central-1", Partition::Aws),
    ("sa-east-1", Partition::Aws),
    ("eu-west-1", Partition::Aws),
    ("eu-west-2", Partition::Aws),
    ("eu-west-3", Partition::Aws),
    ("eu-central-1", Partition::Aws),
    ("eu-north-1", Partition::Aws),
    ("ap-northeast-1", Partition::Aws),
    ("ap-northeast-2", Partition::Aws),
    ("ap-northeast-3", Partition::Aws),
    ("ap-southeast-1", Partition::Aws),
    ("ap-southeast-2", Partition::Aws),
    ("ap-south-1", Partition::Aws),
    // Commercial, opt-in.
    ("af-south-1", Partition::Aws),
    ("ap-east-1", Partition::Aws),
    ("ap-east-2", Partition::Aws),
    ("ap-south-2", Partition::Aws),
    ("ap-southeast-3", Partition::Aws),
    ("ap-southeast-4", Partition::Aws),
    ("ap-southeast-5", Partition::Aws),
    ("ap-southeast-6", Partition::Aws),
    ("ap-southeast-7", Partition::Aws),
    ("ca-west-1", Partition::Aws),
    ("eu-central-2", Partition::Aws),
    ("eu-south-1", Partition::Aws),
    ("eu-south-2", Partition::Aws),
    ("il-central-1", Partition::Aws),
    ("me-central-1", Partition::Aws),
    ("me-south-1", Partition::Aws),
    ("mx-central-1", Partition::Aws),
    // China.
    ("cn-north-1", Partition::AwsCn),
    ("cn-northwest-1", Partition::AwsCn),
    // GovCloud.
    ("us-gov-west-1", Partition::AwsUsGov),
    ("us-gov-east-1", Partition::AwsUsGov),
];

/// The partition of a known region, or None for anything not in the table.
pub fn partition_of(region: &str) -> Option<Partition> {
    REGIONS
        .iter()
        .find(|(name, _)| *name == region)
        .map(|(_, p)| *p)
}

/// `sns.<region>.amazonaws.com` (or `.com.cn`) for a known region.
pub fn sns_host(region: &str) -> Option<String> {
    let partition = partition_of(region)?;
    Some(format!("sns.{region}.{}", partition.dns_suffix()))
}

/// Subject common names a genuine SNS signing certificate for `region` may carry.
///
/// Commercial regions use `sns.amazonaws.com`, opt-in ones `sns-signing.<region>.amazonaws.com`;
/// both are accepted for every commercial region so a region moving between the two schemes
/// does not break delivery. China and GovCloud names follow the AWS SDK for Java v2 table
/// (`sns-cn-north-1.amazonaws.com.cn`, `sns-us-gov-west-1.amazonaws.com` for both GovCloud
/// regions).
pub fn signing_cert_names(region: &str) -> Vec<String> {
    match partition_of(region) {
        None => Vec::new(),
        Some(Partition::Aws) => vec![
            "sns.amazonaws.com".to_owned(),
            format!("sns-signing.{region}.amazonaws.com"),
        ],
        Some(Partition::AwsCn) => vec![
            format!("sns-{region}.amazonaws.com.cn"),
            format!("sns-signing.{region}.amazonaws.com.cn"),
            "sns.amazonaws.com.cn".to_owned(),
        ],
        Some(Partition::AwsUsGov) => vec![
            "sns-us-gov-west-1.amazonaws.com".to_owned(),
            format!("sns-{region}.amazonaws.com"),
            format!("sns-signing.{region}.amazonaws.com"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_per_partition() {
        assert_eq!(
            sns_host("us-east-1").as_deref(),
            Some("sns.us-east-1.amazonaws.com")
        );
        assert_eq!(
            sns_host("cn-north-1").as_deref(),
            Some("sns.cn-north-1.amazonaws.com.cn")
        );
        assert_eq!(
            sns_host("us-gov-west-1").as_deref(),
            Some("sns.us-gov-west-1.amazonaws.com")
        );
        assert_eq!(
            sns_host("us-gov-east-1").as_deref(),
            Some("sns.us-gov-east-1.amazonaws.com")
        );
        assert_eq!(sns_host("s3-ap-southeast-2"), None);
        assert_eq!(sns_host("us-east-9"), None);
        assert_eq!(sns_host(""), None);
    }

    #[test]
    fn signing_names() {
        assert!(signing_cert_names("us-west-2").contains(&"sns.amazonaws.com".to_owned()));
        assert!(
            signing_cert_names("eu-south-1")
                .contains(&"sns-signing.eu-south-1.amazonaws.com".to_owned())
        );
        assert!(
            !signing_cert_names("eu-south-1")
                .contains(&"sns-signing.us-east-1.amazonaws.com".to_owned())
        );
        assert!(
            signing_cert_names("us-gov-east-1")
                .contains(&"sns-us-gov-west-1.amazonaws.com".to_owned())
        );
        assert!(signing_cert_names("nowhere-1").is_empty());
    }

    #[test]
    fn partition_names() {
        assert_eq!(partition_of("cn-northwest-1"), Some(Partition::AwsCn));
        assert_eq!(Partition::AwsUsGov.arn_name(), "aws-us-gov");
    }
}
