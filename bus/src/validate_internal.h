/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_internal.h - the compiled form of a schema, shared by the
 * validator (validate.c) and the projections (validate_project.c). A schema
 * becomes a flat array of type nodes; records point into a flat array of
 * fields, unions into a flat array of branch node indexes. Named types are
 * one node however often they are referenced, so recursive schemas work.
 *
 * The nodes are then flattened once more into the hot form, a straight
 * instruction array (struct kb__vins) in which records are inlined, nesting
 * depths are known at compile time and unions and array loops are jumps; the
 * interpreter of validate_run.h runs it, built once per kernel path so the
 * kernels inline. It only says yes or no: a rejection is explained by the
 * node walker in validate.c, which is also the whole validator for the rare
 * schemas the flat form cannot express (recursive types, very deep nesting).
 * Projections (validate_project.c) flatten their own program the same way.
 */
#ifndef KB_VALIDATE_INTERNAL_H
#define KB_VALIDATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "ketenbus/validate.h"
#include "validate_kernels.h"

enum kb__vop {
    VOP_NULL,
    VOP_BOOLEAN,
    VOP_INT,
    VOP_LONG,
    VOP_FLOAT,
    VOP_DOUBLE,
    VOP_BYTES,
    VOP_STRING,
    VOP_FIXED,
    VOP_ENUM,
    VOP_RECORD,
    VOP_ARRAY,
    VOP_MAP,
    VOP_UNION,
};

enum kb__vlogical {
    VLT_NONE,
    VLT_DATE,
    VLT_TIME_MILLIS,
    VLT_TIME_MICROS,
    VLT_TIMESTAMP_MILLIS,
    VLT_TIMESTAMP_MICROS,
    VLT_DECIMAL,
    VLT_UUID,
};

struct kb__vnode {
    uint8_t op;       /* enum kb__vop */
    uint8_t logical;  /* enum kb__vlogical */
    uint32_t n;       /* record: fields; union: branches; enum: symbols; fixed: size;
                       * decimal: max bytes of the unscaled value (0: no limit) */
    uint32_t first;   /* record: index of first field; union: index of first branch;
                       * array/map: node of the items/values */
    char *fullname;   /* named types: full name (owned); else NULL */
    json_t *def;      /* the JSON that defined this type (borrowed from the root) */
};

/* A "kb.pattern": a sequence of character classes with repeat counts. */
struct kb__vatom {
    struct kb__cclass cls; /* the bytes this atom matches */
    uint32_t min, max;     /* repeat count range; max UINT32_MAX: unbounded */
};

/* Most patterns are a fixed number of bytes, each from one range ("[0-9]{4}",
 * "[1-9][0-9]{3}[A-Z]{2}"): those of up to KB_VPAT_FIXED bytes also get a
 * word form, tested eight bytes at a time (vr_pattern_fixed()): byte i of
 * fix_lo[i / 8] is 0x80 - lo and of fix_hi 0x7F - hi for the range lo..hi
 * of position i (0x80 and 0 past the end: anything goes). */
#define KB_VPAT_FIXED 16

struct kb__vpattern {
    struct kb__vatom *atoms; /* in order (owned) */
    size_t n;                /* number of atoms */
    size_t min_len, max_len; /* bytes a match can have; max SIZE_MAX: unbounded */
    int fixed;               /* 1: the word form below decides (min_len == max_len) */
    uint64_t fix_lo[KB_VPAT_FIXED / 8], fix_hi[KB_VPAT_FIXED / 8]; /* see above */
};

/* A loaded "kb.codeTable": sorted codes for binary search. */
struct kb__vtable {
    char *name;    /* table name (owned) */
    char **codes;  /* sorted by (length, bytes) (owned) */
    size_t *lens;  /* strlen of each code, so lookups never call strlen (owned) */
    size_t n;      /* number of codes */
};

#define KB_VALLOWED_WORDS 16 /* see allowed_word below */

enum kb__vcheck { VCK_NONE, VCK_BSN, VCK_ANUMMER };
enum kb__vformat { VFMT_NONE, VFMT_GBA_DATUM, VFMT_DATUM };

