/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_join.c - the two-event join behind an AKW01 invitation (see
 * svb_join.h). State files are JSON (jansson); they hold personal data and
 * live only in the SVB adapter's own spool, as SVB's copy of what it is
 * entitled to receive.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "akw.h"
#include "ketenbus/log.h"
#include "svb_join.h"

#define COMP "svb"

kb_err_t kb_svb_init(struct kb_svb *s, const char *spool_dir, const uint8_t *key,
                     size_t key_len, char *errstr, size_t errstr_size)
{
    memset(s, 0, sizeof *s);
    kb_err_t err = kb_spool_open(&s->spool, spool_dir, errstr, errstr_size);
    if (err)
        return err;
    snprintf(s->state_dir, sizeof s->state_dir, "%s/state", s->spool.dir);
    if (mkdir(s->state_dir, 0750) != 0 && errno != EEXIST)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot create %s: %s", s->state_dir,
                          strerror(errno));
    s->key = key;
    s->key_len = key_len;
    s->kanaal = 'D';
    return KB_OK;
}

static kb_err_t get(avro_value_t *v, const char *path, char *out, size_t cap, int required,
                    char *errstr, size_t errstr_size)
{
    kb_err_t err = kb_value_get_string(v, path, out, cap);
    if (err == KB_ERR_NOTFOUND && !required) {
        out[0] = '\0';
        return KB_OK;
    }
    if (err)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "field %s: %s", path,
                          err == KB_ERR_NOTFOUND ? "missing" : "unusable");
    return KB_OK;
}

static kb_err_t save_json(const char *path, json_t *j)
{
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    if (!text)
        return KB_ERR_NOMEM;
    kb_err_t err = kb_file_write_atomic(path, text, strlen(text));
    free(text);
    return err;
}

static kb_err_t store_birth(struct kb_svb *s, const struct kb_event_attrs *attrs,
                            avro_value_t *v, char child[KB_PSEUDONYM_LEN + 1], char *errstr,
                            size_t errstr_size)
{
    char bsn[16], datum[16], gemeente[8];
    kb_err_t err = get(v, "kind.bsn", bsn, sizeof bsn, 1, errstr, errstr_size);
    if (!err)
        err = get(v, "kind.geboortedatum", datum, sizeof datum, 1, errstr, errstr_size);
    if (!err)
        err = get(v, "inschrijving.gemeente", gemeente, sizeof gemeente, 1, errstr, errstr_size);
    if (err)
        return err;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:[]}", "eventId", attrs->id, "bsnKind", bsn,
                          "geboortedatumKind", datum, "gemeenteKind", gemeente, "ouders");
    if (!j)
        return KB_ERR_NOMEM;
    avro_value_t ouders;
    size_t n = 0;
    if (avro_value_get_by_name(v, "ouders", &ouders, NULL) == 0)
        avro_value_get_size(&ouders, &n);
    for (size_t i = 0; i < n && !err; i++) {
        avro_value_t o;
        avro_value_get_by_index(&ouders, i, &o, NULL);
        char anr[16], obsn[16], voornamen[1024], voorvoegsel[256], naam[1024];
        err = get(&o, "persoon.aNummer", anr, sizeof anr, 0, errstr, errstr_size);
        if (!err)
            err = get(&o, "persoon.bsn", obsn, sizeof obsn, 0, errstr, errstr_size);
        if (!err)
            err = get(&o, "persoon.voornamen", voornamen, sizeof voornamen, 0, errstr,
                      errstr_size);
        if (!err)
            err = get(&o, "persoon.voorvoegsel", voorvoegsel, sizeof voorvoegsel, 0, errstr,
                      errstr_size);
        if (!err)
            err = get(&o, "persoon.geslachtsnaam", naam, sizeof naam, 0, errstr, errstr_size);
        if (!err)
            json_array_append_new(json_object_get(j, "ouders"),
                                  json_pack("{s:s, s:s, s:s, s:s, s:s}", "aNummer", anr, "bsn",
                                            obsn, "voornamen", voornamen, "voorvoegsel",
                                            voorvoegsel, "geslachtsnaam", naam));
    }
    if (!err) {
        kb_event_pseudonym(s->key, s->key_len, "bsn", bsn, child);
        char path[2300];
        snprintf(path, sizeof path, "%s/geboren-%s.json", s->state_dir, child);
        err = save_json(path, j);
    }
    json_decref(j);
    return err;
}

