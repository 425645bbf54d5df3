/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_gba_avro.c - the compiled event writer (gba_avro.h) against avro-c:
 * for every schema in schemas/, thousands of random values are built twice,
 * once with avro-c generic values through the kb_value_* functions and once
 * with kb_avw_*, by the same random sequence of setters (strings, nulls,
 * numbers, array items, wrong types, unknown fields, init_nulls), and the
 * encoded bytes and every error code must be identical. A third value
 * takes the same sequence through the resolved-path API (kb_avw_path,
 * kb_avw_put_*, the copy-free and batch setters, fresh values with their
 * nulls from an image) and is written with kb_avw_encode_append() behind
 * other bytes: the same bytes and codes again. Then every event
 * kb_gba_events() makes from the fixtures and their single-byte mutants is
 * decoded by avro-c and re-encoded: the bytes must come back unchanged.
 * Last, the ids, pseudonyms and times of the cached path equal what the
 * core functions (kb_sha256_hex, kb_event_uuid5, kb_event_pseudonym) give.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba_avro.h"
#include "gba_events.h"
#include "ingress.h"
#include "kb_test.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"
#include "lo3.h"

static char src_dir[1024];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Every path of one scope, as kb_value_path walks it for writing. */
struct spath {
    char text[200];
    avro_type_t type;    /* type reached after union switching */
    int nullable;        /* the field itself is a union with a null branch */
    avro_schema_t items; /* array: item schema */
};

struct paths {
    struct spath p[400];
    size_t n;
};

static avro_schema_t deref(avro_schema_t s)
{
    while (s && is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static void collect(avro_schema_t s, const char *prefix, struct paths *out, int depth)
{
    s = deref(s);
    if (depth > 12 || out->n >= sizeof out->p / sizeof out->p[0])
        return;
    struct spath *e = &out->p[out->n++];
    snprintf(e->text, sizeof e->text, "%s", prefix);
    e->nullable = 0;
    e->items = NULL;
    avro_schema_t cur = s;
    if (avro_typeof(s) == AVRO_UNION) {
        avro_schema_t first = NULL;
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            avro_schema_t b = avro_schema_union_branch(s, (int)i);
            if (is_avro_null(b))
                e->nullable = 1;
            else if (!first)
                first = b;
        }
        cur = deref(first ? first : avro_schema_union_branch(s, 0));
    }
    e->type = avro_typeof(cur);
    if (e->type == AVRO_ARRAY)
        e->items = avro_schema_array_items(cur);
    if (e->type != AVRO_RECORD)
        return;
    for (size_t i = 0; i < avro_schema_record_size(cur); i++) {
        char p[200];
        const char *nm = avro_schema_record_field_name(cur, (int)i);
        if (prefix[0])
            snprintf(p, sizeof p, "%.90s.%.90s", prefix, nm);
        else
            snprintf(p, sizeof p, "%.190s", nm);
        collect(avro_schema_record_field_get_by_index(cur, (int)i), p, out, depth + 1);
    }
}

static void random_text(char *buf, size_t cap)
{
    static const char *const pieces[] = {"a",        "Z",        "0", "9",      " ",
                                         "\xc3\xa9", "\xc5\x91", "-", "Jansen", "\xe2\x82\xac"};
    size_t n = rnd() % 12, o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd() % 10];
        size_t l = strlen(p);
        if (o + l + 1 > cap)
            break;
        memcpy(buf + o, p, l);
        o += l;
    }
    buf[o] = '\0';
}

static int n_compared;   /* values encoded and compared */
static int n_handle_ops; /* of them, operations through the resolved-path API */

/* Strings handed to kb_avw_put_stringn_ref(): they must outlive the value's
 * encoding, so they live here until the round ends. */
static char *kept[4096];
static size_t n_kept;

static const char *keep(const char *s)
{
    if (n_kept == sizeof kept / sizeof kept[0])
        return NULL;
    kept[n_kept] = strdup(s);
    return kept[n_kept++];
}

static void keep_free(void)
{
    while (n_kept)
        free(kept[--n_kept]);
}

