-- `steps_change` repeated the index of the unique constraint on the same columns
-- (change_id, parent_id, position): every step insert and status update maintained both.
DROP INDEX steps_change;
