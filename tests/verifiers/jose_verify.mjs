// Verifies identity assertions with the npm package `jose`, independently
// of Portcullis.
//
//     JOSE=/path/to/node_modules/jose/dist/webapi/index.js \
//         node jose_verify.mjs JWKS_URL ISSUER AUDIENCE < tokens
//
// Fetches the JWKS (createRemoteJWKSet), then for each token on stdin
// checks the signature, `iss`, `aud`, `exp`, `nbf` and `iat`, and prints
// one JSON line: {"kid": ..., "alg": ..., "claims": {...}}. Any failure:
// a message on stderr and exit 1.
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const jose = await import(pathToFileURL(process.env.JOSE).href);
const [url, issuer, audience] = process.argv.slice(2);
const jwks = jose.createRemoteJWKSet(new URL(url));
const tokens = readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer,
      audience,
      algorithms: ["ES256", "EdDSA"],
      requiredClaims: ["sub", "exp", "iat", "nbf", "jti"],
    });
    console.log(JSON.stringify({ kid: protectedHeader.kid, alg: protectedHeader.alg, claims: payload }));
  } catch (e) {
    console.error(`rejected: ${e.code ?? e.name}: ${e.message}`);
    process.exit(1);
  }
}
