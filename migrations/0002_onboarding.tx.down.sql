DROP TABLE agent_transition_grants;
DROP TABLE agent_column_grants;
DROP TABLE api_keys;
DROP TABLE join_requests;
DROP TABLE invites;
DROP TABLE agents;
