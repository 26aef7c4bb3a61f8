/* bdb_recover.h: clear a BerkeleyDB environment abandoned by dead processes (see bdb_recover.c). */
#ifndef SQLNB_BDB_RECOVER_H
#define SQLNB_BDB_RECOVER_H

#define SQLNB_ENV_HEALTHY 0     /* no registered process died (or no environment yet): nothing done */
#define SQLNB_ENV_CLEARED 1     /* only dead processes were registered: region files removed */
#define SQLNB_ENV_SHARED_DEAD 2 /* dead and live processes registered: nothing done */
#define SQLNB_ENV_OPEN_HERE 3   /* this process has the environment open: not inspected */
#define SQLNB_ENV_BUSY 4        /* the registry stayed locked by another opener: not inspected */

/* Inspect the environment in directory `home` (a "<database>-journal" directory)
 * through its DB_REGISTER file and, when every registered process is dead, remove
 * its region files (__db.NNN) so that the next BerkeleyDB SQL open runs full
 * recovery instead of failchk. Returns one of the SQLNB_ENV_* codes above, or -1
 * with `err` set. */
int sqlnb_bdb_clear_dead_env(const char *home, char *err, int errlen);

#endif
