from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text


def create(client: TestClient, **payload: Any) -> dict[str, Any]:
    response = client.post("/items", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/items/{body['id']}"
    return body


def test_readiness_is_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_create_returns_the_stored_item(client: TestClient, engine: Engine) -> None:
    before = datetime.now(UTC)
    item = create(client, name="  Grüße ✓  ", description="first")
    assert item["id"] == 1
    assert (item["name"], item["description"]) == ("Grüße ✓", "first")
    assert item["created_at"].endswith("Z")
    created = datetime.fromisoformat(item["created_at"])
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, description FROM items WHERE id = 1")).one()
    assert tuple(row) == ("Grüße ✓", "first")


def test_description_is_optional(client: TestClient) -> None:
    assert create(client, name="a")["description"] is None
    assert create(client, name="b", description=None)["description"] is None


def test_limits_are_inclusive(client: TestClient) -> None:
    item = create(client, name="n" * 200, description="d" * 2000)
    assert (len(item["name"]), len(item["description"])) == (200, 2000)


def test_get_round_trips(client: TestClient) -> None:
    item = create(client, name="thing")
    response = client.get(f"/items/{item['id']}")
    assert (response.status_code, response.json()) == (200, item)


def test_missing_item_is_404_naming_the_id(client: TestClient) -> None:
    response = client.get("/items/424242")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found"
    assert "424242" in body["detail"]


def test_list_pages_in_id_order_following_next(client: TestClient) -> None:
    ids = [create(client, name=f"item {n}")["id"] for n in range(5)]

    everything = client.get("/items").json()
    assert (everything["limit"], everything["next"]) == (20, None)
    assert [i["id"] for i in everything["items"]] == ids

    seen: list[int] = []
    page = client.get("/items", params={"limit": 2}).json()
    while True:
        assert page["limit"] == 2
        seen += [i["id"] for i in page["items"]]
        if page["next"] is None:
            break
        page = client.get("/items", params={"limit": 2, "cursor": page["next"]}).json()
    assert seen == ids


def test_metrics_count_created_items_by_route(client: TestClient) -> None:
    create(client, name="a")
    create(client, name="b")
    text_format = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/items",status="201"} 2.0' in text_format
