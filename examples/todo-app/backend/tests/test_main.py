from fastapi.testclient import TestClient

from main import app

client = TestClient(app)


def test_health_and_ready():
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200


def test_crud():
    t = client.post("/todos", json={"title": "write docs"}).json()
    assert t["done"] is False
    assert client.patch(f"/todos/{t['id']}", json={"done": True}).json()["done"] is True
    assert any(x["id"] == t["id"] for x in client.get("/todos").json())
    assert client.delete(f"/todos/{t['id']}").status_code == 204
    assert client.delete(f"/todos/{t['id']}").status_code == 404
