-- name: PetIds :many
SELECT id, name FROM pets ORDER BY name;

-- name: TagCodes :many
SELECT code, big FROM tags;

-- name: LegacyIds :many
SELECT id, v FROM legacy;

-- name: CounterKeys :many
SELECT k, n FROM counters;

-- name: OwnerIds :many
SELECT id, name FROM owners;

-- name: FullJoin :many
SELECT o.name AS owner, p.name AS pet FROM owners o FULL OUTER JOIN pets p ON p.owner_id = o.id;

-- name: RightJoin :many
SELECT o.name AS owner, p.name AS pet FROM owners o RIGHT JOIN pets p ON p.owner_id = o.id;

-- name: PetWithOwner :many
SELECT sqlc.embed(pets), sqlc.embed(owners)
FROM pets LEFT JOIN owners ON owners.id = pets.owner_id;

-- name: BadInputs :many
SELECT age / 2 AS half, age / age AS by_itself, age % age AS rest, weight * 2 AS twice,
       weight - weight AS zero, sqrt(weight) AS root, ln(age) AS ln_age,
       log(weight) AS log_weight, date(born) AS born_date, strftime('%Y', born) AS year,
       julianday(born) AS day, json_type(doc) AS doc_type, unicode(name) AS first_char,
       upper(name) AS shout, length(name) AS len, abs(weight) AS size,
       typeof(weight) AS kind, name || '!' AS bang, age + 1 AS older,
       printf('%s', weight) AS shown, coalesce(unicode(name), 0) AS code
FROM pets;

-- name: NoteColumns :many
SELECT title, body FROM notes;

-- name: Grouped :many
SELECT owner_id, count(*) AS n, min(name) AS first_name, max(age) AS oldest,
       group_concat(name) AS names, sum(age) AS ages, avg(weight) AS mean,
       total(weight) AS weights
FROM pets GROUP BY owner_id;

-- name: Totals :one
SELECT count(*) AS n, max(age) AS oldest, sum(weight) AS weights FROM pets;

-- name: AddPet :one
INSERT INTO pets (id, owner_id, name, weight, age, born, doc)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING id, name, age / 2 AS half;

-- name: Scalars :many
SELECT age / 0 FROM pets;
