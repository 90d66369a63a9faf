//! The inbox: a consumer records each envelope id in the transaction of its effect, so a
//! redelivered envelope is acknowledged and skipped.

use anyhow::Context as _;
use kernel::Timestamp;
use sqlx::AnyConnection;

use crate::envelope::Envelope;

/// Records the delivery; `true` the first time this group sees the envelope, `false` for a
/// duplicate (then the caller drops its transaction and does nothing).
///
/// On PostgreSQL a concurrent duplicate waits on the first one's row lock and then sees the
/// conflict, so two copies handled at once still have one effect.
pub async fn first_delivery(
    conn: &mut AnyConnection,
    group: &str,
    envelope: &Envelope,
) -> anyhow::Result<bool> {
    let fresh = first_deliveries(conn, group, &[envelope]).await?;
    Ok(fresh.first().copied().unwrap_or(false))
}

/// Records several deliveries in one statement; for each envelope, in order, whether this is
/// the first time the group sees it (as [`first_delivery`]). An envelope twice in `envelopes`
/// is new only the first time.
pub async fn first_deliveries(
    conn: &mut AnyConnection,
    group: &str,
    envelopes: &[&Envelope],
) -> anyhow::Result<Vec<bool>> {
    let mut fresh = Vec::with_capacity(envelopes.len());
    // Three parameters a row: well below every backend's limit per statement.
    for chunk in envelopes.chunks(200) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = i * 3;
                format!("($1, ${}, ${}, ${})", n + 2, n + 3, n + 4)
            })
            .collect();
        let sql = format!(
            "insert into inbox (consumer_group, envelope_id, event_type, processed_at) values {} \
             on conflict do nothing returning envelope_id",
            rows.join(", ")
        );
        let now = Timestamp::now().as_micros();
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(group);
        for envelope in chunk {
            query = query
                .bind(envelope.id.to_string())
                .bind(&envelope.event_type)
                .bind(now);
        }
        let mut recorded: std::collections::HashSet<String> = query
            .fetch_all(&mut *conn)
            .await
            .context("cannot record inbox entries")?
            .into_iter()
            .collect();
        fresh.extend(
            chunk
                .iter()
                .map(|envelope| recorded.remove(&envelope.id.to_string())),
        );
    }
    Ok(fresh)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::envelope::Causation;

    fn envelope(n: u32) -> Envelope {
        Envelope::wrap(
            &crate::conformance::Ping { n },
            Timestamp::now(),
            &Causation::system(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_batch_is_recorded_at_once_and_only_new_envelopes_are_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::unit_of_work::tests::store(dir.path()).await;
        let (seen, a, b) = (envelope(1), envelope(2), envelope(3));
        let mut conn = store.db().pool().acquire().await.unwrap();
        assert!(first_delivery(&mut conn, "g", &seen).await.unwrap());
        let fresh = first_deliveries(&mut conn, "g", &[&a, &seen, &b, &a])
            .await
            .unwrap();
        assert_eq!(fresh, vec![true, false, true, false]);
        // Another group keeps its own record.
        let other = first_deliveries(&mut conn, "h", &[&seen, &a])
            .await
            .unwrap();
        assert_eq!(other, vec![true, true]);
        assert!(!first_delivery(&mut conn, "g", &b).await.unwrap());
        assert_eq!(
            crate::unit_of_work::tests::count(&store, "select count(*) from inbox").await,
            5
        );
    }
}
