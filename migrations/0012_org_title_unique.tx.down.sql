DROP INDEX organizations_title_key;
