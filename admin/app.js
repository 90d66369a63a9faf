// The admin console. It calls the public API only, by operation id (api.js is generated from
// the OpenAPI document). Tokens live in this page's memory: nothing is written to storage, so
// a reload asks to sign in again, and signing out revokes the refresh token.
import { operations } from "/admin/api.js";

const session = { access: null, refresh: null, expiresAt: 0, me: null, refreshing: null };
let renderSeq = 0;

class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// ---- API -------------------------------------------------------------------------------

async function call(id, { path = {}, query = {}, headers = {}, body, auth = true } = {}) {
  const op = operations[id];
  if (!op) throw new Error(`the API has no operation ${id}`);
  let url = op.path.replace(/\{(\w+)\}/g, (_, name) => {
    if (path[name] === undefined) throw new Error(`${id} needs ${name}`);
    return encodeURIComponent(path[name]);
  });
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (!op.query.includes(name)) throw new Error(`${id} takes no query parameter ${name}`);
    if (value !== undefined && value !== null && value !== "") search.append(name, value);
  }
  if ([...search].length) url += `?${search}`;
  // The catalog's reads are cacheable for a few seconds; the console always revalidates, so
  // an edit shows at once (a 304 when nothing changed).
  const init = { method: op.method, cache: "no-cache", headers: { accept: "application/json" } };
  for (const [name, value] of Object.entries(headers)) {
    if (!op.headers.includes(name)) throw new Error(`${id} takes no header ${name}`);
    init.headers[name] = value;
  }
  if (body !== undefined) {
    if (!op.body) throw new Error(`${id} takes no body`);
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth) init.headers.authorization = `Bearer ${await accessToken()}`;
  let res = await fetch(url, init);
  if (res.status === 401 && auth && session.refresh) {
    session.expiresAt = 0;
    init.headers.authorization = `Bearer ${await accessToken()}`;
    res = await fetch(url, init);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text && /json/.test(res.headers.get("content-type") || "") ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && auth) {
      forget();
      render();
    }
    throw new Problem(res.status, data);
  }
  return { data, text, etag: res.headers.get("etag"), status: res.status };
}

function keep(tokens) {
  session.access = tokens.access_token;
  session.refresh = tokens.refresh_token;
  session.expiresAt = Date.now() + tokens.expires_in * 1000;
}

function forget() {
  Object.assign(session, { access: null, refresh: null, expiresAt: 0, me: null });
}

// A valid access token, refreshed (once, for every caller waiting) shortly before it expires.
async function accessToken() {
  if (session.access && Date.now() < session.expiresAt - 30_000) return session.access;
  if (!session.refresh) throw new Problem(401, { detail: "not signed in" });
  session.refreshing ??= call("refresh_tokens", {
    body: { refresh_token: session.refresh },
    auth: false,
  })
    .then(({ data }) => keep(data))
    .finally(() => {
      session.refreshing = null;
    });
  try {
    await session.refreshing;
  } catch (e) {
    forget();
    throw e;
  }
  return session.access;
}

// ---- Elements --------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function field(label, name, input, hint) {
  input.id = `f-${name}`;
  input.name = name;
  const error = h("div", { class: "field-error", id: `err-${name}`, "aria-live": "polite" });
  input.setAttribute("aria-describedby", error.id);
  return h("div", { class: "field" },
    h("label", { for: input.id }, label),
    hint ? h("span", { class: "muted" }, hint) : null,
    input, error);
}

function notice(container, kind, text) {
  container.querySelectorAll(":scope > .notice").forEach((n) => n.remove());
  if (text) container.prepend(h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));
}

// Puts each field error next to its field (`price.amount` next to `price`), the rest on top.
function showProblem(form, error) {
  form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  if (!(error instanceof Problem)) {
    notice(form, "error", error.message);
    return;
  }
  const elsewhere = [];
  for (const fe of error.body.errors || []) {
    const name = fe.field.split(/[.[]/)[0];
    const slot = form.querySelector(`#err-${CSS.escape(name)}`);
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent}; ${fe.message}` : fe.message;
      form.querySelector(`#f-${CSS.escape(name)}`)?.setAttribute("aria-invalid", "true");
    } else {
      elsewhere.push(`${fe.field}: ${fe.message}`);
    }
  }
  notice(form, "error", [error.message, ...elsewhere].join(" · "));
}

function table(headers, rows) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col", class: /^(Total|Qty|Price|Amount|Attempts|Orders|Outbox|Dead letters)$/.test(c) ? "num" : null }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "Nothing here.")))));
}

