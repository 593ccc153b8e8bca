import { BACKEND_URL } from '../backend';

export const dynamic = 'force-dynamic';

// Readiness: the backend this frontend depends on answers its health check.
export async function GET() {
  try {
    const res = await fetch(`${BACKEND_URL}/health`, { cache: 'no-store', signal: AbortSignal.timeout(2000) });
    if (res.ok) return Response.json({ status: 'ready' });
    return Response.json({ status: 'not ready', backend: res.status }, { status: 503 });
  } catch (e) {
    return Response.json({ status: 'not ready', backend: String(e) }, { status: 503 });
  }
}
