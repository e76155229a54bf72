-- The org whose admin created a user by adding their email (NULL: created by
-- a platform admin or at bootstrap). Only that org may re-issue the user's
-- set-password link, and only until the user has a password.
ALTER TABLE users ADD COLUMN created_by_org_id uuid REFERENCES organizations (id) ON DELETE SET NULL;

-- The org a set-password link was issued for (NULL: a platform admin's reset).
ALTER TABLE password_tokens ADD COLUMN org_id uuid REFERENCES organizations (id) ON DELETE CASCADE;

-- An existing user added to an org by email: not a member until they accept.
CREATE TABLE membership_invitations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'viewer')),
    invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'withdrawn')),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz
);
-- At most one pending invitation per org and user.
CREATE UNIQUE INDEX membership_invitations_pending_idx ON membership_invitations (org_id, user_id) WHERE status = 'pending';
CREATE INDEX membership_invitations_user_idx ON membership_invitations (user_id) WHERE status = 'pending';
