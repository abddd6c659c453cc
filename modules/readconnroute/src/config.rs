//! Options of `readconnroute`.

use serde::{Deserialize, Serialize};
use switchyard_api::ServerRole;

/// Router options of a `readconnroute` service.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadConnRouteConfig {
    /// Which servers a connection may use: `primary`, `replica`, `running` (any reachable
    /// server), or a list of them. Default: `running`.
    #[serde(default)]
    pub router_options: RoleOptions,
}

/// One role or a list of roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "expected `primary`, `replica`, `running` or a list of them"
)]
pub enum RoleOptions {
    One(RoleOption),
    Many(Vec<RoleOption>),
}

impl Default for RoleOptions {
    fn default() -> Self {
        RoleOptions::One(RoleOption::Running)
    }
}

/// A role a connection may be sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleOption {
    Primary,
    Replica,
    Running,
}

impl RoleOption {
    pub fn matches(self, role: ServerRole) -> bool {
        match self {
            RoleOption::Primary => role == ServerRole::Primary,
            RoleOption::Replica => role == ServerRole::Replica,
            RoleOption::Running => role != ServerRole::Down,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RoleOption::Primary => "primary",
            RoleOption::Replica => "replica",
            RoleOption::Running => "running",
        }
    }
}

impl ReadConnRouteConfig {
    pub fn roles(&self) -> Vec<RoleOption> {
        match &self.router_options {
            RoleOptions::One(r) => vec![*r],
            RoleOptions::Many(rs) if rs.is_empty() => vec![RoleOption::Running],
            RoleOptions::Many(rs) => rs.clone(),
        }
    }

    /// The roles as words, for error messages.
    pub fn describe_roles(&self) -> String {
        self.roles()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    }
}
