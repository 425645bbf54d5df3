/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_lo3.c - the LO3 parser against the project's fixtures of
 * protocols.md §1.10 (every element checked), one synthetic message per
 * header shape of Appendix A, and each way a message can be malformed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "lo3.h"

/* §1.10 Lg01, exactly 952 bytes (adjacent literals, no separators). */
static const char LG01[] =
    "27364018Lg01202403181015302507194601014000000000000898"
    "011820110010719460101401200099999953030210013Sophie Marije0230003van0240004Dijk"
    "03100082024031503200040344033000460300410001V6110001E8110004034481200071AA0123"
    "851000820240315861000820240318"
    "021780110010528130127401200099999962040210010Anna Maria0240006Bakker"
    "03100081992070403200040599033000460300410001V6210008202403158110004034481200071AA0123"
    "851000820240315861000820240318"
    "031860110010364790108001200099999971050210010Pieter Jan0230003van0240004Dijk"
    "03100081990021103200040363033000460300410001M6210008202403158110004034481200071AA0123"
    "851000820240315861000820240318"
    "04051051000400016310003017851000820240315861000820240318"
    "070586810008202403157010001080100040001802001720240318101530250"
    "08213091000403440920008202403151010001W1030008202403151110011Proefstraat"
    "1115011Proefstraat1120002121130001A11600063512AB1170007Utrecht"
    "11800160344010000912345119001603442000009123457210001G851000820240315861000820240318";

/* §1.10 Gv01 to SVB on the mother's PL, exactly 203 bytes. */
static const char GV01[] =
    "00000000Gv01528130127400176"
    "091660110010719460101401200099999953030210013Sophie Marije0230003van0240004Dijk"
    "03100082024031503200040344033000460308110004034481200071AA0123"
    "85100082024031586100082024031859000";

/* Expected element: GGEE, value, byte offset of the element number. */
struct want_el {
    uint16_t nummer;
    const char *value;
    size_t offset;
};

/* Expected category: number, length field, offset, stapel, its elements. */
struct want_cat {
    uint8_t nummer;
    size_t len;
    size_t offset;
    size_t stapel;
    size_t count;
    const struct want_el *els;
};

/* Offsets as in the field-by-field table of protocols.md §1.10; kept as grids. */
/* clang-format off */
static const struct want_el lg_c01[] = {
    {110, "7194601014", 59}, {120, "999995303", 76},  {210, "Sophie Marije", 92},
    {230, "van", 112},       {240, "Dijk", 122},      {310, "20240315", 133},
    {320, "0344", 148},      {330, "6030", 159},      {410, "V", 170},
    {6110, "E", 178},        {8110, "0344", 186},     {8120, "1AA0123", 197},
    {8510, "20240315", 211}, {8610, "20240318", 226},
};
static const struct want_el lg_c02[] = {
    {110, "5281301274", 246}, {120, "999996204", 263}, {210, "Anna Maria", 279},
    {240, "Bakker", 296},     {310, "19920704", 309},  {320, "0599", 324},
    {330, "6030", 335},       {410, "V", 346},         {6210, "20240315", 354},
    {8110, "0344", 369},      {8120, "1AA0123", 380},  {8510, "20240315", 394},
    {8610, "20240318", 409},
};
static const struct want_el lg_c03[] = {
    {110, "3647901080", 429}, {120, "999997105", 446}, {210, "Pieter Jan", 462},
    {230, "van", 479},        {240, "Dijk", 489},      {310, "19900211", 500},
    {320, "0363", 515},       {330, "6030", 526},      {410, "M", 537},
    {6210, "20240315", 545},  {8110, "0344", 560},     {8120, "1AA0123", 571},
    {8510, "20240315", 585},  {8610, "20240318", 600},
};
static const struct want_el lg_c04[] = {
    {510, "0001", 620},
    {6310, "017", 631},
    {8510, "20240315", 641},
    {8610, "20240318", 656},
};
static const struct want_el lg_c07[] = {
    {6810, "20240315", 676},
    {7010, "0", 691},
    {8010, "0001", 699},
    {8020, "20240318101530250", 710},
};
static const struct want_el lg_c08[] = {
    {910, "0344", 739},
    {920, "20240315", 750},
    {1010, "W", 765},
    {1030, "20240315", 773},
    {1110, "Proefstraat", 788},
    {1115, "Proefstraat", 806},
    {1120, "12", 824},
    {1130, "A", 833},
    {1160, "3512AB", 841},
    {1170, "Utrecht", 854},
    {1180, "0344010000912345", 868},
    {1190, "0344200000912345", 891},
    {7210, "G", 914},
    {8510, "20240315", 922},
    {8610, "20240318", 937},
};
#define N(a) (sizeof(a) / sizeof((a)[0]))
static const struct want_cat lg_cats[] = {
    {1, 182, 54, 0, N(lg_c01), lg_c01},  {2, 178, 241, 1, N(lg_c02), lg_c02},
    {3, 186, 424, 2, N(lg_c03), lg_c03}, {4, 51, 615, 3, N(lg_c04), lg_c04},
    {7, 58, 671, 4, N(lg_c07), lg_c07},  {8, 213, 734, 5, N(lg_c08), lg_c08},
};

