-- +goose Up
-- The cross-tenant report counts the tenant's open subtasks and the
-- projects that have any. This index holds only the open ones, by task,
-- so that the report reads it alone (an index-only scan once vacuumed)
-- instead of every subtask. The price is on writes: completing a subtask
-- or reopening one changes whether it is in the index, so that update
-- cannot be HOT.
CREATE INDEX subtasks_open ON subtasks (task_id) WHERE NOT is_complete;

-- +goose Down
DROP INDEX subtasks_open;
