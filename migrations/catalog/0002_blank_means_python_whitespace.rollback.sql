-- 0002_blank_means_python_whitespace: the CHECKs as 0001_initial.sql wrote them.

ALTER TABLE category_types
    DROP CONSTRAINT category_types_name_chk,
    ADD CONSTRAINT category_types_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100);

ALTER TABLE categories
    DROP CONSTRAINT categories_name_chk,
    ADD CONSTRAINT categories_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100);

ALTER TABLE subcategories
    DROP CONSTRAINT subcategories_name_chk,
    ADD CONSTRAINT subcategories_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100);

ALTER TABLE services
    DROP CONSTRAINT services_name_chk,
    ADD CONSTRAINT services_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 200);
