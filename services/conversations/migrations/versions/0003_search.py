"""Full-text search over messages: a tsvector PostgreSQL keeps itself, with a GIN index.

Choices (see services/conversations/search.py for the queries):
- Configuration `im_search`: the `simple` parser and dictionary (no stemming, no stop words:
  a school chat mixes languages, and an English stemmer would mangle Dutch or Arabic words)
  with `unaccent` in front, so "ecole" finds "école" and "Grösse" finds "Größe". The
  configuration carries `unaccent` as a filtering dictionary, so `to_tsvector('im_search', ...)`
  stays IMMUTABLE with no wrapper function, and `ts_headline` with the same configuration
  highlights the accented word the person wrote.
- The document is the HTML-escaped text a snippet shows (body, then attachment names), plus
  link URLs and attachment names split at punctuation ("Homework_week3.pdf" is one token to
  the parser; the split adds "homework", "week3", "pdf"). Escaping first means the index and
  `ts_headline` parse exactly the same text (the parser would otherwise drop "<y and y>" as a
  tag), and a snippet is safe to display: the only markup in it is our own <mark>.
- A STORED generated column: no code path can forget it, edits recompute it, and a deleted
  message (deleted IS NOT NULL) gets an empty vector, so it can never match.
- `unaccent` is a trusted extension (PostgreSQL 13+): the database owner may create it.

Adding a stored column rewrites `messages` under an exclusive lock: fine now, a concern on a
large live table (then: add a plain column, backfill in batches, and a trigger).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Names are schema-qualified because a generated column must not depend on search_path.
_FUNCTIONS = r"""
CREATE FUNCTION public.im_search_escape(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN replace(replace(replace(replace(replace(value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                               '"', '&quot;'), '''', '&#39;');

-- What a snippet shows: the message text, then each attachment name on its own line; escaped.
CREATE FUNCTION public.im_search_text(body text, attachments jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT public.im_search_escape(concat_ws(E'\n', nullif(body, ''), (
        SELECT string_agg(a ->> 'name', E'\n' ORDER BY n)
        FROM jsonb_array_elements(CASE jsonb_typeof(attachments) WHEN 'array' THEN attachments END)
             WITH ORDINALITY AS e(a, n)
        WHERE jsonb_typeof(a) = 'object')));
END;

-- Link URLs and attachment names, each whole and split into words at ASCII punctuation (scheme dropped).
CREATE FUNCTION public.im_search_names(links jsonb, attachments jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT public.im_search_escape(coalesce(string_agg(
        v || ' ' || regexp_replace(regexp_replace(v, '^[A-Za-z][A-Za-z0-9+.-]*://', ''),
                                   '[-_./\\:?=&#%+~,;!()\[\]{}@*|^$]+', ' ', 'g'), ' '), ''))
    FROM (
        SELECT l ->> 'url' AS v
        FROM jsonb_array_elements(CASE jsonb_typeof(links) WHEN 'array' THEN links END) AS l
        WHERE jsonb_typeof(l) = 'object'
        UNION ALL
        SELECT a ->> 'name'
        FROM jsonb_array_elements(CASE jsonb_typeof(attachments) WHEN 'array' THEN attachments END) AS a
        WHERE jsonb_typeof(a) = 'object'
    ) AS parts
    WHERE v IS NOT NULL;
END;

CREATE FUNCTION public.im_search_vector(body text, links jsonb, attachments jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_tsvector('public.im_search'::regconfig, public.im_search_text(body, attachments))
    || to_tsvector('public.im_search'::regconfig, public.im_search_names(links, attachments));
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
    op.execute("CREATE TEXT SEARCH CONFIGURATION public.im_search (COPY = pg_catalog.simple)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION public.im_search "
        "ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part "
        "WITH public.unaccent, pg_catalog.simple"
    )
    op.execute(_FUNCTIONS)
    op.execute(
        "ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS ("
        "CASE WHEN deleted IS NULL THEN public.im_search_vector(body, links, attachments) "
        "ELSE ''::tsvector END) STORED"
    )
    # fastupdate off: a pending list would be read by every search (4 MB: 4 ms) and flushed by
    # an unlucky sender (180 ms); writing each message's entries directly costs ~0.1 ms.
    op.execute("CREATE INDEX messages_search ON messages USING gin (search) WITH (fastupdate = off)")
    # Search across conversations looks at the most recent messages first (a common word is
    # answered from the last hours, not from every match ever written).
    op.execute("CREATE INDEX messages_created ON messages (created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX messages_created")
    op.execute("DROP INDEX messages_search")
    op.execute("ALTER TABLE messages DROP COLUMN search")
    op.execute("DROP FUNCTION public.im_search_vector(text, jsonb, jsonb)")
    op.execute("DROP FUNCTION public.im_search_names(jsonb, jsonb)")
    op.execute("DROP FUNCTION public.im_search_text(text, jsonb)")
    op.execute("DROP FUNCTION public.im_search_escape(text)")
    op.execute("DROP TEXT SEARCH CONFIGURATION public.im_search")
    # unaccent stays: other objects may use it, and it costs nothing.
