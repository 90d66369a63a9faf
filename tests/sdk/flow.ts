// The shopping flow through the TypeScript package CI builds (`@emporium/client`: the types
// openapi-typescript generates and openapi-fetch): an admin stocks a product, a customer signs
// up, fills a cart, checks out and follows the order to `confirmed`, then its shipment and
// public tracking. Usage: node flow.js BASE_URL ADMIN_EMAIL ADMIN_PASSWORD
import { randomUUID } from "node:crypto";
import { createClient, type Schemas } from "@emporium/client";

function fail(what: string, detail: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(detail)}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(base: string, adminEmail: string, adminPassword: string): Promise<void> {
  const open = createClient({ baseUrl: base });
  const adminLogin = await open.POST("/api/v1/identity/tokens", {
    body: { email: adminEmail, password: adminPassword },
  });
  if (!adminLogin.data) fail("admin log-in", adminLogin.error);
  const admin = createClient({ baseUrl: base, token: adminLogin.data.access_token });

  const sku = `TS-${randomUUID().slice(0, 12).toUpperCase()}`;
  const created = await admin.POST("/api/v1/catalog/products", {
    body: { sku, name: "Typed-client mug", price: { amount: 1500, currency: "EUR" } },
  });
  if (!created.data) fail("create product", created.error);
  const product = created.data.id;
  const stocked = await admin.PUT("/api/v1/catalog/products/{id}/stock", {
    params: { path: { id: product } },
    body: { on_hand: 5 },
  });
  if (!stocked.data) fail("stock", stocked.error);

  const email = `ts-${randomUUID().slice(0, 10)}@example.com`;
  const password = "typed-client-violet-7";
  const signedUp = await open.POST("/api/v1/identity/users", {
    body: { email, password, name: "TS Client" },
  });
  if (!signedUp.data) fail("sign up", signedUp.error);
  const login = await open.POST("/api/v1/identity/tokens", { body: { email, password } });
  if (!login.data) fail("log in", login.error);
  const me = createClient({ baseUrl: base, token: login.data.access_token });

  const deadline = Date.now() + 15_000;
  for (;;) {
    const added = await me.POST("/api/v1/ordering/cart/items", {
      body: { product_id: product, quantity: 2 },
    });
    if (added.data) break;
    if (Date.now() > deadline) fail("ordering never learned of the product", added.error);
    await sleep(100);
  }
  const address: Schemas["AddressBody"] = {
    name: "TS Client",
    line1: "1 Spec Street",
    city: "Berlin",
    postal_code: "10115",
    country: "DE",
  };
  const placed = await me.POST("/api/v1/ordering/orders", {
    params: { header: { "Idempotency-Key": randomUUID() } },
    body: { shipping_address: address, payment_token: "tok_visa" },
  });
  if (!placed.data) fail("checkout", placed.error);
  const orderId = placed.data.id;

  let order: Schemas["OrderResponse"] = placed.data;
  const until = Date.now() + 30_000;
  while (order.status !== "confirmed") {
    if (order.status === "cancelled" || Date.now() > until) fail("order did not confirm", order);
    await sleep(100);
    const read = await me.GET("/api/v1/ordering/orders/{id}", { params: { path: { id: orderId } } });
    if (!read.data) fail("read order", read.error);
    order = read.data;
  }
  const shipmentId = order.shipment?.id;
  if (!shipmentId) fail("a confirmed order has a shipment", order);
  const shipment = await me.GET("/api/v1/shipping/shipments/{id}", {
    params: { path: { id: shipmentId } },
  });
  if (!shipment.data) fail("read shipment", shipment.error);
  const tracking = await open.GET("/api/v1/shipping/tracking/{tracking_number}", {
    params: { path: { tracking_number: shipment.data.tracking_number } },
  });
  if (!tracking.data) fail("tracking", tracking.error);
  console.log(
    `typescript flow: order ${orderId} confirmed, shipment ${shipmentId} (${tracking.data.status})`,
  );
}

const [base, adminEmail, adminPassword] = process.argv.slice(2);
main(base, adminEmail, adminPassword).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
