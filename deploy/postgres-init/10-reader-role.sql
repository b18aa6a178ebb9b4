-- The read-only role downstream services use; migrations grant it SELECT.
CREATE ROLE wirewatch_reader LOGIN PASSWORD 'wirewatch_reader';
