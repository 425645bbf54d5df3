/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_svb_join.c - unit tests of the SVB egress join (adapters/svb/
 * svb_join.c) on real Avro payloads and a temporary spool: one invitation
 * per child for both parents, the later-child rule, children born abroad,
 * both arrival orders, redelivery, and no BSN in state file names.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <openssl/evp.h>

#include "akw.h"
#include "kb_test.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"
#include "svb_join.h"

static kb_schemas_t *schemas;
static uint8_t key[32];

/* The fictitious family of protocols.md §1.10 and the project's fixtures. */
#define MOEDER_ANR "5281301274"
#define MOEDER_BSN "999996204"
#define VADER_ANR "3647901080"
#define VADER_BSN "999997105"
#define ANDERE_ANR "1013121783" /* fictitious; passes the A-nummer check the egress validates */
#define ANDERE_BSN "999991048"
#define SOPHIE "999995303"
#define TWEEDE "999991012"
#define DERDE "999991024"
#define VIERDE "999991036"

struct ouder {
    int nr;
    const char *anr, *bsn, *voornamen, *vv, *naam;
};

static const struct ouder moeder = {1, MOEDER_ANR, MOEDER_BSN, "Anna Maria", NULL, "Bakker"};
static const struct ouder vader = {2, VADER_ANR, VADER_BSN, "Pieter Jan", "van", "Dijk"};
static const struct ouder andere = {2, ANDERE_ANR, ANDERE_BSN, "Karel", NULL, "Smit"};

/* Set by a test: how deliver() spoils the next payloads, and the reason
 * kb_svb_handle() gave last. */
static int corrupt_first_length; /* 1: the first string length becomes ~2^31 */
static char last_errstr[256];

/* Encode @p v of @p schema and hand it to kb_svb_handle() as event @p id. */
static kb_err_t deliver(struct kb_svb *s, const struct kb_schema *schema, avro_value_t *v,
                        const char *id)
{
    uint8_t *framed = NULL;
    size_t len = 0;
    char errstr[256] = "";
    struct kb_event_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    snprintf(attrs.id, sizeof attrs.id, "%s", id);
    snprintf(attrs.type, sizeof attrs.type, "%s", schema->type);
    kb_err_t err = kb_schema_encode(schema, v, &framed, &len, errstr, sizeof errstr);
    CHECK_INT(err, KB_OK);
    if (!err && corrupt_first_length) {
        /* A record starting with a string (kind-toegevoegd's ouder.aNummer):
         * its one-byte length becomes the varint of 2^31 - 1, the kind of
         * mutation that makes avro-c allocate gigabytes. */
        static const uint8_t huge[5] = {0xfe, 0xff, 0xff, 0xff, 0x0f};
        uint8_t *m = malloc(len + 4);
        CHECK(m != NULL);
        if (m) {
            memcpy(m, framed, 5);
            memcpy(m + 5, huge, 5);
            memcpy(m + 10, framed + 6, len - 6);
            free(framed);
            framed = m;
            len += 4;
        }
    }
    if (!err)
        err = kb_svb_handle(s, &attrs, schema, framed + 5, len - 5, errstr, sizeof errstr);
    if (err && err != KB_ERR_INVALID)
        fprintf(stderr, "  kb_svb_handle: %s\n", errstr);
    if (err == KB_ERR_INVALID) {
        /* the reason names a field or rule, never a value */
        CHECK(strstr(errstr, "99999") == NULL);
    }
    snprintf(last_errstr, sizeof last_errstr, "%s", errstr);
    free(framed);
    return err;
}

