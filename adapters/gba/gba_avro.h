/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_avro.h - a compiled Avro binary writer for the GBA event schemas: one
 * record schema is turned once into a flat plan (nodes, value slots, a hash
 * of every field path), values are built in slots from a per-message arena
 * and written straight to the Confluent-framed Avro binary. The output is
 * byte for byte what avro-c writes for the same value built with the
 * kb_value_* functions of ketenbus/schema.h (test_gba_avro proves it), at a
 * fraction of the cost: no per-field allocation, no generic value classes.
 *
 * The setters follow kb_value_set_string() and friends exactly: a path
 * ("kind.bsn", "" for the value itself) switches every union on its way to
 * its first non-null branch; a NULL string selects the field's null branch;
 * switching a union to another branch starts that branch afresh. A fresh
 * value is what avro_generic_value_new() makes (unions without a branch,
 * empty strings, zeros, empty arrays); kb_avw_init_nulls() is
 * kb_value_init_nulls().
 */
#ifndef KETENBUS_GBA_AVRO_H
#define KETENBUS_GBA_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/schema.h"

typedef struct kb_avw_plan kb_avw_plan_t; /* opaque: one compiled record schema */

/**
 * Compile @p schema (its avro-c form). Supports null, boolean, int, long,
 * float, double, string, bytes, record, union and array, named types used
 * more than once; enum, fixed, map and recursive types are KB_ERR_SCHEMA
 * (NULL with errstr). The plan does not refer to @p schema afterwards.
 * @thread any; the plan is read-only and may be shared by threads.
 */
kb_avw_plan_t *kb_avw_plan_new(const struct kb_schema *schema, char *errstr, size_t errstr_size);

/** Release @p plan. NULL is a no-op. */
void kb_avw_plan_destroy(kb_avw_plan_t *plan);

/** Bump allocator for the values of one message: everything is released
 *  at once by kb_avw_arena_fini(). Starts in its inline block, so a
 *  typical message costs no malloc at all. */
struct kb_avw_arena {
    uint8_t *cur;                             /* next free byte */
    uint8_t *end;                             /* end of the current block */
    void *blocks;                             /* malloc'ed blocks beyond the inline one, a list */
    _Alignas(16) uint8_t inline_block[16384]; /* first block */
};

void kb_avw_arena_init(struct kb_avw_arena *a);
void kb_avw_arena_fini(struct kb_avw_arena *a);

union kb_avw_slot; /* one value cell, private to gba_avro.c */

/** A value under construction: a record (or an array item) of a plan. Plain
 *  data, copied freely; lives as long as its arena. */
struct kb_avw_value {
    const kb_avw_plan_t *plan;
    uint32_t scope;                         /* which slot layout: 0 the record, >0 array items */
    union kb_avw_slot *slots;               /* this value's cells, in the arena */
    struct kb_avw_arena *arena;             /* where strings and array items go */
    const struct kb_avw_path *const *bound; /* the plan's kb_avw_plan_bind()
                                             * handles by id, NULL: none */
};

/** A fresh value of @p plan's record (as avro_generic_value_new). */
kb_err_t kb_avw_value_new(const kb_avw_plan_t *plan, struct kb_avw_arena *arena,
                          struct kb_avw_value *out);

/** kb_value_init_nulls(): every union under @p v that has a null branch gets
 *  it (recursively through records, not into union branches). */
void kb_avw_init_nulls(struct kb_avw_value *v);

/** kb_avw_value_new() + kb_avw_init_nulls() in one copy of a prepared image. */
kb_err_t kb_avw_value_new_nulls(const kb_avw_plan_t *plan, struct kb_avw_arena *arena,
                                struct kb_avw_value *out);

/** kb_value_set_string(): the string at @p path, copied; NULL selects the
 *  null branch of the union named by @p path. KB_ERR_NOTFOUND when the path
 *  does not exist, KB_ERR_SCHEMA when the type does not fit. */
kb_err_t kb_avw_set_string(struct kb_avw_value *v, const char *path, const char *str);

/** As kb_avw_set_string() with @p len bytes of @p str (never NULL). */
kb_err_t kb_avw_set_stringn(struct kb_avw_value *v, const char *path, const char *str, size_t len);

kb_err_t kb_avw_set_long(struct kb_avw_value *v, const char *path, int64_t val);
kb_err_t kb_avw_set_int(struct kb_avw_value *v, const char *path, int32_t val);
kb_err_t kb_avw_set_boolean(struct kb_avw_value *v, const char *path, int val);

/**
 * Append a fresh item to the array at @p path (unions on the way switched
 * as by the setters) and point @p item at it. KB_ERR_NOTFOUND when the path
 * does not exist, KB_ERR_SCHEMA when it is no array, KB_ERR_NOMEM.
 */
kb_err_t kb_avw_append(struct kb_avw_value *v, const char *path, struct kb_avw_value *item);

/** 1 when @p path names an array under @p v (kb_value_path would find it). */
int kb_avw_has_array(const struct kb_avw_value *v, const char *path);

