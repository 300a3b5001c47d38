//! What every channel does: send one delivery and say whether a failure is
//! worth retrying.

use std::fmt;

use crate::store::outbox::{DeliveryRow, Message};

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

    /// An HTTP request that got no answer (webhooks, SMS providers): a
    /// timeout or a broken exchange is retried, a connection that cannot
    /// be made pauses the channel. The message is `prefix`, then what went
    /// wrong and reqwest's chain of causes, taken without the URL and
    /// passed through `scrub` (the URL's secrets, which a cause may quote).
    pub fn unanswered(e: reqwest::Error, prefix: &str, scrub: impl Fn(&str) -> String) -> Self {
        let e = e.without_url();
        let chain = scrub(&error_chain(&e));
        if e.is_timeout() {
            SendError::transient(format!("{prefix}timeout: {chain}"))
        } else if e.is_connect() {
            SendError::unreachable(format!("{prefix}connection: {chain}"))
        } else {
            SendError::transient(format!("{prefix}connection: {chain}"))
        }
    }
}

/// `e` and its sources, each after a colon.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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

    /// [`Channel::send`], giving on success the provider's id of the
    /// message when it has one (an SMS provider's), recorded with the
    /// delivery. What the outbox calls for one delivery.
    async fn send_with_id(&self, d: &DeliveryRow) -> Result<Option<String>, SendError> {
        self.send(d).await.map(|()| None)
    }

    /// How many deliveries this channel can send better together than one
    /// by one (SMTP pipelining on one connection); 1: one at a time.
    fn chain(&self) -> usize {
        1
    }

    /// Sends `ds` in order, telling `each` the result of every delivery
    /// tried (its index in `ds`) as soon as it is known. After a server
    /// that cannot be reached the rest are not tried (the outbox puts them
    /// back).
    async fn send_chain(&self, ds: &[DeliveryRow], each: Each<'_>) {
        one_by_one(self, ds, each).await
    }
}

/// Told of each delivery of a chain as soon as it is done: its index in the
/// chain and the result.
pub type Each<'a> = &'a mut (dyn FnMut(usize, Result<(), SendError>) + Send);

/// [`Channel::send_chain`] by [`Channel::send`], one delivery at a time.
pub async fn one_by_one<C: Channel + ?Sized>(channel: &C, ds: &[DeliveryRow], each: Each<'_>) {
    for (i, d) in ds.iter().enumerate() {
        let r = channel.send(d).await;
        let unreachable = r.as_ref().is_err_and(|e| e.unreachable);
        each(i, r);
        if unreachable {
            break;
        }
    }
}

/// The message a delivery carries; a delivery whose message is missing
/// from the database fails for good instead of going out empty.
pub fn message_of(d: &DeliveryRow) -> Result<&Message, SendError> {
    d.message.as_ref().ok_or_else(|| {
        SendError::permanent(format!(
            "the message of delivery {} is missing from the database: nothing was sent",
            d.id
        ))
    })
}
