/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_internal.h - the compiled form of a schema, shared by the
 * validator (validate.c) and the projections (validate_project.c). A schema
 * becomes a flat array of type nodes; records point into a flat array of
 * fields, unions into a flat array of branch node indexes. Named types are
 * one node however often they are referenced, so recursive schemas work.
 */
#ifndef KB_VALIDATE_INTERNAL_H
#define KB_VALIDATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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

struct kb__vpattern {
    struct kb__vatom *atoms; /* in order (owned) */
    size_t n;                /* number of atoms */
    size_t min_len, max_len; /* bytes a match can have; max SIZE_MAX: unbounded */
};

/* A loaded "kb.codeTable": sorted codes for binary search. */
struct kb__vtable {
    char *name;   /* table name (owned) */
    char **codes; /* sorted by (length, bytes) (owned) */
    size_t n;     /* number of codes */
};

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
    size_t n_allowed;             /* entries of allowed; 0: no such rule */
    const struct kb__vtable *table; /* kb.codeTable or NULL (owned by the validator) */
};

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
    uint32_t max_string, max_items, max_depth; /* limits */
    int structure_only;          /* skip UTF-8 and kb.* checks */
};

/* Byte range of the value of type @p t at p (assumed validated; bounds are
 * still checked). NULL when the bytes do not hold such a value. */
const uint8_t *kb__validate_skip(const kb_validator_t *v, uint32_t t, const uint8_t *p,
                                 const uint8_t *end, unsigned depth);

/* Decode an Avro long at p; NULL when malformed or truncated. */
const uint8_t *kb__validate_varint(const uint8_t *p, const uint8_t *end, int64_t *out);

#endif
