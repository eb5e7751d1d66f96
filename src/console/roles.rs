//! Who may do what in the console: viewers read, responders act on pages, admins change
//! settings. Behind the load balancer, the signed-in identity is mapped to a role by
//! `CONSOLE_ROLES` (`admin:alice@example.com,responder:@example.com,viewer:group:auditors`:
//! an address, `@domain` for everyone there, or `group:NAME` for the members of a group
//! the identity provider names in the token); anyone it does not name gets no role, and no
//! console.

/// A role, weakest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::IntoStaticStr, strum::EnumString,
)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    Viewer,
    Responder,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Address(String),
    Domain(String),
    /// Group names are compared as the identity provider writes them (case and all).
    Group(String),
}

/// The mapping, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(Vec<(Role, Who)>);

impl Roles {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "CONSOLE_ROLES: {entry:?} is not ROLE:ADDRESS, ROLE:@DOMAIN or ROLE:group:NAME \
                     (roles: viewer, responder, admin)"
                )
            };
            let (role, who) = entry.split_once(':').ok_or_else(bad)?;
            let role: Role = role.trim().parse().map_err(|_| bad())?;
            if let Some(group) = who.trim().strip_prefix("group:") {
                let group = group.trim();
                if group.is_empty() || group.contains(',') {
                    return Err(bad());
                }
                out.push((role, Who::Group(group.to_owned())));
                continue;
            }
            let who = who.trim().to_ascii_lowercase();
            let who = match who.strip_prefix('@') {
                Some(d) if !d.is_empty() && !d.contains('@') => Who::Domain(format!("@{d}")),
                Some(_) => return Err(bad()),
                None => {
                    crate::domain::settings::EmailAddress::parse(&who).map_err(|_| bad())?;
                    Who::Address(who)
                }
            };
            out.push((role, who));
        }
        match out.is_empty() {
            true => Err("CONSOLE_ROLES names nobody: the console would let no one in".into()),
            false => Ok(Self(out)),
        }
    }

    /// The strongest role the address or one of the groups is given, if any.
    pub fn of(&self, email: Option<&str>, groups: &[String]) -> Option<Role> {
        let email = email.map(|e| e.trim().to_ascii_lowercase());
        self.0
            .iter()
            .filter(|(_, who)| match (who, &email) {
                (Who::Address(a), Some(e)) => a == e,
                (Who::Domain(d), Some(e)) => e.ends_with(d.as_str()),
                (Who::Group(g), _) => groups.iter().any(|m| m == g),
                _ => false,
            })
            .map(|(role, _)| *role)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_domains_give_the_strongest_role_named() {
        let r =
            Roles::parse("responder:@example.com, admin:Alice@Example.com,viewer:audit@other.org")
                .expect("roles");
        assert_eq!(r.of(Some("alice@example.com"), &[]), Some(Role::Admin));
        assert_eq!(r.of(Some("bob@example.com"), &[]), Some(Role::Responder));
        assert_eq!(r.of(Some("audit@other.org"), &[]), Some(Role::Viewer));
        assert_eq!(r.of(Some("mallory@other.org"), &[]), None);
        assert_eq!(r.of(Some("bob@example.com.evil.org"), &[]), None);
        assert_eq!(r.of(None, &[]), None);
        for bad in [
            "",
            "boss:alice@example.com",
            "admin:alice",
            "admin:@",
            "admin",
            "admin:@a@b",
            "admin:group:",
            "admin:group: ",
        ] {
            assert!(Roles::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn groups_the_identity_provider_names_give_their_role() {
        let r =
            Roles::parse("viewer:group:Auditors,admin:group:pager-admins,responder:@example.com")
                .expect("roles");
        let g = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(r.of(None, &g(&["Auditors"])), Some(Role::Viewer));
        assert_eq!(
            r.of(Some("bob@example.com"), &g(&["pager-admins"])),
            Some(Role::Admin)
        );
        assert_eq!(
            r.of(Some("bob@example.com"), &g(&["Auditors"])),
            Some(Role::Responder)
        );
        // Names are the provider's own: another case is another group.
        assert_eq!(r.of(None, &g(&["auditors"])), None);
        assert_eq!(r.of(Some("mallory@other.org"), &g(&["staff"])), None);
    }
}
