/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_join.c - the two-event join behind an AKW01 invitation and the
 * later-child rule (see svb_join.h). State files are JSON (jansson); they
 * hold personal data and live only in the SVB adapter's own spool, as SVB's
 * copy of what it is entitled to receive.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "akw.h"
#include "egress.h"
#include "ketenbus/check.h"
#include "ketenbus/log.h"
#include "svb_join.h"

#define COMP "svb"
#define PATH_CAP 2400

kb_err_t kb_svb_init(struct kb_svb *s, const struct kb_spool *spool, const uint8_t *key,
                     size_t key_len, char *errstr, size_t errstr_size)
{
    memset(s, 0, sizeof *s);
    s->spool = *spool;
    snprintf(s->state_dir, sizeof s->state_dir, "%s/state", s->spool.dir);
    char registry[sizeof s->state_dir + 16];
    snprintf(registry, sizeof registry, "%s/kenmerken", s->state_dir);
    if ((mkdir(s->state_dir, 0750) != 0 && errno != EEXIST) ||
        (mkdir(registry, 0750) != 0 && errno != EEXIST))
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot create %s: %s", registry,
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

/* Why json_pack_ex() gave NULL: out of memory is worth a retry; anything
 * else (a string that is not UTF-8, such as a ce_id taken from a Kafka
 * header) never packs, so the event is quarantined. jansson's own text is
 * left out: it may quote the value. */
static kb_err_t pack_failed(const json_error_t *jerr, const char *what, char *errstr,
                            size_t errstr_size)
{
    if (json_error_code(jerr) == json_error_out_of_memory)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s cannot be stored: %s", what,
                      json_error_code(jerr) == json_error_invalid_utf8 ? "a string is not UTF-8"
                                                                       : "unusable value");
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

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *jstr(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

static void done_marker(const struct kb_svb *s, const char *child, char *out, size_t cap)
{
    snprintf(out, cap, "%s/akw01-%s.done", s->state_dir, child);
}

/*
 * SVB's knowledge of a parent's children: state/ouder-<pseudonym>.json holds
 * {"kinderen": [{"kind": <child pseudonym>, "geboortedatum": JJJJMMDD}, ...]}
 * in the order the adapter first saw each birth. Idempotent per child.
 */
static kb_err_t remember_child(struct kb_svb *s, const char *parent, const char *child,
                               const char *datum, char *errstr, size_t errstr_size)
{
    char path[PATH_CAP];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/ouder-%s.json", s->state_dir, parent);
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j && exists(path))
        return kb_err_set(KB_ERR_IO, errstr, errstr_size,
                          "unreadable state file"); /* knowledge must not silently reset */
    if (!j)
        j = json_pack_ex(&jerr, 0, "{s:[]}", "kinderen");
    if (!j)
        return pack_failed(&jerr, "the parent's children", errstr, errstr_size);
    json_t *kinderen = json_object_get(j, "kinderen"), *k;
    size_t i;
    kb_err_t err = KB_OK;
    int known = 0;
    json_array_foreach(kinderen, i, k) known |= !strcmp(jstr(k, "kind"), child);
    if (!known) {
        k = json_pack_ex(&jerr, 0, "{s:s, s:s}", "kind", child, "geboortedatum", datum);
        if (!k)
            err = pack_failed(&jerr, "the parent's children", errstr, errstr_size);
        else if (json_array_append_new(kinderen, k))
            err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        else
            err = save_json(path, j);
    }
    json_decref(j);
    return err;
}

/*
 * 1 when @p parent has a child other than @p child that came first: born
 * earlier, or born the same day and seen earlier (the second of twins).
 */
static int has_earlier_child(const struct kb_svb *s, const char *parent, const char *child,
                             const char *datum)
{
    char path[PATH_CAP];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/ouder-%s.json", s->state_dir, parent);
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j)
        return 0;
    json_t *k;
    size_t i;
    int earlier = 0, seen_self = 0;
    json_array_foreach(json_object_get(j, "kinderen"), i, k)
    {
        if (!strcmp(jstr(k, "kind"), child)) {
            seen_self = 1;
            continue;
        }
        int cmp = strcmp(jstr(k, "geboortedatum"), datum);
        if (cmp < 0 || (cmp == 0 && !seen_self))
            earlier = 1;
    }
    json_decref(j);
    return earlier;
}

