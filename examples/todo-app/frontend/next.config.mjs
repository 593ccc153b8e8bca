/** @type {import('next').NextConfig} */
const nextConfig = {
  // The image copies only .next/standalone, .next/static and public.
  output: 'standalone',
  poweredByHeader: false,
};

export default nextConfig;
