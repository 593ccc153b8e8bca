import importlib
import os
import sys

from fastapi.testclient import TestClient


def load(tmp_path, monkeypatch):
    """The app, its store in a fresh file under tmp_path."""
    monkeypatch.setenv("TODO_SQLITE_PATH", str(tmp_path / "todo.sqlite3"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    sys.modules.pop("main", None)
    return importlib.import_module("main")


def test_health_and_ready_with_no_database_url(tmp_path, monkeypatch):
    client = TestClient(load(tmp_path, monkeypatch).app)
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["store"] == "sqlite"


def test_crud(tmp_path, monkeypatch):
    client = TestClient(load(tmp_path, monkeypatch).app)
    t = client.post("/todos", json={"title": "write docs"}).json()
    assert t["done"] is False
    assert client.patch(f"/todos/{t['id']}", json={"done": True}).json()["done"] is True
    assert any(x["id"] == t["id"] and x["done"] for x in client.get("/todos").json())
    assert client.delete(f"/todos/{t['id']}").status_code == 204
    assert client.delete(f"/todos/{t['id']}").status_code == 404
    assert client.post("/todos", json={"title": "  "}).status_code == 422


def test_todos_outlive_the_process(tmp_path, monkeypatch):
    client = TestClient(load(tmp_path, monkeypatch).app)
    client.post("/todos", json={"title": "kept"})
    again = TestClient(load(tmp_path, monkeypatch).app)
    assert [x["title"] for x in again.get("/todos").json()] == ["kept"]


def test_an_unwritable_store_is_not_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("TODO_SQLITE_PATH", os.path.join(str(tmp_path), "missing", "todo.sqlite3"))
    sys.modules.pop("main", None)
    client = TestClient(importlib.import_module("main").app)
    assert client.get("/ready").status_code == 503
