"""The admin console in a real browser (Debian's chromium and chromedriver, driven by Selenium).

    python admin_console.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD SCREENSHOT_DIR OTHER_ADMIN_EMAIL

An admin signs in, creates a product (seeing the API's refusal next to its field first) and
sets its stock; a customer buys it through the API; the admin finds the order, watches its
timeline reach `confirmed`, posts `dispatched` (after a refused `delivered`) and sees the order
move, refunds part of it and takes a return back (approved, received, written off), replays
the dead letter the calling test parked for `ordering.products`, is refused an
empty role list, takes the admin role from the other admin and is then refused losing it
(the last admin), and signs out. A customer account is shown "not an admin". Every page is
screenshotted, every field must have a label, and no request may leave the server's origin.
Exits non-zero on the first failed expectation.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, ADMIN_EMAIL, ADMIN_PASSWORD, SHOTS, OTHER_ADMIN = sys.argv[1:6]
ORIGIN = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(BASE))


def api(method, path, token=None, body=None):
    """One API call as a customer's client would make it; (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("accept", "application/json")
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            raw = res.read()
            return res.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def expect(ok, what):
    if not ok:
        raise AssertionError(what)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("EMPORIUM_TEST_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(executable_path=os.environ.get("EMPORIUM_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


driver = browser()
wait = WebDriverWait(driver, 20)
shot_no = 0


def shot(name):
    global shot_no
    shot_no += 1
    driver.save_screenshot(os.path.join(SHOTS, f"{shot_no:02d}-{name}.png"))


def find(css):
    return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def text_in(css, text):
    try:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    except TimeoutException:
        shot("failed")
        found = [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
        raise AssertionError(f"{css!r} never showed {text!r}; it shows {found!r}")


def nonempty(css):
    """The text `css` comes to show (a refusal, once the server answered)."""
    try:
        return wait.until(lambda d: "".join(e.text for e in d.find_elements(By.CSS_SELECTOR, css)).strip())
    except TimeoutException:
        shot("failed")
        raise AssertionError(f"{css!r} stayed empty")


def go(hash_):
    # The console keeps its tokens in memory: navigate inside the page, never reload it.
    driver.execute_script("location.hash = arguments[0]", hash_)


def heading(text):
    text_in("main h1", text)
    labelled()


def labelled():
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('main input, main select, main textarea')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))"
        ".map(e => e.outerHTML)")
    expect(not unlabelled, f"fields without a label: {unlabelled}")


def fill(css, value):
    field = find(css)
    field.clear()
    field.send_keys(value)


def tab_to(css, presses=40):
    """Presses Tab from the top of the page until `css` has the focus."""
    target = find(css)
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.focus()")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(presses):
        if driver.switch_to.active_element == target:
            return
        driver.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"Tab never reaches {css}")


def new_product(name, sku, price, options=None):
    """Opens the catalog's new-product form, fills it and submits it."""
    find("nav a[href='#/catalog']").click()
    heading("Catalog")
    find("#new-product").click()
    heading("New product")
    fill("#f-name", name)
    fill("#f-sku", sku)
    fill("#f-price", price)
    if options:
        fill("#f-options", options)
    driver.find_element(By.CSS_SELECTOR, "#product-form button[type=submit]").click()


def sign_in(email, password):
    find("#sign-in")
    fill("#f-email", email)
    fill("#f-password", password)
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()


def refresh_until(hash_, css, text, seconds=30):
    """Re-renders the page until `css` shows `text` (the saga runs in the background)."""
    deadline = time.time() + seconds
    while True:
        go("#/overview")
        go(hash_)
        try:
            WebDriverWait(driver, 2).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
            return
        except TimeoutException:
            if time.time() > deadline:
                shot("failed")
                raise AssertionError(f"{hash_}: {css} never showed {text!r}")


