/* SPDX-License-Identifier: EUPL-1.2 */
/* test_brk_zip_hostile.c - zip bombs against kb_brk_zip_each: an entry that
 * declares more than max_entry is refused before a byte is inflated (found
 * by tests/integration/hostile_input.sh, where a 300 MiB bomb grew the
 * adapter's buffer to the 64 MiB limit first), and one that lies about its
 * size is still stopped at max_entry while inflating. */
#include <archive.h>
#include <archive_entry.h>

#include "kadaster/brk_zip.h"
#include "kb_test.h"

/* A zip in memory with one entry "bomb.xml" of @p size zero bytes; the
 * local header declares @p declared (-1: unset, streamed). */
static uint8_t *make_zip(size_t size, long long declared, size_t *len)
{
    size_t cap = (size << 0) / 100 + (1u << 20);
    uint8_t *out = malloc(cap);
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    archive_write_open_memory(a, out, cap, len);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "bomb.xml");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (declared >= 0)
        archive_entry_set_size(e, declared);
    archive_write_header(a, e);
    static uint8_t zeros[1 << 16];
    for (size_t done = 0; done < size; done += sizeof zeros)
        archive_write_data(a, zeros, size - done < sizeof zeros ? size - done : sizeof zeros);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

static int calls;
static int count_cb(void *arg, const char *name, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)name;
    (void)data;
    (void)len;
    calls++;
    return 0;
}

int main(void)
{
    struct kb_brk_zip_limits lim;
    kb_brk_zip_limits_default(&lim);
    lim.max_entry = 1u << 20;
    char err[256];

    /* 8 MiB declared in the headers: refused on the declaration */
    size_t len = 0;
    uint8_t *zip = make_zip(8u << 20, 8u << 20, &len);
    CHECK(kb_brk_is_zip(zip, len));
    CHECK(len < (1u << 20)); /* it is a bomb: small outside */
    calls = 0;
    CHECK_INT(kb_brk_zip_each(zip, len, &lim, count_cb, NULL, err, sizeof err), KB_ERR_RANGE);
    CHECK_STR(err, "zip entry 1 inflates beyond 1048576 bytes");
    CHECK_INT(calls, 0);
    free(zip);

    /* an entry within the limit passes */
    zip = make_zip(4096, 4096, &len);
    calls = 0;
    CHECK_INT(kb_brk_zip_each(zip, len, &lim, count_cb, NULL, err, sizeof err), KB_OK);
    CHECK_INT(calls, 1);
    free(zip);

    /* one whose size is not declared up front is stopped while inflating */
    zip = make_zip(8u << 20, -1, &len);
    calls = 0;
    kb_err_t rc = kb_brk_zip_each(zip, len, &lim, count_cb, NULL, err, sizeof err);
    CHECK_INT(rc, KB_ERR_RANGE);
    CHECK_STR(err, "zip entry 1 inflates beyond 1048576 bytes");
    CHECK_INT(calls, 0);
    free(zip);
    KB_TEST_DONE();
}
