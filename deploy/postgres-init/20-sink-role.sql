-- The sink's own role: writes its four tables (granted by `wirewatch migrate` on every run), owns nothing,
-- cannot migrate. Migrations run as the owner (the migrate service).
CREATE ROLE wirewatch_sink LOGIN PASSWORD 'wirewatch_sink';
GRANT CONNECT ON DATABASE wirewatch TO wirewatch_sink;
