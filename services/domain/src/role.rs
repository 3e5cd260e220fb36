//! Roles (A3.1): `deny < read < edit < full < root`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Deny,
    Read,
    Edit,
    Full,
    Root,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "deny" => Role::Deny,
            "read" => Role::Read,
            "edit" => Role::Edit,
            "full" => Role::Full,
            "root" => Role::Root,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Deny => "deny",
            Role::Read => "read",
            Role::Edit => "edit",
            Role::Full => "full",
            Role::Root => "root",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn order() {
        assert!(Role::Deny < Role::Read && Role::Read < Role::Edit);
        assert!(Role::Edit < Role::Full && Role::Full < Role::Root);
        assert_eq!(Role::parse("full"), Some(Role::Full));
        assert_eq!(Role::parse("admin"), None);
    }
}
