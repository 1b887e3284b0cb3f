-- One rating per user per record, and one aggregate row per record kept equal to
-- what its ratings imply (updated in the same transaction as every rating change),
-- so reading an aggregate never scans ratings. Sizes match input validation.
CREATE TABLE ratings (
  record_type VARCHAR(16)  NOT NULL,
  record_id   VARCHAR(128) NOT NULL,
  user_id     VARCHAR(128) NOT NULL,
  value       TINYINT      NOT NULL,
  PRIMARY KEY (record_type, record_id, user_id),
  CONSTRAINT ratings_value_range CHECK (value BETWEEN 1 AND 10)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE rating_aggregates (
  record_type   VARCHAR(16)  NOT NULL,
  record_id     VARCHAR(128) NOT NULL,
  ratings_count BIGINT       NOT NULL,
  ratings_sum   BIGINT       NOT NULL,
  -- No CHECK (>= 0) here: MariaDB checks the candidate row of INSERT .. ON DUPLICATE
  -- KEY UPDATE, which carries a signed delta, before it resolves to the update.
  PRIMARY KEY (record_type, record_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
