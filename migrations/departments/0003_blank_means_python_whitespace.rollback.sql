-- 0003_blank_means_python_whitespace: the CHECKs as 0001_initial.sql wrote them.

ALTER TABLE departments
    DROP CONSTRAINT departments_name_chk,
    ADD CONSTRAINT departments_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100),
    DROP CONSTRAINT departments_address_chk,
    ADD CONSTRAINT departments_address_chk CHECK (btrim(address) <> '' AND char_length(address) <= 200);