static kb_err_t birth(struct kb_svb *s, const char *id, const char *kind_bsn, const char *datum,
                      const char *land, const struct ouder *o1, const struct ouder *o2)
{
    const struct kb_schema *schema = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    avro_value_t v, ouders, o;
    CHECK(schema != NULL);
    avro_generic_value_new(schema->iface, &v);
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "kind.bsn", kind_bsn);
    kb_value_set_string(&v, "kind.geboortedatum", datum);
    kb_value_set_string(&v, "kind.geboorteland", land);
    kb_value_set_string(&v, "inschrijving.gemeente", "0344");
    kb_value_set_string(&v, "herkomst.berichtType", "Lg01");
    kb_value_set_string(&v, "herkomst.randomKey", "00000000");
    kb_value_set_long(&v, "herkomst.ontvangen", 1710753330250);
    kb_value_set_string(&v, "herkomst.sha256", "0");
    avro_value_get_by_name(&v, "ouders", &ouders, NULL);
    const struct ouder *list[2] = {o1, o2};
    for (int i = 0; i < 2; i++) {
        if (!list[i])
            continue;
        avro_value_append(&ouders, &o, NULL);
        kb_value_init_nulls(&o);
        kb_value_set_int(&o, "ouderNummer", list[i]->nr);
        kb_value_set_string(&o, "persoon.aNummer", list[i]->anr);
        kb_value_set_string(&o, "persoon.bsn", list[i]->bsn);
        kb_value_set_string(&o, "persoon.voornamen", list[i]->voornamen);
        kb_value_set_string(&o, "persoon.voorvoegsel", list[i]->vv);
        kb_value_set_string(&o, "persoon.geslachtsnaam", list[i]->naam);
    }
    kb_err_t err = deliver(s, schema, &v, id);
    avro_value_decref(&v);
    return err;
}

/* A parent's Gv01 with a new kind stapel, received 2024-03-18 10:00 local. */
static kb_err_t gv01(struct kb_svb *s, const char *id, const char *ouder_anr, const char *kind_bsn)
{
    const struct kb_schema *schema = kb_schemas_by_type(schemas, "nl.brp.kind-toegevoegd");
    avro_value_t v;
    struct tm tm = {.tm_year = 124, .tm_mon = 2, .tm_mday = 18, .tm_hour = 10, .tm_isdst = -1};
    avro_generic_value_new(schema->iface, &v);
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "ouder.aNummer", ouder_anr);
    kb_value_set_string(&v, "kind.bsn", kind_bsn);
    kb_value_set_string(&v, "herkomst.berichtType", "Gv01");
    kb_value_set_string(&v, "herkomst.randomKey", "00000000");
    kb_value_set_long(&v, "herkomst.ontvangen", (int64_t)mktime(&tm) * 1000);
    kb_value_set_string(&v, "herkomst.sha256", "0");
    kb_err_t err = deliver(s, schema, &v, id);
    avro_value_decref(&v);
    return err;
}

/* A fresh spool with "today" fixed at 2024-04-02 12:00 local time. */
static void fresh(struct kb_svb *s, char *root, size_t cap)
{
    struct tm tm = {.tm_year = 124, .tm_mon = 3, .tm_mday = 2, .tm_hour = 12, .tm_isdst = -1};
    snprintf(root, cap, "/tmp/kb-test-svb-join-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    struct kb_spool sp;
    CHECK_INT(kb_spool_open(&sp, root, NULL, 0), KB_OK);
    CHECK_INT(kb_svb_init(s, &sp, key, sizeof key, NULL, 0), KB_OK);
    s->now = mktime(&tm);
}

/* Number of AKW01 files in out/; the record of the one for @p kind_bsn into @p line. */
static int records(struct kb_svb *s, const char *kind_bsn, char line[KB_AKW01_LEN + 2])
{
    char dir[2200];
    int n = 0;
    snprintf(dir, sizeof dir, "%s/out", s->spool.dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    if (line)
        line[0] = '\0';
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 7 || strcmp(de->d_name + l - 6, ".akw01"))
            continue;
        n++;
        char path[2600], buf[KB_AKW01_LEN + 2] = "";
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(buf, 1, KB_AKW01_LEN + 1, f) : 0;
        if (f)
            fclose(f);
        buf[got] = '\0';
        CHECK_INT(got, KB_AKW01_LEN + 1); /* 160 bytes and a newline */
        /* the file is named after the record's kenmerk */
        CHECK(l == 18 && !memcmp(de->d_name, buf + 5, 12));
        if (line && !memcmp(buf + 34, kind_bsn, 9))
            memcpy(line, buf, KB_AKW01_LEN + 2);
    }
    if (d)
        closedir(d);
    return n;
}

