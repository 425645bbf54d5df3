/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * brk_xml.h - reading one BRK Levering XML document (a Mutatie:Mutatie or a
 * Stand:Stand, schema generations v20120901, v20200721 and v20211119) into a
 * small model of what ketenbus publishes: the mutation header, and for each
 * snapshot the kadastraal object, its rights, tenaamstellingen, persons
 * (identifiers only), deeds, plus a fingerprint of every part so that `was`
 * and `wordt` can be compared. libxml2's streaming reader does the parsing
 * with DTDs, external entities and network access off; documents with a
 * DOCTYPE or entity references are refused outright.
 */
#ifndef KETENBUS_BRK_XML_H
#define KETENBUS_BRK_XML_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

struct kb_brk_lookup;

#define KB_BRK_ID_MAX   64  /* identifiers, local ids, codes */
#define KB_BRK_TEXT_MAX 256 /* names and descriptions kept in the model */
#define KB_BRK_MAX_REFS 8   /* stukdeel references per tenaamstelling */

/** Limits on hostile input; kb_brk_limits_default() gives the defaults. */
struct kb_brk_limits {
    size_t max_doc;       /* bytes of one XML document */
    unsigned max_depth;   /* element nesting */
    size_t max_attr;      /* bytes of one attribute value */
    unsigned max_attrs;   /* attributes on one element */
    size_t max_text;      /* bytes of text inside one element */
    size_t max_parts;     /* top-level parts (rights, persons, ...) in one snapshot */
    size_t max_snapshots; /* snapshots in one stand document */
};

void kb_brk_limits_default(struct kb_brk_limits *lim);

/** A code/waarde pair of the Typen namespace. */
struct kb_brk_code {
    char code[KB_BRK_ID_MAX];
    char waarde[KB_BRK_TEXT_MAX];
};

struct kb_brk_aanduiding {
    char gemeente_code[KB_BRK_ID_MAX]; /* AKR kadastrale gemeentecode, e.g. ABG00 */
    char gemeente[KB_BRK_TEXT_MAX];    /* name of the kadastrale gemeente */
    char sectie[KB_BRK_ID_MAX];
    char perceelnummer[KB_BRK_ID_MAX];
    char appartementsindex[KB_BRK_ID_MAX]; /* apartment rights only, else "" */
};

struct kb_brk_persoon {
    char local_id[KB_BRK_ID_MAX];          /* id="ID.." inside the snapshot */
    char identificatie[KB_BRK_ID_MAX];     /* Kadaster persoon id (NL.IMKAD.Persoon) */
    int natuurlijk;                        /* 1 natural person, 0 legal person */
    char bsn[KB_BRK_ID_MAX];               /* natural persons: BSN, "" when absent or nil */
    char bsn_nilreason[KB_BRK_ID_MAX];     /* e.g. nietGeautoriseerd, "" otherwise */
    char rsin[KB_BRK_ID_MAX];              /* legal persons: RSIN (as delivered) */
    char kvk[KB_BRK_ID_MAX];               /* legal persons: KvK number */
    char statutaire_naam[KB_BRK_TEXT_MAX]; /* legal persons only: not personal data */
    char rechtsvorm[KB_BRK_ID_MAX];        /* legal persons: rechtsvorm code */
};

struct kb_brk_recht {
    char local_id[KB_BRK_ID_MAX];
    char identificatie[KB_BRK_ID_MAX];
    struct kb_brk_code aard; /* 2 = Eigendom (recht van), ... */
};

struct kb_brk_tenaamstelling {
    char local_id[KB_BRK_ID_MAX];
    char identificatie[KB_BRK_ID_MAX];
    char teller[KB_BRK_ID_MAX], noemer[KB_BRK_ID_MAX]; /* aandeel, "" when absent */
    char recht_ref[KB_BRK_ID_MAX];   /* ZakelijkRecht: local id ("ID..") or business id */
    char persoon_ref[KB_BRK_ID_MAX]; /* person: local id or business id */
    char stukdeel_refs[KB_BRK_MAX_REFS][KB_BRK_ID_MAX]; /* isGebaseerdOp */
    size_t n_stukdeel_refs;
};

struct kb_brk_stukdeel {
    char local_id[KB_BRK_ID_MAX];
    char identificatie[KB_BRK_ID_MAX];
    struct kb_brk_code aard; /* 001 = Akte van Koop en Verkoop, ... */
};

