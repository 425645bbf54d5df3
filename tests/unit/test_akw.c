/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_akw.c - unit tests of the AKW01 record (adapters/svb/akw.c): the
 * README example (protocols.md §2.3 plus ketenbus's columns 89-105) byte for
 * byte and column by column, the round trip, every rejection, name folding
 * and the date arithmetic.
 */
#include "akw.h"
#include "kb_test.h"

/* The §2.3 example with the partner and the flags; "A.M. Bakker" is 11
 * bytes, so 44 spaces fill the 55-byte name. */
static const char example_line[] = "AKW01"
                                   "000004711235"
                                   "20240402"
                                   "999996204"
                                   "999995303"
                                   "20240315"
                                   "0344"
                                   "D"
                                   "20240702"
                                   "005281301274"
                                   "Gv0120240318"
                                   "UN6030  "
                                   "999997105"
                                   "A.M. Bakker"
                                   "                                            ";

static struct kb_akw01 example_rec(void)
{
    struct kb_akw01 rec;
    memset(&rec, 0, sizeof rec);
    strcpy(rec.kenmerk, "000004711235");
    strcpy(rec.datum_aanmaak, "20240402");
    strcpy(rec.bsn_ouder, "999996204");
    strcpy(rec.bsn_kind, "999995303");
    strcpy(rec.geboortedatum_kind, "20240315");
    strcpy(rec.gemeente_kind, "0344");
    rec.kanaal = 'D';
    strcpy(rec.uiterste_reactiedatum, "20240702");
    strcpy(rec.bron_anummer, "5281301274");
    strcpy(rec.bron_berichttype, "Gv01");
    strcpy(rec.bron_ontvangstdatum, "20240318");
    rec.verwerking = 'U';
    rec.buitenland = 'N';
    strcpy(rec.geboorteland, "6030");
    strcpy(rec.bsn_partner, "999997105");
    strcpy(rec.naam, "A.M. Bakker");
    return rec;
}

/* Slice of @p line at 1-based column @p col. */
static const char *at(const char *line, int col)
{
    return line + col - 1;
}

static void test_render_example(void)
{
    struct kb_akw01 rec = example_rec();
    char out[KB_AKW01_LEN + 1];
    char errstr[256] = "";

    CHECK_INT(strlen(example_line), KB_AKW01_LEN);
    CHECK_INT(kb_akw01_render(&rec, out, errstr, sizeof errstr), KB_OK);
    CHECK_STR(errstr, "");
    CHECK_INT(strlen(out), KB_AKW01_LEN);
    CHECK_STR(out, example_line);

    CHECK_MEM(at(out, 1), 5, "AKW01");
    CHECK_MEM(at(out, 6), 12, "000004711235");
    CHECK_MEM(at(out, 18), 8, "20240402");
    CHECK_MEM(at(out, 26), 9, "999996204");
    CHECK_MEM(at(out, 35), 9, "999995303");
    CHECK_MEM(at(out, 44), 8, "20240315");
    CHECK_MEM(at(out, 52), 4, "0344");
    CHECK_MEM(at(out, 56), 1, "D");
    CHECK_MEM(at(out, 57), 8, "20240702");
    CHECK_MEM(at(out, 65), 12, "005281301274");
    CHECK_MEM(at(out, 77), 12, "Gv0120240318");
    CHECK_MEM(at(out, 89), 1, "U");
    CHECK_MEM(at(out, 90), 1, "N");
    CHECK_MEM(at(out, 91), 4, "6030");
    CHECK_MEM(at(out, 95), 2, "  ");
    CHECK_MEM(at(out, 97), 9, "999997105");
    CHECK_MEM(at(out, 106), 55, "A.M. Bakker                                            ");
    CHECK_INT(out[KB_AKW01_LEN], '\0');
}

static void check_rec_equal(const struct kb_akw01 *a, const struct kb_akw01 *b)
{
    CHECK_STR(a->kenmerk, b->kenmerk);
    CHECK_STR(a->datum_aanmaak, b->datum_aanmaak);
    CHECK_STR(a->bsn_ouder, b->bsn_ouder);
    CHECK_STR(a->bsn_kind, b->bsn_kind);
    CHECK_STR(a->geboortedatum_kind, b->geboortedatum_kind);
    CHECK_STR(a->gemeente_kind, b->gemeente_kind);
    CHECK_INT(a->kanaal, b->kanaal);
    CHECK_STR(a->uiterste_reactiedatum, b->uiterste_reactiedatum);
    CHECK_STR(a->bron_anummer, b->bron_anummer);
    CHECK_STR(a->bron_berichttype, b->bron_berichttype);
    CHECK_STR(a->bron_ontvangstdatum, b->bron_ontvangstdatum);
    CHECK_INT(a->verwerking, b->verwerking);
    CHECK_INT(a->buitenland, b->buitenland);
    CHECK_STR(a->geboorteland, b->geboorteland);
    CHECK_STR(a->bsn_partner, b->bsn_partner);
    CHECK_STR(a->naam, b->naam);
}

static void test_parse_round_trip(void)
{
    struct kb_akw01 want = example_rec(), got;
    char out[KB_AKW01_LEN + 1];
    char buf[KB_AKW01_LEN + 3];
    char errstr[256] = "";

    CHECK_INT(kb_akw01_parse(example_line, KB_AKW01_LEN, &got, errstr, sizeof errstr), KB_OK);
    CHECK_STR(errstr, "");
    check_rec_equal(&got, &want);
    CHECK_INT(kb_akw01_render(&got, out, errstr, sizeof errstr), KB_OK);
    CHECK_STR(out, example_line);

    /* a trailing "\n" or "\r\n" is tolerated */
    memcpy(buf, example_line, KB_AKW01_LEN);
    memcpy(buf + KB_AKW01_LEN, "\n", 1);
    CHECK_INT(kb_akw01_parse(buf, KB_AKW01_LEN + 1, &got, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&got, &want);
    memcpy(buf + KB_AKW01_LEN, "\r\n", 2);
    CHECK_INT(kb_akw01_parse(buf, KB_AKW01_LEN + 2, &got, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&got, &want);

    /* paper channel, GBA partial birth dates */
    want.kanaal = 'P';
    strcpy(want.geboortedatum_kind, "20240300");
    CHECK_INT(kb_akw01_render(&want, out, errstr, sizeof errstr), KB_OK);
    CHECK_MEM(at(out, 56), 1, "P");
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &got, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&got, &want);
    strcpy(want.geboortedatum_kind, "20240000");
    CHECK_INT(kb_akw01_render(&want, out, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &got, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&got, &want);
    strcpy(want.geboortedatum_kind, "00000000");
    CHECK_INT(kb_akw01_render(&want, out, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &got, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&got, &want);
}

/*
 * Render @p rec, expect KB_ERR_INVALID with an errstr that contains
 * @p field and @p cols and not @p secret (the offending value).
 */
static void expect_render_error(const struct kb_akw01 *rec, const char *field, const char *cols,
                                const char *secret, int line)
{
    char out[KB_AKW01_LEN + 1];
    char errstr[256] = "";
    kb_err_t err = kb_akw01_render(rec, out, errstr, sizeof errstr);

    CHECK_INT(err, KB_ERR_INVALID);
    if (!strstr(errstr, field) || !strstr(errstr, cols) || (secret && strstr(errstr, secret))) {
        fprintf(stderr, "  (from line %d) errstr \"%s\": want \"%s\" and \"%s\"%s%s\n", line,
                errstr, field, cols, secret ? ", not " : "", secret ? secret : "");
        CHECK(0);
    }
}

#define EXPECT_RENDER_ERROR(rec, field, cols, secret) \
    expect_render_error(rec, field, cols, secret, __LINE__)

static void test_render_rejects(void)
{
    struct kb_akw01 rec;

    rec = example_rec();
    strcpy(rec.bsn_ouder, "999996205"); /* check digit off by one */
    EXPECT_RENDER_ERROR(&rec, "bsn_ouder", "col 26-34", "999996205");
    rec = example_rec();
    strcpy(rec.bsn_kind, "999995304");
    EXPECT_RENDER_ERROR(&rec, "bsn_kind", "col 35-43", "999995304");
    rec = example_rec();
    strcpy(rec.bsn_kind, "000000000"); /* passes the sum, is no BSN */
    EXPECT_RENDER_ERROR(&rec, "bsn_kind", "col 35-43", NULL);
    rec = example_rec();
    strcpy(rec.bsn_ouder, "99999620A");
    EXPECT_RENDER_ERROR(&rec, "bsn_ouder", "col 26-34", "99999620A");

    rec = example_rec();
    strcpy(rec.kenmerk, "00000471123X"); /* non-digit */
    EXPECT_RENDER_ERROR(&rec, "kenmerk", "col 6-17", "00000471123X");
    rec = example_rec();
    strcpy(rec.kenmerk, "4711235"); /* not zero-padded: wrong width */
    EXPECT_RENDER_ERROR(&rec, "kenmerk", "col 6-17", "4711235");
    rec = example_rec();
    strcpy(rec.gemeente_kind, "344");
    EXPECT_RENDER_ERROR(&rec, "gemeente_kind", "col 52-55", NULL);
    rec = example_rec();
    strcpy(rec.gemeente_kind, "03 4");
    EXPECT_RENDER_ERROR(&rec, "gemeente_kind", "col 52-55", NULL);
    rec = example_rec();
    strcpy(rec.bron_anummer, "528130127"); /* 9 digits */
    EXPECT_RENDER_ERROR(&rec, "bron_anummer", "col 67-76", "528130127");
    rec = example_rec();
    memset(rec.bron_anummer, '1', sizeof rec.bron_anummer); /* no NUL at all */
    EXPECT_RENDER_ERROR(&rec, "bron_anummer", "col 67-76", NULL);
    rec = example_rec();
    strcpy(rec.bron_berichttype, "GV01");
    EXPECT_RENDER_ERROR(&rec, "bron_berichttype", "col 77-80", NULL);

    /* dates */
    rec = example_rec();
    strcpy(rec.datum_aanmaak, "20230229"); /* not a leap year */
    EXPECT_RENDER_ERROR(&rec, "datum_aanmaak", "col 18-25", "20230229");
    rec = example_rec();
    strcpy(rec.datum_aanmaak, "20241301");
    EXPECT_RENDER_ERROR(&rec, "datum_aanmaak", "col 18-25", "20241301");
    rec = example_rec();
    strcpy(rec.datum_aanmaak, "20240400"); /* partial dates only for the birth date */
    EXPECT_RENDER_ERROR(&rec, "datum_aanmaak", "col 18-25", NULL);
    rec = example_rec();
    strcpy(rec.uiterste_reactiedatum, "20240431");
    EXPECT_RENDER_ERROR(&rec, "uiterste_reactiedatum", "col 57-64", "20240431");
    rec = example_rec();
    strcpy(rec.uiterste_reactiedatum, "2024-7-2");
    EXPECT_RENDER_ERROR(&rec, "uiterste_reactiedatum", "col 57-64", NULL);
    rec = example_rec();
    strcpy(rec.bron_ontvangstdatum, "00000000");
    EXPECT_RENDER_ERROR(&rec, "bron_ontvangstdatum", "col 81-88", NULL);
    rec = example_rec();
    strcpy(rec.geboortedatum_kind, "20240230");
    EXPECT_RENDER_ERROR(&rec, "geboortedatum_kind", "col 44-51", "20240230");
    rec = example_rec();
    strcpy(rec.geboortedatum_kind, "20240015"); /* day known, month not */
    EXPECT_RENDER_ERROR(&rec, "geboortedatum_kind", "col 44-51", NULL);
    rec = example_rec();
    strcpy(rec.geboortedatum_kind, "00000315"); /* month known, year not */
    EXPECT_RENDER_ERROR(&rec, "geboortedatum_kind", "col 44-51", NULL);
    rec = example_rec();
    strcpy(rec.geboortedatum_kind, "20241300");
    EXPECT_RENDER_ERROR(&rec, "geboortedatum_kind", "col 44-51", NULL);

    /* kanaal */
    rec = example_rec();
    rec.kanaal = 'X';
    EXPECT_RENDER_ERROR(&rec, "kanaal", "col 56-56", NULL);
    rec = example_rec();
    rec.kanaal = 'd';
    EXPECT_RENDER_ERROR(&rec, "kanaal", "col 56-56", NULL);

    /* naam: controls, unfoldable characters, broken UTF-8, empty */
    rec = example_rec();
    strcpy(rec.naam, "A.M.\tBakker");
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakker");
    rec = example_rec();
    strcpy(rec.naam, "A.M. Bakker\n");
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakker");
    rec = example_rec();
    strcpy(rec.naam, "A.M. \177Bakker");
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakker");
    rec = example_rec();
    strcpy(rec.naam, "A.M. \302\205Bakker"); /* U+0085, a C1 control */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakker");
    rec = example_rec();
    strcpy(rec.naam, "Li \xe6\x9d\x8e"); /* CJK: nothing to fold to */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Li");
    rec = example_rec();
    strcpy(rec.naam, "Bakker \xc3\x97 2"); /* U+00D7 multiplication sign */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakker");
    rec = example_rec();
    strcpy(rec.naam, "Bakker \xc2\xa0"); /* U+00A0 no-break space: not a letter */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakker");
    rec = example_rec();
    strcpy(rec.naam, "Bakk\xc3"); /* truncated sequence */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakk");
    rec = example_rec();
    strcpy(rec.naam, "Bakk\xc3\xa9\xa9r"); /* stray continuation byte */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", "Bakk");
    rec = example_rec();
    strcpy(rec.naam, "\xc0\xaf"); /* overlong '/' */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", NULL);
    rec = example_rec();
    strcpy(rec.naam, "\xed\xa0\x80"); /* surrogate U+D800 */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", NULL);
    rec = example_rec();
    strcpy(rec.naam, "");
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", NULL);
    rec = example_rec();
    strcpy(rec.naam, "   ");
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", NULL);
    rec = example_rec();
    memset(rec.naam, 'a', sizeof rec.naam); /* no NUL within 129 bytes */
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", NULL);
    /* a control past the 55-byte cut still rejects the name */
    rec = example_rec();
    memset(rec.naam, 'a', 100);
    rec.naam[90] = '\x01';
    rec.naam[100] = '\0';
    EXPECT_RENDER_ERROR(&rec, "naam", "col 106-160", NULL);

    /* NULL arguments */
    rec = example_rec();
    CHECK_INT(kb_akw01_render(NULL, (char[KB_AKW01_LEN + 1]){0}, NULL, 0), KB_ERR_INVALID);
    CHECK_INT(kb_akw01_render(&rec, NULL, NULL, 0), KB_ERR_INVALID);
}

/* ketenbus's columns 89-105: flags, country and partner, in both directions. */
static void test_extension_fields(void)
{
    struct kb_akw01 rec, back;
    char out[KB_AKW01_LEN + 1];
    char errstr[256] = "";

    /* no partner: nine spaces, parsed back as "" */
    rec = example_rec();
    rec.bsn_partner[0] = '\0';
    CHECK_INT(kb_akw01_render(&rec, out, errstr, sizeof errstr), KB_OK);
    CHECK_MEM(at(out, 97), 9, "         ");
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &back, errstr, sizeof errstr), KB_OK);
    CHECK_STR(back.bsn_partner, "");
    check_rec_equal(&back, &rec);

    /* a later child born in NL: automatic */
    rec = example_rec();
    rec.verwerking = 'A';
    CHECK_INT(kb_akw01_render(&rec, out, errstr, sizeof errstr), KB_OK);
    CHECK_MEM(at(out, 89), 6, "AN6030");
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &back, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&back, &rec);

    /* born abroad (5010 Belgie) and country unknown */
    rec = example_rec();
    rec.buitenland = 'J';
    strcpy(rec.geboorteland, "5010");
    CHECK_INT(kb_akw01_render(&rec, out, errstr, sizeof errstr), KB_OK);
    CHECK_MEM(at(out, 89), 6, "UJ5010");
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &back, errstr, sizeof errstr), KB_OK);
    check_rec_equal(&back, &rec);
    rec.buitenland = 'O';
    strcpy(rec.geboorteland, "0000");
    CHECK_INT(kb_akw01_render(&rec, out, errstr, sizeof errstr), KB_OK);
    CHECK_MEM(at(out, 89), 6, "UO0000");

    CHECK_INT(kb_akw_buitenland("6030"), 'N');
    CHECK_INT(kb_akw_buitenland("5010"), 'J');
    CHECK_INT(kb_akw_buitenland("0000"), 'O');
    CHECK_INT(kb_akw_buitenland(""), 'O');
    CHECK_INT(kb_akw_buitenland(NULL), 'O');

    rec = example_rec();
    rec.verwerking = 'A';
    rec.buitenland = 'J';
    strcpy(rec.geboorteland, "5010");
    EXPECT_RENDER_ERROR(&rec, "verwerking", "col 89-89", NULL); /* abroad is never automatic */
    rec = example_rec();
    rec.verwerking = 'u';
    EXPECT_RENDER_ERROR(&rec, "verwerking", "col 89-89", NULL);
    rec = example_rec();
    rec.buitenland = 'J'; /* but geboorteland 6030 */
    EXPECT_RENDER_ERROR(&rec, "buitenland", "col 90-90", NULL);
    rec = example_rec();
    strcpy(rec.geboorteland, "603");
    EXPECT_RENDER_ERROR(&rec, "geboorteland", "col 91-94", NULL);
    rec = example_rec();
    strcpy(rec.bsn_partner, "999996204"); /* the addressee again */
    EXPECT_RENDER_ERROR(&rec, "bsn_partner", "col 97-105", NULL);
    rec = example_rec();
    strcpy(rec.bsn_partner, "999997106");
    EXPECT_RENDER_ERROR(&rec, "bsn_partner", "col 97-105", "999997106");
    rec = example_rec();
    strcpy(rec.bsn_partner, "99999710");
    EXPECT_RENDER_ERROR(&rec, "bsn_partner", "col 97-105", "99999710");
}

