-- 0003_blank_means_python_whitespace: "blank" means what the API strips, not only spaces.
-- The API strips with Python's str.strip() (pydantic str_strip_whitespace): every Unicode
-- whitespace character, where btrim(x) strips spaces only, so a tab, a no-break space or an
-- ideographic space passed the old CHECKs. The set below is exactly Python's whitespace
-- (chr(c).isspace()): U+0009..000D, 001C..0020, 0085, 00A0, 1680, 2000..200A, 2028, 2029,
-- 202F, 205F, 3000; PostgreSQL's [[:space:]] depends on the locale and misses some of them.

ALTER TABLE departments
    DROP CONSTRAINT departments_name_chk,
    ADD CONSTRAINT departments_name_chk CHECK (btrim(name, E'\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000') <> '' AND char_length(name) <= 100),
    DROP CONSTRAINT departments_address_chk,
    ADD CONSTRAINT departments_address_chk CHECK (btrim(address, E'\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000') <> '' AND char_length(address) <= 200);
