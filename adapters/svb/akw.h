/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * akw.h - SVB child-benefit (AKW) fixed-width records, ketenbus's own design
 * (../shared/protocols.md §2.3, marked PLAUSIBLE DESIGN there: no public SVB
 * format exists; the full layouts are in adapters/svb/README.md). AKW01 is
 * the 160-byte invitation SVB sends for a new child, addressed to one parent
 * and naming the other; AKW02 is a parent's application, with one repeating
 * group per child. All fields ASCII, numerics zero-padded, text space-padded.
 */
#ifndef KETENBUS_AKW_H
#define KETENBUS_AKW_H

#include <stddef.h>

#include "ketenbus/err.h"

#define KB_AKW01_LEN 160

#define KB_AKW_LAND_NEDERLAND "6030" /* Tabel 34 code of the Netherlands */
#define KB_AKW_LAND_ONBEKEND  "0000" /* Tabel 34: country unknown */

/** The fields of one AKW01 record, as NUL-terminated strings. */
struct kb_akw01 {
    char kenmerk[13];               /* 12 digits: SVB reference, derived from the birth event id */
    char datum_aanmaak[9];          /* JJJJMMDD: date the record is created */
    char bsn_ouder[10];             /* 9 digits: the addressed parent (ouder 1 where it has a BSN) */
    char bsn_kind[10];              /* 9 digits */
    char geboortedatum_kind[9];     /* JJJJMMDD, GBA partial dates (00) allowed */
    char gemeente_kind[5];          /* 4 digits, Tabel 33 */
    char kanaal;                    /* 'D' digitaal (Mijn SVB) or 'P' papier */
    char uiterste_reactiedatum[9];  /* JJJJMMDD: datum_aanmaak + 3 months */
    char bron_anummer[11];          /* 10 digits: A-nummer of the parent's PL that triggered it */
    char bron_berichttype[5];       /* e.g. "Gv01" */
    char bron_ontvangstdatum[9];    /* JJJJMMDD: when the bus received the source message */
    char verwerking;                /* 'U' uitnodiging: the parents must apply;
                                     * 'A' automatisch: a later child born in NL, no application */
    char buitenland;                /* 'N' born in NL (6030), 'J' born abroad, 'O' country unknown */
    char geboorteland[5];           /* 4 digits, Tabel 34; "0000" when unknown */
    char bsn_partner[10];           /* 9 digits: the other parent, or "" (rendered as spaces)
                                     * when the child has one parent with a BSN */
    char naam[129];                 /* addressee, UTF-8; rendered as ASCII, at most 55 */
};

/**
 * Render @p rec as exactly KB_AKW01_LEN bytes into @p out (plus a NUL, so
 * @p out needs KB_AKW01_LEN + 1 bytes). Every field is checked (digits where
 * numeric, BSNs, kanaal D/P, dates well-formed, verwerking/buitenland/
 * geboorteland consistent, partner differs from the addressee); letters with
 * diacritics in naam are folded to ASCII; a longer name is cut at 55 bytes.
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

/** 'N', 'J' or 'O' for Tabel 34 code @p land (4 digits; NULL or "" is unknown). */
char kb_akw_buitenland(const char *land);

/** @p date (JJJJMMDD, a full date) plus @p months, clamped to the month's last day. */
kb_err_t kb_akw_date_add_months(const char *date, int months, char out[9]);

/* ---- AKW02: aanvraag kinderbijslag ---- */

#define KB_AKW02_FIXED_LEN 68   /* record without children: 45 before, 23 after the group */
#define KB_AKW02_CHILD_LEN 11   /* one repeating group: BSN 9, relatie 1, inwonend 1 */
#define KB_AKW02_MAX_KINDEREN 99 /* aantal kinderen is two digits */
#define KB_AKW02_MAX_LEN (KB_AKW02_FIXED_LEN + KB_AKW02_MAX_KINDEREN * KB_AKW02_CHILD_LEN)

/** Why an AKW02 record was refused: the quarantine rule (kb_rule header). */
enum kb_akw02_rule {
    KB_AKW02_OK = 0,
    KB_AKW02_LENGTH,     /* "akw02-length": not 68 + 11 x aantal kinderen bytes */
    KB_AKW02_RECORDTYPE, /* "akw02-recordtype": not an AKW02 record */
    KB_AKW02_BSN,        /* "akw02-bsn": a BSN fails the 11-proef, or repeats */
    KB_AKW02_IBAN,       /* "akw02-iban": malformed IBAN or wrong mod-97 check digits */
    KB_AKW02_DATE,       /* "akw02-date": datum aanvraag or ingangskwartaal invalid */
    KB_AKW02_FIELD,      /* "akw02-field": any other field (kenmerk, codes, aantal) */
};

/** The rule's name as written in the kb_rule quarantine header. */
const char *kb_akw02_rule_name(enum kb_akw02_rule rule);

/** One child of an application (one repeating group). */
struct kb_akw02_kind {
    char bsn[10];  /* 9 digits */
    char relatie;  /* 'E' eigen, 'A' aangehuwd (stiefkind), 'P' pleegkind */
    char inwonend; /* 'J' or 'N' */
};

/** The fields of one AKW02 record, as NUL-terminated strings. */
struct kb_akw02 {
    char kenmerk_uitnodiging[13]; /* 12 digits: the AKW01 kenmerk, or all zeros (no invitation) */
    char datum_aanvraag[9];       /* JJJJMMDD, a calendar date */
    char bsn_aanvrager[10];       /* 9 digits */
    char bsn_partner[10];         /* 9 digits, or "" (spaces in the record) */
    int aantal_kinderen;          /* 1..99 */
    struct kb_akw02_kind kinderen[KB_AKW02_MAX_KINDEREN];
    char iban[19];                /* 15..18 characters, left-aligned in the record */
    char ingangskwartaal[6];      /* JJJJK, K 1..4 */
};

/**
 * Parse one AKW02 record of @p len bytes (a trailing "\n" or "\r\n"
 * tolerated) into @p rec. On error returns the rule that failed and writes
 * into @p errstr the field and 1-based column, never a value (every value
 * here is personal data). KB_AKW02_OK on success.
 */
enum kb_akw02_rule kb_akw02_parse(const char *line, size_t len, struct kb_akw02 *rec,
                                  char *errstr, size_t errstr_size);

/**
 * Render @p rec (checked as kb_akw02_parse would) into @p out, which needs
 * KB_AKW02_MAX_LEN + 1 bytes; *@p out_len is the record length. For tests,
 * the benchmark and the legacy-peer side of the demo.
 */
enum kb_akw02_rule kb_akw02_render(const struct kb_akw02 *rec, char *out, size_t *out_len,
                                   char *errstr, size_t errstr_size);

/** 1 when @p iban (@p len characters) passes the ISO 13616 mod-97 check. */
int kb_akw_iban_check(const char *iban, size_t len);

#endif