/*
 * A child's kenmerk is claimed for, and derived from, the event id of its
 * birth as stored in @p path. A birth seen again under another event id (a
 * corrected or re-sent Lg01) updates what is stored but keeps the first
 * id, in @p j: else a crash after out/<kenmerk>.akw01 was written and
 * before the done marker, followed by that second birth, would claim a
 * second kenmerk and write a second invitation for the same child.
 */
static kb_err_t keep_first_birth_id(const char *path, json_t *j, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *old = json_load_file(path, 0, &jerr);
    if (!old && exists(path)) /* the first id must not silently reset */
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "unreadable state file");
    if (!old)
        return KB_OK; /* the first birth of this child */
    const char *first = jstr(old, "eventId");
    kb_err_t err = KB_OK;
    if (first[0] && strcmp(first, jstr(j, "eventId"))) {
        if (json_object_set_new(j, "eventId", json_string(first)))
            err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        else
            KB_LOG_INFO(COMP,
                        "birth seen again under another event id; the first keeps the kenmerk",
                        "first_event_id=%s", first);
    }
    json_decref(old);
    return err;
}

static kb_err_t store_birth(struct kb_svb *s, const struct kb_event_attrs *attrs,
                            avro_value_t *v, char child[KB_PSEUDONYM_LEN + 1], char *errstr,
                            size_t errstr_size)
{
    char bsn[16], datum[16], gemeente[8], land[8];
    kb_err_t err = get(v, "kind.bsn", bsn, sizeof bsn, 1, errstr, errstr_size);
    if (!err)
        err = get(v, "kind.geboortedatum", datum, sizeof datum, 1, errstr, errstr_size);
    if (!err)
        err = get(v, "kind.geboorteland", land, sizeof land, 0, errstr, errstr_size);
    if (!err)
        err = get(v, "inschrijving.gemeente", gemeente, sizeof gemeente, 1, errstr, errstr_size);
    if (err)
        return err;
    if (!kb_check_bsn(bsn, strlen(bsn)))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "field kind.bsn: not a BSN");
    if (!kb_check_gba_date(datum, strlen(datum)))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "field kind.geboortedatum: not a GBA date");
    if (!land[0])
        strcpy(land, KB_AKW_LAND_ONBEKEND);
    if (strlen(land) != 4 || !kb_check_digits(land, 4))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "field kind.geboorteland: not a Tabel 34 code");
    json_error_t jerr;
    json_t *j = json_pack_ex(&jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s:[]}", "eventId", attrs->id,
                             "bsnKind", bsn, "geboortedatumKind", datum, "gemeenteKind", gemeente,
                             "geboorteland", land, "ouders");
    if (!j)
        return pack_failed(&jerr, "the birth", errstr, errstr_size);
    avro_value_t ouders;
    size_t n = 0;
    int with_bsn = 0;
    if (avro_value_get_by_name(v, "ouders", &ouders, NULL) == 0)
        avro_value_get_size(&ouders, &n);
    for (size_t i = 0; i < n && !err; i++) {
        avro_value_t o, nr;
        int32_t ouder_nummer = (int32_t)i + 1;
        avro_value_get_by_index(&ouders, i, &o, NULL);
        if (avro_value_get_by_name(&o, "ouderNummer", &nr, NULL) == 0)
            avro_value_get_int(&nr, &ouder_nummer);
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
        if (err)
            break;
        if (obsn[0] && !kb_check_bsn(obsn, strlen(obsn))) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "field ouders[%zu].persoon.bsn: not a BSN", i);
            break;
        }
        with_bsn += obsn[0] != '\0';
        /* A parent that cannot be stored fails the event: left out, the
         * invitation could go to the wrong parent or to one only. */
        json_t *po = json_pack_ex(&jerr, 0, "{s:i, s:s, s:s, s:s, s:s, s:s}", "ouderNummer",
                                  (int)ouder_nummer, "aNummer", anr, "bsn", obsn, "voornamen",
                                  voornamen, "voorvoegsel", voorvoegsel, "geslachtsnaam", naam);
        if (!po)
            err = pack_failed(&jerr, "a parent", errstr, errstr_size);
        else if (json_array_append_new(json_object_get(j, "ouders"), po))
            err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    if (!err && !with_bsn)
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                         "field ouders: no parent with a BSN to address");
    if (!err) {
        kb_event_pseudonym(s->key, s->key_len, "bsn", bsn, child);
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s/geboren-%s.json", s->state_dir, child);
        err = keep_first_birth_id(path, j, errstr, errstr_size);
        if (!err)
            err = save_json(path, j);
    }
    /* SVB now knows this child of each parent (kept even after the join). */
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(j, "ouders"), i, o)
    {
        if (err)
            break;
        if (!jstr(o, "bsn")[0])
            continue;
        char parent[KB_PSEUDONYM_LEN + 1];
        kb_event_pseudonym(s->key, s->key_len, "bsn", jstr(o, "bsn"), parent);
        err = remember_child(s, parent, child, datum, errstr, errstr_size);
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
    char path[PATH_CAP], done[PATH_CAP + 8], invited[PATH_CAP];
    snprintf(path, sizeof path, "%s/kind-%s-%s.json", s->state_dir, child, ppar);
    snprintf(done, sizeof done, "%s.done", path);
    done_marker(s, child, invited, sizeof invited);
    /* Already joined (redelivery), or the child was already invited through
     * the other parent's Gv01: one invitation per child, nothing to store. */
    if (exists(done) || exists(invited)) {
        KB_LOG_INFO(COMP, "child already invited; Gv01 absorbed", "event_id=%s child=%s",
                    attrs->id, child);
        return KB_OK;
    }
    json_error_t jerr;
    json_t *j = json_pack_ex(&jerr, 0, "{s:s, s:s, s:s, s:s}", "eventId", attrs->id, "aNummerOuder",
                             parent, "berichtType", type, "ontvangstdatum", date);
    if (!j)
        return pack_failed(&jerr, "the Gv01", errstr, errstr_size);
    err = save_json(path, j);
    json_decref(j);
    return err;
}