function money(m) {
  if (!m) return "";
  return new Intl.NumberFormat("en", { style: "currency", currency: m.currency }).format(Number(majorUnits(m)));
}

function fractionDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2; // an unknown currency: the API says so
  }
}

const majorUnits = (m) => String(m.amount / 10 ** fractionDigits(m.currency));

function minorUnits(text, currency) {
  const value = Number(String(text).trim());
  if (String(text).trim() === "" || !Number.isFinite(value)) return null;
  return Math.round(value * 10 ** fractionDigits(currency));
}

const input = (form, name) => form.elements.namedItem(name);
const when = (t) => (t ? new Date(t).toLocaleString("en-GB", { timeZone: "UTC", dateStyle: "medium", timeStyle: "medium" }) + " UTC" : "");
const short = (id) => String(id).slice(0, 8);
const label = (s) => String(s).replaceAll("_", " ");

// ---- Pages -----------------------------------------------------------------------------

const routes = [
  [/^#\/overview$/, overview],
  [/^#\/orders$/, orders],
  [/^#\/orders\/([\w-]+)$/, order],
  [/^#\/catalog$/, catalog],
  [/^#\/catalog\/new$/, newProduct],
  [/^#\/catalog\/([\w-]+)$/, product],
  [/^#\/shipments$/, shipments],
  [/^#\/shipments\/([\w-]+)$/, shipment],
  [/^#\/dead-letters$/, deadLetters],
  [/^#\/customers$/, customers],
];

async function render() {
  const seq = ++renderSeq;
  const main = document.getElementById("main");
  const signedIn = Boolean(session.refresh);
  document.getElementById("nav").hidden = !(signedIn && session.me?.admin);
  document.getElementById("sign-out").hidden = !signedIn;
  document.getElementById("who").textContent = signedIn && session.me ? session.me.email : "";
  let page;
  if (!signedIn) {
    page = signIn();
  } else if (!session.me?.admin) {
    page = notAdmin();
  } else {
    const hash = location.hash || "#/overview";
    const match = routes.map(([re, fn]) => [hash.match(re), fn]).find(([m]) => m);
    for (const a of document.querySelectorAll("nav a")) {
      if (hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    try {
      page = match ? await match[1](...match[0].slice(1)) : h("p", {}, "No such page.");
    } catch (e) {
      page = h("div", {}, h("h1", {}, "Something went wrong"), h("div", { class: "notice error", role: "alert" }, e.message));
    }
  }
  if (seq !== renderSeq) return;
  main.replaceChildren(page);
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Emporium admin` : "Emporium admin";
}

function signIn() {
  const form = h("form", { class: "stack", id: "sign-in" },
    field("Email", "email", h("input", { type: "email", autocomplete: "username", required: true })),
    field("Password", "password", h("input", { type: "password", autocomplete: "current-password", required: true })),
    h("div", {}, h("button", { class: "primary", type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const { data } = await call("log_in", {
        body: { email: input(form, "email").value, password: input(form, "password").value },
        auth: false,
      });
      keep(data);
      const me = (await call("get_me")).data;
      session.me = { email: me.email, admin: me.roles.includes("admin") };
      if (!location.hash || location.hash === "#/signed-out") location.hash = "#/overview";
      render();
    } catch (e) {
      showProblem(form, e);
    }
  });
  return h("section", {}, h("h1", {}, "Sign in"), h("p", { class: "muted" }, "With an admin account."), form);
}

function notAdmin() {
  return h("section", { id: "not-admin" },
    h("h1", {}, "Not an admin"),
    h("p", {}, `${session.me?.email ?? "This account"} is signed in, but the console is for admins only. Sign out and sign in with an admin account.`));
}

async function signOut() {
  const refresh = session.refresh;
  forget();
  if (refresh) {
    try {
      await call("revoke_tokens", { body: { refresh_token: refresh }, auth: false });
    } catch { /* signed out here either way */ }
  }
  location.hash = "#/signed-out";
  render();
}

// Overview: today's orders, the funnel, saga latency, messaging and readiness; refreshes.
async function overview() {
  const seq = renderSeq;
  const [summary, ready, messaging] = await Promise.allSettled([
    call("admin_order_summary"),
    call("health_ready", { auth: false }),
    call("admin_messaging"),
  ]);
  setTimeout(() => {
    if (seq === renderSeq && (location.hash || "#/overview") === "#/overview") render();
  }, 10_000);
  const cards = [];
  if (summary.status === "fulfilled") {
    const s = summary.value.data;
    cards.push(h("div", { class: "card", id: "orders-today" }, h("h2", {}, "Orders today"),
      h("p", {}, h("strong", {}, s.placed), " placed since ", when(s.since)),
      table(["Status", "Orders"], Object.entries(s.by_status).map(([k, n]) => h("tr", {}, h("td", {}, label(k)), h("td", { class: "num" }, n))))));
    const steps = [["placed", s.placed], ...["stock_reserved", "paid", "confirmed", "shipped", "delivered", "cancelled"].map((k) => [k, s.reached[k]])];
    const top = Math.max(1, s.placed);
    cards.push(h("div", { class: "card", id: "funnel" }, h("h2", {}, "Checkout funnel"),
      steps.map(([k, n]) => h("div", { class: "bar" }, h("span", {}, label(k)),
        h("span", { "aria-hidden": "true" }, h("span", { class: "fill", "data-share": n / top })), h("span", { class: "num" }, n)))));
    const l = s.placed_to_confirmed;
    cards.push(h("div", { class: "card", id: "latency" }, h("h2", {}, "Placed → confirmed"),
      l.count ? h("p", {}, `p50 ${l.p50_ms.toFixed(0)} ms · p95 ${l.p95_ms.toFixed(0)} ms`, h("br"), h("span", { class: "muted" }, `${l.count} confirmed orders`)) : h("p", { class: "muted" }, "No order confirmed today.")));
  } else {
    cards.push(h("div", { class: "card notice error" }, `Orders: ${summary.reason.message}`));
  }
  cards.push(h("div", { class: "card", id: "messaging" }, h("h2", {}, "Messaging"),
    messaging.status === "fulfilled"
      ? table(["Context", "Outbox", "Dead letters"], messaging.value.data.contexts.map((c) =>
        h("tr", {}, h("td", {}, c.context), h("td", { class: "num" }, c.outbox_unsent), h("td", { class: "num" }, c.dead_letters_open))))
      : h("p", { class: "down" }, `Not available: ${messaging.reason.message}`)));
  const checks = ready.status === "fulfilled" ? ready.value.data.checks : ready.reason.body?.checks;
  cards.push(h("div", { class: "card", id: "readiness" }, h("h2", {}, "Readiness"),
    checks ? h("ul", {}, Object.entries(checks).map(([k, v]) => h("li", {}, `${label(k)}: `, h("span", { class: v === "up" ? "up" : "down" }, typeof v === "string" ? v : JSON.stringify(v)))))
      : h("p", { class: "down" }, "Readiness is unknown.")));
  const page = h("section", {}, h("h1", {}, "Overview"), h("p", { class: "muted" }, `Refreshes every 10 s. Last: ${when(new Date().toISOString())}`), h("div", { class: "cards" }, cards));
  // Bar widths from the data attribute: the style sheet allows no inline styles.
  queueMicrotask(() => page.querySelectorAll(".fill").forEach((f) => { f.style.width = `${Math.round(Number(f.dataset.share) * 100)}%`; }));
  return page;
}

const STATUSES = ["pending", "stock_reserved", "paid", "confirmed", "shipped", "delivered", "cancelled"];

async function orders() {
  const form = h("form", { class: "row", id: "order-filter" },
    field("Status", "status", h("select", {}, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, label(s))))),
    field("Customer id", "customer_id", h("input", { type: "text", size: 38, placeholder: "uuid" })),
    field("Placed from", "placed_from", h("input", { type: "date" })),
    field("Placed before", "placed_to", h("input", { type: "date" })),
    h("button", { type: "submit", class: "primary" }, "Filter"));
  const results = h("div", { id: "order-results" });
  const load = async (cursor) => {
    const day = (v) => (v ? `${v}T00:00:00Z` : undefined);
    try {
      const { data } = await call("admin_list_orders", {
        query: {
          status: input(form, "status").value, customer_id: input(form, "customer_id").value.trim(),
          placed_from: day(input(form, "placed_from").value), placed_to: day(input(form, "placed_to").value),
          limit: 25, cursor,
        },
      });
      notice(form, "", "");
      form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
      results.replaceChildren(
        table(["Order", "Placed", "Customer", "Status", "Total"], data.items.map((o) => h("tr", { "data-id": o.id },
          h("td", {}, h("a", { href: `#/orders/${o.id}` }, short(o.id))), h("td", {}, when(o.placed_at)),
          h("td", {}, h("code", {}, short(o.customer_id))), h("td", {}, h("span", { class: "badge" }, label(o.status))),
          h("td", { class: "num" }, money(o.total))))),
        data.next_cursor ? h("p", {}, h("button", { type: "button", onclick: () => load(data.next_cursor) }, "Next page")) : null);
    } catch (e) {
      showProblem(form, e);
    }
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  await load();
  return h("section", {}, h("h1", {}, "Orders"), form, results);
}

// The saga's steps with the time each was reached, from the order's history and shipment.
function timeline(o, shipmentCreated) {
  const at = (status) => o.status_history.find((e) => e.status === status)?.at;
  const steps = [
    ["Placed", at("pending") ?? o.placed_at],
    ["Stock reserved", at("stock_reserved")],
    ["Paid", at("paid")],
    ["Shipment created", shipmentCreated],
    ["Confirmed", at("confirmed")],
    ["Dispatched", at("shipped")],
    ["Delivered", at("delivered")],
  ];
  const items = [];
  const cancelled = o.status_history.find((e) => e.status === "cancelled");
  for (const [name, time] of steps) {
    if (cancelled && !time) continue;
    items.push(h("li", { class: time ? "done" : "todo", "data-step": name }, name, time ? h("time", { datetime: time }, when(time)) : h("span", { class: "muted" }, " — not yet")));
  }
  if (cancelled) {
    items.push(h("li", { class: "cancelled", "data-step": "Cancelled" }, `Cancelled (${label(cancelled.reason ?? o.cancellation_reason ?? "no reason")})`, h("time", { datetime: cancelled.at }, when(cancelled.at))));
    for (const p of o.payments.filter((p) => p.kind === "refund")) {
      items.push(h("li", { class: p.status === "refunded" ? "done" : "todo", "data-step": "Refund" }, `Refund ${money(p.amount)}: ${label(p.status)}`, h("time", { datetime: p.updated_at }, when(p.updated_at))));
    }
  }
  return h("ol", { class: "timeline", id: "timeline", "aria-label": "Saga timeline" }, items);
}

// Gives back part of the charge: an amount in major units and a reason.
function refundForm(o) {
  const currency = o.total.currency;
  const form = h("form", { class: "row", id: "refund-form" },
    field("Refund", "refund_amount", h("input", { type: "text", inputmode: "decimal", size: 8 }), `at most ${money(o.refundable)}`),
    field("Reason", "refund_reason", h("input", { type: "text", maxlength: 500 })),
    h("button", { type: "submit" }, "Refund"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const amount = minorUnits(input(form, "refund_amount").value, currency);
    if (amount === null) {
      notice(form, "error", "Enter an amount, e.g. 5.00");
      return;
    }
    try {
      await call("refund_order", {
        path: { id: o.id },
        headers: { "Idempotency-Key": `console-${crypto.randomUUID()}` },
        body: { amount: { amount, currency }, reason: input(form, "refund_reason").value },
      });
      await render();
      notice(document.getElementById("refund-form") ?? document.getElementById("order-actions"), "ok", "Refund sent.");
    } catch (e) {
      showProblem(form, e);
    }
  });
  return form;
}

// Opens a return for the customer: how many of each line come back, and why.
function returnForm(o) {
  const counts = o.lines.map((l) => h("input", { type: "number", min: 0, max: l.quantity, value: 0, size: 3, "data-variant": l.variant_id, "aria-label": `Units of ${l.sku} coming back` }));
  const form = h("form", { class: "row", id: "return-form" },
    o.lines.map((l, i) => h("label", {}, `${l.sku} `, counts[i])),
    field("Why", "return_reason", h("input", { type: "text", maxlength: 500 })),
    h("button", { type: "submit" }, "Start a return"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const lines = counts.map((c) => ({ variant_id: c.dataset.variant, quantity: Number(c.value) })).filter((l) => l.quantity > 0);
    try {
      await call("request_return", { path: { id: o.id }, body: { lines, reason: input(form, "return_reason").value } });
      await render();
    } catch (e) {
      showProblem(form, e);
    }
  });
  return form;
}

// The order's returns, each with the step an admin may take next.
function returnsSection(o) {
  const step = async (el, op, r, body) => {
    try {
      await call(op, { path: { id: o.id, return_id: r.id }, body });
      await render();
    } catch (e) {
      notice(el, "error", e.message);
    }
  };
  const rows = o.returns.map((r) => {
    const actions = h("td", { class: "return-actions" });
    if (r.status === "requested") {
      const note = h("input", { type: "text", "aria-label": "Why it is rejected", placeholder: "reason to reject", maxlength: 500 });
      actions.append(
        h("button", { type: "button", class: "primary approve", onclick: () => step(actions, "approve_return", r, {}) }, "Approve"), " ",
        note, " ",
        h("button", { type: "button", class: "danger reject", onclick: () => step(actions, "reject_return", r, { note: note.value }) }, "Reject"));
    } else if (r.status === "approved") {
      const boxes = r.lines.map((l) => h("input", { type: "checkbox", checked: true, "data-variant": l.variant_id, "aria-label": `Restock ${l.sku}` }));
      actions.append(
        ...r.lines.map((l, i) => h("label", {}, boxes[i], ` restock ${l.sku} `)),
        h("button", { type: "button", class: "primary receive", onclick: () => step(actions, "receive_return", r, {
          lines: boxes.map((b) => ({ variant_id: b.dataset.variant, restock: b.checked })),
        }) }, "Receive"));
    }
    return h("tr", { "data-return": r.id },
      h("td", {}, h("code", {}, short(r.id))),
      h("td", {}, h("span", { class: "badge return-status" }, label(r.status))),
      h("td", {}, r.lines.map((l) => `${l.quantity} × ${l.sku}${r.status !== "requested" && r.status !== "approved" && !l.restock ? " (written off)" : ""}`).join(", ")),
      h("td", {}, r.note ? `${r.reason} · rejected: ${r.note}` : r.reason, r.tracking_number ? [" · label ", h("code", {}, r.tracking_number)] : null),
      h("td", { class: "num" }, r.refund_amount ? money(r.refund_amount) : ""),
      actions);
  });
  return h("div", { id: "returns" }, table(["Return", "Status", "Lines", "Reason", "Amount", "Next"], rows));
}

async function order(id) {
  const o = (await call("get_order", { path: { id } })).data;
  let shipmentCreated;
  if (o.shipment) {
    try {
      shipmentCreated = (await call("get_shipment", { path: { id: o.shipment.id } })).data.created_at;
    } catch { /* shown without it */ }
  }
  const actions = h("div", { id: "order-actions" });
  if (["pending", "stock_reserved", "paid", "confirmed"].includes(o.status)) {
    actions.append(h("button", {
      type: "button", class: "danger", id: "cancel-order",
      onclick: async () => {
        if (!confirm("Cancel this order? Stock is released and a payment refunded.")) return;
        try {
          await call("cancel_order", { path: { id } });
          render();
        } catch (e) {
          notice(actions, "error", e.message);
        }
      },
    }, "Cancel order"));
  }
  return h("section", {},
    h("h1", {}, `Order ${short(o.id)} `, h("span", { class: "badge", id: "order-status" }, label(o.status))),
    h("p", {}, `Placed ${when(o.placed_at)} by `, h("code", {}, o.customer_id), ` · total ${money(o.total)}`,
      o.shipment ? [" · shipment ", h("a", { href: `#/shipments/${o.shipment.id}` }, o.shipment.tracking_number ?? short(o.shipment.id))] : null),
    actions,
    h("h2", {}, "Timeline"), timeline(o, shipmentCreated),
    h("h2", {}, "Lines"),
    table(["SKU", "Name", "Qty", "Price", "Total"], o.lines.map((l) => h("tr", {}, h("td", {}, l.sku), h("td", {}, l.name), h("td", { class: "num" }, l.quantity), h("td", { class: "num" }, money(l.unit_price)), h("td", { class: "num" }, money(l.line_total))))),
    h("p", { class: "muted" }, `Subtotal ${money(o.subtotal)} · discount ${money(o.discount)} · shipping ${money(o.shipping)} · tax ${money(o.tax)}`),
    h("h2", {}, "Payments"),
    h("p", { id: "refund-summary" }, `Refunded ${money(o.refunded)} · refundable ${money(o.refundable)}`),
    o.refundable.amount > 0 ? refundForm(o) : null,
    h("div", { id: "payments" }, table(["Kind", "Status", "Amount", "Reason", "Attempts", "Updated"], o.payments.map((p) => h("tr", { class: `payment-${p.kind}` }, h("td", {}, p.kind), h("td", {}, label(p.status)), h("td", { class: "num" }, money(p.amount)), h("td", {}, p.reason ?? ""), h("td", { class: "num" }, p.attempts), h("td", {}, when(p.updated_at)))))),
    h("h2", {}, "Returns"),
    ["shipped", "delivered"].includes(o.status) ? returnForm(o) : null,
    returnsSection(o));
}

async function catalog() {
  const form = h("form", { class: "row", role: "search" },
    field("Search", "q", h("input", { type: "search" })),
    h("button", { type: "submit" }, "Search"));
  const results = h("div", {});
  const load = async () => {
    const { data } = await call("list_products", { query: { q: input(form, "q").value.trim(), limit: 50 } });
    results.replaceChildren(table(["Name", "SKU", "Price", "Variants", "Status"], data.items.map((p) => h("tr", { "data-id": p.id },
      h("td", {}, h("a", { href: `#/catalog/${p.id}` }, p.name)), h("td", {}, p.sku), h("td", { class: "num" }, money(p.price)),
      h("td", { class: "num" }, p.variants.length), h("td", {}, p.status)))));
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load().catch((e) => showProblem(form, e)); });
  await load();
  return h("section", {}, h("h1", {}, "Catalog"), h("p", {}, h("a", { href: "#/catalog/new", id: "new-product" }, "New product")), form, results);
}

function productFields(p) {
  return [
    field("Name", "name", h("input", { type: "text", value: p?.name ?? "" })),
    field("SKU", "sku", h("input", { type: "text", value: p?.sku ?? "", disabled: Boolean(p) })),
    field("Price", "price", h("input", { type: "text", inputmode: "decimal", value: p ? majorUnits(p.price) : "" }), "e.g. 12.99"),
    field("Currency", "currency", h("input", { type: "text", value: p?.price.currency ?? "EUR", maxlength: 3, size: 4, disabled: Boolean(p) })),
    field("Description", "description", h("textarea", { rows: 3 }, p?.description ?? "")),
  ];
}

function priceOf(form) {
  const currency = input(form, "currency").value.trim().toUpperCase();
  const amount = minorUnits(input(form, "price").value, currency);
  if (amount === null) {
    throw new Problem(422, { detail: "the request is not valid", errors: [{ field: "price", message: "enter a price such as 12.99" }] });
  }
  return { amount, currency };
}

// "Size: S, M, L; Colour: Navy, Green" → options, and one variant per combination, each with
// the product's SKU and its values (TEE-M-NAVY) and the product's price.
function optionsOf(text, sku) {
  const options = text.split(";").map((part) => part.trim()).filter(Boolean).map((part) => {
    const [name, values = ""] = part.split(":");
    return { name: name.trim(), values: values.split(",").map((v) => v.trim()).filter(Boolean) };
  });
  let combinations = [{}];
  for (const o of options) {
    combinations = combinations.flatMap((c) => o.values.map((v) => ({ ...c, [o.name]: v })));
  }
  const variants = options.length ? combinations.map((c) => ({
    sku: [sku, ...Object.values(c)].join("-").toUpperCase().replace(/[^A-Z0-9-]+/g, "-"),
    options: c,
  })) : [];
  return { options, variants };
}

function newProduct() {
  const form = h("form", { class: "stack", id: "product-form" }, productFields(null),
    field("Options (optional)", "options", h("input", { type: "text", placeholder: "Size: S, M, L; Colour: Navy, Green" }),
      "One variant is created for every combination."),
    h("div", {}, h("button", { class: "primary", type: "submit" }, "Create product")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { name: input(form, "name").value, sku: input(form, "sku").value, price: priceOf(form) };
      if (input(form, "description").value.trim()) body.description = input(form, "description").value;
      const { options, variants } = optionsOf(input(form, "options").value, body.sku);
      if (options.length) Object.assign(body, { options, variants });
      const { data } = await call("create_product", { body });
      location.hash = `#/catalog/${data.id}`;
    } catch (e) {
      showProblem(form, e);
    }
  });
  return h("section", {}, h("h1", {}, "New product"), form);
}

async function product(id) {
  const { data: p, etag } = await call("get_product", { path: { id } });
  const hasOptions = p.options.length > 0;
  const form = h("form", { class: "stack", id: "product-form" }, productFields(p), h("div", {}, h("button", { class: "primary", type: "submit" }, "Save changes")));
  if (hasOptions) input(form, "price").disabled = true;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { name: input(form, "name").value, description: input(form, "description").value.trim() ? input(form, "description").value : null };
      if (!hasOptions) body.price = priceOf(form);
      await call("update_product", { path: { id }, headers: { "If-Match": etag }, body });
      await render();
      notice(document.getElementById("product-form"), "ok", "Saved.");
    } catch (e) {
      showProblem(form, e);
    }
  });
  const stock = h("div", { id: "stock" });
  for (const v of p.variants) {
    const read = hasOptions
      ? call("get_variant_stock", { path: { id, variant_id: v.id } })
      : call("get_stock", { path: { id } });
    const s = (await read).data;
    const sf = h("form", { class: "row stock-form", "data-variant": v.id },
      h("span", {}, h("strong", {}, v.title || p.name), ` ${v.sku}: on hand ${s.on_hand}, reserved ${s.reserved}, available ${s.available}`),
      field(`On hand: ${v.title || p.name}`, `on_hand-${v.id}`, h("input", { type: "number", min: 0, value: s.on_hand })),
      h("button", { type: "submit" }, "Set stock"));
    sf.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const on_hand = Number(sf.querySelector("input").value);
      try {
        if (hasOptions) await call("set_variant_stock", { path: { id, variant_id: v.id }, body: { on_hand } });
        else await call("set_stock", { path: { id }, body: { on_hand } });
        await render();
        notice(document.getElementById("stock"), "ok", "Stock set.");
      } catch (e) {
        notice(sf, "error", e.message + (e.body?.errors ? `: ${e.body.errors.map((x) => x.message).join("; ")}` : ""));
      }
    });
    stock.append(sf);
  }
  const variants = hasOptions ? variantSection(p, etag) : null;
  const archive = h("div", {}, p.status === "archived" ? h("p", { class: "muted" }, "Archived.") : h("button", {
    type: "button", class: "danger", id: "archive-product",
    onclick: async () => {
      if (!confirm(`Archive ${p.name}? It can no longer be bought.`)) return;
      try {
        await call("archive_product", { path: { id }, headers: { "If-Match": etag } });
        render();
      } catch (e) {
        notice(archive, "error", e.message);
      }
    },
  }, "Archive product"));
  return h("section", {}, h("h1", {}, p.name), h("p", { class: "muted" }, `${p.status} · revision ${p.revision}`),
    form, variants, h("h2", {}, "Stock"), stock, h("h2", {}, "Archive"), archive);
}

