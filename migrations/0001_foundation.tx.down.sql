DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE board_columns;
DROP TABLE sessions;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE teams;
DROP TABLE organizations;
