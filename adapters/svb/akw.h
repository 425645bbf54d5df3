/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * akw.h - SVB child-benefit (AKW) fixed-width records, ketenbus's own design
 * (../shared/protocols.md §2.3, marked PLAUSIBLE DESIGN there: no public SVB
 * format exists). AKW01 is the 160-byte invitation record SVB sends to a
 * parent; all fields ASCII, numerics zero-padded, text space-padded.
 */
#ifndef KETENBUS_AKW_H
#define KETENBUS_AKW_H

#include <stddef.h>

#include "ketenbus/err.h"

#define KB_AKW01_LEN 160

/** The fields of one AKW01 record, as NUL-terminated strings. */
struct kb_akw01 {
    char kenmerk[13];               /* 12 digits: SVB reference, derived from the event ids */
    char datum_aanmaak[9];          /* JJJJMMDD: date the record is created */
    char bsn_ouder[10];             /* 9 digits: the addressed parent */
    char bsn_kind[10];              /* 9 digits */
    char geboortedatum_kind[9];     /* JJJJMMDD, GBA partial dates (00) allowed */
    char gemeente_kind[5];          /* 4 digits, Tabel 33 */
    char kanaal;                    /* 'D' digitaal (Mijn SVB) or 'P' papier */
    char uiterste_reactiedatum[9];  /* JJJJMMDD: datum_aanmaak + 3 months */
    char bron_anummer[11];          /* 10 digits: A-nummer of the parent's PL that triggered it */
    char bron_berichttype[5];       /* e.g. "Gv01" */
    char bron_ontvangstdatum[9];    /* JJJJMMDD: when the bus received the source message */
    char naam[129];                 /* addressee, UTF-8; rendered as ASCII, at most 64 */
};

/**
 * Render @p rec as exactly KB_AKW01_LEN bytes into @p out (plus a NUL, so
 * @p out needs KB_AKW01_LEN + 1 bytes). Every field is checked (digits where
 * numeric, kanaal D/P, dates well-formed); letters with diacritics in naam
 * are folded to ASCII; a name longer than 64 bytes is cut at 64.
 * KB_ERR_INVALID with errstr naming the field when a field is malformed.
 */
kb_err_t kb_akw01_render(const struct kb_akw01 *rec, char *out, char *errstr, size_t errstr_size);

/**
 * Parse one AKW01 line of @p len bytes (exactly KB_AKW01_LEN, a trailing
 * "\n" or "\r\n" tolerated) back into @p rec; trailing spaces of text fields
 * are removed. KB_ERR_INVALID with errstr naming field and column on error.
 */
kb_err_t kb_akw01_parse(const char *line, size_t len, struct kb_akw01 *rec, char *errstr,
                        size_t errstr_size);

/** @p date (JJJJMMDD, a full date) plus @p months, clamped to the month's last day. */
kb_err_t kb_akw_date_add_months(const char *date, int months, char out[9]);

#endif
