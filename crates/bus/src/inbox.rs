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
    let done = sqlx::query(
        "insert into inbox (consumer_group, envelope_id, event_type, processed_at) values ($1, $2, $3, $4) \
         on conflict do nothing",
    )
    .bind(group)
    .bind(envelope.id.to_string())
    .bind(&envelope.event_type)
    .bind(Timestamp::now().as_micros())
    .execute(conn)
    .await
    .context("cannot record inbox entry")?;
    Ok(done.rows_affected() == 1)
}