/* The name as rendered into columns 106-160 of @p naam's record. */
static void expect_naam(const char *naam, const char *want64)
{
    struct kb_akw01 rec = example_rec(), back;
    char out[KB_AKW01_LEN + 1];
    char errstr[256] = "";
    size_t want_len = strlen(want64);

    strcpy(rec.naam, naam);
    CHECK_INT(kb_akw01_render(&rec, out, errstr, sizeof errstr), KB_OK);
    CHECK_STR(errstr, "");
    CHECK_INT(strlen(out), KB_AKW01_LEN);
    CHECK_MEM(at(out, 106), want_len, want64);
    for (size_t i = want_len; i < 55; i++)
        CHECK_INT(out[105 + i], ' ');
    CHECK_INT(kb_akw01_parse(out, KB_AKW01_LEN, &back, errstr, sizeof errstr), KB_OK);
    CHECK_STR(back.naam, want64);
}

static void test_naam_folding(void)
{
    char long_name[101];
    char want[65];

    expect_naam("Angélique Zoë Çelik", "Angelique Zoe Celik");
    expect_naam("Ĳsbrand Østergård-Straße", "IJsbrand Ostergard-Strasse");
    expect_naam("Æsop œuvre Þór Ðuro ĳzer", "AEsop oeuvre THor Duro ijzer");
    expect_naam("Łukasz Wałęsa Dvořák Šťastný Ğüneş", "Lukasz Walesa Dvorak Stastny Gunes");
    expect_naam("ÀÁÂÃÄÅ àáâãäå ÿ ſ", "AAAAAA aaaaaa y s");
    expect_naam("  A.M. Bakker", "A.M. Bakker"); /* left-aligned */
    expect_naam("d'Ancona-van der Berg", "d'Ancona-van der Berg");

    /* 100 bytes are cut at 55 */
    for (int i = 0; i < 100; i++)
        long_name[i] = (char)('a' + i % 26);
    long_name[100] = '\0';
    memcpy(want, long_name, 55);
    want[55] = '\0';
    expect_naam(long_name, want);

    /* the cut counts folded bytes: 54 + "ss" keeps one s; 53 + "é" (2 bytes) keeps "e" */
    memset(long_name, 'a', 54);
    strcpy(long_name + 54, "ß");
    memset(want, 'a', 54);
    strcpy(want + 54, "s");
    expect_naam(long_name, want);
    memset(long_name, 'a', 53);
    strcpy(long_name + 53, "éé");
    memset(want, 'a', 53);
    strcpy(want + 53, "ee");
    expect_naam(long_name, want);
    /* 128 bytes of 2-byte letters: 64 letters, cut to the field's 55 */
    {
        struct kb_akw01 rec = example_rec();
        char out[KB_AKW01_LEN + 1];
        for (int i = 0; i < 64; i++)
            memcpy(rec.naam + 2 * i, "\xc3\xa9", 2);
        rec.naam[128] = '\0';
        CHECK_INT(kb_akw01_render(&rec, out, NULL, 0), KB_OK);
        memset(want, 'e', 55);
        want[55] = '\0';
        CHECK_MEM(at(out, 106), 55, want);
    }
}

