"""Migration 13_20261207160000_search_stemming_and_sort_indexes (written by hand).

The models do not change (MODELS_STATE is migration 12's); what changes is what the
ORM cannot describe:

- Search that stems ("demos" finds "Demo") over a video's title, description, tags
  and its uploader's name (clipsync/services/search.py). SQLite: the FTS5 table
  `video_search` with the porter stemmer (English only) on unicode61. PostgreSQL: the
  table `video_search` of one `tsvector` per video, weighted title > tags > uploader >
  description, made in the text search configuration named in `search_language`
  (`[search] language`, set at start-up), with a GIN index. Both are kept in step by
  triggers on every table whose rows are part of a video's text: `videos`,
  `video_tags`, `tags` and `users`; a write can never leave the index behind.
  The first search index (`videos_fts`, `idx_videos_search`) is dropped.
- The title sort of the lists (clipsync/services/browse.py): an index per branch of
  the visibility rule on `lower(title), id`, as the newest-first indexes of migration 9
  are on `created_at, id`.
"""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

TITLE_INDEXES = """
CREATE INDEX IF NOT EXISTS "idx_videos_cat_status_title" ON "videos" ("category", "status", lower("title"), "id");
CREATE INDEX IF NOT EXISTS "idx_videos_cat_title" ON "videos" ("category", lower("title"), "id");
CREATE INDEX IF NOT EXISTS "idx_videos_owner_title" ON "videos" ("owner_id", lower("title"), "id");
CREATE INDEX IF NOT EXISTS "idx_videos_title" ON "videos" (lower("title"), "id");
"""
DROP_TITLE_INDEXES = """
DROP INDEX IF EXISTS "idx_videos_cat_status_title";
DROP INDEX IF EXISTS "idx_videos_cat_title";
DROP INDEX IF EXISTS "idx_videos_owner_title";
DROP INDEX IF EXISTS "idx_videos_title";
"""

# SQLite: the name a video's uploader is shown by (services/profiles.py display_name_of).
SQLITE_UPLOADER = (
    "CASE WHEN trim(u.display_name) <> '' THEN u.display_name "
    "ELSE substr(u.email, 1, instr(u.email, '@') - 1) END"
)


def sqlite_tags(video_id: str) -> str:
    return (
        "coalesce((SELECT group_concat(t.label, ' ') FROM video_tags vt "
        f"JOIN tags t ON t.id = vt.tag_id WHERE vt.video_id = {video_id}), '')"
    )


SQLITE_UPGRADE = f"""
DROP TRIGGER IF EXISTS "videos_fts_insert";
DROP TRIGGER IF EXISTS "videos_fts_delete";
DROP TRIGGER IF EXISTS "videos_fts_update";
DROP TABLE IF EXISTS "videos_fts";
CREATE VIRTUAL TABLE IF NOT EXISTS "video_search" USING fts5(
    title, description, tags, uploader, tokenize='porter unicode61 remove_diacritics 2'
);
DELETE FROM "video_search";
INSERT INTO "video_search" (rowid, title, description, tags, uploader)
    SELECT v.rowid, v.title, v.description, {sqlite_tags("v.id")}, {SQLITE_UPLOADER}
    FROM videos v JOIN users u ON u.id = v.owner_id;
CREATE TRIGGER IF NOT EXISTS "video_search_insert" AFTER INSERT ON "videos" BEGIN
    INSERT INTO "video_search" (rowid, title, description, tags, uploader)
    SELECT new.rowid, new.title, new.description, {sqlite_tags("new.id")}, {SQLITE_UPLOADER}
    FROM users u WHERE u.id = new.owner_id;
END;
CREATE TRIGGER IF NOT EXISTS "video_search_update"
AFTER UPDATE OF title, description, owner_id ON "videos" BEGIN
    UPDATE "video_search" SET title = new.title, description = new.description,
        uploader = (SELECT {SQLITE_UPLOADER} FROM users u WHERE u.id = new.owner_id)
    WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS "video_search_delete" AFTER DELETE ON "videos" BEGIN
    DELETE FROM "video_search" WHERE rowid = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS "video_search_tag_added" AFTER INSERT ON "video_tags" BEGIN
    UPDATE "video_search" SET tags = {sqlite_tags("new.video_id")}
    WHERE rowid = (SELECT rowid FROM videos WHERE id = new.video_id);
END;
CREATE TRIGGER IF NOT EXISTS "video_search_tag_removed" AFTER DELETE ON "video_tags" BEGIN
    UPDATE "video_search" SET tags = {sqlite_tags("old.video_id")}
    WHERE rowid = (SELECT rowid FROM videos WHERE id = old.video_id);
END;
CREATE TRIGGER IF NOT EXISTS "video_search_tag_relabelled" AFTER UPDATE OF label ON "tags" BEGIN
    UPDATE "video_search"
    SET tags = {sqlite_tags("(SELECT id FROM videos WHERE rowid = video_search.rowid)")}
    WHERE rowid IN (
        SELECT v.rowid FROM video_tags vt JOIN videos v ON v.id = vt.video_id
        WHERE vt.tag_id = new.id
    );
END;
CREATE TRIGGER IF NOT EXISTS "video_search_uploader"
AFTER UPDATE OF display_name, email ON "users" BEGIN
    UPDATE "video_search"
    SET uploader = (SELECT {SQLITE_UPLOADER} FROM users u WHERE u.id = new.id)
    WHERE rowid IN (SELECT rowid FROM videos WHERE owner_id = new.id);
END;
{TITLE_INDEXES}"""

