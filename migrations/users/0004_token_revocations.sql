-- 0004_token_revocations: the record of token revocation (ADR 0010). One row per account:
-- the tokens of user_id issued before not_before are void. Written with the database's
-- clock in the transaction that ends the sessions (password change or reset, deletion),
-- the same clock the users service signs `iat` with; Redis holds a copy as the fast path.

CREATE TABLE token_revocations (
    user_id     uuid        NOT NULL,
    not_before  timestamptz NOT NULL,
    CONSTRAINT token_revocations_pkey PRIMARY KEY (user_id)
);