static const struct want_el gv_c09[] = {
    {110, "7194601014", 32}, {120, "999995303", 49},  {210, "Sophie Marije", 65},
    {230, "van", 85},        {240, "Dijk", 95},       {310, "20240315", 106},
    {320, "0344", 121},      {330, "6030", 132},      {8110, "0344", 143},
    {8120, "1AA0123", 154},  {8510, "20240315", 168}, {8610, "20240318", 183},
};
static const struct want_cat gv_cats[] = {
    {9, 166, 27, 0, N(gv_c09), gv_c09},
    {59, 0, 198, 0, 0, NULL},
};
/* clang-format on */

static kb_err_t parse_str(const char *s, struct kb_lo3_message *msg, char *err, size_t errsz)
{
    return kb_lo3_parse((const uint8_t *)s, strlen(s), msg, err, errsz);
}

/* The category length field is the sum of its element frames. */
static size_t cat_bytes(const struct kb_lo3_message *msg, const struct kb_lo3_category *cat)
{
    size_t n = 0;
    for (size_t i = 0; i < cat->count; i++)
        n += 7 + msg->elements[cat->first + i].len;
    return n;
}

static void check_cats(const struct kb_lo3_message *msg, const struct want_cat *want, size_t n)
{
    CHECK_INT(msg->n_categories, n);
    if (msg->n_categories != n)
        return;
    size_t total = 0;
    for (size_t c = 0; c < n; c++) {
        const struct kb_lo3_category *cat = &msg->categories[c];
        CHECK_INT(cat->nummer, want[c].nummer);
        CHECK_INT(cat->offset, want[c].offset);
        CHECK_INT(cat->stapel, want[c].stapel);
        CHECK_INT(cat->count, want[c].count);
        CHECK_INT(cat->first, total);
        CHECK_INT(cat_bytes(msg, cat), want[c].len);
        total += cat->count;
        if (cat->count != want[c].count)
            continue;
        for (size_t e = 0; e < cat->count; e++) {
            const struct kb_lo3_element *el = &msg->elements[cat->first + e];
            CHECK_INT(el->nummer, want[c].els[e].nummer);
            CHECK_MEM(el->value, el->len, want[c].els[e].value);
            CHECK_INT(el->offset, want[c].els[e].offset);
            /* the lookup finds the same element */
            CHECK(kb_lo3_element(msg, c, want[c].els[e].nummer) == el);
        }
    }
    CHECK_INT(msg->n_elements, total);
}

static void check_header(const struct kb_lo3_message *msg, const char *name, const char *value)
{
    const struct kb_lo3_header_field *h = kb_lo3_header(msg, name);
    CHECK(h != NULL);
    if (h)
        CHECK_MEM(h->value, h->len, value);
}

