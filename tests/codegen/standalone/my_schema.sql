CREATE TABLE pair (
    id   INT NOT NULL PRIMARY KEY,
    nick VARCHAR(20) NOT NULL,
    x    INT,
    y    INT
);
