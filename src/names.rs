//! STUB(lead): passive DNS names, replaced at merge.
use std::net::IpAddr;
use std::sync::Arc;

use crate::packet::PacketMeta;

/// Names learned from DNS answers.
#[derive(Debug, Default)]
pub struct NameCache(std::collections::HashMap<IpAddr, Arc<str>>);

impl NameCache {
    #[must_use]
    pub fn new(cap: usize) -> Self {
        let _ = cap;
        Self::default()
    }
    pub fn observe(&mut self, meta: &PacketMeta, data: &[u8]) {
        let _ = (meta, data);
    }
    #[must_use]
    pub fn get(&self, ip: &IpAddr) -> Option<Arc<str>> {
        self.0.get(ip).cloned()
    }
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