SQLITE_DOWNGRADE = f"""
DROP TRIGGER IF EXISTS "video_search_insert";
DROP TRIGGER IF EXISTS "video_search_update";
DROP TRIGGER IF EXISTS "video_search_delete";
DROP TRIGGER IF EXISTS "video_search_tag_added";
DROP TRIGGER IF EXISTS "video_search_tag_removed";
DROP TRIGGER IF EXISTS "video_search_tag_relabelled";
DROP TRIGGER IF EXISTS "video_search_uploader";
DROP TABLE IF EXISTS "video_search";
{DROP_TITLE_INDEXES}
CREATE VIRTUAL TABLE IF NOT EXISTS "videos_fts" USING fts5(
    title, description, content='videos', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO "videos_fts" ("videos_fts") VALUES ('rebuild');
CREATE TRIGGER IF NOT EXISTS "videos_fts_insert" AFTER INSERT ON "videos" BEGIN
    INSERT INTO "videos_fts" (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
CREATE TRIGGER IF NOT EXISTS "videos_fts_delete" AFTER DELETE ON "videos" BEGIN
    INSERT INTO "videos_fts" ("videos_fts", rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
END;
CREATE TRIGGER IF NOT EXISTS "videos_fts_update" AFTER UPDATE OF title, description ON "videos" BEGIN
    INSERT INTO "videos_fts" ("videos_fts", rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
    INSERT INTO "videos_fts" (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
"""

POSTGRES_UPGRADE = f"""
DROP INDEX IF EXISTS "idx_videos_search";
CREATE TABLE IF NOT EXISTS "search_language" ("language" TEXT NOT NULL);
COMMENT ON TABLE "search_language" IS 'One row: the text search configuration of video_search ([search] language).';
INSERT INTO "search_language" ("language")
    SELECT 'english' WHERE NOT EXISTS (SELECT 1 FROM "search_language");
CREATE TABLE IF NOT EXISTS "video_search" (
    "video_id" UUID NOT NULL PRIMARY KEY REFERENCES "videos" ("id") ON DELETE CASCADE,
    "document" TSVECTOR NOT NULL
);
COMMENT ON TABLE "video_search" IS 'A video''s searchable text, kept in step by triggers.';
CREATE INDEX IF NOT EXISTS "idx_video_search_document" ON "video_search" USING GIN ("document");
CREATE OR REPLACE FUNCTION clipsync_video_document(video UUID) RETURNS TSVECTOR
LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT setweight(to_tsvector(l.language::regconfig, v.title), 'A')
            || setweight(to_tsvector(l.language::regconfig, coalesce((
                   SELECT string_agg(t.label, ' ') FROM video_tags vt
                   JOIN tags t ON t.id = vt.tag_id WHERE vt.video_id = v.id), '')), 'B')
            || setweight(to_tsvector(l.language::regconfig,
                   CASE WHEN btrim(u.display_name) <> '' THEN u.display_name
                        ELSE split_part(u.email, '@', 1) END), 'C')
            || setweight(to_tsvector(l.language::regconfig, v.description), 'D')
        FROM videos v JOIN users u ON u.id = v.owner_id CROSS JOIN search_language l
        WHERE v.id = video
        LIMIT 1
    ), ''::tsvector)
$$;
CREATE OR REPLACE FUNCTION clipsync_video_search_video() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO video_search (video_id, document) VALUES (NEW.id, clipsync_video_document(NEW.id))
    ON CONFLICT (video_id) DO UPDATE SET document = EXCLUDED.document;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION clipsync_video_search_tag() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed UUID;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD.video_id;
    ELSE
        changed := NEW.video_id;
    END IF;
    UPDATE video_search SET document = clipsync_video_document(changed) WHERE video_id = changed;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION clipsync_video_search_label() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE video_search SET document = clipsync_video_document(video_id)
    WHERE video_id IN (SELECT vt.video_id FROM video_tags vt WHERE vt.tag_id = NEW.id);
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION clipsync_video_search_uploader() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE video_search SET document = clipsync_video_document(video_id)
    WHERE video_id IN (SELECT v.id FROM videos v WHERE v.owner_id = NEW.id);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS "video_search_video" ON "videos";
CREATE TRIGGER "video_search_video" AFTER INSERT OR UPDATE OF title, description, owner_id
    ON "videos" FOR EACH ROW EXECUTE FUNCTION clipsync_video_search_video();
DROP TRIGGER IF EXISTS "video_search_tag" ON "video_tags";
CREATE TRIGGER "video_search_tag" AFTER INSERT OR DELETE OR UPDATE
    ON "video_tags" FOR EACH ROW EXECUTE FUNCTION clipsync_video_search_tag();
DROP TRIGGER IF EXISTS "video_search_label" ON "tags";
CREATE TRIGGER "video_search_label" AFTER UPDATE OF label
    ON "tags" FOR EACH ROW EXECUTE FUNCTION clipsync_video_search_label();
DROP TRIGGER IF EXISTS "video_search_uploader" ON "users";
CREATE TRIGGER "video_search_uploader" AFTER UPDATE OF display_name, email
    ON "users" FOR EACH ROW EXECUTE FUNCTION clipsync_video_search_uploader();
INSERT INTO "video_search" ("video_id", "document")
    SELECT id, clipsync_video_document(id) FROM videos
    ON CONFLICT ("video_id") DO NOTHING;
{TITLE_INDEXES}"""