/* Parse @p line (160 bytes unless @p len says otherwise), expect an error naming @p what. */
static void expect_parse_error(const char *line, size_t len, const char *what, const char *secret,
                               int lineno)
{
    struct kb_akw01 rec;
    char errstr[256] = "";

    CHECK_INT(kb_akw01_parse(line, len, &rec, errstr, sizeof errstr), KB_ERR_INVALID);
    if (!strstr(errstr, what) || (secret && strstr(errstr, secret))) {
        fprintf(stderr, "  (from line %d) errstr \"%s\": want \"%s\"%s%s\n", lineno, errstr, what,
                secret ? ", not " : "", secret ? secret : "");
        CHECK(0);
    }
}

#define EXPECT_PARSE_ERROR(line, len, what, secret) \
    expect_parse_error(line, len, what, secret, __LINE__)

/* A copy of the example with @p repl written at 1-based column @p col. */
static const char *patched(int col, const char *repl)
{
    static char buf[KB_AKW01_LEN + 3];
    memcpy(buf, example_line, KB_AKW01_LEN + 1);
    memcpy(buf + col - 1, repl, strlen(repl));
    return buf;
}

static void test_parse_rejects(void)
{
    char buf[KB_AKW01_LEN + 3];

    /* length */
    EXPECT_PARSE_ERROR(example_line, KB_AKW01_LEN - 1, "159 bytes", NULL);
    EXPECT_PARSE_ERROR(example_line, 0, "0 bytes", NULL);
    memcpy(buf, example_line, KB_AKW01_LEN);
    memcpy(buf + KB_AKW01_LEN, "X\n", 2);
    EXPECT_PARSE_ERROR(buf, KB_AKW01_LEN + 1, "161 bytes", NULL);
    EXPECT_PARSE_ERROR(buf, KB_AKW01_LEN + 2, "162 bytes", NULL);
    memcpy(buf + KB_AKW01_LEN, "\n\n", 2);
    EXPECT_PARSE_ERROR(buf, KB_AKW01_LEN + 2, "162 bytes", NULL);
    memcpy(buf + KB_AKW01_LEN, "\r", 1);
    EXPECT_PARSE_ERROR(buf, KB_AKW01_LEN + 1, "161 bytes", NULL);

    EXPECT_PARSE_ERROR(patched(1, "AKW02"), KB_AKW01_LEN, "recordtype (col 1-5)", NULL);
    EXPECT_PARSE_ERROR(patched(6, " 00004711235"), KB_AKW01_LEN, "kenmerk (col 6-17)", NULL);
    EXPECT_PARSE_ERROR(patched(18, "20240431"), KB_AKW01_LEN, "datum_aanmaak (col 18-25)",
                       "20240431");
    EXPECT_PARSE_ERROR(patched(26, "999996205"), KB_AKW01_LEN, "bsn_ouder (col 26-34)",
                       "999996205");
    EXPECT_PARSE_ERROR(patched(35, "99999530x"), KB_AKW01_LEN, "bsn_kind (col 35-43)", "99999530x");
    EXPECT_PARSE_ERROR(patched(44, "20240015"), KB_AKW01_LEN, "geboortedatum_kind (col 44-51)",
                       NULL);
    EXPECT_PARSE_ERROR(patched(52, "034A"), KB_AKW01_LEN, "gemeente_kind (col 52-55)", NULL);
    EXPECT_PARSE_ERROR(patched(56, "E"), KB_AKW01_LEN, "kanaal (col 56-56)", NULL);
    EXPECT_PARSE_ERROR(patched(57, "20250229"), KB_AKW01_LEN, "uiterste_reactiedatum (col 57-64)",
                       NULL);
    EXPECT_PARSE_ERROR(patched(65, "1"), KB_AKW01_LEN, "bron_anummer (col 65-66)", NULL);
    EXPECT_PARSE_ERROR(patched(67, "528130127 "), KB_AKW01_LEN, "bron_anummer (col 67-76)", NULL);
    EXPECT_PARSE_ERROR(patched(77, "gv01"), KB_AKW01_LEN, "bron_berichttype (col 77-80)", NULL);
    EXPECT_PARSE_ERROR(patched(81, "20240332"), KB_AKW01_LEN, "bron_ontvangstdatum (col 81-88)",
                       NULL);
    EXPECT_PARSE_ERROR(patched(96, "x"), KB_AKW01_LEN, "filler (col 95-96)", NULL);
    EXPECT_PARSE_ERROR(patched(89, "X"), KB_AKW01_LEN, "verwerking (col 89-89)", NULL);
    EXPECT_PARSE_ERROR(patched(89, "AJ5010"), KB_AKW01_LEN, "verwerking (col 89-89)", NULL);
    EXPECT_PARSE_ERROR(patched(90, "J"), KB_AKW01_LEN, "buitenland (col 90-90): does not match",
                       NULL);
    EXPECT_PARSE_ERROR(patched(90, "O"), KB_AKW01_LEN, "buitenland (col 90-90)", NULL);
    EXPECT_PARSE_ERROR(patched(90, "N0000"), KB_AKW01_LEN, "buitenland (col 90-90)", NULL);
    EXPECT_PARSE_ERROR(patched(91, "60 0"), KB_AKW01_LEN, "geboorteland (col 91-94)", NULL);
    EXPECT_PARSE_ERROR(patched(97, "999997106"), KB_AKW01_LEN, "bsn_partner (col 97-105)",
                       "999997106");
    EXPECT_PARSE_ERROR(patched(97, "99999710 "), KB_AKW01_LEN, "bsn_partner (col 97-105)", NULL);
    EXPECT_PARSE_ERROR(patched(97, "999996204"), KB_AKW01_LEN, "must differ from bsn_ouder", NULL);
    EXPECT_PARSE_ERROR(patched(110, "\t"), KB_AKW01_LEN, "naam (col 106-160)", "Bakker");
    EXPECT_PARSE_ERROR(patched(110, "\xc3"), KB_AKW01_LEN, "naam (col 106-160)", "Bakker");
    EXPECT_PARSE_ERROR(patched(160, "\x7f"), KB_AKW01_LEN, "naam (col 106-160)", "Bakker");
    EXPECT_PARSE_ERROR(patched(106, " "), KB_AKW01_LEN, "left-aligned", NULL);
    EXPECT_PARSE_ERROR(patched(106, "           "), KB_AKW01_LEN, "naam (col 106-160): is empty",
                       NULL);
    memcpy(buf, example_line, KB_AKW01_LEN);
    buf[40] = '\0'; /* NUL inside BSN kind */
    EXPECT_PARSE_ERROR(buf, KB_AKW01_LEN, "bsn_kind", NULL);

    CHECK_INT(kb_akw01_parse(NULL, KB_AKW01_LEN, &(struct kb_akw01){0}, NULL, 0), KB_ERR_INVALID);
    CHECK_INT(kb_akw01_parse(example_line, KB_AKW01_LEN, NULL, NULL, 0), KB_ERR_INVALID);
}

