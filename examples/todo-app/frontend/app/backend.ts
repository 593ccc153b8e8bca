export const BACKEND_URL = process.env.BACKEND_URL ?? 'http://backend:8000';
