-- The mail outbox (ADR 0010): written in the transaction that causes the mail, delivered by
-- services/users/mail_relay.py.

-- name: EnqueueMail :exec
INSERT INTO mail_outbox (recipient, subject, body) VALUES (@recipient, @subject, @body);

-- name: ClaimMail :many
-- Due rows, each leased for @lease_seconds: another relay skips them now (SKIP LOCKED) and
-- after the commit (next_attempt_at moved); a relay that dies mid-send loses its lease.
UPDATE mail_outbox SET attempts = attempts + 1,
       next_attempt_at = now() + make_interval(secs => @lease_seconds::double precision)
WHERE id IN (SELECT id FROM mail_outbox WHERE next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT @batch FOR UPDATE SKIP LOCKED)
RETURNING id, recipient, subject, body, attempts;

-- name: MailSent :exec
DELETE FROM mail_outbox WHERE id = @id;

-- name: MailFailed :exec
UPDATE mail_outbox SET last_error = @error,
       next_attempt_at = now() + make_interval(secs => @retry_in_seconds::double precision)
WHERE id = @id;

-- name: PendingMail :one
SELECT count(*) AS pending FROM mail_outbox;

-- name: CommitWithoutWaiting :exec
-- This transaction's COMMIT does not wait for its WAL to reach the disk (ADR 0055): what
-- it writes (a mail asked for by address) may be lost in a crash, and the asker asks
-- again; an answer that waited for the disk only when the address has an account would
-- tell that it has one by its time.
SELECT set_config('synchronous_commit', 'off', true);
