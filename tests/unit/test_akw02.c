/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_akw02.c - unit tests of the AKW02 application record
 * (adapters/svb/akw.c, layout in adapters/svb/README.md): a hand-written
 * record column by column, the round trip, the repeating group up to 99
 * children, and every malformed case with its quarantine rule, checking that
 * no error text carries a value.
 */
#include "akw.h"
#include "kb_test.h"

/* Two children, both parents; 68 + 2 x 11 = 90 bytes. */
static const char two_kids[] = "AKW02"
                               "000004711235"
                               "20240410"
                               "999996204"
                               "999997105"
                               "02"
                               "999995303EJ"
                               "999991012AN"
                               "NL91ABNA0417164300"
                               "20242";

/* One child, no partner, a 15-character (Norwegian) IBAN left-aligned. */
static const char one_kid[] = "AKW02"
                              "000000000000"
                              "20240229"
                              "999996204"
                              "         "
                              "01"
                              "999995303PJ"
                              "NO9386011117947   "
                              "20241";

static void test_parse_valid(void)
{
    struct kb_akw02 rec;
    char errstr[256] = "";

    CHECK_INT(strlen(two_kids), 90);
    CHECK_INT(kb_akw02_parse(two_kids, strlen(two_kids), &rec, errstr, sizeof errstr), KB_AKW02_OK);
    CHECK_STR(errstr, "");
    CHECK_STR(rec.kenmerk_uitnodiging, "000004711235");
    CHECK_STR(rec.datum_aanvraag, "20240410");
    CHECK_STR(rec.bsn_aanvrager, "999996204");
    CHECK_STR(rec.bsn_partner, "999997105");
    CHECK_INT(rec.aantal_kinderen, 2);
    CHECK_STR(rec.kinderen[0].bsn, "999995303");
    CHECK_INT(rec.kinderen[0].relatie, 'E');
    CHECK_INT(rec.kinderen[0].inwonend, 'J');
    CHECK_STR(rec.kinderen[1].bsn, "999991012");
    CHECK_INT(rec.kinderen[1].relatie, 'A');
    CHECK_INT(rec.kinderen[1].inwonend, 'N');
    CHECK_STR(rec.iban, "NL91ABNA0417164300");
    CHECK_STR(rec.ingangskwartaal, "20242");

    CHECK_INT(strlen(one_kid), 79);
    CHECK_INT(kb_akw02_parse(one_kid, strlen(one_kid), &rec, errstr, sizeof errstr), KB_AKW02_OK);
    CHECK_STR(rec.bsn_partner, "");
    CHECK_INT(rec.aantal_kinderen, 1);
    CHECK_INT(rec.kinderen[0].relatie, 'P');
    CHECK_STR(rec.iban, "NO9386011117947");
    CHECK_STR(rec.ingangskwartaal, "20241");

    /* line ends are tolerated */
    char buf[128];
    snprintf(buf, sizeof buf, "%s\n", two_kids);
    CHECK_INT(kb_akw02_parse(buf, strlen(buf), &rec, NULL, 0), KB_AKW02_OK);
    snprintf(buf, sizeof buf, "%s\r\n", two_kids);
    CHECK_INT(kb_akw02_parse(buf, strlen(buf), &rec, NULL, 0), KB_AKW02_OK);
}

static void test_render_round_trip(void)
{
    struct kb_akw02 rec;
    char out[KB_AKW02_MAX_LEN + 1];
    size_t len = 0;

    CHECK_INT(kb_akw02_parse(two_kids, strlen(two_kids), &rec, NULL, 0), KB_AKW02_OK);
    CHECK_INT(kb_akw02_render(&rec, out, &len, NULL, 0), KB_AKW02_OK);
    CHECK_INT(len, 90);
    CHECK_STR(out, two_kids);
    CHECK_INT(kb_akw02_parse(one_kid, strlen(one_kid), &rec, NULL, 0), KB_AKW02_OK);
    CHECK_INT(kb_akw02_render(&rec, out, &len, NULL, 0), KB_AKW02_OK);
    CHECK_STR(out, one_kid);

    /* render refuses what parse would refuse */
    rec.kinderen[0].relatie = 'X';
    CHECK_INT(kb_akw02_render(&rec, out, &len, NULL, 0), KB_AKW02_FIELD);
    rec.kinderen[0].relatie = 'E';
    rec.aantal_kinderen = 0;
    CHECK_INT(kb_akw02_render(&rec, out, &len, NULL, 0), KB_AKW02_FIELD);
}

