-- 0006_archived_entries: catalog entries that others reference (a category type by its
-- categories, ... a service by orders and provider links) are archived, not deleted
-- (ADR 0058): DELETE sets archived_at, the lists hide them, GET by id shows them with their
-- state, an ADMIN restores them (archived_at back to NULL). New references to an archived
-- entry are refused by the service; the ones already there keep working.
--
-- Online-safe (docs/migrations.md, ADR 0018): nullable columns are catalog changes; the
-- running release neither reads nor writes them (its hard DELETE still works).
ALTER TABLE category_types ADD COLUMN archived_at timestamptz NULL;
ALTER TABLE categories ADD COLUMN archived_at timestamptz NULL;
ALTER TABLE subcategories ADD COLUMN archived_at timestamptz NULL;
ALTER TABLE services ADD COLUMN archived_at timestamptz NULL;
