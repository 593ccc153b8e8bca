import { BACKEND_URL } from '../../backend';

export const dynamic = 'force-dynamic';

async function forward(req: Request, method: string) {
  const url = new URL(req.url);
  const id = url.searchParams.get('id');
  const target = id ? `${BACKEND_URL}/todos/${encodeURIComponent(id)}` : `${BACKEND_URL}/todos`;
  const res = await fetch(target, {
    method,
    headers: { 'content-type': 'application/json' },
    body: method === 'GET' ? undefined : await req.text(),
    cache: 'no-store',
  });
  return new Response(res.body, { status: res.status, headers: { 'content-type': 'application/json' } });
}

export const GET = (req: Request) => forward(req, 'GET');
export const POST = (req: Request) => forward(req, 'POST');
export const PATCH = (req: Request) => forward(req, 'PATCH');
export const DELETE = (req: Request) => forward(req, 'DELETE');