/* The handle of @p path in @p c's scope (NULL: none), as a caller of the
 * resolved-path API gets it. */
static const kb_avw_path_t *hp(const struct kb_avw_value *c, const char *path)
{
    return kb_avw_path(c->plan, c->scope, path);
}

/* One random mutation applied to all three values; error codes must agree. */
static void random_ops(avro_value_t *a, struct kb_avw_value *b, struct kb_avw_value *c,
                       avro_schema_t s, int depth)
{
    struct paths *ps = malloc(sizeof *ps);
    ps->n = 0;
    collect(s, "", ps, 0);
    size_t ops = 1 + rnd() % 40;
    for (size_t k = 0; k < ops; k++) {
        struct spath *e = &ps->p[rnd() % ps->n];
        char text[64];
        int what = (int)(rnd() % 10);
        kb_err_t ea, eb, ec;
        if (what == 0 && e->nullable) {
            ea = kb_value_set_string(a, e->text, NULL);
            eb = kb_avw_set_string(b, e->text, NULL);
            ec = kb_avw_put_null(c, hp(c, e->text));
        } else if (what == 1) {
            /* wrong type on purpose, or an unknown top-level field */
            const char *path = rnd() % 4 ? e->text : "noSuchField";
            ea = kb_value_set_long(a, path, 7);
            eb = kb_avw_set_long(b, path, 7);
            ec = kb_avw_put_long(c, hp(c, path), 7);
            if (!ea)
                CHECK_INT(e->type, AVRO_INT64);
        } else if (what == 2) {
            kb_value_init_nulls(a);
            kb_avw_init_nulls(b);
            kb_avw_init_nulls(c);
            ea = eb = ec = KB_OK;
        } else if (e->type == AVRO_STRING) {
            random_text(text, sizeof text);
            ea = kb_value_set_string(a, e->text, text);
            eb = kb_avw_set_string(b, e->text, text);
            const char *ref = rnd() % 2 ? keep(text) : NULL;
            ec = ref ? kb_avw_put_stringn_ref(c, hp(c, e->text), ref, strlen(ref))
                     : kb_avw_put_stringn(c, hp(c, e->text), text, strlen(text));
        } else if (e->type == AVRO_INT64) {
            int64_t v = (int64_t)rnd() >> (rnd() % 64);
            ea = kb_value_set_long(a, e->text, v);
            eb = kb_avw_set_long(b, e->text, v);
            ec = kb_avw_put_long(c, hp(c, e->text), v);
        } else if (e->type == AVRO_INT32) {
            int32_t v = (int32_t)(rnd() >> (32 + rnd() % 32));
            ea = kb_value_set_int(a, e->text, v);
            eb = kb_avw_set_int(b, e->text, v);
            ec = kb_avw_put_int(c, hp(c, e->text), v);
        } else if (e->type == AVRO_BOOLEAN) {
            avro_value_t f;
            int v = (int)(rnd() & 1);
            ea = kb_value_path(a, e->text, 1, &f);
            if (!ea)
                ea = avro_value_set_boolean(&f, v) ? KB_ERR_SCHEMA : KB_OK;
            eb = kb_avw_set_boolean(b, e->text, v);
            ec = kb_avw_put_boolean(c, hp(c, e->text), v);
        } else if (e->type == AVRO_ARRAY && avro_typeof(deref(e->items)) == AVRO_STRING &&
                   rnd() % 2) {
            /* an array of plain strings: the one-step appenders */
            size_t n = 1 + rnd() % 3;
            char strs[3][8];
            for (size_t i = 0; i < n; i++)
                memcpy(strs[i], rnd() % 2 ? "01.01.10" : "08.10.30", 8);
            avro_value_t arr, ia;
            struct kb_avw_value ib;
            ea = kb_value_path(a, e->text, 1, &arr);
            eb = KB_OK;
            for (size_t i = 0; i < n; i++) {
                char one[9];
                memcpy(one, strs[i], 8);
                one[8] = '\0';
                if (!ea)
                    ea = avro_value_append(&arr, &ia, NULL) ? KB_ERR_SCHEMA
                                                            : kb_value_set_string(&ia, "", one);
                if (!eb)
                    eb = kb_avw_append(b, e->text, &ib);
                if (!eb)
                    eb = kb_avw_set_string(&ib, "", one);
            }
            ec = n == 1 && rnd() % 2 ? kb_avw_append_stringn(c, hp(c, e->text), strs[0], 8)
                                     : kb_avw_append_strings(c, hp(c, e->text), strs[0], 8, n);
        } else if (e->type == AVRO_ARRAY && depth < 3) {
            avro_value_t arr, ia;
            struct kb_avw_value ib, ic;
            int nulls = (int)(rnd() % 2);
            ea = kb_value_path(a, e->text, 1, &arr);
            if (!ea)
                ea = avro_value_append(&arr, &ia, NULL) ? KB_ERR_SCHEMA : KB_OK;
            eb = kb_avw_append(b, e->text, &ib);
            ec = nulls ? kb_avw_put_append_nulls(c, hp(c, e->text), &ic)
                       : kb_avw_put_append(c, hp(c, e->text), &ic);
            if (!ea && !eb && !ec) {
                if (nulls) {
                    kb_value_init_nulls(&ia);
                    kb_avw_init_nulls(&ib);
                }
                random_ops(&ia, &ib, &ic, e->items, depth + 1);
            }
        } else {
            continue;
        }
        n_handle_ops++;
        CHECK_INT(eb, ea);
        CHECK_INT(ec, ea);
        if (ea != eb || ea != ec)
            fprintf(stderr, "  path \"%s\" op %d\n", e->text, what);
    }
    free(ps);
}

