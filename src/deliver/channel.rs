//! What every channel does: send one delivery and say whether a failure is
//! worth retrying.

use std::fmt;

use crate::store::outbox::DeliveryRow;

#[derive(Debug, Clone)]
pub struct SendError {
    /// Transient (connection refused, timeout, SMTP 4xx, HTTP 5xx/429):
    /// retried. Permanent (SMTP 5xx, HTTP 4xx): failed at once.
    pub retryable: bool,
    /// The server could not be reached at all (connection refused, no
    /// route): the channel pauses its other sends and probes until it
    /// answers again (see [`crate::deliver`]).
    pub unreachable: bool,
    pub message: String,
}

impl SendError {
    pub fn transient(m: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            unreachable: false,
            message: m.into(),
        }
    }

    /// Transient: the server cannot be reached.
    pub fn unreachable(m: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            unreachable: true,
            message: m.into(),
        }
    }

    pub fn permanent(m: impl Into<String>) -> Self {
        SendError {
            retryable: false,
            unreachable: false,
            message: m.into(),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The channel's name in plans: `email` or a webhook's name.
    fn name(&self) -> &str;
    async fn send(&self, d: &DeliveryRow) -> Result<(), SendError>;
}
