-- Small schema exercising every MySQL/MariaDB type the plugin maps.
CREATE TABLE gadgets (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(100) NOT NULL,
    code        CHAR(8),
    notes       TEXT,
    kind        ENUM('tool', 'toy', 'so-so') NOT NULL DEFAULT 'tool',
    flags       SET('red', 'green', 'blue'),
    active      TINYINT(1) NOT NULL DEFAULT 1,
    tiny        TINYINT,
    qty         INT UNSIGNED,
    big         BIGINT,
    price       DECIMAL(10, 2),
    ratio       DOUBLE,
    meta        JSON,
    made        YEAR,
    mask        BIT(8),
    blobby      BLOB,
    born        DATE,
    alarm       TIME,
    seen_at     DATETIME(6),
    created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE parts (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    gadget_id  BIGINT UNSIGNED NOT NULL,
    label      VARCHAR(50) NOT NULL,
    CONSTRAINT parts_gadget_fk FOREIGN KEY (gadget_id) REFERENCES gadgets (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
