'use client';

import { FormEvent, useEffect, useState } from 'react';

type Todo = { id: number; title: string; done: boolean };

export default function Home() {
  const [todos, setTodos] = useState<Todo[]>([]);
  const [title, setTitle] = useState('');
  const [error, setError] = useState<string | null>(null);

  async function refresh() {
    const res = await fetch('/api/todos', { cache: 'no-store' });
    if (!res.ok) {
      setError(`backend answered ${res.status}`);
      return;
    }
    setError(null);
    setTodos(await res.json());
  }

  useEffect(() => {
    refresh();
  }, []);

  async function add(e: FormEvent) {
    e.preventDefault();
    if (!title.trim()) return;
    await fetch('/api/todos', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title }),
    });
    setTitle('');
    refresh();
  }

  async function toggle(t: Todo) {
    await fetch(`/api/todos?id=${t.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ done: !t.done }),
    });
    refresh();
  }

  return (
    <main>
      <h1>Todos</h1>
      {error && <p role="alert">{error}</p>}
      <form onSubmit={add}>
        <input value={title} onChange={(e) => setTitle(e.target.value)} placeholder="What needs doing?" />
        <button type="submit">Add</button>
      </form>
      <ul>
        {todos.map((t) => (
          <li key={t.id}>
            <label>
              <input type="checkbox" checked={t.done} onChange={() => toggle(t)} /> {t.title}
            </label>
          </li>
        ))}
      </ul>
    </main>
  );
}
