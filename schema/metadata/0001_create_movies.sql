-- Movie metadata, keyed by id. Sizes match input validation (packages/contracts/src/Fields.ts).
CREATE TABLE movies (
  id          VARCHAR(128)  NOT NULL,
  title       VARCHAR(256)  NOT NULL,
  description VARCHAR(4096) NOT NULL,
  director    VARCHAR(256)  NOT NULL,
  PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
