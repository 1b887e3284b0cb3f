-- The full schema of movieapp, for reading. The services apply the versioned
-- migrations under schema/metadata and schema/rating at start; a test checks that
-- this file and the migrations produce the same tables.

-- metadata service -----------------------------------------------------------

CREATE TABLE movies (
  id          VARCHAR(128)  NOT NULL,
  title       VARCHAR(256)  NOT NULL,
  description VARCHAR(4096) NOT NULL,
  director    VARCHAR(256)  NOT NULL,
  -- The title's UTF-8 bytes: listing by title pages in code point order (0002).
  title_key   VARBINARY(1024) AS (CAST(title AS BINARY)) STORED,
  PRIMARY KEY (id),
  INDEX movies_by_title (title_key, id)
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
  -- The damped mean under the prior in rating_ranking_prior (0003; rewritten when
  -- a service starts with another prior).
  damped_score  DOUBLE AS ((1e1 * 5.5e0 + ratings_sum) / (1e1 + ratings_count)) STORED,
  PRIMARY KEY (record_type, record_id),
  INDEX rating_aggregates_ranking (record_type, damped_score, record_id, ratings_count, ratings_sum)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The prior (weight C, mean m) that damped_score was computed with: one row.
CREATE TABLE rating_ranking_prior (
  id           TINYINT NOT NULL,
  prior_weight DOUBLE  NOT NULL,
  prior_mean   DOUBLE  NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT rating_ranking_prior_one_row CHECK (id = 1)
) ENGINE = InnoDB;

INSERT INTO rating_ranking_prior (id, prior_weight, prior_mean) VALUES (1, 1e1, 5.5e0);

-- Exactly-once ingestion: per stream (a consumer group's topic partition), the
-- position after the last batch applied from it, written with that batch.
CREATE TABLE rating_event_checkpoints (
  stream        VARCHAR(512)    NOT NULL,
  next_position BIGINT UNSIGNED NOT NULL,
  updated_at    TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stream)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
