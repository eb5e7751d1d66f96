//! The console's local accounts, for the embedded default and small installs: a name, a
//! role, and the password as an Argon2id hash (a PHC string, salted; the password itself is
//! never kept nor logged). Kept as one document beside the settings (`users.json`, readable
//! by the owner only; an item of the settings table on DynamoDB).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use super::roles::Role;

/// The shortest password taken: long enough to resist guessing with the login throttled.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: bounded input (hashing costs the same whatever the length beyond this).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub role: String,
    /// Argon2id, as a PHC string.
    pub hash: String,
}

/// Every account, as the document holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    pub users: Vec<Account>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("{0:?} is not a user name (a-z, 0-9, - and _, at most 64)")]
    Name(String),
    #[error(
        "a password needs at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_CHARS})"
    )]
    Password,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    #[error("the accounts document does not read: {0}")]
    Document(String),
}

fn name_ok(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A hash of no account's password, checked against when a name is unknown.
static DECOY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash("no account has this password").unwrap_or_default());

/// The Argon2id hash of a password, with a fresh salt (the crate's defaults: 19 MiB, two
/// passes, one lane, as OWASP recommends).
pub fn hash(password: &str) -> Result<String, AccountError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(AccountError::Password);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether a password is the one a hash was made of (in constant time, by the crate).
pub fn verifies(password: &str, hash: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

impl Accounts {
    pub fn read(text: Option<&str>) -> Result<Self, AccountError> {
        match text {
            Some(t) => serde_json::from_str(t).map_err(|e| AccountError::Document(e.to_string())),
            None => Ok(Self::default()),
        }
    }

    pub fn text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{\"users\": []}".into())
    }

    /// Adds an account, or replaces the one of that name (its role and password).
    pub fn put(&mut self, name: &str, role: Role, password: &str) -> Result<(), AccountError> {
        if !name_ok(name) {
            return Err(AccountError::Name(name.chars().take(80).collect()));
        }
        let account = Account {
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            hash: hash(password)?,
        };
        match self.users.iter_mut().find(|a| a.name == name) {
            Some(a) => *a = account,
            None => self.users.push(account),
        }
        Ok(())
    }

    /// Removes an account: whether there was one.
    pub fn delete(&mut self, name: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|a| a.name != name);
        self.users.len() != before
    }

    /// The role of a name and password, when they are an account's. A name that is no
    /// account's costs a hash all the same, so the time taken does not say which names
    /// exist.
    pub fn check(&self, name: &str, password: &str) -> Option<Role> {
        let Some(account) = self.users.iter().find(|a| a.name == name) else {
            verifies(password, &DECOY);
            return None;
        };
        verifies(password, &account.hash)
            .then(|| account.role.parse().ok())
            .flatten()
    }

    /// The role of an account (read on every request, so a changed role or a deleted
    /// account takes effect at once, on sessions already open too).
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.users
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.role.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_as_argon2id_hashes_and_checked() {
        let mut a = Accounts::default();
        a.put("alice", Role::Admin, "correct horse battery")
            .expect("put");
        let text = a.text();
        assert!(!text.contains("correct horse"), "{text}");
        assert!(
            a.users[0]
                .hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            a.users[0].hash
        );
        let again = Accounts::read(Some(&text)).expect("read");
        assert_eq!(
            again.check("alice", "correct horse battery"),
            Some(Role::Admin)
        );
        assert_eq!(again.check("alice", "correct horse batterY"), None);
        assert_eq!(again.check("bob", "correct horse battery"), None);
        // Replaced, not added twice; deleted.
        a.put("alice", Role::Viewer, "another long password")
            .expect("put");
        assert_eq!(a.users.len(), 1);
        assert_eq!(
            a.check("alice", "another long password"),
            Some(Role::Viewer)
        );
        assert!(a.delete("alice") && !a.delete("alice"));
    }

    #[test]
    fn bad_names_and_passwords_are_refused() {
        let mut a = Accounts::default();
        for name in ["Alice", "", "a b", "x/../y", &"a".repeat(65)] {
            assert!(
                matches!(
                    a.put(name, Role::Viewer, "long enough password"),
                    Err(AccountError::Name(_))
                ),
                "{name}"
            );
        }
        for pw in ["short", &"x".repeat(1025)] {
            assert_eq!(
                a.put("alice", Role::Viewer, pw),
                Err(AccountError::Password)
            );
        }
        assert!(a.users.is_empty());
        assert!(!verifies("anything", "not a hash"));
        assert!(Accounts::read(Some("{not json")).is_err());
    }
}