static void compare_schema(const struct kb_schema *sc, int rounds)
{
    char err[256] = "";
    kb_avw_plan_t *plan = kb_avw_plan_new(sc, err, sizeof err);
    if (!plan) {
        /* only types the writer does not support may refuse */
        fprintf(stderr, "note: %s not compiled: %s\n", sc->type, err);
        CHECK(strstr(err, "not supported") != NULL);
        return;
    }
    struct kb_avw_arena *arena = malloc(sizeof *arena);
    kb_avw_arena_init(arena);
    for (int r = 0; r < rounds; r++) {
        avro_value_t a;
        struct kb_avw_value b, c;
        CHECK_INT(avro_generic_value_new(sc->iface, &a), 0);
        CHECK_INT(kb_avw_value_new(plan, arena, &b), KB_OK);
        if (rnd() % 4) {
            kb_value_init_nulls(&a), kb_avw_init_nulls(&b);
            CHECK_INT(kb_avw_value_new_nulls(plan, arena, &c), KB_OK);
        } else {
            CHECK_INT(kb_avw_value_new(plan, arena, &c), KB_OK);
        }
        random_ops(&a, &b, &c, sc->avro, 0);
        uint8_t *oa = NULL, *ob = NULL;
        size_t la = 0, lb = 0;
        kb_err_t ea = kb_schema_encode(sc, &a, &oa, &la, err, sizeof err);
        kb_err_t eb = kb_avw_encode(&b, sc->id, &ob, &lb, err, sizeof err);
        /* behind 0-40 bytes already in a small caller buffer, which must
         * move to the heap when the value does not fit */
        uint8_t small[64];
        size_t pre = rnd() % 41;
        memset(small, 0xA5, pre);
        struct kb_avw_buf oc = {small, pre, sizeof small, 0};
        kb_err_t ec = kb_avw_encode_append(&c, sc->id, &oc, err, sizeof err);
        CHECK_INT(eb, ea);
        CHECK_INT(ec, ea);
        if (ec)
            CHECK_INT(oc.len, pre);
        if (!ea && !eb) {
            CHECK_INT(lb, la);
            int same = la == lb && !memcmp(oa, ob, la);
            CHECK(same);
            if (!same)
                fprintf(stderr, "  %s round %d differs\n", sc->type, r);
            n_compared++;
        }
        if (!ea && !ec) {
            int same = oc.len == pre + la && !memcmp(oc.data + pre, oa, la);
            int prefix_kept = 1;
            for (size_t i = 0; i < pre; i++)
                prefix_kept &= oc.data[i] == 0xA5;
            CHECK(same && prefix_kept);
            if (!same)
                fprintf(stderr, "  %s round %d differs through handles\n", sc->type, r);
        }
        if (oc.heap)
            free(oc.data);
        free(oa);
        free(ob);
        avro_value_decref(&a);
        kb_avw_arena_fini(arena);
        keep_free();
    }
    free(arena);
    kb_avw_plan_destroy(plan);
}