/* The kb.* constraints of one field (apply to its string/int/long values,
 * through unions, arrays and maps). */
struct kb__vcons {
    uint8_t check;                /* enum kb__vcheck */
    uint8_t format;               /* enum kb__vformat */
    uint8_t has_min, has_max;     /* kb.minimum / kb.maximum given */
    uint8_t has_min_len;          /* kb.minLength given */
    uint8_t has_max_len;          /* kb.maxLength given */
    uint32_t min_len, max_len;    /* in characters (code points) */
    int64_t min, max;             /* numeric range, inclusive */
    struct kb__vpattern *pattern; /* kb.pattern or NULL (owned) */
    char **allowed;               /* kb.allowed, sorted like code tables (owned) */
    size_t *allowed_lens;         /* strlen of each allowed value (owned) */
    size_t n_allowed;             /* entries of allowed; 0: no such rule */
    const struct kb__vtable *table; /* kb.codeTable or NULL (owned by the validator) */
    /* kb.allowed as words when every value has at most 8 bytes and there are
     * at most KB_VALLOWED_WORDS: value i is the bytes of allowed_word[i]
     * (zero-padded) and allowed_wlen[i] long. n_allowed_words 0: no such form. */
    uint8_t n_allowed_words;
    uint8_t allowed_wlen[KB_VALLOWED_WORDS];
    uint64_t allowed_word[KB_VALLOWED_WORDS];
};

/* Which kb.* string rule a value breaks (kb__vrun_string_rule), VR_OK when none. */
enum kb__vrule {
    VR_OK,
    VR_BSN,
    VR_ANUMMER,
    VR_GBA_DATUM,
    VR_DATUM,
    VR_PATTERN,
    VR_ALLOWED,
    VR_TABLE,
    VR_MIN_LENGTH,
    VR_MAX_LENGTH,
};

/* How a string value is checked, from its UTF-8 flag, uuid logical type and
 * kb.* rules (string_kind() in validate.c). A rule that only ASCII can pass
 * (BSN, A-nummer, dates, patterns, uuid, allowed values that are themselves
 * valid UTF-8) makes the UTF-8 check redundant: passing it implies valid
 * UTF-8, failing it rejects either way, so those kinds skip it. The node
 * walker still checks UTF-8 first, so a rejection names the same rule. */
enum kb__vskind {
    VSK_RAW,     /* no check (structure only) */
    VSK_TEXT,    /* UTF-8 only */
    VSK_BSN,     /* kb.check bsn only */
    VSK_ANUMMER, /* kb.check anummer only */
    VSK_GBA,     /* kb.format gba-datum only */
    VSK_DATUM,   /* kb.format datum only */
    VSK_PATTERN, /* kb.pattern only */
    VSK_ALLOWED, /* kb.allowed only, every value valid UTF-8 */
    VSK_UUID,    /* the uuid logical type, no kb.* rule */
    VSK_ANY,     /* anything else: flags VIF_UTF8/VIF_UUID, then string_rule() */
    VSK_N
};

/* Operations of the flat program. Each string kind has two operations: a
 * string (VI_STR + kind) and the union ["null", "string"] (VI_OPT + kind):
 * index byte 0 (null) or 2 (zig-zag 1) and the string. */
enum kb__viop {
    VI_END,     /* the datum is complete: accept */
    VI_FAIL,    /* reject when reached (nesting beyond max_depth, fixed beyond max_string) */
    VI_BOOL,    /* one byte 0 or 1 */
    VI_LONG,    /* a varint, no further rule */
    VI_INT,     /* a varint within 32 bits */
    VI_NUM,     /* a varint with rules: flags VIF_INT, aux the logical type, cons */
    VI_SKIP,    /* a fixed number (a) of bytes: float, double, fixed */
    VI_BYTES,   /* length-prefixed bytes; flags VIF_DECIMAL: 1..a bytes */
    VI_ENUM,    /* an index below a */
    VI_UNION,   /* an index below a; branch i continues at jumps[b + i] */
    VI_JUMP,    /* continue at a */
    VI_ARRAY,   /* first block header of an array or map; none: continue at a */
    VI_NEXT,    /* end of one item: next item at a, else next block header */
    VI_STR,     /* VI_STR + enum kb__vskind: a string, cons its rules */
    VI_OPT = VI_STR + VSK_N, /* VI_OPT + enum kb__vskind: null or such a string */
    VI_N_OPS = VI_OPT + VSK_N
};

