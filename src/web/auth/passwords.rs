//! Passwords: argon2id hashes (`vigie hash-password`), the credential a
//! login name is checked against, and the few long-lived threads that run
//! the checks with a bounded queue.

use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::sha256_hex;
use crate::config::ConfigSet;
use crate::model::constant_time_eq;

/// An argon2id hash of a password nobody has, with the parameters of
/// [`hash_password`]: an unknown name is checked against it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$sO6xCE/MJweQ8M953RXnLw$4Fz0ObyZs+eWAnrkKcVW4UBDIcRJ3Bk06abBh/KcMAg";

/// The argon2id hash of a password, as `vigie hash-password` prints it.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// [`verify_password`] with argon2's working memory given by the caller,
/// grown to the hash's size if needed and kept for the next check. (The
/// argon2 crate allocates 19 MiB per check otherwise, and glibc does not
/// reuse it well: sequential checks on two threads reached 107 MiB of
/// resident memory after six logins.)
fn verify_with_memory(password: &str, phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
        .is_ok()
        && constant_time_eq(out, expected.as_bytes())
}

/// What a login name is checked against, taken from the configuration in
/// force when the attempt arrives.
pub enum Credential {
    /// A configured operator's argon2id hash.
    Hash(String),
    /// The password generated at first start (used while no operator is
    /// configured), compared in constant time.
    Generated(String),
    /// Not an operator: checked against a dummy all the same, and refused.
    Unknown { generated: bool },
}

impl Credential {
    /// The operators' credentials in force: the configured ones, else the
    /// generated one.
    pub fn of(set: &ConfigSet, generated: Option<&(String, String)>, name: &str) -> Credential {
        let operators = &set.daemon.auth.operators;
        if operators.is_empty() {
            match generated {
                Some((n, pw)) if n == name => Credential::Generated(pw.clone()),
                _ => Credential::Unknown { generated: true },
            }
        } else {
            match operators.iter().find(|o| o.name == name) {
                Some(o) => Credential::Hash(o.password_hash.clone()),
                None => Credential::Unknown { generated: false },
            }
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Credential::Unknown { .. })
    }

    /// Whether `password` is right. Slow (argon2id) for configured
    /// operators and unknown names alike: run it on the hashing threads,
    /// whose `memory` it uses.
    pub(super) fn check(&self, password: &str, memory: &mut Vec<argon2::Block>) -> bool {
        match self {
            Credential::Hash(h) => verify_with_memory(password, h, memory),
            Credential::Generated(pw) => constant_time_eq(pw.as_bytes(), password.as_bytes()),
            Credential::Unknown { generated: false } => {
                let _ = verify_with_memory(password, DUMMY_HASH, memory);
                false
            }
            Credential::Unknown { generated: true } => {
                let _ = constant_time_eq(DUMMY_HASH.as_bytes(), password.as_bytes());
                false
            }
        }
    }

    /// The fingerprint kept with a session: it changes when the password
    /// (hash) changes in the configuration.
    fn fingerprint(&self) -> Option<String> {
        match self {
            Credential::Hash(h) => Some(sha256_hex(h)),
            Credential::Generated(pw) => Some(sha256_hex(&format!("generated:{pw}"))),
            Credential::Unknown { .. } => None,
        }
    }
}

/// The credential fingerprint of `name` in the configuration in force, or
/// `None` when it is not an operator (any more).
pub fn credential_of(
    set: &ConfigSet,
    generated: Option<&(String, String)>,
    name: &str,
) -> Option<String> {
    Credential::of(set, generated, name).fingerprint()
}

/// (name, credential fingerprint) of every operator in force.
pub fn operator_credentials(
    set: &ConfigSet,
    generated: Option<&(String, String)>,
) -> Vec<(String, String)> {
    let names: Vec<String> = if set.daemon.auth.operators.is_empty() {
        generated.iter().map(|(n, _)| n.clone()).collect()
    } else {
        set.daemon
            .auth
            .operators
            .iter()
            .map(|o| o.name.clone())
            .collect()
    };
    names
        .into_iter()
        .filter_map(|n| credential_of(set, generated, &n).map(|c| (n, c)))
        .collect()
}
/// A password check, given its thread's argon2 working memory.
type HashJob = Box<dyn FnOnce(&mut Vec<argon2::Block>) + Send>;

/// A few long-lived threads for password checks, with a bounded queue.
/// Each keeps its argon2 working memory from one check to the next: the
/// daemon's memory for password checks is that, whatever the attempts.
pub(super) struct HashPool {
    /// `None` when no thread could be started: checks then go to tokio's
    /// blocking pool (unbounded, but working).
    jobs: Option<std::sync::mpsc::SyncSender<HashJob>>,
}

impl HashPool {
    pub(super) fn new(threads: usize, queue: usize) -> HashPool {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vigie-password-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => break, // the daemon is gone
                        }
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a password-checking thread"),
            }
        }
        HashPool {
            jobs: (started > 0).then_some(tx),
        }
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Option<T> {
        if self.jobs.is_none() {
            return tokio::task::spawn_blocking(move || f(&mut Vec::new()))
                .await
                .ok();
        }
        self.submit(f)?.await.ok()
    }

    /// Queues `f` for a thread at once; `None` when the queue is full.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Option<tokio::sync::oneshot::Receiver<T>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move |memory| {
            let _ = tx.send(f(memory));
        });
        self.jobs.as_ref()?.try_send(job).ok()?;
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn checks_with_reused_memory_agree_with_the_argon2_crate() {
        let h = hash_password("correct horse").unwrap();
        // Memory left dirty by a previous check, and too small at first.
        let mut memory = vec![argon2::Block::default(); 8];
        for (password, hash) in [
            ("correct horse", h.as_str()),
            ("wrong", h.as_str()),
            ("correct horse", DUMMY_HASH),
            ("x", "not a hash"),
            ("x", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"),
            // Other parameters and algorithm, as an older Vigie may have made.
            (
                "pw",
                "$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHRzYWx0$eq4tRSRYu8uPvcv4bAXb3Q",
            ),
        ] {
            assert_eq!(
                verify_with_memory(password, hash, &mut memory),
                verify_password(password, hash),
                "{password} {hash}"
            );
        }
        assert!(verify_with_memory("correct horse", &h, &mut memory));
        assert!(!verify_with_memory("correct horsf", &h, &mut memory));
        let other = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 3, 2, Some(24)).unwrap(),
        );
        let salt = SaltString::encode_b64(b"saltsaltsalt").unwrap();
        let h2 = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_with_memory("pw", &h2, &mut memory), "{h2}");
        assert!(!verify_with_memory("pv", &h2, &mut memory));
        assert!(verify_with_memory("correct horse", &h, &mut memory));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_hash = hash_password("x").unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(
            argon2::Params::try_from(&dummy).unwrap(),
            argon2::Params::try_from(&real).unwrap()
        );
    }
    #[tokio::test]
    async fn the_hashing_queue_refuses_beyond_its_length() {
        let pool = HashPool::new(1, 1);
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = pool
            .submit(move |_| {
                started.send(()).unwrap();
                released.recv().is_ok()
            })
            .unwrap();
        running.recv_timeout(Duration::from_secs(30)).unwrap();
        let queued = pool.submit(|_| 2).expect("one place in the queue");
        assert!(pool.submit(|_| 3).is_none(), "the queue is full");
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
        assert_eq!(queued.await.unwrap(), 2);
        assert_eq!(pool.run(|_| 4).await, Some(4));
    }
}
