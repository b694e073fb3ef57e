-- 0002_blank_means_python_whitespace: the CHECKs as 0001_initial.sql wrote them.

ALTER TABLE currencies
    DROP CONSTRAINT currencies_name_chk,
    ADD CONSTRAINT currencies_name_chk CHECK (btrim(name) <> '' AND char_length(name) <= 100);

ALTER TABLE orders
    DROP CONSTRAINT orders_description_chk,
    ADD CONSTRAINT orders_description_chk CHECK (btrim(description) <> '' AND char_length(description) <= 2000),
    DROP CONSTRAINT orders_address_chk,
    ADD CONSTRAINT orders_address_chk CHECK (btrim(address) <> '' AND char_length(address) <= 500);

ALTER TABLE outbox
    DROP CONSTRAINT outbox_topic_chk,
    ADD CONSTRAINT outbox_topic_chk CHECK (btrim(topic) <> '' AND char_length(topic) <= 100);
