-- Exactly-once ingestion: per stream (a consumer group's topic partition), the
-- position after the last batch applied from it. Written in the same transaction
-- as the batch's ratings and aggregates, so a redelivered event is recognised.
CREATE TABLE rating_event_checkpoints (
  stream        VARCHAR(512)    NOT NULL,
  next_position BIGINT UNSIGNED NOT NULL,
  updated_at    TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stream)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