// A product with options: each variant's price, and a form to add one.
function variantSection(p, etag) {
  const rows = p.variants.map((v) => {
    const price = h("input", { type: "text", inputmode: "decimal", size: 8, value: majorUnits(v.price), "aria-label": `Price of ${v.title}` });
    const save = h("form", { class: "row variant-price", "data-variant": v.id }, price, h("button", { type: "submit" }, "Save price"));
    save.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const amount = minorUnits(price.value, v.price.currency);
        if (amount === null) throw new Problem(422, { detail: "enter a price such as 12.99" });
        await call("update_variant", { path: { id: p.id, variant_id: v.id }, headers: { "If-Match": etag }, body: { price: { amount, currency: v.price.currency } } });
        await render();
        notice(document.getElementById("variants"), "ok", `Saved the price of ${v.title}.`);
      } catch (e) {
        notice(save, "error", e.message + (e.body?.errors ? `: ${e.body.errors.map((x) => x.message).join("; ")}` : ""));
      }
    });
    return h("tr", { "data-id": v.id }, h("td", {}, v.title), h("td", {}, v.sku), h("td", { class: "num" }, money(v.price)), h("td", {}, save));
  });
  const add = h("form", { class: "row", id: "add-variant" },
    p.options.map((o) => field(o.name, `option-${o.name}`, h("input", { type: "text", placeholder: o.values.join(", ") }))),
    field("SKU", "variant-sku", h("input", { type: "text" })),
    h("button", { type: "submit" }, "Add variant"));
  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const options = Object.fromEntries(p.options.map((o) => [o.name, input(add, `option-${o.name}`).value.trim()]));
    try {
      await call("add_variant", { path: { id: p.id }, headers: { "If-Match": etag }, body: { sku: input(add, "variant-sku").value, options } });
      await render();
      notice(document.getElementById("variants"), "ok", "Variant added.");
    } catch (e) {
      notice(add, "error", e.message + (e.body?.errors ? `: ${e.body.errors.map((x) => `${x.field}: ${x.message}`).join("; ")}` : ""));
    }
  });
  return h("div", { id: "variants" }, h("h2", {}, "Variants"),
    table(["Variant", "SKU", "Price", "New price"], rows), h("h2", {}, "Add a variant"), add);
}

