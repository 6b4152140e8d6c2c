-- Sink kinds are the sink modules' business (src/replication/sinks/sink-registry.ts
-- refuses a kind no module serves, and so does the GraphQL enum): a new kind,
-- such as Kafka, then needs no migration. Numbered 008, not 007: another
-- branch holds 007, and versions are applied by number.
ALTER TABLE sinks DROP CONSTRAINT IF EXISTS sinks_kind_check;