/* "Anna Maria" + "" + "Bakker" -> "A.M. Bakker": the way letters address people. */
static void addressee(json_t *ouder, char *out, size_t cap)
{
    const char *voornamen = jstr(ouder, "voornamen");
    const char *vv = jstr(ouder, "voorvoegsel");
    const char *naam = jstr(ouder, "geslachtsnaam");
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = voornamen; *p && n + 3 < cap; p++) {
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
    snprintf(out + n, cap - n, "%s%s%s%s", n ? " " : "", vv, *vv ? " " : "", naam);
}

/*
 * The kenmerk of an invitation: 12 digits from the birth event id, so one
 * per child whatever Gv01 completes it, and the same after a crash. Twelve
 * digits of a hash meet a collision by the birthday bound after ~1.2 million
 * children, so each kenmerk is claimed in the registry state/kenmerken/
 * (claim_kenmerk()); a kenmerk owned by another child moves this child to
 * the next variant. Variant 0 is the kenmerk before the registry existed.
 */
#define KENMERK_SPACE    1000000000000ull /* 12 digits */
#define KENMERK_VARIANTS 64               /* variants tried before the event is refused */

static void kenmerk_of(const char *birth_id, unsigned variant, unsigned long long space,
                       char out[13])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char buf[96];
    int len = variant ? snprintf(buf, sizeof buf, "akw01|%s|%u", birth_id, variant)
                      : snprintf(buf, sizeof buf, "akw01|%s", birth_id);
    EVP_Digest(buf, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    snprintf(out, 13, "%012llu", v % space % KENMERK_SPACE); /* a test space stays 12 digits */
}

/* Contents of @p path (at most @p cap - 1 bytes) into @p out: its length, or -1 with errno. */
static ssize_t read_small(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, out, cap - 1);
    int saved = errno;
    close(fd);
    errno = saved;
    if (n >= 0)
        out[n] = '\0';
    return n;
}

/* Read out/<kenmerk>.akw01 into @p line (KB_AKW01_LEN + 2 bytes, NUL-ended):
 * its length, or -1 with errno. */
static ssize_t read_out_record(const struct kb_svb *s, const char *kenmerk,
                               char line[KB_AKW01_LEN + 2])
{
    char name[32], path[PATH_CAP];
    snprintf(name, sizeof name, "%s.akw01", kenmerk);
    kb_spool_path(&s->spool, "out", name, path, sizeof path);
    return read_small(path, line, KB_AKW01_LEN + 2);
}

/* 1 when out/<kenmerk>.akw01 exists and is the invitation of another child
 * than @p bsn_kind: written before the registry existed, not collected yet. */
static int out_of_other_child(const struct kb_svb *s, const char *kenmerk, const char *bsn_kind)
{
    char rec[KB_AKW01_LEN + 2];
    ssize_t n = read_out_record(s, kenmerk, rec);
    if (n < 0)
        return errno != ENOENT; /* unreadable: not ours to overwrite */
    return n < 43 || memcmp(rec + 34, bsn_kind, 9) != 0;
}