async function shipments() {
  const { data } = await call("list_shipments", { query: { limit: 50 } });
  return h("section", {}, h("h1", {}, "Shipments"),
    table(["Shipment", "Order", "Tracking", "Status", "Created"], data.items.map((s) => h("tr", { "data-id": s.id, "data-order": s.order_id },
      h("td", {}, h("a", { href: `#/shipments/${s.id}` }, short(s.id))), h("td", {}, h("a", { href: `#/orders/${s.order_id}` }, short(s.order_id))),
      h("td", {}, s.tracking_number ?? ""), h("td", {}, h("span", { class: "badge" }, label(s.status))), h("td", {}, when(s.created_at))))));
}

async function shipment(id) {
  const s = (await call("get_shipment", { path: { id } })).data;
  const form = h("form", { class: "row", id: "carrier-event" },
    field("Event", "type", h("select", {}, ["dispatched", "in_transit", "delivered"].map((t) => h("option", { value: t }, label(t))))),
    field("Location", "location", h("input", { type: "text" })),
    h("button", { class: "primary", type: "submit" }, "Record event"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { type: input(form, "type").value };
      if (input(form, "location").value.trim()) body.location = input(form, "location").value;
      await call("record_carrier_event", { path: { id }, body });
      await render();
      notice(document.getElementById("carrier-event"), "ok", "Recorded.");
    } catch (e) {
      showProblem(form, e);
    }
  });
  return h("section", {},
    h("h1", {}, `Shipment ${short(s.id)} `, h("span", { class: "badge", id: "shipment-status" }, label(s.status))),
    h("p", {}, "Order ", h("a", { href: `#/orders/${s.order_id}` }, short(s.order_id)), ` · ${s.carrier} ${s.tracking_number ?? ""}`),
    h("h2", {}, "Carrier events"), form,
    table(["Event", "Location", "When"], s.events.map((e) => h("tr", {}, h("td", {}, label(e.type)), h("td", {}, e.location ?? ""), h("td", {}, when(e.occurred_at))))),
    h("h2", {}, "Lines"),
    table(["SKU", "Qty"], s.lines.map((l) => h("tr", {}, h("td", {}, l.sku ?? l.product_id), h("td", { class: "num" }, l.quantity)))));
}

