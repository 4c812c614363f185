"""Verifies identity assertions with PyJWT, independently of Portcullis.

    python3 pyjwt_verify.py JWKS_URL ISSUER AUDIENCE < tokens

Fetches the JWKS, then for each token on stdin (one a line) checks the
signature with the key its `kid` names, `iss`, `aud`, `exp`, `nbf` and
`iat`, and prints one JSON line: {"kid": ..., "alg": ..., "claims": {...}}.
Any failure: a message on stderr and exit 1.
"""
import json
import sys
import urllib.request

import jwt

url, issuer, audience = sys.argv[1:4]
with urllib.request.urlopen(url) as answer:
    jwks = jwt.PyJWKSet.from_json(answer.read().decode())
by_kid = {k.key_id: k for k in jwks.keys}
for token in sys.stdin.read().split():
    header = jwt.get_unverified_header(token)
    key = by_kid.get(header.get("kid"))
    if key is None:
        sys.exit(f"no key {header.get('kid')!r} in the JWKS")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["ES256", "EdDSA"],
            issuer=issuer,
            audience=audience,
            options={"require": ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]},
        )
    except jwt.PyJWTError as e:
        sys.exit(f"rejected: {type(e).__name__}: {e}")
    print(json.dumps({"kid": header["kid"], "alg": header["alg"], "claims": claims}))
