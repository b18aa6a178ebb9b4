-- The read-only role downstream services use; `wirewatch migrate` grants it SELECT on every run.
CREATE ROLE wirewatch_reader LOGIN PASSWORD 'wirewatch_reader';
