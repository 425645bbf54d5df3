/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/sub.h - subscriptions: who receives which events, for which
 * legal purpose, which fields of them, and how they are delivered. Read
 * from YAML files that are reviewed like code, so they are checked
 * strictly: unknown keys, wrong types, repeated keys, and filters on fields
 * the subscriber may not receive are errors with file, line and column.
 *
 * The filter language is the CloudEvents Subscriptions API's dialects
 * (exact, prefix, suffix, all, any, not) over context attributes, extended
 * with `field`: a payload field path compared with =, !=, <, <=, >, >=,
 * in, or exists. See README.md "Subscriptions" for the file format.
 */
#ifndef KETENBUS_SUB_H
#define KETENBUS_SUB_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

#define KB_SUB_NAME_MAX 64

/* Limits of what a subscription file may make a process read or build, so a
 * hostile or mistaken file is refused instead of stalling or exhausting the
 * router (which loads on its routing thread) or the admin API (on a worker
 * of its own, bounded in time, kb__subs_load_bounded). */
/* Bytes of one subscription file. */
#define KB_SUB_FILE_MAX         (16u << 20)
/* Bytes of one follow list file: about 1.5 million entries; longer lists
 * belong in a follow topic. */
#define KB_SUB_FOLLOW_FILE_MAX  (64u << 20)
/* Filter nodes of one subscription. */
#define KB_SUB_FILTER_NODES_MAX 10000
/* Entries of one subscription's types, fields or pseudonymise list. The
 * largest schema in schemas/ has 62 field paths in all (nested ones
 * included), so a longer list is a mistake or an attack; a dry-run names
 * the fields a subscriber would receive, so the bound keeps that small too. */
#define KB_SUB_LIST_MAX         1024

enum kb_filter_kind {
    KB_FILTER_EXACT,  /* attribute == value (every pair of the map) */
    KB_FILTER_PREFIX, /* attribute starts with value */
    KB_FILTER_SUFFIX, /* attribute ends with value */
    KB_FILTER_ALL,    /* every child matches */
    KB_FILTER_ANY,    /* at least one child matches */
    KB_FILTER_NOT,    /* the one child does not match */
    KB_FILTER_FIELD,  /* payload field comparison */
};

enum kb_filter_op { KB_OP_EQ, KB_OP_NE, KB_OP_LT, KB_OP_LE, KB_OP_GT, KB_OP_GE, KB_OP_IN, KB_OP_EXISTS };

struct kb_filter {
    enum kb_filter_kind kind;
    char *attr;               /* EXACT/PREFIX/SUFFIX: context attribute name */
    char *path;               /* FIELD: payload field path, e.g. "kind.geboorteland" */
    enum kb_filter_op op;     /* FIELD: comparison */
    char **values;            /* EXACT/PREFIX/SUFFIX: 1 value; FIELD: 1, or n for IN */
    size_t n_values;
    int exists;               /* FIELD with EXISTS: 1 = must exist, 0 = must not */
    struct kb_filter *children; /* ALL/ANY: n_children; NOT: exactly 1 */
    size_t n_children;
    size_t line, column;      /* where it was written, for errors */
};

/* How coarse a file's time stamps may be: 2 s on FAT, 1 s on some network
 * and overlay file systems, a kernel clock tick (some ms) elsewhere. Two
 * writes within one tick can leave a file with the same time stamps. */
#define KB_FILE_TICK_NS 2000000000LL

/* Which version of a file was read: a change to any of the stat fields
 * means it changed. A file read within KB_FILE_TICK_NS of its last change
 * is "racy" (git's racily clean files): a write in the same tick changes
 * no stat field, so the hash of what was read decides (kb_file_changed). */
struct kb_file_id {
    uint64_t dev; /* device and inode: a file renamed into place is another file */
    uint64_t ino;
    int64_t size;     /* bytes when read */
    int64_t mtime_ns; /* modification time, ns since the epoch */
    int64_t ctime_ns; /* status change time: set by every write and by utimensat,
                       * which can set mtime back but not this */
    int racy;         /* read within KB_FILE_TICK_NS of its last change */
    uint8_t sha256[32]; /* racy: SHA-256 of the bytes read (else zero) */
};

/* One entry of a follow list: the subject pseudonym and the period. */
struct kb_follow {
    char subject[40];         /* pseudonym (kb_event_pseudonym) of the identifier */
    int64_t from_ms;          /* INT64_MIN when open */
    int64_t until_ms;         /* INT64_MAX when open */
};

enum kb_delivery_kind {
    KB_DELIVERY_KAFKA,        /* the subscriber consumes its topic */
    KB_DELIVERY_WEBHOOK,      /* `ketenbus deliver` posts the topic's events */
    KB_DELIVERY_LEGACY,       /* an adapter renders the topic's events (LO3, AKW01) */
};

struct kb_sub_webhook {
    char *url;                /* https://... */
    char *secret_file;        /* HMAC-SHA-256 signing secret */
    char *ca_file;            /* CA bundle to verify the receiver (default: system) */
    char *cert_file;          /* optional client certificate */
    char *key_file;           /* its key */
    int binary_mode;          /* CloudEvents HTTP binary mode instead of structured JSON */
    int concurrency;          /* parallel requests (default 4) */
    double rate_per_s;        /* 0 = unlimited */
    int64_t retry_window_s;   /* give up after this long (default 5 days) */
};