/** A deed: a ter inschrijving aangeboden stuk or a Kadasterstuk. */
struct kb_brk_stuk {
    char soort[KB_BRK_ID_MAX]; /* "TIAStuk" or "Kadasterstuk" */
    char identificatie[KB_BRK_ID_MAX];
    char deel[KB_BRK_ID_MAX], nummer[KB_BRK_ID_MAX];
    char reeks[KB_BRK_ID_MAX];       /* old registers only, else "" */
    struct kb_brk_code registercode; /* 2 = Hyp4 */
    char soort_register[KB_BRK_TEXT_MAX];
};

/** Fingerprint of one part of a snapshot, for the was/wordt comparison. */
struct kb_brk_part {
    char kind[KB_BRK_ID_MAX];          /* element name: ZakelijkRecht, Tenaamstelling, ... */
    char identificatie[KB_BRK_ID_MAX]; /* business id, or "#<n>" (n-th of its kind) */
    uint64_t hash;                     /* FNV-1a over names, attributes and text */
};

struct kb_brk_snapshot {
    int present; /* 0: absent (no `was`, or no `wordt`) */
    char toestandsdatum[KB_BRK_ID_MAX];
    char soort[KB_BRK_ID_MAX];         /* "perceel" or "appartementsrecht" */
    char identificatie[KB_BRK_ID_MAX]; /* kadastraal object id */
    struct kb_brk_aanduiding aanduiding;
    struct kb_brk_code aard_cultuur;
    int have_koopsom;
    char koopsom_bedrag[KB_BRK_ID_MAX]; /* "" when nil */
    char koopsom_valuta[KB_BRK_ID_MAX];
    char koopjaar[KB_BRK_ID_MAX];
    int meer_objecten; /* -1 unknown, 0 false, 1 true */
    char grootte[KB_BRK_ID_MAX];
    struct kb_brk_persoon *personen;
    size_t n_personen;
    struct kb_brk_recht *rechten;
    size_t n_rechten;
    struct kb_brk_tenaamstelling *tenaamstellingen;
    size_t n_tenaamstellingen;
    struct kb_brk_stukdeel *stukdelen;
    size_t n_stukdelen;
    struct kb_brk_part *parts; /* every top-level part but the object itself */
    size_t n_parts;
    struct kb_brk_part *fields; /* every child of the object (kind = field name) */
    size_t n_fields;
    struct kb_brk_lookup *lookup; /* the index of the above (brk_lookup.h), or NULL */
};

enum kb_brk_doc_kind { KB_BRK_MUTATIE = 1, KB_BRK_STAND = 2 };

struct kb_brk_doc {
    enum kb_brk_doc_kind kind;
    char generatie[KB_BRK_ID_MAX]; /* schema generation of the root, e.g. v20211119 */
    /* Mutations: */
    char brk_datum[KB_BRK_ID_MAX]; /* YYYY-MM-DD */
    long volgnummer;               /* volgnummerKadastraalObjectDatum */
    struct kb_brk_code aard_stukdeel;
    struct kb_brk_stuk stuk;       /* ingeschrevenStuk (soort "" when absent) */
    char object_id[KB_BRK_ID_MAX]; /* AanduidingKadastraalObject reference */
    char object_soort[KB_BRK_ID_MAX];
    struct kb_brk_aanduiding aanduiding;
    struct kb_brk_snapshot was, wordt;
    /* Stands: */
    char product_type[KB_BRK_TEXT_MAX];
    char peildatum[KB_BRK_ID_MAX];
    struct kb_brk_snapshot *stand;
    size_t n_stand;
};

/**
 * Parse the XML document @p xml (@p len bytes) into @p doc (caller's
 * storage; free with kb_brk_doc_fini(), also after a failure). Returns
 * KB_ERR_INVALID with errstr "line N: ..." for a document that is not
 * well-formed, breaks a limit or is not BRK Levering; KB_ERR_RANGE for a
 * document over max_doc. errstr never quotes values from the document.
 * @thread any; call kb_brk_xml_init() once first (it is idempotent).
 */
kb_err_t kb_brk_parse(const uint8_t *xml, size_t len, const struct kb_brk_limits *lim,
                      struct kb_brk_doc *doc, char *errstr, size_t errstr_size);

void kb_brk_doc_fini(struct kb_brk_doc *doc);

/**
 * Process-wide libxml2 setup: initialise the library, install an external
 * entity loader that refuses every load (no document can make the process
 * open a file or URL) and silence libxml2's generic error printing (which
 * would copy input bytes to stderr). Idempotent and thread-safe.
 */
void kb_brk_xml_init(void);

#endif
