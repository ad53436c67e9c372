-- Index maintenance on the dispatch path (docs/performance.md, issue 7):
-- `tasks_by_state` held every task under its state, so each task that
-- finished moved inside it, out of `pending` and into `done`: about three
-- of the nineteen pages a commit wrote at 10 000 tasks/s. Queries look up
-- the tasks that are not done (pending ones at start and at cancel, failed
-- ones for their reasons); the done ones are counted, and their count is
-- the workload's `task_count` less the others. Index only those: a task
-- leaves this index once, when it is done, and enters no other. Queries
-- name the index's condition (`state <> 'done'`) so SQLite can use it.
DROP INDEX tasks_by_state;
CREATE INDEX tasks_unfinished ON tasks (workload_id, state, idx) WHERE state <> 'done';
