"""The workspace's schema: versioned, append-only migrations, and the indexes the plan rebuilds.

``meta.schema_version`` says which steps a database has had. A step is SQL only (the store imports
no domain code): a step that needs derived rows computed again sets ``meta.derive_cases`` and the
domain derives them on next use (:mod:`keyshift.core.resolve.cases`). Never edit an old step;
append a new one.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["IDENTIFIER_INDEXES", "MIGRATIONS", "RECORD_INDEXES", "SCHEMA_VERSION", "clear_meta_flag", "meta_flag", "utcnow"]

# Version 1: plans, their files, records, quarantined lines, identifiers, reference data,
# conflicts and the audit log. Version 2: operators' decisions and cases. Version 3: runs
# (restore, verify, import) with checkpoints and offenders. Version 4: derived cases know the new
# key of a conflict and whether decisions made them moot. Version 5: every run has a heartbeat and an
# owner process (the run ledger, keyshift.core.store.runs). Version 6: the stream syncs' write log
# (echo suppression between forward and reverse sync, keyshift.core.migrate.stream.echo_log).
# Version 7: stream records held because their raw identifier is not in the keymap, identifiers
# first seen on the stream, and the keymaps stream sync applied (so a later keymap can be checked
# to only add to them). Version 8: the audit log's hash chain (``prev_hash``, ``hash``; the rows already
# there are chained by keyshift.core.store.audit.backfill_chain, which the ``audit_chain_backfill``
# meta flag this step sets asks for, in the step's own transaction) and indexes for its filters.
# Version 9: the consoles attached to the workspace now (presence, keyshift.core.store.presence).
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY,
        dump_uri TEXT NOT NULL,
        format TEXT,
        rules TEXT NOT NULL,             -- JSON list of rule names
        spec TEXT NOT NULL,              -- JSON of the spec used
        operator TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        state TEXT NOT NULL,             -- running | complete | cancelled | failed
        summary TEXT                     -- JSON: the `plan --json` document
    );
    CREATE TABLE files (id INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE);
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY,         -- order read, stable across re-plans of one dump
        file_id INTEGER NOT NULL,
        line INTEGER NOT NULL,
        ident INTEGER NOT NULL,          -- identifiers.id: the raw identifier, stored once
        sort_key TEXT,                   -- JSON of the sort key's wire value, NULL when none
        size INTEGER NOT NULL            -- item size in bytes (DynamoDB's rules), or line size
    );
    CREATE TABLE quarantine (
        seq INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL,
        line INTEGER NOT NULL,
        reason TEXT NOT NULL,
        excerpt TEXT NOT NULL DEFAULT '',
        raw TEXT                         -- the identifier, when the item got that far
    );
    CREATE TABLE identifiers (
        id INTEGER PRIMARY KEY,
        raw TEXT NOT NULL UNIQUE,        -- the identifier as stored in the source table
        escaped TEXT NOT NULL,
        canonical TEXT NOT NULL,
        new_id TEXT,                     -- NULL until decided when ambiguous/orphaned/invalid
        status TEXT NOT NULL,            -- unchanged | fixed | ambiguous | orphaned | invalid
        reason TEXT NOT NULL DEFAULT '',
        items INTEGER NOT NULL,
        changes TEXT NOT NULL DEFAULT '[]',     -- JSON list of Change.to_dict()
        suspicious TEXT NOT NULL DEFAULT '[]',  -- JSON list of flags
        ref_ids TEXT NOT NULL DEFAULT '[]'      -- JSON list of reference ids matched
    );
    CREATE TABLE samples (              -- one item per identifier: its first in dump order
        ident INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        item TEXT NOT NULL
    );
    CREATE TABLE reference (canonical TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE conflicts (
        canonical TEXT NOT NULL,
        sort_key TEXT,
        records INTEGER NOT NULL,
        raws TEXT NOT NULL               -- JSON list of the raw identifiers involved
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
    );
    """,
    2: """
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,          -- append-only: the newest row of a case is in force
        case_id TEXT NOT NULL,
        kind TEXT NOT NULL,              -- ambiguous | orphaned | invalid | conflict | suspicious
        action TEXT NOT NULL,            -- same | split | drop | map | keep | accept | undo
        payload TEXT NOT NULL DEFAULT '{}',  -- JSON: {"id": ...} / {"map": {raw: id}} / {"raws": [...]}
        reason TEXT NOT NULL,
        operator TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    CREATE INDEX decisions_case ON decisions(case_id, id);
    CREATE TABLE cases (                 -- derived from the plan when it completes
        id TEXT PRIMARY KEY,             -- stable: a hash of what defines the case
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        candidates TEXT NOT NULL,        -- JSON list of candidate new ids
        sort_key TEXT,                   -- conflicts: the shared sort key
        ord INTEGER NOT NULL             -- display order within the plan
    );
    CREATE INDEX cases_kind ON cases(kind, ord);
    CREATE TABLE case_members (case_id TEXT NOT NULL, ident INTEGER NOT NULL, PRIMARY KEY (case_id, ident));
    CREATE INDEX case_members_ident ON case_members(ident);
    CREATE TABLE keymaps (
        version TEXT PRIMARY KEY,        -- content hash of the entries
        built_at TEXT NOT NULL,
        operator TEXT NOT NULL,
        location TEXT,                   -- where the artifact was written, if anywhere
        summary TEXT NOT NULL            -- JSON counts
    );
    """,
    3: """
    CREATE TABLE runs (                  -- restore, verify and import runs, resumable
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,              -- restore | verify | import
        state TEXT NOT NULL,             -- running | paused | complete | failed | cancelled
        operator TEXT NOT NULL,
        keymap TEXT,                     -- keymap version used
        params TEXT NOT NULL DEFAULT '{}',
        summary TEXT,                    -- JSON: the command's --json document
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runs_kind ON runs(kind, id);
    CREATE TABLE checkpoints (           -- how far one unit of a run got (a file, a scan segment)
        run_id INTEGER NOT NULL,
        unit TEXT NOT NULL,
        position TEXT NOT NULL DEFAULT 'null',  -- JSON: lines done, LastEvaluatedKey…
        done INTEGER NOT NULL DEFAULT 0,
        counters TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, unit)
    );
    CREATE TABLE offenders (             -- verify: the keys of the first differences found
        run_id INTEGER NOT NULL,
        kind TEXT NOT NULL,              -- missing | extra | different
        key TEXT NOT NULL,               -- JSON wire-format key
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX offenders_run ON offenders(run_id, kind);
    """,
    4: """
    ALTER TABLE cases ADD COLUMN new_key TEXT;   -- conflicts: the new id their records land on now
    ALTER TABLE cases ADD COLUMN moot TEXT;      -- why a derived case no longer applies (NULL: it does)
    CREATE INDEX cases_new_key ON cases(new_key);
    INSERT OR REPLACE INTO meta(key, value) SELECT 'derive_cases', '1' WHERE EXISTS (SELECT 1 FROM cases);
    """,
    5: """
    ALTER TABLE runs ADD COLUMN heartbeat REAL;  -- epoch seconds of the run's last write (stale: it died)
    ALTER TABLE runs ADD COLUMN owner TEXT;      -- JSON {host, pid} of the process running it
    """,
    6: """
    CREATE TABLE IF NOT EXISTS echo_notes (            -- a stream sync's writes, noted before it makes them
        id INTEGER PRIMARY KEY,
        direction TEXT NOT NULL,         -- forward | reverse: who wrote
        tbl TEXT NOT NULL,               -- the table written
        key TEXT NOT NULL,               -- kernel.echo.key_json of the item's key
        digest TEXT NOT NULL,            -- kernel.echo.item_digest of the item (REMOVE: a delete)
        at REAL NOT NULL                 -- epoch seconds of the note
    );
    CREATE INDEX IF NOT EXISTS echo_notes_match ON echo_notes(tbl, key, digest, direction);
    CREATE INDEX IF NOT EXISTS echo_notes_at ON echo_notes(at);
    """,
    7: """
    -- IF NOT EXISTS: a workspace rebuilt from an older step (tests simulate one) may have them already
    CREATE TABLE IF NOT EXISTS held_records (          -- written by keyshift.core.migrate.stream.held only
        id INTEGER PRIMARY KEY,
        raw TEXT NOT NULL,               -- the raw identifier the keymap did not know
        direction TEXT NOT NULL,         -- forward | reverse
        source_arn TEXT NOT NULL DEFAULT '',  -- the stream it came from
        shard TEXT NOT NULL DEFAULT '',  -- empty when the Lambda handler held it (events name no shard)
        seq TEXT NOT NULL,               -- SequenceNumber zero-padded to 40 digits: sorts as a number
        event TEXT NOT NULL,             -- INSERT | MODIFY | REMOVE
        record TEXT NOT NULL,            -- JSON of the record's dynamodb part, wire format
        created_at REAL,                 -- its ApproximateCreationDateTime, epoch seconds
        held_at TEXT NOT NULL,
        origin TEXT NOT NULL,            -- stream-sync run N, or the hold table
        state TEXT NOT NULL DEFAULT 'held',  -- held | applied | dropped
        settled_at TEXT,
        UNIQUE (direction, source_arn, seq)
    );
    CREATE INDEX IF NOT EXISTS held_records_raw ON held_records(raw, state, seq);
    CREATE INDEX IF NOT EXISTS held_records_state ON held_records(state);
    CREATE TABLE IF NOT EXISTS unmapped_identifiers (  -- raw identifiers first seen on the stream, explained once
        id INTEGER PRIMARY KEY,
        raw TEXT NOT NULL UNIQUE,
        escaped TEXT NOT NULL,
        canonical TEXT NOT NULL,
        changes TEXT NOT NULL DEFAULT '[]',
        suspicious TEXT NOT NULL DEFAULT '[]',
        ref_ids TEXT NOT NULL DEFAULT '[]',
        first_seen TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS applied_keymaps (       -- keymaps a stream sync applied: what a later one must keep
        version TEXT PRIMARY KEY,
        winners TEXT NOT NULL,           -- hash of the conflict winners
        entries INTEGER NOT NULL,
        saved_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS applied_keymap_entries (
        version TEXT NOT NULL,
        raw TEXT NOT NULL,
        new_id TEXT,                     -- NULL: dropped
        PRIMARY KEY (version, raw)
    ) WITHOUT ROWID;
    """,
    8: """
    ALTER TABLE audit ADD COLUMN prev_hash TEXT;    -- the previous entry's hash ('' for the first)
    ALTER TABLE audit ADD COLUMN hash TEXT;         -- SHA-256(prev_hash || canonical JSON of the entry)
    CREATE INDEX IF NOT EXISTS audit_operator ON audit(operator, id);
    CREATE INDEX IF NOT EXISTS audit_action ON audit(action, id);
    INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_chain_backfill', '1');
    """,
    9: """
    CREATE TABLE IF NOT EXISTS consoles (             -- one row per console attached now (presence)
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a swept console's beat must not revive another
        operator TEXT NOT NULL,
        kind TEXT NOT NULL,              -- terminal | browser (a console --serve session)
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at REAL NOT NULL,      -- epoch seconds of its last beat (stale: it is gone)
        last_action TEXT,                -- what it did last, in words ("decided a case")
        last_action_at REAL              -- epoch seconds of that action
    );
    CREATE INDEX IF NOT EXISTS consoles_heartbeat ON consoles(heartbeat_at);
    """,
}