static void test_lg01(void)
{
    struct kb_lo3_message msg;
    char err[256];

    CHECK_INT(strlen(LG01), 952);
    CHECK_INT(parse_str(LG01, &msg, err, sizeof err), KB_OK);
    CHECK_STR(msg.random_key, "27364018");
    CHECK_STR(msg.type, "Lg01");
    CHECK_INT(msg.has_body, 1);
    CHECK_INT(msg.n_header, 3);
    CHECK_STR(msg.header[0].name, "datumTijd");
    CHECK_STR(msg.header[1].name, "aNummer");
    CHECK_STR(msg.header[2].name, "oudANummer");
    check_header(&msg, "datumTijd", "20240318101530250");
    check_header(&msg, "aNummer", "7194601014");
    check_header(&msg, "oudANummer", "0000000000");
    CHECK(kb_lo3_header(&msg, "status") == NULL);
    CHECK_INT(msg.header[1].value - (const uint8_t *)LG01, 29);
    check_cats(&msg, lg_cats, N(lg_cats));
    CHECK_INT(msg.n_elements, 14 + 13 + 14 + 4 + 4 + 15);
    /* values are slices of the caller's buffer */
    CHECK(msg.elements[0].value == (const uint8_t *)LG01 + 66);
    CHECK(kb_lo3_element(&msg, 0, 9999) == NULL);
    CHECK(kb_lo3_element(&msg, 6, 110) == NULL);
    kb_lo3_message_fini(&msg);
    CHECK(msg.categories == NULL && msg.elements == NULL && msg.n_categories == 0);
}

static void test_gv01(void)
{
    struct kb_lo3_message msg;
    char err[256];

    CHECK_INT(strlen(GV01), 203);
    CHECK_INT(parse_str(GV01, &msg, err, sizeof err), KB_OK);
    CHECK_STR(msg.random_key, "00000000");
    CHECK_STR(msg.type, "Gv01");
    CHECK_INT(msg.n_header, 1);
    check_header(&msg, "aNummer", "5281301274");
    CHECK_INT(msg.has_body, 1);
    check_cats(&msg, gv_cats, N(gv_cats));
    CHECK_INT(msg.n_elements, 12);
    kb_lo3_message_fini(&msg);
}

/* One message per header shape of Appendix A. */
#define BODY "00016010110240004Dijk" /* cat 01 with 02.40 = Dijk */

struct shape {
    const char *msg;     /* the message */
    const char *type;    /* expected berichtnummer */
    int has_body;        /* expected has_body */
    size_t n_categories; /* expected categories */
    const char *header;  /* expected fields "name=value|name=value" in order */
};

