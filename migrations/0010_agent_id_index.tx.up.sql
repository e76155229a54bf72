-- Management calls by agent id alone look the id up across the orgs a caller may act in.
CREATE INDEX agents_id_idx ON agents (id);