/* The 11-proef computed here on its own, to make test BSNs 99999xxxx. */
static int elfproef(const char *b)
{
    int s = 0;
    for (int i = 0; i < 8; i++)
        s += (b[i] - '0') * (9 - i);
    s -= b[8] - '0';
    return s % 11 == 0;
}

static void test_many_children(void)
{
    struct kb_akw02 rec, back;
    char out[KB_AKW02_MAX_LEN + 1];
    size_t len = 0;
    int n = 0;

    memset(&rec, 0, sizeof rec);
    strcpy(rec.kenmerk_uitnodiging, "000004711235");
    strcpy(rec.datum_aanvraag, "20240410");
    strcpy(rec.bsn_aanvrager, "999996204");
    strcpy(rec.iban, "NL02ABNA0123456789");
    strcpy(rec.ingangskwartaal, "20243");
    for (int i = 0; i < 10000 && n < KB_AKW02_MAX_KINDEREN; i++) {
        char b[10];
        snprintf(b, sizeof b, "99998%04d", i);
        if (!elfproef(b) || !strcmp(b, "999980000"))
            continue;
        strcpy(rec.kinderen[n].bsn, b);
        rec.kinderen[n].relatie = "EAP"[n % 3];
        rec.kinderen[n].inwonend = n % 2 ? 'N' : 'J';
        n++;
    }
    CHECK_INT(n, 99);
    rec.aantal_kinderen = 99;
    CHECK_INT(kb_akw02_render(&rec, out, &len, NULL, 0), KB_AKW02_OK);
    CHECK_INT(len, KB_AKW02_MAX_LEN);
    CHECK_INT(len, 68 + 99 * 11);
    CHECK_MEM(out + 43, 2, "99");
    CHECK_INT(kb_akw02_parse(out, len, &back, NULL, 0), KB_AKW02_OK);
    CHECK_INT(back.aantal_kinderen, 99);
    CHECK_STR(back.kinderen[98].bsn, rec.kinderen[98].bsn);
    CHECK_INT(back.kinderen[98].relatie, rec.kinderen[98].relatie);
    CHECK_STR(back.iban, "NL02ABNA0123456789");
}

/*
 * Parse @p line (@p len bytes), expect @p rule and an errstr containing
 * @p what and none of the record's personal values.
 */
static void expect(const char *line, size_t len, enum kb_akw02_rule rule, const char *what,
                   int lineno)
{
    static const char *const secrets[] = {"999996204", "999997105", "999995303", "999991012",
                                          "ABNA0417164300", "999996205", "999995304"};
    struct kb_akw02 rec;
    char errstr[256] = "";
    enum kb_akw02_rule got = kb_akw02_parse(line, len, &rec, errstr, sizeof errstr);

    CHECK_INT(got, rule);
    int leaked = 0;
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        leaked |= strstr(errstr, secrets[i]) != NULL;
    if (!strstr(errstr, what) || leaked) {
        fprintf(stderr, "  (from line %d) errstr \"%s\": want \"%s\"%s\n", lineno, errstr, what,
                leaked ? ", and no personal value" : "");
        CHECK(0);
    }
}

#define EXPECT(line, len, rule, what) expect(line, len, rule, what, __LINE__)

/* A copy of two_kids with @p repl written at 1-based column @p col. */
static const char *patched(int col, const char *repl)
{
    static char buf[128];
    memcpy(buf, two_kids, sizeof two_kids);
    memcpy(buf + col - 1, repl, strlen(repl));
    return buf;
}

#define EXPECTP(col, repl, rule, what) expect(patched(col, repl), 90, rule, what, __LINE__)