/*
 * The creation date of this child's record already in out/ (its kenmerk's
 * file, naming @p bsn_kind) into @p date; 0 when there is none to keep.
 * That record was written before a crash that came before the done
 * marker: its re-render keeps the date (and so the reply date derived from
 * it), so that on a later day the same name does not get other bytes. Once
 * the afnemer has taken the file, the date is lost and the re-render has
 * that day's.
 */
static int own_record_date(const struct kb_svb *s, const char *kenmerk, const char *bsn_kind,
                           char date[9])
{
    char line[KB_AKW01_LEN + 2], rerr[128];
    ssize_t n = read_out_record(s, kenmerk, line);
    struct kb_akw01 rec;
    if (n < KB_AKW01_LEN || kb_akw01_parse(line, (size_t)n, &rec, rerr, sizeof rerr) != KB_OK ||
        strcmp(rec.bsn_kind, bsn_kind) != 0)
        return 0;
    memcpy(date, rec.datum_aanmaak, 9);
    return 1;
}

/*
 * Write @p owner as state/kenmerken/<kenmerk>, never replacing one: the
 * text goes to a temp file first and link(2) publishes it whole or fails
 * with EEXIST, so a crash never leaves a claim that names nobody.
 * 0 when written, 1 when the kenmerk was taken, -1 on an I/O error.
 */
static int register_kenmerk(const struct kb_svb *s, const char *kenmerk, const char *owner)
{
    /* room for dir + "/.claim-" + the 12 digits + "." + a pid, so nothing is cut */
    char dir[PATH_CAP], path[PATH_CAP + 48], tmp[PATH_CAP + 48], text[128];
    snprintf(dir, sizeof dir, "%s/kenmerken", s->state_dir);
    snprintf(path, sizeof path, "%s/%s", dir, kenmerk);
    /* the temp file is this process's own (O_EXCL): two claimants sharing
     * state/ must never publish each other's text; one a crash left behind
     * is replaced by the next try of the same process id */
    snprintf(tmp, sizeof tmp, "%s/.claim-%s.%ld", dir, kenmerk, (long)getpid());
    unlink(tmp);
    int tl = snprintf(text, sizeof text, "%s\n", owner);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    int bad = write(fd, text, (size_t)tl) != tl || fsync(fd) != 0;
    bad |= close(fd) != 0;
    int taken = 0;
    if (!bad && link(tmp, path) != 0) {
        taken = errno == EEXIST;
        bad = !taken;
    }
    unlink(tmp);
    if (bad || taken)
        return bad ? -1 : 1;
    /* The claim must outlive a crash before the out/ file is written. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int synced = fsync(dfd) == 0;
    close(dfd);
    return synced ? 0 : -1;
}

/*
 * The kenmerk of the child with birth @p birth_id and BSN @p bsn_kind into
 * @p out: the first variant that is free or already this birth's. A
 * variant another child owns, in the registry or (from before it) in out/,
 * is skipped. KB_ERR_RANGE when KENMERK_VARIANTS variants are all taken
 * (never with 12 digits; the event is then refused, nothing overwritten).
 */
static kb_err_t claim_kenmerk(struct kb_svb *s, const char *birth_id, const char *bsn_kind,
                              char out[13], char *errstr, size_t errstr_size)
{
    unsigned long long space = s->kenmerk_space ? s->kenmerk_space : KENMERK_SPACE;
    char owner[sizeof((struct kb_event_attrs *)0)->id + 8];
    snprintf(owner, sizeof owner, "%s", birth_id);
    for (unsigned variant = 0; variant < KENMERK_VARIANTS; variant++) {
        kenmerk_of(birth_id, variant, space, out);
        char path[PATH_CAP + 16], text[128];
        snprintf(path, sizeof path, "%s/kenmerken/%s", s->state_dir, out);
        for (int attempt = 0; attempt < 2; attempt++) {
            ssize_t n = read_small(path, text, sizeof text);
            if (n < 0 && errno != ENOENT)
                return kb_err_set(KB_ERR_IO, errstr, errstr_size,
                                  "cannot read the kenmerk registry: %s", strerror(errno));
            if (n >= 0) {
                if (n > 0 && text[n - 1] == '\n')
                    text[n - 1] = '\0';
                if (!strcmp(text, owner))
                    return KB_OK; /* this child's: a re-render gives the same kenmerk */
                break;            /* another child's */
            }
            /* Unclaimed. An invitation written before the registry existed
             * keeps its kenmerk: claim it for that child, then go on. */
            const char *claimant = out_of_other_child(s, out, bsn_kind) ? "(out/ file)" : owner;
            int r = register_kenmerk(s, out, claimant);
            if (r == 0 && claimant == owner)
                return KB_OK;
            if (r < 0)
                return kb_err_set(KB_ERR_IO, errstr, errstr_size,
                                  "cannot write the kenmerk registry");
            /* taken meanwhile, or just given to the out/ file: read it again */
        }
        s->kenmerk_collisions++;
        KB_LOG_WARN(COMP, "kenmerk taken by another child; next variant", "kenmerk=%s variant=%u",
                    out, variant);
    }
    return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "no free kenmerk after %d variants",
                      KENMERK_VARIANTS);
}