/* kb_avw_plan_bind(): the handles of record paths and of array items are
 * those kb_avw_path() gives in their scopes; unknown paths and paths under
 * a non-array parent are NULL; a value carries them in .bound. */
/* 1 when handles @p a and @p b of @p plan act alike: both NULL, or both
 * name an array or not, with the same item scope, and a string or an int
 * put through each into a fresh value (the record when @p array is NULL,
 * else a new item of that array) gives the same answer, and in the record
 * the same bytes. kb_avw_plan_bind() keeps copies of the
 * paths, close together, so bound handles are not kb_avw_path()'s
 * pointers. */
static int same_handle(const kb_avw_plan_t *plan, const char *array, const kb_avw_path_t *a,
                       const kb_avw_path_t *b)
{
    if (!a || !b)
        return !a && !b;
    if (kb_avw_path_is_array(plan, a) != kb_avw_path_is_array(plan, b) ||
        kb_avw_item_scope(plan, a) != kb_avw_item_scope(plan, b))
        return 0;
    int same = 1;
    for (int kind = 0; kind < 2 && same; kind++) {
        struct kb_avw_arena *arena = malloc(sizeof *arena);
        kb_avw_arena_init(arena);
        struct kb_avw_value va, vb, root;
        char err[256];
        uint8_t *ea = NULL, *eb = NULL;
        size_t la = 0, lb = 0;
        CHECK_INT(kb_avw_value_new_nulls(plan, arena, &root), KB_OK);
        if (!array) {
            va = root;
            CHECK_INT(kb_avw_value_new_nulls(plan, arena, &vb), KB_OK);
        } else {
            const kb_avw_path_t *arr = kb_avw_path(plan, 0, array);
            CHECK_INT(kb_avw_put_append_nulls(&root, arr, &va), KB_OK);
            CHECK_INT(kb_avw_put_append_nulls(&root, arr, &vb), KB_OK);
        }
        kb_err_t ra = kind ? kb_avw_put_int(&va, a, 7) : kb_avw_put_stringn(&va, a, "x", 1);
        kb_err_t rb = kind ? kb_avw_put_int(&vb, b, 7) : kb_avw_put_stringn(&vb, b, "x", 1);
        same = ra == rb;
        if (same && !array) {
            kb_err_t xa = kb_avw_encode(&va, 1, &ea, &la, err, sizeof err);
            kb_err_t xb = kb_avw_encode(&vb, 1, &eb, &lb, err, sizeof err);
            same = xa == xb && la == lb && (xa || !memcmp(ea, eb, la));
        }
        free(ea);
        free(eb);
        kb_avw_arena_fini(arena);
        free(arena);
    }
    return same;
}