static const struct shape shapes[] = {
    {"00000000Af01H00000000000000" BODY, "Af01", 1, 1,
     "foutreden=H|gemeente=0000|aNummer=0000000000"},
    {"00000000Tf01X03445281301274" BODY, "Tf01", 1, 1,
     "foutreden=X|gemeente=0344|aNummer=5281301274"},
    {"00000000Ag01A00000000" BODY, "Ag01", 1, 1, "status=A|datum=00000000"},
    {"00000000Ag21E20180330" BODY, "Ag21", 1, 1, "status=E|datum=20180330"},
    {"00000000Sv01A00000000" BODY, "Sv01", 1, 1, "status=A|datum=00000000"},
    {"00000000Ap010" BODY, "Ap01", 1, 1, "herhaling=0"},
    {"00000000Tv011" BODY, "Tv01", 1, 1, "herhaling=1"},
    {"00000000Ib010A00000000" BODY, "Ib01", 1, 1, "herhaling=0|status=A|datum=00000000"},
    {"00000000Gv025281301274" BODY, "Gv02", 1, 1, "aNummer=5281301274"},
    {"00000000Ng01" BODY, "Ng01", 1, 1, ""},
    {"00000000La01" BODY, "La01", 1, 1, ""},
    {"00000000Lf01A0344" BODY, "Lf01", 1, 1, "foutreden=A|gemeente=0344"},
    {"00000000Rf01B" BODY, "Rf01", 1, 1, "foutreden=B"},
    {"00000000Hq010002010110010120" BODY, "Hq01", 1, 1, "herhaling=0|rubrieken=002010110010120"},
    {"00000000Hq010000" BODY, "Hq01", 1, 1, "herhaling=0|rubrieken=000"},
    {"00000000Xq010001081160WA" BODY, "Xq01", 1, 1,
     "herhaling=0|rubrieken=001081160|adresfunctie=W|identificatie=A"},
    {"00000000Hf01G03445281301274001010120" BODY, "Hf01", 1, 1,
     "foutreden=G|gemeente=0344|aNummer=5281301274|rubrieken=001010120"},
    {"00000000Xf01P001081160AA" BODY, "Xf01", 1, 1,
     "foutreden=P|rubrieken=001081160|adresfunctie=A|identificatie=A"},
    {"00000000Xa01" BODY BODY, "Xa01", 1, 2, ""},
    {"00000000Tb010K1AA0123" BODY, "Tb01", 1, 1,
     "herhaling=0|gezochtePersoon=K|aktenummer=1AA0123"},
    {"00000000Tb020001010310"
     "1AA0123" BODY,
     "Tb02", 1, 1, "herhaling=0|rubrieken=001010310|aktenummer=1AA0123"},
    {"00000000Wa010292929292920211002" BODY, "Wa01", 1, 1,
     "herhaling=0|aNummer=2929292929|datumGeldigheid=20211002"},
    {"00000000Wa11292929292920211002" BODY, "Wa11", 1, 1,
     "aNummer=2929292929|datumGeldigheid=20211002"},
    {"00000000Og1105281301274" BODY, "Og11", 1, 1, "herhaling=0|aNummer=5281301274"},
    {"00000000Of11G"
     "00000000"
     "0000"
     "0000000000",
     "Of11", 0, 0, "foutreden=G|datum=00000000|gemeente=0000|aNummer=0000000000"},
    {"00000000Of11G"
     "00000000"
     "0000"
     "0000000000"
     "00000",
     "Of11", 1, 0, "foutreden=G|datum=00000000|gemeente=0000|aNummer=0000000000"},
    {"00000000Cb0102537022015090120240201", "Cb01", 0, 0,
     "herhaling=0|afnemersindicatie=253702|datumIngang=20150901|datumEinde=20240201"},
    {"00000000Ct010"
     "00012regel|a|b|c",
     "Ct01", 0, 0, "herhaling=0|autorisatietabelregel=00012regel|a|b|c"},
    {"00000000Cw010253702201509012024020100003a|b", "Cw01", 0, 0,
     "herhaling=0|afnemersindicatie=253702|datumIngang=20150901|datumEinde=20240201|"
     "autorisatietabelregel=00003a|b"},
    {"00000000Dt01037"
     "0008737",
     "Dt01", 0, 0, "herhaling=0|teWijzigenTabel=37|tabelData=0008737"},
    {"00000000Dw01033"
     "X",
     "Dw01", 0, 0, "herhaling=0|teWijzigenTabel=33|tabelData=X"},
    {"00000000Vb0100012Hallo wereld", "Vb01", 0, 0, "vrijeTekst=Hallo wereld"},
    {"00000000Vb0100000", "Vb01", 0, 0, "vrijeTekst="},
    {"00000000Vb020344010059901000005Hallo", "Vb02", 0, 0,
     "communicatiepartnerAan=0344010|communicatiepartnerVan=0599010|vrijeTekst=Hallo"},
    {"00000000Pf0100000", "Pf01", 1, 0, ""},
    {"00000000Pf0300000", "Pf03", 1, 0, ""},
    {"00000000Sv11", "Sv11", 0, 0, ""},
    {"00000000Sv1100000", "Sv11", 1, 0, ""},
    {"00000000Null", "Null", 0, 0, ""},
    {"", "Null", 0, 0, ""},
};

/* Compare the header with "name=value|name=value" (values contain no '|'
 * except in the tail field, which is matched by its known length). */
static void check_shape(const struct shape *s)
{
    struct kb_lo3_message msg;
    char err[256] = "";
    kb_err_t rc = parse_str(s->msg, &msg, err, sizeof err);

    CHECK_INT(rc, KB_OK);
    if (rc != KB_OK) {
        fprintf(stderr, "  %s: %s\n", s->type, err);
        return;
    }
    CHECK_STR(msg.type, s->type);
    CHECK_INT(msg.has_body, s->has_body);
    CHECK_INT(msg.n_categories, s->n_categories);

    /* rebuild the header text from the parse and compare as a whole */
    char got[512] = "";
    size_t o = 0;
    for (size_t i = 0; i < msg.n_header; i++) {
        int w = snprintf(got + o, sizeof got - o, "%s%s=%.*s", i ? "|" : "", msg.header[i].name,
                         (int)msg.header[i].len, (const char *)msg.header[i].value);
        if (w < 0 || (size_t)w >= sizeof got - o)
            break;
        o += (size_t)w;
    }
    CHECK_STR(got, s->header);
    kb_lo3_message_fini(&msg);
}

