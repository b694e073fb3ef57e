-- name: GetGadget :one
SELECT * FROM gadgets WHERE id = ?;

-- name: ListGadgetsByIds :many
SELECT * FROM gadgets WHERE id IN (sqlc.slice(ids)) AND active = sqlc.arg(active) ORDER BY id;

-- name: CreateGadget :execlastid
INSERT INTO gadgets (name, code, notes, kind, flags, active, tiny, qty, big, price, ratio, meta,
                     made, mask, blobby, born, alarm, seen_at)
VALUES (sqlc.arg(name), sqlc.narg(code), sqlc.narg(notes), sqlc.arg(kind), sqlc.narg(flags),
        sqlc.arg(active), sqlc.narg(tiny), sqlc.narg(qty), sqlc.narg(big), sqlc.narg(price),
        sqlc.narg(ratio), sqlc.narg(meta), sqlc.narg(made), sqlc.narg(mask), sqlc.narg(blobby),
        sqlc.narg(born), sqlc.narg(alarm), sqlc.narg(seen_at));

-- name: RenameGadget :exec
UPDATE gadgets SET name = ? WHERE id = ?;

-- name: SetNotes :execrows
UPDATE gadgets SET notes = sqlc.narg(notes) WHERE qty >= sqlc.arg(min_qty);

-- name: DeleteGadget :execresult
DELETE FROM gadgets WHERE id = ?;

-- name: InsertPart :execresult
INSERT INTO parts (gadget_id, label) VALUES (?, ?);

-- name: CopyGadgets :copyfrom
INSERT INTO gadgets (name, qty, price, kind) VALUES (?, ?, ?, ?);

-- name: BumpQty :batchexec
UPDATE gadgets SET qty = qty + 1 WHERE id = ?;

-- name: GetGadgetsBatch :batchone
SELECT id, name FROM gadgets WHERE id = ?;

-- name: PartsOfGadgets :batchmany
SELECT id, label FROM parts WHERE gadget_id = ? ORDER BY id;

-- name: GadgetStats :one
SELECT count(*) AS total, min(qty) AS min_qty, max(qty) AS max_qty, avg(qty) AS avg_qty,
       min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price,
       COALESCE(max(qty), 0) AS max_qty_or_zero
FROM gadgets WHERE kind = sqlc.arg(kind);

-- name: GadgetsWithParts :many
SELECT g.id, g.name, p.label FROM gadgets g LEFT JOIN parts p ON p.gadget_id = g.id
ORDER BY g.id, p.id;

-- name: PartsOfEveryGadget :many
-- The nullable side of an outer join: a row class with optional fields, never the
-- table's NOT NULL model (LEFT, RIGHT).
SELECT p.* FROM gadgets g LEFT JOIN parts p ON p.gadget_id = g.id ORDER BY g.id, p.id;

-- name: PartsRightOfGadgets :many
SELECT p.* FROM parts p RIGHT JOIN gadgets g ON p.gadget_id = g.id ORDER BY g.id, p.id;

-- name: PartsWithGadget :many
SELECT sqlc.embed(parts), sqlc.embed(gadgets) FROM parts JOIN gadgets ON gadgets.id = parts.gadget_id
ORDER BY parts.id;

-- name: GadgetsNamedLike :many
-- A literal % stays a literal (PyMySQL needs %%).
SELECT name FROM gadgets WHERE name LIKE sqlc.arg(pattern) OR notes = '100%' ORDER BY id;

-- name: PageGadgets :many
-- fixup: once total
SELECT (SELECT count(*) FROM gadgets) AS total, name, kind
FROM gadgets ORDER BY id LIMIT ?;

-- name: SortGadgets :many
-- One query, a statement per key and direction (fixup: sort), price nullable.
-- fixup: sort name, price, created_at, keyset id
SELECT id, name, price, created_at FROM gadgets
WHERE active = sqlc.arg(active)
LIMIT ?;