static void bound_handles(kb_schemas_t *schemas)
{
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    CHECK(sc != NULL);
    if (!sc)
        return;
    char err[256];
    kb_avw_plan_t *plan = kb_avw_plan_new(sc, err, sizeof err);
    CHECK(plan != NULL);
    if (!plan)
        return;
    static const char *const paths[] = {
        "ouders",      "ouderNummer",        "kind.bsn", "noSuchField",
        "persoon.bsn", "herkomst.rubrieken", "",         "kind.bsn"};
    static const int parents[] = {-1, 0, -1, -1, 0, -1, 5, 2};
    CHECK_INT(kb_avw_plan_bind(plan, paths, parents, 8), KB_OK);
    const kb_avw_path_t *ouders = kb_avw_path(plan, 0, "ouders");
    uint32_t os = kb_avw_item_scope(plan, ouders);
    CHECK(ouders != NULL && os != UINT32_MAX);
    CHECK(kb_avw_path_is_array(plan, ouders));
    CHECK(!kb_avw_path_is_array(plan, kb_avw_path(plan, 0, "kind.bsn")));
    uint32_t rs = kb_avw_item_scope(plan, kb_avw_path(plan, 0, "herkomst.rubrieken"));
    CHECK(same_handle(plan, NULL, kb_avw_bound(plan, 0), ouders));
    CHECK(same_handle(plan, "ouders", kb_avw_bound(plan, 1), kb_avw_path(plan, os, "ouderNummer")));
    CHECK(kb_avw_bound(plan, 1) != NULL);
    CHECK(same_handle(plan, NULL, kb_avw_bound(plan, 2), kb_avw_path(plan, 0, "kind.bsn")));
    CHECK(kb_avw_bound(plan, 3) == NULL);
    CHECK(same_handle(plan, "ouders", kb_avw_bound(plan, 4), kb_avw_path(plan, os, "persoon.bsn")));
    CHECK(
        same_handle(plan, "herkomst.rubrieken", kb_avw_bound(plan, 6), kb_avw_path(plan, rs, "")));
    CHECK(kb_avw_bound(plan, 6) != NULL);
    /* and they are not merely alike to each other: another path differs */
    CHECK(!same_handle(plan, NULL, kb_avw_bound(plan, 2), kb_avw_path(plan, 0, "kind.voornamen")));
    CHECK(kb_avw_bound(plan, 7) == NULL); /* kind.bsn is no array */
    CHECK(kb_avw_bound(plan, 8) == NULL); /* beyond the bound ids */
    CHECK(kb_avw_item_scope(plan, NULL) == UINT32_MAX);
    /* a handle of another scope is refused like an unknown path */
    struct kb_avw_arena *arena = malloc(sizeof *arena);
    kb_avw_arena_init(arena);
    struct kb_avw_value v, item;
    CHECK_INT(kb_avw_value_new_nulls(plan, arena, &v), KB_OK);
    CHECK(v.bound != NULL && v.bound[0] == kb_avw_bound(plan, 0));
    CHECK_INT(kb_avw_put_int(&v, kb_avw_bound(plan, 1), 1), KB_ERR_NOTFOUND);
    CHECK_INT(kb_avw_put_append_nulls(&v, ouders, &item), KB_OK);
    CHECK(item.bound == v.bound);
    CHECK_INT(kb_avw_put_int(&item, item.bound[1], 2), KB_OK);
    CHECK_INT(kb_avw_put_stringn(&item, kb_avw_bound(plan, 2), "x", 1), KB_ERR_NOTFOUND);
    CHECK_INT(kb_avw_append_stringn(&v, ouders, "x", 1), KB_ERR_SCHEMA); /* records */
    CHECK_INT(kb_avw_append_strings(&v, kb_avw_bound(plan, 2), "x", 1, 1), KB_ERR_SCHEMA);
    kb_avw_arena_fini(arena);
    free(arena);
    kb_avw_plan_destroy(plan);
}

/* The writer's basics, with bytes worked out by hand from the Avro spec. */
static void known_answers(kb_schemas_t *schemas)
{
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.anummer-gewijzigd");
    CHECK(sc != NULL);
    if (!sc)
        return;
    char err[256];
    kb_avw_plan_t *plan = kb_avw_plan_new(sc, err, sizeof err);
    CHECK(plan != NULL);
    struct kb_avw_arena *arena = malloc(sizeof *arena);
    kb_avw_arena_init(arena);
    struct kb_avw_value v;
    CHECK_INT(kb_avw_value_new(plan, arena, &v), KB_OK);
    /* a fresh value has unions without a branch: avro-c refuses it too */
    uint8_t *out = NULL;
    size_t len = 0;
    CHECK_INT(kb_avw_encode(&v, sc->id, &out, &len, err, sizeof err), KB_ERR_SCHEMA);
    kb_avw_init_nulls(&v);
    CHECK_INT(kb_avw_set_string(&v, "noSuchField", "x"), KB_ERR_NOTFOUND);
    CHECK_INT(kb_avw_set_long(&v, "herkomst.ontvangen", -65), KB_OK);
    CHECK_INT(kb_avw_set_string(&v, "herkomst.ontvangen", "x"), KB_ERR_SCHEMA);
    CHECK_INT(kb_avw_set_string(&v, "herkomst.berichtType", NULL), KB_ERR_SCHEMA);
    CHECK_INT(kb_avw_encode(&v, 0x01020304, &out, &len, err, sizeof err), KB_OK);
    if (out) {
        CHECK_INT(out[0], 0);
        CHECK_INT(out[1], 1);
        CHECK_INT(out[4], 4);
        /* -65 zig-zags to 129: 0x81 0x01 somewhere in the bytes */
        int found = 0;
        for (size_t i = 5; i + 1 < len; i++)
            found |= out[i] == 0x81 && out[i + 1] == 0x01;
        CHECK(found);
    }
    free(out);
    kb_avw_arena_fini(arena);
    free(arena);
    kb_avw_plan_destroy(plan);
}