static void cleanup(const char *root)
{
    CHECK_INT(kb_test_rm_tree(root), 0);
}

static void check_sophie(const char *rec, const char *bron_anr)
{
    struct kb_akw01 a;
    CHECK_INT(kb_akw01_parse(rec, KB_AKW01_LEN + 1, &a, NULL, 0), KB_OK);
    CHECK_STR(a.datum_aanmaak, "20240402");
    CHECK_STR(a.bsn_ouder, MOEDER_BSN);
    CHECK_STR(a.bsn_partner, VADER_BSN);
    CHECK_STR(a.bsn_kind, SOPHIE);
    CHECK_STR(a.geboortedatum_kind, "20240315");
    CHECK_STR(a.gemeente_kind, "0344");
    CHECK_INT(a.kanaal, 'D');
    CHECK_STR(a.uiterste_reactiedatum, "20240702");
    CHECK_STR(a.bron_anummer, bron_anr);
    CHECK_STR(a.bron_berichttype, "Gv01");
    CHECK_STR(a.bron_ontvangstdatum, "20240318");
    CHECK_INT(a.verwerking, 'U');
    CHECK_INT(a.buitenland, 'N');
    CHECK_STR(a.geboorteland, "6030");
    CHECK_STR(a.naam, "A.M. Bakker");
}

