//! Pure comparison of what the block list wants with what the kernel set holds: which entries to add
//! (missing) and which to remove (strays of ours). Used at start and by drift checks.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::ipset::SetAdd;

/// What to change in the kernel sets so they match the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetPlan {
    /// Wanted but missing in the kernel.
    pub add: Vec<SetAdd>,
    /// In our kernel sets but not wanted.
    pub remove: Vec<IpNet>,
}

impl SetPlan {
    /// True when the kernel already matches.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// Compares `desired` entries (with kernel timeouts) with the `actual` set members.
#[must_use]
pub fn plan_sets(desired: &[SetAdd], actual: &BTreeSet<IpNet>) -> SetPlan {
    let wanted: BTreeSet<IpNet> = desired.iter().map(|(net, _)| *net).collect();
    SetPlan {
        add: desired
            .iter()
            .filter(|(net, _)| !actual.contains(net))
            .copied()
            .collect(),
        remove: actual
            .iter()
            .filter(|net| !wanted.contains(net))
            .copied()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_stray() {
        let net = |t: &str| t.parse::<IpNet>().unwrap();
        let desired = vec![(net("10.0.0.1/32"), Some(5)), (net("10.0.0.2/32"), None)];
        let actual = BTreeSet::from([net("10.0.0.2/32"), net("10.0.0.9/32")]);
        let plan = plan_sets(&desired, &actual);
        assert_eq!(plan.add, vec![(net("10.0.0.1/32"), Some(5))]);
        assert_eq!(plan.remove, vec![net("10.0.0.9/32")]);
        assert!(plan_sets(&[], &BTreeSet::new()).is_empty());
    }
}
