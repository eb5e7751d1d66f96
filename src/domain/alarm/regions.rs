//! CloudWatch's SNS notifications name the region by its display name ("Region": "EU
//! (Ireland)"), not its code: read back into the code, so an alarm without an ARN still
//! knows where it is.

/// Display names as CloudWatch writes them (and the "Europe (...)" spelling AWS's console
/// uses now), with their region codes.
const NAMES: &[(&str, &str)] = &[
    ("US East (N. Virginia)", "us-east-1"),
    ("US East (Ohio)", "us-east-2"),
    ("US West (N. California)", "us-west-1"),
    ("US West (Oregon)", "us-west-2"),
    ("Africa (Cape Town)", "af-south-1"),
    ("Asia Pacific (Hong Kong)", "ap-east-1"),
    ("Asia Pacific (Taipei)", "ap-east-2"),
    ("Asia Pacific (Mumbai)", "ap-south-1"),
    ("Asia Pacific (Hyderabad)", "ap-south-2"),
    ("Asia Pacific (Singapore)", "ap-southeast-1"),
    ("Asia Pacific (Sydney)", "ap-southeast-2"),
    ("Asia Pacific (Jakarta)", "ap-southeast-3"),
    ("Asia Pacific (Melbourne)", "ap-southeast-4"),
    ("Asia Pacific (Malaysia)", "ap-southeast-5"),
    ("Asia Pacific (Thailand)", "ap-southeast-7"),
    ("Asia Pacific (Tokyo)", "ap-northeast-1"),
    ("Asia Pacific (Seoul)", "ap-northeast-2"),
    ("Asia Pacific (Osaka)", "ap-northeast-3"),
    ("Canada (Central)", "ca-central-1"),
    ("Canada West (Calgary)", "ca-west-1"),
    ("EU (Frankfurt)", "eu-central-1"),
    ("EU (Zurich)", "eu-central-2"),
    ("EU (Ireland)", "eu-west-1"),
    ("EU (London)", "eu-west-2"),
    ("EU (Paris)", "eu-west-3"),
    ("EU (Stockholm)", "eu-north-1"),
    ("EU (Milan)", "eu-south-1"),
    ("EU (Spain)", "eu-south-2"),
    ("Israel (Tel Aviv)", "il-central-1"),
    ("Middle East (Bahrain)", "me-south-1"),
    ("Middle East (UAE)", "me-central-1"),
    ("Mexico (Central)", "mx-central-1"),
    ("South America (Sao Paulo)", "sa-east-1"),
    ("South America (São Paulo)", "sa-east-1"),
    ("AWS GovCloud (US-West)", "us-gov-west-1"),
    ("AWS GovCloud (US-East)", "us-gov-east-1"),
    ("China (Beijing)", "cn-north-1"),
    ("China (Ningxia)", "cn-northwest-1"),
    // The older spelling, still in AWS's own example notification ("US - N. Virginia"),
    // for the regions that existed when it was used.
    ("US - N. Virginia", "us-east-1"),
    ("US - N. California", "us-west-1"),
    ("US - Oregon", "us-west-2"),
    ("EU - Ireland", "eu-west-1"),
    ("Asia Pacific - Singapore", "ap-southeast-1"),
    ("Asia Pacific - Sydney", "ap-southeast-2"),
    ("Asia Pacific - Tokyo", "ap-northeast-1"),
    ("South America - Sao Paulo", "sa-east-1"),
];

/// The region code for CloudWatch's `Region` field: a display name ("EU (Ireland)", or
/// "Europe (Ireland)"), or already a code. `None` for anything else: the region is then
/// unknown rather than guessed.
pub(super) fn region_code(name: &str) -> Option<&'static str> {
    let name = name.trim();
    let european = name
        .strip_prefix("Europe (")
        .map(|rest| format!("EU ({rest}"));
    let wanted = european.as_deref().unwrap_or(name);
    NAMES
        .iter()
        .find(|(display, code)| display.eq_ignore_ascii_case(wanted) || *code == name)
        .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_and_codes_are_read() {
        assert_eq!(region_code("EU (Ireland)"), Some("eu-west-1"));
        assert_eq!(region_code("Europe (Ireland)"), Some("eu-west-1"));
        assert_eq!(region_code("US East (N. Virginia)"), Some("us-east-1"));
        assert_eq!(region_code("us east (ohio)"), Some("us-east-2"));
        assert_eq!(region_code("US - N. Virginia"), Some("us-east-1"));
        assert_eq!(region_code("ap-southeast-2"), Some("ap-southeast-2"));
        assert_eq!(region_code("Atlantis (Central)"), None);
        assert_eq!(region_code(""), None);
    }
}
