//! Telling failures apart: a *transient* one (a dependency unreachable or momentarily
//! refusing: database, broker, pool timeout, serialization failure, deadlock) is worth
//! retrying and answers 503; anything else is *deterministic* and retrying cannot help.

/// True when some cause in the chain is a transient failure.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
            return sqlx_transient(e);
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return io_transient(e.kind());
        }
        false
    })
}

fn io_transient(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
            | K::Interrupted
            | K::WouldBlock
    )
}

/// sqlx's view: the pool or the connection failed, or the database asked for a retry.
fn sqlx_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| database_code_transient(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "try again".
fn database_code_transient(code: &str) -> bool {
    // PostgreSQL: serialization failure, deadlock, connection exceptions, too many
    // connections / out of resources, the server shutting down or starting up.
    if code == "40001" || code == "40P01" || code.starts_with("08") || code.starts_with("53") {
        return true;
    }
    if matches!(code, "57P01" | "57P02" | "57P03" | "55P03") {
        return true;
    }
    // SQLite (extended codes keep the primary one in the low byte): BUSY, LOCKED.
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn pool_timeouts_and_resets_are_transient_through_context() {
        let e = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("cannot load order");
        assert!(is_transient(&e));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = Err::<(), _>(sqlx::Error::Io(io))
            .context("cannot save")
            .err()
            .map(|e| e.context("outer"));
        assert!(e.as_ref().is_some_and(is_transient));
    }

    #[test]
    fn rule_failures_and_bad_data_are_not() {
        assert!(!is_transient(&anyhow::anyhow!("order is already paid")));
        assert!(!is_transient(&anyhow::Error::from(
            sqlx::Error::RowNotFound
        )));
        let json = serde_json::from_str::<u32>("x")
            .err()
            .map(anyhow::Error::from);
        assert!(json.as_ref().is_some_and(|e| !is_transient(e)));
    }

    #[test]
    fn database_codes() {
        for code in ["40001", "40P01", "08006", "57P01", "53300", "5", "517", "6"] {
            assert!(database_code_transient(code), "{code}");
        }
        for code in ["23505", "2067", "42P01", "19", "1555"] {
            assert!(!database_code_transient(code), "{code}");
        }
    }
}
