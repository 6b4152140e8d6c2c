-- Foundation: API tokens. Tokens are stored as SHA-256 hashes only.
CREATE TABLE api_tokens (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  role        text NOT NULL CHECK (role IN ('admin', 'operator', 'reader')),
  token_hash  text NOT NULL UNIQUE,
  prefix      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at  timestamptz
);

-- A global, monotonically increasing modify index (Udup's X-Udup-Index, blocking reads).
CREATE SEQUENCE modify_index;
