/* bdb_locks.h: bounded lock waits for the BerkeleyDB SQL flavour (see bdb_locks.c). */
#ifndef SQLNB_BDB_LOCKS_H
#define SQLNB_BDB_LOCKS_H

/* Join the environment in directory `home` (refcounted), bound its lock waits to
 * `timeout_us` (the smallest asked for wins) and have the detector thread expire
 * longer waits. 0 on success; otherwise `err` says why. */
int sqlnb_bdb_lock_watch(const char *home, unsigned long timeout_us, char *err, int errlen);
/* Drop one reference taken by sqlnb_bdb_lock_watch. */
void sqlnb_bdb_lock_unwatch(const char *home);
/* How many lock waits BerkeleyDB has refused for their timeout in the watched
 * environment `home` (every process counts), or -1 when `home` is not watched. */
long sqlnb_bdb_lock_timeouts(const char *home);

#endif
