DROP INDEX agents_id_idx;
