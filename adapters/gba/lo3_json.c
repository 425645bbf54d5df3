/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * lo3_json.c - LO3 <-> BRP Berichten API JSON (see lo3_json.h). Decoding
 * walks the parsed message and builds a jansson tree; encoding walks the
 * tree, converts every string to Teletex into values it owns, fills a
 * kb_lo3_message with them and lets kb_lo3_format() compute the lengths, so
 * there is one writer of LO3 bytes.
 */
#include "lo3_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/json_err.h"
#include "lo3.h"
#include "t61.h"

/* ---- decode: LO3 -> JSON ---- */

/* Teletex slice -> JSON string; *bad gets the offset within the slice. */
static json_t *t61_string(const uint8_t *v, size_t n, size_t *bad)
{
    size_t cap = n * 3 + 1, olen = 0;
    char stackbuf[1024];
    char *out = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!out)
        return NULL;
    json_t *s = NULL;
    if (kb_t61_to_utf8(v, n, out, cap, &olen, bad) == KB_OK)
        s = json_stringn(out, olen);
    if (out != stackbuf)
        free(out);
    return s;
}

static int set_new(json_t *obj, const char *key, json_t *val)
{
    return val ? json_object_set_new(obj, key, val) : -1;
}

/* Category occurrences [from, to) of one body as a plData object. */
static kb_err_t body_to_json(const struct kb_lo3_message *msg, size_t body, json_t **out,
                             char *errstr, size_t errstr_size)
{
    json_t *pl = json_object();
    if (!pl)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    json_t *stapel = NULL;      /* current actual stapel object (borrowed) */
    int last_actual = -1;       /* number of the last actual category */
    for (size_t c = 0; c < msg->n_categories; c++) {
        const struct kb_lo3_category *cat = &msg->categories[c];
        if (cat->body != body)
            continue;
        json_t *obj = json_object();
        if (!obj)
            goto nomem;
        for (size_t e = 0; e < cat->count; e++) {
            const struct kb_lo3_element *el = &msg->elements[cat->first + e];
            char key[8];
            snprintf(key, sizeof key, "e%04u", el->nummer);
            if (json_object_get(obj, key)) {
                json_decref(obj);
                json_decref(pl);
                return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                  "offset %zu: element %04u occurs twice in category %02u; "
                                  "not representable",
                                  el->offset, el->nummer, cat->nummer);
            }
            size_t bad = 0;
            json_t *v = t61_string(el->value, el->len, &bad);
            if (!v) {
                json_decref(obj);
                json_decref(pl);
                return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                  "offset %zu: byte without a Teletex mapping in element %04u",
                                  el->offset + 7 + bad, el->nummer);
            }
            json_object_set_new(obj, key, v);
        }
        if (cat->nummer < 50) {
            char key[8];
            snprintf(key, sizeof key, "c%02u", cat->nummer);
            json_t *arr = json_object_get(pl, key);
            if (arr && last_actual != cat->nummer) {
                json_decref(obj);
                json_decref(pl);
                return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                  "offset %zu: category %02u appears again after other "
                                  "categories; not representable",
                                  cat->offset, cat->nummer);
            }
            if (!arr) {
                arr = json_array();
                if (set_new(pl, key, arr)) {
                    json_decref(obj);
                    goto nomem;
                }
            }
            if (json_array_append_new(arr, obj))
                goto nomem;
            stapel = obj;
            last_actual = cat->nummer;
        } else {
            /* the parser guarantees an actual category of this stapel came first */
            json_t *hist = json_object_get(stapel, "historie");
            if (!hist) {
                hist = json_array();
                if (set_new(stapel, "historie", hist)) {
                    json_decref(obj);
                    goto nomem;
                }
            }
            if (json_array_append_new(hist, obj))
                goto nomem;
        }
    }
    *out = pl;
    return KB_OK;
nomem:
    json_decref(pl);
    return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
}