/* ---- resolved paths: the setters above without the lookup ----
 * kb_avw_set_string(v, path, s) is kb_avw_put_stringn(v, kb_avw_path(plan,
 * v->scope, path), s, strlen(s)), and so on: a caller that writes the same
 * fields message after message resolves each path once per plan. */

typedef struct kb_avw_path kb_avw_path_t; /* opaque: one resolved path */

/** @p path in scope @p scope of @p plan (0: the record; an array's items:
 *  kb_avw_item_scope()), or NULL when there is no such path. Lives as
 *  long as @p plan. */
const kb_avw_path_t *kb_avw_path(const kb_avw_plan_t *plan, uint32_t scope, const char *path);

/**
 * Resolve @p n paths once and keep their handles in @p plan, for
 * kb_avw_bound(plan, i): path i is in the record when parents[i] is -1,
 * else in the items of the array path parents[i] (< i) names. A path the
 * schema lacks gets a NULL handle. The handles are copies of kb_avw_path()'s,
 * kept one after the other in bind order (the fields a caller writes in a
 * row share cache lines): they act alike, but are other pointers. Call
 * before the plan is shared. KB_ERR_NOMEM.
 */
kb_err_t kb_avw_plan_bind(kb_avw_plan_t *plan, const char *const *paths, const int *parents,
                          size_t n);

/** Handle @p id of kb_avw_plan_bind(), NULL when unresolved or out of range. */
const kb_avw_path_t *kb_avw_bound(const kb_avw_plan_t *plan, size_t id);

/** The scope of the items of the array @p array names; UINT32_MAX when
 *  @p array is NULL or no array. */
uint32_t kb_avw_item_scope(const kb_avw_plan_t *plan, const kb_avw_path_t *array);

/** 1 when @p h names an array (kb_avw_has_array). */
int kb_avw_path_is_array(const kb_avw_plan_t *plan, const kb_avw_path_t *h);

/* The setters by handle. A NULL handle, or one of another scope than
 * @p v's, is KB_ERR_NOTFOUND, as an unknown path is. */
kb_err_t kb_avw_put_stringn(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str,
                            size_t len);
/** As kb_avw_put_stringn() without the copy: @p str must stay unchanged
 *  until @p v has been encoded (e.g. a slice of the message being read). */
kb_err_t kb_avw_put_stringn_ref(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str,
                                size_t len);
kb_err_t kb_avw_put_null(struct kb_avw_value *v, const kb_avw_path_t *h); /* set_string NULL */
kb_err_t kb_avw_put_long(struct kb_avw_value *v, const kb_avw_path_t *h, int64_t val);
kb_err_t kb_avw_put_int(struct kb_avw_value *v, const kb_avw_path_t *h, int32_t val);
kb_err_t kb_avw_put_boolean(struct kb_avw_value *v, const kb_avw_path_t *h, int val);
kb_err_t kb_avw_put_append(struct kb_avw_value *v, const kb_avw_path_t *h,
                           struct kb_avw_value *item);

/** kb_avw_put_append() + kb_avw_init_nulls() on the new item, in one copy. */
kb_err_t kb_avw_put_append_nulls(struct kb_avw_value *v, const kb_avw_path_t *h,
                                 struct kb_avw_value *item);

/** kb_avw_put_append() and kb_avw_put_stringn() on the new item in one
 *  step, for an array of plain strings (KB_ERR_SCHEMA otherwise, then
 *  nothing is appended). */
kb_err_t kb_avw_append_stringn(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str,
                               size_t len);

/** kb_avw_append_stringn() for @p n strings of @p each bytes, one after
 *  the other at @p strs, in one step. */
kb_err_t kb_avw_append_strings(struct kb_avw_value *v, const kb_avw_path_t *h, const char *strs,
                               size_t each, size_t n);

/** Output of kb_avw_encode_append(): starts as the caller's storage
 *  (@p heap 0, e.g. a stack array) or empty ({NULL, 0, 0, 1}); when it
 *  must grow it moves to malloc'ed memory (@p heap 1, the caller frees
 *  data then). */
struct kb_avw_buf {
    uint8_t *data;
    size_t len, cap;
    int heap;
};

/**
 * As kb_avw_encode(), appending the framed value to @p buf (one buffer for
 * all events of a message). On error buf->len is unchanged.
 */
kb_err_t kb_avw_encode_append(const struct kb_avw_value *v, int32_t schema_id,
                              struct kb_avw_buf *buf, char *errstr, size_t errstr_size);

/**
 * Write @p v (a value made by kb_avw_value_new) as Avro binary with the
 * Confluent framing of @p schema_id, into a malloc'ed *out (caller frees).
 * KB_ERR_SCHEMA (errstr names the field) when a union has no branch
 * selected, as avro-c refuses such a value too.
 */
kb_err_t kb_avw_encode(const struct kb_avw_value *v, int32_t schema_id, uint8_t **out,
                       size_t *out_len, char *errstr, size_t errstr_size);

#endif