static void test_shapes(void)
{
    for (size_t i = 0; i < N(shapes); i++)
        check_shape(&shapes[i]);

    /* random key of a real message; empty one for the zero-byte Null */
    struct kb_lo3_message msg;
    CHECK_INT(kb_lo3_parse(NULL, 0, &msg, NULL, 0), KB_OK);
    CHECK_STR(msg.type, "Null");
    CHECK_STR(msg.random_key, "");
    CHECK_INT(msg.n_header, 0);
    kb_lo3_message_fini(&msg);
}

/* Stapels: actual opens one, its historical ones join it, a repeat opens a new one. */
static void test_stapels(void)
{
    static const char m[] = "00000000Ag01A00000000"
                            "00052"
                            "01000"
                            "51000"
                            "51000"
                            "02007"
                            "0240000"
                            "09000"
                            "59000"
                            "09000"
                            "59000"
                            "12000";
    static const uint8_t nrs[] = {1, 51, 51, 2, 9, 59, 9, 59, 12};
    static const size_t stapels[] = {0, 0, 0, 1, 2, 2, 3, 3, 4};
    struct kb_lo3_message msg;
    char err[256];

    CHECK_INT(parse_str(m, &msg, err, sizeof err), KB_OK);
    CHECK_INT(msg.n_categories, N(nrs));
    for (size_t i = 0; i < msg.n_categories && i < N(nrs); i++) {
        CHECK_INT(msg.categories[i].nummer, nrs[i]);
        CHECK_INT(msg.categories[i].stapel, stapels[i]);
    }
    /* the empty element of cat 02 is present with length 0 */
    const struct kb_lo3_element *el = kb_lo3_element(&msg, 3, 240);
    CHECK(el != NULL);
    if (el)
        CHECK_INT(el->len, 0);
    CHECK_INT(msg.categories[0].count, 0);
    kb_lo3_message_fini(&msg);

    /* Xa01: each body starts its own stapels; indexes keep counting */
    CHECK_INT(parse_str("00000000Xa01"
                        "0001001000"
                        "51000"
                        "0000501000",
                        &msg, err, sizeof err),
              KB_OK);
    CHECK_INT(msg.n_categories, 3);
    if (msg.n_categories == 3) {
        CHECK_INT(msg.categories[1].stapel, 0);
        CHECK_INT(msg.categories[2].stapel, 1);
    }
    kb_lo3_message_fini(&msg);
    /* ... so a historical category cannot continue the previous body's stapel */
    CHECK_INT(parse_str("00000000Xa01"
                        "0000501000"
                        "0000551000",
                        &msg, err, sizeof err),
              KB_ERR_INVALID);
    CHECK(strstr(err, "offset 27: historical category 51") != NULL);
}

struct bad {
    const char *msg;  /* malformed message */
    const char *want; /* substring the errstr must contain */
};

