CREATE TABLE shelf (
    id       bigint PRIMARY KEY,
    title    text NOT NULL,
    subtitle text,
    tags     jsonb NOT NULL DEFAULT '[]',
    room_id  bigint,
    price    numeric(8, 2) NOT NULL DEFAULT 1.50
);