POSTGRES_DOWNGRADE = f"""
DROP TRIGGER IF EXISTS "video_search_video" ON "videos";
DROP TRIGGER IF EXISTS "video_search_tag" ON "video_tags";
DROP TRIGGER IF EXISTS "video_search_label" ON "tags";
DROP TRIGGER IF EXISTS "video_search_uploader" ON "users";
DROP FUNCTION IF EXISTS clipsync_video_search_video();
DROP FUNCTION IF EXISTS clipsync_video_search_tag();
DROP FUNCTION IF EXISTS clipsync_video_search_label();
DROP FUNCTION IF EXISTS clipsync_video_search_uploader();
DROP FUNCTION IF EXISTS clipsync_video_document(UUID);
DROP TABLE IF EXISTS "video_search";
DROP TABLE IF EXISTS "search_language";
{DROP_TITLE_INDEXES}
CREATE INDEX IF NOT EXISTS "idx_videos_search" ON "videos"
    USING GIN (to_tsvector('simple', title || ' ' || description));
"""

UPGRADE = {"sqlite": SQLITE_UPGRADE, "postgres": POSTGRES_UPGRADE}
DOWNGRADE = {"sqlite": SQLITE_DOWNGRADE, "postgres": POSTGRES_DOWNGRADE}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return UPGRADE[db.capabilities.dialect]


async def downgrade(db: BaseDBAsyncClient) -> str:
    return DOWNGRADE[db.capabilities.dialect]


