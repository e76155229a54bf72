CREATE TABLE agents (
    org_id         uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id             text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    team_id        uuid NOT NULL,
    title          text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'stopped')),
    pickup_enabled boolean NOT NULL DEFAULT false,
    is_online      boolean NOT NULL DEFAULT false,
    last_seen_at   timestamptz,
    machine_ip     text NOT NULL DEFAULT '',
    machine_name   text NOT NULL DEFAULT '',
    llm_version    text NOT NULL DEFAULT '',
    email          text NOT NULL DEFAULT '',
    os_name        text,
    os_version     text,
    ram_bytes      bigint CHECK (ram_bytes >= 0),
    storage_bytes  bigint CHECK (storage_bytes >= 0),
    storage_type   text,
    adapter_type   text NOT NULL DEFAULT 'http' CHECK (adapter_type IN ('http', 'webhook', 'mcp', 'custom')),
    joined_via     text NOT NULL CHECK (joined_via IN ('invite', 'register')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id),
    -- Only an approved agent can be online: stop forces presence off.
    CHECK (NOT is_online OR status = 'approved')
);
CREATE INDEX agents_roster_idx ON agents (org_id, created_at DESC, id DESC);

CREATE TABLE invites (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id      uuid NOT NULL,
    agent_name   text NOT NULL CHECK (agent_name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    adapter_type text NOT NULL CHECK (adapter_type IN ('http', 'webhook', 'mcp', 'custom')),
    token_hash   bytea NOT NULL UNIQUE,
    token_enc    bytea NOT NULL,
    max_uses     integer NOT NULL DEFAULT 1 CHECK (max_uses BETWEEN 1 AND 100),
    uses         integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id)
);
CREATE INDEX invites_org_idx ON invites (org_id, created_at DESC);
CREATE INDEX invites_name_idx ON invites (org_id, agent_name) WHERE revoked_at IS NULL;

CREATE TABLE join_requests (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    invite_id         uuid NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    team_id           uuid NOT NULL,
    agent_name        text NOT NULL,
    adapter_type      text NOT NULL CHECK (adapter_type IN ('http', 'webhook', 'mcp', 'custom')),
    status            text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    title             text NOT NULL DEFAULT '',
    machine_name      text NOT NULL DEFAULT '',
    machine_ip        text NOT NULL DEFAULT '',
    llm_version       text NOT NULL DEFAULT '',
    email             text NOT NULL DEFAULT '',
    os_name           text,
    os_version        text,
    ram_bytes         bigint,
    storage_bytes     bigint,
    storage_type      text,
    source_ip         text NOT NULL DEFAULT '',
    user_agent        text NOT NULL DEFAULT '',
    idempotency_key   text,
    claim_secret_hash bytea NOT NULL,
    claim_expires_at  timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    decided_at        timestamptz,
    decided_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    claimed_at        timestamptz,
    agent_id          text,
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id),
    UNIQUE (invite_id, idempotency_key),
    CHECK ((status = 'PENDING') = (decided_at IS NULL)),
    CHECK (claimed_at IS NULL OR status = 'APPROVED')
);
CREATE INDEX join_requests_org_idx ON join_requests (org_id, status, created_at DESC);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id         uuid NOT NULL,
    -- Set for keys issued through an invite: they act for that agent only.
    agent_id        text,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix          text NOT NULL,
    key_hash        bytea NOT NULL UNIQUE,
    join_request_id uuid REFERENCES join_requests (id) ON DELETE SET NULL,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,
    is_active       boolean NOT NULL DEFAULT true,
    revoked_at      timestamptz,
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id),
    -- Deleting an agent deletes its bound keys: no key of a deleted agent can authenticate.
    FOREIGN KEY (org_id, agent_id) REFERENCES agents (org_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at DESC);
CREATE INDEX api_keys_agent_idx ON api_keys (org_id, agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE agent_column_grants (
    org_id       uuid NOT NULL,
    agent_id     text NOT NULL,
    column_id    text NOT NULL,
    can_read     boolean NOT NULL DEFAULT false,
    can_moderate boolean NOT NULL DEFAULT false,
    PRIMARY KEY (org_id, agent_id, column_id),
    FOREIGN KEY (org_id, agent_id) REFERENCES agents (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, column_id) REFERENCES board_columns (org_id, id) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE agent_transition_grants (
    org_id      uuid NOT NULL,
    agent_id    text NOT NULL,
    from_column text NOT NULL,
    to_column   text NOT NULL,
    PRIMARY KEY (org_id, agent_id, from_column, to_column),
    FOREIGN KEY (org_id, agent_id) REFERENCES agents (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, from_column) REFERENCES board_columns (org_id, id) ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY (org_id, to_column) REFERENCES board_columns (org_id, id) ON DELETE CASCADE ON UPDATE CASCADE,
    CHECK (from_column <> to_column)
);