#define VIF_INT     1u /* VI_NUM: an int, not a long */
#define VIF_DECIMAL 1u /* VI_BYTES: a decimal of at most a bytes */
#define VIF_UTF8    1u /* strings of kind VSK_ANY: check UTF-8 */
#define VIF_UUID    2u /* strings of kind VSK_ANY: the uuid logical type */

struct kb__vins {
    uint8_t op;                   /* enum kb__viop */
    uint8_t flags;                /* VIF_* */
    uint8_t aux;                  /* see the operation */
    uint32_t a, b;                /* see the operation */
    const struct kb__vcons *cons; /* kb.* rules of the value, or NULL */
    const void *go;               /* the handler of op in the validator's kernel
                                   * path's interpreter, set once when compiling
                                   * (run() called with no payload) */
};

/* Array loops nested deeper than this keep the schema on the node walker. */
#define KB_VRUN_MAX_LOOPS 32

struct kb__vfield {
    char *name;                  /* field name (owned) */
    uint32_t type;               /* node of its type */
    const struct kb__vcons *cons; /* its constraints, or NULL when it has none */
    json_t *def;                 /* the field's JSON object (borrowed from the root) */
};

struct kb_validator {
    struct kb__vnode *nodes;     /* all types; nodes[root] is the top record */
    size_t n_nodes, cap_nodes;
    struct kb__vfield *fields;   /* all record fields, each record's contiguous */
    size_t n_fields, cap_fields;
    uint32_t *branches;          /* all union branches, each union's contiguous */
    size_t n_branches, cap_branches;
    struct kb__vcons **cons;     /* every constraint block (owned) */
    size_t n_cons, cap_cons;
    struct kb__vtable **tables;  /* code tables loaded (owned) */
    size_t n_tables;
    uint32_t root;               /* the top-level type */
    json_t *json;                /* the parsed schema text (owned) */
    const struct kb__validate_kernels *k; /* kernel path */
    struct kb__vins *prog;       /* the flat program, or NULL: use the node walker */
    size_t n_prog, cap_prog;
    uint32_t *jumps;             /* union branch targets of the program */
    size_t n_jumps, cap_jumps;
    uint32_t max_string, max_items, max_depth; /* limits */
    int structure_only;          /* skip UTF-8 and kb.* checks */
};

/* Byte range of the value of type @p t at p (assumed validated; bounds are
 * still checked). NULL when the bytes do not hold such a value. */
const uint8_t *kb__validate_skip(const kb_validator_t *v, uint32_t t, const uint8_t *p,
                                 const uint8_t *end, unsigned depth);

/* The two halves of kb_validate(), for the tests that hold them to the same
 * verdicts: the flat program alone (1 accept, 0 reject, -1 the schema has
 * no flat program) and the node walker alone. */
int kb__validate_fast(const kb_validator_t *v, const uint8_t *payload, size_t len);
kb_err_t kb__validate_walk(const kb_validator_t *v, const uint8_t *payload, size_t len,
                           struct kb_validate_result *res);

/* kb_projection_apply() by one of its two halves, for the tests that hold
 * them to the same results: @p flat 1 the flat program (KB_ERR_STATE
 * when the projection has none), 0 the tree walk. */
kb_err_t kb__projection_apply_mode(const kb_projection_t *pj, int flat, const uint8_t *payload,
                                   size_t len, uint8_t **out, size_t *out_cap, size_t *out_len);

/* Decode an Avro long at p; NULL when malformed or truncated. */
const uint8_t *kb__validate_varint(const uint8_t *p, const uint8_t *end, int64_t *out);

/* Binary search of s[0..len) in codes sorted by (length, bytes). */
static inline int kb__vcode_find(char *const *codes, const size_t *lens, size_t n,
                                 const uint8_t *s, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = len != lens[mid] ? (len < lens[mid] ? -1 : 1) : memcmp(s, codes[mid], len);
        if (!r)
            return 1;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

#endif
