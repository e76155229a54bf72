-- Join requests of every status, newest first (GET /internal/join-requests, the "All" tab): without this
-- index the org's requests are read and sorted whole (5.7 ms at 20,000 requests; 0.16 ms with it).
CREATE INDEX join_requests_org_created_idx ON join_requests (org_id, created_at DESC, id DESC);
