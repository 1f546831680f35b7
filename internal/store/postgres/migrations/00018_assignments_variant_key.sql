-- Assignments without their foreign key to variants (issue 16). The key
-- checked and share-locked the variant's row for every inserted row: about
-- a third of the database's CPU per assignment, and with several replicas
-- committing one experiment's assignments at once, rows share-locked by
-- several transactions (multixacts). It guarded nothing the counters do not:
-- every transaction that inserts an assignment adds its unit to the
-- counters and the hourly buckets of the same (experiment, variant) in the
-- same transaction (sqlstore's queueNewUnits), and both keep their foreign
-- keys, so a variant that is not the experiment's still fails the whole
-- transaction and stores nothing (storetest's Assign and AssignIsolation,
-- which fail with the buckets' and counters' keys dropped as well). Those
-- upserts check their key once per variant and hour, and not at all when
-- they update a row that exists.
-- Variants are never deleted, so the ON DELETE CASCADE never ran.
-- SQLite keeps the key: there its check is an in-process index probe.
--
-- +goose Up
ALTER TABLE assignments DROP CONSTRAINT assignments_experiment_id_variant_id_fkey;

-- +goose Down
ALTER TABLE assignments ADD CONSTRAINT assignments_experiment_id_variant_id_fkey
    FOREIGN KEY (experiment_id, variant_id) REFERENCES variants (experiment_id, id) ON DELETE CASCADE;
