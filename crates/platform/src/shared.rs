//! State every instance of a context shares, in Redis (`EMPORIUM_REDIS_URL`): rate limits and
//! attempt counters. Each operation is one atomic Lua script, so two instances checking the
//! same key at once cannot both take its last unit. Keys are `<namespace>:<use>:<hash>`; the
//! hash keeps client addresses and email addresses out of Redis.
//!
//! Every call is bounded (`TIMEOUT`): a Redis that does not answer is an error at once, and
//! each caller decides whether that fails open (rate limits) or closed (log-in throttles).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

/// How long one call may take before it counts as Redis being unreachable.
const TIMEOUT: Duration = Duration::from_millis(300);

/// GCRA against Redis's own clock: the key holds the theoretical arrival time (µs).
/// Returns 0 when the request passes, else the µs to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tat - now - tolerance end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1000)
return now - next_tat
";

/// Takes one unit from every key (`ARGV[1]`: window ms, `ARGV[1 + i]`: the limit of key i),
/// or none when any is at its limit. Returns 0, or the ms until the fullest window ends.
const TAKE: &str = r"
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = window end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end
return 0
";

/// Gives one unit back to every key that has one taken.
const GIVE_BACK: &str = r"
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
";

fn derive_key(namespace: &str, purpose: &str, material: &str) -> String {
    let digest = Sha256::digest(material.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{namespace}:{purpose}:{hex}")
}

#[derive(Clone)]
pub struct SharedState {
    conn: ConnectionManager,
    namespace: String,
    /// The scripts, hashed once (each call sends the hash, and the source only when Redis
    /// does not know it yet).
    scripts: Arc<Scripts>,
}

struct Scripts {
    gcra: redis::Script,
    take: redis::Script,
    give_back: redis::Script,
}

impl SharedState {
    /// Connects (and fails when Redis does not answer: a process configured to share its
    /// limits does not start without them). `rediss://` uses TLS.
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        if url.starts_with("rediss://") {
            // Several TLS backends are compiled in; Redis's client uses the process default.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(url).context("EMPORIUM_REDIS_URL: not a redis:// URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .context("EMPORIUM_REDIS_URL: Redis did not answer")?
        .context("EMPORIUM_REDIS_URL: cannot connect to Redis")?;
        Ok(Self {
            conn,
            namespace: namespace.to_owned(),
            scripts: Arc::new(Scripts {
                gcra: redis::Script::new(GCRA),
                take: redis::Script::new(TAKE),
                give_back: redis::Script::new(GIVE_BACK),
            }),
        })
    }

    /// The Redis key of `(use, material)`: the material hashed.
    pub fn key(&self, purpose: &str, material: &str) -> String {
        derive_key(&self.namespace, purpose, material)
    }

    async fn run(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[i64],
    ) -> anyhow::Result<i64> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        for a in args {
            invocation.arg(a);
        }
        let mut conn = self.conn.clone();
        let value: i64 = tokio::time::timeout(TIMEOUT * 2, invocation.invoke_async(&mut conn))
            .await
            .context("Redis did not answer in time")?
            .context("Redis refused the script")?;
        Ok(value)
    }

    /// One request by the GCRA: `Ok(Ok(ahead))` passes, the key's arrival time now `ahead`
    /// of the clock; `Ok(Err(wait))` is over the limit.
    pub async fn gcra(
        &self,
        key: &str,
        interval: Duration,
        tolerance: Duration,
    ) -> anyhow::Result<Result<Duration, Duration>> {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let answer = self
            .run(
                &self.scripts.gcra,
                &[key.to_owned()],
                &[micros(interval), micros(tolerance)],
            )
            .await?;
        let span = Duration::from_micros(answer.unsigned_abs());
        Ok(if answer > 0 { Err(span) } else { Ok(span) })
    }

    /// Takes one unit from every `(key, limit)` within `window`, or none: `Ok(None)` when
    /// taken, `Ok(Some(wait))` when one is at its limit.
    pub async fn take(
        &self,
        keys: &[(String, u32)],
        window: Duration,
    ) -> anyhow::Result<Option<Duration>> {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let mut args = vec![i64::try_from(window.as_millis()).unwrap_or(i64::MAX)];
        args.extend(keys.iter().map(|(_, limit)| i64::from(*limit)));
        let wait = self.run(&self.scripts.take, &names, &args).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait.unsigned_abs())))
    }

    pub async fn give_back(&self, keys: &[String]) -> anyhow::Result<()> {
        self.run(&self.scripts.give_back, keys, &[])
            .await
            .map(|_| ())
    }

    pub async fn clear(&self, key: &str) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(
            TIMEOUT * 2,
            redis::cmd("DEL").arg(key).exec_async(&mut conn),
        )
        .await
        .context("Redis did not answer in time")?
        .context("Redis refused DEL")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn state() -> Option<SharedState> {
        let url = crate::testing::service_url("EMPORIUM_TEST_REDIS_URL")?;
        let ns = format!("t{}", uuid::Uuid::new_v4().simple());
        Some(
            SharedState::connect(&url, &ns)
                .await
                .unwrap_or_else(|e| panic!("{e:#}")),
        )
    }

    #[tokio::test]
    async fn the_gcra_lets_a_burst_through_then_the_rate() {
        let Some(s) = state().await else { return };
        let key = s.key("rate", "1.2.3.4");
        let interval = Duration::from_secs(1);
        let tolerance = interval * 4;
        for i in 0..5 {
            // Each request moves the arrival time one interval further ahead of the clock.
            let ahead = s.gcra(&key, interval, tolerance).await.ok();
            assert!(
                matches!(ahead, Some(Ok(a)) if a > interval * i && a <= interval * (i + 1)),
                "{i}: {ahead:?}"
            );
        }
        let wait = s.gcra(&key, interval, tolerance).await.ok();
        assert!(matches!(wait, Some(Err(w)) if w <= interval), "{wait:?}");
        // Another key has its own budget.
        let other = s.key("rate", "5.6.7.8");
        assert_eq!(
            s.gcra(&other, interval, tolerance).await.ok(),
            Some(Ok(interval))
        );
    }

    #[tokio::test]
    async fn taking_is_all_or_nothing_and_concurrent_takers_never_overrun() {
        let Some(s) = state().await else { return };
        let account = (s.key("login", "a@x.io|1.1.1.1"), 3);
        let client = (s.key("login", "1.1.1.1"), 100);
        let window = Duration::from_secs(60);
        let takers = (0..20).map(|_| {
            let (s, keys) = (s.clone(), vec![account.clone(), client.clone()]);
            tokio::spawn(async move { s.take(&keys, window).await })
        });
        let mut taken = 0;
        for t in futures::future::join_all(takers).await {
            if matches!(t, Ok(Ok(None))) {
                taken += 1;
            }
        }
        assert_eq!(taken, 3);
        // The refused attempts took nothing from the client's own count.
        s.give_back(std::slice::from_ref(&account.0))
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            s.take(&[account.clone(), client.clone()], window)
                .await
                .ok(),
            Some(None)
        );
        s.clear(&account.0)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(s.take(&[account], window).await.ok(), Some(None));
    }

    #[test]
    fn keys_do_not_carry_what_they_count() {
        let key = derive_key("shop", "login", "ada@example.com|1.2.3.4");
        assert!(key.starts_with("shop:login:"));
        assert!(!key.contains("ada") && !key.contains("1.2.3.4"));
        assert_ne!(key, derive_key("shop", "login", "ada@example.com|1.2.3.5"));
    }
}