kb_err_t kb_lo3_to_json(const uint8_t *buf, size_t len, int flags, char **json, char *errstr,
                        size_t errstr_size)
{
    struct kb_lo3_message msg;
    *json = NULL;
    kb_err_t err = kb_lo3_parse(buf, len, &msg, errstr, errstr_size);
    if (err)
        return err;
    const char *names[KB_LO3_MAX_HEADER_FIELDS];
    enum kb_lo3_field_kind kinds[KB_LO3_MAX_HEADER_FIELDS];
    unsigned widths[KB_LO3_MAX_HEADER_FIELDS];
    int body_mode = 0;
    json_t *root = json_object();
    if (!root) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_msg;
    }
    if (set_new(root, "berichtType", json_string(msg.type)))
        goto nomem;
    if (msg.random_key[0] && set_new(root, "randomKey", json_string(msg.random_key)))
        goto nomem;
    int nf = kb_lo3_kind_layout(msg.type, names, kinds, widths, &body_mode);
    for (int i = 0; i < nf && (size_t)i < msg.n_header; i++) {
        const struct kb_lo3_header_field *h = &msg.header[i];
        json_t *v = NULL;
        if (kinds[i] == KB_LO3_FIELD_RUBRIEKEN) {
            v = json_array();
            for (size_t k = 3; v && k + 6 <= h->len; k += 6)
                if (json_array_append_new(v, json_stringn((const char *)h->value + k, 6))) {
                    json_decref(v);
                    v = NULL;
                }
            if (!v)
                goto nomem;
        } else {
            size_t bad = 0;
            v = t61_string(h->value, h->len, &bad);
            if (!v) {
                err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                 "offset %zu: byte without a Teletex mapping in header field %s",
                                 (size_t)(h->value - buf) + bad, h->name);
                goto out_root;
            }
        }
        if (set_new(root, h->name, v))
            goto nomem;
    }
    if (msg.has_body) {
        if (body_mode == 3) {
            json_t *set = json_array();
            if (set_new(root, "plDataSet", set))
                goto nomem;
            for (size_t b = 0; b < msg.n_bodies; b++) {
                json_t *pl = NULL;
                err = body_to_json(&msg, b, &pl, errstr, errstr_size);
                if (err)
                    goto out_root;
                json_array_append_new(set, pl);
            }
        } else {
            json_t *pl = NULL;
            err = body_to_json(&msg, 0, &pl, errstr, errstr_size);
            if (err)
                goto out_root;
            json_object_set_new(root, "plData", pl);
        }
    }
    size_t dflags = JSON_PRESERVE_ORDER | ((flags & KB_LO3_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT);
    *json = json_dumps(root, dflags);
    if (!*json)
        goto nomem;
    err = KB_OK;
    goto out_root;
nomem:
    err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
out_root:
    json_decref(root);
out_msg:
    kb_lo3_message_fini(&msg);
    return err;
}

/* ---- encode: JSON -> LO3 ---- */

/* Encoder state: the message being filled and the Teletex values it owns. */
struct enc {
    struct kb_lo3_message msg; /* values point into owned[] */
    uint8_t **owned;           /* every converted value, freed at the end */
    size_t n_owned, cap_owned;
    size_t cap_categories, cap_elements;
    char *errstr;
    size_t errstr_size;
};

/* Take ownership of @p p (freed at the end of the encode); frees it on failure. */
static kb_err_t own(struct enc *en, uint8_t *p)
{
    if (p && en->n_owned == en->cap_owned) {
        size_t nc = en->cap_owned ? en->cap_owned * 2 : 64;
        uint8_t **no = realloc(en->owned, nc * sizeof *no);
        if (no) {
            en->owned = no;
            en->cap_owned = nc;
        }
    }
    if (!p || en->n_owned == en->cap_owned) {
        free(p);
        return kb_err_set(KB_ERR_NOMEM, en->errstr, en->errstr_size, "out of memory");
    }
    en->owned[en->n_owned++] = p;
    return KB_OK;
}

/* Convert the UTF-8 string @p s to Teletex in a new owned buffer. */
static kb_err_t to_t61(struct enc *en, json_t *s, const char *path, const uint8_t **val,
                       size_t *vlen)
{
    if (!json_is_string(s))
        return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size, "%s: must be a string",
                          path);
    const char *u = json_string_value(s);
    size_t ulen = json_string_length(s);
    /* a code point takes at most 2 Teletex bytes and at least 1 UTF-8 byte */
    size_t cap = ulen * 2 + 1;
    uint8_t *t = malloc(cap);
    if (own(en, t))
        return KB_ERR_NOMEM;
    size_t bad = 0;
    if (kb_t61_from_utf8(u, ulen, t, cap, vlen, &bad) != KB_OK)
        return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                          "%s: character at UTF-8 byte %zu has no Teletex form", path, bad);
    *val = t;
    return KB_OK;
}