static kb_err_t store_kind(struct kb_svb *s, const struct kb_event_attrs *attrs,
                           avro_value_t *v, char child[KB_PSEUDONYM_LEN + 1], char *errstr,
                           size_t errstr_size)
{
    char parent[16], bsn[16], type[8];
    kb_err_t err = get(v, "ouder.aNummer", parent, sizeof parent, 1, errstr, errstr_size);
    if (!err)
        err = get(v, "kind.bsn", bsn, sizeof bsn, 1, errstr, errstr_size);
    if (!err)
        err = get(v, "herkomst.berichtType", type, sizeof type, 1, errstr, errstr_size);
    avro_value_t ontv;
    int64_t ms = 0;
    if (!err && (kb_value_path(v, "herkomst.ontvangen", 0, &ontv) ||
                 avro_value_get_long(&ontv, &ms)))
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "field herkomst.ontvangen missing");
    if (err)
        return err;
    /* The receipt date as a Dutch office would write it: local calendar date. */
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char date[16];
    strftime(date, sizeof date, "%Y%m%d", &tm);
    char ppar[KB_PSEUDONYM_LEN + 1];
    kb_event_pseudonym(s->key, s->key_len, "bsn", bsn, child);
    kb_event_pseudonym(s->key, s->key_len, "anummer", parent, ppar);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "eventId", attrs->id, "aNummerOuder", parent,
                          "berichtType", type, "ontvangstdatum", date);
    if (!j)
        return KB_ERR_NOMEM;
    char path[2300], done[2400];
    snprintf(path, sizeof path, "%s/kind-%s-%s.json", s->state_dir, child, ppar);
    snprintf(done, sizeof done, "%s.done", path);
    struct stat st;
    /* Already joined earlier (redelivery): nothing to store. */
    if (stat(done, &st) == 0)
        err = KB_OK;
    else
        err = save_json(path, j);
    json_decref(j);
    return err;
}

/* "Anna Maria" + "" + "Bakker" -> "A.M. Bakker": the way letters address people. */
static void addressee(json_t *ouder, char *out, size_t cap)
{
    const char *voornamen = json_string_value(json_object_get(ouder, "voornamen"));
    const char *vv = json_string_value(json_object_get(ouder, "voorvoegsel"));
    const char *naam = json_string_value(json_object_get(ouder, "geslachtsnaam"));
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = voornamen ? voornamen : ""; *p && n + 3 < cap; p++) {
        if (p == voornamen || p[-1] == ' ') {
            if (*p == ' ')
                continue;
            /* Copy the whole first UTF-8 character of the name. */
            size_t clen = 1;
            while ((p[clen] & 0xC0) == 0x80)
                clen++;
            if (n + clen + 2 >= cap)
                break;
            memcpy(out + n, p, clen);
            n += clen;
            out[n++] = '.';
        }
    }
    out[n] = '\0';
    snprintf(out + n, cap - n, "%s%s%s%s", n ? " " : "", vv && *vv ? vv : "", vv && *vv ? " " : "",
             naam ? naam : "");
}

static void kenmerk_of(const char *id1, const char *id2, char out[13])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char buf[128];
    int len = snprintf(buf, sizeof buf, "%s|%s", id1, id2);
    EVP_Digest(buf, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    snprintf(out, 13, "%012llu", v % 1000000000000ull);
}

