-- 0007_archived_departments: a department that users reference is archived, not deleted
-- (ADR 0058): DELETE sets archived_at, the lists hide it, GET by id shows it with its
-- state, an ADMIN restores it (archived_at back to NULL).
--
-- Online-safe (docs/migrations.md, ADR 0018): a nullable column is a catalog change; the
-- running release neither reads nor writes it (its SELECT * rows ignore an unknown field,
-- and its hard DELETE still works). The default lists' total subtracts the archived rows,
-- counted on the partial index of 0008.
ALTER TABLE departments ADD COLUMN archived_at timestamptz NULL;
