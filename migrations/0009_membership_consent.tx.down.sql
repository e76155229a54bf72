DROP TABLE membership_invitations;
ALTER TABLE password_tokens DROP COLUMN org_id;
ALTER TABLE users DROP COLUMN created_by_org_id;