struct kb_sub {
    char name[KB_SUB_NAME_MAX];  /* subscriber name: [a-z0-9-], names its topic */
    char *file;                  /* the file it was read from */
    size_t line;                 /* where the subscription starts */
    char *purpose_id;            /* processing purpose id (doelbinding) */
    char *legal_basis;           /* the law article that allows the processing */
    char **types;                /* event types it receives */
    size_t n_types;
    struct kb_filter *filter;    /* NULL: every event of its types */
    char **fields;               /* field paths it may receive; n_fields 0 = all */
    size_t n_fields;
    char **pseudonymise;         /* field paths delivered as keyed pseudonyms */
    size_t n_pseudonymise;
    char **audit_fields;         /* what the audit trail records it was given: fields, and
                                  * each pseudonymise entry as "<path>#pseudonym" (a '#'
                                  * is in no field path); n_audit_fields 0 = all */
    size_t n_audit_fields;
    char *follow_file;           /* follow list source (CSV: identifier,from,until) */
    char *follow_path;           /* follow_file as opened (relative to the subscription
                                  * file's folder); NULL without a follow file */
    struct kb_file_id follow_id; /* the follow file's version that was read, so a reload
                                  * can notice an edit of the list alone */
    char *follow_topic;          /* or a compacted topic, "<prefix>.follow.<name>"; its list
                                  * is filled by kb_follow_topics_load() (empty until then) */
    struct kb_follow *follow;    /* loaded follow list (sorted by subject); NULL = all */
    size_t n_follow;
    int64_t valid_from_ms;       /* events recorded before are not delivered; INT64_MIN */
    int64_t valid_until_ms;      /* ... nor at or after this; INT64_MAX */
    enum kb_delivery_kind delivery;
    char *topic;                 /* delivery topic, default <prefix>.out.<name> */
    size_t topic_line;           /* where delivery.kafka_topic was written; 0 = the default */
    size_t topic_column;
    struct kb_sub_webhook webhook; /* KB_DELIVERY_WEBHOOK */
    char *legacy_adapter;        /* KB_DELIVERY_LEGACY: "gba", "svb" */
    char *legacy_format;         /* e.g. "Gv01", "AKW01" */
};

/* One subscription file a load read, and the version it read: a reload
 * looks at these with kb_file_changed(), so an edit that keeps the size and
 * falls in the time stamp tick of the read is noticed too. */
struct kb_subs_file {
    char *path;
    struct kb_file_id id;
};

struct kb_subs {
    struct kb_sub *items;
    size_t n;
    struct kb_subs_file *files; /* the files read, in order (a folder: its *.yaml, *.yml) */
    size_t n_files;
};

/**
 * Load subscriptions from @p path: a YAML file with `subscriptions:` (a
 * list) or a folder of such files (*.yaml, *.yml). Follow-list identifiers
 * are turned into pseudonyms with @p subject_key (may be NULL when no
 * subscription has a follow list). On error returns non-zero, errstr names
 * file:line:column and the problem, and @p subs is left empty.
 *
 * Every file read (subscription files, follow lists) must be a regular file
 * within its size limit (KB_SUB_FILE_MAX, KB_SUB_FOLLOW_FILE_MAX): a FIFO or
 * device is refused, never read, so a load cannot block. One YAML document
 * per file; aliases (*name) are refused. A delivery.kafka_topic must not be
 * one of the bus's own topics: inside "<prefix>." (kb_topic_prefix(), the
 * prefix the router writes with) only "<prefix>.out.<its name>" is allowed,
 * and no two subscriptions of the set may share a topic.
 * @thread any; reads files only (no Kafka)
 */
kb_err_t kb_subs_load(const char *path, const uint8_t *subject_key, size_t key_len,
                      struct kb_subs *subs, char *errstr, size_t errstr_size);

/**
 * As kb_subs_load(), for a file whose author is not the operator:
 * `follow: FILE` is refused, since it would make the server read a file of
 * the author's choosing. `follow: {topic: NAME}` is allowed.
 */
kb_err_t kb_subs_load_untrusted(const char *path, const uint8_t *subject_key, size_t key_len,
                                struct kb_subs *subs, char *errstr, size_t errstr_size);

/**
 * As kb_subs_load_untrusted(), for a subscription file held in memory (a
 * body posted to the admin API), so that nothing is written to disk: the
 * router may run on a read-only file system. The @p len bytes at @p text
 * (at most KB_SUB_FILE_MAX, no NUL needed) stand for a file named @p name,
 * which errors ("body:3:5: ...") and each subscription's file give;
 * subs->files stays empty, as there is no file to watch. @p text is not
 * kept.
 * @thread any; reads no file
 */
kb_err_t kb_subs_load_untrusted_buffer(const char *name, const void *text, size_t len,
                                       const uint8_t *subject_key, size_t key_len,
                                       struct kb_subs *subs, char *errstr, size_t errstr_size);

