-- 0003_mail_outbox: mail written in the transaction of the change that causes it (a
-- registration, a reset request) and delivered by the relay of the users process
-- (services/users/mail_relay.py, ADR 0010). A row is deleted once the mail is sent, so
-- the links it carries do not outlive their delivery.

CREATE TABLE mail_outbox (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    recipient        text        NOT NULL,
    subject          text        NOT NULL,
    body             text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text        NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mail_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT mail_outbox_recipient_chk CHECK (char_length(recipient) BETWEEN 3 AND 254),
    CONSTRAINT mail_outbox_subject_chk CHECK (subject <> '' AND char_length(subject) <= 200),
    CONSTRAINT mail_outbox_body_chk CHECK (body <> ''),
    CONSTRAINT mail_outbox_attempts_chk CHECK (attempts >= 0)
);

-- The relay's claim: the rows due first.
CREATE INDEX mail_outbox_next_attempt_at_idx ON mail_outbox (next_attempt_at);
