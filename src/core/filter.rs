//! PLACEHOLDER — being written by the filter helper.
use super::info::Info;
use crate::error::Result;

/// Placeholder.
#[derive(Debug, Clone)]
pub struct Filter;

impl Filter {
    /// Placeholder.
    pub fn parse_all<S: AsRef<str>>(_filters: &[S]) -> Result<Filter> {
        Ok(Filter)
    }
    /// Placeholder.
    pub fn is_always(&self) -> bool {
        true
    }
    /// Placeholder.
    pub fn matches(&self, _info: &Info) -> bool {
        true
    }
}