/* The pending kind files of @p child, as loaded JSON with "path" added; caller decrefs. */
static kb_err_t pending_kinds(const struct kb_svb *s, const char *child, json_t **list)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "kind-%s-", child);
    DIR *d = opendir(s->state_dir);
    if (!d)
        return KB_ERR_IO;
    *list = json_array();
    struct dirent *de;
    json_error_t jerr;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || l < 5 ||
            strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        char kpath[PATH_CAP];
        snprintf(kpath, sizeof kpath, "%s/%s", s->state_dir, de->d_name);
        json_t *kind = json_load_file(kpath, 0, &jerr);
        if (!kind)
            continue;
        json_object_set_new(kind, "path", json_string(kpath));
        json_array_append_new(*list, kind);
    }
    closedir(d);
    return KB_OK;
}

/* Mark every pending kind file in @p kinds joined. */
static kb_err_t absorb_kinds(json_t *kinds, char *errstr, size_t errstr_size)
{
    json_t *k;
    size_t i;
    json_array_foreach(kinds, i, k)
    {
        char done[PATH_CAP + 8];
        snprintf(done, sizeof done, "%s.done", jstr(k, "path"));
        if (rename(jstr(k, "path"), done) != 0 && errno != ENOENT)
            return kb_err_set(KB_ERR_IO, errstr, errstr_size, "rename state file: %s",
                              strerror(errno));
    }
    return KB_OK;
}

