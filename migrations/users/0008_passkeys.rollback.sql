DROP TABLE passkeys;
DROP TABLE webauthn_challenges;
DROP TYPE webauthn_ceremony;
