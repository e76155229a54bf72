DROP INDEX agents_online_idx;
DROP INDEX agents_team_idx;
DROP INDEX agents_status_idx;