try:
    driver.get(BASE + "/admin/")
    heading("Sign in")
    shot("sign-in")
    sign_in(ADMIN_EMAIL, "not-the-password-1")
    nonempty("#sign-in .notice.error")

    # With the keyboard alone: Tab to the fields, type, Enter; then Tab to a section and Enter.
    find("#f-email").clear()
    find("#f-password").clear()
    tab_to("#f-email")
    driver.switch_to.active_element.send_keys(ADMIN_EMAIL, Keys.TAB, ADMIN_PASSWORD, Keys.ENTER)
    heading("Overview")
    tab_to("nav a[href='#/orders']")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    heading("Orders")
    tab_to("nav a[href='#/overview']")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    heading("Overview")
    find("#orders-today")
    find("#funnel")
    text_in("#readiness", "up")
    text_in("#messaging", "ordering")
    shot("overview")

    # A product: the API's refusal shown next to its field, then created, then stocked.
    new_product("Browser mug", "BROWSER-" + uuid.uuid4().hex[:8].upper(), "-5")
    nonempty("#err-price")
    expect(find("#f-price").get_attribute("aria-invalid") == "true", "the refused field is marked invalid")
    shot("product-refused")
    fill("#f-price", "12.50")
    driver.find_element(By.CSS_SELECTOR, "#product-form button[type=submit]").click()
    heading("Browser mug")
    product_id = driver.current_url.rsplit("/", 1)[-1]
    stock = find(f".stock-form[data-variant='{product_id}'] input")
    stock.clear()
    stock.send_keys("5")
    driver.find_element(By.CSS_SELECTOR, f".stock-form[data-variant='{product_id}'] button").click()
    text_in("#stock", "on hand 5")
    shot("product")

    # A product with options: a variant per combination, a variant's price, one more variant
    # (and the refusal of the same combination again), stock per variant.
    tee = "TEE-" + uuid.uuid4().hex[:6].upper()
    new_product("Browser tee", tee, "19", "Size: S, M")
    heading("Browser tee")
    expect(len(driver.find_elements(By.CSS_SELECTOR, "#variants tbody tr")) == 2, "one variant per size")
    text_in("#variants", f"{tee}-M")
    medium = driver.find_element(By.XPATH, "//div[@id='variants']//tr[td[1][normalize-space()='M']]")
    price = medium.find_element(By.CSS_SELECTOR, ".variant-price input")
    price.clear()
    price.send_keys("21.00")
    medium.find_element(By.CSS_SELECTOR, ".variant-price button").click()
    text_in("#variants .notice.ok", "Saved the price of M")
    text_in("#variants", "€21.00")
    fill("#f-option-Size", "L")
    fill("#f-variant-sku", f"{tee}-L")
    driver.find_element(By.CSS_SELECTOR, "#add-variant button[type=submit]").click()
    text_in("#variants .notice.ok", "Variant added")
    expect(len(driver.find_elements(By.CSS_SELECTOR, "#variants tbody tr")) == 3, "the new size is listed")
    fill("#f-option-Size", "L")
    fill("#f-variant-sku", f"{tee}-L2")
    driver.find_element(By.CSS_SELECTOR, "#add-variant button[type=submit]").click()
    nonempty("#add-variant .notice.error")
    forms = driver.find_elements(By.CSS_SELECTOR, ".stock-form")
    expect(len(forms) == 3, f"stock per variant: {len(forms)} forms")
    forms[0].find_element(By.CSS_SELECTOR, "input").clear()
    forms[0].find_element(By.CSS_SELECTOR, "input").send_keys("7")
    forms[0].find_element(By.CSS_SELECTOR, "button").click()
    text_in("#stock", "on hand 7")
    shot("product-variants")

    # A customer buys it through the API.
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    password = "browser-violet-anchor-7"
    status, _ = api("POST", "/api/v1/identity/users", body={"email": email, "password": password, "name": "Browser Buyer"})
    expect(status == 201, f"sign-up: {status}")
    status, tokens = api("POST", "/api/v1/identity/tokens", body={"email": email, "password": password})
    expect(status == 200, f"log-in: {status}")
    customer = tokens["access_token"]
    status, body = api("POST", "/api/v1/ordering/cart/items", customer, {"product_id": product_id, "quantity": 2})
    expect(status == 200, f"add to cart: {status} {body}")
    address = {"name": "Browser Buyer", "line1": "1 Console Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    status, placed = api("POST", "/api/v1/ordering/orders", customer, {"shipping_address": address, "payment_token": "tok_visa"})
    expect(status == 202, f"checkout: {status} {placed}")
    order_id = placed["id"]

    # The admin finds it, filtered by customer and status, and watches the saga.
    find("nav a[href='#/orders']").click()
    heading("Orders")
    find(f"#order-results tr[data-id='{order_id}']")
    fill("#f-customer_id", placed["customer_id"])
    Select(find("#f-status")).select_by_value("cancelled")
    driver.find_element(By.CSS_SELECTOR, "#order-filter button[type=submit]").click()
    text_in("#order-results", "Nothing here.")
    Select(find("#f-status")).select_by_value("")
    driver.find_element(By.CSS_SELECTOR, "#order-filter button[type=submit]").click()
    find(f"#order-results tr[data-id='{order_id}'] a").click()
    refresh_until(f"#/orders/{order_id}", "#order-status", "confirmed")
    for step in ("Placed", "Stock reserved", "Paid", "Shipment created", "Confirmed"):
        find(f"#timeline li.done[data-step='{step}'] time")
    find("#timeline li.todo[data-step='Dispatched']")
    shot("order-confirmed")

    # The carrier's events: `delivered` before dispatch is refused, `dispatched` moves the order.
    find("nav a[href='#/shipments']").click()
    heading("Shipments")
    find(f"tr[data-order='{order_id}'] td a").click()
    heading("Shipment")
    Select(find("#f-type")).select_by_value("delivered")
    driver.find_element(By.CSS_SELECTOR, "#carrier-event button[type=submit]").click()
    nonempty("#carrier-event .notice.error")
    shot("shipment-refused")
    Select(find("#f-type")).select_by_value("dispatched")
    fill("#f-location", "Leipzig hub")
    driver.find_element(By.CSS_SELECTOR, "#carrier-event button[type=submit]").click()
    text_in("#shipment-status", "dispatched")
    text_in("main table", "Leipzig hub")
    shot("shipment-dispatched")
    refresh_until(f"#/orders/{order_id}", "#order-status", "shipped")
    find("#timeline li.done[data-step='Dispatched'] time")
    shot("order-shipped")

    # After the sale: a goodwill refund from the order page, a refused one beyond the charge,
    # then a return the customer asks for, approved and received with its unit written off.
    fill("#f-refund_amount", "1.00")
    fill("#f-refund_reason", "console goodwill")
    find("#refund-form button[type=submit]").click()
    refresh_until(f"#/orders/{order_id}", "#refund-summary", "Refunded €1.00")
    text_in("#payments", "console goodwill")
    fill("#f-refund_amount", "100000")
    fill("#f-refund_reason", "far too much")
    find("#refund-form button[type=submit]").click()
    nonempty("#refund-form .notice.error")
    # The admin opens the return the customer phoned about: nothing chosen is refused first.
    fill("#f-return_reason", "too big")
    find("#return-form button[type=submit]").click()
    nonempty("#return-form .notice.error")
    count = find("#return-form input[type=number]")
    count.clear()
    count.send_keys("1")
    fill("#f-return_reason", "too big")
    find("#return-form button[type=submit]").click()
    find("tr[data-return] .return-status")
    status, body = api("GET", f"/api/v1/ordering/orders/{order_id}", customer)
    expect(status == 200 and len(body["returns"]) == 1, f"one return: {status} {body}")
    return_id = body["returns"][0]["id"]
    text_in(f"tr[data-return='{return_id}'] .return-status", "requested")
    find(f"tr[data-return='{return_id}'] button.approve").click()
    text_in(f"tr[data-return='{return_id}'] .return-status", "approved")
    find(f"tr[data-return='{return_id}'] input[type=checkbox]").click()
    find(f"tr[data-return='{return_id}'] button.receive").click()
    refresh_until(f"#/orders/{order_id}", f"tr[data-return='{return_id}'] .return-status", "refunded")
    text_in(f"tr[data-return='{return_id}']", "written off")
    shot("order-returned")

    # The dead letter the test parked: its envelope, then a replay.
    find("nav a[href='#/dead-letters']").click()
    heading("Dead letters")
    text_in("main table", "ordering.products")
    letter = driver.find_element(By.XPATH, "//tr[td[1][normalize-space()='ordering.products']]")
    letter_id = letter.get_attribute("data-id")
    letter.find_element(By.XPATH, ".//button[normalize-space()='Envelope']").click()
    find(f"#envelope-{letter_id}")
    text_in(f"#envelope-{letter_id}", "catalog.product_created")
    shot("dead-letter")
    letter.find_element(By.CSS_SELECTOR, "button.replay").click()
    text_in("main .notice.ok", "Replayed")
    text_in(f"tr[data-id='{letter_id}']", "replayed")
    shot("dead-letter-replayed")

    # Customers: an empty role list is refused with the API's reason.
    find("nav a[href='#/customers']").click()
    heading("Customers")
    buyer = find(f"tr[data-email='{email}']")
    for box in buyer.find_elements(By.CSS_SELECTOR, "input[type=checkbox]:checked"):
        box.click()
    buyer.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    nonempty(f"tr[data-email='{email}'] .notice.error")
    # The last admin keeps the role, and is told why.
    other = find(f"tr[data-email='{OTHER_ADMIN}']")
    other.find_element(By.CSS_SELECTOR, "input[value=admin]").click()
    other.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    text_in(f"tr[data-email='{OTHER_ADMIN}'] .notice.ok", "Saved")
    me = find(f"tr[data-email='{ADMIN_EMAIL}']")
    me.find_element(By.CSS_SELECTOR, "input[value=admin]").click()
    me.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    text_in(f"tr[data-email='{ADMIN_EMAIL}'] .notice.error", "last admin")
    shot("customers")

    # The overview again, now with the day's order in it.
    find("nav a[href='#/overview']").click()
    heading("Overview")
    text_in("#orders-today", "1 placed")
    text_in("#latency", "p50")
    shot("overview-with-orders")

    find("#sign-out").click()
    heading("Sign in")

    # A customer account is told it is not an admin.
    sign_in(email, password)
    heading("Not an admin")
    expect(not find("#sign-out").get_attribute("hidden"), "a customer can sign out")
    expect(driver.find_element(By.ID, "nav").get_attribute("hidden") is not None, "a customer sees no admin sections")
    shot("not-admin")
    find("#sign-out").click()
    heading("Sign in")

    # On a phone: nothing wider than the screen.
    driver.set_window_size(390, 844)
    sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    heading("Overview")
    find("#orders-today")
    wide = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    expect(wide <= 0, f"the overview is {wide}px wider than a phone")
    shot("overview-phone")
    find("#sign-out").click()
    heading("Sign in")

    # Every request the pages made went to the server's origin.
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    urls += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    foreign = sorted({u for u in urls if not u.startswith(ORIGIN + "/") and not u.startswith("data:")})
    expect(urls, "the browser's requests were recorded")
    expect(not foreign, f"requests to other origins: {foreign}")
    print(f"admin console: {len(urls)} requests, all to {ORIGIN}; {shot_no} screenshots in {SHOTS}")
except Exception:
    shot("failed")
    with open(os.path.join(SHOTS, "failed-page.html"), "w") as f:
        f.write(driver.page_source)
    raise
finally:
    driver.quit()
