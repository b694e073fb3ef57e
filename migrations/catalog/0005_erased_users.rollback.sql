DROP TABLE erased_users;
