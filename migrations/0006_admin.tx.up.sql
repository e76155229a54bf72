-- One-time set-password links for users added by email (the server sends no mail).
-- Only the SHA-256 of the token is stored.
CREATE TABLE password_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_tokens_user_idx ON password_tokens (user_id);

-- Audit screen filters walk these in newest-first order.
CREATE INDEX audit_events_action_idx ON audit_events (org_id, action, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (org_id, actor_label, id DESC);
CREATE INDEX audit_events_all_idx ON audit_events (id DESC) WHERE org_id IS NULL;

-- Webhook endpoints of an org. The signing secret is kept encrypted (AES-GCM
-- under SECRET_KEY): the server needs it to sign, and a dump alone reveals nothing.
CREATE TABLE webhook_endpoints (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id               uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                  text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    events               text[] NOT NULL CHECK (cardinality(events) > 0),
    secret_enc           bytea NOT NULL,
    secret_prefix        text NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    consecutive_failures integer NOT NULL DEFAULT 0,
    disabled_reason      text NOT NULL DEFAULT '',
    disabled_at          timestamptz,
    created_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id, created_at);

-- The outbox: one row per endpoint and event, written in the transaction that
-- makes the change. Workers claim due rows with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE notification_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          uuid NOT NULL,
    endpoint_id     uuid NOT NULL,
    event           text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    FOREIGN KEY (org_id, endpoint_id) REFERENCES webhook_endpoints (org_id, id) ON DELETE CASCADE
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_outbox_endpoint_idx ON notification_outbox (endpoint_id, id DESC);

-- Every delivery attempt, for the per-endpoint log.
CREATE TABLE notification_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    status_code integer NOT NULL DEFAULT 0,
    latency_ms  integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_attempts_endpoint_idx ON notification_attempts (endpoint_id, id DESC);

-- When an online agent falls silent the server tells subscribers once per silence.
ALTER TABLE agents ADD COLUMN stale_notified_at timestamptz;