static void test_rejects(void)
{
    char buf[256];

    /* length */
    EXPECT(two_kids, 0, KB_AKW02_LENGTH, "0 bytes");
    EXPECT(two_kids, 4, KB_AKW02_LENGTH, "4 bytes");
    EXPECT(two_kids, 44, KB_AKW02_LENGTH, "44 bytes, shorter than its 45-byte header");
    EXPECT(two_kids, 89, KB_AKW02_LENGTH, "89 bytes, expected 90 (68 + 11 x 2 kinderen)");
    EXPECT(two_kids, 79, KB_AKW02_LENGTH, "79 bytes, expected 90");
    snprintf(buf, sizeof buf, "%s ", two_kids);
    EXPECT(buf, 91, KB_AKW02_LENGTH, "91 bytes, expected 90");
    snprintf(buf, sizeof buf, "%s\n\n", two_kids);
    EXPECT(buf, 92, KB_AKW02_LENGTH, "91 bytes"); /* one line end only */
    EXPECTP(44, "03", KB_AKW02_LENGTH, "expected 101 (68 + 11 x 3 kinderen)");
    EXPECTP(44, "01", KB_AKW02_LENGTH, "expected 79");

    /* record type */
    EXPECTP(1, "AKW01", KB_AKW02_RECORDTYPE, "recordtype (col 1-5): unknown record type");
    EXPECTP(1, "akw02", KB_AKW02_RECORDTYPE, "recordtype (col 1-5)");
    EXPECTP(1, "XXXXX", KB_AKW02_RECORDTYPE, "recordtype (col 1-5)");
    EXPECT("AKW03", 5, KB_AKW02_RECORDTYPE, "recordtype");

    /* aantal kinderen and other fields */
    EXPECTP(44, "00", KB_AKW02_FIELD, "aantal_kinderen (col 44-45): must be 01-99");
    EXPECTP(44, " 2", KB_AKW02_FIELD, "aantal_kinderen (col 44-45)");
    EXPECTP(44, "0x", KB_AKW02_FIELD, "aantal_kinderen (col 44-45)");
    EXPECTP(6, "00000471123 ", KB_AKW02_FIELD, "kenmerk_uitnodiging (col 6-17)");
    EXPECTP(55, "X", KB_AKW02_FIELD, "kind[1].relatie (col 55-55)");
    EXPECTP(56, "Y", KB_AKW02_FIELD, "kind[1].inwonend (col 56-56)");
    EXPECTP(66, "e", KB_AKW02_FIELD, "kind[2].relatie (col 66-66)");
    EXPECTP(67, "j", KB_AKW02_FIELD, "kind[2].inwonend (col 67-67)");

    /* dates */
    EXPECTP(18, "20230229", KB_AKW02_DATE, "datum_aanvraag (col 18-25): is not a calendar date");
    EXPECTP(18, "20240400", KB_AKW02_DATE, "datum_aanvraag (col 18-25)");
    EXPECTP(18, "2024041 ", KB_AKW02_DATE, "datum_aanvraag (col 18-25)");
    EXPECTP(18, "20241310", KB_AKW02_DATE, "datum_aanvraag (col 18-25)");
    EXPECTP(86, "20245", KB_AKW02_DATE, "ingangskwartaal (col 86-90)");
    EXPECTP(86, "20240", KB_AKW02_DATE, "ingangskwartaal (col 86-90)");
    EXPECTP(86, "19624", KB_AKW02_DATE, "ingangskwartaal (col 86-90)");
    EXPECTP(86, "2024 ", KB_AKW02_DATE, "ingangskwartaal (col 86-90)");

    /* BSNs */
    EXPECTP(26, "999996205", KB_AKW02_BSN, "bsn_aanvrager (col 26-34): fails the BSN 11-proef");
    EXPECTP(26, "000000000", KB_AKW02_BSN, "bsn_aanvrager (col 26-34)");
    EXPECTP(26, "         ", KB_AKW02_BSN, "bsn_aanvrager (col 26-34): must be 9 digits");
    EXPECTP(35, "999997106", KB_AKW02_BSN, "bsn_partner (col 35-43)");
    EXPECTP(35, "99999710 ", KB_AKW02_BSN, "bsn_partner (col 35-43)");
    EXPECTP(35, "999996204", KB_AKW02_BSN, "bsn_partner (col 35-43): must differ");
    EXPECTP(46, "999995304", KB_AKW02_BSN, "kind[1].bsn (col 46-54)");
    EXPECTP(57, "999995303", KB_AKW02_BSN, "kind[2].bsn (col 57-65): repeats an earlier child");
    EXPECTP(57, "999996204", KB_AKW02_BSN, "kind[2].bsn (col 57-65): is the BSN of a parent");
    EXPECTP(46, "999997105", KB_AKW02_BSN, "kind[1].bsn (col 46-54): is the BSN of a parent");

    /* IBAN */
    EXPECTP(68, "NL92", KB_AKW02_IBAN, "iban (col 68-85): check digits wrong (ISO 13616 mod-97)");
    EXPECTP(76, "0417164301", KB_AKW02_IBAN, "iban (col 68-85): check digits wrong");
    EXPECTP(68, "nl91abna", KB_AKW02_IBAN, "iban (col 68-85): only capital letters and digits");
    EXPECTP(68, " NL91ABNA041716430", KB_AKW02_IBAN, "iban (col 68-85): must be left-aligned");
    EXPECTP(68, "NL91ABNA04171643  ", KB_AKW02_IBAN, "iban (col 68-85)"); /* 16: bad check */
    EXPECTP(68, "NL91 ABNA04171643 ", KB_AKW02_IBAN, "no inner spaces");
    EXPECTP(68, "NL91ABNA0417      ", KB_AKW02_IBAN, "15 to 18 characters");
    EXPECTP(68, "                  ", KB_AKW02_IBAN, "15 to 18 characters");
    EXPECTP(68, "9191ABNA0417164300", KB_AKW02_IBAN, "iban (col 68-85)");

    /* a NUL inside the record is just a wrong byte */
    memcpy(buf, two_kids, 90);
    buf[30] = '\0';
    EXPECT(buf, 90, KB_AKW02_BSN, "bsn_aanvrager");

    CHECK_INT(kb_akw02_parse(NULL, 10, &(struct kb_akw02){0}, NULL, 0), KB_AKW02_FIELD);
    CHECK_INT(kb_akw02_parse(two_kids, 90, NULL, NULL, 0), KB_AKW02_FIELD);
}

