// A local OpenID provider for tests/oidc.rs: the npm package
// oauth2-mock-server (discovery, JWKS, authorize, token with PKCE checks)
// with what the tests need around it. Started by the test; prints one JSON
// line {"port": N} when it listens on 127.0.0.1:N (port 0 = any free one).
//
//   node tests/oidc/provider.mjs /path/to/node_modules
//
// Added around the package:
// - a login page at /authorize (an email field and a button), as a real
//   provider would show; the address typed becomes the token's `email`.
// - the client secret checked at /token (PROVIDER_CLIENT_SECRET), each
//   code usable once (a second use is `invalid_grant`).
// - POST /test/next with JSON: how the next ID token is shaped
//   ({aud, nonce, iss, exp_offset, email_verified, stray_key}); the token
//   is signed again with jose after the package builds it.
// - POST /test/rotate: a new signing key, published in the JWKS and used
//   from then on (the old one stays published, as during a real rotation).
// - GET /test/stats: how often discovery, the JWKS and /token were asked.
// - GitHub's API for kind = "github": GET /github/user/emails with the
//   access token, the typed address as primary, verified unless the last
//   /test/next said email_verified = false.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
const load = (p) => import(pathToFileURL(path.join(modules, p)).href);
const { OAuth2Server } = await load('oauth2-mock-server/dist/index.js');
const jose = await load('jose/dist/webapi/index.js');

const secret = process.env.PROVIDER_CLIENT_SECRET || 'test-client-secret';
const server = new OAuth2Server();
const service = server.service;
let signing = await server.issuer.keys.generate('RS256');
const stray = await jose.generateKeyPair('RS256');

const emailForCode = new Map();
const emailForToken = new Map();
const usedCodes = new Set();
let next = {};
let githubVerified = true;
const stats = { discovery: 0, jwks: 0, token: 0 };

service.on('beforeAuthorizeRedirect', ({ url }, req) => {
  const code = url.searchParams.get('code');
  if (code) emailForCode.set(code, req.query.login_email || 'ann@example.com');
});

service.on('beforeResponse', async (resp, req) => {
  const body = req.body || {};
  const basic = (req.headers.authorization || '').startsWith('Basic ')
    ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':')
    : null;
  const given = basic ? decodeURIComponent(basic[1] || '') : body.client_secret;
  if (given !== secret) {
    resp.statusCode = 401;
    resp.body = { error: 'invalid_client' };
    return;
  }
  if (usedCodes.has(body.code)) {
    resp.statusCode = 400;
    resp.body = { error: 'invalid_grant' };
    return;
  }
  usedCodes.add(body.code);
  const email = emailForCode.get(body.code) || 'ann@example.com';
  emailForToken.set(resp.body.access_token, email);
});

// The ID token is signed again here, after the package built it, so that
// its claims and key can be shaped (beforeResponse cannot await).
async function reshape(idToken, code) {
  const claims = jose.decodeJwt(idToken);
  const shape = next;
  next = {};
  claims.email = emailForCode.get(code) || 'ann@example.com';
  claims.email_verified = shape.email_verified ?? true;
  if (shape.aud !== undefined) claims.aud = shape.aud;
  if (shape.nonce !== undefined) claims.nonce = shape.nonce;
  if (shape.iss !== undefined) claims.iss = shape.iss;
  if (shape.exp_offset !== undefined) {
    const now = Math.floor(Date.now() / 1000);
    claims.exp = now + shape.exp_offset;
    claims.iat = Math.min(claims.iat, claims.exp - 60);
    claims.nbf = claims.iat;
  }
  const key = shape.stray_key
    ? stray.privateKey
    : await jose.importJWK(signing, 'RS256');
  return await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: 'JWT' })
    .sign(key);
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => resolve(data));
  });
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const httpServer = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/.well-known/openid-configuration') stats.discovery++;
  if (url.pathname === '/jwks') stats.jwks++;
  if (url.pathname === '/authorize' && !url.searchParams.has('login_email')) {
    const hidden = [...url.searchParams]
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
      .join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><title>Test provider</title>
<h1>Test provider: sign in</h1>
<form method="get" action="/authorize">${hidden}
<label for="login_email">Email</label>
<input id="login_email" name="login_email" type="email" value="ann@example.com">
<button id="login" type="submit">Continue</button></form></html>`);
    return;
  }
  if (url.pathname === '/test/next' && req.method === 'POST') {
    next = JSON.parse((await readBody(req)) || '{}');
    if (next.email_verified !== undefined) githubVerified = next.email_verified;
    res.writeHead(204).end();
    return;
  }
  if (url.pathname === '/test/rotate' && req.method === 'POST') {
    signing = await server.issuer.keys.generate('RS256');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: signing.kid }));
    return;
  }
  if (url.pathname === '/test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  if (url.pathname === '/github/user/emails') {
    const auth = req.headers.authorization || '';
    const email = emailForToken.get(auth.replace(/^Bearer /, ''));
    if (!email) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"message":"Bad credentials"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify([
      { email: 'old@example.net', primary: false, verified: true, visibility: null },
      { email, primary: true, verified: githubVerified, visibility: 'private' },
    ]));
    return;
  }
  if (url.pathname === '/token' && req.method === 'POST') {
    stats.token++;
    // Let the package answer into a buffer, then reshape its ID token.
    const chunks = [];
    const realWrite = res.write.bind(res);
    const realEnd = res.end.bind(res);
    const realSetHeader = res.setHeader.bind(res);
    let status;
    res.write = (c) => { chunks.push(Buffer.from(c)); return true; };
    res.setHeader = (k, v) => (k.toLowerCase() === 'content-length' ? res : realSetHeader(k, v));
    res.end = (c) => {
      if (c) chunks.push(Buffer.from(c));
      status = res.statusCode;
      const text = Buffer.concat(chunks).toString();
      (async () => {
        let out = text;
        try {
          const json = JSON.parse(text);
          if (json.id_token) {
            json.id_token = await reshape(json.id_token, req.body && req.body.code);
            out = JSON.stringify(json);
          }
        } catch (e) {
          // Not JSON: pass it on unchanged.
        }
        res.statusCode = status;
        realSetHeader('content-length', Buffer.byteLength(out));
        realWrite(out);
        realEnd();
      })();
      return res;
    };
  }
  service.requestHandler(req, res);
});

httpServer.listen(Number(process.env.PROVIDER_PORT || 0), '127.0.0.1', () => {
  const { port } = httpServer.address();
  server.issuer.url = `http://127.0.0.1:${port}`;
  process.stdout.write(JSON.stringify({ port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
