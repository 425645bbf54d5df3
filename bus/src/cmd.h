/* SPDX-License-Identifier: EUPL-1.2 */
/* cmd.h - the subcommands of the ketenbus executable, one file each. */
#ifndef KETENBUS_CMD_H
#define KETENBUS_CMD_H

#include <stdatomic.h>

int kb_cmd_route(int argc, char **argv);
int kb_cmd_dev(int argc, char **argv);
int kb_cmd_gen(int argc, char **argv);
int kb_cmd_audit(int argc, char **argv);
int kb_cmd_validate(int argc, char **argv);
int kb_cmd_schema(int argc, char **argv);
int kb_cmd_deliver(int argc, char **argv);
int kb_cmd_top(int argc, char **argv);
int kb_cmd_sub(int argc, char **argv);
int kb_cmd_dlq(int argc, char **argv);
int kb_cmd_replay(int argc, char **argv);
int kb_cmd_version(void);

/* SIGINT/SIGTERM and the bounded stop: kb_stop_signals() in ketenbus/stop.h. */

/** Set *reload on SIGHUP. */
void kb_cmd_reload_signal(atomic_int *reload);

#endif
