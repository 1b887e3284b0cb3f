-- Ranking by damped mean (see packages/rating/src/domain/Ranking.ts): each
-- aggregate's score is a stored generated column, so every write that moves an
-- aggregate moves its score in the same statement, and the index lists a record
-- type's aggregates best first. "Top N with at least K ratings" reads the index
-- from its top and stops after N matches: the count and sum are in the index too,
-- so no row is looked up for records it passes over.
--
-- The expression holds the prior (weight C = 10, mean m = 5.5, as DOUBLE literals
-- so that MySQL computes in doubles as JavaScript does). The prior it holds is
-- recorded in rating_ranking_prior; a service started with another prior rewrites
-- the expression, which rescores every row (RatingRepositoryMysql).
CREATE TABLE rating_ranking_prior (
  id           TINYINT NOT NULL,
  prior_weight DOUBLE  NOT NULL,
  prior_mean   DOUBLE  NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT rating_ranking_prior_one_row CHECK (id = 1)
) ENGINE = InnoDB;

INSERT INTO rating_ranking_prior (id, prior_weight, prior_mean) VALUES (1, 1e1, 5.5e0);

ALTER TABLE rating_aggregates
  ADD COLUMN damped_score DOUBLE AS ((1e1 * 5.5e0 + ratings_sum) / (1e1 + ratings_count)) STORED,
  ADD INDEX rating_aggregates_ranking (record_type, damped_score, record_id, ratings_count, ratings_sum);
