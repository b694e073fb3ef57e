DROP TABLE second_factor_challenges;
DROP TYPE second_factor_step;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
