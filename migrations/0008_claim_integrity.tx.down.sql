DROP INDEX join_requests_pending_name_idx;
ALTER TABLE join_requests
    DROP CONSTRAINT join_requests_void_check,
    DROP COLUMN claim_voided_at,
    DROP COLUMN agent_uid,
    DROP COLUMN client_secret;
ALTER TABLE agents DROP COLUMN uid;
