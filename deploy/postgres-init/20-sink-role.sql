-- The sink's own role: writes its three tables (granted by migration 0002), owns nothing,
-- cannot migrate. Migrations run as the owner (the migrate service).
CREATE ROLE wirewatch_sink LOGIN PASSWORD 'wirewatch_sink';
GRANT CONNECT ON DATABASE wirewatch TO wirewatch_sink;
