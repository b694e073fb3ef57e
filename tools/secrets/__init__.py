"""Secrets: every key that signs or encrypts, in one keyring format (lib/keyring.py) and
rotated by one command (ADR 0046; docs/operations.md "Rotating a secret").

- `rotate`: `make rotate secret=NAME step=STEP`; NAME jwt (the access-token signing key),
  storage (the picture-URL key) or encryption (ENCRYPTION_KEY), a secret added later being
  an entry of its `SECRETS` and its use; STEP status, stage, promote, reencrypt, drop or
  migrate.
- `sealed`: the stored values sealed under ENCRYPTION_KEY (counts, re-encryption).
- `legacy`: what earlier versions wrote (a key directory, `kid:state:base64` rings, values
  sealed before keyrings), migrated once (`step=migrate`).

`make keys` (tools/keys.py) writes the development keys.
"""
