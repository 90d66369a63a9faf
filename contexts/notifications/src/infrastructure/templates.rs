//! Messages rendered from template files with minijinja: for each kind, `<kind>.subject.txt`,
//! `<kind>.txt` and `<kind>.html` (HTML auto-escaped). The defaults are built in
//! (`contexts/notifications/templates/`); a file of the same name in the operator's
//! directory replaces one. Every template is compiled at start, so a broken override stops
//! the server with its file name instead of failing messages later.

use std::path::Path;

use anyhow::Context as _;
use minijinja::Environment;

use crate::application::ports::{Rendered, Renderer};
use crate::domain::MessageKind;

/// Bounds the work one rendering may do (an operator's template loops over lines).
const FUEL: u64 = 200_000;

const DEFAULTS: &[(&str, &str)] = &[
    (
        "welcome.subject.txt",
        include_str!("../../templates/welcome.subject.txt"),
    ),
    ("welcome.txt", include_str!("../../templates/welcome.txt")),
    ("welcome.html", include_str!("../../templates/welcome.html")),
    (
        "order_confirmed.subject.txt",
        include_str!("../../templates/order_confirmed.subject.txt"),
    ),
    (
        "order_confirmed.txt",
        include_str!("../../templates/order_confirmed.txt"),
    ),
    (
        "order_confirmed.html",
        include_str!("../../templates/order_confirmed.html"),
    ),
    (
        "order_cancelled.subject.txt",
        include_str!("../../templates/order_cancelled.subject.txt"),
    ),
    (
        "order_cancelled.txt",
        include_str!("../../templates/order_cancelled.txt"),
    ),
    (
        "order_cancelled.html",
        include_str!("../../templates/order_cancelled.html"),
    ),
    (
        "refund_issued.subject.txt",
        include_str!("../../templates/refund_issued.subject.txt"),
    ),
    (
        "refund_issued.txt",
        include_str!("../../templates/refund_issued.txt"),
    ),
    (
        "refund_issued.html",
        include_str!("../../templates/refund_issued.html"),
    ),
    (
        "return_update.subject.txt",
        include_str!("../../templates/return_update.subject.txt"),
    ),
    (
        "return_update.txt",
        include_str!("../../templates/return_update.txt"),
    ),
    (
        "return_update.html",
        include_str!("../../templates/return_update.html"),
    ),
    (
        "shipment_dispatched.subject.txt",
        include_str!("../../templates/shipment_dispatched.subject.txt"),
    ),
    (
        "shipment_dispatched.txt",
        include_str!("../../templates/shipment_dispatched.txt"),
    ),
    (
        "shipment_dispatched.html",
        include_str!("../../templates/shipment_dispatched.html"),
    ),
    (
        "shipment_delivered.subject.txt",
        include_str!("../../templates/shipment_delivered.subject.txt"),
    ),
    (
        "shipment_delivered.txt",
        include_str!("../../templates/shipment_delivered.txt"),
    ),
    (
        "shipment_delivered.html",
        include_str!("../../templates/shipment_delivered.html"),
    ),
    (
        "password_reset.subject.txt",
        include_str!("../../templates/password_reset.subject.txt"),
    ),
    (
        "password_reset.txt",
        include_str!("../../templates/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../templates/password_reset.html"),
    ),
    (
        "email_changed.subject.txt",
        include_str!("../../templates/email_changed.subject.txt"),
    ),
    (
        "email_changed.txt",
        include_str!("../../templates/email_changed.txt"),
    ),
    (
        "email_changed.html",
        include_str!("../../templates/email_changed.html"),
    ),
    (
        "webhook_disabled.subject.txt",
        include_str!("../../templates/webhook_disabled.subject.txt"),
    ),
    (
        "webhook_disabled.txt",
        include_str!("../../templates/webhook_disabled.txt"),
    ),
    (
        "webhook_disabled.html",
        include_str!("../../templates/webhook_disabled.html"),
    ),
    (
        "verify_email.subject.txt",
        include_str!("../../templates/verify_email.subject.txt"),
    ),
    (
        "verify_email.txt",
        include_str!("../../templates/verify_email.txt"),
    ),
    (
        "verify_email.html",
        include_str!("../../templates/verify_email.html"),
    ),
];

pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates, each replaced by the file of the same name in `overrides`.
    pub(crate) fn load(overrides: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        for (name, default) in DEFAULTS {
            let source = match overrides.map(|dir| dir.join(name)) {
                Some(path) if path.is_file() => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read template {}", path.display()))?;
                    tracing::info!(template = %path.display(), "template overridden");
                    text
                }
                _ => (*default).to_owned(),
            };
            env.add_template_owned(*name, source)
                .with_context(|| format!("template {name} does not compile"))?;
        }
        Ok(Self { env })
    }

    fn one(&self, name: &str, context: &serde_json::Value) -> anyhow::Result<String> {
        let template = self.env.get_template(name)?;
        Ok(template.render(minijinja::value::Serde(context))?)
    }
}

impl Renderer for Templates {
    fn render(&self, kind: MessageKind, context: &serde_json::Value) -> anyhow::Result<Rendered> {
        let kind = kind.as_str();
        let subject = self.one(&format!("{kind}.subject.txt"), context)?;
        Ok(Rendered {
            // One line, whatever the template did.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.one(&format!("{kind}.txt"), context)?,
            html: self.one(&format!("{kind}.html"), context)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_renders_its_facts_and_escapes_html() {
        let templates = Templates::load(None).unwrap_or_else(|e| panic!("{e:#}"));
        let context = json!({
            "customer": {"name": "Ada <Lovelace>", "email": "ada@example.com"},
            "order_id": "0191e0a0-0000-7000-8000-000000000001",
            "lines": [{"name": "Tea & cake", "sku": "TEA-1", "quantity": 2, "unit_price": "EUR 1.50", "amount": "EUR 3.00"}],
            "total": "EUR 3.00",
            "reason": "the payment was declined",
            "refunded": true,
            "carrier": "DHL",
            "tracking_number": "DHL12345678903",
            "tracking_url": "http://shop.example/api/v1/shipping/tracking/DHL12345678903",
        });
        for kind in MessageKind::ALL {
            let r = templates
                .render(kind, &context)
                .unwrap_or_else(|e| panic!("{}: {e:#}", kind.as_str()));
            assert!(
                !r.subject.is_empty() && !r.subject.contains('\n'),
                "{kind:?}"
            );
            assert!(r.text.contains("Ada <Lovelace>"), "{kind:?}: {}", r.text);
            assert!(
                r.html.contains("Ada &lt;Lovelace&gt;"),
                "{kind:?}: {}",
                r.html
            );
        }
        let confirmed = templates
            .render(MessageKind::OrderConfirmed, &context)
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(confirmed
            .text
            .contains("0191e0a0-0000-7000-8000-000000000001"));
        assert!(confirmed.text.contains("2 × Tea & cake"));
        assert!(confirmed.text.contains("EUR 3.00"));
        let dispatched = templates
            .render(MessageKind::ShipmentDispatched, &context)
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(dispatched.text.contains("DHL12345678903"));
        assert!(dispatched
            .text
            .contains("/api/v1/shipping/tracking/DHL12345678903"));
        let cancelled = templates
            .render(MessageKind::OrderCancelled, &context)
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(cancelled.text.contains("your payment was refunded"));
    }

    #[test]
    fn an_override_replaces_one_file_and_a_broken_one_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("welcome.subject.txt"),
            "Hello {{ customer.name }}!",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let templates = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e:#}"));
        let r = templates
            .render(MessageKind::Welcome, &json!({"customer": {"name": "Ada"}}))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(r.subject, "Hello Ada!");
        assert!(r.text.contains("Ada"));

        std::fs::write(dir.path().join("order_confirmed.txt"), "{% for %}")
            .unwrap_or_else(|e| panic!("{e}"));
        let err = Templates::load(Some(dir.path()))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(err.is_some_and(|e| e.contains("order_confirmed.txt")));
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("welcome.txt"),
            "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let templates = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(templates
            .render(MessageKind::Welcome, &json!({"customer": {"name": "Ada"}}))
            .is_err());
    }
}