/* Events of the fixtures and their mutants survive avro-c decode/encode. */
static void events_round_trip(kb_schemas_t *schemas)
{
    static const uint8_t key[32] = {7};
    struct kb_gba_ctx ctx = {schemas, key, sizeof key, "urn:nld:oin:00000099999999999000:systeem:t",
                             NULL};
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/events", src_dir);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *de;
    size_t n_events = 0;
    static const uint8_t subst[] = {'0', '1', 'A', ' ', 0xC2};
    while (d && (de = readdir(d))) {
        if (!strstr(de->d_name, ".lo3"))
            continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static uint8_t buf[8192], m[8192];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t s = 0; s < sizeof subst; s++) {
                memcpy(m, buf, len);
                if (pos < len) {
                    if (m[pos] == subst[s])
                        continue;
                    m[pos] = subst[s];
                } else if (s) {
                    continue; /* the unmutated message once */
                }
                struct kb_lo3_message msg;
                char err[256];
                if (kb_lo3_parse(m, len, &msg, err, sizeof err))
                    continue;
                struct kb_ingress_event *evs = NULL;
                size_t n = 0;
                if (kb_gba_events(&ctx, m, len, &msg, 1710753330250, "", &evs, &n, err,
                                  sizeof err) == KB_OK) {
                    for (size_t i = 0; i < n; i++) {
                        const struct kb_schema *sc =
                            kb_schemas_by_id(schemas, evs[i].attrs.schema_id);
                        avro_value_t v;
                        CHECK(sc != NULL);
                        if (!sc || avro_generic_value_new(sc->iface, &v))
                            continue;
                        CHECK_INT(kb_schema_decode(sc, evs[i].value + 5, evs[i].len - 5, &v, err,
                                                   sizeof err),
                                  KB_OK);
                        uint8_t *again = NULL;
                        size_t alen = 0;
                        CHECK_INT(kb_schema_encode(sc, &v, &again, &alen, err, sizeof err), KB_OK);
                        CHECK(alen == evs[i].len && !memcmp(again, evs[i].value, alen));
                        free(again);
                        avro_value_decref(&v);
                        n_events++;
                    }
                    kb_gba_events_free(evs, n);
                }
                kb_lo3_message_fini(&msg);
            }
        }
    }
    if (d)
        closedir(d);
    printf("%zu events decoded and re-encoded by avro-c\n", n_events);
    CHECK(n_events > 1000);
}

/* The cache's digests and HMAC against the core functions they replace:
 * ids from kb_sha256_hex + kb_event_uuid5, subjects from
 * kb_event_pseudonym, for keys shorter than, equal to and longer than a
 * SHA-256 block; and with or without a cache the same bytes. */
