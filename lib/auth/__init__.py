"""Authentication: JWT issue and verify, role guards, password hashing.

- `tokens`: `TokenSigner` (users service only: it holds the Ed25519 private key) issues
  EdDSA access tokens; `TokenVerifier` (every service, public key) turns a token into a
  `Principal` or raises `Unauthorized`. `generate_keypair()` for development and tests
  (`python -m tools.keys` writes a pair to `var/keys/`).
- `jwks`, `keysources`: keys by id (ADR 0032, ADR 0046): the `kid` (a JWK thumbprint),
  JWKs and JWK Sets, and where the signer and verifier find keys (a PEM, the signing
  keyring of lib/keyring.py; `lib.http.jwks_client`: users' JWK Set).
- `principal`: `Role`, `Principal` and the guards `require_role`, `require_verified`,
  `is_self_or` (guards raise `Forbidden`).
- `passwords`: argon2id `hash_password` / `verify_password`.
"""
