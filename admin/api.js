// Generated from openapi/openapi.json by `emporium openapi`: do not edit.
// Every operation by its id: method, path, query parameters, headers, and whether it
// takes a JSON body.
export const operations = Object.freeze({
  "add_address": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/me/addresses",
    "query": []
  },
  "add_cart_item": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/cart/items",
    "query": []
  },
  "add_variant": {
    "body": true,
    "headers": [
      "If-Match"
    ],
    "method": "POST",
    "path": "/api/v1/catalog/products/{id}/variants",
    "query": []
  },
  "admin_list_orders": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/admin/orders",
    "query": [
      "status",
      "customer_id",
      "placed_from",
      "placed_to",
      "limit",
      "cursor"
    ]
  },
  "admin_messaging": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/admin/messaging",
    "query": []
  },
  "admin_order_summary": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/admin/summary",
    "query": [
      "since"
    ]
  },
  "apply_promotion": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/cart/promotion",
    "query": []
  },
  "approve_return": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/orders/{id}/returns/{return_id}/approve",
    "query": []
  },
  "archive_product": {
    "body": false,
    "headers": [
      "If-Match"
    ],
    "method": "DELETE",
    "path": "/api/v1/catalog/products/{id}",
    "query": []
  },
  "cancel_order": {
    "body": false,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/orders/{id}/cancel",
    "query": []
  },
  "change_address": {
    "body": true,
    "headers": [],
    "method": "PATCH",
    "path": "/api/v1/identity/me/addresses/{id}",
    "query": []
  },
  "change_email": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/me/email",
    "query": []
  },
  "confirm_email_verification": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/email-verifications/confirm",
    "query": []
  },
  "confirm_password_reset": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/password-resets/confirm",
    "query": []
  },
  "create_cart": {
    "body": false,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/carts",
    "query": []
  },
  "create_category": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/catalog/categories",
    "query": []
  },
  "create_product": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/catalog/products",
    "query": []
  },
  "create_promotion": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/promotions",
    "query": []
  },
  "create_webhook_endpoint": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/webhooks/endpoints",
    "query": []
  },
  "delete_shipping_rate": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/ordering/shipping-rates/{country}/{currency}",
    "query": []
  },
  "delete_tax_rates": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/ordering/tax-rates/{country}",
    "query": []
  },
  "delete_webhook_endpoint": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/webhooks/endpoints/{id}",
    "query": []
  },
  "get_cart": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/cart",
    "query": []
  },
  "get_dashboard": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/dashboard",
    "query": []
  },
  "get_jwks": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/.well-known/jwks.json",
    "query": []
  },
  "get_me": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/identity/me",
    "query": []
  },
  "get_my_message": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/notifications/me/{id}",
    "query": []
  },
  "get_notification_preferences": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/notifications/preferences",
    "query": []
  },
  "get_order": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/orders/{id}",
    "query": []
  },
  "get_product": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/catalog/products/{id}",
    "query": []
  },
  "get_promotion": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/promotions/{code}",
    "query": []
  },
  "get_shipment": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/shipping/shipments/{id}",
    "query": []
  },
  "get_stock": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/catalog/products/{id}/stock",
    "query": []
  },
  "get_variant_stock": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/catalog/products/{id}/variants/{variant_id}/stock",
    "query": []
  },
  "get_webhook_delivery": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/webhooks/deliveries/{id}",
    "query": []
  },
  "get_webhook_endpoint": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/webhooks/endpoints/{id}",
    "query": []
  },
  "health_live": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/health/live",
    "query": []
  },
  "health_ready": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/health/ready",
    "query": []
  },
  "issue_service_token": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/oauth/token",
    "query": []
  },
  "list_addresses": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/identity/me/addresses",
    "query": []
  },
  "list_categories": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/catalog/categories",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_dead_letters": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/admin/dead-letters",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_deliveries": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/notifications/deliveries",
    "query": [
      "status",
      "limit",
      "cursor"
    ]
  },
  "list_my_messages": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/notifications/me",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_my_orders": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/identity/me/orders",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_orders": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/orders",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_products": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/catalog/products",
    "query": [
      "category",
      "q",
      "option",
      "sort",
      "limit",
      "cursor"
    ]
  },
  "list_promotions": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/promotions",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_shipments": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/shipping/shipments",
    "query": [
      "order_id",
      "limit",
      "cursor"
    ]
  },
  "list_shipping_rates": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/shipping-rates",
    "query": []
  },
  "list_tax_rates": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/tax-rates",
    "query": []
  },
  "list_users": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/identity/users",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_webhook_deliveries": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/webhooks/deliveries",
    "query": [
      "endpoint_id",
      "status",
      "limit",
      "cursor"
    ]
  },
  "list_webhook_endpoints": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/webhooks/endpoints",
    "query": [
      "limit",
      "cursor"
    ]
  },
  "list_webhook_event_types": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/webhooks/event-types",
    "query": []
  },
  "log_in": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/tokens",
    "query": []
  },
  "metrics": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/metrics",
    "query": []
  },
  "place_order": {
    "body": true,
    "headers": [
      "Idempotency-Key"
    ],
    "method": "POST",
    "path": "/api/v1/ordering/orders",
    "query": []
  },
  "put_shipping_rate": {
    "body": true,
    "headers": [],
    "method": "PUT",
    "path": "/api/v1/ordering/shipping-rates/{country}/{currency}",
    "query": []
  },
  "put_tax_rates": {
    "body": true,
    "headers": [],
    "method": "PUT",
    "path": "/api/v1/ordering/tax-rates/{country}",
    "query": []
  },
  "quote_cart": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/ordering/cart/quote",
    "query": [
      "country"
    ]
  },
  "receive_return": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/orders/{id}/returns/{return_id}/receive",
    "query": []
  },
  "record_carrier_event": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/shipping/shipments/{id}/events",
    "query": []
  },
  "refresh_tokens": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/tokens/refresh",
    "query": []
  },
  "refund_order": {
    "body": true,
    "headers": [
      "Idempotency-Key"
    ],
    "method": "POST",
    "path": "/api/v1/ordering/orders/{id}/refunds",
    "query": []
  },
  "reject_return": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/ordering/orders/{id}/returns/{return_id}/reject",
    "query": []
  },
  "remove_address": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/identity/me/addresses/{id}",
    "query": []
  },
  "remove_cart_item": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/ordering/cart/items/{product_id}",
    "query": []
  },
  "remove_promotion": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/ordering/cart/promotion",
    "query": []
  },
  "replay_dead_letter": {
    "body": false,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/admin/dead-letters/{id}/replay",
    "query": []
  },
  "replay_webhook_delivery": {
    "body": false,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/webhooks/deliveries/{id}/replay",
    "query": []
  },
  "request_password_reset": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/password-resets",
    "query": []
  },
  "request_return": {
    "body": true,
    "headers": [
      "Idempotency-Key"
    ],
    "method": "POST",
    "path": "/api/v1/ordering/orders/{id}/returns",
    "query": []
  },
  "resend_email_verification": {
    "body": false,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/email-verifications",
    "query": []
  },
  "retry_delivery": {
    "body": false,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/notifications/deliveries/{id}/retry",
    "query": []
  },
  "revoke_tokens": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/tokens/revoke",
    "query": []
  },
  "set_cart_item_quantity": {
    "body": true,
    "headers": [],
    "method": "PATCH",
    "path": "/api/v1/ordering/cart/items/{product_id}",
    "query": []
  },
  "set_notification_preferences": {
    "body": true,
    "headers": [],
    "method": "PUT",
    "path": "/api/v1/notifications/preferences",
    "query": []
  },
  "set_stock": {
    "body": true,
    "headers": [],
    "method": "PUT",
    "path": "/api/v1/catalog/products/{id}/stock",
    "query": []
  },
  "set_user_roles": {
    "body": true,
    "headers": [],
    "method": "PUT",
    "path": "/api/v1/identity/users/{id}/roles",
    "query": []
  },
  "set_variant_stock": {
    "body": true,
    "headers": [],
    "method": "PUT",
    "path": "/api/v1/catalog/products/{id}/variants/{variant_id}/stock",
    "query": []
  },
  "sign_up": {
    "body": true,
    "headers": [],
    "method": "POST",
    "path": "/api/v1/identity/users",
    "query": []
  },
  "stripe_webhook": {
    "body": true,
    "headers": [
      "Stripe-Signature"
    ],
    "method": "POST",
    "path": "/api/v1/ordering/webhooks/stripe",
    "query": []
  },
  "track_shipment": {
    "body": false,
    "headers": [],
    "method": "GET",
    "path": "/api/v1/shipping/tracking/{tracking_number}",
    "query": []
  },
  "update_me": {
    "body": true,
    "headers": [],
    "method": "PATCH",
    "path": "/api/v1/identity/me",
    "query": []
  },
  "update_product": {
    "body": true,
    "headers": [
      "If-Match"
    ],
    "method": "PATCH",
    "path": "/api/v1/catalog/products/{id}",
    "query": []
  },
  "update_variant": {
    "body": true,
    "headers": [
      "If-Match"
    ],
    "method": "PATCH",
    "path": "/api/v1/catalog/products/{id}/variants/{variant_id}",
    "query": []
  },
  "update_webhook_endpoint": {
    "body": true,
    "headers": [],
    "method": "PATCH",
    "path": "/api/v1/webhooks/endpoints/{id}",
    "query": []
  },
  "withdraw_promotion": {
    "body": false,
    "headers": [],
    "method": "DELETE",
    "path": "/api/v1/ordering/promotions/{code}",
    "query": []
  }
});