static const struct bad bads[] = {
    /* lengths */
    {"27364018Lg01"
     "20240318101530250"
     "7194601014"
     "0000000000"
     "00022"
     "01182"
     "01100107194601014",
     "offset 54: category length 182 exceeds remaining 17 bytes"},
    {"00000000Gv01528130127400177"
     "09011"
     "0240004Dijk"
     "59000",
     "offset 22: body length 177 does not match the 21 bytes that follow"},
    {"00000000Gv01528130127400020"
     "09011"
     "0240004Dijk"
     "59000",
     "offset 22: body length 20 does not match the 21 bytes that follow"},
    {"00000000Gv01528130127400016"
     "09011"
     "0240004Dijk"
     "59000"
     "X",
     "offset 22: body length 16 does not match the 22 bytes that follow"},
    {"00000000Gv01528130127400016"
     "09010"
     "0240004Dijk",
     "offset 32: element 0240 length 4 exceeds remaining 3 bytes of category 09"},
    {"00000000Gv01528130127400016"
     "09012"
     "0240004Dijk",
     "offset 27: category length 12 exceeds remaining 11 bytes"},
    {"00000000Gv01528130127400016"
     "09009"
     "0240002Di"
     "59",
     "offset 41: category header needs 5 bytes, 2 remain in body"},
    {"00000000Gv01528130127400010"
     "09005"
     "02400",
     "offset 32: element header needs 7 bytes, 5 remain in category 09"},
    {"00000000Gv01528130127400016"
     "09011"
     "0240003Dijk",
     "offset 42: element header needs 7 bytes, 1 remain in category 09"},
    /* non-digits */
    {"00000000Gv0152813012740001x"
     "09011"
     "0240004Dijk",
     "offset 22: body length is not 5 ASCII digits"},
    {"00000000Gv01528130127400016"
     "0901a"
     "0240004Dijk",
     "offset 29: category length is not 3 ASCII digits"},
    {"00000000Gv01528130127400016"
     "x9011"
     "0240004Dijk",
     "offset 27: category number is not 2 ASCII digits"},
    {"00000000Gv01528130127400016"
     "09011"
     "02400x4Dijk",
     "offset 36: element length is not 3 ASCII digits"},
    {"00000000Gv01528130127400016"
     "09011"
     "02-0004Dijk",
     "offset 32: element number is not 4 ASCII digits"},
    {"00000000Gv01528130127 00016"
     "09011"
     "0240004Dijk",
     "offset 12: header field aNummer must be 10 ASCII digits"},
    {"0000000xGv015281301274"
     "00000",
     "offset 0: random key is not 8 ASCII digits"},
    {"00000000Ag01A2024031x" BODY, "offset 13: header field datum must be 8 ASCII digits"},
    {"00000000Hq010002010110x10120" BODY, "offset 22: rubriek 2 of rubrieken is not 6"},
    {"00000000Hq010a02" BODY, "offset 13: count of rubrieken is not 3 ASCII digits"},
    {"00000000Vb010001xHallo", "offset 12: length of vrijeTekst is not 5 ASCII digits"},
    /* truncation and trailing bytes */
    {"00000000Lg0120240318", "offset 12: header field datumTijd needs 17 bytes, 8 remain"},
    {"00000000Gv015281301274", "offset 22: body length needs 5 bytes, 0 remain"},
    {"00000000Gv01528130127", "offset 12: header field aNummer needs 10 bytes, 9 remain"},
    {"00000000Gv0", "offset 0: message of 11 bytes is shorter than"},
    {"00000000Hq010999010110" BODY, "offset 16: 999 rubrieken need 5994 bytes"},
    {"00000000Vb0100013Hallo wereld", "offset 12: vrijeTekst length 13 exceeds remaining 12"},
    {"00000000Vb0100005HalloX", "offset 22: 1 trailing bytes after Vb01"},
    {"00000000Null0", "offset 12: 1 trailing bytes after Null"},
    {"00000000Cb01025370220150901202402010", "offset 35: body length needs 5 bytes, 1 remain"},
    {"00000000Ct010", "offset 13: header field autorisatietabelregel is missing"},
    {"00000000Xa01", "offset 12: body length needs 5 bytes, 0 remain"},
    {"00000000Xa01" BODY "0001", "offset 33: body length needs 5 bytes, 4 remain"},
    {"00000000Xa01"
     "00017"
     "010110240004Dijk",
     "offset 12: body length 17 does not match the 16 bytes that follow"},
    /* stapels and category numbers */
    {"00000000Gv01528130127400005"
     "59000",
     "offset 27: historical category 59 without preceding actual category 09"},
    {"00000000Gv01528130127400010"
     "09000"
     "58000",
     "offset 32: historical category 58 without preceding actual category 08"},
    {"00000000Ag01A00000000"
     "00015"
     "01000"
     "02000"
     "51000",
     "offset 36: historical category 51 without preceding actual category 01"},
    {"00000000Ag01A00000000"
     "00005"
     "00000",
     "offset 26: category number 00 is not valid"},
    {"00000000Ag01A00000000"
     "00005"
     "50000",
     "offset 26: category number 50 is not valid"},
    /* kinds */
    {"00000000Zz99" BODY, "offset 8: unknown berichtnummer \"Zz99\""},
    {"00000000lg01" BODY, "offset 8: unknown berichtnummer \"lg01\""},
    {"00000000\x01\xc8\"\\" BODY, "offset 8: unknown berichtnummer \"\\x01\\xc8\\x22\\x5c\""},
};