#: Indexes dropped while a plan bulk-loads records and rebuilt after (far faster than maintaining them).
RECORD_INDEXES = {
    "records_ident": "CREATE INDEX IF NOT EXISTS records_ident ON records(ident, sort_key)",
}
IDENTIFIER_INDEXES = {
    "identifiers_canonical": "CREATE INDEX IF NOT EXISTS identifiers_canonical ON identifiers(canonical)",
    "identifiers_status": "CREATE INDEX IF NOT EXISTS identifiers_status ON identifiers(status)",
    "identifiers_new_id": "CREATE INDEX IF NOT EXISTS identifiers_new_id ON identifiers(new_id)",
    "reference_canonical": "CREATE INDEX IF NOT EXISTS reference_canonical ON reference(canonical)",
}



#: The newest step; a workspace written by a newer keyshift is refused.
SCHEMA_VERSION = max(MIGRATIONS)


def utcnow() -> str:
    """Now, UTC, ISO 8601 with seconds: the one timestamp format in the workspace."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def meta_flag(conn: object, name: str) -> bool:
    """Whether the flag ``name`` is set in ``meta`` (e.g. ``derive_cases`` after an upgrade)."""
    return conn.execute("SELECT 1 FROM meta WHERE key = ?", (name,)).fetchone() is not None  # type: ignore[attr-defined]


def clear_meta_flag(conn: object, name: str) -> None:
    """Clear the flag ``name`` (inside the caller's transaction)."""
    conn.execute("DELETE FROM meta WHERE key = ?", (name,))  # type: ignore[attr-defined]
