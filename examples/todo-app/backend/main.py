"""Todo API: in-memory store, with the same health endpoints as the original app."""

import os
import threading

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="todo-backend")


class TodoIn(BaseModel):
    title: str


class TodoPatch(BaseModel):
    title: str | None = None
    done: bool | None = None


class Todo(BaseModel):
    id: int
    title: str
    done: bool = False


_lock = threading.Lock()
_todos: dict[int, Todo] = {}
_next_id = 1


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
    return {"status": "ready", "store": "postgres" if url else "memory"}


@app.get("/todos")
def list_todos() -> list[Todo]:
    with _lock:
        return sorted(_todos.values(), key=lambda t: t.id)


@app.post("/todos", status_code=201)
def create_todo(body: TodoIn) -> Todo:
    global _next_id
    if not body.title.strip():
        raise HTTPException(status_code=422, detail="title must not be empty")
    with _lock:
        todo = Todo(id=_next_id, title=body.title.strip())
        _todos[todo.id] = todo
        _next_id += 1
        return todo


@app.patch("/todos/{todo_id}")
def update_todo(todo_id: int, body: TodoPatch) -> Todo:
    with _lock:
        todo = _todos.get(todo_id)
        if todo is None:
            raise HTTPException(status_code=404, detail="no such todo")
        if body.title is not None:
            todo.title = body.title
        if body.done is not None:
            todo.done = body.done
        return todo


@app.delete("/todos/{todo_id}", status_code=204)
def delete_todo(todo_id: int) -> None:
    with _lock:
        if _todos.pop(todo_id, None) is None:
            raise HTTPException(status_code=404, detail="no such todo")