static void attrs_against_core(kb_schemas_t *schemas)
{
    static const size_t key_lens[] = {16, 32, 64, 65, 131};
    static const char *const files[] = {"gv01-huwelijk.lo3", "gv01-multi.lo3", "gv01-naam.lo3",
                                        "gv01-verhuizing-tussen.lo3", "gv01-overlijden.lo3"};
    const char *source = "urn:nld:oin:00000099999999999000:systeem:t";
    kb_gba_cache_t *cache = kb_gba_cache_new();
    CHECK(cache != NULL);
    size_t checked = 0;
    for (size_t k = 0; k < sizeof key_lens / sizeof key_lens[0]; k++) {
        uint8_t key[131];
        for (size_t i = 0; i < sizeof key; i++)
            key[i] = (uint8_t)(i * 7 + k);
        for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
            char path[1400];
            snprintf(path, sizeof path, "%s/tests/fixtures/gba/events/%s", src_dir, files[fi]);
            FILE *f = fopen(path, "rb");
            CHECK(f != NULL);
            if (!f)
                continue;
            uint8_t buf[4096];
            size_t len = fread(buf, 1, sizeof buf, f);
            fclose(f);
            struct kb_lo3_message msg;
            char err[256];
            CHECK_INT(kb_lo3_parse(buf, len, &msg, err, sizeof err), KB_OK);
            struct kb_gba_ctx with = {schemas, key, key_lens[k], source, cache};
            struct kb_gba_ctx without = {schemas, key, key_lens[k], source, NULL};
            struct kb_ingress_event *a = NULL, *b = NULL;
            size_t na = 0, nb = 0;
            CHECK_INT(
                kb_gba_events(&with, buf, len, &msg, 1710753330250, "x", &a, &na, err, sizeof err),
                KB_OK);
            CHECK_INT(kb_gba_events(&without, buf, len, &msg, 1710753330250, "x", &b, &nb, err,
                                    sizeof err),
                      KB_OK);
            CHECK_INT(na, nb);
            CHECK(na > 0);
            char sha[65], anr[11], name[512], id[37], subject[KB_PSEUDONYM_LEN + 1], tm[40], tp[64];
            kb_sha256_hex(buf, len, sha);
            memcpy(anr, buf + 12, 10); /* Gv01 header: the A-nummer */
            anr[10] = '\0';
            CHECK_INT(kb_event_pseudonym(key, key_lens[k], "anummer", anr, subject), KB_OK);
            kb_event_time(1710753330250, tm);
            for (size_t i = 0; i < na && i < nb; i++) {
                CHECK(a[i].len == b[i].len && !memcmp(a[i].value, b[i].value, a[i].len));
                CHECK_STR(a[i].attrs.id, b[i].attrs.id);
                int nl =
                    snprintf(name, sizeof name, "%s|%s|%s|%zu", source, sha, a[i].attrs.type, i);
                kb_event_uuid5(name, (size_t)nl, id);
                kb_event_traceparent(id, tp);
                CHECK_STR(a[i].attrs.id, id);
                CHECK_STR(a[i].attrs.subject, subject);
                CHECK_STR(b[i].attrs.subject, subject);
                CHECK_STR(a[i].key, subject);
                CHECK_STR(a[i].attrs.time, tm);
                CHECK_STR(a[i].attrs.traceparent, tp);
                CHECK_STR(a[i].attrs.dataref, "x");
                CHECK_STR(a[i].attrs.source, source);
                checked++;
            }
            kb_gba_events_free(a, na);
            kb_gba_events_free(b, nb);
            kb_lo3_message_fini(&msg);
        }
    }
    CHECK(checked >= 25);
    kb_gba_cache_destroy(cache);
}

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    char dir[1200], err[512];
    snprintf(dir, sizeof dir, "%s/schemas", src_dir);
    kb_schemas_t *schemas = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(schemas != NULL);
    if (!schemas) {
        fprintf(stderr, "%s\n", err);
        KB_TEST_DONE();
    }
    known_answers(schemas);
    bound_handles(schemas);
    size_t brp = 0;
    for (size_t i = 0; i < kb_schemas_count(schemas); i++) {
        const struct kb_schema *sc = kb_schemas_at(schemas, i);
        int is_brp = !strncmp(sc->type, "nl.brp.", 7);
        brp += (size_t)is_brp;
        compare_schema(sc, is_brp ? 400 : 60);
    }
    CHECK(brp >= 14);
    printf("%d random values encoded identically, %d operations also through handles\n", n_compared,
           n_handle_ops);
    CHECK(n_compared > 5000);
    CHECK(n_handle_ops > 50000);
    events_round_trip(schemas);
    attrs_against_core(schemas);
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
