-- Organization titles are unique, compared trimmed and without regard to case.
-- Titles an install already repeats are renamed first: the oldest org of a
-- title keeps it, each later one gets the first free " (n)" suffix, n >= 2
-- (cut to stay within 200 characters).
DO $$
DECLARE
    r         record;
    n         integer;
    candidate text;
BEGIN
    FOR r IN
        SELECT id, btrim(title) AS base FROM (
            SELECT id, title, row_number() OVER (PARTITION BY lower(btrim(title)) ORDER BY created_at, id) AS rank
            FROM organizations
        ) AS ranked
        WHERE rank > 1
        ORDER BY lower(btrim(title)), rank
    LOOP
        n := 2;
        LOOP
            candidate := left(r.base, 200 - length(' (' || n || ')')) || ' (' || n || ')';
            EXIT WHEN NOT EXISTS (SELECT 1 FROM organizations WHERE lower(btrim(title)) = lower(candidate));
            n := n + 1;
        END LOOP;
        UPDATE organizations SET title = candidate WHERE id = r.id;
    END LOOP;
END
$$;

CREATE UNIQUE INDEX organizations_title_key ON organizations (lower(btrim(title)));