MODELS_STATE = (
    'eJztXWlz20bS/itT+hK5itbqsGyvsrVVuuwokSWXjji70VvkEBiSswIHXByiubv572/3ACBxDECA'
    'l0BkqlKxCEwPgGeuvvu/O0PbZJa7d+qb3LsUnjPZOSH/3RF0yOAPxd0W2aGj0eweXvBo15LNKbZr'
    'W3ZfNuu6nkMND270qOUyuGQy13D4yOO2wOa3ghGTGdyF38S1h8yGC0NqshMyHtgt+B8T+H/qtQi0'
    'GA+4MSAv3GQ2sR1CDcP2BdyiwoR7kz18qGkb8FQu+mvq3xf83z5re3afeQPmwFN+/z+4zIXJvjM3'
    '+jl6bvc4s8wEltzEDuT1tjcZyWtXwvskG+Krd9uGbflDMWs8mngDW0xbc+Hh1T4TzKEew+49x0dg'
    'hW9Z4SBEWAdvOmsSvGKMxmQ96ls4PEgdvMDs2k67fXP70L6/fGi3dzJDF1HE0A4vGbbAYYdXdeXX'
    '9/EV3h4evPvw7uPR+3cfoYl8zemVD38Ej54BExBKeG4edv6Q96lHgxYS4xmoML9sp82GlFtZdM8H'
    '1FHDmyJL4QwfkMY5QrUI6OjCDOnZvN8E1EP6vW0x0fcGiO/xuwJgfz29O//p9G4XWr3BR9qwUIMl'
    'fBPeOgzuIfoJtPGlqgEdUqwL443O5gTER4clED46zAUYbyXxlXtP2+MeNK0Acopsc7N5Z2czc3l/'
    'v8xc3t/Pn8t4L4m1AVj07eBEKwt0nGYhlMPJWsvp/L7MhvE+f794n9kuHEZd1XbxwL7nHHszigZM'
    '4gI4Hy5/e8Ceh677bysO4+6X098kwsNJeOf69uZz1DwG+/n17VkKbpN5cJ65Wbx/vr+9UeMdI0kB'
    'bnLDI/8jFnczPMfKgP9bzxfyfCBdn1seF+4ePvbvrzAgCFHxgKSxR8hs1+s7shfZQXpADJjOAFmb'
    'etkxuYA7Hh+ynI0mQZkempB0L/pjCw9S+D7zVliT8LlFS+Xqy+X9w+mXr4nhuTh9uMQ7h4m1El3d'
    'fZ8asmkn5NvVw08Ef5J/3t5cpkdx2u7hnzv4TtT37Lawx21qxiCKrkYwpnkkYC0rMftxkvks/0LH'
    'ymY50ZUw/TNIPeqAuNX2XVYR2CyhhjcLb8A+qoB9fLy6KGI5lZj6Pjf3kHL7kC2ALWDmg30lvmPI'
    'D/3jD5T6e8/5ImoW20+2w3hf/MImEuEreBEqDBUDHyphHmEWby2ks6uzV3ToeKomSeyB8O3wxcyT'
    'Xw8vQG4er693snN2BaD+GvXTTFTjy7QEqrH9Uk/YOdBmz5YcgHFr6FLjeUwds53YI/COfWinrkzb'
    'Zm8ND4fpK1TQvgQJvwbffaqy9Qb3zHWDr1dodGe3W8UqXW/QdoOWbjm17ilxYZ4w8y0XxGQv3GAn'
    'xB3YjocqVeiJePYzEy7BVyLcI7sdl5udNz/C3y5xWA921kHQBn4JNgaCARtm1btres6TeBLImhJK'
    'BhRa2D28TgzfgVZeipC75JmNvD3yAE1CmIhrwbJzSc92cByfxJh7A8KoMZgS73bY9xGHP4HD77wB'
    '8ccjgr0wh4yo65EOE6a8U1Ll/PtObBY67AXeTIoO/1dJF52v9lAe8wtK5K+rjU4oPN4dlVB4vDvK'
    'VXjgrWLtdDjcbZxHVQBP0zUO+tXrmrZL1t6svNBcYduC7RKP4EXGPU2rR36bRn52flYd9yRlA0d9'
    'S0Y5wqR4mANOqPIYz8j0ANd6gAPGvQpzNKNogI0oyRYdHJYxdEKrXMZI3ksZ7U0TxkthFiqw2s9I'
    'GofxOsycU4mr4jaVpFzBTlVPXUojNqrq1odlzQ51O3ZWYXco0JNvVutYN3DLqh3z9I3np/fnpxeX'
    'RerGBNSAsNSOZRE/C4k//XLHLJrjvjUD27wLlBUP2F2DgP9jndrZcxq9Z0YzG91qFWlljaBRaYXs'
    'N9b99eGBYLtnsnt/94CKS/jkF+bAQElHWOKPLJuazHzTIq4Hq84kXeZyk0ntpzQk/OCSn67vVYrY'
    'lfevUHr+nrBmWFT0fQA3UHJq/9tX8r+dDkMF7jJO00DP26PjMm6hx/luocdpBhO+m1Vyb54SNBDe'
    '1fPvz6ySE2jYvIHQHh+U8WiGVrngyntJdF3+H8XukLvxRs03xzHv13rr1RaOP7ee2x+ZC456klKP'
    'el1GXaFtCN8+u9a7k2oqhwyd9neslb9j3ZbQWhweN+2bV1NQF3fOm+py1FvC5pRkNdsIygKb2QVr'
    '5Zl3bg+HTL57VvcT3moV6n6CRqV1P2H7loxpJg4bWRPi2QRjoXfxF2cuGdAXBjdHFF3cfiTRZWgW'
    '/WnaRNgeYd+5671RqYDW9Zgy7m/xlRRjdqHd7zvBwxQ3taJok4qixDCUxDZBozmZLCfTtU3FaZAf'
    'Xhm1b4TuYtPhlVr+zp/X2ymJlfIzM/lig54g1Kb9+gjb2TEecNNkYoExThDqMa7zGGMcS+W43DiN'
    '5j+y/Ec4/6tqqdJkGlqtpNJKqnrqUqopqYIdUyuo5gU7xw+WEnG50w1TIzsH2fTRUivN3wWz+AtT'
    'p1ic3msV6f7MoBVnJbV/mAFxyFwX3gfDUQklxoAKwSziDSjGslJjwFxi+570xNqVGfFaZMy6A9t+'
    'Vuj5lu0Qg2sxVNaxx+giNna452EYrZBeYCPHDgJ3sa+R37W4O2CmvMVepHKxy+CpgcvYv+yubPgk'
    'XAz3wAhf6BFmq8/MH6ctgnt2EM+LT3U9blnk6+XNxdXNZ7IL33B2+nD+0+VFK/igJ2HyPnO9NzLv'
    '45A6z7Lr+8ubhxZxbanbBDjgtaC1w0ZStJePCiJ4gwd6Y26w0vrLEENsDsvX891AdRmilqPYjHmC'
    'RkRapblJlWZs1Mr6DsVIGqGDW3dCRIlOBXyj9g0Edx1xKwYf8dDeVBbhBFEDYT7cf/exBNDYrCDb'
    'JN5Mgj2iE3R/zkKdn5wvRqKT8xWr8xdIzheemcqpfyn8YYadTropTqk3GCA3AtYCIaw2Ajshr3NC'
    'QvonEXI8J6RLPeDXzCeB7M0J8i7ATn06vbrGmz1g3ZiZZgHLLKKD92XCGNPqwFgU4/tMECOwicOR'
    'pxivfO1djER7k6b1SzL7AXMclbSeb0BMUjUgNnTTRkTYkEbwBqydt/3kTmcFpdabai9pbaWd7kvh'
    'hr9oKpgkubbm1dmah4zKAuMcI9PjW+fx3Xywfc0Gc9XHYlKVWBLTJJGGtWYpDGqG7coyGCjm7QpA'
    '/TbrqZm4Jldr1eQQ67R7XaIR6HxAhVx9GdNX/HaryPoljUltQ7Ys7/4um2MWV0pGzHFt8YNLQrMU'
    '1gILbEM2zB1pM7K4eJZ6EPRKxwuCjaUTO3cJps1Qur6v4RG60Fi9jD0wRtXLjCWImqgsX0eRMZmX'
    'pnLK3CSVTpg71/qjFSX50DdXUaLTps7js+o+ymXl54VSBqw0G3I9+eimjK9ORrg0v1cbSb5u4K5M'
    'lH8lefO7xxxBrSsThCzuKf0tM21ahZJn2Bo+VjYv7YB5GgqE5BmWskCBjwpyO2Li6gK9HdG72iHU'
    'JR3X7/6LGV4HpcgOd12fOZ1WWOAE3SOxDcLdUQmgK39G5KY5otwhu0FTaBnQv0FBNXTXlJ2DtOtK'
    'qIJSK+hGKW/LtwpcMaUU9CSGdBJJyyjVMulRGThuYhmVQFCGD3AH9lj6X8LfUlympMcd15Mv+5aL'
    '/ByBwbvi7fBtdYLA1437DudIFVkuTtNAqXn1stxs0peFeEbRQIAPj8ukYIRWBWqJTBLGaDupAHKM'
    'RKNcDuXKKrbl1Gs1E1HS7tRlqgEcFVQDOMpWA9Bqn3z0m6v2kQ4uyDu1+SJx7gpyrR/Q+oFaL2at'
    'H9D6gRz9wJV44Z7SFB3eaRXpArhsU6EWquhb7K2Pd6UOHX4Th/U5ksr4CingBiGPsAUwzyUGTIW+'
    '7UykCOzYFlMXP11Vx9rWXC+ZWVtAN2MBDRdDFZDjNA2U6dYQZAibjBrg+UFWEe0G40yic71KfNXp'
    'xZermxNCzSEXT+Ly4urh9u6EYP4v23kSj/eX8Gva76tHUmkBMB/65gqA2u4/j5mt+yhru78eX10X'
    'YJ0xEnIVVEU2SaRhnas50XnsV57HXjGJNbbzVVN1LRDwC7pxXARVrhU6qvjtVpGiSrqDtINy2aXV'
    'VV3HHsPAk93uhHBPBiQ4BN5TYEKsyNFkQN2Y20jPsYcqBdWiXaHzyWnk6SEvyegIrAvgMiaiHGBh'
    'oq0BI0/oaB8RPO3AHcN3uDdBEt7jhtSG5buMJJTlos+ckYPzRvuNvKYOLD4SGXTz9TMpMq2iKaGi'
    'kZ5VbVxaC4gOGeIGSogN1gsElt3Fhj5Nq0d+m0Zem4i1ibgefHgdTcTX/FnJfMvrhVy3BS2qOodL'
    'GuCJZbJtsks9MoTFLiOGlbW2ypLNraIeoa953VdNJKtNMvoA1gewrpmx8uNXhZuumVGvmhmaT9xi'
    'PvEmpmFU8YuJ+4V8Y1xXWZJ/vLeHwNeh25908htA50zIegnwa6phdQe2b5kyOJDsAhvInZBh5C7W'
    'azAnLbK3t6fgM1fffZlaCLGBRnJdqnXz7ocTnXR/bcpWj3t5DnE56EYEDYT3cL9MhBO0Kki1n4lw'
    'qn9R3MZks/adSrF6YfMGAJ2cxscHZQqfQKvcaSzv1UaYqadJfwFZRvu9lpvNzVWyRCxkxSGPkWmH'
    'yDo7RGolmrZiae1EGe3EV4f1mMOE2qksp2WrrMaiPZoSVTR+/eASY2BzI8gbFDp6TfslOI/gqrwR'
    'Vs/Lt4gt0Bc6m+HRFxKGtSdN3oOvCXzP0MMsnFiEot+ZB5PfJLsuY0+iAwMv/ev+kkBDLrK90aQz'
    'TYYkrwQpjaSOJOzRLTDUxSZVJGJH9QO1vU4rSGohwa8hKlNX1Vx3VU0m8MMVO8OZbVuMipxAsBlV'
    'CuUukG0hzAWwnt3eXidY4LOrtDrk8cvZ5d3ugYQdGgUJBdRRJZpD1Ryq5lCVHOpX6rpj2zHvMD+F'
    'ijFNNijkR0dh03aQ7KIsG/q0Azxa3/ZIRP+0kyzRQAWhhmH7wgP+EmRT6N5V8aCLdTRlQCnGQgww'
    'NycGS8hsDmhDC9jNsPQ4siRd6gJD6g9H0F7WNvc9YHMJPPAZbXX4xEWMbeny4uH7pW9pTlNnAmle'
    'JhCtG/4T6oZ1ToRFWOM6jXJZFbHOidDg8Y0xKmUPyBhJ44zRqz8dtQSrJVgtweZKsBadWNxVC6/R'
    'vVah3Bq2Kiex5uNaRuCzx2KKoj8ytVj3OmKddgJcsxNg/M0yOOf7AqbIGsAcbNolkPomj0zH2dk9'
    'P+djnH6D8I8c/kI9VnEUdr7eXf0KPPAJCemfxDn8/Hx794+Taa7dJ3F/9fnm8qKNSSKDVCdtLtL6'
    'wzIrZQ3JIF8jBWrNZCGtXNLKpdbqoztnzFXFUU9S6lGvy6grlBHh289GPc5el+SZ4yRaWJ4vLEu8'
    'tLQ8T1qOT6uq4nJM+vPYUKFZOwvJPv1yxyyawy2nZOAr6KpBeP+xCZ2CxKxArxBhOl+30J6O5HyT'
    'eEeGkXQI9UgH9keO1ztkdz8owfgG8/R1on4V5Sirkyu9H2dvLufwNLQl7fqYaRk9Uys1NlzpMcK9'
    'PLRxEn32KZzHgPNYiIeM02kOsi4cZBm5IbWZlV1IqS1QryWdHWbT2WFGMWPHkrx53G6yndDO5c9T'
    'K3Z+mhidfKccsPOT77yOnfCOGfYLcybn8HNHwdMn7hfy9E7YErAwy0Zb3QqGnqUyEokJIilllXUh'
    '0wUis86EY1tDJryWDFoaD6CdLOM+wHgp7hILtoMsu7/SnufFQWHvgWOjjoB61YyF03HIYFtgOIgT'
    'NdCQuRbPG+261mDXNW0ayl9azRXxtD+d9qerAaNcU3+6OyZMnpdOcXZzDoccNqvAHTu+6CMjG6bT'
    '/sElP13fEws1aY6a651LkZ9+G+/KT9Ns7GuysfLfChxs1L6BzOvqo8zH3PQU8kHupJ2210ecQns5'
    'gLNroGATc+GcEWg8FXh2ueeEDn8lAY1RaERVtqoX+Po+a1dHVkGpEVYg3HPgj7Ya3E+WTXPgTZKl'
    'kO0h3RZiWwDcxe3j2fUl+Xp3eX51f3V7kxQA5U28NEvacXd5ep122gSm0qgUUzajaCB3sHrV1tT+'
    '8cwqeR+n6RoIdtPSydYN7bVYP7V5btvNc64/RGwfR3AiJmXvnCatYhVE2Ljty9al09F4vksCEkxV'
    'iKlgxnRCuDgh46AKg0uo4/AXzAmD6QTHA+YwaId2tGc28siQUTEecIupctSssHdMXPMwYMSxx3iX'
    'EmPAjOeRzdHON3a4h+ZAhoZK0mNj8oWfRT0KaOwwmLYu2gZNtyVr+9rQX9DcGPji+YTQnocFg4nh'
    'YF4cNBjC4oHBIz14vIvvb3L3meyGSRXJiDrwPdSSVSfQzRAuPomubzwzrDgM3wET0oUVRdB8ih+F'
    'ORxJx7D4yJ0IYy/K5bg3HbxO2boVlfQ2+Tvu6vfa+fqbnb/1fGHIBJnySfi/d3/fqd3m2ypQ5OCM'
    'qKrMidM0kIs4PD4uE1Z5fJwfVon30myxgFXtBUBVYo6TdA0IrNwA2kPmUZzyWaTzI1jjNA1AedPh'
    'q+GAZgA/4/1c9cWMpklai78eHh4dfTjcP3r/8fjdhw/HH/en6ovsrSI9xtnVZ1RlJKDP6jbsXi9M'
    '8Fce+BnN5oDfbxTqmFwQNW8VhfAUWQNPz7XI4EN4YY5cqlIOz4c7Tde8qOuD/cMyGiZslh/dLm+m'
    'tEwoEmSh/vn+9iZHvRQRpF1quOGR/5F1OiXH+PCuz2HEhbuHz3sNVhwBKj5b08doimfHDtJnqzug'
    'h8fv2yDEqRTY+SxNmq4J03/TfM125TrcpI/BljiWaX9C7U+oU038SUZdsdh1qgmdaqKmJp1lUk2s'
    '16TzYj8z8wGzoe8o7Tmx+61iY45s2ZaJ1UtbcoJcX28xP7/LXFdWoMIOWsRhPYzRIL7wuIWGiLGs'
    'oT2gL4wE/JZJqJiM6URlw1lZv0uYNYIU89XE2DiNTkqf4yGRb+PQLHxTWfjMEfQ6++U9rFx2zcWz'
    'arOc3SzcKV1s1sYaJKW3SVkixbNJmDfmR2JjNRQ06N7/dPoWJP9MSRQ0RKs2xiV6KpM7N+66oEui'
    'vJbPvi6Jshn/vKiYUlWkM4RNUNdtwNi7Xcd7bZSl23C+JwuSB6LEIjXJ45Q6sLvOo6wVsflb6Xaq'
    '5MooYi3qeu0FczakafX6rvP6hoFSmJWL4vdVRuXtdVNZWUhTtN11J9VU2Rm6haCt2QrRGe90zMcW'
    'grqCmA/1lrA500vNNoKywGZ2wQS68Bbk5vH6ulyqbzij2pbdz2JeJdn3VEsIuDdoQq812XcCsyLN'
    'a4hpGeVrO+I4SmYGHDHBo2QmshepSz2RwTot0nPsYRAJFAQFdSfwK7gkQmsU4SInNeDKui6jopXf'
    'HiwFrZndtGZWF+LcRCFO2ESEQrrMxzhJ1TiY16KMXSDjutbX1EqML6WvmZ0WJY+CGIV2oFJInJtP'
    'bVgzzn3NHmlWaIBfUipKGPO3bMqWlY1iS3W+zLnZjJE1m7NlEc1LGFlGzlyrAAVjdCU+UW75TriY'
    '0iJUskWrUIiCtm0u2r1467lSFPYNogoSv+UCPUwI5jZnQ7geCDn407A4sGEk5HoDiWdgj4llg4TE'
    'PTL0XY+MKVd4t6z6AZi9ASY2kyIXusgEPVHoGea0SXYN6rK3PdsymfkmSNAADalh2D7md3Bt6Dt6'
    'DtBT70mYNnNlQ/aduzJjxADGj/gjuADgWROQ/J6ZfE8kINj+x0jqS7+5az8JEBgBdtFnzg8uicaD'
    'yCQR8FVB1/jq0gFVQoOSJhcBHjCwTEqW+bk45TfLAQ7lEJ2O8zUFyOlwlBVtpgQNjEA9PC4jP0Kr'
    'ArkmI0Fui4i+xY5T8XOj5P4QJ9EmwrRMgcdVW3q0V5XJk5Taol5ni7r0f+hJJmdR74kEtfZyr9to'
    '18XLnXvs1GKOpxYUoptzZASPtSm2KykefJNJz+A/pEHeHdlWag6Rk9+VWcwEow5wyD059Ht7e2+A'
    'TXcJzmviAmOcFQiW7xJFAPmxbsAwj5jDbZMbQSI3l/RBxPA9LOA0hOEPqzkRk04Io8bgR3ggsPiY'
    '/c1hQzbsMsddNqrodfOxN9CfO5/XljsmToNFd9sYbQO13nqzXdlmey/zduRstvdRUo85m+00+UcZ'
    'VYyBaSC7uHfhnshRbWdJ1QZF47IFNFxINQRsXipNSyV63EU7LgNGc9Qhnu+gbgb2jVmVO1n2OtiZ'
    'Ob67ZzuoGwl9N6T+I1BpBMQIfOtJuMGG7gsYWujJ44Zs3fkLPAqfNALAMR/mBHqybAz6hD4E4T0i'
    '7MzDnoTFeh7Znaa6JKjLC1+BvH3rwEcFRB18NXwwpgXFVwnzaIq1JMLUGpMlNSbBvMsCe2bDiFKh'
    'BndGlAK4C1Tr2qunVza7WZ/d3l4n9umzq3S2nMcvZ5d3uwdyg57lhM8xxbzONvpA+6oNFC8Xbp0e'
    '7ZfPO0z7Ldzjgu0qyt+724FRZ1bnjdynYjphuINv02mRYBq8UWYbXkWfes+p156jmfS16Q7luqiC'
    '7ZRAq2ZLwKujsvKhb5aXT4VzOx0uEZ2ZiztBS3f+8GzesmnwKg7Qj6Mb9l2pjgvvFPI4/qgtokZz'
    '2ZyOASwHx3XaIQ4Vzy7p4D8dsrsfMCnAkwzRVo4ikJwPgaW918NKBLIeQZhcIsvurLBvlCm/hdwS'
    'Wt1nqrl/2V1ZQz0olPDC2RiJ0a7+Y9ivy7scmNgJcXwLhU8LOnaDUgiYTTSgpsYA+3RtEcipQYEH'
    '3AMC075U6wVSqYsiJoi9ZAgSIdZLwEIRc8pbRkkyIkDwd9q0nmyKSGl/7c0ychLz8rBGzbXjo8JI'
    'CUvHDc6EsqzbjKKBvNvqq4m6hu1UK3s3pdhkxbt1GdUL4FxNubvhyF+QNU6Sat64LryxwjaQSSKa'
    'OKEzA58fJZym05HCOvRah17XQFBrLRd6HS1rjez82OvUFlinzLePLjPvWA9W0yA3+22mTatQysbM'
    'NE7QvGIa3JAqTLoYledj340BunabUiClIGyO0aSqsiJU6wBl56/QHm2mgdM77cMwysKFLgi3Qyb9'
    '5uFlpQ+5LFxojyYnQTFENO9Os+pibcLVJMrV6Qo37N6yYBam1SZgqtvWtqWMbJlQznDJVsxInaRq'
    'oBz+7qjEQnt3lLvQ8FYhHxYiuAJ+4dT3Bvez3rYM9rJcQ3LG1YxncHL4BGcub+CU4wby4dRG/nrp'
    'hl87FKtGzMpaArFeOb1y3bbPDaT0QB9HNdCXwh9mDqmkrj6k3WDylCgivQLaO6cXX65uTgJHzidx'
    'eXH1cHt3QpjJPdt5Eo/3l/Br2m/VCo3vSwzJQZoDjFVnfJ/xxgDI+rZTqfBonGZdg7H9YlFa+nyB'
    '81nJpOUekxm6zRn9Dmp9YsbYDrcNrA5/UWwqhd63CboNOuBG03qr/G/TgbUgnVt2n4uq0bUJOh1i'
    'm4bWsg3MLL9QkG2aVofZ1sfel9WTaBfI/EXVXO2YDNiTG+Ci0X5xYr3C67zCTe6OLDppV3XTT9M1'
    'LlHkx/0S3PXH/VzuGm+lsqm8UI867WdWSYZJUjWvOtLxQRnnL2iVi7S8lxZkvFHbZXAIVcp9miJr'
    'HthrUZVI1JjA71+EU1CQ6yOjzkeGHLAgqN9jqmhS3i/QFKRpG5TG86+Hh0dHHw73j95/PH734cPx'
    'x/2ppJW9VSRynV19RqkrMcJZMcz14G6ftf/t2x5tdyeeKotU0WDkdKBHZNERMSm3Jm1/ZNnUXHxY'
    'inrRY1NlbBaK66K+yT04kOAjlCNXIbTrFLu6hJ4m2zdKubFdCZZWYiWTX2ikCpEKLflLT6gmej2k'
    '7DyyXxc5Eqaw1VeB6zzoq6FTyrCHQya8JafUedBLwzFqDzhMJ4VNS0M1ZV6YxV/Y8ofeRdBPUzdy'
    '6bnSDpyJl0TqErs6lz01dTdn3z3mCGq1uYke1t7Ss+sy7PAq6K/MLNtK4Lh44cDzt0M7ynKgXcnO'
    'GrogA6RkMVyNUi5Kz8Ieo/voCzeWXYK/YFcXsqemrj7MkLAkStfQRVPhEbbHe5hicHmJ5ibW1Z8B'
    'rvbIYT3mMLH0Mowj93XaaVMxnDqyYqzWsjLP17CzO+yrsYhZdIIpXJbFKuymqTA5zLBRXIFm5rJL'
    '8i7s6xx+Nhcv1x/iB4Qa6qUhC7t7lL01FbVZrV23PaSmygt0kbrJDWVWFZWJVwBWuSLT24gXSNkO'
    'bYfe7kuL2BjCdR7znG/iegwSqi2HU9NSFigyksym1CrU8RKwCjNrG5di36Gobu7zl2W1zRKtz9hd'
    'o6HaIEhbuRDH1DMGIDXafXUptipofcO+vsa6aiRgrDuw7ecVqU6/Bb01aAmuOyp8usHnRIfHD4Di'
    'KPEUR1MiXytSdQjctEmXYRVTmTO1E8UBdshul7mwZbikg6+yN73RkulQRw4fUmeCiWEUCepX3rsy'
    'I2qsbO40fDGbDDUe2RhR6HyoG415r2tA6iu6F68+InXzFeJrh/B6S8RvtpR53cAtm4clr5b5Kydh'
    'CSRQxTk7FU3zD9iZBLzWPCzJowrrcvnyocn4QDy9WiTZVt1CFu+Ozkd1H5mrlc7F/ISbq0+1Of98'
    '3PlbzxcGjgORT8L/vfv7znqXg2ojmZvMNP+g9LiXl0sjJ0ggImhcUNnhfpmoMmiVH3+zn4krAwa5'
    'z9HHpsfhQRXj+JTEzcN9HXFP8TfLIP7Avue59yfJGoB1UXDT5W/SM38a1xQhuvvl9DcJ9jS26fr2'
    '5nPUPDYC59e3ZzoVzMYZ79lJvUgGpBn1Bqf349frW2DGLipO8yndCYn+ehJf727PL+/vr24+n5DZ'
    '30/i7vL04h8nRP7zJE6/wr1fkTL660l8Or26xivBv0jx8+X5A16J/korFsoM8OrzKbm27xisajRy'
    'kqp5AbJriUYeWG5VnGMkGuRSICNTyipH1yepNNSloHZHDnrcVt06ElQa6nKJDAb+sCsor76DZCk1'
    '5KUgN32Hqnn6gupBcaIFCwjVDOkCYFdRQmjMTU+RyTRXrTtt36AI6JUlZBsw3h8oInBz0ZwRaDiz'
    'cIa+L7bJjCo7boqsedvt6su0Yfz4AkinyDTS85Hucs9RVuopykQRI2rQPrHpNC38PxVhjyg05oti'
    'bgyY8ez6w0oawhhN83aU1WsI813Scid2nESn1U1PWibwRFNY4/NtCTGSJkzZTRsSqOex4Ujlg5o7'
    'heMkegpnprDj2NUmcESgp2/16YteHYHaoZ1XUDofeSWxHoWFR2Gh3JdpWp34ss6JL8e288wc4Kmo'
    'W8nHIk3XhFW2bu5ywKjjdRn1FlhVaVq9quq8qnSNgfxF1twaA/7IXHDUk5R61Osy6orFnp+OL8z3'
    'rdCLFRVDUpHrmkjlayKZ9ljIrMLUsuxxZfhV5Br+8vDHfddLqhviJDqcZX44i8Qri6+OZ0nGs8Sn'
    'VdWAFp0pe5m0xsvBVD6h8bbMTCV7sCRIpdP0biVIOjdhqbRnbTiGhyvKfXYFXTUVL4cJ2HqX35ru'
    'on6aClQshddySFXJ3rWVSPmjtmDfvbbdWw6ox9ENdNNwlDREm8prVjX91FZCppMqlUEpcNX0aH8V'
    'SD3QflNx0smnXjmhUnLPysv0UC6lUjqln2w9P6eSJOsQ7gaZj0Z+F1jiATNzcx/JV5olP1JlUlpN'
    'n8r8ScFXVkqgNCXRGZR0BqVNbyvrNqRr82o+9NtpaCtjXpXZWtvdSTVrQ4qqQf7nK44NqpY4KE6z'
    'yvRB9WCIVLjNyRZUYMB5iTJXLWnAaVpy5lbKghOfU2oLjmo72JxlrGbbQFlYUztgAll4B3LzeH39'
    'qtneArE8TxCYCu3zpICZmqB0VtUhnRApD5KIffeFxy3Skf8As35jC3YSXsR8p/IZyOM7bGi/MDM/'
    'peqKup4rDyQypSbEgViCPy0NvI40IEe3Ko86JdI+nvVx+9I+nloI2Yl00QuIIRk6LYhkBRGdGVmL'
    'dlq020JQVyza6QTeZTCdm8BbfW5peXkOrpmjun4SM5pn8+Tl0HQ7T1qODMXlrWUGddDERjpA2sk3'
    'gGWbzZVhoaVahA1vtLQE+1oS7GwESgI7I9AMmWbINENW00OuGkPmBWfKkpg2y6kojehs46tTOZWk'
    'h5KCZ8i4MOUzDlnPqfnMwzc48BmhBJlV4nr2aMTMQC8OmMN1OQ9b6CMjizAz0nPsIerDHZZlMZbt'
    'LLc42ZTDyPAgmtvYJLcBe/3U3z612eTnqY0TLZindqE9Z10JjAoQXEWWWh2lnj+9t1NvrTBXZD3z'
    'tWpVc/JbxclrJeDKlYBaOFqVcPRKzHxYuFnFxs9qOhcw8GEZ6XKs+yl5vLsG7pl6BPhlF/hrF2YJ'
    'cNxfb+8fSM92CKPGgLAXJjxi96QTi1z8hHuEus/QEhplufgV9ju/VqPm3zfq7+IovF3yHd/D5g30'
    'eT/cf/exhNc7Nisoi4g3U4m3meEwBeNeUKJmStFAmA8Oy6AMrfKLiB1mMJYbjyIw7Of72xs1xjOK'
    'tFDEDY/8j2C8/bqwjlVT7frc8rhw9/B5r1FQFRFKyEOZXKTptKMprhA7SOcihb1+qJJV86f8jGKD'
    'lfr+Faab3cCkX3ndvMKqn/k4N6/q5wYq2wLLxV9UxROKspTNiHRusvK5ybSHZv5E305NVxkPzWjs'
    'qnpoZui0h+bc1HQzzDanqakZwmV1CpnpVdmrKH5eW3AcLJ895CLop0n56dapfjkFyI3BjkL7Et5p'
    'FSlf6KzNPNVLPgxa4VEvhQesHrci1xwjaaBEfnh8XIZnPj7O55nxXopnhkVVAeGweQPRPSglkRwU'
    'SCQHWYkEnuiFuSXLKjxiJJvXeLyOIWtluo0MO7VJW8If/w9h9Aeo'
)