static void test_malformed(void)
{
    for (size_t i = 0; i < N(bads); i++) {
        struct kb_lo3_message msg;
        char err[256] = "";
        kb_err_t rc = parse_str(bads[i].msg, &msg, err, sizeof err);
        CHECK_INT(rc, KB_ERR_INVALID);
        if (!strstr(err, bads[i].want)) {
            fprintf(stderr, "case %zu: errstr \"%s\", want \"%s\"\n", i, err, bads[i].want);
            CHECK(0);
        }
        /* a failed parse leaves nothing behind */
        CHECK(msg.categories == NULL && msg.elements == NULL);
        CHECK_INT(msg.n_categories + msg.n_elements + msg.n_header, 0);
        kb_lo3_message_fini(&msg);
    }

    /* errstr is optional and truncated safely */
    struct kb_lo3_message msg;
    char tiny[8];
    CHECK_INT(parse_str("00000000Zz99", &msg, NULL, 0), KB_ERR_INVALID);
    CHECK_INT(parse_str("00000000Zz99", &msg, tiny, sizeof tiny), KB_ERR_INVALID);
    CHECK_INT(strlen(tiny), sizeof tiny - 1);

    /* no personal data in errors: the value of a name never appears */
    char err[256];
    CHECK_INT(parse_str("00000000Gv01528130127400016"
                        "09010"
                        "0240004Dijk",
                        &msg, err, sizeof err),
              KB_ERR_INVALID);
    CHECK(strstr(err, "Dijk") == NULL && strstr(err, "5281301274") == NULL);

    /* fini is safe on a zeroed message */
    struct kb_lo3_message zero;
    memset(&zero, 0, sizeof zero);
    kb_lo3_message_fini(&zero);
    kb_lo3_message_fini(NULL);
    CHECK(kb_lo3_header(NULL, "aNummer") == NULL);
    CHECK(kb_lo3_element(NULL, 0, 110) == NULL);
}

static void test_caps(void)
{
    struct kb_lo3_message msg;
    char err[256];

    /* size cap is checked before anything else */
    size_t big = 8u * 1024u * 1024u + 1;
    uint8_t *buf = malloc(big);
    CHECK(buf != NULL);
    if (!buf)
        return;
    memset(buf, '0', big);
    CHECK_INT(kb_lo3_parse(buf, big, &msg, err, sizeof err), KB_ERR_INVALID);
    CHECK(strstr(err, "exceeds the limit of 8388608 bytes") != NULL);
    free(buf);

    /* element cap: Xa01 bodies of 100 categories x 142 empty elements */
    const size_t per_cat = 142, cats_per_body = 100, bodies = 8;
    size_t body_len = cats_per_body * (5 + per_cat * 7);
    size_t len = 12 + bodies * (5 + body_len);
    buf = malloc(len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    size_t o = 0;
    memcpy(buf, "00000000Xa01", 12);
    o = 12;
    for (size_t b = 0; b < bodies; b++) {
        o += (size_t)sprintf((char *)buf + o, "%05zu", body_len);
        for (size_t c = 0; c < cats_per_body; c++) {
            o += (size_t)sprintf((char *)buf + o, "01%03zu", per_cat * 7);
            for (size_t e = 0; e < per_cat; e++) {
                memcpy(buf + o, "0110000", 7);
                o += 7;
            }
        }
    }
    CHECK_INT(o, len);
    CHECK_INT(kb_lo3_parse(buf, len, &msg, err, sizeof err), KB_ERR_INVALID);
    CHECK(strstr(err, "more than 100000 elements in one message") != NULL);
    /* one body less is within the cap: 7 x 14200 = 99400 elements */
    size_t seven = 12 + 7 * (5 + body_len);
    CHECK_INT(kb_lo3_parse(buf, seven, &msg, err, sizeof err), KB_OK);
    CHECK_INT(msg.n_elements, 99400);
    CHECK_INT(msg.n_categories, 700);
    CHECK_INT(msg.categories[699].stapel, 699);
    kb_lo3_message_fini(&msg);
    free(buf);
}

int main(void)
{
    test_lg01();
    test_gv01();
    test_shapes();
    test_stapels();
    test_malformed();
    test_caps();
    KB_TEST_DONE();
}