async function deadLetters() {
  const { data } = await call("list_dead_letters", { query: { limit: 100 } });
  const rows = data.items.map((d) => {
    const envelope = h("tr", { hidden: true, id: `envelope-${d.id}` },
      h("td", { colspan: 6 }, h("pre", {}, JSON.stringify(d.envelope, null, 2))));
    const cell = h("td", {},
      h("button", { type: "button", "aria-controls": envelope.id, "aria-expanded": "false", onclick: (ev) => {
        envelope.hidden = !envelope.hidden;
        ev.target.setAttribute("aria-expanded", String(!envelope.hidden));
      } }, "Envelope"), " ",
      d.replayed_at ? h("span", { class: "muted" }, `replayed ${when(d.replayed_at)}`) : h("button", {
        type: "button", class: "primary replay",
        onclick: async () => {
          try {
            await call("replay_dead_letter", { path: { id: d.id } });
            await render();
            notice(document.getElementById("main").firstChild, "ok", `Replayed ${d.event_type} for ${d.consumer_group}.`);
          } catch (e) {
            notice(cell, "error", e.message);
          }
        },
      }, "Replay"));
    return [h("tr", { "data-id": d.id }, h("td", {}, d.consumer_group), h("td", {}, d.event_type), h("td", {}, d.error), h("td", { class: "num" }, d.attempts), h("td", {}, when(d.failed_at)), cell), envelope];
  });
  return h("section", {}, h("h1", {}, "Dead letters"),
    h("p", { class: "muted" }, "Events a consumer could not handle, across every context. Replaying runs the handler again."),
    table(["Consumer", "Event", "Error", "Attempts", "Failed", ""], rows));
}

async function customers() {
  const { data } = await call("list_users", { query: { limit: 100 } });
  const rows = data.items.map((u) => {
    const box = (role) => h("label", {}, h("input", { type: "checkbox", value: role, checked: u.roles.includes(role) }), ` ${role} `);
    const form = h("form", { class: "row roles", "aria-label": `Roles of ${u.email}` }, box("customer"), box("admin"), h("button", { type: "submit" }, "Save roles"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const roles = [...form.querySelectorAll("input:checked")].map((i) => i.value);
      try {
        await call("set_user_roles", { path: { id: u.id }, body: { roles } });
        notice(form, "ok", "Saved.");
      } catch (e) {
        notice(form, "error", e.message + (e.body?.errors ? `: ${e.body.errors.map((x) => x.message).join("; ")}` : ""));
      }
    });
    return h("tr", { "data-id": u.id, "data-email": u.email }, h("td", {}, u.email), h("td", {}, u.name), h("td", {}, when(u.created_at)), h("td", {}, form));
  });
  return h("section", {}, h("h1", {}, "Customers"), table(["Email", "Name", "Since", "Roles"], rows));
}

document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", () => render());
render();
