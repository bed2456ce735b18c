//! Placeholder, filled in below.

use super::{Built, Request};
use crate::error::{CoreError, Result};

/// Builds the schedule (not yet available).
pub(crate) fn build(req: Request<'_>, _warnings: &mut Vec<String>) -> Result<Built> {
    Err(CoreError::invalid(
        "scheduler",
        format!("{} is not implemented yet", req.class.name()),
    ))
}