/**
 * Whether the file at @p path is still the version @p id describes (as a
 * load filled it in, follow_id): 0 when it is, else a fingerprint of the
 * version there now, never 0 and the same for the same version, so a caller
 * can tell one change from the next. One stat decides, except when @p id is
 * racy and the stat agrees: then the file (regular, at most @p max bytes) is
 * read and its hash compared, and when it agrees and the read began a tick
 * after the file's last change, id->racy is cleared (a later write shows in
 * the time stamps), so later looks are one stat again. A file that is gone
 * or cannot be read has changed.
 * @thread any; reads the file (no Kafka)
 */
uint64_t kb_file_changed(const char *path, struct kb_file_id *id, size_t max);

/** Free what kb_subs_load() filled. Safe on an empty set. */
void kb_subs_fini(struct kb_subs *subs);

/** 1 when @p sub lists event type @p type. */
int kb_sub_wants(const struct kb_sub *sub, const char *type);

/** 1 when field @p path may be delivered to @p sub (selected itself or inside a selected field). */
int kb_sub_receives(const struct kb_sub *sub, const char *path);

/** 1 when @p sub follows @p subject at @p time_ms (always 1 without a follow list). */
int kb_sub_follows(const struct kb_sub *sub, const char *subject, int64_t time_ms);

/* ---- follow lists from a compacted topic --------------------------------
 *
 * The topic <prefix>.follow.<name> holds one record per followed subject:
 * key = the subject pseudonym (KB_PSEUDONYM_LEN hex characters, as
 * ce_subject; never an identifier in clear), value = "from,until" with each
 * a date YYYY-MM-DD or RFC 3339 time, or empty for open; a tombstone (null
 * value) ends the following. The latest record per key wins.
 */

/** Folds the records of a follow topic, in offset order, into a list. */
typedef struct kb_follow_log kb_follow_log_t;

kb_follow_log_t *kb_follow_log_new(void);

/**
 * Add one record (@p value NULL: a tombstone). A malformed key or value
 * returns KB_ERR_INVALID and counts as a tombstone for its key (when the key
 * is well formed): a subject is never followed on a record nobody can read.
 */
kb_err_t kb_follow_log_add(kb_follow_log_t *log, const void *key, size_t key_len,
                           const void *value, size_t value_len);

/**
 * The list: the latest value per key, tombstoned keys left out, sorted by
 * subject as struct kb_sub wants it. *@p items is never NULL on success (an
 * empty list follows nobody); caller frees it. The log stays usable.
 */
kb_err_t kb_follow_log_list(const kb_follow_log_t *log, struct kb_follow **items, size_t *n);

void kb_follow_log_destroy(kb_follow_log_t *log);

/**
 * Parse a follow topic value "from,until" (either side may be empty = open)
 * into *@p from_ms / *@p until_ms. KB_ERR_INVALID when malformed or when
 * from is not before until.
 */
kb_err_t kb_follow_parse_period(const void *value, size_t len, int64_t *from_ms,
                                int64_t *until_ms);

struct kb_kafka_opts;

/** The follow lists of a process's subscriptions, with their topics' end offsets. */
typedef struct kb_follow_topics kb_follow_topics_t;

/** @p kafka must outlive the handle. No connection is made until a topic is read. */
kb_follow_topics_t *kb_follow_topics_new(const struct kb_kafka_opts *kafka);

/**
 * Read every follow topic of @p subs to its end (read_committed, no group
 * commits) and give each such subscription its list. A topic that does not
 * exist yet is an empty list (with a warning). Non-zero with errstr when a
 * topic cannot be read; subscriptions already filled keep their lists.
 * Topics of an earlier set stay known (and refreshed) until
 * kb_follow_topics_retain().
 */
kb_err_t kb_follow_topics_load(kb_follow_topics_t *ft, struct kb_subs *subs, char *errstr,
                               size_t errstr_size);

/**
 * Forget the topics no subscription of @p subs follows. kb_follow_topics_load()
 * keeps every topic it knew, since the set it loaded for may still fail to
 * take over (a reload) while the set in force reads the others; call this
 * once @p subs is the set in force.
 */
void kb_follow_topics_retain(kb_follow_topics_t *ft, const struct kb_subs *subs);

/**
 * At most every @p interval_ms (monotonic @p now_ms): look at the end
 * offsets of the follow topics and re-read those that moved, replacing the
 * lists of @p subs (the set last passed to kb_follow_topics_load). A read
 * that fails keeps the previous list, logged once until it works again.
 * Returns the number of topics re-read.
 */
int kb_follow_topics_refresh(kb_follow_topics_t *ft, struct kb_subs *subs, int64_t now_ms,
                             int64_t interval_ms);

void kb_follow_topics_destroy(kb_follow_topics_t *ft);

/**
 * Parse an RFC 3339 time or a date (YYYY-MM-DD, midnight UTC) into ms since
 * the epoch. KB_ERR_INVALID when malformed.
 */
kb_err_t kb_parse_time(const char *s, int64_t *ms);

#endif