/* Join the stored birth of @p child with its first matching pending Gv01. */
static kb_err_t join(struct kb_svb *s, const char *child, char *errstr, size_t errstr_size)
{
    char bpath[PATH_CAP], marker[PATH_CAP];
    json_t *kinds = NULL, *birth = NULL;
    json_error_t jerr;
    kb_err_t err = pending_kinds(s, child, &kinds);
    if (err)
        return kb_err_set(err, errstr, errstr_size, "cannot list %s", s->state_dir);
    done_marker(s, child, marker, sizeof marker);
    if (exists(marker)) {
        err = absorb_kinds(kinds, errstr, errstr_size);
        goto out;
    }
    snprintf(bpath, sizeof bpath, "%s/geboren-%s.json", s->state_dir, child);
    birth = json_load_file(bpath, 0, &jerr);
    if (!birth || json_array_size(kinds) == 0)
        goto out; /* the other half has not arrived yet */

    /* Addressee: the parent with the lowest ouderNummer that has a BSN;
     * partner: the other parent with a BSN, if any. */
    json_t *ouders = json_object_get(birth, "ouders"), *o, *ouder = NULL, *partner = NULL;
    size_t i;
    json_array_foreach(ouders, i, o)
    {
        if (!jstr(o, "bsn")[0])
            continue;
        if (!ouder || json_integer_value(json_object_get(o, "ouderNummer")) <
                          json_integer_value(json_object_get(ouder, "ouderNummer"))) {
            partner = ouder;
            ouder = o;
        } else if (!partner) {
            partner = o;
        }
    }
    /* The trigger: the addressee's own Gv01 if it is here, else the partner's. */
    json_t *trigger = NULL, *k;
    json_array_foreach(kinds, i, k)
    {
        const char *anr = jstr(k, "aNummerOuder");
        if (ouder && !strcmp(anr, jstr(ouder, "aNummer")))
            trigger = k;
        else if (!trigger && partner && !strcmp(anr, jstr(partner, "aNummer")))
            trigger = k;
    }
    if (!ouder || !trigger) {
        KB_LOG_WARN(COMP, "Gv01 parent is not a parent on the child's PL; waiting", "child=%s",
                    child);
        goto out;
    }

    struct kb_akw01 rec;
    memset(&rec, 0, sizeof rec);
    const char *birth_id = jstr(birth, "eventId");
    err = claim_kenmerk(s, birth_id, jstr(birth, "bsnKind"), rec.kenmerk, errstr, errstr_size);
    if (err)
        goto out;
    if (!own_record_date(s, rec.kenmerk, jstr(birth, "bsnKind"), rec.datum_aanmaak)) {
        time_t now = s->now ? s->now : time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(rec.datum_aanmaak, sizeof rec.datum_aanmaak, "%Y%m%d", &tm);
    }
    snprintf(rec.bsn_ouder, sizeof rec.bsn_ouder, "%s", jstr(ouder, "bsn"));
    if (partner && strcmp(jstr(partner, "bsn"), jstr(ouder, "bsn")))
        snprintf(rec.bsn_partner, sizeof rec.bsn_partner, "%s", jstr(partner, "bsn"));
    snprintf(rec.bsn_kind, sizeof rec.bsn_kind, "%s", jstr(birth, "bsnKind"));
    snprintf(rec.geboortedatum_kind, sizeof rec.geboortedatum_kind, "%s",
             jstr(birth, "geboortedatumKind"));
    snprintf(rec.gemeente_kind, sizeof rec.gemeente_kind, "%s", jstr(birth, "gemeenteKind"));
    snprintf(rec.geboorteland, sizeof rec.geboorteland, "%s", jstr(birth, "geboorteland"));
    rec.buitenland = kb_akw_buitenland(rec.geboorteland);
    int later = 0;
    json_array_foreach(ouders, i, o)
    {
        char parent[KB_PSEUDONYM_LEN + 1];
        if (!jstr(o, "bsn")[0])
            continue;
        kb_event_pseudonym(s->key, s->key_len, "bsn", jstr(o, "bsn"), parent);
        later |= has_earlier_child(s, parent, child, rec.geboortedatum_kind);
    }
    /* protocols.md §2.1: a later child born in NL needs no application; one
     * born abroad does, whatever its rank. */
    rec.verwerking = later && rec.buitenland == 'N' ? 'A' : 'U';
    rec.kanaal = s->kanaal;
    kb_akw_date_add_months(rec.datum_aanmaak, 3, rec.uiterste_reactiedatum);
    snprintf(rec.bron_anummer, sizeof rec.bron_anummer, "%s", jstr(trigger, "aNummerOuder"));
    snprintf(rec.bron_berichttype, sizeof rec.bron_berichttype, "%s",
             jstr(trigger, "berichtType"));
    snprintf(rec.bron_ontvangstdatum, sizeof rec.bron_ontvangstdatum, "%s",
             jstr(trigger, "ontvangstdatum"));
    addressee(ouder, rec.naam, sizeof rec.naam);

    char line[KB_AKW01_LEN + 2];
    char rerr[256];
    if (kb_akw01_render(&rec, line, rerr, sizeof rerr)) {
        /* Never renderable (e.g. a name with no ASCII form): the event that
         * completed the join is quarantined with the reason (no values). */
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW01 not renderable: %s", rerr);
        goto out;
    }
    line[KB_AKW01_LEN] = '\n';
    char name[64];
    snprintf(name, sizeof name, "%s.akw01", rec.kenmerk);
    err = kb_spool_write_out(&s->spool, name, line, KB_AKW01_LEN + 1);
    if (err) {
        kb_err_set(err, errstr, errstr_size, "cannot write out/%s", name);
        goto out;
    }
    if (s->on_written) {
        err = s->on_written(s->on_written_opaque, &rec, birth_id, jstr(trigger, "eventId"),
                            errstr, errstr_size);
        if (err)
            goto out;
    }
    char body[64];
    int blen = snprintf(body, sizeof body, "%s\n", rec.kenmerk);
    err = kb_file_write_atomic(marker, body, (size_t)blen);
    if (err) {
        kb_err_set(err, errstr, errstr_size, "cannot write the done marker");
        goto out;
    }
    err = absorb_kinds(kinds, errstr, errstr_size);
    s->written++;
    s->automatic += rec.verwerking == 'A';
    s->abroad += rec.buitenland == 'J';
    KB_LOG_INFO(COMP, "AKW01 written", "kenmerk=%s file=out/%s verwerking=%c buitenland=%c",
                rec.kenmerk, name, rec.verwerking, rec.buitenland);
out:
    json_decref(birth);
    json_decref(kinds);
    return err;
}

kb_err_t kb_svb_handle(struct kb_svb *s, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size)
{
    avro_value_t v;
    kb_err_t err = kb_egress_decode(schema, payload, len, &v, errstr, errstr_size);
    if (err)
        return err;
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
