-- Issue 16: claim secrets that exist once, claims bound to their agent.

-- Every agent row gets an identity of its own: a new agent of a deleted
-- agent's name is another agent, and a claim bound to the old one fails.
ALTER TABLE agents ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid();

-- client_secret: claim_secret_hash is the SHA-256 of a secret the runtime
-- chose (clientSecret), not one the server issued. agent_uid: the agent row
-- the approval created or kept. claim_voided_at: the agent was deleted before
-- the key was claimed; the claim is refused for good.
ALTER TABLE join_requests
    ADD COLUMN client_secret   boolean NOT NULL DEFAULT false,
    ADD COLUMN agent_uid       uuid,
    ADD COLUMN claim_voided_at timestamptz,
    ADD CONSTRAINT join_requests_void_check CHECK (claim_voided_at IS NULL OR (status = 'APPROVED' AND claimed_at IS NULL));

-- Approved requests are bound to the agent of their name when it existed at
-- approval (created then or before, by a re-registration); an agent created
-- later is a new one of the same name and stays unbound.
UPDATE join_requests AS jr SET agent_uid = a.uid
FROM agents AS a
WHERE jr.status = 'APPROVED' AND a.org_id = jr.org_id AND a.id = jr.agent_id AND a.created_at <= jr.decided_at;

-- An approved, unclaimed request whose agent is gone (or was replaced) is void.
UPDATE join_requests SET claim_voided_at = now()
WHERE status = 'APPROVED' AND claimed_at IS NULL AND agent_uid IS NULL;

-- Registration checks that no pending request waits for the name.
CREATE INDEX join_requests_pending_name_idx ON join_requests (org_id, agent_name) WHERE status = 'PENDING';