/* Join the stored birth of @p child with every pending kind file of it. */
static kb_err_t join(struct kb_svb *s, const char *child, char *errstr, size_t errstr_size)
{
    char bpath[2300];
    snprintf(bpath, sizeof bpath, "%s/geboren-%s.json", s->state_dir, child);
    json_error_t jerr;
    json_t *birth = json_load_file(bpath, 0, &jerr);
    if (!birth)
        return KB_OK; /* the other half has not arrived yet */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "kind-%s-", child);
    DIR *d = opendir(s->state_dir);
    if (!d) {
        json_decref(birth);
        return KB_ERR_IO;
    }
    kb_err_t err = KB_OK;
    struct dirent *de;
    while (!err && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || l < 5 ||
            strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        char kpath[2400];
        snprintf(kpath, sizeof kpath, "%s/%s", s->state_dir, de->d_name);
        json_t *kind = json_load_file(kpath, 0, &jerr);
        if (!kind)
            continue;
        const char *parent = json_string_value(json_object_get(kind, "aNummerOuder"));
        json_t *ouder = NULL, *o;
        size_t i;
        json_array_foreach(json_object_get(birth, "ouders"), i, o)
        {
            const char *a = json_string_value(json_object_get(o, "aNummer"));
            if (a && parent && !strcmp(a, parent))
                ouder = o;
        }
        if (!ouder) {
            KB_LOG_WARN(COMP, "parent of Gv01 is not a parent on the child's PL; no invitation",
                        "event_id=%s",
                        json_string_value(json_object_get(kind, "eventId")));
            json_decref(kind);
            continue;
        }
        struct kb_akw01 rec;
        memset(&rec, 0, sizeof rec);
        kenmerk_of(json_string_value(json_object_get(birth, "eventId")),
                   json_string_value(json_object_get(kind, "eventId")), rec.kenmerk);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(rec.datum_aanmaak, sizeof rec.datum_aanmaak, "%Y%m%d", &tm);
        snprintf(rec.bsn_ouder, sizeof rec.bsn_ouder, "%s",
                 json_string_value(json_object_get(ouder, "bsn")));
        snprintf(rec.bsn_kind, sizeof rec.bsn_kind, "%s",
                 json_string_value(json_object_get(birth, "bsnKind")));
        snprintf(rec.geboortedatum_kind, sizeof rec.geboortedatum_kind, "%s",
                 json_string_value(json_object_get(birth, "geboortedatumKind")));
        snprintf(rec.gemeente_kind, sizeof rec.gemeente_kind, "%s",
                 json_string_value(json_object_get(birth, "gemeenteKind")));
        rec.kanaal = s->kanaal;
        kb_akw_date_add_months(rec.datum_aanmaak, 3, rec.uiterste_reactiedatum);
        snprintf(rec.bron_anummer, sizeof rec.bron_anummer, "%s", parent);
        snprintf(rec.bron_berichttype, sizeof rec.bron_berichttype, "%s",
                 json_string_value(json_object_get(kind, "berichtType")));
        snprintf(rec.bron_ontvangstdatum, sizeof rec.bron_ontvangstdatum, "%s",
                 json_string_value(json_object_get(kind, "ontvangstdatum")));
        addressee(ouder, rec.naam, sizeof rec.naam);
        char line[KB_AKW01_LEN + 2];
        char rerr[256];
        if (kb_akw01_render(&rec, line, rerr, sizeof rerr)) {
            KB_LOG_ERR(COMP, "AKW01 not renderable; kept pending", "kenmerk=%s error=\"%s\"",
                       rec.kenmerk, rerr);
            json_decref(kind);
            continue;
        }
        line[KB_AKW01_LEN] = '\n';
        char name[64];
        snprintf(name, sizeof name, "%s.akw01", rec.kenmerk);
        err = kb_spool_write_out(&s->spool, name, line, KB_AKW01_LEN + 1);
        if (!err) {
            char done[2500];
            snprintf(done, sizeof done, "%s.done", kpath);
            if (rename(kpath, done) != 0)
                err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "rename state file: %s",
                                 strerror(errno));
            s->written++;
            KB_LOG_INFO(COMP, "AKW01 written", "kenmerk=%s file=out/%s", rec.kenmerk, name);
        }
        json_decref(kind);
    }
    closedir(d);
    json_decref(birth);
    return err;
}

kb_err_t kb_svb_handle(struct kb_svb *s, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size)
{
    avro_value_t v;
    if (avro_generic_value_new(schema->iface, &v))
        return KB_ERR_NOMEM;
    kb_err_t err = kb_schema_decode(schema, payload, len, &v, errstr, errstr_size);
    if (err) {
        avro_value_decref(&v);
        return KB_ERR_INVALID;
    }
    char child[KB_PSEUDONYM_LEN + 1] = "";
    if (!strcmp(attrs->type, "nl.brp.persoon-geboren"))
        err = store_birth(s, attrs, &v, child, errstr, errstr_size);
    else if (!strcmp(attrs->type, "nl.brp.kind-toegevoegd"))
        err = store_kind(s, attrs, &v, child, errstr, errstr_size);
    else
        KB_LOG_INFO(COMP, "event type not used by SVB egress", "type=%s event_id=%s",
                    attrs->type, attrs->id);
    avro_value_decref(&v);
    if (!err && child[0])
        err = join(s, child, errstr, errstr_size);
    return err;
}
