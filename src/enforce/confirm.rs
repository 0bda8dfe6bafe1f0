//! Confirm-or-roll-back for changes that could cut the user off (a block broader than /16 IPv4 or /48
//! IPv6, or a kernel rule on all traffic): the change is applied at once and undone automatically when
//! `confirm()` is not called before the deadline. The GUI drives the deadline with `tick(now)`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{BlockRequest, Enforcer, KernelRule, Result, is_broad};

/// A change that may need confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskyChange {
    /// Block an address or network.
    Block(BlockRequest),
    /// Replace the kernel rules.
    Rules(Vec<KernelRule>),
}

impl RiskyChange {
    /// True when the change could cut the user off and should go through `PendingConfirm`.
    #[must_use]
    pub fn needs_confirmation(&self) -> bool {
        match self {
            Self::Block(request) => is_broad(&request.net),
            Self::Rules(rules) => rules.iter().any(KernelRule::matches_all_traffic),
        }
    }
}

/// Where a pending change stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmState {
    /// Applied, waiting for `confirm()` until the deadline.
    Waiting {
        /// When it will be rolled back.
        deadline: DateTime<Utc>,
    },
    /// Confirmed: it stays.
    Confirmed,
    /// Not confirmed in time: undone.
    RolledBack,
}

/// An applied change that is undone at its deadline unless confirmed.
#[derive(Debug)]
pub struct PendingConfirm {
    change: RiskyChange,
    previous_rules: Vec<KernelRule>,
    state: ConfirmState,
}

impl PendingConfirm {
    /// Applies `change` through `enforcer` now; it is rolled back by `tick` after `timeout` unless confirmed.
    ///
    /// # Errors
    /// The error of applying the change (nothing is pending then).
    pub fn apply(
        enforcer: &Enforcer,
        change: RiskyChange,
        timeout: Duration,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let previous_rules = enforcer.kernel_rules();
        match &change {
            RiskyChange::Block(request) => {
                enforcer.block(request.clone())?;
            }
            RiskyChange::Rules(rules) => enforcer.set_kernel_rules(rules)?,
        }
        let deadline =
            now + chrono::Duration::from_std(timeout).unwrap_or_else(|_| chrono::Duration::seconds(30));
        Ok(Self {
            change,
            previous_rules,
            state: ConfirmState::Waiting { deadline },
        })
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &ConfirmState {
        &self.state
    }

    /// Keeps the change (no effect once rolled back).
    pub fn confirm(&mut self) {
        if matches!(self.state, ConfirmState::Waiting { .. }) {
            self.state = ConfirmState::Confirmed;
        }
    }

    /// Rolls the change back when the deadline has passed without confirmation; returns the new state.
    ///
    /// # Errors
    /// The error of undoing the change (it stays `Waiting`, so the next tick retries).
    pub fn tick(&mut self, enforcer: &Enforcer, now: DateTime<Utc>) -> Result<&ConfirmState> {
        if let ConfirmState::Waiting { deadline } = self.state
            && now >= deadline
        {
            match &self.change {
                RiskyChange::Block(request) => {
                    enforcer.unblock(request.net)?;
                }
                RiskyChange::Rules(_) => enforcer.set_kernel_rules(&self.previous_rules)?,
            }
            self.state = ConfirmState::RolledBack;
        }
        Ok(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::enforce::runner::RecordingRunner;
    use crate::enforce::{EnforceConfig, RuleDirection};

    fn enforcer() -> Enforcer {
        let config = EnforceConfig {
            ssh_connection: None,
            ..EnforceConfig::default()
        };
        Enforcer::open(Arc::new(RecordingRunner::dry_run()), config).unwrap()
    }

    #[test]
    fn which_changes_need_confirmation() {
        let block = |a: &str| RiskyChange::Block(BlockRequest::parse(a, "", None, false).unwrap());
        assert!(block("10.0.0.0/8").needs_confirmation());
        assert!(!block("10.1.0.0/16").needs_confirmation());
        assert!(block("2001:db8::/32").needs_confirmation());
        let all = KernelRule {
            name: "all".into(),
            direction: RuleDirection::In,
            protocol: None,
            src: vec![],
            dst: vec![],
            dst_ports: vec![],
            src_ports: vec![],
            interface: None,
        };
        assert!(RiskyChange::Rules(vec![all]).needs_confirmation());
    }

    #[test]
    fn rolled_back_unless_confirmed() {
        let enforcer = enforcer();
        let now = Utc::now();
        let request = BlockRequest::parse("10.0.0.0/8", "wide", None, true).unwrap();
        let mut pending = PendingConfirm::apply(
            &enforcer,
            RiskyChange::Block(request.clone()),
            Duration::from_secs(30),
            now,
        )
        .unwrap();
        assert_eq!(enforcer.entries().len(), 1);
        assert!(matches!(
            pending
                .tick(&enforcer, now + chrono::Duration::seconds(29))
                .unwrap(),
            ConfirmState::Waiting { .. }
        ));
        assert_eq!(
            pending
                .tick(&enforcer, now + chrono::Duration::seconds(30))
                .unwrap(),
            &ConfirmState::RolledBack
        );
        assert!(enforcer.entries().is_empty());

        let mut kept = PendingConfirm::apply(
            &enforcer,
            RiskyChange::Block(request),
            Duration::from_secs(30),
            now,
        )
        .unwrap();
        kept.confirm();
        assert_eq!(
            kept.tick(&enforcer, now + chrono::Duration::seconds(60)).unwrap(),
            &ConfirmState::Confirmed
        );
        assert_eq!(enforcer.entries().len(), 1);
    }
}