static void test_rule_names_and_iban(void)
{
    CHECK_STR(kb_akw02_rule_name(KB_AKW02_LENGTH), "akw02-length");
    CHECK_STR(kb_akw02_rule_name(KB_AKW02_RECORDTYPE), "akw02-recordtype");
    CHECK_STR(kb_akw02_rule_name(KB_AKW02_BSN), "akw02-bsn");
    CHECK_STR(kb_akw02_rule_name(KB_AKW02_IBAN), "akw02-iban");
    CHECK_STR(kb_akw02_rule_name(KB_AKW02_DATE), "akw02-date");
    CHECK_STR(kb_akw02_rule_name(KB_AKW02_FIELD), "akw02-field");

    /* ISO 13616 examples (registry documentation IBANs) */
    CHECK_INT(kb_akw_iban_check("NL91ABNA0417164300", 18), 1);
    CHECK_INT(kb_akw_iban_check("BE68539007547034", 16), 1);
    CHECK_INT(kb_akw_iban_check("NO9386011117947", 15), 1);
    CHECK_INT(kb_akw_iban_check("DE89370400440532013000", 22), 1);
    CHECK_INT(kb_akw_iban_check("NL91ABNA0417164301", 18), 0);
    CHECK_INT(kb_akw_iban_check("NL19ABNA0417164300", 18), 0); /* swapped check digits */
    CHECK_INT(kb_akw_iban_check("NL91ABNA041716430", 17), 0);
    CHECK_INT(kb_akw_iban_check("NL9xABNA0417164300", 18), 0);
    CHECK_INT(kb_akw_iban_check("NL91", 4), 0);
}

int main(void)
{
    test_parse_valid();
    test_render_round_trip();
    test_many_children();
    test_rejects();
    test_rule_names_and_iban();
    KB_TEST_DONE();
}