static kb_err_t add_category(struct enc *en, unsigned nummer, size_t body, size_t stapel,
                             json_t *obj, int allow_historie, const char *path)
{
    struct kb_lo3_message *m = &en->msg;
    if (!json_is_object(obj))
        return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                          "%s: a category must be an object", path);
    if (m->n_categories == en->cap_categories) {
        size_t nc = en->cap_categories ? en->cap_categories * 2 : 32;
        void *n = realloc(m->categories, nc * sizeof *m->categories);
        if (!n)
            return kb_err_set(KB_ERR_NOMEM, en->errstr, en->errstr_size, "out of memory");
        m->categories = n;
        en->cap_categories = nc;
    }
    size_t ci = m->n_categories++;
    m->categories[ci] = (struct kb_lo3_category){.nummer = (uint8_t)nummer,
                                                 .first = m->n_elements,
                                                 .stapel = stapel,
                                                 .body = body};
    const char *key;
    json_t *val;
    size_t nkey = 0;
    json_object_foreach(obj, key, val) {
        char epath[160];
        nkey++;
        if (!strcmp(key, "historie") && allow_historie)
            continue; /* handled by the caller, after this category */
        /* an unknown key is the sender's text (a name, a BSN): named by its
         * place in the object (jansson keeps the document's order) */
        if (strlen(key) != 5 || key[0] != 'e' || strspn(key + 1, "0123456789") != 4)
            return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                              "%s: key %zu is unknown (expected eGGEE%s)", path, nkey,
                              allow_historie ? " or historie" : "");
        snprintf(epath, sizeof epath, "%s.%s", path, key);
        if (m->n_elements == en->cap_elements) {
            size_t nc = en->cap_elements ? en->cap_elements * 2 : 128;
            void *n = realloc(m->elements, nc * sizeof *m->elements);
            if (!n)
                return kb_err_set(KB_ERR_NOMEM, en->errstr, en->errstr_size, "out of memory");
            m->elements = n;
            en->cap_elements = nc;
        }
        struct kb_lo3_element *el = &m->elements[m->n_elements];
        el->nummer = (uint16_t)atoi(key + 1);
        el->offset = 0;
        kb_err_t err = to_t61(en, val, epath, &el->value, &el->len);
        if (err)
            return err;
        m->n_elements++;
        m->categories[ci].count++;
    }
    return KB_OK;
}

static kb_err_t pl_from_json(struct enc *en, json_t *pl, size_t body, const char *path)
{
    if (!json_is_object(pl))
        return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                          "%s: must be an object", path);
    const char *key;
    json_t *arr;
    size_t stapel = 0;
    size_t nkey = 0;
    json_object_foreach(pl, key, arr) {
        char cpath[128];
        unsigned nummer = 0;
        nkey++;
        if (strlen(key) != 3 || key[0] != 'c' || strspn(key + 1, "0123456789") != 2 ||
            (nummer = (unsigned)atoi(key + 1)) == 0 || nummer >= 50)
            return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                              "%s: key %zu is unknown (expected c01-c49)", path, nkey);
        snprintf(cpath, sizeof cpath, "%s.%s", path, key);
        if (!json_is_array(arr))
            return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                              "%s: must be an array of stapels", cpath);
        size_t i;
        json_t *st;
        json_array_foreach(arr, i, st) {
            char spath[160];
            snprintf(spath, sizeof spath, "%s[%zu]", cpath, i);
            kb_err_t err = add_category(en, nummer, body, stapel, st, 1, spath);
            if (err)
                return err;
            json_t *hist = json_object_get(st, "historie");
            if (hist) {
                if (!json_is_array(hist))
                    return kb_err_set(KB_ERR_INVALID, en->errstr, en->errstr_size,
                                      "%s.historie: must be an array", spath);
                size_t k;
                json_t *h;
                json_array_foreach(hist, k, h) {
                    char hpath[200];
                    snprintf(hpath, sizeof hpath, "%s.historie[%zu]", spath, k);
                    err = add_category(en, nummer + 50, body, stapel, h, 0, hpath);
                    if (err)
                        return err;
                }
            }
            stapel++;
        }
    }
    return KB_OK;
}

