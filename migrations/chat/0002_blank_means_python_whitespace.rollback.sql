-- 0002_blank_means_python_whitespace: the CHECKs as 0001_initial.sql wrote them.

ALTER TABLE messages
    DROP CONSTRAINT messages_body_chk,
    ADD CONSTRAINT messages_body_chk CHECK (char_length(btrim(body, E' \t\n\r')) BETWEEN 1 AND 4000);
