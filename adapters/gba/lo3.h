/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * lo3.h - parser for GBA/BRP "LO3" messages (Logisch Ontwerp, Teletex bytes):
 * the 8-byte random key, the 4-byte berichtnummer, the positional header of
 * that message kind, and the body of categories and elements
 * (../shared/protocols.md §1.2, §1.3, Appendix A).
 *
 * The parser never copies element values: every value is a slice of the
 * caller's buffer, still in Teletex. Convert with kb_t61_to_utf8() after
 * slicing, as the lengths are Teletex byte counts.
 */
#ifndef KETENBUS_LO3_H
#define KETENBUS_LO3_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

/** One positional header field of the message kind (e.g. "aNummer"). */
struct kb_lo3_header_field {
    const char *name;     /* static name as in the RvIG BRP Berichten API JSON */
    const uint8_t *value; /* slice of the message buffer */
    size_t len;           /* bytes in value */
};

/** One element "GGEE": group*100 + element, e.g. 01.10 -> 110, 81.20 -> 8120. */
struct kb_lo3_element {
    uint16_t nummer;      /* GGEE as an integer (0110 -> 110) */
    const uint8_t *value; /* Teletex bytes, slice of the message buffer */
    size_t len;           /* 0 for an empty element (length 000) */
    size_t offset;        /* byte offset of the element number in the message */
};

/** One category occurrence, in message order. */
struct kb_lo3_category {
    uint8_t nummer;       /* 01..99; historical = actual + 50 */
    size_t first;         /* index of its first element in kb_lo3_message.elements */
    size_t count;         /* number of elements (0 for an empty category, e.g. "59000") */
    size_t offset;        /* byte offset of the category number in the message */
    size_t stapel;        /* stapel index: an actual category opens one, its
                           * historical ones that follow share it */
    size_t body;          /* which body it is in: 0, or 0..n_bodies-1 in an Xa01 set */
};

#define KB_LO3_MAX_HEADER_FIELDS 12

struct kb_lo3_message {
    char random_key[9];   /* 8 digits, NUL-terminated */
    char type[5];         /* berichtnummer as written, e.g. "Lg01"; "Null" for 0 bytes */
    struct kb_lo3_header_field header[KB_LO3_MAX_HEADER_FIELDS];
    size_t n_header;      /* header fields used */
    int has_body;         /* 1 when the kind carries a body (plData) */
    size_t n_bodies;      /* bodies read: 0 or 1, Xa01 one or more (an empty
                           * "00000" body has no categories but counts) */
    struct kb_lo3_category *categories; /* owned; n_categories entries */
    size_t n_categories;
    struct kb_lo3_element *elements;    /* owned; n_elements entries */
    size_t n_elements;
    const uint8_t *buf;   /* the bytes kb_lo3_parse() read (every value lies
                           * in them), NULL for a message built in memory */
    size_t buf_len;
};

/** 1 when the 8 bytes from element @p e's value on lie in the buffer
 *  @p msg was parsed from, so a word may be read there whatever e->len. */
static inline int kb_lo3_readable8(const struct kb_lo3_message *msg,
                                   const struct kb_lo3_element *e)
{
    uintptr_t at = (uintptr_t)e->value - (uintptr_t)msg->buf;
    return msg->buf && msg->buf_len >= 8 && at <= msg->buf_len - 8;
}

/**
 * Parse one LO3 message of @p len bytes. Values in @p msg point into @p buf,
 * which must outlive @p msg. On error returns KB_ERR_INVALID (or
 * KB_ERR_NOMEM) and errstr names the byte offset and what was wrong; @p msg
 * is then left empty (safe to fini).
 * Any thread; no shared state.
 */
kb_err_t kb_lo3_parse(const uint8_t *buf, size_t len, struct kb_lo3_message *msg, char *errstr,
                      size_t errstr_size);

/** Free what kb_lo3_parse() allocated and leave @p msg empty (counts 0,
 *  pointers NULL). Safe on a zeroed or failed message. */
void kb_lo3_message_fini(struct kb_lo3_message *msg);

/** Header field @p name, or NULL when this message kind has none. */
const struct kb_lo3_header_field *kb_lo3_header(const struct kb_lo3_message *msg,
                                                const char *name);

/** Element @p nummer (GGEE) in category occurrence @p cat_index, or NULL. */
const struct kb_lo3_element *kb_lo3_element(const struct kb_lo3_message *msg, size_t cat_index,
                                            uint16_t nummer);

/**
 * Write @p msg back as LO3 bytes: random key, berichtnummer, header fields
 * and bodies, with every length recomputed from the values (which must
 * already be Teletex). For a message from kb_lo3_parse() the result equals
 * the parsed bytes. *out is malloc'ed (NULL for the zero-byte Null message,
 * *len 0); the caller frees it. KB_ERR_RANGE when a value does not fit its
 * length field (element > 999, category > 999, body > 99999 bytes) or a
 * fixed-width header field has the wrong width; KB_ERR_INVALID for an
 * unknown kind or missing header field.
 * Any thread; no shared state.
 */
kb_err_t kb_lo3_format(const struct kb_lo3_message *msg, uint8_t **out, size_t *len,
                       char *errstr, size_t errstr_size);

/** Kind of header field @p name of message kind @p type, for the JSON codec. */
enum kb_lo3_field_kind {
    KB_LO3_FIELD_NONE = 0,  /* the kind has no such field */
    KB_LO3_FIELD_N,         /* fixed width, digits */
    KB_LO3_FIELD_AN,        /* fixed width, Teletex */
    KB_LO3_FIELD_RUBRIEKEN, /* aantal (3 digits) + 6 digits each, kept as one slice */
    KB_LO3_FIELD_TEXT,      /* length (5 digits) + Teletex text; the slice is the text */
    KB_LO3_FIELD_REST,      /* the rest of the message, unparsed Teletex */
};

/**
 * The header layout of message kind @p type ("Lg01"): fills @p names /
 * @p kinds / @p widths (capacity KB_LO3_MAX_HEADER_FIELDS) in message order
 * and returns the count, with *body_mode 0 none, 1 one plData (required),
 * 2 optional plData, 3 a plDataSet. -1 for an unknown kind.
 */
int kb_lo3_kind_layout(const char *type, const char **names, enum kb_lo3_field_kind *kinds,
                       unsigned *widths, int *body_mode);

#endif