kb_err_t kb_lo3_from_json(const char *json, size_t len, uint8_t **out, size_t *out_len,
                          char *errstr, size_t errstr_size)
{
    struct enc en;
    memset(&en, 0, sizeof en);
    en.errstr = errstr;
    en.errstr_size = errstr_size;
    *out = NULL;
    *out_len = 0;
    json_error_t jerr;
    kb_err_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "JSON line %d column %d: %s",
                          jerr.line, jerr.column, kb_json_error_what(&jerr));
    if (!json_is_object(root)) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "$: must be an object");
        goto out;
    }
    json_t *bt = json_object_get(root, "berichtType");
    if (!json_is_string(bt) || json_string_length(bt) != 4) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                         "$.berichtType: required, 4 characters");
        goto out;
    }
    const char *names[KB_LO3_MAX_HEADER_FIELDS];
    enum kb_lo3_field_kind kinds[KB_LO3_MAX_HEADER_FIELDS];
    unsigned widths[KB_LO3_MAX_HEADER_FIELDS];
    int body_mode = 0;
    int nf = kb_lo3_kind_layout(json_string_value(bt), names, kinds, widths, &body_mode);
    if (nf < 0) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "$.berichtType: unknown kind");
        goto out;
    }
    memcpy(en.msg.type, json_string_value(bt), 5);
    json_t *rk = json_object_get(root, "randomKey");
    if (rk) {
        if (!json_is_string(rk) || json_string_length(rk) != 8 ||
            strspn(json_string_value(rk), "0123456789") != 8) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "$.randomKey: must be 8 digits");
            goto out;
        }
        memcpy(en.msg.random_key, json_string_value(rk), 9);
    } else if (strcmp(en.msg.type, "Null") != 0) {
        memcpy(en.msg.random_key, "00000000", 9);
    }
    /* every key must be known: a typo would otherwise vanish silently */
    const char *key;
    json_t *val;
    size_t nkey = 0;
    json_object_foreach(root, key, val) {
        int known = !strcmp(key, "berichtType") || !strcmp(key, "randomKey") ||
                    (!strcmp(key, "plData") && (body_mode == 1 || body_mode == 2)) ||
                    (!strcmp(key, "plDataSet") && body_mode == 3);
        for (int i = 0; i < nf && !known; i++)
            known = !strcmp(key, names[i]);
        nkey++;
        if (!known) { /* by its place, not its text: see add_category() */
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "$: key %zu is not a field of %s",
                             nkey, en.msg.type);
            goto out;
        }
    }
    for (int i = 0; i < nf; i++) {
        char path[64];
        snprintf(path, sizeof path, "$.%s", names[i]);
        json_t *v = json_object_get(root, names[i]);
        if (!v) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: required for %s", path,
                             en.msg.type);
            goto out;
        }
        struct kb_lo3_header_field *h = &en.msg.header[en.msg.n_header];
        h->name = names[i];
        if (kinds[i] == KB_LO3_FIELD_RUBRIEKEN) {
            if (!json_is_array(v) || json_array_size(v) > 999) {
                err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                 "%s: must be an array of at most 999 rubrieken", path);
                goto out;
            }
            size_t n = json_array_size(v);
            uint8_t *r = malloc(3 + 6 * n + 1);
            err = own(&en, r);
            if (err)
                goto out;
            snprintf((char *)r, 4, "%03zu", n);
            for (size_t k = 0; k < n; k++) {
                json_t *rb = json_array_get(v, k);
                if (!json_is_string(rb) || json_string_length(rb) != 6 ||
                    strspn(json_string_value(rb), "0123456789") != 6) {
                    err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                     "%s[%zu]: must be 6 digits", path, k);
                    goto out;
                }
                memcpy(r + 3 + 6 * k, json_string_value(rb), 6);
            }
            h->value = r;
            h->len = 3 + 6 * n;
        } else {
            err = to_t61(&en, v, path, &h->value, &h->len);
            if (err)
                goto out;
            if ((kinds[i] == KB_LO3_FIELD_N || kinds[i] == KB_LO3_FIELD_AN) &&
                h->len != widths[i]) {
                err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                 "%s: must be %u Teletex bytes, is %zu", path, widths[i], h->len);
                goto out;
            }
        }
        en.msg.n_header++;
    }
    if (body_mode == 1 || body_mode == 2) {
        json_t *pl = json_object_get(root, "plData");
        if (!pl && body_mode == 1) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "$.plData: required for %s",
                             en.msg.type);
            goto out;
        }
        if (pl) {
            en.msg.n_bodies = 1;
            en.msg.has_body = 1;
            err = pl_from_json(&en, pl, 0, "$.plData");
            if (err)
                goto out;
        }
    } else if (body_mode == 3) {
        json_t *set = json_object_get(root, "plDataSet");
        if (!json_is_array(set) || json_array_size(set) == 0) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "$.plDataSet: required, an array of one or more plData");
            goto out;
        }
        en.msg.has_body = 1;
        size_t b;
        json_t *pl;
        json_array_foreach(set, b, pl) {
            char path[48];
            snprintf(path, sizeof path, "$.plDataSet[%zu]", b);
            en.msg.n_bodies = b + 1;
            err = pl_from_json(&en, pl, b, path);
            if (err)
                goto out;
        }
    }
    err = kb_lo3_format(&en.msg, out, out_len, errstr, errstr_size);
out:
    for (size_t i = 0; i < en.n_owned; i++)
        free(en.owned[i]);
    free(en.owned);
    free(en.msg.categories);
    free(en.msg.elements);
    json_decref(root);
    return err;
}
