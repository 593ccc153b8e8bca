"""Todo API with the same health endpoints as the original app.

The todos live in SQLite. The original app kept them in PostgreSQL through
DATABASE_URL; this example ships no PostgreSQL driver, so it needs no
Secret to start: with no DATABASE_URL it writes to TODO_SQLITE_PATH (by
default /tmp/todo.sqlite3, a writable path of the hardened Deployment).
"""

import os
import sqlite3
import threading

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="todo-backend")

SQLITE_PATH = os.environ.get("TODO_SQLITE_PATH", "/tmp/todo.sqlite3")


class TodoIn(BaseModel):
    title: str


class TodoPatch(BaseModel):
    title: str | None = None
    done: bool | None = None


class Todo(BaseModel):
    id: int
    title: str
    done: bool = False


# One connection, used under a lock: FastAPI runs these handlers in a
# thread pool, and the example's traffic does not need more.
_lock = threading.Lock()
_db: sqlite3.Connection | None = None


def _conn() -> sqlite3.Connection:
    global _db
    if _db is None:
        _db = sqlite3.connect(SQLITE_PATH, check_same_thread=False)
        _db.execute(
            "CREATE TABLE IF NOT EXISTS todos ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0)"
        )
        _db.commit()
    return _db


def _todo(row: tuple) -> Todo:
    return Todo(id=row[0], title=row[1], done=bool(row[2]))


@app.get("/health")
def health() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@app.get("/ready")
def ready() -> dict:
    """Readiness: the store can be used (a DATABASE_URL, when set, must be postgres)."""
    url = os.environ.get("DATABASE_URL", "")
    if url and not url.startswith(("postgres://", "postgresql://")):
        raise HTTPException(status_code=503, detail="DATABASE_URL is not a PostgreSQL URL")
    try:
        with _lock:
            _conn().execute("SELECT 1").fetchone()
    except sqlite3.Error as e:
        raise HTTPException(status_code=503, detail=f"cannot open {SQLITE_PATH}: {e}") from e
    return {"status": "ready", "store": "sqlite", "path": SQLITE_PATH}


@app.get("/todos")
def list_todos() -> list[Todo]:
    with _lock:
        rows = _conn().execute("SELECT id, title, done FROM todos ORDER BY id").fetchall()
    return [_todo(r) for r in rows]


@app.post("/todos", status_code=201)
def create_todo(body: TodoIn) -> Todo:
    title = body.title.strip()
    if not title:
        raise HTTPException(status_code=422, detail="title must not be empty")
    with _lock:
        db = _conn()
        cur = db.execute("INSERT INTO todos (title) VALUES (?)", (title,))
        db.commit()
        return Todo(id=cur.lastrowid, title=title)


@app.patch("/todos/{todo_id}")
def update_todo(todo_id: int, body: TodoPatch) -> Todo:
    with _lock:
        db = _conn()
        row = db.execute("SELECT id, title, done FROM todos WHERE id = ?", (todo_id,)).fetchone()
        if row is None:
            raise HTTPException(status_code=404, detail="no such todo")
        todo = _todo(row)
        if body.title is not None:
            todo.title = body.title
        if body.done is not None:
            todo.done = body.done
        db.execute(
            "UPDATE todos SET title = ?, done = ? WHERE id = ?",
            (todo.title, int(todo.done), todo_id),
        )
        db.commit()
        return todo


@app.delete("/todos/{todo_id}", status_code=204)
def delete_todo(todo_id: int) -> None:
    with _lock:
        db = _conn()
        if db.execute("DELETE FROM todos WHERE id = ?", (todo_id,)).rowcount == 0:
            raise HTTPException(status_code=404, detail="no such todo")
        db.commit()