static void test_one_invitation_for_both_parents(void)
{
    struct kb_svb s;
    char root[64], rec[KB_AKW01_LEN + 2], first[KB_AKW01_LEN + 2];

    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(records(&s, SOPHIE, NULL), 0); /* half a join writes nothing */
    CHECK_INT(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    check_sophie(rec, MOEDER_ANR);
    memcpy(first, rec, sizeof rec);
    /* the father's Gv01 is absorbed: still one invitation, unchanged */
    CHECK_INT(gv01(&s, "gv01-vader", VADER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    CHECK_STR(rec, first);
    CHECK_INT(s.written, 1);

    /* redelivery of everything: same single file, nothing written again */
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(gv01(&s, "gv01-vader", VADER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    CHECK_STR(rec, first);
    CHECK_INT(s.written, 1);

    /* no BSN or A-nummer in any state file name */
    char dir[2200];
    snprintf(dir, sizeof dir, "%s", s.state_dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        files++;
        CHECK(strstr(de->d_name, "99999") == NULL);
        CHECK(strstr(de->d_name, MOEDER_ANR) == NULL && strstr(de->d_name, VADER_ANR) == NULL);
    }
    if (d)
        closedir(d);
    /* geboren, 2 ouder files, the mother's kind .done file, akw01 marker (the
     * father's Gv01 came after the invitation and was never stored), and the
     * kenmerken/ registry folder */
    CHECK_INT(files, 6);
    cleanup(root);

    /* the other order: both Gv01s first (the father's before the mother's), then the birth;
     * the same record, triggered by the addressee's own Gv01 */
    fresh(&s, root, sizeof root);
    CHECK_INT(gv01(&s, "gv01-vader", VADER_ANR, SOPHIE), KB_OK);
    CHECK_INT(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, NULL), 0);
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    CHECK_STR(rec, first);
    cleanup(root);

    /* only the father's Gv01 arrives: the invitation still goes to ouder 1
     * (the mother), naming the father's PL as its source */
    fresh(&s, root, sizeof root);
    CHECK_INT(gv01(&s, "gv01-vader", VADER_ANR, SOPHIE), KB_OK);
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    check_sophie(rec, VADER_ANR);
    CHECK(memcmp(rec + 5, first + 5, 12) == 0); /* same kenmerk: it derives from the birth */
    cleanup(root);
}

static void test_later_children(void)
{
    struct kb_svb s;
    char root[64], rec[KB_AKW01_LEN + 2];

    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "b1", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g1", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    CHECK_MEM(rec + 88, 6, "UN6030");

    /* second child in NL: automatic */
    CHECK_INT(birth(&s, "b2", TWEEDE, "20260110", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g2", VADER_ANR, TWEEDE), KB_OK);
    CHECK_INT(records(&s, TWEEDE, rec), 2);
    CHECK_MEM(rec + 88, 6, "AN6030");
    CHECK_MEM(rec + 96, 9, VADER_BSN);
    CHECK_INT(s.automatic, 1);

    /* third child born in Belgium (5010): flagged, and not automatic */
    CHECK_INT(birth(&s, "b3", DERDE, "20270501", "5010", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g3", MOEDER_ANR, DERDE), KB_OK);
    CHECK_INT(records(&s, DERDE, rec), 3);
    CHECK_MEM(rec + 88, 6, "UJ5010");
    CHECK_INT(s.abroad, 1);

    /* the mother's child with another father: later child through her */
    CHECK_INT(birth(&s, "b4", VIERDE, "20290101", "6030", &moeder, &andere), KB_OK);
    CHECK_INT(gv01(&s, "g4", ANDERE_ANR, VIERDE), KB_OK);
    CHECK_INT(records(&s, VIERDE, rec), 4);
    CHECK_MEM(rec + 88, 6, "AN6030");
    CHECK_MEM(rec + 96, 9, ANDERE_BSN);
    CHECK_INT(s.automatic, 2);
    cleanup(root);

    /* twins: same birth date; the first one seen is invited, the second automatic */
    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "t1", TWEEDE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(birth(&s, "t2", DERDE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g3", MOEDER_ANR, DERDE), KB_OK);
    CHECK_INT(gv01(&s, "g2", MOEDER_ANR, TWEEDE), KB_OK);
    CHECK_INT(records(&s, TWEEDE, rec), 2);
    CHECK_MEM(rec + 88, 1, "U");
    CHECK_INT(records(&s, DERDE, rec), 2);
    CHECK_MEM(rec + 88, 1, "A");
    cleanup(root);

    /* an older sibling that becomes known later is no "later child" itself */
    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "jong", TWEEDE, "20260110", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g-jong", MOEDER_ANR, TWEEDE), KB_OK);
    CHECK_INT(birth(&s, "oud", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g-oud", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 2);
    CHECK_MEM(rec + 88, 1, "U");
    cleanup(root);
}

static void test_parents_and_rejects(void)
{
    struct kb_svb s;
    char root[64], rec[KB_AKW01_LEN + 2];
    struct ouder zonder_bsn = moeder;
    zonder_bsn.bsn = NULL;

    /* one parent: no partner (spaces) */
    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "b1", SOPHIE, "20240315", "6030", &moeder, NULL), KB_OK);
    CHECK_INT(gv01(&s, "g1", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    CHECK_MEM(rec + 96, 9, "         ");
    cleanup(root);

    /* ouder 1 without BSN: addressed to ouder 2, no partner */
    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "b1", SOPHIE, "20240315", "0000", &zonder_bsn, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g1", VADER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    CHECK_MEM(rec + 25, 9, VADER_BSN);
    CHECK_MEM(rec + 88, 6, "UO0000");
    CHECK_MEM(rec + 96, 9, "         ");
    CHECK_MEM(rec + 105, 12, "P.J. van Dij");
    cleanup(root);

    /* nobody to address, a broken BSN, a Gv01 of a stranger */
    fresh(&s, root, sizeof root);
    struct ouder vader_zonder = vader;
    vader_zonder.bsn = NULL;
    CHECK_INT(birth(&s, "b1", SOPHIE, "20240315", "6030", &zonder_bsn, &vader_zonder),
              KB_ERR_INVALID);
    CHECK_INT(birth(&s, "b2", "999995304", "20240315", "6030", &moeder, &vader), KB_ERR_INVALID);
    CHECK_INT(birth(&s, "b3", SOPHIE, "20240315", "60X0", &moeder, &vader), KB_ERR_INVALID);
    CHECK_INT(birth(&s, "b4", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g-vreemd", ANDERE_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, NULL), 0);
    /* a name with no ASCII form can never be rendered: the event is refused */
    struct ouder chinees = moeder;
    chinees.naam = "\xe6\x9d\x8e";
    CHECK_INT(birth(&s, "b5", TWEEDE, "20240315", "6030", &chinees, &vader), KB_OK);
    CHECK_INT(gv01(&s, "g5", MOEDER_ANR, TWEEDE), KB_ERR_INVALID);
    CHECK_INT(records(&s, TWEEDE, NULL), 0);
    cleanup(root);
}

/* Events the join can never use are refused (quarantined by the egress
 * loop), never retried forever and never stored with a part missing. */
static void test_unusable_events(void)
{
    char root[64], rec[KB_AKW01_LEN + 2];
    struct kb_svb s;
    fresh(&s, root, sizeof root);
    /* A ce_id that is not UTF-8 cannot go into the JSON state file: before,
     * json_pack's NULL was taken for out of memory and retried for ever. */
    CHECK_INT(birth(&s, "b1-\xff\xfe", SOPHIE, "20240315", "6030", &moeder, &vader),
              KB_ERR_INVALID);
    CHECK(strstr(last_errstr, "not UTF-8") != NULL);
    CHECK_INT(gv01(&s, "g1-\xc3", MOEDER_ANR, SOPHIE), KB_ERR_INVALID);
    CHECK(strstr(last_errstr, "not UTF-8") != NULL);
    /* A parent's name that is not UTF-8: before, that parent was silently
     * left out of the stored birth (and the other one addressed). */
    struct ouder kapot = moeder;
    kapot.voornamen = "Anna\xff";
    CHECK_INT(birth(&s, "b2", SOPHIE, "20240315", "6030", &kapot, &vader), KB_ERR_INVALID);
    CHECK_INT(gv01(&s, "g2", VADER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, NULL), 0);
    /* A mutated length is caught by the validator before avro-c sees it. */
    corrupt_first_length = 1;
    CHECK_INT(gv01(&s, "g3", MOEDER_ANR, SOPHIE), KB_ERR_INVALID);
    corrupt_first_length = 0;
    CHECK(strstr(last_errstr, "payload fails schema 1002") != NULL);
    /* the good events still join */
    CHECK_INT(birth(&s, "b3", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(records(&s, SOPHIE, rec), 1);
    cleanup(root);
}

/* The kenmerk svb_join.c derives first for birth @p id: 12 digits of SHA-256("akw01|<id>"). */
static void first_kenmerk(const char *id, char out[13])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char buf[96];
    int len = snprintf(buf, sizeof buf, "akw01|%s", id);
    EVP_Digest(buf, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    snprintf(out, 13, "%012llu", v % 1000000000000ull);
}

static int fail_written; /* 1: on_written fails, as a crash before the done marker would */

static kb_err_t written_hook(void *opaque, const struct kb_akw01 *rec, const char *birth_id,
                             const char *kind_event_id, char *errstr, size_t errstr_size)
{
    (void)opaque, (void)rec, (void)birth_id, (void)kind_event_id;
    if (fail_written)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "simulated crash");
    return KB_OK;
}

/* The kenmerk of the out/ record of @p kind_bsn into @p out ("" when none). */
static void kenmerk_in_out(struct kb_svb *s, const char *kind_bsn, char out[13])
{
    char line[KB_AKW01_LEN + 2];
    records(s, kind_bsn, line);
    out[0] = '\0';
    if (line[0]) {
        memcpy(out, line + 5, 12);
        out[12] = '\0';
    }
}

/*
 * Two children whose kenmerken collide never share one, and an invitation
 * not yet collected is never overwritten by another child's. Before the
 * fix out/<kenmerk>.akw01 was written with replace.
 */
static void test_kenmerk_collisions(void)
{
    struct kb_svb s;
    char root[64], k[13], path[2600], other[13];
    /* An uncollected invitation of another child (written before the
     * kenmerk registry existed) under the kenmerk Sophie's birth derives. */
    fresh(&s, root, sizeof root);
    first_kenmerk("birth-sophie", k);
    char planted[KB_AKW01_LEN + 2];
    memset(planted, ' ', KB_AKW01_LEN);
    memcpy(planted, "AKW01", 5);
    memcpy(planted + 5, k, 12);
    memcpy(planted + 34, TWEEDE, 9);
    planted[KB_AKW01_LEN] = '\n';
    planted[KB_AKW01_LEN + 1] = '\0';
    snprintf(path, sizeof path, "%s/out/%s.akw01", root, k);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(planted, f);
        fclose(f);
    }
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE), KB_OK);
    CHECK_INT(records(&s, SOPHIE, NULL), 2);
    char line[KB_AKW01_LEN + 2];
    records(&s, TWEEDE, line);
    CHECK_STR(line, planted); /* the other child's invitation is untouched */
    kenmerk_in_out(&s, SOPHIE, other);
    CHECK(other[0] && strcmp(other, k) != 0);
    CHECK_INT(s.kenmerk_collisions, 1);
    cleanup(root);

    /* A kenmerk space of 3: three children must end up with the three
     * kenmerken, each in its own file, whatever their hashes. */
    fresh(&s, root, sizeof root);
    s.kenmerk_space = 3;
    s.on_written = written_hook;
    const char *kids[3] = {SOPHIE, TWEEDE, DERDE};
    const char *births[3] = {"birth-1", "birth-2", "birth-3"};
    char ks[3][13];
    for (int i = 0; i < 3; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "gv01-%d", i);
        CHECK_INT(birth(&s, births[i], kids[i], "20240315", "6030", &moeder, &vader), KB_OK);
        if (i == 1) {
            /* a crash after out/ was written, before the done marker: the
             * redelivery renders the same kenmerk again */
            fail_written = 1;
            CHECK(gv01(&s, gid, MOEDER_ANR, kids[i]) != KB_OK);
            fail_written = 0;
            kenmerk_in_out(&s, kids[i], k);
        }
        CHECK_INT(gv01(&s, gid, MOEDER_ANR, kids[i]), KB_OK);
        kenmerk_in_out(&s, kids[i], ks[i]);
        if (i == 1)
            CHECK_STR(ks[i], k);
    }
    CHECK_INT(records(&s, SOPHIE, NULL), 3);
    CHECK(strcmp(ks[0], ks[1]) && strcmp(ks[0], ks[2]) && strcmp(ks[1], ks[2]));
    for (int i = 0; i < 3; i++)
        CHECK(!strncmp(ks[i], "00000000000", 11) && ks[i][11] >= '0' && ks[i][11] <= '2');
    CHECK(s.kenmerk_collisions >= 1);
    /* A fourth child finds every kenmerk taken: refused, nothing replaced. */
    CHECK_INT(birth(&s, "birth-4", VIERDE, "20240315", "6030", &moeder, &vader), KB_OK);
    CHECK_INT(gv01(&s, "gv01-4", MOEDER_ANR, VIERDE), KB_ERR_RANGE);
    CHECK_INT(records(&s, SOPHIE, NULL), 3);
    for (int i = 0; i < 3; i++) {
        kenmerk_in_out(&s, kids[i], k);
        CHECK_STR(k, ks[i]);
    }
    cleanup(root);
}

/*
 * A crash after out/<kenmerk>.akw01 was written and before the done marker,
 * then the child's birth again under another event id (a corrected Lg01,
 * here with another geboorteland): the stored Gv01 lets that birth complete
 * the join again. Still one invitation, with the corrected data, under the
 * kenmerk of the first birth. Before the fix the second birth's id claimed
 * a second kenmerk and the parents got two invitations.
 */
static void test_second_birth_after_crash(void)
{
    struct kb_svb s;
    char root[64], k[13], again[13], first[13];
    fresh(&s, root, sizeof root);
    s.on_written = written_hook;
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    fail_written = 1;
    CHECK(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE) != KB_OK);
    fail_written = 0;
    kenmerk_in_out(&s, SOPHIE, k);
    first_kenmerk("birth-sophie", first);
    CHECK_STR(k, first);
    CHECK_INT(birth(&s, "birth-sophie-resent", SOPHIE, "20240315", "5010", &moeder, &vader), KB_OK);
    CHECK_INT(s.written, 1); /* the re-sent birth completed the join */
    CHECK_INT(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE), KB_OK); /* absorbed */
    char line[KB_AKW01_LEN + 2];
    CHECK_INT(records(&s, SOPHIE, line), 1);
    CHECK_MEM(line + 88, 6, "UJ5010"); /* the corrected birth's data */
    kenmerk_in_out(&s, SOPHIE, again);
    CHECK_STR(again, k);
    CHECK_INT(s.written, 1);
    /* the registry holds that one claim, owned by the first birth */
    char path[2600], owner[64] = "";
    snprintf(path, sizeof path, "%s/kenmerken/%s", s.state_dir, k);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(owner, sizeof owner, f) != NULL);
        fclose(f);
    }
    CHECK_STR(owner, "birth-sophie\n");
    int claims = 0;
    snprintf(path, sizeof path, "%s/kenmerken", s.state_dir);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        claims += de->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_INT(claims, 1);
    cleanup(root);

    /* A stored birth that cannot be read is not replaced: its first event
     * id would be lost with it (the event is retried, not quarantined). */
    fresh(&s, root, sizeof root);
    CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
    d = opendir(s.state_dir);
    char stored[2600] = "";
    while (d && (de = readdir(d)) != NULL)
        if (!strncmp(de->d_name, "geboren-", 8))
            snprintf(stored, sizeof stored, "%s/%s", s.state_dir, de->d_name);
    if (d)
        closedir(d);
    f = stored[0] ? fopen(stored, "w") : NULL;
    CHECK(f != NULL);
    if (f) {
        fputs("{not json", f);
        fclose(f);
    }
    CHECK_INT(birth(&s, "birth-sophie-resent", SOPHIE, "20240315", "6030", &moeder, &vader),
              KB_ERR_IO);
    cleanup(root);
}

/*
 * A crash between the AKW01 record and the done marker, retried on a later
 * day: the re-render keeps the record's creation and reply dates, so out/
 * gets the same bytes again. Once the afnemer has taken the file, the
 * re-render has the day it runs.
 */
static void test_rerender_keeps_date(void)
{
    for (int taken = 0; taken < 2; taken++) {
        struct kb_svb s;
        char root[64], first[KB_AKW01_LEN + 2], line[KB_AKW01_LEN + 2], errstr[256];
        fresh(&s, root, sizeof root); /* 2 April 2024 */
        s.on_written = written_hook;
        CHECK_INT(birth(&s, "birth-sophie", SOPHIE, "20240315", "6030", &moeder, &vader), KB_OK);
        fail_written = 1;
        CHECK(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE) != KB_OK);
        fail_written = 0;
        CHECK_INT(records(&s, SOPHIE, first), 1);
        if (taken) {
            char k[13], path[2600];
            kenmerk_in_out(&s, SOPHIE, k);
            snprintf(path, sizeof path, "%s/out/%s.akw01", s.spool.dir, k);
            CHECK_INT(unlink(path), 0);
        }
        s.now += 3 * 86400; /* 5 April */
        CHECK_INT(gv01(&s, "gv01-moeder", MOEDER_ANR, SOPHIE), KB_OK);
        CHECK_INT(records(&s, SOPHIE, line), 1);
        struct kb_akw01 rec;
        CHECK_INT(kb_akw01_parse(line, KB_AKW01_LEN + 1, &rec, errstr, sizeof errstr), KB_OK);
        CHECK_STR(rec.datum_aanmaak, taken ? "20240405" : "20240402");
        CHECK_STR(rec.uiterste_reactiedatum, taken ? "20240705" : "20240702");
        if (!taken)
            CHECK_MEM(line, KB_AKW01_LEN + 1, first);
        CHECK_INT(s.written, 1);
        cleanup(root);
    }
}

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1200], errstr[512] = "";
    snprintf(dir, sizeof dir, "%s/schemas", src ? src : ".");
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    schemas = kb_schemas_load_dir(dir, errstr, sizeof errstr);
    CHECK(schemas != NULL);
    if (!schemas) {
        fprintf(stderr, "schemas: %s\n", errstr);
        KB_TEST_DONE();
    }
    test_one_invitation_for_both_parents();
    test_later_children();
    test_parents_and_rejects();
    test_unusable_events();
    test_kenmerk_collisions();
    test_second_birth_after_crash();
    test_rerender_keeps_date();
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
