-- The full schema of movieapp, for reading. The services apply the versioned
-- migrations under schema/metadata and schema/rating at start; a test checks that
-- this file and the migrations produce the same tables.

-- metadata service -----------------------------------------------------------

CREATE TABLE movies (
  id          VARCHAR(128)  NOT NULL,
  title       VARCHAR(256)  NOT NULL,
  description VARCHAR(4096) NOT NULL,
  director    VARCHAR(256)  NOT NULL,
  PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- rating service -------------------------------------------------------------

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

-- Exactly-once ingestion: per stream (a consumer group's topic partition), the
-- position after the last batch applied from it, written with that batch.
CREATE TABLE rating_event_checkpoints (
  stream        VARCHAR(512)    NOT NULL,
  next_position BIGINT UNSIGNED NOT NULL,
  updated_at    TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stream)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
