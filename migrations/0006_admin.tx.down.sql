ALTER TABLE agents DROP COLUMN stale_notified_at;
DROP TABLE notification_attempts;
DROP TABLE notification_outbox;
DROP TABLE webhook_endpoints;
DROP INDEX audit_events_all_idx;
DROP INDEX audit_events_actor_idx;
DROP INDEX audit_events_action_idx;
DROP TABLE password_tokens;
