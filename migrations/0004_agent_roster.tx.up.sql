-- Roster filters stay index-only walks in roster order even when the filter is selective
-- (a rare status, a small team): no sort of the whole org.
CREATE INDEX agents_status_idx ON agents (org_id, status, created_at DESC, id DESC);
CREATE INDEX agents_team_idx ON agents (org_id, team_id, created_at DESC, id DESC);
-- Few agents are online at once: the presence filter reads only them.
CREATE INDEX agents_online_idx ON agents (org_id, last_seen_at) WHERE is_online;
