export const dynamic = 'force-dynamic';

// Liveness: the Node process is up and serving.
export function GET() {
  return Response.json({ status: 'ok' });
}
