-- Listing by title pages by keyset over (title, id). The title's own collation
-- (utf8mb4_bin) compares with PAD SPACE, so "a" and "a " sort as equals and
-- "a\t" before "a"; the memory adapter and every client expect code point order,
-- which is the order of the UTF-8 bytes: title_key holds them, and the index
-- serves any page as one range read.
ALTER TABLE movies
  ADD COLUMN title_key VARBINARY(1024) AS (CAST(title AS BINARY)) STORED,
  ADD INDEX movies_by_title (title_key, id);
