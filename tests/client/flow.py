"""The shopping flow through a Python client generated from openapi/openapi.json.

Run by tests/contract/clients.sh (from .ci/run) with the package sdk/build.sh built: sign up, log in, browse, add to cart, check out, follow the order to
`confirmed`, read the shipment. Usage: flow.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD
(the package `emporium_client` must be installed).
"""

import sys
import time
import uuid

from emporium_client import AuthenticatedClient, Client
from emporium_client.api.catalog import create_product, get_product, list_products, set_stock
from emporium_client.api.identity import get_me, log_in, sign_up
from emporium_client.api.ordering import add_cart_item, get_cart, get_order, place_order
from emporium_client.api.shipping import get_shipment, track_shipment
from emporium_client.models import (
    AddCartItemRequest,
    AddressBody,
    CheckoutRequest,
    Country,
    CreateProductRequest,
    Currency,
    LogInRequest,
    PriceInput,
    SetStockRequest,
    SignUpRequest,
)


def expect(response, status):
    if response.status_code != status:
        raise SystemExit(f"expected {status}, got {response.status_code}: {response.content!r}")
    return response.parsed


def main(base, admin_email, admin_password):
    public = Client(base_url=base)
    admin_tokens = expect(log_in.sync_detailed(client=public, body=LogInRequest(email=admin_email, password=admin_password)), 200)
    admin = AuthenticatedClient(base_url=base, token=admin_tokens.access_token)
    sku = f"PY-{uuid.uuid4().hex[:12].upper()}"
    product = expect(
        create_product.sync_detailed(
            client=admin,
            body=CreateProductRequest(sku=sku, name="Generated-client mug", price=PriceInput(amount=1500, currency=Currency.EUR)),
        ),
        201,
    )
    expect(set_stock.sync_detailed(client=admin, id=product.id, body=SetStockRequest(on_hand=5)), 200)

    email = f"py-{uuid.uuid4().hex[:10]}@example.com"
    password = "generated-client-violet-9"
    expect(sign_up.sync_detailed(client=public, body=SignUpRequest(email=email, password=password, name="Py Client")), 201)
    tokens = expect(log_in.sync_detailed(client=public, body=LogInRequest(email=email, password=password)), 200)
    me = AuthenticatedClient(base_url=base, token=tokens.access_token)
    assert expect(get_me.sync_detailed(client=me), 200).email == email

    listed = expect(list_products.sync_detailed(client=public, q="generated-client"), 200)
    assert any(str(p.id) == str(product.id) for p in listed.items), "the new product is browsable"
    assert expect(get_product.sync_detailed(client=public, id=product.id), 200).sku == sku

    deadline = time.time() + 15
    while True:
        added = add_cart_item.sync_detailed(client=me, body=AddCartItemRequest(product_id=product.id, quantity=2))
        if added.status_code == 200:
            break
        if time.time() > deadline:
            raise SystemExit(f"ordering never learned of the product: {added.content!r}")
        time.sleep(0.1)
    cart = expect(get_cart.sync_detailed(client=me), 200)
    assert cart.total.amount == 3000, cart.total

    address = AddressBody(name="Py Client", line1="1 Spec Street", city="Berlin", postal_code="10115", country=Country.DE)
    order = expect(
        place_order.sync_detailed(
            client=me,
            body=CheckoutRequest(shipping_address=address, payment_token="tok_visa"),
            idempotency_key=str(uuid.uuid4()),
        ),
        202,
    )
    deadline = time.time() + 30
    while True:
        current = expect(get_order.sync_detailed(client=me, id=order.id), 200)
        if current.status == "confirmed":
            break
        if current.status == "cancelled" or time.time() > deadline:
            raise SystemExit(f"order did not confirm: {current.status}")
        time.sleep(0.1)
    shipment = expect(get_shipment.sync_detailed(client=me, id=current.shipment.id), 200)
    tracking = expect(track_shipment.sync_detailed(client=public, tracking_number=shipment.tracking_number), 200)
    print(f"client flow: order {order.id} confirmed, shipment {shipment.id} ({tracking.status}), tracking {shipment.tracking_number}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
