-- 0002_blank_means_python_whitespace: the CHECKs as 0001_initial.sql wrote them.

ALTER TABLE users
    DROP CONSTRAINT users_first_name_chk,
    ADD CONSTRAINT users_first_name_chk CHECK (btrim(first_name) <> '' AND char_length(first_name) <= 100),
    DROP CONSTRAINT users_last_name_chk,
    ADD CONSTRAINT users_last_name_chk CHECK (btrim(last_name) <> '' AND char_length(last_name) <= 100),
    DROP CONSTRAINT users_phone_number_chk,
    ADD CONSTRAINT users_phone_number_chk CHECK (char_length(btrim(phone_number)) BETWEEN 3 AND 32);
