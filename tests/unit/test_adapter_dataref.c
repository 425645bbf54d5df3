/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_adapter_dataref.c - ce_dataref of an archived legacy file
 * (adapters/common/adapter.c): file and ZIP entry names, which senders
 * choose, are percent-encoded, so the URI stays a URI and a CloudEvents
 * String whatever bytes the names hold (the router dead-letters an event
 * whose attribute is not UTF-8 text); a URI too long for the room given is
 * left out, never cut, and so is one whose name may hold a BSN or A-nummer.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "kb_test.h"
#include "ketenbus/event.h"

static void expect(const char *base, const char *name, const char *fragment, const char *want)
{
    char out[512];
    CHECK_INT(kb_adapter_dataref(base, name, fragment, out, sizeof out), 0);
    CHECK_STR(out, want);
}

/* Every dataref the helper makes passes the router's envelope check. */
static void check_is_attribute(const char *dataref)
{
    struct kb_event_attrs a, back;
    memset(&a, 0, sizeof a);
    strcpy(a.id, "0c9f3b0e-2f35-5f8a-9b40-4a6f3c2d1e0f");
    strcpy(a.source, "urn:nld:oin:00000001234567890000:systeem:test");
    strcpy(a.type, "nl.brk.eigendom-overgedragen");
    strcpy(a.dataref, dataref);
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24], errstr[128] = "";
    size_t n = kb_event_headers(&a, hdrs, seqbuf);
    CHECK_INT(kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr), KB_OK);
    CHECK_STR(back.dataref, dataref);
}

int main(void)
{
    const char *base = "file:///var/spool/kb/done";
    /* the names adapters make themselves stay as they are */
    expect(base, "tcp-0123abcd.lo3", NULL, "file:///var/spool/kb/done/tcp-0123abcd.lo3");
    expect(base, "001-goed.akw02", "regel=2", "file:///var/spool/kb/done/001-goed.akw02#regel=2");
    expect(base, "levering.xml.2", NULL, "file:///var/spool/kb/done/levering.xml.2");
    /* a base that is a file's URI already, and a ZIP entry in a folder */
    expect("file:///d/done/levering.zip", NULL, "stukken/akte 1.xml",
           "file:///d/done/levering.zip#stukken/akte%201.xml");
    /* a sender's name: a space, '#', '%', '?', Latin-1 and UTF-8 bytes, a
     * control character */
    expect(base, "akte #1 100%?.xml", NULL,
           "file:///var/spool/kb/done/akte%20%231%20100%25%3F.xml");
    expect(base, "gemeente-\xe9.lo3", NULL, "file:///var/spool/kb/done/gemeente-%E9.lo3");
    expect(base, "gemeente-\xc3\xa9\n.lo3", NULL,
           "file:///var/spool/kb/done/gemeente-%C3%A9%0A.lo3");
    char out[512];
    kb_adapter_dataref(base, "gemeente-\xe9\x01.lo3", "x\xff", out, sizeof out);
    check_is_attribute(out);

    /* a name that may hold a BSN (9 digits passing the 11-proef) or an
     * A-nummer (10, valid) stays out of the header; other digit runs, a
     * date or a failing 9-digit run, stay in */
    strcpy(out, "stale");
    CHECK_INT(kb_adapter_dataref(base, "aanvraag-999995303.akw02", NULL, out, sizeof out), -1);
    CHECK_STR(out, "");
    CHECK_INT(kb_adapter_dataref(base, "7194601014.lo3", NULL, out, sizeof out), -1);
    CHECK_INT(kb_adapter_dataref(base, "levering.zip", "akte-999995303.xml", out, sizeof out),
              -1);
    expect(base, "20240318-123456780.lo3", NULL,
           "file:///var/spool/kb/done/20240318-123456780.lo3");
    expect(base, "x-9999953031.lo3", "regel=999995303000",
           "file:///var/spool/kb/done/x-9999953031.lo3#regel=999995303000");

    /* too long for the room: left out, not cut in the middle of an escape */
    char name[200];
    memset(name, ' ', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    strcpy(out, "stale");
    CHECK_INT(kb_adapter_dataref(base, name, NULL, out, sizeof out), -1);
    CHECK_STR(out, "");
    /* ... and exactly at the room given: 25 + 1 + 3 bytes and the NUL */
    CHECK_INT(kb_adapter_dataref(base, "%", NULL, out, 30), 0);
    CHECK_STR(out, "file:///var/spool/kb/done/%25");
    CHECK_INT(kb_adapter_dataref(base, "%", NULL, out, 29), -1);
    CHECK_STR(out, "");

    /* the done/ folder's own path is encoded too */
    char dir[] = "/tmp/kb dataref #XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char uri[4200];
    kb_adapter_done_uri(dir, uri, sizeof uri);
    char want[4200];
    snprintf(want, sizeof want, "file:///tmp/kb%%20dataref%%20%%23%s/done", dir + strlen(dir) - 6);
    CHECK_STR(uri, want);
    rmdir(dir);
    KB_TEST_DONE();
}