static void expect_add(const char *date, int months, kb_err_t want_err, const char *want)
{
    char out[9] = "";
    kb_err_t err = kb_akw_date_add_months(date, months, out);
    CHECK_INT(err, want_err);
    if (want)
        CHECK_STR(out, want);
}

static void test_date_add_months(void)
{
    expect_add("20240402", 3, KB_OK, "20240702"); /* the §2.3 example */
    expect_add("20231130", 3, KB_OK, "20240229"); /* clamped, leap year */
    expect_add("20221130", 3, KB_OK, "20230228"); /* clamped, common year */
    expect_add("20240131", 1, KB_OK, "20240229");
    expect_add("20230131", 1, KB_OK, "20230228");
    expect_add("21000131", 1, KB_OK, "21000228"); /* 2100 is not a leap year */
    expect_add("20000131", 1, KB_OK, "20000229"); /* 2000 is */
    expect_add("20240531", 1, KB_OK, "20240630");
    expect_add("20240531", 2, KB_OK, "20240731");
    expect_add("20241031", 3, KB_OK, "20250131"); /* across the year */
    expect_add("20241215", 1, KB_OK, "20250115");
    expect_add("20240229", 12, KB_OK, "20250228");
    expect_add("20240229", 48, KB_OK, "20280229");
    expect_add("20240315", 0, KB_OK, "20240315");
    expect_add("20240315", -3, KB_OK, "20231215"); /* backwards */
    expect_add("20240331", -1, KB_OK, "20240229");
    expect_add("20240115", -13, KB_OK, "20221215");
    expect_add("99991115", 1, KB_OK, "99991215");

    expect_add("20230229", 3, KB_ERR_INVALID, NULL); /* not a date */
    expect_add("20240300", 3, KB_ERR_INVALID, NULL); /* partial dates have no month end */
    expect_add("2024040", 3, KB_ERR_INVALID, NULL);
    expect_add("202404021", 3, KB_ERR_INVALID, NULL);
    expect_add("2024-4-2", 3, KB_ERR_INVALID, NULL);
    expect_add(NULL, 3, KB_ERR_INVALID, NULL);
    expect_add("99991215", 1, KB_ERR_RANGE, NULL);
    expect_add("00010115", -1, KB_ERR_RANGE, NULL);
    expect_add("20240115", 2147483647, KB_ERR_RANGE, NULL);
    expect_add("20240115", -2147483647 - 1, KB_ERR_RANGE, NULL);
}

int main(void)
{
    test_render_example();
    test_parse_round_trip();
    test_render_rejects();
    test_extension_fields();
    test_naam_folding();
    test_parse_rejects();
    test_date_add_months();
    KB_TEST_DONE();
}
